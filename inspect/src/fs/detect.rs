//! Recognising what a device holds by its superblock, as `blkid` does: ext2/3/4, vfat, xfs,
//! btrfs, ntfs, swap, LVM physical volumes, LUKS and BitLocker containers, with label and UUID where the
//! format records them.
//!
//! Each probe reads a few fixed offsets; none trusts a length or offset from the disk
//! beyond the fixed-size fields it reads.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use crate::disk::{BlockDevice, DiskError, le16, le32, le64};

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detected {
    /// blkid's TYPE: `ext4`, `vfat`, `xfs`, `btrfs`, `swap`, `LVM2_member`, `crypto_LUKS` ...
    pub fstype: &'static str,
    /// LABEL, if set.
    pub label: Option<String>,
    /// UUID as blkid prints it.
    pub uuid: Option<String>,
}

/// Reads `len` bytes at `offset`, or None when the device is too small.
fn read(
    dev: &dyn BlockDevice,
    offset: u64,
    len: usize,
) -> Result<Option<alloc::vec::Vec<u8>>, DiskError> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= dev.size() => {
            let mut b = vec![0u8; len];
            dev.read_at(offset, &mut b)?;
            Ok(Some(b))
        }
        _ => Ok(None),
    }
}

/// A label from a NUL- or space-padded field; None when empty.
fn label(field: &[u8]) -> Option<String> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let s = String::from_utf8_lossy(&field[..end]);
    let s = s.trim_end_matches(' ');
    (!s.is_empty()).then(|| String::from(s))
}

/// A UUID stored as 16 bytes in big-endian (RFC 4122) order; None when all zero.
fn uuid_be(b: &[u8]) -> Option<String> {
    if b.len() < 16 || b.iter().all(|&x| x == 0) {
        return None;
    }
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6],
        b[7],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
}

/// Probes `dev`. `Ok(None)`: nothing recognised.
pub fn detect(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    for probe in [luks, lvm2, xfs, ext, btrfs, swap, bitlocker, ntfs, vfat] {
        if let Some(found) = probe(dev)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

// ext2/3/4 feature bits, as blkid tells the three apart.
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
/// Incompatible features ext3 supports: FILETYPE, RECOVER, META_BG.
const EXT3_INCOMPAT_SUPP: u32 = 0x2 | 0x4 | 0x10;
/// Read-only-compatible features ext3 supports: SPARSE_SUPER, LARGE_FILE, BTREE_DIR.
const EXT3_RO_COMPAT_SUPP: u32 = 0x1 | 0x2 | 0x4;

fn ext(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    let Some(sb) = read(dev, 1024, 1024)? else {
        return Ok(None);
    };
    if le16(&sb, 56) != 0xEF53 {
        return Ok(None);
    }
    let compat = le32(&sb, 92);
    let incompat = le32(&sb, 96);
    let ro_compat = le32(&sb, 100);
    let fstype = if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        "jbd"
    } else if incompat & !EXT3_INCOMPAT_SUPP != 0 || ro_compat & !EXT3_RO_COMPAT_SUPP != 0 {
        "ext4"
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    Ok(Some(Detected {
        fstype,
        label: label(&sb[120..136]),
        uuid: uuid_be(&sb[104..120]),
    }))
}

fn xfs(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    let Some(sb) = read(dev, 0, 512)? else {
        return Ok(None);
    };
    if &sb[0..4] != b"XFSB" {
        return Ok(None);
    }
    Ok(Some(Detected {
        fstype: "xfs",
        label: label(&sb[108..120]),
        uuid: uuid_be(&sb[32..48]),
    }))
}

fn btrfs(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    let Some(sb) = read(dev, 65536, 4096)? else {
        return Ok(None);
    };
    if &sb[64..72] != b"_BHRfS_M" {
        return Ok(None);
    }
    Ok(Some(Detected {
        fstype: "btrfs",
        label: label(&sb[299..299 + 256]),
        uuid: uuid_be(&sb[32..48]),
    }))
}

fn swap(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    // The signature sits at the end of the first page; Linux on x86 uses 4 KiB pages, other
    // architectures up to 64 KiB.
    for page in [4096u64, 8192, 16384, 32768, 65536] {
        let Some(sig) = read(dev, page - 10, 10)? else {
            return Ok(None);
        };
        if sig == b"SWAPSPACE2" || sig == b"SWAP-SPACE" {
            let Some(h) = read(dev, 1024, 44)? else {
                return Ok(None);
            };
            // Version-1 header: version, last_page, nr_badpages, uuid[16], volume_name[16].
            let v1 = sig == b"SWAPSPACE2";
            return Ok(Some(Detected {
                fstype: "swap",
                label: if v1 { label(&h[28..44]) } else { None },
                uuid: if v1 { uuid_be(&h[12..28]) } else { None },
            }));
        }
    }
    Ok(None)
}

/// vfat as blkid (util-linux 2.38) finds it: a magic string (`MSWIN`/`FAT32   ` at 0x52,
/// `MSDOS`/`FAT16   `/`FAT12   `/`FAT     ` at 0x36) or, failing that, a jump instruction
/// or boot signature with the boot signature required; then the boot sector's figures
/// checked (FAT count, reserved sectors, media byte, sizes, cluster count within the
/// type's maximum) and on FAT32 an FSInfo sector with a valid or empty signature.
///
/// LABEL is the root directory's volume-label entry only (blkid no longer falls back to
/// the boot sector's label, which it reports apart as LABEL_FATBOOT), trailing spaces
/// dropped, and only when it is printable ASCII; UUID is the volume serial as `XXXX-XXXX`
/// when the extended boot signature (0x28 or 0x29) is there and the serial is not zero.
fn vfat(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    let Some(s) = read(dev, 0, 512)? else {
        return Ok(None);
    };
    let strong = &s[0x52..0x57] == b"MSWIN"
        || &s[0x52..0x5a] == b"FAT32   "
        || &s[0x36..0x3b] == b"MSDOS"
        || [&b"FAT16   "[..], b"FAT12   ", b"FAT     "].contains(&&s[0x36..0x3e]);
    let boot_sig = le16(&s, 510) == 0xAA55;
    if !strong {
        // blkid's weak magics (the jump byte, the boot signature) all need the boot
        // signature, so that alone decides.
        if !boot_sig {
            return Ok(None);
        }
        if &s[0x36..0x3e] == b"JFS     " || &s[0x36..0x3e] == b"HPFS    " {
            return Ok(None);
        }
    }
    let sector_size = le16(&s, 11) as u64;
    let spc = s[13] as u64;
    let reserved = le16(&s, 14) as u64;
    let fats = s[16] as u64;
    let dir_entries = le16(&s, 17) as u64;
    let media = s[21];
    let fat16_length = le16(&s, 22) as u64;
    let fat32_length = le32(&s, 36) as u64;
    if fats == 0
        || reserved == 0
        || !(media >= 0xf8 || media == 0xf0)
        || !spc.is_power_of_two()
        || !sector_size.is_power_of_two()
        || !(512..=4096).contains(&sector_size)
    {
        return Ok(None);
    }
    let sectors = match le16(&s, 19) {
        0 => le32(&s, 32) as u64,
        n => n as u64,
    };
    let fat_length = if fat16_length != 0 {
        fat16_length
    } else {
        fat32_length
    };
    let fat_size = fat_length * fats;
    let dir_size = (dir_entries * 32).div_ceil(sector_size);
    let Some(data) = sectors.checked_sub(reserved + fat_size + dir_size) else {
        return Ok(None);
    };
    let clusters = data / spc;
    let fat32 = fat16_length == 0 && fat32_length != 0;
    let max = if fat32 {
        0x0FFF_FFF6
    } else if clusters > 0xFF4 {
        0xFFF4
    } else {
        0xFF4
    };
    if clusters > max {
        return Ok(None);
    }
    let (label_raw, ext_sig, serial) = if !fat32 {
        let root = (reserved + fat_size) * sector_size;
        (
            search_fat_label(dev, root, dir_entries)?,
            s[38],
            le32(&s, 39),
        )
    } else {
        let cluster_bytes = spc * sector_size;
        let entries = fat32_length * sector_size / 4;
        let mut next = le32(&s, 44) as u64;
        let mut found = None;
        // blkid looks at 99 clusters of the root directory at most.
        for _ in 0..99 {
            if next < 2 || next >= entries {
                break;
            }
            let off = (reserved + fat_size + (next - 2) * spc) * sector_size;
            found = search_fat_label(dev, off, cluster_bytes / 32)?;
            if found.is_some() {
                break;
            }
            let Some(e) = read(dev, reserved * sector_size + next * 4, 4)? else {
                break;
            };
            next = (le32(&e, 0) & 0x0fff_ffff) as u64;
        }
        let fsinfo = le16(&s, 48) as u64;
        if fsinfo != 0 {
            let Some(info) = read(dev, fsinfo * sector_size, 512)? else {
                return Ok(None);
            };
            if !matches!(&info[0..4], b"RRaA" | b"RRdA" | b"\0\0\0\0")
                || !matches!(&info[484..488], b"rrAa" | b"\0\0\0\0")
            {
                return Ok(None);
            }
        }
        (found, s[66], le32(&s, 67))
    };
    let volume_label = label_raw.and_then(|raw| {
        let end = raw.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        let l = &raw[..end];
        (!l.is_empty() && l.iter().all(|&b| (0x20..0x7f).contains(&b)))
            .then(|| String::from_utf8_lossy(l).into_owned())
    });
    let has_serial = (ext_sig == 0x29 || ext_sig == 0x28) && serial != 0;
    Ok(Some(Detected {
        fstype: "vfat",
        label: volume_label,
        uuid: has_serial.then(|| format!("{:04X}-{:04X}", serial >> 16, serial & 0xffff)),
    }))
}

/// The volume-label entry among the first `entries` records at `offset`, as blkid's
/// `search_fat_label` finds it: up to the first free record, skipping deleted records,
/// long-name slots and records with a cluster, an entry with the volume bit and not the
/// directory bit. Reading stops at the end of the device.
fn search_fat_label(
    dev: &dyn BlockDevice,
    offset: u64,
    entries: u64,
) -> Result<Option<[u8; 11]>, DiskError> {
    const CHUNK: u64 = 128;
    let mut i = 0;
    while i < entries {
        let n = CHUNK.min(entries - i);
        let Some(buf) = read(dev, offset + i * 32, (n * 32) as usize)? else {
            return Ok(None);
        };
        for r in buf.chunks_exact(32) {
            if r[0] == 0 {
                return Ok(None);
            }
            let cluster = le16(r, 20) != 0 || le16(r, 26) != 0;
            if r[0] == 0xE5 || cluster || r[11] & 0x3f == 0x0f {
                continue;
            }
            if r[11] & 0x18 == 0x08 {
                let mut name = [0u8; 11];
                name.copy_from_slice(&r[..11]);
                if name[0] == 0x05 {
                    name[0] = 0xE5;
                }
                return Ok(Some(name));
            }
        }
        i += n;
    }
    Ok(None)
}

fn lvm2(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    // The label is in one of the first four sectors.
    for sector in 0..4u64 {
        let Some(s) = read(dev, sector * 512, 512)? else {
            return Ok(None);
        };
        if &s[0..8] != b"LABELONE" || &s[24..32] != b"LVM2 001" {
            continue;
        }
        let at = le32(&s, 20) as usize;
        let Some(raw) = s.get(at..at + 32) else {
            return Ok(Some(Detected {
                fstype: "LVM2_member",
                label: None,
                uuid: None,
            }));
        };
        // 32 characters shown in groups 6-4-4-4-4-4-6.
        let mut uuid = String::new();
        for (i, &c) in raw.iter().enumerate() {
            if [6, 10, 14, 18, 22, 26].contains(&i) {
                uuid.push('-');
            }
            uuid.push(if c.is_ascii_alphanumeric() {
                c as char
            } else {
                '?'
            });
        }
        return Ok(Some(Detected {
            fstype: "LVM2_member",
            label: None,
            uuid: Some(uuid),
        }));
    }
    Ok(None)
}

fn luks(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    let Some(h) = read(dev, 0, 512)? else {
        return Ok(None);
    };
    if &h[0..6] != b"LUKS\xba\xbe" {
        return Ok(None);
    }
    let version = u16::from_be_bytes([h[6], h[7]]);
    let uuid = label(&h[168..208]);
    Ok(Some(Detected {
        fstype: "crypto_LUKS",
        // LUKS2 has a label in its binary header.
        label: if version == 2 {
            label(&h[24..72])
        } else {
            None
        },
        uuid,
    }))
}

/// NTFS as blkid (util-linux 2.38) finds it: the OEM id `NTFS    `, a boot sector whose
/// FAT-only fields are zero, sane sector and cluster sizes, and the MFT and its mirror
/// inside the volume. LABEL is `$Volume`'s `$VOLUME_NAME` (record 3 of the MFT, read as
/// blkid reads it: without fixups, the first attributes only), UTF-16 turned into UTF-8;
/// UUID is the 64-bit volume serial number as 16 upper-case hex digits.
fn ntfs(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    let Some(b) = read(dev, 0, 512)? else {
        return Ok(None);
    };
    if &b[3..11] != b"NTFS    " {
        return Ok(None);
    }
    let sector = le16(&b, 11) as u64;
    let spc = match b[13] {
        n @ 1..=0x80 => n as u64,
        n @ 0xF4..=0xFF => 1u64 << (256 - n as u32),
        _ => return Ok(None),
    };
    // reserved sectors, FATs, root entries, sectors, sectors per FAT, large sectors.
    let fat_fields_zero = le16(&b, 14) == 0
        && b[16] == 0
        && le16(&b, 17) == 0
        && le16(&b, 19) == 0
        && le16(&b, 22) == 0
        && le32(&b, 32) == 0;
    if !sector.is_power_of_two()
        || !(256..=4096).contains(&sector)
        || !spc.is_power_of_two()
        || !fat_fields_zero
    {
        return Ok(None);
    }
    let cluster = sector * spc;
    let clusters = le64(&b, 40) / spc;
    let (mft, mirror) = (le64(&b, 48), le64(&b, 56));
    if mft >= clusters || mirror >= clusters {
        return Ok(None);
    }
    let field = b[64] as i8;
    let record = if field > 0 {
        field as u64 * cluster
    } else {
        match 1u64.checked_shl(field.unsigned_abs() as u32) {
            Some(r) => r,
            None => return Ok(None),
        }
    };
    if !record.is_power_of_two() || !(256..=65536).contains(&record) {
        return Ok(None);
    }
    let serial = le64(&b, 72);
    let mut label = None;
    if let Some(off) = mft
        .checked_mul(cluster)
        .and_then(|o| o.checked_add(3 * record))
        && let Some(r) = read(dev, off, record as usize)?
        && &r[0..4] == b"FILE"
    {
        let mut at = le16(&r, 20) as usize;
        while at + 24 <= r.len() {
            let ty = le32(&r, at);
            let len = le32(&r, at + 4) as usize;
            if ty == 0xFFFF_FFFF || len < 24 || len > r.len() - at {
                break;
            }
            if ty == 0x60 && r[at + 8] == 0 {
                let vlen = le32(&r, at + 16) as usize;
                let voff = le16(&r, at + 20) as usize;
                if voff + vlen <= len {
                    let units: alloc::vec::Vec<u16> = r[at + voff..at + voff + vlen]
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    let s: String = char::decode_utf16(units)
                        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                        .collect();
                    label = (!s.is_empty()).then_some(s);
                }
                break;
            }
            at += len;
        }
    }
    Ok(Some(Detected {
        fstype: "ntfs",
        label,
        uuid: Some(format!("{serial:016X}")),
    }))
}

/// BitLocker (Windows 7 and later) as blkid finds it: the OEM id `-FVE-FS-` and a FVE
/// metadata block with its signature and version 1 or 2 at the first of the three offsets
/// the boot sector gives. Recognised and reported, never read: no label, no UUID (blkid
/// gives none either).
fn bitlocker(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    let Some(b) = read(dev, 0, 512)? else {
        return Ok(None);
    };
    if &b[3..11] != b"-FVE-FS-" {
        return Ok(None);
    }
    let Some(m) = read(dev, le64(&b, 0xB0), 12)? else {
        return Ok(None);
    };
    if &m[0..8] != b"-FVE-FS-" || !matches!(le16(&m, 10), 1 | 2) {
        return Ok(None);
    }
    Ok(Some(Detected {
        fstype: "BitLocker",
        label: None,
        uuid: None,
    }))
}

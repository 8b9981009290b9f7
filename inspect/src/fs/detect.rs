//! Recognising what a device holds by its superblock, as `blkid` does: ext2/3/4, vfat, xfs,
//! btrfs, swap, LVM physical volumes and LUKS containers, with label and UUID where the
//! format records them.
//!
//! Each probe reads a few fixed offsets; none trusts a length or offset from the disk
//! beyond the fixed-size fields it reads.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use crate::disk::{BlockDevice, DiskError, le16, le32};

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
    for probe in [luks, lvm2, xfs, ext, btrfs, swap, vfat] {
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

fn vfat(dev: &dyn BlockDevice) -> Result<Option<Detected>, DiskError> {
    let Some(s) = read(dev, 0, 512)? else {
        return Ok(None);
    };
    if le16(&s, 510) != 0xAA55 || !(s[0] == 0xEB || s[0] == 0xE9) {
        return Ok(None);
    }
    let bytes_per_sector = le16(&s, 11);
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) || s[13] == 0 || s[16] == 0 {
        return Ok(None);
    }
    // FAT32 keeps its extended BPB at 64, FAT12/16 at 36.
    let ebpb = if &s[82..87] == b"FAT32" {
        64
    } else if &s[54..59] == b"FAT12" || &s[54..59] == b"FAT16" || &s[54..57] == b"FAT" {
        36
    } else {
        return Ok(None);
    };
    let has_ids = s[ebpb + 2] == 0x29 || s[ebpb + 2] == 0x28;
    let id = le32(&s, ebpb + 3);
    let volume_label = if s[ebpb + 2] == 0x29 {
        label(&s[ebpb + 7..ebpb + 18]).filter(|l| l != "NO NAME")
    } else {
        None
    };
    Ok(Some(Detected {
        fstype: "vfat",
        label: volume_label,
        uuid: has_ids.then(|| format!("{:04X}-{:04X}", id >> 16, id & 0xffff)),
    }))
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

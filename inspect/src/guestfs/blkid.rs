//! `blkid`: what libguestfs's daemon answers from `blkid -c /dev/null -p -i -o export DEVICE`
//! (util-linux 2.38), key by key and in blkid's order: DEVNAME, the superblock probe's keys
//! (per type, as each of libblkid's probers sets them, then TYPE and USAGE), the topology
//! (512-byte sectors, as on libguestfs's virtio-scsi disks), then the partition entry of a
//! partition (PART_ENTRY_*) or the table of a whole disk (PTUUID, PTTYPE).
//!
//! Values are printed as `blkid -o export` prints them (bytes above 127 as `M-`, control
//! characters as `^`, and ` \"'$`<>` after a backslash), which the daemon passes on as they
//! are. Superblocks are untrusted: every read is of a fixed size at a fixed or bounded
//! offset, and a field that does not make sense leaves its key out.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{Daemon, DaemonError, err, sd_index, sd_major};
use crate::disk::partition::{Partition, PartitionTable, TableKind, read_table};
use crate::disk::{BlockDevice, DiskError, SECTOR, Slice, le16, le32, le64, lvm};
use crate::fs::detect::{Detected, detect};

/// blkid's keys for one device, in order.
type Keys = Vec<(String, String)>;

/// Characters `blkid -o export` escapes with a backslash.
const ESCAPED: &[u8] = b" \\\"'$`<>";

/// A value as `blkid -o export` prints it (its `safe_print`).
fn export_value(v: &[u8]) -> String {
    let mut out = String::with_capacity(v.len());
    for &b in v {
        let mut ch = b;
        if ch >= 128 {
            out.push_str("M-");
            ch -= 128;
        }
        if ch < 32 || ch == 0x7f {
            out.push('^');
            ch ^= 0x40;
        }
        if ESCAPED.contains(&ch) {
            out.push('\\');
        }
        out.push(ch as char);
    }
    out
}

fn push(keys: &mut Keys, key: &str, value: impl AsRef<[u8]>) {
    keys.push((key.to_string(), export_value(value.as_ref())));
}

/// Reads `len` bytes at `offset`, or None when the device is too small.
fn read(dev: &dyn BlockDevice, offset: u64, len: usize) -> Result<Option<Vec<u8>>, DiskError> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= dev.size() => {
            let mut b = alloc::vec![0u8; len];
            dev.read_at(offset, &mut b)?;
            Ok(Some(b))
        }
        _ => Ok(None),
    }
}

/// A NUL-terminated field with trailing white space cut, as libblkid's labels are; None
/// when nothing is left.
fn trimmed(field: &[u8]) -> Option<&[u8]> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let f = &field[..end];
    let end = f
        .iter()
        .rposition(|b| !b.is_ascii_whitespace() && *b != 0x0b)
        .map_or(0, |i| i + 1);
    (end > 0).then(|| &f[..end])
}

/// A UUID stored big-endian, as libblkid prints it; None when all zero (libblkid leaves
/// an empty UUID out).
fn uuid(b: &[u8]) -> Option<String> {
    if b.len() < 16 || b.iter().all(|&x| x == 0) {
        return None;
    }
    let mut s = String::with_capacity(36);
    for (i, x) in b[..16].iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{x:02x}"));
    }
    Some(s)
}

/// USAGE for a TYPE.
fn usage(fstype: &str) -> &'static str {
    match fstype {
        "swap" | "jbd" => "other",
        "LVM2_member" => "raid",
        "crypto_LUKS" | "BitLocker" => "crypto",
        _ => "filesystem",
    }
}

/// The superblock probe's keys for `dev` (none when nothing is recognised).
fn superblock(dev: &dyn BlockDevice, keys: &mut Keys) -> Result<(), DiskError> {
    let Some(d) = detect(dev)? else {
        return Ok(());
    };
    let label = |keys: &mut Keys| {
        if let Some(l) = &d.label {
            push(keys, "LABEL", l);
        }
    };
    let uuid_key = |keys: &mut Keys| {
        if let Some(u) = &d.uuid {
            push(keys, "UUID", u);
        }
    };
    match d.fstype {
        "ext2" | "ext3" | "ext4" | "jbd" => ext(dev, &d, keys)?,
        "xfs" => {
            label(keys);
            uuid_key(keys);
            if let Some(sb) = read(dev, 0, 512)? {
                push(
                    keys,
                    "BLOCK_SIZE",
                    u16::from_be_bytes([sb[102], sb[103]]).to_string(),
                );
            }
        }
        "btrfs" => {
            label(keys);
            uuid_key(keys);
            if let Some(sb) = read(dev, 65536, 4096)? {
                if let Some(sub) = uuid(&sb[0x10b..0x11b]) {
                    push(keys, "UUID_SUB", sub);
                }
                push(keys, "BLOCK_SIZE", le32(&sb, 0x90).to_string());
            }
        }
        "vfat" => vfat(dev, &d, keys)?,
        "ntfs" => {
            label(keys);
            if let Some(b) = read(dev, 0, 512)? {
                push(keys, "BLOCK_SIZE", le16(&b, 11).to_string());
            }
            uuid_key(keys);
        }
        "swap" => swap(dev, &d, keys)?,
        "LVM2_member" => {
            uuid_key(keys);
            push(keys, "VERSION", "LVM2 001");
        }
        "crypto_LUKS" => {
            // VERSION, UUID, then LUKS2's LABEL and SUBSYSTEM (at 208 in its header).
            if let Some(h) = read(dev, 0, 512)? {
                let version = u16::from_be_bytes([h[6], h[7]]);
                push(keys, "VERSION", version.to_string());
                uuid_key(keys);
                if version == 2 {
                    label(keys);
                    if let Some(s) = trimmed(&h[208..256]) {
                        push(keys, "SUBSYSTEM", s);
                    }
                }
            }
        }
        "BitLocker" => {
            // libblkid's Windows 7 layout: the volume serial (%016d, mostly zero and then
            // left out) and the FVE metadata block's version.
            if let Some(b) = read(dev, 0, 512)? {
                let serial = le32(&b, 67);
                if serial != 0 {
                    push(keys, "UUID", format!("{:016}", serial as i32));
                }
                if let Some(m) = read(dev, le64(&b, 176), 12)? {
                    push(keys, "VERSION", le16(&m, 10).to_string());
                }
            }
        }
        _ => {
            label(keys);
            uuid_key(keys);
        }
    }
    push(keys, "TYPE", d.fstype);
    push(keys, "USAGE", usage(d.fstype));
    Ok(())
}

/// ext2/3/4 (and an external journal, jbd), as libblkid's `ext_get_info`.
fn ext(dev: &dyn BlockDevice, d: &Detected, keys: &mut Keys) -> Result<(), DiskError> {
    /// Incompatible features ext2 supports: FILETYPE, META_BG.
    const EXT2_INCOMPAT_SUPP: u32 = 0x2 | 0x10;
    let Some(sb) = read(dev, 1024, 1024)? else {
        return Ok(());
    };
    if let Some(l) = trimmed(&sb[120..136]) {
        push(keys, "LABEL", l);
    }
    if let Some(u) = &d.uuid {
        push(keys, "UUID", u);
    }
    let compat = le32(&sb, 92);
    let incompat = le32(&sb, 96);
    if compat & 0x4 != 0
        && let Some(j) = uuid(&sb[208..224])
    {
        push(keys, "EXT_JOURNAL", j);
    }
    let ext2 = matches!(d.fstype, "ext2" | "jbd");
    if !ext2 && incompat & !EXT2_INCOMPAT_SUPP == 0 {
        push(keys, "SEC_TYPE", "ext2");
    }
    push(
        keys,
        "VERSION",
        format!("{}.{}", le32(&sb, 76), le16(&sb, 62)),
    );
    let log = le32(&sb, 24);
    if log < 32
        && let Some(size) = 1024u64.checked_shl(log)
    {
        push(keys, "BLOCK_SIZE", size.to_string());
    }
    if d.fstype == "jbd"
        && let Some(u) = &d.uuid
    {
        push(keys, "LOGUUID", u);
    }
    Ok(())
}

/// vfat, as libblkid's `probe_vfat` sets its keys (the detection itself is `detect`'s).
fn vfat(dev: &dyn BlockDevice, d: &Detected, keys: &mut Keys) -> Result<(), DiskError> {
    let Some(s) = read(dev, 0, 512)? else {
        return Ok(());
    };
    let sector_size = le16(&s, 11) as u64;
    let fat16_length = le16(&s, 22) as u64;
    let (boot_label, ext_sig, version) = if fat16_length != 0 {
        push(keys, "SEC_TYPE", "msdos");
        let spc = (s[13] as u64).max(1);
        let sectors = match le16(&s, 19) {
            0 => le32(&s, 32) as u64,
            n => n as u64,
        };
        let dir_size = (le16(&s, 17) as u64 * 32).div_ceil(sector_size.max(1));
        let used = (le16(&s, 14) as u64)
            .saturating_add(fat16_length.saturating_mul(s[16] as u64))
            .saturating_add(dir_size);
        let clusters = sectors.saturating_sub(used) / spc;
        let version = if clusters < 0xFF4 {
            Some("FAT12")
        } else if clusters < 0xFFF4 {
            Some("FAT16")
        } else {
            None
        };
        (&s[43..54], s[38], version)
    } else {
        (&s[71..82], s[66], Some("FAT32"))
    };
    if matches!(ext_sig, 0x28 | 0x29)
        && boot_label != b"NO NAME    "
        && let Some(l) = trimmed(boot_label)
    {
        push(keys, "LABEL_FATBOOT", l);
    }
    if let Some(l) = &d.label {
        push(keys, "LABEL", l);
    }
    if let Some(u) = &d.uuid {
        push(keys, "UUID", u);
    }
    if let Some(v) = version {
        push(keys, "VERSION", v);
    }
    push(keys, "BLOCK_SIZE", sector_size.to_string());
    Ok(())
}

/// swap, as libblkid's `swap_set_info`: LABEL and UUID only where the header's padding
/// shows no garbage, VERSION 1 (`SWAPSPACE2`) or 0 (`SWAP-SPACE`).
fn swap(dev: &dyn BlockDevice, d: &Detected, keys: &mut Keys) -> Result<(), DiskError> {
    let mut version = "1";
    for page in [4096u64, 8192, 16384, 32768, 65536] {
        if let Some(sig) = read(dev, page - 10, 10)? {
            if sig == b"SWAP-SPACE" {
                version = "0";
                break;
            }
            if sig == b"SWAPSPACE2" {
                break;
            }
        }
    }
    if let Some(h) = read(dev, 1024, 180)?
        && le32(&h, 172) == 0
        && le32(&h, 176) == 0
    {
        if let Some(l) = &d.label {
            push(keys, "LABEL", l);
        }
        if let Some(u) = &d.uuid {
            push(keys, "UUID", u);
        }
    }
    push(keys, "VERSION", version);
    Ok(())
}

/// The topology: libguestfs's disks are 512-byte-sector virtio-scsi disks, and its LVs
/// inherit their limits.
fn topology(keys: &mut Keys) {
    for key in [
        "MINIMUM_IO_SIZE",
        "PHYSICAL_SECTOR_SIZE",
        "LOGICAL_SECTOR_SIZE",
    ] {
        push(keys, key, "512");
    }
}

/// PTUUID and PTTYPE of a table.
fn table_keys(table: &PartitionTable, keys: &mut Keys) {
    if let Some(id) = &table.ptuuid {
        push(keys, "PTUUID", id);
    }
    push(
        keys,
        "PTTYPE",
        match table.kind {
            TableKind::Mbr => "dos",
            TableKind::Gpt => "gpt",
        },
    );
}

/// PART_ENTRY_* of partition `p` of `table`, on disk `disk` (0 is sda).
fn partition_keys(table: &PartitionTable, p: &Partition, disk: u64, keys: &mut Keys) {
    match table.kind {
        TableKind::Gpt => {
            push(keys, "PART_ENTRY_SCHEME", "gpt");
            if let Some(name) = &p.partlabel {
                push(keys, "PART_ENTRY_NAME", name);
            }
            if let Some(u) = &p.partuuid {
                push(keys, "PART_ENTRY_UUID", u.to_ascii_lowercase());
            }
            push(keys, "PART_ENTRY_TYPE", p.type_id.to_ascii_lowercase());
        }
        TableKind::Mbr => {
            push(keys, "PART_ENTRY_SCHEME", "dos");
            if table.ptuuid.is_some()
                && let Some(u) = &p.partuuid
            {
                push(keys, "PART_ENTRY_UUID", u);
            }
            let kind = u8::from_str_radix(&p.type_id, 16).unwrap_or(0);
            push(keys, "PART_ENTRY_TYPE", format!("0x{kind:x}"));
        }
    }
    if p.flags != 0 {
        push(keys, "PART_ENTRY_FLAGS", format!("0x{:x}", p.flags));
    }
    push(keys, "PART_ENTRY_NUMBER", p.number.to_string());
    push(keys, "PART_ENTRY_OFFSET", (p.start / SECTOR).to_string());
    push(keys, "PART_ENTRY_SIZE", (p.table_size / SECTOR).to_string());
    if let Some(major) = sd_major(disk) {
        push(
            keys,
            "PART_ENTRY_DISK",
            format!("{major}:{}", (disk % 16) * 16),
        );
    }
}

/// What a device name resolves to.
enum Target {
    /// Disk `index`, with its table if it has one.
    Disk(usize, Option<PartitionTable>),
    /// Partition `p` of disk `index`'s `table`.
    Partition(usize, PartitionTable, Partition),
    /// An LVM logical volume.
    Lv(Rc<dyn BlockDevice>),
}

impl Daemon {
    /// `blkid`: the keys `blkid -c /dev/null -p -i -o export DEVICE` prints for a disk
    /// (`/dev/sda`), a partition (`/dev/sda1`) or an LV (`/dev/VG/LV`,
    /// `/dev/mapper/VG-LV`), in blkid's order. A name that is not under `/dev/`, or a
    /// device that does not exist, gets the daemon's error for a bad device argument.
    pub fn blkid(&mut self, device: &str) -> Result<Vec<(String, String)>, DaemonError> {
        if !device.starts_with("/dev/") {
            return Err(err(
                "",
                format!("blkid_stub: {device}: expecting a device name"),
            ));
        }
        let target = self.target(device).ok_or_else(|| {
            err(
                "ENOENT",
                format!("blkid_stub: {device}: No such file or directory"),
            )
        })?;
        let io = |e: DiskError| err("EIO", format!("blkid: {device}: {e}"));
        let mut keys = Keys::new();
        push(&mut keys, "DEVNAME", device);
        match target {
            Target::Disk(i, table) => {
                if table.is_none() {
                    superblock(&*self.disks[i], &mut keys).map_err(io)?;
                }
                topology(&mut keys);
                if let Some(t) = &table {
                    table_keys(t, &mut keys);
                }
            }
            Target::Partition(i, table, p) => {
                let slice = Slice::new(self.disks[i].clone(), p.start, p.table_size);
                let mut ebr = None;
                if p.extended {
                    // An extended partition starts with an EBR, a dos table of its own.
                    ebr = read(&slice, 0, 512)
                        .map_err(io)?
                        .filter(|s| le16(s, 510) == 0xAA55);
                } else {
                    superblock(&slice, &mut keys).map_err(io)?;
                }
                topology(&mut keys);
                if let Some(s) = ebr {
                    let id = le32(&s, 440);
                    if id != 0 {
                        push(&mut keys, "PTUUID", format!("{id:08x}"));
                    }
                    push(&mut keys, "PTTYPE", "dos");
                }
                partition_keys(&table, &p, i as u64, &mut keys);
            }
            Target::Lv(dev) => {
                superblock(&*dev, &mut keys).map_err(io)?;
                topology(&mut keys);
            }
        }
        Ok(keys)
    }

    /// The disk, partition or LV `device` names, if it exists.
    fn target(&mut self, device: &str) -> Option<Target> {
        self.scan();
        let scan = self.scanned.as_ref()?;
        if let Some((disk, part)) = sd_index(device) {
            // Only names the scan lists (`/dev/sda01` is not `/dev/sda1`).
            scan.devices.iter().find(|d| d.name == device)?;
            let i = usize::try_from(disk).ok()?;
            let table = read_table(&**self.disks.get(i)?).ok().flatten();
            if part == 0 {
                return Some(Target::Disk(i, table));
            }
            let table = table?;
            let p = table
                .partitions
                .iter()
                .find(|p| u64::from(p.number) == part)?
                .clone();
            return Some(Target::Partition(i, table, p));
        }
        // An LV: assembled again from the PVs the scan found.
        let lv = scan.volume(device)?.info.device.clone();
        if !scan.logical_volumes.contains(&lv) {
            return None;
        }
        let pv_names: Vec<String> = scan
            .volumes
            .iter()
            .filter(|v| v.info.fstype == "LVM2_member")
            .map(|v| v.info.device.clone())
            .collect();
        let mut pvs = Vec::new();
        for name in pv_names {
            let dev = match self.target(&name)? {
                Target::Disk(i, _) => self.disks[i].clone(),
                Target::Partition(i, _, p) => {
                    Rc::new(Slice::new(self.disks[i].clone(), p.start, p.size))
                }
                Target::Lv(_) => continue,
            };
            pvs.push((name, dev));
        }
        lvm::scan(&pvs)
            .lvs
            .into_iter()
            .find(|l| l.path() == lv)
            .and_then(|l| l.device.ok())
            .map(Target::Lv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_as_blkid_exports_them() {
        assert_eq!(export_value(b"cloudimg-rootfs"), "cloudimg-rootfs");
        assert_eq!(export_value(b"my lab$"), "my\\ lab\\$");
        assert_eq!(export_value(b"LVM2 001"), "LVM2\\ 001");
        assert_eq!(export_value(b"a\"'`<>\\"), "a\\\"\\'\\`\\<\\>\\\\");
        assert_eq!(export_value(b"\x01\x7f"), "^A^?");
        assert_eq!(export_value("\u{e9}".as_bytes()), "M-CM-)");
    }

    #[test]
    fn labels_are_cut_at_nul_and_trailing_space() {
        assert_eq!(trimmed(b"BOOT    \0\0\0"), Some(&b"BOOT"[..]));
        assert_eq!(trimmed(b"   \0x"), None);
        assert_eq!(trimmed(b"a b "), Some(&b"a b"[..]));
    }

    /// Pseudo-random bytes (xorshift), `n` of them.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn random_superblocks_behind_every_magic_never_panic() {
        // (offset, magic) of every type `detect` knows, so that its checks and ours run on
        // garbage.
        let magics: [(usize, &[u8]); 10] = [
            (1024 + 56, &[0x53, 0xEF]),
            (0, b"XFSB"),
            (65536 + 64, b"_BHRfS_M"),
            (4086, b"SWAPSPACE2"),
            (3, b"NTFS    "),
            (0x36, b"FAT16   "),
            (0x52, b"FAT32   "),
            (512, b"LABELONE"),
            (0, b"LUKS\xba\xbe"),
            (3, b"-FVE-FS-"),
        ];
        for seed in 0..200u64 {
            for (i, (at, magic)) in magics.iter().enumerate() {
                let mut img = noise(72 << 10, seed * 16 + i as u64);
                img[*at..*at + magic.len()].copy_from_slice(magic);
                if *at == 512 {
                    img[512 + 24..512 + 32].copy_from_slice(b"LVM2 001");
                }
                img[510..512].copy_from_slice(&[0x55, 0xAA]);
                let mut keys = Keys::new();
                let _ = superblock(&img, &mut keys);
                // As a whole disk too (its random "table" included) and as every
                // partition that table gives.
                let mut g = Daemon::new(alloc::vec![Rc::new(img) as Rc<dyn BlockDevice>]);
                let _ = g.blkid("/dev/sda");
                for n in 1..=8 {
                    let _ = g.blkid(&format!("/dev/sda{n}"));
                }
            }
        }
    }

    #[test]
    fn an_ext_block_size_past_the_shift_is_left_out() {
        let mut img = alloc::vec![0u8; 8192];
        img[1024 + 56..1024 + 58].copy_from_slice(&[0x53, 0xEF]);
        img[1024 + 24..1024 + 28].copy_from_slice(&40u32.to_le_bytes());
        img[1024 + 76] = 1;
        // A journal: ext3, which blkid also calls ext2 (SEC_TYPE).
        img[1024 + 92] = 0x4;
        let mut keys = Keys::new();
        superblock(&img, &mut keys).unwrap();
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["SEC_TYPE", "VERSION", "TYPE", "USAGE"]);
        assert_eq!(keys[1].1, "1.0");
    }
}

//! Partition tables: MBR with the extended-partition (EBR) chain, and GPT with its backup.
//!
//! Written by hand: the formats are small and fixed, and no maintained no_std crate parses
//! both with the Linux semantics we need (numbering, PARTUUID forms, backup fallback).
//! Every field comes from an untrusted image, so every offset is checked, chains are bounded
//! and a table that cannot be trusted is an error, never a panic.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{BlockDevice, DiskError, SECTOR, le16, le32, le64};

/// Most logical partitions followed along an EBR chain (Linux stops at a similar bound).
pub const MAX_LOGICAL: usize = 256;
/// Most GPT entries read.
pub const MAX_GPT_ENTRIES: u32 = 1024;
/// Largest GPT entry array read, in bytes.
const MAX_GPT_ARRAY: u64 = 1 << 20;

/// Why a partition table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// The table is there but cannot be trusted.
    #[error("corrupt partition table: {0}")]
    Corrupt(String),
    /// The disk could not be read.
    #[error(transparent)]
    Disk(#[from] DiskError),
}

/// The kind of table on a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// DOS/MBR, possibly with logical partitions.
    Mbr,
    /// GUID partition table.
    Gpt,
}

impl TableKind {
    /// "mbr" or "gpt", as libguestfs's `part_get_parttype` says ("msdos" there for MBR).
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Mbr => "mbr",
            TableKind::Gpt => "gpt",
        }
    }
}

/// One partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Linux's number: MBR primaries 1-4 by slot, logicals from 5; GPT entries by slot from 1.
    pub number: u32,
    /// Offset in bytes.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// MBR type as two hex digits, or the GPT type GUID (upper case).
    pub type_id: String,
    /// PARTUUID as Linux forms it (GPT GUID, or `SSSSSSSS-NN` from the MBR signature).
    pub partuuid: Option<String>,
    /// GPT partition name.
    pub partlabel: Option<String>,
    /// An MBR extended partition (a container, not a filesystem).
    pub extended: bool,
    /// Length in bytes as the table gives it, clipped to the disk: `size`, except for an
    /// extended partition, whose `size` is the two sectors Linux shows (blkid's
    /// PART_ENTRY_SIZE is this one).
    pub table_size: u64,
    /// The entry's flags as blkid reports them (PART_ENTRY_FLAGS): the MBR boot indicator
    /// (0x80 for a bootable partition), or the GPT attribute bits.
    pub flags: u64,
}

/// A disk's partition table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionTable {
    /// MBR or GPT.
    pub kind: TableKind,
    /// Partitions, by number.
    pub partitions: Vec<Partition>,
    /// Things that were wrong but survivable (a looping EBR chain, a bad primary GPT).
    pub warnings: Vec<String>,
    /// The table's id as blkid's PTUUID gives it: the MBR disk signature as 8 hex digits
    /// (None when zero), or the GPT disk GUID.
    pub ptuuid: Option<String>,
}

/// Reads the partition table of `dev`. `Ok(None)`: there is none (a whole-disk filesystem or
/// an empty disk).
pub fn read_table(dev: &dyn BlockDevice) -> Result<Option<PartitionTable>, PartitionError> {
    if dev.size() < 2 * SECTOR {
        return Ok(None);
    }
    let mut mbr = [0u8; 512];
    dev.read_at(0, &mut mbr)?;
    if le16(&mbr, 510) != 0xAA55 {
        return Ok(None);
    }
    let entries = mbr_entries(&mbr);
    if entries.iter().any(|e| e.status != 0 && e.status != 0x80) {
        // Not a partition table: a boot sector (FAT, NTFS) that happens to end in 55 AA.
        return Ok(None);
    }
    if entries.iter().any(|e| e.kind == 0xEE) {
        return read_gpt(dev).map(Some);
    }
    if looks_like_fat_boot_sector(&mbr) {
        return Ok(None);
    }
    if entries.iter().all(|e| e.kind == 0 || e.sectors == 0) {
        return Ok(None);
    }
    read_mbr(dev, &mbr, &entries).map(Some)
}

#[derive(Clone, Copy)]
struct MbrEntry {
    status: u8,
    kind: u8,
    lba: u32,
    sectors: u32,
}

fn mbr_entries(sector: &[u8]) -> [MbrEntry; 4] {
    core::array::from_fn(|i| {
        let at = 446 + 16 * i;
        MbrEntry {
            status: sector[at],
            kind: sector[at + 4],
            lba: le32(sector, at + 8),
            sectors: le32(sector, at + 12),
        }
    })
}

/// A FAT boot sector has a jump instruction and a plausible BIOS parameter block; its
/// "partition entries" are boot code.
fn looks_like_fat_boot_sector(s: &[u8]) -> bool {
    let jump = s[0] == 0xEB || s[0] == 0xE9;
    let bytes_per_sector = le16(s, 11);
    let fat_name = s.get(54..59) == Some(b"FAT12")
        || s.get(54..59) == Some(b"FAT16")
        || s.get(82..87) == Some(b"FAT32");
    jump && matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) && fat_name
}

fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0F | 0x85)
}

fn read_mbr(
    dev: &dyn BlockDevice,
    mbr: &[u8],
    entries: &[MbrEntry; 4],
) -> Result<PartitionTable, PartitionError> {
    let signature = le32(mbr, 440);
    let disk_sectors = dev.size() / SECTOR;
    let mut table = PartitionTable {
        kind: TableKind::Mbr,
        partitions: Vec::new(),
        warnings: Vec::new(),
        ptuuid: (signature != 0).then(|| format!("{signature:08x}")),
    };
    let mut extended_seen = false;
    for (i, e) in entries.iter().enumerate() {
        if e.kind == 0 || e.sectors == 0 {
            continue;
        }
        let number = i as u32 + 1;
        let Some((start, size)) = clip(e.lba as u64, e.sectors as u64, disk_sectors) else {
            table.warnings.push(format!(
                "partition {number} starts past the end of the disk"
            ));
            continue;
        };
        let extended = is_extended(e.kind);
        table.partitions.push(Partition {
            number,
            start,
            size: if extended { size.min(SECTOR * 2) } else { size },
            type_id: format!("{:02x}", e.kind),
            partuuid: Some(format!("{signature:08x}-{number:02x}")),
            partlabel: None,
            extended,
            table_size: size,
            flags: e.status as u64,
        });
        if extended {
            if extended_seen {
                table.warnings.push(format!(
                    "partition {number}: a second extended partition is ignored"
                ));
                continue;
            }
            extended_seen = true;
            read_ebr_chain(dev, e.lba as u64, e.sectors as u64, signature, &mut table)?;
        }
    }
    Ok(table)
}

/// Follows the EBR chain inside the extended partition at `ext_lba` (`ext_sectors` long),
/// adding logical partitions numbered from 5. Loops, links outside the container and
/// over-long chains end the walk with a warning; what was found so far is kept.
fn read_ebr_chain(
    dev: &dyn BlockDevice,
    ext_lba: u64,
    ext_sectors: u64,
    signature: u32,
    table: &mut PartitionTable,
) -> Result<(), PartitionError> {
    let disk_sectors = dev.size() / SECTOR;
    let ext_end = ext_lba.saturating_add(ext_sectors).min(disk_sectors);
    let mut visited = BTreeSet::new();
    let mut ebr_lba = ext_lba;
    let mut number = 5u32;
    let mut sector = [0u8; 512];
    loop {
        if ebr_lba >= ext_end {
            table.warnings.push(format!(
                "EBR at sector {ebr_lba} lies outside the extended partition"
            ));
            return Ok(());
        }
        if !visited.insert(ebr_lba) {
            table
                .warnings
                .push(format!("EBR chain loops back to sector {ebr_lba}; stopped"));
            return Ok(());
        }
        if visited.len() > MAX_LOGICAL {
            table.warnings.push(format!(
                "more than {MAX_LOGICAL} logical partitions; stopped"
            ));
            return Ok(());
        }
        dev.read_at(ebr_lba * SECTOR, &mut sector)?;
        if le16(&sector, 510) != 0xAA55 {
            table.warnings.push(format!(
                "EBR at sector {ebr_lba} has no signature; chain ends"
            ));
            return Ok(());
        }
        let e = mbr_entries(&sector);
        let (logical, next) = (e[0], e[1]);
        if logical.kind != 0 && logical.sectors != 0 {
            let start = ebr_lba.saturating_add(logical.lba as u64);
            let len = (logical.sectors as u64).min(ext_end.saturating_sub(start));
            match clip(start, len, ext_end) {
                Some((start, size)) if size > 0 => table.partitions.push(Partition {
                    number,
                    start,
                    size,
                    type_id: format!("{:02x}", logical.kind),
                    partuuid: Some(format!("{signature:08x}-{number:02x}")),
                    partlabel: None,
                    extended: false,
                    table_size: size,
                    flags: logical.status as u64,
                }),
                _ => table.warnings.push(format!(
                    "logical partition {number} lies outside the extended partition"
                )),
            }
            number += 1;
        }
        if !is_extended(next.kind) || next.lba == 0 {
            return Ok(());
        }
        ebr_lba = ext_lba.saturating_add(next.lba as u64);
    }
}

/// Byte range of `sectors` sectors at `lba`, clipped to `limit` sectors; None if it starts
/// past the limit.
fn clip(lba: u64, sectors: u64, limit: u64) -> Option<(u64, u64)> {
    if lba >= limit || lba == 0 {
        return None;
    }
    let end = lba.saturating_add(sectors).min(limit);
    Some((lba * SECTOR, (end - lba) * SECTOR))
}

fn crc32(data: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(data)
}

/// A GUID from its on-disk mixed-endian form.
pub fn format_guid(b: &[u8]) -> String {
    if b.len() < 16 {
        return String::new();
    }
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        le32(b, 0),
        le16(b, 4),
        le16(b, 6),
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

struct GptHeader {
    disk_guid: String,
    entries_lba: u64,
    entries: u32,
    entry_size: u32,
    entries_crc: u32,
    first_usable: u64,
}

fn parse_gpt_header(dev: &dyn BlockDevice, lba: u64) -> Result<GptHeader, String> {
    let mut s = [0u8; 512];
    dev.read_at(lba * SECTOR, &mut s)
        .map_err(|e| format!("header at sector {lba}: {e}"))?;
    if &s[0..8] != b"EFI PART" {
        return Err(format!("no GPT signature at sector {lba}"));
    }
    let header_size = le32(&s, 12) as usize;
    if !(92..=512).contains(&header_size) {
        return Err(format!("header size {header_size} at sector {lba}"));
    }
    let stored = le32(&s, 16);
    let mut copy = s;
    copy[16..20].fill(0);
    if crc32(&copy[..header_size]) != stored {
        return Err(format!("header checksum mismatch at sector {lba}"));
    }
    let h = GptHeader {
        disk_guid: format_guid(&s[56..72]),
        first_usable: le64(&s, 40),
        entries_lba: le64(&s, 72),
        entries: le32(&s, 80),
        entry_size: le32(&s, 84),
        entries_crc: le32(&s, 88),
    };
    if h.entries > MAX_GPT_ENTRIES
        || h.entry_size < 128
        || !h.entry_size.is_multiple_of(8)
        || h.entries as u64 * h.entry_size as u64 > MAX_GPT_ARRAY
    {
        return Err(format!(
            "{} entries of {} bytes at sector {lba}",
            h.entries, h.entry_size
        ));
    }
    Ok(h)
}

fn read_gpt_entries(dev: &dyn BlockDevice, h: &GptHeader) -> Result<Vec<u8>, String> {
    let mut array = vec![0u8; h.entries as usize * h.entry_size as usize];
    let offset = h
        .entries_lba
        .checked_mul(SECTOR)
        .ok_or_else(|| String::from("entry array offset overflows"))?;
    dev.read_at(offset, &mut array)
        .map_err(|e| format!("entry array: {e}"))?;
    if crc32(&array) != h.entries_crc {
        return Err(String::from("entry array checksum mismatch"));
    }
    Ok(array)
}

fn read_gpt(dev: &dyn BlockDevice) -> Result<PartitionTable, PartitionError> {
    let last_lba = dev.size() / SECTOR - 1;
    let mut warnings = Vec::new();
    let primary = parse_gpt_header(dev, 1).and_then(|h| read_gpt_entries(dev, &h).map(|a| (h, a)));
    let (header, array) = match primary {
        Ok(found) => found,
        Err(why) => {
            let backup = parse_gpt_header(dev, last_lba)
                .and_then(|h| read_gpt_entries(dev, &h).map(|a| (h, a)));
            match backup {
                Ok(found) => {
                    warnings.push(format!("primary GPT unusable ({why}); using the backup"));
                    found
                }
                Err(why2) => {
                    return Err(PartitionError::Corrupt(format!(
                        "primary GPT: {why}; backup GPT: {why2}"
                    )));
                }
            }
        }
    };
    let disk_sectors = last_lba + 1;
    let mut partitions = Vec::new();
    for (i, e) in array.chunks_exact(header.entry_size as usize).enumerate() {
        let type_guid = &e[0..16];
        if type_guid.iter().all(|&b| b == 0) {
            continue;
        }
        let number = i as u32 + 1;
        let first = le64(e, 32);
        let last = le64(e, 40);
        if last < first || first < header.first_usable.min(disk_sectors) || first == 0 {
            warnings.push(format!("GPT entry {number}: bad range {first}..={last}"));
            continue;
        }
        let Some((start, size)) = clip(first, last - first + 1, disk_sectors) else {
            warnings.push(format!(
                "GPT entry {number} starts past the end of the disk"
            ));
            continue;
        };
        let name: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        let name = String::from_utf16_lossy(&name);
        partitions.push(Partition {
            number,
            start,
            size,
            type_id: format_guid(type_guid).to_uppercase(),
            partuuid: Some(format_guid(&e[16..32])),
            partlabel: (!name.is_empty()).then_some(name),
            extended: false,
            table_size: size,
            flags: le64(e, 48),
        });
    }
    Ok(PartitionTable {
        kind: TableKind::Gpt,
        partitions,
        warnings,
        ptuuid: Some(header.disk_guid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn entry(disk: &mut [u8], sector: u64, slot: usize, kind: u8, lba: u32, sectors: u32) {
        let at = sector as usize * 512 + 446 + 16 * slot;
        disk[at + 4] = kind;
        disk[at + 8..at + 12].copy_from_slice(&lba.to_le_bytes());
        disk[at + 12..at + 16].copy_from_slice(&sectors.to_le_bytes());
        let sig = sector as usize * 512 + 510;
        disk[sig..sig + 2].copy_from_slice(&[0x55, 0xAA]);
    }

    /// A 64 MiB disk: primaries 1 (Linux) and 2 (extended), logicals 5 and 6.
    fn mbr_disk() -> Vec<u8> {
        let mut d = vec![0u8; 64 * MIB as usize];
        d[440..444].copy_from_slice(&0x1234abcdu32.to_le_bytes());
        entry(&mut d, 0, 0, 0x83, 2048, 20480);
        entry(&mut d, 0, 1, 0x05, 22528, 100_000);
        // EBR 1 at 22528: logical at +2048, next EBR at ext+30000.
        entry(&mut d, 22528, 0, 0x83, 2048, 10000);
        entry(&mut d, 22528, 1, 0x05, 30000, 20000);
        // EBR 2 at 52528: logical swap, end of chain.
        entry(&mut d, 52528, 0, 0x82, 2048, 8000);
        d
    }

    #[test]
    fn mbr_with_logical_partitions() {
        let t = read_table(&mbr_disk()).unwrap().unwrap();
        assert_eq!(t.kind, TableKind::Mbr);
        let got: Vec<_> = t
            .partitions
            .iter()
            .map(|p| (p.number, p.start / SECTOR, p.type_id.as_str(), p.extended))
            .collect();
        assert_eq!(
            got,
            [
                (1, 2048, "83", false),
                (2, 22528, "05", true),
                (5, 24576, "83", false),
                (6, 54576, "82", false)
            ]
        );
        assert_eq!(t.partitions[2].size, 10000 * SECTOR);
        assert_eq!(t.partitions[3].partuuid.as_deref(), Some("1234abcd-06"));
        assert!(t.warnings.is_empty());
    }

    #[test]
    fn looping_ebr_chain_stops_with_a_warning() {
        let mut d = mbr_disk();
        // EBR 2 links back to EBR 1.
        entry(&mut d, 52528, 1, 0x05, 0, 20000);
        let at = 52528 * 512 + 446 + 16 + 8;
        d[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        // next.lba == 0 ends the chain; make it point at itself instead.
        d[at..at + 4].copy_from_slice(&30000u32.to_le_bytes());
        let t = read_table(&d).unwrap().unwrap();
        assert_eq!(t.partitions.len(), 4);
        assert!(t.warnings[0].contains("loops"), "{:?}", t.warnings);
    }

    #[test]
    fn chain_outside_the_container_or_past_the_disk_is_bounded() {
        let mut d = mbr_disk();
        entry(&mut d, 22528, 1, 0x05, u32::MAX, 20000);
        entry(&mut d, 0, 2, 0x83, u32::MAX - 5, 100);
        let t = read_table(&d).unwrap().unwrap();
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.warnings.len(), 2, "{:?}", t.warnings);
    }

    #[test]
    fn a_disk_with_no_table_or_a_fat_boot_sector_is_whole_disk() {
        assert_eq!(read_table(&vec![0u8; 4096]).unwrap(), None);
        let mut fat = vec![0u8; 4096];
        fat[0] = 0xEB;
        fat[11..13].copy_from_slice(&512u16.to_le_bytes());
        fat[82..87].copy_from_slice(b"FAT32");
        fat[510..512].copy_from_slice(&[0x55, 0xAA]);
        assert_eq!(read_table(&fat).unwrap(), None);
        assert_eq!(read_table(&vec![0u8; 100]).unwrap(), None);
    }

    fn put_gpt_header(d: &mut [u8], lba: u64, alt: u64, entries_lba: u64, array_crc: u32) {
        let at = lba as usize * 512;
        let h = &mut d[at..at + 512];
        h.fill(0);
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&lba.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
    }

    fn gpt_disk() -> Vec<u8> {
        let mut d = vec![0u8; 16 * MIB as usize];
        entry(&mut d, 0, 0, 0xEE, 1, u32::MAX);
        let mut array = vec![0u8; 128 * 128];
        // Entry 1: Linux filesystem, named "root".
        let linux = [
            0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47,
            0x7d, 0xe4,
        ];
        array[0..16].copy_from_slice(&linux);
        array[16..32].copy_from_slice(&[0x11; 16]);
        array[32..40].copy_from_slice(&2048u64.to_le_bytes());
        array[40..48].copy_from_slice(&10239u64.to_le_bytes());
        for (i, c) in "root".encode_utf16().enumerate() {
            array[56 + 2 * i..58 + 2 * i].copy_from_slice(&c.to_le_bytes());
        }
        // Entry 3 (slot 2): a second partition; slot 2 (number 2) stays empty.
        array[256..272].copy_from_slice(&linux);
        array[272..288].copy_from_slice(&[0x22; 16]);
        array[288..296].copy_from_slice(&10240u64.to_le_bytes());
        array[296..304].copy_from_slice(&20479u64.to_le_bytes());
        let crc = crc32(&array);
        let last = d.len() as u64 / 512 - 1;
        d[1024..1024 + array.len()].copy_from_slice(&array);
        let backup_array = last - 32;
        let at = backup_array as usize * 512;
        d[at..at + array.len()].copy_from_slice(&array);
        put_gpt_header(&mut d, 1, last, 2, crc);
        put_gpt_header(&mut d, last, 1, backup_array, crc);
        d
    }

    #[test]
    fn gpt_entries_by_slot_with_names_and_guids() {
        let t = read_table(&gpt_disk()).unwrap().unwrap();
        assert_eq!(t.kind, TableKind::Gpt);
        assert!(t.warnings.is_empty());
        let p = &t.partitions;
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].number, p[0].start, p[0].size),
            (1, 2048 * 512, 8192 * 512)
        );
        assert_eq!(p[0].type_id, "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        assert_eq!(p[0].partlabel.as_deref(), Some("root"));
        assert_eq!(
            p[0].partuuid.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        assert_eq!(p[1].number, 3);
    }

    #[test]
    fn corrupt_primary_gpt_falls_back_to_the_backup() {
        let mut d = gpt_disk();
        d[512 + 100] ^= 0xff; // header checksum still covers only 92 bytes: corrupt those
        d[512 + 40] ^= 0xff;
        let t = read_table(&d).unwrap().unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert!(t.warnings[0].contains("backup"), "{:?}", t.warnings);
        // Entries corrupt in the primary only: also the backup.
        let mut d = gpt_disk();
        d[1024 + 20] ^= 1;
        let t = read_table(&d).unwrap().unwrap();
        assert_eq!(t.partitions[0].partuuid.as_deref().unwrap().len(), 36);
        assert_eq!(t.warnings.len(), 1);
        // Both gone: an error, not a guess.
        let last = d.len() / 512 - 1;
        d[last * 512] ^= 0xff;
        assert!(matches!(read_table(&d), Err(PartitionError::Corrupt(_))));
    }

    #[test]
    fn absurd_gpt_entry_counts_are_refused() {
        let mut d = gpt_disk();
        let h = &mut d[512..1024];
        h[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
        h[16..20].fill(0);
        let crc = crc32(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        // Falls back to the intact backup.
        let t = read_table(&d).unwrap().unwrap();
        assert_eq!(t.partitions.len(), 2);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..300 {
            let mut d = if round % 2 == 0 {
                mbr_disk()[..MIB as usize].to_vec()
            } else {
                gpt_disk()[..MIB as usize].to_vec()
            };
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % 2048;
                d[at] = (x >> 32) as u8;
            }
            let _ = read_table(&d);
        }
    }
}

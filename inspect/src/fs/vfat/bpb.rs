//! The boot sector's BIOS parameter block: geometry, FAT type and where everything is, with
//! the checks Linux's `fat_fill_super` makes (fs/fat/inode.c).

use alloc::format;

use super::corrupt;
use crate::disk::{le16, le32};
use crate::fs::FsError;

/// Which FAT: the width of its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    /// 12-bit entries, packed two in three bytes.
    Fat12,
    /// 16-bit entries.
    Fat16,
    /// 32-bit entries of which the low 28 bits count.
    Fat32,
}

/// Most data clusters each FAT type may have (Linux's `MAX_FAT12/16/32`).
const MAX_FAT12: u32 = 0xFF4;
const MAX_FAT16: u32 = 0xFFF4;
const MAX_FAT32: u32 = 0x0FFF_FFF6;

/// The first data cluster's number.
pub const FIRST_CLUSTER: u32 = 2;

/// Where the parts of the volume are, in bytes from its start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per logical sector (512 to 4096, a power of two).
    pub sector_size: u32,
    /// Bytes per cluster (a power of two, at most 512 KiB).
    pub cluster_size: u32,
    /// The FAT type, decided as Linux decides it.
    pub fat_type: FatType,
    /// Offset of the first FAT (the one Linux reads).
    pub fat_offset: u64,
    /// Bytes in one FAT.
    pub fat_bytes: u64,
    /// Offset of the fixed root directory (FAT12/16).
    pub root_offset: u64,
    /// Entries in the fixed root directory (FAT12/16; 0 on FAT32).
    pub root_entries: u32,
    /// Offset of cluster 2.
    pub data_offset: u64,
    /// Data clusters: valid cluster numbers are 2 to `clusters + 1`.
    pub clusters: u32,
    /// The root directory's first cluster (FAT32; 0 otherwise).
    pub root_cluster: u32,
    /// The FSInfo sector (FAT32).
    pub fsinfo_sector: u32,
}

impl Geometry {
    /// Parses and checks the boot sector `b` (at least 512 bytes).
    ///
    /// As Linux: reserved sectors and FAT count non-zero, a valid media byte, the sector
    /// size a power of two from 512 to 4096, sectors per cluster a power of two, a FAT size;
    /// FAT32 when the 16-bit FAT size is 0 and the 32-bit one is not; otherwise FAT12 up to
    /// 4084 clusters and FAT16 above. The cluster count is clipped to what one FAT can hold
    /// and must be at most the type's maximum; the root-directory entry count must fill
    /// whole sectors.
    pub fn parse(b: &[u8]) -> Result<Self, FsError> {
        let sector_size = le16(b, 11) as u32;
        let sec_per_clus = b.get(13).copied().unwrap_or(0) as u32;
        let reserved = le16(b, 14) as u64;
        let fats = b.get(16).copied().unwrap_or(0) as u64;
        let root_entries = le16(b, 17) as u32;
        let sectors16 = le16(b, 19) as u64;
        let media = b.get(21).copied().unwrap_or(0);
        let fat_length16 = le16(b, 22) as u64;
        let total32 = le32(b, 32) as u64;
        let fat_length32 = le32(b, 36) as u64;
        if reserved == 0 {
            return Err(corrupt("boot sector: no reserved sectors"));
        }
        if fats == 0 {
            return Err(corrupt("boot sector: no FATs"));
        }
        if !(media >= 0xF8 || media == 0xF0) {
            return Err(corrupt(format!("boot sector: media byte {media:#04x}")));
        }
        if !sector_size.is_power_of_two() || !(512..=4096).contains(&sector_size) {
            return Err(corrupt(format!("boot sector: sector size {sector_size}")));
        }
        if !sec_per_clus.is_power_of_two() {
            return Err(corrupt(format!(
                "boot sector: {sec_per_clus} sectors per cluster"
            )));
        }
        if fat_length16 == 0 && fat_length32 == 0 {
            return Err(corrupt("boot sector: FAT size 0"));
        }
        let fat32 = fat_length16 == 0;
        let fat_length = if fat32 { fat_length32 } else { fat_length16 };
        let ss = sector_size as u64;
        let dir_per_sector = sector_size / 32;
        if !root_entries.is_multiple_of(dir_per_sector) {
            return Err(corrupt(format!(
                "boot sector: {root_entries} root directory entries"
            )));
        }
        let root_sectors = (root_entries / dir_per_sector) as u64;
        // All in u64: at most 2^16 + 2^8 * 2^32 + 2^16 sectors, no overflow.
        let dir_start = reserved + fats * fat_length;
        let data_start = dir_start + root_sectors;
        let total = if sectors16 != 0 { sectors16 } else { total32 };
        if data_start > total {
            return Err(corrupt(format!(
                "boot sector: data area starts at sector {data_start} of {total}"
            )));
        }
        let mut clusters = (total - data_start) / sec_per_clus as u64;
        let fat_type = if fat32 {
            FatType::Fat32
        } else if clusters > MAX_FAT12 as u64 {
            FatType::Fat16
        } else {
            FatType::Fat12
        };
        let (bits, max) = match fat_type {
            FatType::Fat12 => (12, MAX_FAT12),
            FatType::Fat16 => (16, MAX_FAT16),
            FatType::Fat32 => (32, MAX_FAT32),
        };
        // Entries one FAT holds; the first two are not clusters.
        let fat_entries = fat_length * ss * 8 / bits;
        clusters = clusters.min(fat_entries.saturating_sub(FIRST_CLUSTER as u64));
        if clusters > max as u64 {
            return Err(corrupt(format!(
                "boot sector: {clusters} clusters, more than {fat_type:?} allows"
            )));
        }
        let (root_cluster, fsinfo_sector) = if fat32 {
            let fsinfo = match le16(b, 48) {
                0 => 1,
                s => s as u32,
            };
            (le32(b, 44), fsinfo)
        } else {
            (0, 0)
        };
        Ok(Geometry {
            sector_size,
            cluster_size: sector_size * sec_per_clus,
            fat_type,
            fat_offset: reserved * ss,
            fat_bytes: fat_length * ss,
            root_offset: dir_start * ss,
            root_entries: if fat32 { 0 } else { root_entries },
            data_offset: data_start * ss,
            clusters: clusters as u32,
            root_cluster,
            fsinfo_sector,
        })
    }

    /// Whether `c` names a data cluster.
    pub fn is_cluster(&self, c: u32) -> bool {
        c >= FIRST_CLUSTER && c - FIRST_CLUSTER < self.clusters
    }

    /// Byte offset of data cluster `c` (which [`is_cluster`](Self::is_cluster)).
    pub fn cluster_offset(&self, c: u32) -> u64 {
        self.data_offset + (c - FIRST_CLUSTER) as u64 * self.cluster_size as u64
    }
}

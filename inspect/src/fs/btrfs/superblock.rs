//! The superblock: the primary copy at 64 KiB, checked (magic, CRC-32C checksum, geometry,
//! incompatible features) before anything else is read.
//!
//! Only the primary copy is read, as Linux mounts by default; the backup copies at 64 MiB
//! and 256 GiB are not consulted.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::{Result, corrupt, crc};
use crate::disk::{BlockDevice, le16, le32, le64};
use crate::fs::FsError;

/// Byte offset of the primary superblock.
pub const SUPERBLOCK_OFFSET: u64 = 0x1_0000;
/// Bytes of the superblock.
pub const SUPERBLOCK_SIZE: usize = 4096;
/// `_BHRfS_M`.
pub const MAGIC: &[u8; 8] = b"_BHRfS_M";

/// Largest tree-node and sector size btrfs allows.
pub const MAX_NODESIZE: u32 = 64 * 1024;
/// Bytes of `sys_chunk_array`.
pub const SYS_CHUNK_ARRAY_SIZE: usize = 2048;

// Incompatible feature bits (`BTRFS_FEATURE_INCOMPAT_*`).
const INCOMPAT_MIXED_BACKREF: u64 = 1 << 0;
const INCOMPAT_DEFAULT_SUBVOL: u64 = 1 << 1;
const INCOMPAT_MIXED_GROUPS: u64 = 1 << 2;
const INCOMPAT_COMPRESS_LZO: u64 = 1 << 3;
const INCOMPAT_COMPRESS_ZSTD: u64 = 1 << 4;
const INCOMPAT_BIG_METADATA: u64 = 1 << 5;
const INCOMPAT_EXTENDED_IREF: u64 = 1 << 6;
const INCOMPAT_RAID56: u64 = 1 << 7;
const INCOMPAT_SKINNY_METADATA: u64 = 1 << 8;
const INCOMPAT_NO_HOLES: u64 = 1 << 9;
/// Tree blocks carry `metadata_uuid` instead of the fsid.
pub const INCOMPAT_METADATA_UUID: u64 = 1 << 10;
const INCOMPAT_RAID1C34: u64 = 1 << 11;
const INCOMPAT_SIMPLE_QUOTA: u64 = 1 << 16;

/// Features that change nothing this reader reads (RAID56 and RAID1C34 are refused per
/// chunk, where the profile is).
const INCOMPAT_READ: u64 = INCOMPAT_MIXED_BACKREF
    | INCOMPAT_DEFAULT_SUBVOL
    | INCOMPAT_MIXED_GROUPS
    | INCOMPAT_COMPRESS_LZO
    | INCOMPAT_COMPRESS_ZSTD
    | INCOMPAT_BIG_METADATA
    | INCOMPAT_EXTENDED_IREF
    | INCOMPAT_RAID56
    | INCOMPAT_SKINNY_METADATA
    | INCOMPAT_NO_HOLES
    | INCOMPAT_METADATA_UUID
    | INCOMPAT_RAID1C34
    | INCOMPAT_SIMPLE_QUOTA;

/// What the reader uses of the superblock.
#[derive(Clone, Debug)]
pub struct Superblock {
    /// The uuid tree blocks must carry (fsid, or metadata_uuid).
    pub tree_fsid: [u8; 16],
    /// Logical address and level of the root tree's root.
    pub root: u64,
    /// Level of the root tree's root.
    pub root_level: u8,
    /// Logical address of the chunk tree's root.
    pub chunk_root: u64,
    /// Level of the chunk tree's root.
    pub chunk_root_level: u8,
    /// Logical address of an unreplayed log tree (0: none).
    pub log_root: u64,
    /// Bytes of the filesystem (all devices).
    pub total_bytes: u64,
    /// Devices the filesystem spans.
    pub num_devices: u64,
    /// Data block size.
    pub sectorsize: u32,
    /// Tree block size.
    pub nodesize: u32,
    /// This device's id.
    pub devid: u64,
    /// Read-only-compatible features (free-space tree, block-group tree).
    pub compat_ro: u64,
    /// The bootstrap chunks (`sys_chunk_array`, `sys_chunk_array_size` bytes of it).
    pub sys_chunk_array: Vec<u8>,
}

/// Reads and checks the primary superblock of `dev`.
pub fn read(dev: &dyn BlockDevice) -> Result<Superblock> {
    let mut b = vec![0u8; SUPERBLOCK_SIZE];
    dev.read_at(SUPERBLOCK_OFFSET, &mut b)
        .map_err(|e| FsError::Io(format!("btrfs: superblock: {e}")))?;
    parse(&b)
}

/// Checks and parses a superblock's 4096 bytes.
pub fn parse(b: &[u8]) -> Result<Superblock> {
    if b.len() < SUPERBLOCK_SIZE || &b[0x40..0x48] != MAGIC {
        return Err(corrupt("superblock: no btrfs magic"));
    }
    let csum_type = le16(b, 0xc4);
    if csum_type != 0 {
        let name = match csum_type {
            1 => "xxhash64",
            2 => "sha256",
            3 => "blake2b",
            _ => "unknown",
        };
        return Err(FsError::Unsupported(format!(
            "btrfs: checksum type {csum_type} ({name}); only crc32c is read"
        )));
    }
    let stored = le32(b, 0);
    let computed = crc::csum(&b[0x20..SUPERBLOCK_SIZE]);
    if stored != computed {
        return Err(corrupt(format!(
            "superblock: checksum {stored:#010x}, contents give {computed:#010x}"
        )));
    }
    if le64(b, 0x30) != SUPERBLOCK_OFFSET {
        return Err(corrupt(format!(
            "superblock: records its offset as {:#x}",
            le64(b, 0x30)
        )));
    }
    let sectorsize = le32(b, 0x90);
    let nodesize = le32(b, 0x94);
    let pow2_in = |v: u32, lo: u32| v.is_power_of_two() && v >= lo && v <= MAX_NODESIZE;
    if !pow2_in(sectorsize, 4096) || !pow2_in(nodesize, sectorsize) {
        return Err(corrupt(format!(
            "superblock: sector size {sectorsize}, node size {nodesize}"
        )));
    }
    let incompat = le64(b, 0xbc);
    let unknown = incompat & !INCOMPAT_READ;
    if unknown != 0 {
        let what = match unknown.trailing_zeros() {
            12 => "zoned",
            13 => "extent tree v2",
            14 => "raid stripe tree",
            15 => "remap tree",
            _ => "unknown",
        };
        return Err(FsError::Unsupported(format!(
            "btrfs: incompatible feature {unknown:#x} ({what})"
        )));
    }
    let mut tree_fsid = [0u8; 16];
    let fsid_at = if incompat & INCOMPAT_METADATA_UUID != 0 {
        0x23b
    } else {
        0x20
    };
    tree_fsid.copy_from_slice(&b[fsid_at..fsid_at + 16]);
    let array_size = le32(b, 0xa0) as usize;
    if array_size > SYS_CHUNK_ARRAY_SIZE {
        return Err(corrupt(format!(
            "superblock: sys_chunk_array of {array_size} bytes"
        )));
    }
    let levels = [b[0xc6], b[0xc7]];
    if levels.iter().any(|&l| l >= super::tree::MAX_LEVEL) {
        return Err(corrupt(format!(
            "superblock: tree root levels {} and {}",
            levels[0], levels[1]
        )));
    }
    Ok(Superblock {
        tree_fsid,
        root: le64(b, 0x50),
        root_level: levels[0],
        chunk_root: le64(b, 0x58),
        chunk_root_level: levels[1],
        log_root: le64(b, 0x60),
        total_bytes: le64(b, 0x70),
        num_devices: le64(b, 0x88),
        sectorsize,
        nodesize,
        devid: le64(b, 0xc9),
        compat_ro: le64(b, 0xb4),
        sys_chunk_array: b[0x32b..0x32b + array_size].to_vec(),
    })
}

//! The superblock: geometry, features, the v5 CRC, and the figures `statfs` reports.

use alloc::format;
use alloc::string::String;
use vmchannel_proto::Usage;

use super::{be16, be32, be64, crc_ok};
use crate::fs::FsError;

/// `XFSB`.
pub const MAGIC: u32 = 0x5846_5342;

/// v4 `sb_versionnum` bits this reader cares about.
const VERSION_BORGBIT: u16 = 0x4000; // ASCII case-insensitive names
const VERSION_MOREBITS: u16 = 0x8000;
/// `sb_features2`: the ftype bit of a v4 filesystem.
const FEATURES2_FTYPE: u32 = 0x0200;

/// v5 incompat features.
const INCOMPAT_FTYPE: u32 = 0x01;
const INCOMPAT_SPINODES: u32 = 0x02;
const INCOMPAT_META_UUID: u32 = 0x04;
const INCOMPAT_BIGTIME: u32 = 0x08;
const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
const INCOMPAT_NREXT64: u32 = 0x20;
const INCOMPAT_EXCHRANGE: u32 = 0x40;
const INCOMPAT_PARENT: u32 = 0x80;
/// Incompat features read here: none of them changes how a file's data or a directory is
/// laid out beyond what this reader decodes (exchange-range and parent pointers live in
/// the log and in extended attributes).
const INCOMPAT_KNOWN: u32 = INCOMPAT_FTYPE
    | INCOMPAT_SPINODES
    | INCOMPAT_META_UUID
    | INCOMPAT_BIGTIME
    | INCOMPAT_NREXT64
    | INCOMPAT_EXCHRANGE
    | INCOMPAT_PARENT;

/// Most allocation groups accepted (a 1 PiB filesystem of 1 TiB groups; mkfs makes 4).
pub const MAX_AGS: u32 = 1 << 20;

/// What the reader needs of the primary superblock, checked.
#[derive(Clone, Debug)]
pub struct Superblock {
    /// 4 or 5.
    pub version: u8,
    /// Bytes per block.
    pub block_size: u32,
    /// log2 of `block_size`.
    pub block_log: u8,
    /// Blocks in the data section.
    pub dblocks: u64,
    /// Blocks per allocation group.
    pub ag_blocks: u32,
    /// Allocation groups.
    pub ag_count: u32,
    /// Bits of an AG block number in a filesystem block or inode number.
    pub ag_blk_log: u8,
    /// Bytes per inode.
    pub inode_size: u16,
    /// Bits of the inode-in-block index in an inode number.
    pub inop_blog: u8,
    /// The root directory's inode.
    pub root_ino: u64,
    /// Directory blocks are `block_size << dir_blk_log` bytes.
    pub dir_blk_log: u8,
    /// Directory entries carry a file type byte.
    pub ftype: bool,
    /// Names compare case-insensitively (ASCII), `-n version=ci`.
    pub ascii_ci: bool,
    /// Inode timestamps may be 64-bit nanosecond counts.
    pub bigtime: bool,
    /// Inodes may have 64-bit extent counters.
    pub nrext64: bool,
    /// The UUID stamped in v5 metadata (`sb_meta_uuid` or `sb_uuid`).
    pub meta_uuid: [u8; 16],
    /// First block of an internal log (0: external log).
    pub log_start: u64,
    /// Blocks in the log.
    pub log_blocks: u32,
    /// Inodes allocated, free; free data blocks.
    pub icount: u64,
    /// Free inodes.
    pub ifree: u64,
    /// Free data blocks.
    pub fdblocks: u64,
    /// `sb_imax_pct`.
    pub imax_pct: u8,
    /// Inodes per block.
    pub inopblock: u16,
    /// Bytes per sector (where the AG headers are).
    pub sect_size: u32,
    /// The reverse-mapping btree is present (v5 ro-compat).
    pub rmapbt: bool,
}

fn corrupt(what: &str) -> FsError {
    FsError::Corrupt(format!("/: xfs superblock: {what}"))
}

impl Superblock {
    /// Parses and checks the primary superblock in `sector` (the whole first sector: the
    /// v5 CRC covers `sb_sectsize` bytes).
    pub fn parse(sector: &[u8], device_size: u64) -> Result<Self, FsError> {
        if sector.len() < 512 || be32(sector, 0) != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let versionnum = be16(sector, 100);
        let version = (versionnum & 0xf) as u8;
        if version != 4 && version != 5 {
            return Err(FsError::Unsupported(format!(
                "/: xfs superblock version {version}"
            )));
        }
        let sect_size = be16(sector, 102) as usize;
        let sect_log = sector[121];
        if !(9..=15).contains(&sect_log) || sect_size != 1 << sect_log {
            return Err(corrupt(&format!("sector size {sect_size}")));
        }
        if version == 5 {
            let Some(covered) = sector.get(..sect_size) else {
                return Err(corrupt("short sector"));
            };
            if !crc_ok(covered, 224) {
                return Err(corrupt("bad CRC"));
            }
        }
        let block_size = be32(sector, 4);
        let block_log = sector[120];
        if !(9..=16).contains(&block_log) || block_size != 1 << block_log {
            return Err(corrupt(&format!("block size {block_size}")));
        }
        let inode_size = be16(sector, 104);
        let inode_log = sector[122];
        let inopblock = be16(sector, 106);
        let inop_blog = sector[123];
        if !(8..=11).contains(&inode_log)
            || inode_size as u32 != 1 << inode_log
            || inode_log > block_log
            || inop_blog != block_log - inode_log
            || inopblock as u32 != 1 << inop_blog
            || (version == 5 && inode_size < 512)
        {
            return Err(corrupt(&format!("inode size {inode_size}")));
        }
        let ag_blocks = be32(sector, 84);
        let ag_count = be32(sector, 88);
        let ag_blk_log = sector[124];
        let dblocks = be64(sector, 8);
        // AG block numbers must fit in agblklog bits, and the groups must cover the
        // data section exactly (the last may be short).
        if ag_blocks < 16
            || ag_blk_log > 31
            || ag_blocks as u64 > 1u64 << ag_blk_log
            || (ag_blk_log > 0 && ag_blocks as u64 <= 1u64 << (ag_blk_log - 1))
            || ag_count == 0
            || ag_count > MAX_AGS
            || u32::from(ag_blk_log) + u32::from(inop_blog) > 56
        {
            return Err(corrupt(&format!(
                "{ag_count} groups of {ag_blocks} blocks (agblklog {ag_blk_log})"
            )));
        }
        let full = (ag_count as u64 - 1) * ag_blocks as u64;
        if dblocks <= full || dblocks > full + ag_blocks as u64 {
            return Err(corrupt(&format!(
                "{dblocks} blocks in {ag_count} groups of {ag_blocks}"
            )));
        }
        if dblocks.saturating_mul(block_size as u64) > device_size {
            return Err(corrupt(&format!(
                "{dblocks} blocks of {block_size} bytes on a {device_size}-byte device"
            )));
        }
        let dir_blk_log = sector[192];
        if u32::from(block_log) + u32::from(dir_blk_log) > 16 {
            return Err(corrupt(&format!("directory block log {dir_blk_log}")));
        }
        if be64(sector, 16) != 0 {
            return Err(FsError::Unsupported(String::from(
                "/: xfs with a realtime section",
            )));
        }
        let features2 = if versionnum & VERSION_MOREBITS != 0 {
            be32(sector, 200)
        } else {
            0
        };
        let incompat = if version == 5 { be32(sector, 216) } else { 0 };
        if incompat & INCOMPAT_NEEDSREPAIR != 0 {
            return Err(FsError::Unsupported(String::from(
                "/: xfs needs xfs_repair (Linux refuses to mount it)",
            )));
        }
        if incompat & !INCOMPAT_KNOWN != 0 {
            return Err(FsError::Unsupported(format!(
                "/: xfs incompatible features {:#x}",
                incompat & !INCOMPAT_KNOWN
            )));
        }
        if sector[126] != 0 {
            return Err(corrupt("mkfs did not finish (sb_inprogress)"));
        }
        let mut meta_uuid = [0u8; 16];
        let at = if incompat & INCOMPAT_META_UUID != 0 {
            248
        } else {
            32
        };
        meta_uuid.copy_from_slice(&sector[at..at + 16]);
        Ok(Superblock {
            version,
            block_size,
            block_log,
            dblocks,
            ag_blocks,
            ag_count,
            ag_blk_log,
            inode_size,
            inop_blog,
            root_ino: be64(sector, 56),
            dir_blk_log,
            ftype: if version == 5 {
                incompat & INCOMPAT_FTYPE != 0
            } else {
                features2 & FEATURES2_FTYPE != 0
            },
            ascii_ci: versionnum & VERSION_BORGBIT != 0,
            bigtime: incompat & INCOMPAT_BIGTIME != 0,
            nrext64: incompat & INCOMPAT_NREXT64 != 0,
            meta_uuid,
            log_start: be64(sector, 48),
            log_blocks: be32(sector, 96),
            icount: be64(sector, 128),
            ifree: be64(sector, 136),
            fdblocks: be64(sector, 144),
            imax_pct: sector[127],
            inopblock,
            sect_size: sect_size as u32,
            rmapbt: version == 5 && be32(sector, 212) & 0x2 != 0,
        })
    }

    /// Bytes per directory block.
    pub fn dir_block_size(&self) -> usize {
        (self.block_size as usize) << self.dir_blk_log
    }

    /// The byte offset of `len` blocks at filesystem block `fsbno` (AG number and AG
    /// block), refused when they leave their allocation group.
    pub fn fsb_to_byte(&self, fsbno: u64, len: u64) -> Result<u64, FsError> {
        let agno = fsbno >> self.ag_blk_log;
        let agbno = fsbno & ((1u64 << self.ag_blk_log) - 1);
        if agno >= self.ag_count as u64
            || agbno
                .checked_add(len)
                .is_none_or(|end| end > self.ag_blocks as u64)
        {
            return Err(FsError::Corrupt(format!(
                "xfs block {fsbno:#x} (+{len}) is outside the allocation groups"
            )));
        }
        Ok((agno * self.ag_blocks as u64 + agbno) << self.block_log)
    }

    /// The byte offset of inode `ino`, refused when it is not in an allocation group.
    pub fn ino_to_byte(&self, ino: u64) -> Result<u64, FsError> {
        let fsbno = ino >> self.inop_blog;
        let index = ino & ((1u64 << self.inop_blog) - 1);
        if ino >> (self.ag_blk_log + self.inop_blog) >= self.ag_count as u64 {
            return Err(FsError::Corrupt(format!(
                "xfs inode {ino} is outside the allocation groups"
            )));
        }
        let block = self
            .fsb_to_byte(fsbno, 1)
            .map_err(|_| FsError::Corrupt(format!("xfs inode {ino} is outside its group")))?;
        Ok(block + index * self.inode_size as u64)
    }

    /// `statfs` as Linux's `xfs_fs_statfs` answers on a clean mount.
    ///
    /// Linux counts from its in-core counters, which on a clean mount are the superblock's.
    /// `f_blocks` leaves the internal log out; free blocks are `sb_fdblocks` less what
    /// `xfs_fdblocks_unavailable` keeps back: the allocator's set-aside
    /// (`xfs_alloc_set_aside`, 8 blocks per group) and the free-space btree blocks beyond
    /// their roots (`m_allocbt_blks`, from each group's AGF, `agf_btreeblks` less the rmapbt's
    /// share), given here as `allocbt_blocks` by the caller. Inodes: as Linux, the allocated
    /// count plus as many as the free blocks could hold, capped by `sb_imax_pct`. Matched
    /// against `stat -f` on fresh and on written filesystems in the tests. Not modelled: an
    /// unclean log (Linux recounts from the AGFs; here the superblock's counters stand).
    pub fn usage(&self, allocbt_blocks: u64) -> Usage {
        let log = if self.log_start != 0 {
            self.log_blocks as u64
        } else {
            0
        };
        let blocks = self.dblocks.saturating_sub(log);
        let set_aside = (self.ag_count as u64 * 8).saturating_add(allocbt_blocks);
        let bfree = self.fdblocks.min(self.dblocks).saturating_sub(set_aside);
        let fake = bfree.checked_shl(self.inop_blog as u32).unwrap_or(u64::MAX);
        let mut files = self.icount.saturating_add(fake).min((1u64 << 56) - 1);
        let maxicount = self.max_icount();
        if maxicount != 0 {
            files = files.min(maxicount);
        }
        files = files.max(self.icount);
        let used = self.icount.saturating_sub(self.ifree);
        Usage {
            block_size: self.block_size as u64,
            blocks,
            blocks_free: bfree,
            blocks_available: bfree,
            inodes: files,
            inodes_free: files.saturating_sub(used),
        }
    }

    /// `M_IGEO(mp)->maxicount`: the most inodes `sb_imax_pct` lets the filesystem have.
    fn max_icount(&self) -> u64 {
        if self.imax_pct == 0 {
            return 0;
        }
        // Inodes come in chunks of 64 (or a block, if more fit in one).
        let chunk_inos = (self.inopblock as u64).max(64);
        let chunk_blocks = (chunk_inos >> self.inop_blog).max(1);
        let blocks = (self.dblocks as u128 * self.imax_pct as u128 / 100) as u64;
        let blocks = blocks / chunk_blocks * chunk_blocks;
        blocks
            .checked_shl(self.inop_blog as u32)
            .unwrap_or(u64::MAX)
    }
}

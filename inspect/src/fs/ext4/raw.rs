//! What ext4-view keeps to itself, read straight from the disk: inode numbers, the raw
//! inode (link count, block count, device number, nanosecond times), directory entries with
//! their inode numbers, and extended attributes.
//!
//! ext4-view resolves paths and reads file contents; it has no API for these, and
//! libguestfs's `statns`, `ll`, `readdir` and `lxattrlist` need them. This is a small
//! read-only reader of the on-disk structures for that (ext4's layout as documented in the
//! kernel's `Documentation/filesystems/ext4`): group descriptors, inodes, extent trees and
//! ext2/3 block maps, directory blocks (linear and htree alike), and the in-inode and block xattr areas. It does not replay the journal (ext4-view does, in
//! memory): on a filesystem with an unreplayed journal these fields are as of the last
//! checkpoint.
//!
//! Every count comes from the disk and is bounded here: directories past [`MAX_DIR_BYTES`],
//! extent trees deeper than [`MAX_EXTENT_DEPTH`], xattr areas that overrun their block.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::super::{FsError, Time, makedev};
use crate::disk::{BlockDevice, le16, le32};

/// Largest directory read, in bytes (Linux's largedir limit is far above; no real directory
/// comes near this).
pub const MAX_DIR_BYTES: u64 = 64 << 20;
/// Deepest extent tree followed (ext4 allows 5 levels).
pub const MAX_EXTENT_DEPTH: u16 = 5;

/// `i_flags`: the file's blocks are in an extent tree.
const EXTENTS_FL: u32 = 0x80000;
/// `i_flags`: the directory is hash-indexed.
pub const INDEX_FL: u32 = 0x1000;
/// `i_flags`: `i_blocks` counts filesystem blocks, not 512-byte sectors.
const HUGE_FILE_FL: u32 = 0x40000;
/// `i_flags`: the data is inline, in `i_block` and the `system.data` xattr.
pub const INLINE_DATA_FL: u32 = 0x1000_0000;

/// The geometry of an ext2/3/4 filesystem, from its superblock.
pub struct Geometry {
    dev: Rc<dyn BlockDevice>,
    /// Block size in bytes.
    pub block_size: u64,
    inodes_per_group: u32,
    inodes_count: u32,
    inode_size: u64,
    desc_size: u64,
    /// First block of the group descriptor table.
    gdt_block: u64,
    groups: u64,
    is_64bit: bool,
    huge_file: bool,
    filetype: bool,
    /// `compat` has dir_index: directories read back in hash order.
    pub dir_index: bool,
    /// The directory hash: default version, seed, and whether names hash as unsigned chars.
    pub hash_version: u8,
    /// The hash seed.
    pub hash_seed: [u32; 4],
    /// Names hash as unsigned chars (`EXT2_FLAGS_UNSIGNED_HASH`).
    pub hash_unsigned: bool,
    /// Directory names are case-folded or encrypted: their hash is not the plain one.
    pub special_names: bool,
    /// The filesystem UUID.
    pub uuid: [u8; 16],
}

/// An inode as stat(2) shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawInode {
    /// Inode number.
    pub ino: u64,
    /// `st_mode`.
    pub mode: u32,
    /// Link count.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Device number (`st_rdev`, glibc's encoding) of a device node, else 0.
    pub rdev: u64,
    /// Last access.
    pub atime: Time,
    /// Last modification.
    pub mtime: Time,
    /// Last status change.
    pub ctime: Time,
    /// `i_flags`.
    pub flags: u32,
    /// The 60 bytes of `i_block` (extent tree root, block map, inline data or link target).
    i_block: [u8; 60],
    /// The whole on-disk inode (for the in-inode xattrs).
    bytes: Vec<u8>,
    /// Block of the external xattrs, if any.
    file_acl: u64,
}

/// One directory entry as stored: name and inode number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// Name bytes.
    pub name: Vec<u8>,
    /// Inode number.
    pub ino: u64,
    /// The entry's file type byte (1 file, 2 directory, ... 7 symlink; 0 unknown).
    pub file_type: u8,
}

fn corrupt(what: impl Into<String>) -> FsError {
    FsError::Corrupt(what.into())
}

/// A time from the 32-bit seconds and, where the inode has room for it, the `_extra` word
/// (two epoch bits, thirty nanosecond bits).
fn time(sec: u32, extra: Option<u32>) -> Time {
    let mut t = Time {
        sec: sec as i32 as i64,
        nsec: 0,
    };
    if let Some(x) = extra {
        t.sec += ((x & 3) as i64) << 32;
        let ns = x >> 2;
        t.nsec = if ns < 1_000_000_000 { ns } else { 0 };
    }
    t
}

impl Geometry {
    /// Reads the superblock of the filesystem on `dev`.
    pub fn open(dev: Rc<dyn BlockDevice>) -> Result<Self, FsError> {
        let mut sb = [0u8; 1024];
        dev.read_at(1024, &mut sb)
            .map_err(|e| FsError::Io(format!("superblock: {e}")))?;
        if le16(&sb, 0x38) != 0xef53 {
            return Err(corrupt("not an ext2/3/4 superblock"));
        }
        let log = le32(&sb, 0x18);
        if log > 6 {
            return Err(corrupt(format!("block size 2^{log} KiB")));
        }
        let block_size = 1024u64 << log;
        let incompat = le32(&sb, 0x60);
        let ro_compat = le32(&sb, 0x64);
        let is_64bit = incompat & 0x80 != 0;
        let inode_size = if le32(&sb, 0x4c) == 0 {
            128
        } else {
            le16(&sb, 0x58) as u64
        };
        if inode_size < 128 || inode_size > block_size || !inode_size.is_power_of_two() {
            return Err(corrupt(format!("inode size {inode_size}")));
        }
        let desc_size = if is_64bit { le16(&sb, 0xfe) as u64 } else { 32 };
        if !(32..=1024).contains(&desc_size) {
            return Err(corrupt(format!("group descriptor size {desc_size}")));
        }
        let blocks = le32(&sb, 4) as u64
            | if is_64bit {
                (le32(&sb, 0x150) as u64) << 32
            } else {
                0
            };
        let first = le32(&sb, 0x14) as u64;
        let per_group = le32(&sb, 0x20) as u64;
        let inodes_per_group = le32(&sb, 0x28);
        if per_group == 0 || inodes_per_group == 0 || blocks <= first {
            return Err(corrupt("empty block groups"));
        }
        let groups = (blocks - first).div_ceil(per_group);
        let mut hash_seed = [0u32; 4];
        for (i, s) in hash_seed.iter_mut().enumerate() {
            *s = le32(&sb, 0xec + 4 * i);
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&sb[0x68..0x78]);
        Ok(Self {
            dev,
            block_size,
            inodes_per_group,
            inodes_count: le32(&sb, 0),
            inode_size,
            desc_size,
            gdt_block: first + 1,
            groups,
            is_64bit,
            huge_file: ro_compat & 0x8 != 0,
            filetype: incompat & 0x2 != 0,
            dir_index: le32(&sb, 0x5c) & 0x20 != 0,
            hash_version: sb[0xfc],
            hash_seed,
            hash_unsigned: le32(&sb, 0x160) & 0x2 != 0,
            special_names: incompat & (0x10000 | 0x20000) != 0,
            uuid,
        })
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        self.dev
            .read_at(offset, buf)
            .map_err(|e| FsError::Io(format!("ext4 at byte {offset}: {e}")))
    }

    fn block(&self, block: u64) -> Result<Vec<u8>, FsError> {
        let mut b = vec![0u8; self.block_size as usize];
        let at = block
            .checked_mul(self.block_size)
            .ok_or_else(|| corrupt(format!("block {block}")))?;
        self.read(at, &mut b)?;
        Ok(b)
    }

    /// Reads inode `ino`.
    pub fn inode(&self, ino: u64) -> Result<RawInode, FsError> {
        if ino == 0 || ino > self.inodes_count as u64 {
            return Err(corrupt(format!("inode {ino} out of range")));
        }
        let group = (ino - 1) / self.inodes_per_group as u64;
        let index = (ino - 1) % self.inodes_per_group as u64;
        if group >= self.groups {
            return Err(corrupt(format!("inode {ino}: group {group}")));
        }
        let mut gd = vec![0u8; self.desc_size as usize];
        self.read(
            self.gdt_block * self.block_size + group * self.desc_size,
            &mut gd,
        )?;
        let table = le32(&gd, 8) as u64
            | if self.is_64bit && self.desc_size >= 64 {
                (le32(&gd, 0x28) as u64) << 32
            } else {
                0
            };
        let mut b = vec![0u8; self.inode_size as usize];
        let at = table
            .checked_mul(self.block_size)
            .and_then(|t| t.checked_add(index * self.inode_size))
            .ok_or_else(|| corrupt(format!("inode {ino}: table at block {table}")))?;
        self.read(at, &mut b)?;
        Ok(self.parse_inode(ino, b))
    }

    fn parse_inode(&self, ino: u64, b: Vec<u8>) -> RawInode {
        let mode = le16(&b, 0) as u32;
        let flags = le32(&b, 0x20);
        let extra_isize = if b.len() > 128 {
            (le16(&b, 0x80) as usize).min(b.len() - 128)
        } else {
            0
        };
        // An `_extra` word exists when the inode's extra part covers it.
        let extra = |at: usize| (at + 4 <= 128 + extra_isize).then(|| le32(&b, at));
        let mut blocks = le32(&b, 0x1c) as u64;
        if self.huge_file {
            blocks |= (le16(&b, 0x74) as u64) << 32;
            if flags & HUGE_FILE_FL != 0 {
                blocks = blocks.saturating_mul(self.block_size / 512);
            }
        }
        let mut i_block = [0u8; 60];
        i_block.copy_from_slice(&b[0x28..0x64]);
        let kind = mode & 0o170000;
        let rdev = if kind == 0o020000 || kind == 0o060000 {
            let old = le32(&i_block, 0);
            if old != 0 {
                makedev(((old >> 8) & 0xff) as u64, (old & 0xff) as u64)
            } else {
                let new = le32(&i_block, 4) as u64;
                makedev((new & 0xfff00) >> 8, (new & 0xff) | ((new >> 12) & 0xfff00))
            }
        } else {
            0
        };
        RawInode {
            ino,
            mode,
            nlink: le16(&b, 0x1a) as u64,
            uid: le16(&b, 2) as u32 | (le16(&b, 0x78) as u32) << 16,
            gid: le16(&b, 0x18) as u32 | (le16(&b, 0x7a) as u32) << 16,
            size: le32(&b, 4) as u64 | (le32(&b, 0x6c) as u64) << 32,
            blocks,
            rdev,
            atime: time(le32(&b, 0x8), extra(0x8c)),
            mtime: time(le32(&b, 0x10), extra(0x88)),
            ctime: time(le32(&b, 0xc), extra(0x84)),
            flags,
            i_block,
            file_acl: le32(&b, 0x68) as u64
                | if self.is_64bit {
                    (le16(&b, 0x76) as u64) << 32
                } else {
                    0
                },
            bytes: b,
        }
    }

    /// The physical blocks of `inode`'s first `count` logical blocks, in order (`None` for a
    /// hole or an unwritten extent).
    fn blocks_of(&self, inode: &RawInode, count: u64) -> Result<Vec<Option<u64>>, FsError> {
        let mut out = vec![None; count as usize];
        if inode.flags & EXTENTS_FL != 0 {
            self.extents(&inode.i_block, MAX_EXTENT_DEPTH + 1, &mut out)?;
        } else {
            let per = self.block_size / 4;
            for i in 0..12u64.min(count) {
                out[i as usize] = Some(le32(&inode.i_block, 4 * i as usize) as u64);
            }
            let mut base = 12;
            for (level, slot) in [(1u32, 12usize), (2, 13), (3, 14)] {
                if base >= count {
                    break;
                }
                let root = le32(&inode.i_block, 4 * slot) as u64;
                self.indirect(root, level, base, &mut out)?;
                base = base.saturating_add(per.pow(level));
            }
        }
        for b in out.iter_mut() {
            if *b == Some(0) {
                *b = None;
            }
        }
        Ok(out)
    }

    /// The block map below indirect block `block` (`level` levels of pointers) for the logical
    /// blocks from `base`.
    fn indirect(
        &self,
        block: u64,
        level: u32,
        base: u64,
        out: &mut [Option<u64>],
    ) -> Result<(), FsError> {
        if block == 0 || base >= out.len() as u64 {
            return Ok(());
        }
        let per = self.block_size / 4;
        let span = per.pow(level - 1);
        let b = self.block(block)?;
        for i in 0..per {
            let first = base + i * span;
            if first >= out.len() as u64 {
                break;
            }
            let next = le32(&b, 4 * i as usize) as u64;
            if level == 1 {
                out[first as usize] = Some(next);
            } else {
                self.indirect(next, level - 1, first, out)?;
            }
        }
        Ok(())
    }

    /// The extents below the extent-tree node `node` (at most `depth_left` levels).
    fn extents(
        &self,
        node: &[u8],
        depth_left: u16,
        out: &mut [Option<u64>],
    ) -> Result<(), FsError> {
        if le16(node, 0) != 0xf30a {
            return Err(corrupt("bad extent header"));
        }
        let entries = le16(node, 2) as usize;
        let depth = le16(node, 6);
        if depth >= depth_left || 12 + entries * 12 > node.len() {
            return Err(corrupt("extent tree too deep or overfull"));
        }
        for e in 0..entries {
            let at = 12 + e * 12;
            let lblk = le32(node, at) as u64;
            if depth == 0 {
                let mut len = le16(node, at + 4) as u64;
                let unwritten = len > 32768;
                if unwritten {
                    len -= 32768;
                }
                let start = le32(node, at + 8) as u64 | (le16(node, at + 6) as u64) << 32;
                if unwritten {
                    continue;
                }
                for i in 0..len {
                    match out.get_mut((lblk + i) as usize) {
                        Some(slot) => *slot = Some(start + i),
                        None => break,
                    }
                }
            } else {
                if lblk >= out.len() as u64 {
                    continue;
                }
                let child = le32(node, at + 4) as u64 | (le16(node, at + 8) as u64) << 32;
                let b = self.block(child)?;
                self.extents(&b, depth, out)?;
            }
        }
        Ok(())
    }

    /// The first block of directory `dir` (its htree root, when indexed).
    pub fn first_block(&self, dir: &RawInode) -> Result<Option<Vec<u8>>, FsError> {
        if dir.size == 0 || dir.flags & INLINE_DATA_FL != 0 {
            return Ok(None);
        }
        match self.blocks_of(dir, 1)?.first().copied().flatten() {
            Some(b) => Ok(Some(self.block(b)?)),
            None => Ok(None),
        }
    }

    /// The entries of directory `dir` in on-disk order, `.` and `..` included; with
    /// `hashes`, also whether the directory is hash-indexed.
    pub fn dir_entries(&self, dir: &RawInode) -> Result<Vec<RawEntry>, FsError> {
        if dir.mode & 0o170000 != 0o040000 {
            return Err(FsError::NotADirectory(format!("inode {}", dir.ino)));
        }
        let mut out = Vec::new();
        if dir.flags & INLINE_DATA_FL != 0 {
            // ext4-view refuses filesystems with inline data, so none reaches here.
            return Err(FsError::Unsupported(format!(
                "inline directory inode {}",
                dir.ino
            )));
        }
        if dir.size > MAX_DIR_BYTES {
            return Err(FsError::TooLarge(format!(
                "directory inode {} of {} bytes",
                dir.ino, dir.size
            )));
        }
        let count = dir.size.div_ceil(self.block_size);
        for b in self.blocks_of(dir, count)?.into_iter().flatten() {
            let block = self.block(b)?;
            self.parse_entries(&block, &mut out)?;
        }
        Ok(out)
    }

    /// Appends the live entries of one directory block (or inline area).
    fn parse_entries(&self, b: &[u8], out: &mut Vec<RawEntry>) -> Result<(), FsError> {
        let mut at = 0usize;
        while at + 8 <= b.len() {
            let ino = le32(b, at) as u64;
            let mut rec_len = le16(b, at + 4) as usize;
            if rec_len == 0 || rec_len == 65535 && b.len() == 65536 {
                rec_len = 65536;
            }
            let name_len = if self.filetype {
                b[at + 6] as usize
            } else {
                le16(b, at + 6) as usize
            };
            if rec_len < 8
                || !rec_len.is_multiple_of(4)
                || at + rec_len > b.len()
                || 8 + name_len > rec_len
            {
                return Err(corrupt(format!("directory entry at offset {at}")));
            }
            if ino != 0 && name_len != 0 {
                out.push(RawEntry {
                    name: b[at + 8..at + 8 + name_len].to_vec(),
                    ino,
                    file_type: if self.filetype { b[at + 7] } else { 0 },
                });
            }
            at += rec_len;
        }
        Ok(())
    }

    /// The extended attributes of `inode`: in the inode, then in its xattr block, with their
    /// full names (`user.x`, `security.selinux`, `system.posix_acl_access`...).
    pub fn xattrs(&self, inode: &RawInode) -> Result<Vec<(String, Vec<u8>)>, FsError> {
        let mut out = Vec::new();
        let b = &inode.bytes;
        if b.len() > 128 {
            let extra = le16(b, 0x80) as usize;
            let start = 128 + extra;
            if start + 4 <= b.len() && le32(b, start) == 0xea02_0000 {
                // Values are relative to the first entry.
                self.xattr_entries(&b[start + 4..], 0, &mut out)?;
            }
        }
        if inode.file_acl != 0 {
            let blk = self.block(inode.file_acl)?;
            if le32(&blk, 0) != 0xea02_0000 {
                return Err(corrupt(format!(
                    "xattr block {} of inode {}",
                    inode.file_acl, inode.ino
                )));
            }
            // Values are relative to the block start; entries start at 32.
            self.xattr_entries(&blk, 32, &mut out)?;
        }
        Ok(out)
    }

    /// Parses xattr entries from `area[first..]`; value offsets are relative to `area`.
    fn xattr_entries(
        &self,
        area: &[u8],
        first: usize,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), FsError> {
        let mut at = first;
        while at + 16 <= area.len() && le32(area, at) != 0 {
            let name_len = area[at] as usize;
            let index = area[at + 1];
            let value_offs = le16(area, at + 2) as usize;
            let value_inum = le32(area, at + 4);
            let value_size = le32(area, at + 8) as usize;
            let name = area
                .get(at + 16..at + 16 + name_len)
                .ok_or_else(|| corrupt("xattr name past its area"))?;
            let prefix = match index {
                1 => "user.",
                2 => "system.posix_acl_access",
                3 => "system.posix_acl_default",
                4 => "trusted.",
                6 => "security.",
                7 => "system.",
                8 => "system.richacl",
                _ => "",
            };
            let value = if value_inum != 0 {
                // The value lives in an inode of its own (ea_inode).
                let vi = self.inode(value_inum as u64)?;
                let count = (value_size as u64).div_ceil(self.block_size);
                if value_size as u64 > MAX_DIR_BYTES {
                    return Err(FsError::TooLarge(format!("xattr of {value_size} bytes")));
                }
                let mut v = Vec::with_capacity(value_size);
                for b in self.blocks_of(&vi, count)? {
                    match b {
                        Some(b) => v.extend_from_slice(&self.block(b)?),
                        None => v.resize(v.len() + self.block_size as usize, 0),
                    }
                }
                v.truncate(value_size);
                v
            } else {
                area.get(value_offs..value_offs + value_size)
                    .ok_or_else(|| corrupt("xattr value past its area"))?
                    .to_vec()
            };
            out.push((format!("{prefix}{}", String::from_utf8_lossy(name)), value));
            at += (16 + name_len).div_ceil(4) * 4;
        }
        Ok(())
    }
}

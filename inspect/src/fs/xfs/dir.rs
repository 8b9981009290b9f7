//! Directories: shortform (in the inode), block, leaf and node.
//!
//! Block, leaf and node directories are read as Linux's `readdir` reads them: the data
//! blocks in file order (the data space below 32 GiB), each entry where it lies; the hash
//! index (leaf blocks) and the free-space index above it are not read, so lookups scan the
//! entries too. Each data block is checked: magic, on v5 the CRC, the block's own address
//! and owner; each entry's tag must point back at it, and entries and free regions must
//! tile the block.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::bmap::{self, Extent};
use super::inode::{FMT_BTREE, FMT_EXTENTS, FMT_LOCAL, Inode};
use super::sb::Superblock;
use super::{be16, be32, be64, crc_ok};
use crate::disk::BlockDevice;
use crate::fs::FsError;

/// Most entries one directory may have here.
pub const MAX_ENTRIES: usize = 1 << 18;
/// Most data blocks read for one directory (with 4 KiB blocks, 256 MiB of entries).
pub const MAX_DATA_BLOCKS: usize = 1 << 16;
/// Where the leaf (hash) part of a directory's file space starts.
const LEAF_OFFSET: u64 = 32 << 30;

const XD2B: u32 = 0x5844_3242;
const XD2D: u32 = 0x5844_3244;
const XDB3: u32 = 0x5844_4233;
const XDD3: u32 = 0x5844_4433;

/// One directory entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// Name bytes.
    pub name: Vec<u8>,
    /// Inode number.
    pub ino: u64,
    /// The entry's file type (`XFS_DIR3_FT_*`, 0 without the ftype feature).
    pub ftype: u8,
}

/// What to do with each entry: keep going, or stop (found).
type Visit<'a> = &'a mut dyn FnMut(RawEntry) -> bool;

/// Calls `visit` on every entry of directory `dir`, `.` and `..` included, in readdir
/// order, until it returns `true`.
pub fn walk(
    dev: &dyn BlockDevice,
    sb: &Superblock,
    dir: &Inode,
    visit: Visit<'_>,
) -> Result<(), FsError> {
    match dir.format {
        FMT_LOCAL => shortform(sb, dir, visit),
        FMT_EXTENTS | FMT_BTREE => {
            let ext = bmap::extents(dev, sb, dir)?;
            blocks(dev, sb, dir, &ext, visit)
        }
        f => Err(FsError::Corrupt(format!(
            "xfs directory {}: data fork format {f}",
            dir.ino
        ))),
    }
}

fn shortform(sb: &Superblock, dir: &Inode, visit: Visit<'_>) -> Result<(), FsError> {
    let bad = |what: &str| FsError::Corrupt(format!("xfs directory {}: {what}", dir.ino));
    let f = &dir.fork;
    let size = usize::try_from(dir.size).unwrap_or(usize::MAX);
    if size > f.len() || size < 6 {
        return Err(bad(&format!("shortform size {}", dir.size)));
    }
    let f = &f[..size];
    let count = f[0] as usize;
    let wide = f[1] != 0;
    let ino_len = if wide { 8 } else { 4 };
    let ino_at = |at: usize| -> Option<u64> {
        let b = f.get(at..at + ino_len)?;
        Some(if wide { be64(b, 0) } else { be32(b, 0) as u64 })
    };
    let parent = ino_at(2).ok_or_else(|| bad("short header"))?;
    if visit(RawEntry {
        name: b".".to_vec(),
        ino: dir.ino,
        ftype: if sb.ftype { 2 } else { 0 },
    }) || visit(RawEntry {
        name: b"..".to_vec(),
        ino: parent,
        ftype: if sb.ftype { 2 } else { 0 },
    }) {
        return Ok(());
    }
    let mut pos = 2 + ino_len;
    let ft = usize::from(sb.ftype);
    for _ in 0..count {
        let namelen = *f.get(pos).ok_or_else(|| bad("entry past the fork"))? as usize;
        let name_at = pos + 3;
        let name = f
            .get(name_at..name_at + namelen)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("entry name past the fork"))?
            .to_vec();
        let ftype = if sb.ftype {
            *f.get(name_at + namelen)
                .ok_or_else(|| bad("entry past the fork"))?
        } else {
            0
        };
        let at = name_at + namelen + ft;
        let ino = ino_at(at).ok_or_else(|| bad("entry past the fork"))?;
        pos = at + ino_len;
        if visit(RawEntry { name, ino, ftype }) {
            return Ok(());
        }
    }
    Ok(())
}

fn blocks(
    dev: &dyn BlockDevice,
    sb: &Superblock,
    dir: &Inode,
    ext: &[Extent],
    visit: Visit<'_>,
) -> Result<(), FsError> {
    let bad = |what: &str| FsError::Corrupt(format!("xfs directory {}: {what}", dir.ino));
    let dblog = sb.dir_blk_log;
    let leaf_first = LEAF_OFFSET >> sb.block_log;
    let dbsize = sb.dir_block_size();
    let mut buf = vec![0u8; dbsize];
    let mut last: Option<u64> = None;
    let mut read = 0usize;
    let mut entries = 0usize;
    for e in ext {
        if e.off >= leaf_first {
            break;
        }
        let end = (e.off + e.len).min(leaf_first);
        let mut db = e.off >> dblog;
        while db << dblog < end {
            if last.is_some_and(|l| l >= db) {
                db += 1;
                continue;
            }
            last = Some(db);
            read += 1;
            if read > MAX_DATA_BLOCKS {
                return Err(FsError::TooLarge(format!(
                    "xfs directory {}: more than {MAX_DATA_BLOCKS} blocks",
                    dir.ino
                )));
            }
            let first = db << dblog;
            let Some(phys) = bmap::map_block(ext, first) else {
                return Err(bad(&format!("directory block {db} starts in a hole")));
            };
            bmap::read_mapped(dev, sb, ext, first << sb.block_log, &mut buf)?;
            let daddr = sb.fsb_to_byte(phys, 1)? / 512;
            if data_block(sb, dir.ino, db, daddr, &buf, &mut entries, visit)? {
                return Ok(());
            }
            db += 1;
        }
    }
    Ok(())
}

/// Walks one data (or single-block) directory block; `true` when `visit` stopped.
fn data_block(
    sb: &Superblock,
    ino: u64,
    db: u64,
    daddr: u64,
    b: &[u8],
    entries: &mut usize,
    visit: Visit<'_>,
) -> Result<bool, FsError> {
    let bad = |what: &str| FsError::Corrupt(format!("xfs directory {ino}, block {db}: {what}"));
    let magic = be32(b, 0);
    let (hdr, single) = match (sb.version, magic) {
        (5, XDB3) => (64, true),
        (5, XDD3) => (64, false),
        (4, XD2B) => (16, true),
        (4, XD2D) => (16, false),
        _ => return Err(bad(&format!("bad magic {magic:#x}"))),
    };
    if single && db != 0 {
        return Err(bad("a single-block header past the first block"));
    }
    if sb.version == 5 {
        if !crc_ok(b, 4) {
            return Err(bad("bad CRC"));
        }
        if be64(b, 8) != daddr || be64(b, 40) != ino || b[24..40] != sb.meta_uuid {
            return Err(bad("not this directory's block"));
        }
    }
    let end = if single {
        // The tail: leaf entry count and stale count; the leaf entries precede it.
        let count = be32(b, b.len() - 8) as usize;
        count
            .checked_mul(8)
            .and_then(|n| b.len().checked_sub(8 + n))
            .filter(|&e| e >= hdr)
            .ok_or_else(|| bad(&format!("{count} leaf entries in a block")))?
    } else {
        b.len()
    };
    let ft = usize::from(sb.ftype);
    let mut pos = hdr;
    while pos < end {
        if end - pos < 8 {
            return Err(bad(&format!("{} stray bytes at {pos}", end - pos)));
        }
        if be16(b, pos) == 0xffff {
            let len = be16(b, pos + 2) as usize;
            if len < 8
                || !len.is_multiple_of(8)
                || len > end - pos
                || be16(b, pos + len - 2) as usize != pos
            {
                return Err(bad(&format!("free region of {len} bytes at {pos}")));
            }
            pos += len;
            continue;
        }
        let child = be64(b, pos);
        let namelen = b.get(pos + 8).copied().unwrap_or(0) as usize;
        let len = (8 + 1 + namelen + ft + 2).next_multiple_of(8);
        if namelen == 0 || len > end - pos || be16(b, pos + len - 2) as usize != pos {
            return Err(bad(&format!("entry at {pos}")));
        }
        let name = b[pos + 9..pos + 9 + namelen].to_vec();
        let ftype = if sb.ftype { b[pos + 9 + namelen] } else { 0 };
        pos += len;
        *entries += 1;
        if *entries > MAX_ENTRIES {
            return Err(FsError::TooLarge(format!(
                "xfs directory {ino}: more than {MAX_ENTRIES} entries"
            )));
        }
        if visit(RawEntry {
            name,
            ino: child,
            ftype,
        }) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The entries of directory `dir`, `.` and `..` included, in readdir order.
pub fn list(dev: &dyn BlockDevice, sb: &Superblock, dir: &Inode) -> Result<Vec<RawEntry>, FsError> {
    let mut out = Vec::new();
    walk(dev, sb, dir, &mut |e| {
        out.push(e);
        false
    })?;
    Ok(out)
}

/// The inode number `name` names in directory `dir`.
pub fn lookup(
    dev: &dyn BlockDevice,
    sb: &Superblock,
    dir: &Inode,
    name: &[u8],
) -> Result<Option<u64>, FsError> {
    let mut found = None;
    walk(dev, sb, dir, &mut |e| {
        let hit = if sb.ascii_ci {
            e.name.eq_ignore_ascii_case(name)
        } else {
            e.name == name
        };
        if hit {
            found = Some(e.ino);
        }
        hit
    })?;
    Ok(found)
}

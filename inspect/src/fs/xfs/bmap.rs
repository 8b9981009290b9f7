//! Where a file's blocks are: the data fork's extent list, inline or in a block-map B+tree
//! (bmbt), and reads through it.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::inode::{FMT_BTREE, FMT_EXTENTS, Inode};
use super::sb::Superblock;
use super::{be16, be32, be64, crc_ok};
use crate::disk::BlockDevice;
use crate::fs::FsError;

/// One mapping: `len` blocks of the file from block `off` are at filesystem block `block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// First file block.
    pub off: u64,
    /// First filesystem block (AG number and AG block).
    pub block: u64,
    /// Blocks.
    pub len: u64,
    /// Preallocated, reads as zeros.
    pub unwritten: bool,
}

/// Most extents one file may have here (8 MiB of mappings). More is refused as too large.
pub const MAX_EXTENTS: usize = 1 << 18;
/// Most bmbt blocks read for one file.
pub const MAX_BTREE_BLOCKS: usize = 1 << 14;
/// Deepest bmbt accepted (Linux's `XFS_BTREE_MAXLEVELS`).
pub const MAX_LEVELS: u16 = 9;

/// `BMAP` and `BMA3`.
const BMAP_MAGIC: u32 = 0x424d_4150;
const BMA3_MAGIC: u32 = 0x424d_4133;

fn decode(rec: &[u8]) -> Extent {
    let l0 = be64(rec, 0);
    let l1 = be64(rec, 8);
    Extent {
        unwritten: l0 >> 63 != 0,
        off: (l0 >> 9) & ((1 << 54) - 1),
        block: ((l0 & 0x1ff) << 43) | (l1 >> 21),
        len: l1 & ((1 << 21) - 1),
    }
}

struct Collector<'a> {
    sb: &'a Superblock,
    ino: u64,
    out: Vec<Extent>,
    blocks_read: usize,
}

impl Collector<'_> {
    fn bad(&self, what: &str) -> FsError {
        FsError::Corrupt(format!("xfs inode {}: extent map: {what}", self.ino))
    }

    /// Adds records, which must go forward through the file without overlapping and stay
    /// inside the allocation groups.
    fn push(&mut self, recs: &[u8]) -> Result<(), FsError> {
        for rec in recs.chunks_exact(16) {
            let e = decode(rec);
            if e.len == 0 {
                return Err(self.bad("an empty extent"));
            }
            if let Some(last) = self.out.last()
                && e.off < last.off + last.len
            {
                return Err(self.bad(&format!(
                    "extent at file block {} overlaps or precedes the one at {}",
                    e.off, last.off
                )));
            }
            if e.off.checked_add(e.len).is_none_or(|end| end > 1 << 54) {
                return Err(self.bad("an extent past the largest file offset"));
            }
            self.sb.fsb_to_byte(e.block, e.len)?;
            if self.out.len() >= MAX_EXTENTS {
                return Err(FsError::TooLarge(format!(
                    "xfs inode {}: more than {MAX_EXTENTS} extents",
                    self.ino
                )));
            }
            self.out.push(e);
        }
        Ok(())
    }

    /// Walks the subtree at `fsbno`, whose level must be `level`, in key order.
    fn node(&mut self, dev: &dyn BlockDevice, fsbno: u64, level: u16) -> Result<(), FsError> {
        self.blocks_read += 1;
        if self.blocks_read > MAX_BTREE_BLOCKS {
            return Err(self.bad(&format!("more than {MAX_BTREE_BLOCKS} btree blocks")));
        }
        let at = self.sb.fsb_to_byte(fsbno, 1)?;
        let mut b = vec![0u8; self.sb.block_size as usize];
        dev.read_at(at, &mut b)
            .map_err(|e| FsError::Io(format!("xfs inode {}: bmbt: {e}", self.ino)))?;
        let hdr = if self.sb.version == 5 {
            if be32(&b, 0) != BMA3_MAGIC {
                return Err(self.bad(&format!("bad magic in btree block {fsbno}")));
            }
            if !crc_ok(&b, 64) {
                return Err(self.bad(&format!("bad CRC in btree block {fsbno}")));
            }
            if be64(&b, 24) != at / 512 || be64(&b, 56) != self.ino {
                return Err(self.bad(&format!("btree block {fsbno} is not this file's")));
            }
            72
        } else {
            if be32(&b, 0) != BMAP_MAGIC {
                return Err(self.bad(&format!("bad magic in btree block {fsbno}")));
            }
            24
        };
        if be16(&b, 4) != level {
            return Err(self.bad(&format!(
                "btree block {fsbno} at level {} where {level} was due",
                be16(&b, 4)
            )));
        }
        let n = be16(&b, 6) as usize;
        let room = b.len() - hdr;
        if level == 0 {
            if n == 0 || n > room / 16 {
                return Err(self.bad(&format!("{n} records in a leaf")));
            }
            return self.push(&b[hdr..hdr + n * 16]);
        }
        let maxrecs = room / 16;
        if n == 0 || n > maxrecs {
            return Err(self.bad(&format!("{n} pointers in a node")));
        }
        let ptrs = hdr + maxrecs * 8;
        for i in 0..n {
            self.node(dev, be64(&b, ptrs + i * 8), level - 1)?;
        }
        Ok(())
    }
}

/// Every data-fork extent of `inode` (an extent list or a bmbt), in file order.
pub fn extents(
    dev: &dyn BlockDevice,
    sb: &Superblock,
    inode: &Inode,
) -> Result<Vec<Extent>, FsError> {
    let mut c = Collector {
        sb,
        ino: inode.ino,
        out: Vec::new(),
        blocks_read: 0,
    };
    match inode.format {
        FMT_EXTENTS => {
            // `inode::read` checked that the count fits the fork.
            let n = inode.nextents as usize;
            c.push(inode.fork.get(..n * 16).unwrap_or(&[]))?;
        }
        FMT_BTREE => {
            // The root in the inode: level, count, then keys and pointers sized to the fork.
            let level = be16(&inode.fork, 0);
            let n = be16(&inode.fork, 2) as usize;
            let maxrecs = inode.fork.len().saturating_sub(4) / 16;
            if level == 0 || level > MAX_LEVELS {
                return Err(c.bad(&format!("btree of {level} levels")));
            }
            if n == 0 || n > maxrecs {
                return Err(c.bad(&format!("{n} pointers in the root")));
            }
            let ptrs = 4 + maxrecs * 8;
            for i in 0..n {
                c.node(dev, be64(&inode.fork, ptrs + i * 8), level - 1)?;
            }
        }
        _ => return Err(c.bad("not an extent list or a btree")),
    }
    Ok(c.out)
}

/// The filesystem block holding file block `fblock`, if it is mapped and written.
pub fn map_block(extents: &[Extent], fblock: u64) -> Option<u64> {
    let i = extents.partition_point(|e| e.off + e.len <= fblock);
    let e = extents.get(i)?;
    (e.off <= fblock && !e.unwritten).then(|| e.block + (fblock - e.off))
}

/// Reads `buf.len()` bytes of the file mapped by `extents` from byte `pos`, holes and
/// unwritten extents as zeros; the caller keeps the read inside the file's size.
pub fn read_mapped(
    dev: &dyn BlockDevice,
    sb: &Superblock,
    extents: &[Extent],
    pos: u64,
    buf: &mut [u8],
) -> Result<(), FsError> {
    let bs = sb.block_size as u64;
    let mut done = 0usize;
    while done < buf.len() {
        let p = pos + done as u64;
        let fblock = p >> sb.block_log;
        let in_block = p & (bs - 1);
        // A run of contiguous mapped (or unmapped) blocks at once.
        let i = extents.partition_point(|e| e.off + e.len <= fblock);
        let (phys, run_blocks) = match extents.get(i) {
            Some(e) if e.off <= fblock => (
                (!e.unwritten).then(|| e.block + (fblock - e.off)),
                e.off + e.len - fblock,
            ),
            Some(e) => (None, e.off - fblock),
            None => (None, u64::MAX >> sb.block_log),
        };
        let run_bytes = run_blocks.saturating_mul(bs).saturating_sub(in_block);
        let n = (buf.len() - done).min(usize::try_from(run_bytes).unwrap_or(usize::MAX));
        let dst = &mut buf[done..done + n];
        match phys {
            None => dst.fill(0),
            Some(fsbno) => {
                let start = sb.fsb_to_byte(fsbno, 1)? + in_block;
                dev.read_at(start, dst)
                    .map_err(|e| FsError::Io(format!("xfs: file data: {e}")))?;
            }
        }
        done += n;
    }
    Ok(())
}

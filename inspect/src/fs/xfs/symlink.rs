//! Symbolic links: inline in the inode, or in blocks ("remote").

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::bmap;
use super::inode::{FMT_LOCAL, Inode};
use super::sb::Superblock;
use super::{be32, be64, crc_ok};
use crate::disk::BlockDevice;
use crate::fs::FsError;

/// Longest target XFS stores (`XFS_SYMLINK_MAXLEN`); Linux refuses longer ones as corrupt.
pub const MAX_LEN: u64 = 1024;
/// `XSLM`, the v5 remote symlink block header.
const XSLM: u32 = 0x5853_4c4d;
/// Bytes of that header.
const HDR: usize = 56;

/// The target of symlink `inode`.
pub fn target(dev: &dyn BlockDevice, sb: &Superblock, inode: &Inode) -> Result<Vec<u8>, FsError> {
    let bad = |what: &str| FsError::Corrupt(format!("xfs symlink {}: {what}", inode.ino));
    if inode.size == 0 || inode.size > MAX_LEN {
        return Err(bad(&format!("target of {} bytes", inode.size)));
    }
    let len = inode.size as usize;
    if inode.format == FMT_LOCAL {
        return inode.fork.get(..len).map(<[u8]>::to_vec).ok_or_else(|| {
            bad(&format!(
                "{len}-byte target in a {}-byte fork",
                inode.fork.len()
            ))
        });
    }
    let ext = bmap::extents(dev, sb, inode)?;
    let bs = sb.block_size as usize;
    let per_block = if sb.version == 5 { bs - HDR } else { bs };
    let mut out = Vec::with_capacity(len);
    let mut block = vec![0u8; bs];
    let mut fblock = 0u64;
    while out.len() < len {
        let phys = bmap::map_block(&ext, fblock)
            .ok_or_else(|| bad(&format!("block {fblock} of the target is not mapped")))?;
        let at = sb.fsb_to_byte(phys, 1)?;
        dev.read_at(at, &mut block)
            .map_err(|e| FsError::Io(format!("xfs symlink {}: {e}", inode.ino)))?;
        let want = (len - out.len()).min(per_block);
        if sb.version == 5 {
            if be32(&block, 0) != XSLM || !crc_ok(&block, 12) {
                return Err(bad("bad magic or CRC in a target block"));
            }
            if be32(&block, 4) as usize != out.len()
                || be32(&block, 8) as usize != want
                || be64(&block, 32) != inode.ino
                || be64(&block, 40) != at / 512
                || block[16..32] != sb.meta_uuid
            {
                return Err(bad("a target block that is not this link's"));
            }
            out.extend_from_slice(&block[HDR..HDR + want]);
        } else {
            out.extend_from_slice(&block[..want]);
        }
        fblock += 1;
    }
    Ok(out)
}

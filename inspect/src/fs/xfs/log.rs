//! Is the log clean? Only looked at, never replayed.
//!
//! As Linux finds the head of an internal log (`xlog_find_head`, simplified): the cycle
//! number stamped in each 512-byte block goes down by one where the head is, found by
//! bisection; the last record header before it (within the 4096 blocks eight in-core logs
//! can span) must be an unmount record, one operation flagged `XLOG_UNMOUNT_TRANS`. A log
//! written all with one cycle is taken to end at its end. Anything else, including a log
//! that cannot be read or parsed, counts as not clean (the caller warns; nothing fails).

use super::be32;
use super::sb::Superblock;
use crate::disk::BlockDevice;

const HEADER_MAGIC: u32 = 0xfeed_babe;
const UNMOUNT_TRANS: u8 = 0x20;
/// How far back from the head a record header is looked for.
const SCAN_BACK: u64 = 4096;

struct Log<'a> {
    dev: &'a dyn BlockDevice,
    start: u64,
    blocks: u64,
}

impl Log<'_> {
    fn block(&self, n: u64) -> Option<[u8; 512]> {
        let mut b = [0u8; 512];
        self.dev
            .read_at(self.start + (n % self.blocks) * 512, &mut b)
            .ok()?;
        Some(b)
    }

    fn cycle(&self, n: u64) -> Option<u32> {
        let b = self.block(n)?;
        Some(if be32(&b, 0) == HEADER_MAGIC {
            be32(&b, 4)
        } else {
            be32(&b, 0)
        })
    }
}

/// Whether the internal log ends with an unmount record (an external log is not looked at
/// and counts as clean: such filesystems are refused before this anyway).
pub fn is_clean(dev: &dyn BlockDevice, sb: &Superblock) -> bool {
    if sb.log_start == 0 {
        return true;
    }
    let blocks = (sb.log_blocks as u64) << (sb.block_log - 9);
    let Ok(start) = sb.fsb_to_byte(sb.log_start, sb.log_blocks as u64) else {
        return false;
    };
    if blocks < 2 {
        return false;
    }
    let log = Log { dev, start, blocks };
    check(&log).unwrap_or(false)
}

fn check(log: &Log<'_>) -> Option<bool> {
    let first = log.cycle(0)?;
    if first == 0 {
        return Some(true); // never written: mkfs zeroed it
    }
    let last = log.cycle(log.blocks - 1)?;
    // The head: the first block whose cycle is not the first block's.
    let head = if last == first {
        log.blocks
    } else {
        let (mut lo, mut hi) = (0u64, log.blocks - 1); // cycle(lo) == first != cycle(hi)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if log.cycle(mid)? == first {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    };
    // The last record header before the head.
    for back in 1..=SCAN_BACK.min(log.blocks) {
        let n = (head + log.blocks - back) % log.blocks;
        let b = log.block(n)?;
        if be32(&b, 0) != HEADER_MAGIC {
            continue;
        }
        if be32(&b, 40) != 1 {
            return Some(false);
        }
        let version = be32(&b, 8);
        let h_size = be32(&b, 320) as u64;
        let hblks = if version & 2 != 0 && h_size > 32768 {
            h_size.div_ceil(32768)
        } else {
            1
        };
        let op = log.block(n + hblks)?;
        return Some(op[9] & UNMOUNT_TRANS != 0);
    }
    Some(false)
}

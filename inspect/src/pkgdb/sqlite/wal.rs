//! The write-ahead log, recovered as SQLite recovers one it opens without a usable `-shm`
//! index: a 32-byte header (magic, format version 3007000, page size, checkpoint sequence,
//! two salts, a checksum of the first 24 bytes), then frames of a 24-byte header (page
//! number, the database size in pages after a commit or 0, the salts, a cumulative checksum
//! of the frame header's first 8 bytes and the page) and one page each. Frames are valid
//! while their salts match the header's and their checksums chain; the last valid frame
//! with a database size ends the last commit, and for each page the last frame up to there
//! is the page. Frames after that commit are ignored, and so is a WAL whose header is
//! invalid.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use super::{SqliteError, Store, be32, valid_page_size};

const MAGIC: u32 = 0x377f_0682;
const VERSION: u32 = 3_007_000;
const HEADER: u64 = 32;
const FRAME_HEADER: usize = 24;

/// The checksum SQLite computes over `data` (a multiple of 8 bytes), continuing from `s`:
/// 32-bit words in the byte order the magic number says (its low bit set: big-endian).
fn checksum(big_endian: bool, data: &[u8], s: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = s;
    for pair in data.chunks_exact(8) {
        let word = |b: &[u8]| {
            let b = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

/// The header checksum, for tests that forge WAL headers.
#[cfg(test)]
pub(super) fn tests_checksum(big_endian: bool, data: &[u8]) -> (u32, u32) {
    checksum(big_endian, data, (0, 0))
}

/// Which WAL frames hold which pages after the last valid commit.
#[derive(Debug)]
pub(super) struct WalIndex {
    /// Page number to the offset of its page data in the WAL.
    frames: BTreeMap<u32, u64>,
    /// The database size in pages given by the last commit.
    db_size: u32,
}

impl WalIndex {
    /// The committed frames of the WAL in `store` for a database of `page_size`-byte pages;
    /// `None` (with a warning when there was something to ignore) when the header is
    /// invalid, the page size differs or no commit is valid.
    pub(super) fn read(store: &dyn Store, page_size: u32) -> Result<Option<WalIndex>, SqliteError> {
        let size = store.size();
        if size < HEADER {
            if size > 0 {
                log::warn!("sqlite: a {size}-byte WAL has no header; ignored");
            }
            return Ok(None);
        }
        let mut h = [0u8; HEADER as usize];
        store.read_exact_at(0, &mut h)?;
        let magic = be32(&h, 0);
        let wal_page = be32(&h, 8);
        let big_endian = magic & 1 == 1;
        if magic & !1 != MAGIC
            || be32(&h, 4) != VERSION
            || !valid_page_size(wal_page)
            || checksum(big_endian, &h[..24], (0, 0)) != (be32(&h, 24), be32(&h, 28))
        {
            log::warn!("sqlite: the WAL's header is invalid; ignored");
            return Ok(None);
        }
        if wal_page != page_size {
            log::warn!(
                "sqlite: the WAL has pages of {wal_page} bytes, the database {page_size}; ignored"
            );
            return Ok(None);
        }
        let salts = &h[16..24];
        let mut sum = (be32(&h, 24), be32(&h, 28));
        let frame_size = FRAME_HEADER + page_size as usize;
        let mut frame = vec![0u8; frame_size];
        let mut committed = BTreeMap::new();
        let mut pending: Vec<(u32, u64)> = Vec::new();
        let mut db_size = 0;
        let mut at = HEADER;
        while at + frame_size as u64 <= size {
            store.read_exact_at(at, &mut frame)?;
            let page = be32(&frame, 0);
            if page == 0 || &frame[8..16] != salts {
                break;
            }
            let s = checksum(big_endian, &frame[..8], sum);
            let s = checksum(big_endian, &frame[FRAME_HEADER..], s);
            if s != (be32(&frame, 16), be32(&frame, 20)) {
                break;
            }
            sum = s;
            pending.push((page, at + FRAME_HEADER as u64));
            let commit = be32(&frame, 4);
            if commit != 0 {
                committed.extend(pending.drain(..));
                db_size = commit;
            }
            at += frame_size as u64;
        }
        if db_size == 0 {
            if at > HEADER {
                log::warn!("sqlite: the WAL has no valid commit; ignored");
            }
            return Ok(None);
        }
        Ok(Some(WalIndex {
            frames: committed,
            db_size,
        }))
    }

    /// Where page `n`'s data is in the WAL, when the last commit holds it.
    pub(super) fn frame(&self, n: u32) -> Option<u64> {
        self.frames.get(&n).copied()
    }

    /// How many distinct pages the WAL holds.
    pub(super) fn pages(&self) -> usize {
        self.frames.len()
    }

    /// The database size in pages after the last commit.
    pub(super) fn db_size(&self) -> u32 {
        self.db_size
    }
}

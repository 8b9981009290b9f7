//! rpm's own "ndb" package store: `/usr/lib/sysimage/rpm/Packages.db` (SUSE since openSUSE
//! Leap 15.3 / SLES 15 SP3, and Tumbleweed).
//!
//! The format is documented only by its implementation, rpm's `lib/backend/ndb/rpmpkg.c`
//! (read to learn the layout; nothing here is copied from it). All integers are 32-bit
//! little-endian; the file is a sequence of 16-byte blocks:
//! - bytes 0..32: the file header: magic `RpmP`, version (0), generation, number of slot
//!   pages, next package index;
//! - the slot pages (4096 bytes each, from offset 0; page 0's slots start after the header):
//!   16-byte slots `Slot`, package index, block offset, block count. A slot whose block
//!   offset is 0 is free;
//! - after the slot pages, each package at its slot's block offset: a blob head `BlbS`,
//!   package index, generation, length; the blob (the rpm header blob); zero padding to the
//!   end of the last block; a 12-byte trailer: adler32 of everything from the head to the
//!   padding, length again, magic `BlbE`.
//!
//! [`packages`] reads only `Packages.db` (the `Index.db` beside it holds indexes only). It
//! checks the header and slot table as rpm's `rpmpkgReadHeader` and `rpmpkgReadSlots` do
//! (the file size a multiple of 16, every slot's magic, used slots inside the file and past
//! the slot pages: any bad slot fails the whole store), then, stricter than rpm's reader,
//! rejects a header claiming zero slot pages (rpm would list nothing), overlapping slots and
//! repeated package indexes (rpm's writers treat both as corruption), which also bounds the
//! work by the file's size. Blobs are handed out in block-offset order, as rpm's iterator
//! lists them (`rpmpkgList`), each verified as rpm's `rpmpkgVerifyblob` does (head, length
//! against the block count, trailer, adler32; rpm's plain read skips the adler32). Like
//! rpm's iterator, the first bad blob stops the walk: the blobs before it were handed out,
//! then [`NdbError::Corrupt`].
//!
//! Not supported: versions other than 0 (the only one); the LZO-compressed blobs of an old
//! compile-time option, off by default (`RPMPKG_LZO`, removed from rpm in 2020; reported as
//! [`NdbError::Unsupported`]); rpm's salvage mode (scanning a store with a broken slot table
//! for blob heads); blobs over [`MAX_BLOB`].
//!
//! Hand-written because no `no_std` crate reads ndb.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{Store, StoreError};

/// Largest blob handed out, in bytes (rpm headers are far smaller).
pub const MAX_BLOB: u64 = super::MAX_BLOB;

const PAGE: u64 = 4096;
const SLOT: u64 = 16;
const BLK: u64 = 16;
/// The file header, at offset 0; page 0's slots start after it.
const HEADER: usize = 32;
/// Blob head: magic, package index, generation, length.
const BLOB_HEAD: u64 = 16;
/// Blob trailer: adler32, length, magic.
const BLOB_TAIL: u64 = 12;

const MAGIC_FILE: &[u8; 4] = b"RpmP";
const MAGIC_SLOT: &[u8; 4] = b"Slot";
const MAGIC_HEAD: &[u8; 4] = b"BlbS";
const MAGIC_TAIL: &[u8; 4] = b"BlbE";
/// First four bytes of an LZO-compressed blob (rpm's former `RPMPKG_LZO` option).
const MAGIC_LZO: &[u8; 4] = b"LZOB";

/// Why the store could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NdbError {
    /// The file is not an ndb package store, or is damaged (what and where).
    #[error("corrupt ndb package store: {0}")]
    Corrupt(String),
    /// A valid store using something this reader does not handle.
    #[error("unsupported ndb package store: {0}")]
    Unsupported(String),
    /// The file could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn corrupt(msg: String) -> NdbError {
    NdbError::Corrupt(msg)
}

/// The little-endian u32 at `at` in `b` (0 when out of range; callers pass fixed offsets
/// inside buffers they sized).
fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at.saturating_add(4))
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// Adler-32 (RFC 1950), continuing from `adler` (1 to start).
fn adler32(adler: u32, data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    // 5552 bytes is the most that can be summed before `b` may overflow a u32.
    let (mut a, mut b) = (adler & 0xffff, adler >> 16);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// One used slot of the slot table.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Number of the slot in the table (the header takes slots 0 and 1).
    number: u64,
    /// rpm's header number.
    pkgidx: u32,
    /// First block of the blob.
    blkoff: u64,
    /// Blocks the blob takes, head to trailer.
    blkcnt: u64,
}

/// Reads the file header and the slot table (rpm's `rpmpkgReadHeader` and
/// `rpmpkgReadSlots`), returning the used slots in block-offset order, checked not to
/// overlap nor repeat a package index.
fn read_slots(db: &dyn Store) -> Result<Vec<Slot>, NdbError> {
    let size = db.size();
    if size < HEADER as u64 {
        return Err(corrupt(format!(
            "file of {size} bytes is shorter than the header"
        )));
    }
    let mut header = [0u8; HEADER];
    db.read_exact_at(0, &mut header)?;
    if header.get(..4) != Some(&MAGIC_FILE[..]) {
        return Err(corrupt(String::from(
            "bad magic in the file header (not RpmP)",
        )));
    }
    let version = le32(&header, 4);
    if version != 0 {
        return Err(NdbError::Unsupported(format!(
            "version {version} (only 0 is known)"
        )));
    }
    if !size.is_multiple_of(BLK) {
        return Err(corrupt(format!(
            "file size {size} is not a multiple of {BLK}"
        )));
    }
    let file_blocks = size / BLK;
    let slot_pages = u64::from(le32(&header, 12));
    if slot_pages == 0 {
        // rpm never writes this (a new store starts with one slot page); rpm would list
        // no packages, but an empty list would hide the damage.
        return Err(corrupt(String::from(
            "the header says there are no slot pages",
        )));
    }
    let slot_bytes = slot_pages.saturating_mul(PAGE);
    if slot_bytes > size {
        return Err(corrupt(format!(
            "{slot_pages} slot pages ({slot_bytes} bytes) run past the end of the file \
             ({size} bytes)"
        )));
    }
    // Blobs start after the slot pages.
    let min_blkoff = slot_bytes / BLK;

    let mut slots = Vec::new();
    let mut page = vec![0u8; PAGE as usize];
    for p in 0..slot_pages {
        db.read_exact_at(p * PAGE, &mut page)?;
        let first = if p == 0 { HEADER } else { 0 };
        for (i, s) in page
            .chunks_exact(SLOT as usize)
            .enumerate()
            .skip(first / SLOT as usize)
        {
            let number = p * (PAGE / SLOT) + i as u64;
            if s.get(..4) != Some(&MAGIC_SLOT[..]) {
                return Err(corrupt(format!("slot {number} has a bad magic (not Slot)")));
            }
            let (pkgidx, blkoff, blkcnt) = (le32(s, 4), le32(s, 8), le32(s, 12));
            if blkoff == 0 {
                continue; // free
            }
            let (blkoff, blkcnt) = (u64::from(blkoff), u64::from(blkcnt));
            if blkoff + blkcnt > file_blocks {
                return Err(corrupt(format!(
                    "slot {number} (package {pkgidx}): blocks {blkoff}+{blkcnt} run past the \
                     end of the file ({file_blocks} blocks)"
                )));
            }
            if pkgidx == 0 || blkcnt == 0 || blkoff < min_blkoff {
                return Err(corrupt(format!(
                    "slot {number}: bad entry (package {pkgidx}, blocks {blkoff}+{blkcnt}, \
                     blobs start at block {min_blkoff})"
                )));
            }
            slots.push(Slot {
                number,
                pkgidx,
                blkoff,
                blkcnt,
            });
        }
    }

    let mut by_pkgidx: Vec<u32> = slots.iter().map(|s| s.pkgidx).collect();
    by_pkgidx.sort_unstable();
    if let Some(w) = by_pkgidx.windows(2).find(|w| w[0] == w[1]) {
        return Err(corrupt(format!("two slots hold package {}", w[0])));
    }
    slots.sort_by_key(|s| (s.blkoff, s.number));
    for w in slots.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b.blkoff < a.blkoff + a.blkcnt {
            return Err(corrupt(format!(
                "slots {} and {} overlap (blocks {}+{} and {}+{})",
                a.number, b.number, a.blkoff, a.blkcnt, b.blkoff, b.blkcnt
            )));
        }
    }
    Ok(slots)
}

/// Reads and verifies one blob (rpm's `rpmpkgReadBlob` with the adler32 check of
/// `rpmpkgVerifyblob`), returning it. The slot is inside the file (checked by
/// [`read_slots`]).
fn read_blob(db: &dyn Store, slot: &Slot) -> Result<Vec<u8>, NdbError> {
    let Slot {
        number,
        pkgidx,
        blkoff,
        blkcnt,
    } = *slot;
    let at = blkoff * BLK;
    let whose = || format!("package {pkgidx} (slot {number}, block {blkoff})");
    if blkcnt * BLK < BLOB_HEAD + BLOB_TAIL {
        return Err(corrupt(format!(
            "{}: {blkcnt} block(s) cannot hold a blob",
            whose()
        )));
    }
    let mut head = [0u8; BLOB_HEAD as usize];
    db.read_exact_at(at, &mut head)?;
    if head.get(..4) != Some(&MAGIC_HEAD[..]) {
        return Err(corrupt(format!(
            "{}: bad blob head magic (not BlbS)",
            whose()
        )));
    }
    if le32(&head, 4) != pkgidx {
        return Err(corrupt(format!(
            "{}: the blob belongs to package {}",
            whose(),
            le32(&head, 4)
        )));
    }
    let len = u64::from(le32(&head, 12));
    if (BLOB_HEAD + len + BLOB_TAIL).div_ceil(BLK) != blkcnt {
        return Err(corrupt(format!(
            "{}: a blob of {len} bytes does not fill the slot's {blkcnt} blocks",
            whose()
        )));
    }
    if len > MAX_BLOB {
        return Err(NdbError::Unsupported(format!(
            "{}: a blob of {len} bytes is over the {MAX_BLOB}-byte limit",
            whose()
        )));
    }
    // Blob, padding and trailer: at most MAX_BLOB + 2 blocks, and inside the file.
    let rest = usize::try_from(blkcnt * BLK - BLOB_HEAD)
        .map_err(|_| corrupt(format!("{}: blob too large", whose())))?;
    let mut body = vec![0u8; rest];
    db.read_exact_at(at + BLOB_HEAD, &mut body)?;
    let tail_at = rest - BLOB_TAIL as usize;
    let tail = body.get(tail_at..).unwrap_or_default();
    if tail.get(8..12) != Some(&MAGIC_TAIL[..]) {
        return Err(corrupt(format!(
            "{}: bad blob trailer magic (not BlbE)",
            whose()
        )));
    }
    if u64::from(le32(tail, 4)) != len {
        return Err(corrupt(format!(
            "{}: the trailer says {} bytes, the head {len}",
            whose(),
            le32(tail, 4)
        )));
    }
    let sum = adler32(adler32(1, &head), body.get(..tail_at).unwrap_or_default());
    if sum != le32(tail, 0) {
        return Err(corrupt(format!(
            "{}: adler32 mismatch (stored {:#010x}, computed {sum:#010x})",
            whose(),
            le32(tail, 0)
        )));
    }
    body.truncate(len as usize); // len <= rest: checked against blkcnt above
    if body.starts_with(MAGIC_LZO) {
        return Err(NdbError::Unsupported(format!(
            "{}: LZO-compressed blob",
            whose()
        )));
    }
    Ok(body)
}

/// Calls `each` with every package blob in the store (each one rpm header blob), in
/// block-offset order as rpm's iterator does, each verified: head, length, trailer and
/// adler32.
///
/// A damaged slot table fails before any blob; a damaged blob stops the walk after the
/// blobs before it were handed out (as rpm's iterator stops), with [`NdbError::Corrupt`].
pub fn packages(db: &dyn Store, each: &mut dyn FnMut(&[u8])) -> Result<(), NdbError> {
    for slot in read_slots(db)? {
        each(&read_blob(db, &slot)?);
    }
    Ok(())
}

/// Writes ndb stores for the tests.
///
/// No tool on the build machine writes ndb (Debian's rpm is built without the backend:
/// `rpm --define '_db_backend ndb'` says "invalid %_db_backend: ndb"), so the fixtures are
/// made by this builder, written from rpm's `lib/backend/ndb/rpmpkg.c`, and by its Python
/// twin `testdata/ndb/make.py` (the tests check both agree byte for byte).
#[cfg(test)]
pub mod build {
    use alloc::vec::Vec;

    /// A `Packages.db` holding `blobs` as package indexes 1, 2, ..., laid out as rpm does
    /// when putting them one after another into a new store (`rpmpkgInit`, then
    /// `rpmpkgPut` each): the header, enough slot pages for all the slots (page 0 holds
    /// 254 slots, later pages 256; past 254 blobs rpm would have moved blobs to grow the
    /// slot table, which this does not imitate), then each blob appended in its blocks.
    pub fn build(blobs: &[&[u8]]) -> Vec<u8> {
        const PAGE: usize = 4096;
        const SLOTS_PER_PAGE: usize = PAGE / 16;
        let n = blobs.len();
        let pages = (n + 2).div_ceil(SLOTS_PER_PAGE).max(1);
        let u = |x: usize| u32::try_from(x).expect("store too large").to_le_bytes();
        let mut out = Vec::new();
        // Header: init sets the generation to 1, each put bumps it once (slot write).
        out.extend_from_slice(b"RpmP");
        for field in [0, n + 1, pages, n + 1] {
            out.extend_from_slice(&u(field));
        }
        out.resize(PAGE * pages, 0);
        // Every slot keeps its magic, free or not.
        for slot in out.chunks_exact_mut(16).skip(2) {
            slot[..4].copy_from_slice(b"Slot");
        }
        for (i, blob) in blobs.iter().enumerate() {
            let pkgidx = i + 1;
            let blkoff = out.len() / 16;
            let blkcnt = (16 + blob.len() + 12).div_ceil(16);
            let slot = &mut out[(2 + i) * 16..(3 + i) * 16];
            slot[4..8].copy_from_slice(&u(pkgidx));
            slot[8..12].copy_from_slice(&u(blkoff));
            slot[12..16].copy_from_slice(&u(blkcnt));
            let start = out.len();
            out.extend_from_slice(b"BlbS");
            // The blob's generation is the store's when it was written: pkgidx here.
            for field in [pkgidx, pkgidx, blob.len()] {
                out.extend_from_slice(&u(field));
            }
            out.extend_from_slice(blob);
            out.resize(start + blkcnt * 16 - 12, 0);
            let sum = super::adler32(1, &out[start..]);
            out.extend_from_slice(&sum.to_le_bytes());
            out.extend_from_slice(&u(blob.len()));
            out.extend_from_slice(b"BlbE");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::build::build;
    use super::*;
    use crate::pkgdb::Bytes;

    const FIXTURE: &[u8] = include_bytes!("testdata/ndb/Packages.db");
    const BLOB1: &[u8] = include_bytes!("testdata/ndb/blobs/1.bin");
    const BLOB2: &[u8] = include_bytes!("testdata/ndb/blobs/2.bin");
    const BLOB3: &[u8] = include_bytes!("testdata/ndb/blobs/3.bin");

    /// All blobs read, and the result.
    fn read(db: &[u8]) -> (Vec<Vec<u8>>, Result<(), NdbError>) {
        let mut out = Vec::new();
        let r = packages(&Bytes(db), &mut |b| out.push(b.to_vec()));
        (out, r)
    }

    fn all(db: &[u8]) -> Vec<Vec<u8>> {
        let (out, r) = read(db);
        r.unwrap();
        out
    }

    fn put32(db: &mut [u8], at: usize, v: u32) {
        db[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn get32(db: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(db[at..at + 4].try_into().unwrap())
    }

    /// Byte offset of slot `n` (the first used slot is 2).
    fn slot(n: usize) -> usize {
        n * 16
    }

    /// Byte offset of the blob of slot `n`.
    fn blob_at(db: &[u8], n: usize) -> usize {
        get32(db, slot(n) + 8) as usize * 16
    }

    /// Recomputes the adler32 of the blob of slot `n` from its head's length.
    fn fix_sum(db: &mut [u8], n: usize) {
        let at = blob_at(db, n);
        let blocks = get32(db, slot(n) + 12) as usize;
        let end = at + blocks * 16 - 12;
        let sum = adler32(1, &db[at..end]);
        put32(db, end, sum);
    }

    fn expect_corrupt(r: Result<(), NdbError>, needle: &str) {
        match r {
            Err(NdbError::Corrupt(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected Corrupt({needle}), got {other:?}"),
        }
    }

    /// Blobs of sizes 0..=N with distinct contents.
    fn blobs(sizes: &[usize]) -> Vec<Vec<u8>> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (j * 7 + i * 31) as u8).collect())
            .collect()
    }

    fn refs(v: &[Vec<u8>]) -> Vec<&[u8]> {
        v.iter().map(|b| &b[..]).collect()
    }

    #[test]
    fn adler32_known_values() {
        assert_eq!(adler32(1, b""), 1);
        assert_eq!(adler32(1, b"Wikipedia"), 0x11e6_0398);
        // Long runs of 0xff cross the 5552-byte reduction boundary.
        let big = vec![0xffu8; 100_000];
        let split = adler32(adler32(1, &big[..7000]), &big[7000..]);
        assert_eq!(adler32(1, &big), split);
        assert_eq!(adler32(1, &big), 0x149a_302c);
    }

    #[test]
    fn fixture_holds_the_three_real_blobs() {
        assert_eq!(all(FIXTURE), [BLOB1, BLOB2, BLOB3]);
        // Real rpm headers: index count and data length, big-endian, then the entries.
        assert_eq!(&BLOB1[..4], &[0, 0, 0, 0x28]);
    }

    #[test]
    fn rust_builder_matches_python_builder() {
        assert_eq!(build(&[BLOB1, BLOB2, BLOB3]), FIXTURE);
    }

    #[test]
    fn fixture_layout() {
        assert_eq!(&FIXTURE[..4], b"RpmP");
        assert_eq!(get32(FIXTURE, 12), 1, "slot pages");
        assert_eq!(get32(FIXTURE, 16), 4, "next package index");
        // Blob 1 starts right after the slot page; the blobs are back to back.
        assert_eq!(get32(FIXTURE, slot(2) + 8), 256);
        let (b1, c1) = (get32(FIXTURE, slot(2) + 8), get32(FIXTURE, slot(2) + 12));
        assert_eq!(c1 as usize, (16 + BLOB1.len() + 12).div_ceil(16));
        assert_eq!(get32(FIXTURE, slot(3) + 8), b1 + c1);
        assert_eq!(&FIXTURE[4096..4100], b"BlbS");
        assert_eq!(&FIXTURE[FIXTURE.len() - 4..], b"BlbE");
    }

    #[test]
    fn empty_store() {
        assert_eq!(all(&build(&[])), Vec::<Vec<u8>>::new());
        assert_eq!(build(&[]).len(), 4096);
    }

    #[test]
    fn sizes_and_many_blocks() {
        // 0 bytes: two blocks; 4: head+blob+tail exactly two blocks; 5: spills into a
        // third; 100_000: 6252 blocks, more than one 64K read.
        let v = blobs(&[0, 4, 5, 1, 100, 100_000, 37]);
        let db = build(&refs(&v));
        assert_eq!(get32(&db, slot(2) + 12), 2);
        assert_eq!(get32(&db, slot(3) + 12), 2);
        assert_eq!(get32(&db, slot(4) + 12), 3);
        assert_eq!(get32(&db, slot(7) + 12), 6252);
        assert_eq!(all(&db), v);
    }

    #[test]
    fn several_slot_pages() {
        let sizes: Vec<usize> = (0..300).map(|i| i % 50).collect();
        let v = blobs(&sizes);
        let db = build(&refs(&v));
        assert_eq!(get32(&db, 12), 2);
        assert_eq!(get32(&db, slot(2) + 8), 512);
        assert_eq!(all(&db), v);
    }

    #[test]
    fn block_offset_order_not_slot_order() {
        let v = blobs(&[10, 20, 30]);
        let mut db = build(&refs(&v));
        // Swap slots 2 and 4 (as rpm leaves them after reusing slots): output stays in
        // block order.
        let (a, b) = (db[slot(2)..slot(3)].to_vec(), db[slot(4)..slot(5)].to_vec());
        db[slot(2)..slot(3)].copy_from_slice(&b);
        db[slot(4)..slot(5)].copy_from_slice(&a);
        assert_eq!(all(&db), v);
        // Move slot 2's entry to slot 300 on a second page: still found.
        let v = blobs(&(0..256).map(|i| i % 7).collect::<Vec<_>>());
        let mut db = build(&refs(&v));
        assert_eq!(get32(&db, 12), 2);
        let entry = db[slot(2)..slot(3)].to_vec();
        db[slot(300)..slot(301)].copy_from_slice(&entry);
        db[slot(2) + 4..slot(3)].fill(0);
        assert_eq!(all(&db), v);
    }

    #[test]
    fn freed_slot_is_skipped() {
        // rpmpkgDel: the slot keeps only its magic, the blob's blocks are zeroed.
        let v = blobs(&[10, 200, 30]);
        let mut db = build(&refs(&v));
        let (at, n) = (blob_at(&db, 3), get32(&db, slot(3) + 12) as usize);
        db[at..at + n * 16].fill(0);
        db[slot(3) + 4..slot(4)].fill(0);
        assert_eq!(all(&db), [v[0].clone(), v[2].clone()]);
        // A free slot with junk in its index and count (only the offset says free).
        put32(&mut db, slot(3) + 4, 99);
        put32(&mut db, slot(3) + 12, 12345);
        assert_eq!(all(&db), [v[0].clone(), v[2].clone()]);
    }

    #[test]
    fn slot_past_the_end() {
        let mut db = FIXTURE.to_vec();
        put32(&mut db, slot(4) + 12, 10_000);
        let (out, r) = read(&db);
        assert!(out.is_empty());
        expect_corrupt(r, "slot 4 (package 3): blocks 614+10000 run past the end");
        // Offset and count near u32::MAX do not wrap.
        put32(&mut db, slot(4) + 8, u32::MAX);
        put32(&mut db, slot(4) + 12, u32::MAX);
        expect_corrupt(read(&db).1, "run past the end");
    }

    #[test]
    fn slots_sharing_blocks() {
        // Two slots (different packages) pointing at the same blocks.
        let mut db = FIXTURE.to_vec();
        let entry = db[slot(2) + 8..slot(3)].to_vec();
        db[slot(3) + 8..slot(4)].copy_from_slice(&entry);
        expect_corrupt(
            read(&db).1,
            "slots 2 and 3 overlap (blocks 256+84 and 256+84)",
        );
        // A slot starting inside another's blocks.
        let mut db = FIXTURE.to_vec();
        put32(&mut db, slot(3) + 8, 300);
        expect_corrupt(read(&db).1, "overlap");
        // The same package in two slots.
        let mut db = FIXTURE.to_vec();
        put32(&mut db, slot(3) + 4, 1);
        expect_corrupt(read(&db).1, "two slots hold package 1");
    }

    #[test]
    fn bad_slot_entries() {
        let cases: [(usize, u32, &str); 4] = [
            (slot(3), 0x746f6c73, "slot 3 has a bad magic"),
            (slot(3) + 4, 0, "slot 3: bad entry (package 0"),
            (slot(3) + 12, 0, "slot 3: bad entry"),
            (slot(3) + 8, 255, "blobs start at block 256"),
        ];
        for (at, v, needle) in cases {
            let mut db = FIXTURE.to_vec();
            put32(&mut db, at, v);
            let (out, r) = read(&db);
            assert!(out.is_empty());
            expect_corrupt(r, needle);
        }
        // Even a free slot must keep its magic (rpm checks every slot).
        let mut db = FIXTURE.to_vec();
        db[slot(200)] = 0;
        expect_corrupt(read(&db).1, "slot 200 has a bad magic");
    }

    #[test]
    fn gigabyte_blob_length() {
        let mut db = FIXTURE.to_vec();
        let at = blob_at(&db, 3);
        put32(&mut db, at + 12, 3 << 30);
        let (out, r) = read(&db);
        assert_eq!(out, [BLOB1]);
        expect_corrupt(
            r,
            "package 2 (slot 3, block 340): a blob of 3221225472 bytes does not fill the \
             slot's 274 blocks",
        );
        put32(&mut db, at + 12, u32::MAX);
        expect_corrupt(read(&db).1, "does not fill");
    }

    #[test]
    fn bad_checksum() {
        let mut db = FIXTURE.to_vec();
        let at = blob_at(&db, 3);
        db[at + 100] ^= 1;
        let (out, r) = read(&db);
        assert_eq!(out, [BLOB1]);
        expect_corrupt(r, "package 2 (slot 3, block 340): adler32 mismatch");
        // The padding is covered too.
        let mut db = FIXTURE.to_vec();
        let at = blob_at(&db, 2);
        let end = at + get32(&db, slot(2) + 12) as usize * 16 - 12;
        assert_eq!(end - at - 16 - BLOB1.len(), 8, "blob 1 has padding");
        db[end - 1] = 1;
        let (out, r) = read(&db);
        assert!(out.is_empty());
        expect_corrupt(r, "package 1 (slot 2, block 256): adler32 mismatch");
    }

    #[test]
    fn bad_blob_head_and_trailer() {
        // (in the trailer rather than the head, offset, value written, error)
        let cases: [(bool, usize, u32, &str); 4] = [
            (false, 0, 0, "bad blob head magic"),
            (false, 4, 3, "the blob belongs to package 3"),
            (true, 8, 0, "bad blob trailer magic"),
            (true, 4, 4353, "the trailer says 4353 bytes, the head 4352"),
        ];
        for (in_tail, off, v, needle) in cases {
            let mut db = FIXTURE.to_vec();
            let head = blob_at(&db, 3);
            let tail = head + get32(&db, slot(3) + 12) as usize * 16 - 12;
            let at = if in_tail { tail } else { head } + off;
            put32(&mut db, at, v);
            fix_sum(&mut db, 3);
            let (out, r) = read(&db);
            assert_eq!(out, [BLOB1], "{needle}");
            expect_corrupt(r, needle);
        }
        // A one-block slot cannot hold head and trailer.
        let mut db = build(&[&[], &[]]);
        put32(&mut db, slot(3) + 12, 1);
        let (out, r) = read(&db);
        assert_eq!(out, [Vec::<u8>::new()]);
        expect_corrupt(r, "1 block(s) cannot hold a blob");
    }

    #[test]
    fn bad_file_header() {
        let mut db = FIXTURE.to_vec();
        db[0] = b'r';
        expect_corrupt(read(&db).1, "bad magic in the file header");
        let mut db = FIXTURE.to_vec();
        put32(&mut db, 4, 1);
        assert_eq!(
            read(&db).1,
            Err(NdbError::Unsupported("version 1 (only 0 is known)".into()))
        );
        expect_corrupt(read(&[]).1, "file of 0 bytes is shorter than the header");
        expect_corrupt(read(&FIXTURE[..31]).1, "shorter than the header");
        expect_corrupt(
            read(&FIXTURE[..FIXTURE.len() - 1]).1,
            "not a multiple of 16",
        );
    }

    #[test]
    fn zero_or_too_many_slot_pages() {
        let mut db = FIXTURE.to_vec();
        put32(&mut db, 12, 0);
        expect_corrupt(read(&db).1, "no slot pages");
        put32(&mut db, 12, 3);
        expect_corrupt(read(&db).1, "3 slot pages (12288 bytes) run past the end");
        put32(&mut db, 12, u32::MAX);
        expect_corrupt(read(&db).1, "run past the end");
        // Two pages fit in the file, but the second is blob data: the first slot's blob is
        // now inside the slot pages.
        put32(&mut db, 12, 2);
        expect_corrupt(
            read(&db).1,
            "slot 2: bad entry (package 1, blocks 256+84, blobs start at block 512)",
        );
        // Without used slots on page 0, page 1 is read: no slot magic there.
        for n in 2..5 {
            db[slot(n) + 4..slot(n + 1)].fill(0);
        }
        expect_corrupt(read(&db).1, "slot 256 has a bad magic");
        // A file that is only a header.
        expect_corrupt(read(&FIXTURE[..32]).1, "run past the end");
    }

    #[test]
    fn truncated_file() {
        // Cut inside the last blob: the slot table check fails first.
        let db = &FIXTURE[..FIXTURE.len() - 16];
        let (out, r) = read(db);
        assert!(out.is_empty());
        expect_corrupt(r, "run past the end of the file");
    }

    #[test]
    fn lzo_blob_is_unsupported() {
        let db = build(&[&b"LZOB\0\0\0\x10compressed"[..]]);
        match read(&db) {
            (out, Err(NdbError::Unsupported(m))) => {
                assert!(out.is_empty());
                assert!(m.contains("LZO-compressed"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A store claiming gigabytes, made up on the fly: the header, one slot, and a blob
    /// head whose length matches the slot; every other byte reads as zero.
    struct Huge {
        blob_len: u32,
    }

    impl Store for Huge {
        fn size(&self) -> u64 {
            2 << 30
        }
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
            let blkcnt = (16 + self.blob_len as usize + 12).div_ceil(16) as u32;
            let mut page = build(&[]);
            put32(&mut page, slot(2) + 4, 1);
            put32(&mut page, slot(2) + 8, 256);
            put32(&mut page, slot(2) + 12, blkcnt);
            page.extend_from_slice(b"BlbS");
            page.extend_from_slice(&1u32.to_le_bytes());
            page.extend_from_slice(&1u32.to_le_bytes());
            page.extend_from_slice(&self.blob_len.to_le_bytes());
            buf.fill(0);
            let start = offset as usize;
            if let Some(src) = page.get(start..) {
                let n = src.len().min(buf.len());
                buf[..n].copy_from_slice(&src[..n]);
            }
            Ok(())
        }
    }

    #[test]
    fn blob_over_the_cap_is_refused_before_reading() {
        let over = super::MAX_BLOB + (1 << 20);
        let db = Huge {
            blob_len: over as u32,
        };
        let mut n = 0;
        let r = packages(&db, &mut |_| n += 1);
        assert_eq!(n, 0);
        match r {
            Err(NdbError::Unsupported(m)) => {
                let want = format!("{over} bytes is over the {}-byte limit", super::MAX_BLOB);
                assert!(m.contains(&want), "{m}")
            }
            other => panic!("{other:?}"),
        }
        // At the cap it is read (and here fails the trailer check: all zeros).
        let db = Huge {
            blob_len: super::MAX_BLOB as u32,
        };
        let r = packages(&db, &mut |_| n += 1);
        assert_eq!(n, 0);
        expect_corrupt(r, "bad blob trailer magic");
    }

    #[test]
    fn store_errors_pass_through() {
        struct Failing;
        impl Store for Failing {
            fn size(&self) -> u64 {
                4096
            }
            fn read_exact_at(&self, _: u64, _: &mut [u8]) -> Result<(), StoreError> {
                Err(StoreError::Io("boom".into()))
            }
        }
        let r = packages(&Failing, &mut |_| {});
        assert_eq!(r, Err(NdbError::Store(StoreError::Io("boom".into()))));
    }

    /// Pseudo-random mutations of the fixture and of built stores: the reader always
    /// returns, and never hands out more bytes than the file holds.
    #[test]
    fn fuzz_mutations() {
        let v = blobs(&[0, 3, 40, 1000, 17]);
        let built = build(&refs(&v));
        let seeds: [&[u8]; 2] = [FIXTURE, &built];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut outcomes = [0usize; 2];
        for round in 0..4000 {
            let seed = seeds[round % seeds.len()];
            let mut db = seed.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % db.len() as u64) as usize & !3;
                match next() % 6 {
                    0 => db[at] ^= 1 << (next() % 8),
                    1 => db[at] = next() as u8,
                    2 => {
                        let words = [0, u32::MAX, 0x8000_0000, 1, 256, next() as u32 % 1024];
                        let w = words[(next() % words.len() as u64) as usize];
                        if at + 4 <= db.len() {
                            put32(&mut db, at, w);
                        }
                    }
                    3 => db.truncate(at),
                    4 => {
                        // Aim at the slot table.
                        let s = 32 + (next() % 10) as usize * 4;
                        put32(&mut db, s, next() as u32 % 2048);
                    }
                    _ => {
                        let end = (at + (next() % 64) as usize).min(db.len());
                        db[at..end].fill(0);
                    }
                }
                if db.len() < 128 {
                    break;
                }
            }
            // Often keep the checksums right so mutations reach past them.
            if round % 2 == 0 && db.len() >= 4096 {
                for n in 2..8 {
                    let (off, cnt) = (get32(&db, slot(n) + 8), get32(&db, slot(n) + 12));
                    let (at, len) = (off as usize * 16, cnt as usize * 16);
                    if off != 0 && len >= 28 && at.checked_add(len).is_some_and(|e| e <= db.len()) {
                        fix_sum(&mut db, n);
                    }
                }
            }
            let mut handed = 0usize;
            let r = packages(&Bytes(&db), &mut |b| handed += b.len());
            assert!(
                handed <= db.len(),
                "handed out {handed} bytes of {}",
                db.len()
            );
            outcomes[r.is_ok() as usize] += 1;
        }
        // Both outcomes happen: the mutations are neither all fatal nor all harmless.
        assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
    }
}

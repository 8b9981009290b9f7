//! Berkeley DB hash databases, read-only: rpm's `Packages` (rpm <= 4.15, RHEL/CentOS 7 and 8,
//! older SUSE).
//!
//! rpm kept the installed package headers in `/var/lib/rpm/Packages`, a Berkeley DB (4.x-5.x)
//! HASH database: the key is a 4-byte header number (in the byte order of the machine that
//! wrote it; key 0 holds rpm's next-instance counter, not a header), the value the header
//! blob, usually longer than a page and so stored on overflow pages.
//!
//! The format (Berkeley DB's `dbinc/db_page.h` and `dbinc/hash.h`, and its reference guide's
//! "Hash access method" pages; go-rpmdb's `bdb` package is a small public reader of the same):
//! - the file is an array of pages of one size (512..=65536, a power of two); page 0 is the
//!   hash metadata page (`HMETA`): magic 0x061561, version, page size, last page number,
//!   the highest bucket in use and the `spares` array that maps a bucket to its page;
//! - the byte order of every multi-byte field is the writer's: the magic, read in either
//!   order, tells which (keys and values are opaque bytes, never swapped);
//! - each bucket is a chain of hash pages (`P_HASH`, or `P_HASH_UNSORTED` from before 4.6)
//!   linked by `next_pgno`; a hash page holds an index of item offsets after its 26-byte
//!   header, items alternating key and value, each starting with a type byte: inline bytes
//!   (`H_KEYDATA`), a reference to an overflow chain (`H_OFFPAGE`: first page and total
//!   length), or duplicates (`H_DUPLICATE`, `H_OFFDUP`);
//! - an overflow chain is a list of `P_OVERFLOW` pages linked by `next_pgno`, each holding
//!   `hf_offset` bytes of the item after its header.
//!
//! Supported: hash versions 7 to 10 (Berkeley DB 3 to 6; rpm's databases are 8 or 9), both
//! byte orders, every page size, inline and overflow keys and values. Not supported (a clear
//! [`BdbError::Unsupported`]): other access methods (btree, queue, heap), encrypted or
//! checksummed databases (their page header is longer), sub-databases, partitioned databases
//! and Berkeley DB 6 external "blob" items. Duplicate values are skipped with a warning (rpm
//! never stores them).
//!
//! Written here because no crate reads Berkeley DB files in `no_std` (or at all without
//! linking libdb). Every page number is checked against the last page and the file size,
//! every page is read at most once per walk (so chains that loop are detected, not followed),
//! and overflow items are bounded by the file size and the blob size cap ([`super::MAX_BLOB`]) before any
//! allocation.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{Store, StoreError};

/// Why the database could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BdbError {
    /// The file contradicts the format (what and where is in the message).
    #[error("corrupt Berkeley DB: {0}")]
    Corrupt(String),
    /// A valid Berkeley DB this reader does not handle (another access method, encryption,
    /// checksums...).
    #[error("unsupported Berkeley DB: {0}")]
    Unsupported(String),
    /// The file could not be read.
    #[error("reading the Berkeley DB: {0}")]
    Store(#[from] StoreError),
}

/// The result of the internal steps.
type Res<T> = Result<T, BdbError>;

fn corrupt(msg: String) -> BdbError {
    BdbError::Corrupt(msg)
}

/// The largest item (key or value) handed out ([`super::MAX_BLOB`]).
const MAX_ITEM: u32 = super::MAX_BLOB as u32;

// The generic page header (`PAGE` in db_page.h): lsn (8), pgno, prev_pgno, next_pgno (4 each),
// entries, hf_offset (2 each), level, type (1 each).
const PAGE_HEADER: usize = 26;
const OFF_PGNO: usize = 8;
const OFF_NEXT: usize = 16;
const OFF_ENTRIES: usize = 20;
const OFF_HF_OFFSET: usize = 22;
const OFF_TYPE: usize = 25;

// Page types.
const P_INVALID: u8 = 0;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;

// Metadata magics (`DBMETA.magic`, offset 12).
const HASH_MAGIC: u32 = 0x0006_1561;
const OTHER_MAGICS: [(u32, &str); 3] = [
    (0x0005_3162, "btree"),
    (0x0004_2253, "queue"),
    (0x0007_4582, "heap"),
];

// Hash item types (the first byte of an item).
const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;
const H_BLOB: u8 = 5;
/// `HOFFPAGE`: type, 3 unused bytes, first overflow page, total length.
const HOFFPAGE_LEN: usize = 12;

/// Calls `each` with every value whose key is a non-zero 4-byte header number, in bucket
/// order: rpm's package header blobs. Blobs found before any damage are delivered, then the
/// error is returned.
pub fn packages(db: &dyn Store, each: &mut dyn FnMut(&[u8])) -> Result<(), BdbError> {
    for_each_pair(db, &mut |key, value| match key {
        [0, 0, 0, 0] => {} // rpm's next-instance counter
        [_, _, _, _] => each(value),
        _ => log::warn!(
            "bdb: skipping a key of {} bytes (not a header number)",
            key.len()
        ),
    })
}

/// Calls `each` with every key/value pair of the hash database, in bucket order (the order of
/// a Berkeley DB cursor, and of `db_dump`). Pairs found before any damage are delivered, then
/// the error is returned.
pub fn for_each_pair(db: &dyn Store, each: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), BdbError> {
    let meta = Meta::read(db)?;
    Walk::new(db, &meta).buckets(&meta, each)
}

/// The fields of the hash metadata page (`HMETA`, page 0) the reader needs.
struct Meta {
    big_endian: bool,
    page_size: usize,
    /// The number of pages that may be read: pages past `last_pgno` or past the end of the
    /// file are not part of the database.
    pages: u64,
    max_bucket: u32,
    spares: [u32; 32],
}

impl Meta {
    /// Reads and checks the metadata page: the magic (and so the byte order), the version,
    /// the page size, and the flags for what is not supported.
    fn read(db: &dyn Store) -> Res<Meta> {
        let size = db.size();
        let mut m = [0u8; 512];
        if size < m.len() as u64 {
            return Err(corrupt(format!(
                "the file is {size} bytes, shorter than a metadata page"
            )));
        }
        db.read_exact_at(0, &mut m)?;
        let little = Endian(false).u32(&m, 12);
        let big = Endian(true).u32(&m, 12);
        let e = if little == HASH_MAGIC {
            Endian(false)
        } else if big == HASH_MAGIC {
            Endian(true)
        } else {
            if let Some((_, name)) = OTHER_MAGICS.iter().find(|(x, _)| *x == little || *x == big) {
                return Err(BdbError::Unsupported(format!(
                    "a {name} database, not a hash one"
                )));
            }
            return Err(corrupt(format!(
                "no hash magic at offset 12 (found {little:#x}): not a Berkeley DB hash database"
            )));
        };
        let version = e.u32(&m, 16);
        if !(7..=10).contains(&version) {
            return Err(BdbError::Unsupported(format!("hash version {version}")));
        }
        let page_size = e.u32(&m, 20);
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(corrupt(format!("page size {page_size} in the metadata")));
        }
        if m[OFF_TYPE] != P_HASHMETA {
            return Err(corrupt(format!(
                "metadata page of type {} instead of {P_HASHMETA}",
                m[OFF_TYPE]
            )));
        }
        // encrypt_alg (24), metaflags (26: checksums 1, partitions 2 and 4), flags (48:
        // DB_HASH_SUBDB 2).
        if m[24] != 0 {
            return Err(BdbError::Unsupported(format!(
                "encrypted (algorithm {})",
                m[24]
            )));
        }
        if m[26] & 1 != 0 {
            return Err(BdbError::Unsupported("page checksums".into()));
        }
        if m[26] & 6 != 0 || e.u32(&m, 36) > 1 {
            return Err(BdbError::Unsupported("a partitioned database".into()));
        }
        if e.u32(&m, 48) & 2 != 0 {
            return Err(BdbError::Unsupported("sub-databases".into()));
        }
        let last_pgno = e.u32(&m, 32);
        let pages = (u64::from(last_pgno) + 1).min(size / u64::from(page_size));
        let max_bucket = e.u32(&m, 72);
        // Every bucket has a page of its own, none of them page 0.
        if u64::from(max_bucket) + 1 >= pages {
            return Err(corrupt(format!(
                "{} buckets in a database of {pages} pages",
                u64::from(max_bucket) + 1
            )));
        }
        let mut spares = [0u32; 32];
        for (i, s) in spares.iter_mut().enumerate() {
            *s = e.u32(&m, 96 + 4 * i);
        }
        Ok(Meta {
            big_endian: e.0,
            page_size: page_size as usize,
            pages,
            max_bucket,
            spares,
        })
    }

    /// The first page of `bucket` (`BS_TO_PAGE` in hash.h): buckets are allocated in
    /// doublings, and `spares[i]` is the offset from bucket to page number for the buckets
    /// of doubling `i`, where `i` is the ceiling of log2(bucket + 1).
    fn bucket_page(&self, bucket: u32) -> Res<u32> {
        let doubling = 32 - bucket.leading_zeros() as usize;
        self.spares
            .get(doubling)
            .and_then(|s| bucket.checked_add(*s))
            .ok_or_else(|| corrupt(format!("bucket {bucket}: its page number overflows")))
    }
}

/// The type byte of a page.
fn page_type(page: &[u8]) -> u8 {
    page.get(OFF_TYPE).copied().unwrap_or(P_INVALID)
}

/// Reads the multi-byte fields of pages in the database's byte order (true: big-endian).
#[derive(Clone, Copy)]
struct Endian(bool);

impl Endian {
    /// The u16 at `at`, 0 if out of range (callers only ask for offsets they checked or
    /// inside the page header).
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let Some(&[x, y]) = b.get(at..at.saturating_add(2)) else {
            return 0;
        };
        if self.0 {
            u16::from_be_bytes([x, y])
        } else {
            u16::from_le_bytes([x, y])
        }
    }

    /// The u32 at `at`, 0 if out of range.
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let Some(&[w, x, y, z]) = b.get(at..at.saturating_add(4)) else {
            return 0;
        };
        if self.0 {
            u32::from_be_bytes([w, x, y, z])
        } else {
            u32::from_le_bytes([w, x, y, z])
        }
    }
}

/// One walk over the database: the pages it has read (each at most once).
struct Walk<'a> {
    db: &'a dyn Store,
    e: Endian,
    page_size: usize,
    pages: u64,
    /// A bit per page: already read in this walk.
    seen: Vec<u64>,
}

impl<'a> Walk<'a> {
    fn new(db: &'a dyn Store, meta: &Meta) -> Walk<'a> {
        Walk {
            db,
            e: Endian(meta.big_endian),
            page_size: meta.page_size,
            pages: meta.pages,
            // `pages` is at most the file size over 512.
            seen: vec![0; usize::try_from(meta.pages.div_ceil(64)).unwrap_or(0)],
        }
    }

    /// Reads page `pgno` (`what` says which kind, for errors) into `buf`, after checking
    /// that it is inside the database and was not read before in this walk.
    fn read_page(&mut self, pgno: u32, what: &str, buf: &mut [u8]) -> Res<()> {
        if pgno == 0 || u64::from(pgno) >= self.pages {
            return Err(corrupt(format!(
                "{what} page {pgno} is outside the database (pages 1 to {})",
                self.pages.saturating_sub(1)
            )));
        }
        let word = self.seen.get_mut((pgno / 64) as usize);
        let bit = 1u64 << (pgno % 64);
        match word {
            Some(w) if *w & bit == 0 => *w |= bit,
            _ => {
                return Err(corrupt(format!(
                    "{what} page {pgno} is reached a second time (a loop in a page chain)"
                )));
            }
        }
        self.db
            .read_exact_at(u64::from(pgno) * self.page_size as u64, buf)?;
        Ok(())
    }

    /// Walks every bucket's chain of hash pages, from bucket 0 to `max_bucket`.
    ///
    /// Why buckets and not a scan of every page 1..=last_pgno: a page that was freed
    /// (emptied overflow pages of a bucket, overflow items deleted or replaced) goes on the
    /// free list with its old bytes left behind until it is reused (Berkeley DB resets its
    /// type, but older versions, recovery and partial writes give no such promise), and the
    /// pages of a doubling are reserved before they are written; only the bucket chains say
    /// which pages hold live entries. Following them never yields a stale entry, reads only
    /// the pages that matter, and gives the order of a cursor (and of db_dump).
    fn buckets(&mut self, meta: &Meta, each: &mut dyn FnMut(&[u8], &[u8])) -> Res<()> {
        let mut page = vec![0u8; self.page_size];
        let mut overflow = vec![0u8; self.page_size];
        for bucket in 0..=meta.max_bucket {
            let mut pgno = meta.bucket_page(bucket)?;
            let mut first = true;
            loop {
                self.read_page(pgno, "hash", &mut page)?;
                let kind = page_type(&page);
                if first && kind == P_INVALID && self.e.u16(&page, OFF_ENTRIES) == 0 {
                    break; // an empty bucket whose page was never written
                }
                if kind != P_HASH && kind != P_HASH_UNSORTED {
                    return Err(corrupt(format!(
                        "page {pgno} of bucket {bucket} has type {kind}, not a hash page"
                    )));
                }
                let own = self.e.u32(&page, OFF_PGNO);
                if own != pgno {
                    return Err(corrupt(format!(
                        "page {pgno} of bucket {bucket} calls itself page {own}"
                    )));
                }
                self.pairs(pgno, &page, &mut overflow, each)?;
                pgno = self.e.u32(&page, OFF_NEXT);
                if pgno == 0 {
                    break;
                }
                first = false;
            }
        }
        Ok(())
    }

    /// The pairs of one hash page (`P_HASH`): `entries` u16 offsets after the page header,
    /// even ones keys and odd ones values. Items are packed from the end of the page down
    /// in index order, so an item ends where the previous one starts (`LEN_HITEM`).
    fn pairs(
        &mut self,
        pgno: u32,
        page: &[u8],
        overflow: &mut [u8],
        each: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Res<()> {
        let entries = usize::from(self.e.u16(page, OFF_ENTRIES));
        if entries % 2 != 0 {
            return Err(corrupt(format!(
                "hash page {pgno} has an odd number of items ({entries})"
            )));
        }
        let index_end = PAGE_HEADER + 2 * entries;
        if index_end > page.len() {
            return Err(corrupt(format!(
                "hash page {pgno} claims {entries} items, more than fit in a page"
            )));
        }
        let mut end = page.len();
        let mut key: &[u8] = &[];
        for i in 0..entries {
            let start = usize::from(self.e.u16(page, PAGE_HEADER + 2 * i));
            let item = match page.get(start..end) {
                Some(item) if start >= index_end && start < end => item,
                _ => {
                    return Err(corrupt(format!(
                        "item {i} of hash page {pgno} starts at {start}, outside {index_end}..{end}"
                    )));
                }
            };
            end = start;
            if i % 2 == 0 {
                key = item;
                continue;
            }
            let Some(k) = self.item(pgno, key, true, overflow)? else {
                continue;
            };
            let Some(v) = self.item(pgno, item, false, overflow)? else {
                continue;
            };
            each(&k, &v);
        }
        Ok(())
    }

    /// The bytes of one item of hash page `pgno`: inline, or read from its overflow chain;
    /// `None` for duplicates (skipped).
    fn item<'p>(
        &mut self,
        pgno: u32,
        item: &'p [u8],
        is_key: bool,
        overflow: &mut [u8],
    ) -> Res<Option<Cow<'p, [u8]>>> {
        let what = if is_key { "key" } else { "value" };
        match item.split_first() {
            Some((&H_KEYDATA, bytes)) => Ok(Some(Cow::Borrowed(bytes))),
            Some((&H_OFFPAGE, _)) if item.len() >= HOFFPAGE_LEN => {
                let first = self.e.u32(item, 4);
                let total = self.e.u32(item, 8);
                self.overflow(pgno, first, total, overflow)
                    .map(|v| Some(Cow::Owned(v)))
            }
            Some((&(H_DUPLICATE | H_OFFDUP), _)) if !is_key => {
                log::warn!("bdb: skipping duplicate values on hash page {pgno}");
                Ok(None)
            }
            Some((&H_BLOB, _)) => Err(BdbError::Unsupported(format!(
                "an external (blob) {what} on hash page {pgno}"
            ))),
            Some((&kind, _)) => Err(corrupt(format!(
                "a {what} of type {kind} and {} bytes on hash page {pgno}",
                item.len()
            ))),
            None => Err(corrupt(format!("an empty {what} item on hash page {pgno}"))),
        }
    }

    /// An overflow item (`H_OFFPAGE` on hash page `from`): `total` bytes on the chain of
    /// `P_OVERFLOW` pages starting at `first`, each holding `hf_offset` bytes after its
    /// header. The length is checked against the cap and the file before anything is
    /// allocated, and the chain must hold exactly `total` bytes.
    fn overflow(&mut self, from: u32, first: u32, total: u32, buf: &mut [u8]) -> Res<Vec<u8>> {
        let room = self.pages.saturating_sub(1) * (self.page_size - PAGE_HEADER) as u64;
        if total > MAX_ITEM || u64::from(total) > room {
            return Err(corrupt(format!(
                "an overflow item on hash page {from} claims {total} bytes, more than {}",
                if total > MAX_ITEM {
                    "the blob size cap"
                } else {
                    "the file holds"
                }
            )));
        }
        let total = total as usize;
        let mut out = Vec::with_capacity(total);
        let mut pgno = first;
        loop {
            self.read_page(pgno, "overflow", buf)?;
            let kind = page_type(buf);
            let own = self.e.u32(buf, OFF_PGNO);
            if kind != P_OVERFLOW || own != pgno {
                return Err(corrupt(format!(
                    "page {pgno} of an overflow chain has type {kind} and calls itself page {own}"
                )));
            }
            let len = usize::from(self.e.u16(buf, OFF_HF_OFFSET));
            let data = buf
                .get(PAGE_HEADER..PAGE_HEADER + len)
                .ok_or_else(|| corrupt(format!("overflow page {pgno} claims {len} bytes")))?;
            if out.len() + len > total {
                return Err(corrupt(format!(
                    "the overflow chain from page {first} holds more than the {total} bytes \
                     declared on hash page {from}"
                )));
            }
            out.extend_from_slice(data);
            pgno = self.e.u32(buf, OFF_NEXT);
            if pgno == 0 {
                break;
            }
        }
        if out.len() != total {
            return Err(corrupt(format!(
                "the overflow chain from page {first} ends after {} of the {total} bytes \
                 declared on hash page {from}",
                out.len()
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

//! The SQLite file format, read-only: rpm's `rpmdb.sqlite` (rpm >= 4.16) and its `-wal`.
//!
//! Written from the file format documentation (sqlite.org's fileformat2), for one job: every
//! row of one rowid table, in rowid order, from an untrusted file. What is read:
//! - the 100-byte header ([`Database::open`]): page size (1 meaning 65536), reserved bytes
//!   at the end of each page, text encoding, the in-header page count when it is valid;
//! - table b-trees ([`Database::for_each_row`]): interior (0x05) and leaf (0x0d) pages,
//!   payloads spilled onto overflow page chains, the record format ([`Record`]);
//! - the schema on page 1 ([`Database::table`]): a table's root page, and its columns from a
//!   minimal parse of its `CREATE TABLE` ([`Table`]), an `INTEGER PRIMARY KEY` column being
//!   the rowid;
//! - the write-ahead log, when one is given: the frames of its last valid commit override
//!   the main file's pages, as SQLite recovers a WAL when it opens one without its `-shm`
//!   index (`wal.rs`).
//!
//! Not read: index b-trees, `WITHOUT ROWID` and virtual tables (errors), the freelist,
//! pointer-map pages, rollback journals (a hot `-journal` is not replayed: the main file as
//! it is, is read).
//!
//! Bounds: the page count is the in-header count (when valid) or what the file holds,
//! whichever is smaller (with a WAL, the size its last commit gives, at most the main file's
//! pages plus the WAL's); every page number is checked against it; a walk reads each page at
//! most once (a bit set of visited pages, shared by b-tree and overflow pages, so loops and
//! cross-links are errors), at most 64 levels deep; a payload is at most what its overflow
//! pages can hold. Pages are read through the [`Store`] one at a time, with a cache of a few.
//! A damaged database yields the rows read before the damage, then an error.

mod btree;
mod record;
mod schema;
#[cfg(test)]
mod tests;
mod wal;

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

pub use record::{Record, Value};
pub use schema::{Column, Table};

use super::{Store, StoreError};

/// Why the database could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqliteError {
    /// The file does not start with "SQLite format 3\0" (or is shorter than its header).
    #[error("not an SQLite 3 database")]
    NotSqlite,
    /// A valid database using something this reader does not read.
    #[error("unsupported SQLite database: {0}")]
    Unsupported(String),
    /// The file breaks the format.
    #[error("corrupt SQLite database: {0}")]
    Corrupt(String),
    /// The schema has no table of that name.
    #[error("no table {0:?} in the SQLite database")]
    NoTable(String),
    /// The table has no column of that name.
    #[error("table {table:?} has no column {column:?}")]
    NoColumn {
        /// The table.
        table: String,
        /// The column asked for.
        column: String,
    },
    /// Reading the database or its WAL failed.
    #[error("reading the SQLite database: {0}")]
    Store(#[from] StoreError),
}

fn corrupt(msg: impl Into<String>) -> SqliteError {
    SqliteError::Corrupt(msg.into())
}

/// Calls `each` with the blob column of every row of table `Packages`, in rowid order.
///
/// This is rpm's table (`CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,
/// blob BLOB NOT NULL)`); each blob is one rpm header. `wal` is `rpmdb.sqlite-wal` when the
/// file is there (an empty or invalid one is ignored, as SQLite does). A row whose blob is
/// NULL or not a blob is skipped with a warning. On damage, the rows before it have been
/// delivered when the error comes back.
pub fn packages(
    db: &dyn Store,
    wal: Option<&dyn Store>,
    each: &mut dyn FnMut(&[u8]),
) -> Result<(), SqliteError> {
    let database = Database::open(db, wal)?;
    let table = database
        .table("Packages")?
        .ok_or_else(|| SqliteError::NoTable("Packages".into()))?;
    let blob = table.column("blob").ok_or_else(|| SqliteError::NoColumn {
        table: table.name.clone(),
        column: "blob".into(),
    })?;
    database.for_each_row(table.root, &mut |rowid, record| {
        match table.value(record, rowid, blob)? {
            Value::Blob(b) => each(b),
            Value::Null => log::warn!("rpmdb.sqlite: Packages row {rowid} has no blob; skipped"),
            other => log::warn!(
                "rpmdb.sqlite: Packages row {rowid} holds {} where the header blob should be; \
                 skipped",
                other.kind()
            ),
        }
        Ok(())
    })
}

/// How the database stores text (header offset 56).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 (1, or 0 in a database that has never been written to).
    Utf8,
    /// UTF-16 little-endian (2).
    Utf16Le,
    /// UTF-16 big-endian (3).
    Utf16Be,
}

/// What the 100-byte header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    page_size: u32,
    reserved: u32,
    encoding: TextEncoding,
    /// The in-header page count, when it is valid (non-zero, and the change counter at 24
    /// equals the version-valid-for number at 92).
    page_count: Option<u32>,
}

const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// A page size as stored (big-endian u16 at offset 16, 1 meaning 65536) or in a WAL header.
fn valid_page_size(size: u32) -> bool {
    size.is_power_of_two() && (512..=65536).contains(&size)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Header {
    fn parse(h: &[u8]) -> Result<Header, SqliteError> {
        if h.len() < 100 || &h[..16] != MAGIC {
            return Err(SqliteError::NotSqlite);
        }
        let page_size = match be16(h, 16) {
            1 => 65536,
            n => u32::from(n),
        };
        if !valid_page_size(page_size) {
            return Err(corrupt(format!(
                "page size {page_size} is not a power of two from 512 to 65536"
            )));
        }
        // Read version (19): 1 rollback journal, 2 WAL; above 2 nothing may read the file.
        // The write version (18) only matters to writers.
        if h[19] > 2 {
            return Err(SqliteError::Unsupported(format!(
                "file format read version {}",
                h[19]
            )));
        }
        let reserved = u32::from(h[20]);
        if page_size - reserved < 480 {
            return Err(corrupt(format!(
                "{reserved} reserved bytes leave less than 480 usable in a {page_size}-byte page"
            )));
        }
        if h[21..24] != [64, 32, 32] {
            return Err(corrupt("payload fractions are not 64, 32, 32"));
        }
        let encoding = match be32(h, 56) {
            0 | 1 => TextEncoding::Utf8,
            2 => TextEncoding::Utf16Le,
            3 => TextEncoding::Utf16Be,
            n => return Err(corrupt(format!("text encoding {n}"))),
        };
        let count = be32(h, 28);
        let page_count = (count != 0 && h[24..28] == h[92..96]).then_some(count);
        Ok(Header {
            page_size,
            reserved,
            encoding,
            page_count,
        })
    }
}

/// Pages kept in memory by [`Database::page`].
const CACHE_PAGES: usize = 4;

/// An SQLite database file (and WAL) opened for reading.
pub struct Database<'a> {
    db: &'a dyn Store,
    /// The WAL and which of its frames hold which pages, when one applies.
    wal: Option<(&'a dyn Store, wal::WalIndex)>,
    page_size: u32,
    usable: u32,
    page_count: u32,
    encoding: TextEncoding,
    /// The pages read last, most recent first.
    cache: RefCell<Vec<(u32, Rc<[u8]>)>>,
}

impl<'a> Database<'a> {
    /// Reads the header of `db` and, when `wal` is given and valid, the frames of its last
    /// commit. An invalid WAL header, a WAL of another page size or a WAL without a commit
    /// is ignored (the main file is read as it is).
    pub fn open(db: &'a dyn Store, wal: Option<&'a dyn Store>) -> Result<Self, SqliteError> {
        let size = db.size();
        if size < 100 {
            return Err(SqliteError::NotSqlite);
        }
        let mut h = [0u8; 100];
        db.read_exact_at(0, &mut h)?;
        let mut header = Header::parse(&h)?;
        let page_size = header.page_size;
        let file_pages = u32::try_from(size / u64::from(page_size)).unwrap_or(u32::MAX);
        let wal = match wal {
            Some(store) => wal::WalIndex::read(store, page_size)?.map(|index| (store, index)),
            None => None,
        };
        let mut database = Database {
            db,
            wal,
            page_size,
            usable: page_size - header.reserved,
            page_count: file_pages,
            encoding: header.encoding,
            cache: RefCell::new(Vec::new()),
        };
        if let Some((_, index)) = &database.wal {
            // Every page past the main file's end is in the WAL in a valid database.
            let frames = u32::try_from(index.pages()).unwrap_or(u32::MAX);
            database.page_count = index.db_size().min(file_pages.saturating_add(frames));
            if index.frame(1).is_some() {
                let page1 = database.page(1)?;
                header = Header::parse(&page1[..100]).map_err(|e| match e {
                    SqliteError::NotSqlite => corrupt("the WAL's page 1 has no SQLite header"),
                    e => e,
                })?;
                if header.page_size != page_size {
                    return Err(corrupt(format!(
                        "the WAL's page 1 says pages of {} bytes, the file {page_size}",
                        header.page_size
                    )));
                }
                database.usable = page_size - header.reserved;
                database.encoding = header.encoding;
            }
        }
        if let Some(count) = header.page_count {
            database.page_count = database.page_count.min(count);
        }
        if database.page_count == 0 {
            return Err(corrupt(format!(
                "{size} bytes hold no whole page of {page_size} bytes"
            )));
        }
        Ok(database)
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// The usable part of each page (the page size less the reserved bytes).
    pub fn usable_size(&self) -> u32 {
        self.usable
    }

    /// How many pages the database has (see the module's bounds).
    pub fn page_count(&self) -> u32 {
        self.page_count
    }

    /// How text is stored.
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// Whether a WAL is applied.
    pub fn has_wal(&self) -> bool {
        self.wal.is_some()
    }

    /// Text as stored ([`Value::Text`]) decoded from the database's encoding (invalid
    /// sequences become U+FFFD).
    pub fn decode_text(&self, bytes: &[u8]) -> String {
        let units = |be: bool| {
            bytes.chunks_exact(2).map(move |c| {
                if be {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
        };
        let utf16 = |be: bool| {
            char::decode_utf16(units(be))
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect()
        };
        match self.encoding {
            TextEncoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            TextEncoding::Utf16Le => utf16(false),
            TextEncoding::Utf16Be => utf16(true),
        }
    }

    /// `n` when it is a page of the database.
    fn check_page(&self, n: u32) -> Result<u32, SqliteError> {
        if n == 0 || n > self.page_count {
            return Err(corrupt(format!(
                "page {n} is out of range (the database has {} pages)",
                self.page_count
            )));
        }
        Ok(n)
    }

    /// Page `n` (1-based), from the WAL when its last commit holds it, else from the file.
    fn page(&self, n: u32) -> Result<Rc<[u8]>, SqliteError> {
        self.check_page(n)?;
        let mut cache = self.cache.borrow_mut();
        if let Some(i) = cache.iter().position(|(p, _)| *p == n) {
            let entry = cache.remove(i);
            let page = entry.1.clone();
            cache.insert(0, entry);
            return Ok(page);
        }
        let mut buf = vec![0u8; self.page_size as usize];
        match self.wal.as_ref().and_then(|(s, i)| Some((*s, i.frame(n)?))) {
            Some((store, offset)) => store.read_exact_at(offset, &mut buf)?,
            None => self
                .db
                .read_exact_at(u64::from(n - 1) * u64::from(self.page_size), &mut buf)?,
        }
        let page: Rc<[u8]> = buf.into();
        cache.insert(0, (n, page.clone()));
        cache.truncate(CACHE_PAGES);
        Ok(page)
    }
}

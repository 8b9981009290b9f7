//! Table b-trees: interior pages (0x05) of child pointers and rowid keys, leaf pages (0x0d)
//! of rows, payloads spilled onto chains of overflow pages.

use alloc::borrow::Cow;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::ControlFlow;

use super::record::{Record, varint};
use super::{Database, SqliteError, be16, be32, corrupt};

/// How many levels a b-tree may have (SQLite's own cursors stop at 20).
pub(super) const MAX_DEPTH: usize = 64;

/// The largest row payload read: SQLite's own limit is 2^31 - 1 (SQLITE_MAX_LENGTH), but a
/// row is assembled in memory, so it is held to the blob limit of every reader
/// ([`crate::pkgdb::MAX_BLOB`]).
const MAX_PAYLOAD: u64 = crate::pkgdb::MAX_BLOB;

/// What a walk calls with each row; `Break` stops it.
pub(super) type RowFn<'f> =
    dyn FnMut(i64, &Record<'_>) -> Result<ControlFlow<()>, SqliteError> + 'f;

/// Pages already read by one walk.
struct PageSet(Vec<u64>);

impl PageSet {
    fn new(pages: u32) -> PageSet {
        PageSet(vec![0; pages as usize / 64 + 1])
    }

    /// Marks `n`; false when it was marked already.
    fn insert(&mut self, n: u32) -> bool {
        let (word, bit) = (n as usize / 64, 1u64 << (n % 64));
        let new = self.0[word] & bit == 0;
        self.0[word] |= bit;
        new
    }
}

/// A b-tree page's header and cell pointer array.
#[derive(Debug)]
pub(super) struct BtreePage {
    pub(super) number: u32,
    pub(super) leaf: bool,
    pub(super) cells: usize,
    /// Where the cell pointer array starts.
    pointers: usize,
    /// The right-most child (interior pages).
    pub(super) right: u32,
}

impl BtreePage {
    /// Reads the header of page `number` (at offset 100 on page 1), whose first `usable`
    /// bytes are `data`.
    pub(super) fn parse(data: &[u8], number: u32) -> Result<BtreePage, SqliteError> {
        let hdr = if number == 1 { 100 } else { 0 };
        let leaf = match data[hdr] {
            0x0d => true,
            0x05 => false,
            0x02 | 0x0a => {
                return Err(corrupt(format!(
                    "page {number} is an index b-tree page where a table's is expected"
                )));
            }
            t => {
                return Err(corrupt(format!(
                    "page {number} is not a b-tree page (type {t:#04x})"
                )));
            }
        };
        let cells = usize::from(be16(data, hdr + 3));
        let pointers = hdr + if leaf { 8 } else { 12 };
        if pointers + 2 * cells > data.len() {
            return Err(corrupt(format!(
                "page {number}: {cells} cell pointers do not fit in the page"
            )));
        }
        let right = if leaf { 0 } else { be32(data, hdr + 8) };
        Ok(BtreePage {
            number,
            leaf,
            cells,
            pointers,
            right,
        })
    }

    /// Where cell `i` starts: after the pointer array and at least 4 bytes before the end.
    pub(super) fn cell(&self, data: &[u8], i: usize) -> Result<usize, SqliteError> {
        let at = usize::from(be16(data, self.pointers + 2 * i));
        let first = self.pointers + 2 * self.cells;
        if at < first || at + 4 > data.len() {
            return Err(corrupt(format!(
                "page {}: cell {i} at offset {at} is outside the cell area ({first} to {})",
                self.number,
                data.len()
            )));
        }
        Ok(at)
    }

    /// An interior page's children, left to right: each cell's left child, then the
    /// right-most pointer.
    fn children(&self, data: &[u8]) -> Result<Vec<u32>, SqliteError> {
        let mut children = Vec::with_capacity(self.cells + 1);
        for i in 0..self.cells {
            let at = self.cell(data, i)?;
            children.push(be32(data, at));
        }
        children.push(self.right);
        Ok(children)
    }
}

/// How much of a `p`-byte payload a table leaf cell keeps on its page when the usable page
/// size is `u`.
pub(super) fn local_size(p: u64, u: u32) -> u64 {
    let u = u64::from(u);
    let x = u - 35;
    if p <= x {
        return p;
    }
    let m = (u - 12) * 32 / 255 - 23;
    let k = m + (p - m) % (u - 4);
    if k <= x { k } else { m }
}

impl Database<'_> {
    /// Calls `each` with the rowid and record of every row of the table b-tree rooted at
    /// page `root`, in rowid order (left to right), stopping at the first error `each`
    /// returns. On damage, the rows before it have been given to `each`.
    pub fn for_each_row(
        &self,
        root: u32,
        each: &mut dyn FnMut(i64, &Record<'_>) -> Result<(), SqliteError>,
    ) -> Result<(), SqliteError> {
        self.walk(root, &mut |rowid, record| {
            each(rowid, record)?;
            Ok(ControlFlow::Continue(()))
        })
    }

    /// [`Database::for_each_row`] that `each` can stop early.
    pub(super) fn walk(&self, root: u32, each: &mut RowFn<'_>) -> Result<(), SqliteError> {
        let mut visited = PageSet::new(self.page_count);
        // The interior pages above the current one: their children, and the next to visit.
        let mut stack: Vec<(Vec<u32>, usize)> = Vec::new();
        let mut last_rowid: Option<i64> = None;
        let mut next = Some(root);
        loop {
            if let Some(number) = next.take() {
                self.visit(&mut visited, number, "b-tree")?;
                let page = self.page(number)?;
                let data = &page[..self.usable as usize];
                let bt = BtreePage::parse(data, number)?;
                if bt.leaf {
                    for i in 0..bt.cells {
                        let (rowid, payload) = self.leaf_cell(data, &bt, i, &mut visited)?;
                        if last_rowid.is_some_and(|last| rowid <= last) {
                            return Err(corrupt(format!(
                                "page {number}: rowid {rowid} comes after rowid {}",
                                last_rowid.unwrap_or_default()
                            )));
                        }
                        last_rowid = Some(rowid);
                        let record = Record::new(&payload).map_err(|e| match e {
                            SqliteError::Corrupt(m) => {
                                corrupt(format!("page {number}, row {rowid}: {m}"))
                            }
                            e => e,
                        })?;
                        if each(rowid, &record)?.is_break() {
                            return Ok(());
                        }
                    }
                } else {
                    if stack.len() >= MAX_DEPTH {
                        return Err(corrupt(format!(
                            "the b-tree at page {root} is more than {MAX_DEPTH} levels deep"
                        )));
                    }
                    stack.push((bt.children(data)?, 0));
                }
            }
            let Some((children, i)) = stack.last_mut() else {
                return Ok(());
            };
            if let Some(&child) = children.get(*i) {
                *i += 1;
                next = Some(child);
            } else {
                stack.pop();
            }
        }
    }

    /// Marks page `n` read by this walk: an error when it is out of range or was read
    /// already (a loop, or a page in two places).
    fn visit(&self, visited: &mut PageSet, n: u32, what: &str) -> Result<(), SqliteError> {
        self.check_page(n)
            .map_err(|e| corrupt(format!("{what} page: {}", message(e))))?;
        if !visited.insert(n) {
            return Err(corrupt(format!(
                "{what} page {n} is reached a second time (a loop or a shared page)"
            )));
        }
        Ok(())
    }

    /// Leaf cell `i` of `bt`: its rowid and its whole payload (gathered from overflow pages
    /// when it spills).
    fn leaf_cell<'p>(
        &self,
        data: &'p [u8],
        bt: &BtreePage,
        i: usize,
        visited: &mut PageSet,
    ) -> Result<(i64, Cow<'p, [u8]>), SqliteError> {
        let number = bt.number;
        let at = bt.cell(data, i)?;
        let cut = || corrupt(format!("page {number}: cell {i} runs past the page"));
        let (size, n1) = varint(data, at).ok_or_else(cut)?;
        let (rowid, n2) = varint(data, at + n1).ok_or_else(cut)?;
        let rowid = rowid as i64;
        if size > MAX_PAYLOAD {
            return Err(corrupt(format!(
                "page {number}: row {rowid} has a payload of {size} bytes"
            )));
        }
        let start = at + n1 + n2;
        let local = local_size(size, self.usable) as usize;
        let spills = (local as u64) < size;
        let end = start + local + if spills { 4 } else { 0 };
        if end > data.len() {
            return Err(cut());
        }
        if !spills {
            return Ok((rowid, Cow::Borrowed(&data[start..end])));
        }
        let per_page = u64::from(self.usable - 4);
        let mut remaining = size - local as u64;
        if remaining.div_ceil(per_page) > u64::from(self.page_count) {
            return Err(corrupt(format!(
                "page {number}: row {rowid}'s {size}-byte payload needs more overflow pages \
                 than the database has"
            )));
        }
        let mut payload = Vec::with_capacity(size as usize);
        payload.extend_from_slice(&data[start..start + local]);
        let mut next = be32(data, start + local);
        while remaining > 0 {
            if next == 0 {
                return Err(corrupt(format!(
                    "row {rowid}: its overflow chain ends {remaining} bytes early"
                )));
            }
            self.visit(visited, next, "overflow")
                .map_err(|e| corrupt(format!("row {rowid}: {}", message(e))))?;
            let page = self.page(next)?;
            let take = remaining.min(per_page) as usize;
            payload.extend_from_slice(&page[4..4 + take]);
            remaining -= take as u64;
            next = be32(&page, 0);
        }
        Ok((rowid, Cow::Owned(payload)))
    }
}

/// An error's message, without the "corrupt" prefix when there is one.
fn message(e: SqliteError) -> alloc::string::String {
    match e {
        SqliteError::Corrupt(m) => m,
        e => format!("{e}"),
    }
}

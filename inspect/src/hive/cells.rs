//! The hive bins and the cells in them, read on demand.
//!
//! hbins are found by walking their headers from the first one, lazily: a cell offset past
//! the hbins walked so far walks on until the hbin holding it. Each hbin's cells are walked
//! once, when the hbin is first used, to learn where allocated cells start (as hivex's bitmap
//! of valid blocks does): a cell offset must be the start of an allocated cell of an hbin
//! that lies inside the hive bins area and the file. hbins up to [`CACHE_DATA_MAX`] bytes are
//! cached whole; larger ones (only huge values in old hives have them) keep just their map of
//! cell starts, their cells being read from the store.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::HiveError;
use crate::store::Store;

/// Where the first hbin starts in the file: cell offsets are relative to it.
pub(super) const BINS_START: u64 = 4096;
/// The size of an hbin's header.
const HBIN_HEADER: u32 = 32;
/// hbins larger than this are refused (a cell map of 1 bit per 4 bytes is kept for each).
const MAX_HBIN: u32 = 32 << 20;
/// hbins up to this size are cached whole.
const CACHE_DATA_MAX: u32 = 256 << 10;
/// What the cache may hold (hbin data and cell maps), besides the hbin in use.
const CACHE_BUDGET: usize = 2 << 20;

/// One allocated cell: its offset (relative to the first hbin) and the size of its data
/// (the cell's size less its 4-byte size field).
#[derive(Clone, Copy, Debug)]
pub(super) struct Cell {
    pub off: u32,
    pub len: u32,
    bin: (u32, u32),
}

struct Page {
    /// The whole hbin, when small enough to cache.
    data: Option<Vec<u8>>,
    /// Bit `i` set: an allocated cell starts at hbin offset `4 * i`.
    starts: Vec<u64>,
    /// Why the hbin's cells could not be walked.
    bad: Option<String>,
    tick: u64,
}

impl Page {
    fn cost(&self) -> usize {
        self.data.as_ref().map_or(0, Vec::len) + self.starts.len() * 8
    }
}

#[derive(Default)]
struct State {
    /// hbins found so far, (start, size), in file order.
    bins: Vec<(u32, u32)>,
    /// Where the next hbin is expected.
    next: u32,
    /// No more hbins.
    done: bool,
    cache: BTreeMap<u32, Page>,
    used: usize,
    tick: u64,
}

/// The hbins and cells of one hive.
pub(super) struct Cells<'a> {
    store: &'a dyn Store,
    lenient: bool,
    /// hbins start below this (the base block's hive bins size, capped by the file).
    bins_end: u32,
    /// The file's size less the base block: hbins end at or before this.
    file_end: u64,
    state: RefCell<State>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Cells<'a> {
    pub(super) fn new(store: &'a dyn Store, bins_size: u32, lenient: bool) -> Cells<'a> {
        let file_end = store.size().saturating_sub(BINS_START);
        let bins_end = u64::from(bins_size).min(file_end) as u32;
        Cells {
            store,
            lenient,
            bins_end,
            file_end,
            state: RefCell::new(State::default()),
        }
    }

    /// The number of hbins walked so far (tests).
    #[cfg(test)]
    pub(super) fn bins_walked(&self) -> usize {
        self.state.borrow().bins.len()
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), HiveError> {
        self.store.read_exact_at(off, buf).map_err(HiveError::Store)
    }

    /// Walks one more hbin header (or, lenient, skips garbage to the next one).
    fn walk_one(&self, st: &mut State) -> Result<(), HiveError> {
        let mut pos = st.next;
        let mut hdr = [0u8; HBIN_HEADER as usize];
        loop {
            if pos >= self.bins_end || u64::from(pos) + u64::from(HBIN_HEADER) > self.file_end {
                st.done = true;
                return Ok(());
            }
            self.read(BINS_START + u64::from(pos), &mut hdr)?;
            if &hdr[..4] == b"hbin" {
                break;
            }
            if !self.lenient {
                return Err(HiveError::Corrupt(format!(
                    "no hbin at {pos:#x} (after {} hbins)",
                    st.bins.len()
                )));
            }
            // As hivex in its unsafe mode: look for the next hbin, 4 KiB further on.
            pos = match pos.checked_add(4096) {
                Some(p) => p,
                None => {
                    st.done = true;
                    return Ok(());
                }
            };
        }
        let declared = u32_at(&hdr, 4);
        let size = u32_at(&hdr, 8);
        if size <= HBIN_HEADER || !size.is_multiple_of(4096) {
            return Err(HiveError::Corrupt(format!(
                "hbin at {pos:#x}: size {size:#x} is not a multiple of 4096"
            )));
        }
        if declared != pos {
            return Err(HiveError::Corrupt(format!(
                "hbin at {pos:#x} says it is at {declared:#x}"
            )));
        }
        if u64::from(pos) + u64::from(size) > self.file_end {
            return Err(HiveError::Corrupt(format!(
                "hbin at {pos:#x}: size {size:#x} runs past the end of the file"
            )));
        }
        if size > MAX_HBIN {
            return Err(HiveError::Unsupported(format!(
                "hbin at {pos:#x}: size {size:#x} is over {MAX_HBIN:#x}"
            )));
        }
        st.bins.push((pos, size));
        match pos.checked_add(size) {
            Some(n) => st.next = n,
            None => st.done = true,
        }
        Ok(())
    }

    /// The hbin holding offset `off`, if any.
    fn locate(&self, off: u32) -> Result<Option<(u32, u32)>, HiveError> {
        let mut st = self.state.borrow_mut();
        while off >= st.next && !st.done {
            // Each step moves `next` forward by 4 KiB at least, or ends the walk.
            self.walk_one(&mut st)?;
        }
        let i = st.bins.partition_point(|&(s, _)| s <= off);
        Ok(i.checked_sub(1)
            .and_then(|i| st.bins.get(i).copied())
            .filter(|&(s, size)| u64::from(off) < u64::from(s) + u64::from(size)))
    }

    /// Reads hbin (start, size) and walks its cells.
    fn load(&self, start: u32, size: u32) -> Result<Page, HiveError> {
        let data = if size <= CACHE_DATA_MAX {
            let mut d = vec![0u8; size as usize];
            self.read(BINS_START + u64::from(start), &mut d)?;
            Some(d)
        } else {
            None
        };
        let mut starts = vec![0u64; (size as usize / 4).div_ceil(64)];
        let mut bad = None;
        let mut p = HBIN_HEADER;
        // Every step moves on by 8 bytes at least: at most size / 8 steps.
        while p < size {
            let raw = match &data {
                Some(d) => u32_at(d, p as usize),
                None => {
                    let mut b = [0u8; 4];
                    self.read(BINS_START + u64::from(start) + u64::from(p), &mut b)?;
                    u32::from_le_bytes(b)
                }
            } as i32;
            let len = raw.unsigned_abs();
            if len < 8 || !len.is_multiple_of(4) {
                if self.lenient {
                    // hivex (unsafe) gives up on the rest of the hbin.
                    break;
                }
                bad = Some(format!(
                    "cell at {:#x}: size {raw} is not a multiple of 4 over 4",
                    start + p
                ));
                break;
            }
            if u64::from(p) + u64::from(len) > u64::from(size) {
                bad = Some(format!(
                    "cell at {:#x}: size {len:#x} runs past the end of its hbin at {start:#x}",
                    start + p
                ));
                break;
            }
            if raw < 0 {
                let i = (p / 4) as usize;
                starts[i / 64] |= 1 << (i % 64);
            }
            p += len;
        }
        Ok(Page {
            data,
            starts,
            bad,
            tick: 0,
        })
    }

    /// Runs `f` over hbin (start, size), loading it into the cache first.
    fn with_page<R>(
        &self,
        bin: (u32, u32),
        f: impl FnOnce(&Page) -> Result<R, HiveError>,
    ) -> Result<R, HiveError> {
        let mut st = self.state.borrow_mut();
        st.tick += 1;
        let tick = st.tick;
        if !st.cache.contains_key(&bin.0) {
            drop(st);
            let page = self.load(bin.0, bin.1)?;
            st = self.state.borrow_mut();
            let cost = page.cost();
            while st.used + cost > CACHE_BUDGET && !st.cache.is_empty() {
                let oldest = st.cache.iter().min_by_key(|(_, p)| p.tick).map(|(k, _)| *k);
                if let Some(p) = oldest.and_then(|k| st.cache.remove(&k)) {
                    st.used -= p.cost();
                }
            }
            st.used += cost;
            st.cache.insert(bin.0, page);
        }
        let page = st
            .cache
            .get_mut(&bin.0)
            .ok_or_else(|| HiveError::Corrupt(String::from("hbin cache")))?;
        page.tick = tick;
        f(page)
    }

    /// The allocated cell at `off`; `what` names it in errors.
    pub(super) fn cell(&self, off: u32, what: &dyn Fn() -> String) -> Result<Cell, HiveError> {
        let err = |why: &str| HiveError::Corrupt(format!("{} at {off:#x}: {why}", what()));
        if !off.is_multiple_of(4) {
            return Err(err("not 4-byte aligned"));
        }
        if off >= self.bins_end {
            return Err(err(&format!(
                "outside the hive bins ({:#x} bytes)",
                self.bins_end
            )));
        }
        let Some(bin) = self.locate(off)? else {
            return Err(err("not inside an hbin"));
        };
        let rel = off - bin.0;
        if rel < HBIN_HEADER {
            return Err(err("inside an hbin header"));
        }
        let raw = self.with_page(bin, |page| {
            if let Some(bad) = &page.bad {
                return Err(HiveError::Corrupt(format!(
                    "{} at {off:#x}: hbin at {:#x}: {bad}",
                    what(),
                    bin.0
                )));
            }
            let i = (rel / 4) as usize;
            if page
                .starts
                .get(i / 64)
                .is_none_or(|w| w & (1 << (i % 64)) == 0)
            {
                return Err(err("not the start of an allocated cell"));
            }
            Ok(page.data.as_ref().map(|d| u32_at(d, rel as usize)))
        })?;
        let raw = match raw {
            Some(r) => r,
            None => {
                let mut b = [0u8; 4];
                self.read(BINS_START + u64::from(off), &mut b)?;
                u32::from_le_bytes(b)
            }
        } as i32;
        Ok(Cell {
            off,
            len: raw.unsigned_abs().saturating_sub(4),
            bin,
        })
    }

    /// `n` bytes of `cell`'s data from `pos`; the caller bounds `n`.
    pub(super) fn read_cell(&self, cell: &Cell, pos: u32, n: usize) -> Result<Vec<u8>, HiveError> {
        if u64::from(pos) + n as u64 > u64::from(cell.len) {
            return Err(HiveError::Corrupt(format!(
                "cell at {:#x}: {n} bytes at {pos} are past its end ({} bytes)",
                cell.off, cell.len
            )));
        }
        // Inside the cell, so inside its hbin: no overflow.
        let rel = (cell.off - cell.bin.0 + 4 + pos) as usize;
        let mut out = vec![0u8; n];
        let cached = self.with_page(cell.bin, |page| {
            Ok(match &page.data {
                Some(d) => match d.get(rel..rel + n) {
                    Some(s) => {
                        out.copy_from_slice(s);
                        true
                    }
                    None => false,
                },
                None => false,
            })
        })?;
        if !cached {
            self.read(
                BINS_START + u64::from(cell.off) + 4 + u64::from(pos),
                &mut out,
            )?;
        }
        Ok(out)
    }
}

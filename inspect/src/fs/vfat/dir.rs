//! Directory entries: 32-byte records, long-name runs before their short entry, parsed as
//! Linux's vfat `readdir` and lookup parse them (fs/fat/dir.c).
//!
//! A long-name run is taken only when it is whole: the first slot carries the last-slot
//! flag (0x40) and a count of 1 to 20, each following slot the next lower number and the
//! same checksum, and the short entry after it the checksum of its own name. A slot out of
//! sequence starts a new run there; a run broken by a short entry leaves that entry to
//! stand alone; a run whose checksum does not match its short entry leaves the short name
//! in force (Linux's fallback). Deleted (0xE5) and free (0x00) records and volume labels
//! are skipped, and so are `.` and `..`. A free record does not end the directory: Linux
//! reads every record of the directory, and so does this module (formatters zero a
//! directory's clusters, so nothing lies past the first free record on a sane volume).

use alloc::string::String;
use alloc::vec::Vec;

use super::name::{checksum, short_name, utf16_to_string};

/// Attribute bits.
pub const ATTR_RO: u8 = 0x01;
/// A volume label (or, with the other three low bits, a long-name slot).
pub const ATTR_VOLUME: u8 = 0x08;
/// A directory.
pub const ATTR_DIR: u8 = 0x10;
/// A long-name slot: read-only, hidden, system and volume together.
pub const ATTR_LFN: u8 = 0x0F;

/// Most UTF-16 units in a long name: 20 slots of 13 (Linux's bound), and a terminator.
const MAX_UNITS: usize = 20 * 13 + 1;

/// One directory entry: a short entry with its long name, if it had a whole one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name Linux shows: the long name, else the short one.
    pub name: String,
    /// The short name as Linux shows it (lookups match it too).
    pub short: String,
    /// Attribute byte.
    pub attr: u8,
    /// First cluster (0: none).
    pub start: u32,
    /// Size in bytes (files).
    pub size: u32,
    /// Last write date and time (DOS format).
    pub wdate: u16,
    /// Last write time.
    pub wtime: u16,
    /// Index of the short entry's record in the directory.
    pub index: usize,
}

impl Entry {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.attr & ATTR_DIR != 0
    }
}

fn rec(data: &[u8], i: usize) -> Option<&[u8]> {
    data.get(i * 32..i * 32 + 32)
}

fn raw_name(r: &[u8]) -> [u8; 11] {
    let mut n = [0u8; 11];
    n.copy_from_slice(&r[..11]);
    n
}

/// How a long-name run ended.
enum Long {
    /// Not a usable run: go on at record `next`.
    Invalid { next: usize },
    /// A record that is not a slot broke the run: parse it as a record of its own.
    Broken { at: usize },
    /// The directory ended inside the run.
    Eof,
    /// A run and its short entry at `short`; the name when the checksum matched.
    Found { short: usize, name: Option<String> },
}

/// Parses the long-name run starting at record `i` (a slot), as `fat_parse_long`.
fn parse_long(data: &[u8], mut i: usize) -> Long {
    let mut units = [0u16; MAX_UNITS];
    'run: loop {
        let Some(ds) = rec(data, i) else {
            return Long::Eof;
        };
        let id = ds[0];
        if id & 0x40 == 0 {
            return Long::Invalid { next: i + 1 };
        }
        let slots = id & !0x40;
        if slots == 0 || slots > 20 {
            return Long::Invalid { next: i + 1 };
        }
        let sum = ds[13];
        let mut ds = ds;
        let mut slot = slots;
        loop {
            slot -= 1;
            let off = slot as usize * 13;
            for (k, at) in (1..11)
                .step_by(2)
                .chain((14..26).step_by(2))
                .chain((28..32).step_by(2))
                .enumerate()
            {
                units[off + k] = u16::from_le_bytes([ds[at], ds[at + 1]]);
            }
            if ds[0] & 0x40 != 0 {
                units[off + 13] = 0;
            }
            i += 1;
            let Some(next) = rec(data, i) else {
                return Long::Eof;
            };
            if slot == 0 {
                break;
            }
            if next[11] != ATTR_LFN {
                return Long::Broken { at: i };
            }
            if next[0] & !0x40 != slot || next[13] != sum {
                continue 'run;
            }
            ds = next;
        }
        let Some(de) = rec(data, i) else {
            return Long::Eof;
        };
        if de[0] == 0xE5 {
            return Long::Invalid { next: i + 1 };
        }
        if de[11] == ATTR_LFN {
            continue 'run;
        }
        if de[0] == 0 || de[11] & ATTR_VOLUME != 0 {
            return Long::Invalid { next: i + 1 };
        }
        let name = (checksum(&raw_name(de)) == sum).then(|| utf16_to_string(&units));
        return Long::Found { short: i, name };
    }
}

/// The entries of a directory whose records are `data`, in on-disk order, without `.`,
/// `..`, deleted entries and volume labels. `fat32`: the high half of the first cluster
/// counts.
pub fn parse(data: &[u8], fat32: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(r) = rec(data, i) {
        let attr = r[11];
        if r[0] == 0xE5 || (attr != ATTR_LFN && (attr & ATTR_VOLUME != 0 || r[0] == 0)) {
            i += 1;
            continue;
        }
        let mut long = None;
        if attr == ATTR_LFN {
            match parse_long(data, i) {
                Long::Invalid { next } => {
                    i = next;
                    continue;
                }
                Long::Broken { at } => {
                    i = at;
                    continue;
                }
                Long::Eof => break,
                Long::Found { short, name } => {
                    i = short;
                    long = name.filter(|n| !n.is_empty());
                }
            }
        }
        let Some(r) = rec(data, i) else { break };
        let raw = raw_name(r);
        let short = short_name(&raw, r[12]);
        i += 1;
        let name = match long {
            Some(n) => n,
            None if short.is_empty() => continue,
            None => short.clone(),
        };
        if name == "." || name == ".." || short == "." || short == ".." {
            continue;
        }
        let hi = if fat32 {
            u16::from_le_bytes([r[20], r[21]]) as u32
        } else {
            0
        };
        out.push(Entry {
            name,
            short,
            attr: r[11],
            start: hi << 16 | u16::from_le_bytes([r[26], r[27]]) as u32,
            size: u32::from_le_bytes([r[28], r[29], r[30], r[31]]),
            wtime: u16::from_le_bytes([r[22], r[23]]),
            wdate: u16::from_le_bytes([r[24], r[25]]),
            index: i - 1,
        });
    }
    out
}

/// Subdirectory records in `data`, as Linux's `fat_subdirs` counts them (`.` and `..`
/// included): in use, not a label or slot, with the directory bit.
pub fn subdirs(data: &[u8]) -> usize {
    data.chunks_exact(32)
        .filter(|r| r[0] != 0 && r[0] != 0xE5 && r[11] & ATTR_VOLUME == 0 && r[11] & ATTR_DIR != 0)
        .count()
}

//! Windows registry hives (the regf format), read-only, `no_std + alloc`.
//!
//! Written from the format's public descriptions (Timothy Morgan's "The Windows NT Registry
//! File Format", libyal's "Windows NT Registry File (REGF) format"); where libguestfs's
//! Windows inspection depends on how hivex reads a hive, this reader does the same (noted on
//! each method). The only `no_std` crate for the format is GPL, hence this one.
//!
//! Supported: the base block (signature, checksum, version 1.x, root cell, hive bins size),
//! hbins, allocated cells, keys (`nk`, Latin-1 "compressed" and UTF-16LE names), values
//! (`vk`, data resident in the offset field or in a cell, or big data in a `db` cell's
//! segments), value lists, subkey lists `lf`/`lh`/`li` and `ri` (one level of index, as
//! Windows writes them). A dirty hive (sequence numbers unequal) is read as it is on disk,
//! as hivex does: the transaction logs are not replayed.
//!
//! The hive is read over a [`Store`], cells on demand (hives are tens of MiB). Every offset
//! is checked (it must be the start of an allocated cell of an hbin inside the hive bins
//! area and the file), every count is bounded by the size of its cell, subkey lists that
//! contain their own key or repeat an entry are refused, value data is capped at
//! [`MAX_VALUE`] before anything is allocated, and [`Hive::walk`] refuses a key reached
//! twice: any bytes give a result or an error in bounded time and memory.

mod cells;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use cells::Cells;

use crate::store::{Store, StoreError};

/// No value: `REG_NONE`.
pub const REG_NONE: u32 = 0;
/// A string (UTF-16LE, NUL-terminated): `REG_SZ`.
pub const REG_SZ: u32 = 1;
/// A string with `%VARIABLES%`: `REG_EXPAND_SZ`.
pub const REG_EXPAND_SZ: u32 = 2;
/// Bytes: `REG_BINARY`.
pub const REG_BINARY: u32 = 3;
/// A little-endian 32-bit number: `REG_DWORD`.
pub const REG_DWORD: u32 = 4;
/// A big-endian 32-bit number: `REG_DWORD_BIG_ENDIAN`.
pub const REG_DWORD_BIG_ENDIAN: u32 = 5;
/// A symbolic link (a UTF-16LE path): `REG_LINK`.
pub const REG_LINK: u32 = 6;
/// NUL-terminated UTF-16LE strings one after the other: `REG_MULTI_SZ`.
pub const REG_MULTI_SZ: u32 = 7;
/// A little-endian 64-bit number: `REG_QWORD`.
pub const REG_QWORD: u32 = 11;

/// The largest value data read, in bytes (hivex's `HIVEX_MAX_VALUE_LEN`): a longer value is
/// an error before anything is allocated.
pub const MAX_VALUE: u32 = 8_000_000;
/// The most subkeys a key may have (hivex's `HIVEX_MAX_SUBKEYS`).
pub const MAX_SUBKEYS: u32 = 70_000;
/// The most values a key may have (hivex's `HIVEX_MAX_VALUES`).
pub const MAX_VALUES: u32 = 110_000;
/// The longest key name, in characters (Windows' limit).
pub const MAX_KEY_NAME: usize = 255;
/// The longest value name, in characters (Windows' limit).
pub const MAX_VALUE_NAME: usize = 16_383;
/// The data one big-data (`db`) segment holds.
const DB_SEGMENT: u32 = 16_344;

/// Why a hive could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HiveError {
    /// The hive is damaged (or hostile): what is wrong, and where.
    #[error("corrupt hive: {0}")]
    Corrupt(String),
    /// The hive uses something this reader does not read (a version, a size).
    #[error("unsupported hive: {0}")]
    Unsupported(String),
    /// A value was read as a type it does not have (a DWORD as a string...).
    #[error("value {name:?} has type {kind}, not {wanted}")]
    Type {
        /// The value's name.
        name: String,
        /// Its type (`REG_*`).
        kind: u32,
        /// What it was read as.
        wanted: &'static str,
    },
    /// The hive file could not be read.
    #[error("hive read error: {0}")]
    Store(StoreError),
}

fn corrupt(s: String) -> HiveError {
    HiveError::Corrupt(s)
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    (u64::from(le32(b, at + 4)) << 32) | u64::from(le32(b, at))
}

/// Latin-1 bytes (a "compressed" name) as a string.
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// UTF-16LE as a string; invalid UTF-16 (an unpaired surrogate, an odd length) is an
/// error, as iconv makes it for hivex.
fn utf16(b: &[u8], what: &dyn Fn() -> String) -> Result<String, HiveError> {
    if !b.len().is_multiple_of(2) {
        return Err(corrupt(format!(
            "{}: odd UTF-16 length {}",
            what(),
            b.len()
        )));
    }
    char::decode_utf16(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])))
        .collect::<Result<String, _>>()
        .map_err(|e| corrupt(format!("{}: invalid UTF-16 ({e})", what())))
}

/// A name stored Latin-1 (`compressed`) or UTF-16LE, of at most `max` characters.
fn name(
    raw: &[u8],
    compressed: bool,
    max: usize,
    what: &dyn Fn() -> String,
) -> Result<String, HiveError> {
    let chars = if compressed { raw.len() } else { raw.len() / 2 };
    if chars > max {
        return Err(corrupt(format!(
            "{}: name of {chars} characters, over {max}",
            what()
        )));
    }
    if compressed {
        Ok(latin1(raw))
    } else {
        utf16(raw, what)
    }
}

/// The base block's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseBlock {
    /// Primary sequence number (incremented when a write starts).
    pub sequence1: u32,
    /// Secondary sequence number (set equal when the write completes).
    pub sequence2: u32,
    /// When the hive was last written (FILETIME: 100 ns units since 1601).
    pub last_written: u64,
    /// Major version (always 1).
    pub major: u32,
    /// Minor version (3 to 6 in practice; 4 and later may have big data).
    pub minor: u32,
    /// The root key's cell offset.
    pub root: u32,
    /// The size of the hive bins area.
    pub bins_size: u32,
    /// The file name Windows recorded (its last 31 characters), lossily decoded.
    pub file_name: String,
}

impl BaseBlock {
    /// A dirty hive: a write was started and not completed, so the logs hold changes the
    /// file lacks. It is read as it is on disk, as hivex does.
    pub fn is_dirty(&self) -> bool {
        self.sequence1 != self.sequence2
    }
}

/// A key (an `nk` cell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    offset: u32,
    flags: u16,
    last_written: u64,
    parent: u32,
    subkeys: u32,
    subkey_list: u32,
    values: u32,
    value_list: u32,
    name: Vec<u8>,
}

impl Key {
    /// Its cell offset (relative to the first hbin, as in the hive's own pointers): which
    /// key this is.
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// When it was last written (FILETIME).
    pub fn last_written(&self) -> u64 {
        self.last_written
    }

    /// The number of subkeys its `nk` cell records.
    pub fn subkey_count(&self) -> u32 {
        self.subkeys
    }

    /// The number of values its `nk` cell records.
    pub fn value_count(&self) -> u32 {
        self.values
    }

    /// Its parent's cell offset, as recorded (not checked).
    pub fn parent_offset(&self) -> u32 {
        self.parent
    }

    /// Its name: Latin-1 when "compressed" (flag 0x20), else UTF-16LE (as hivex's
    /// `hivex_node_name`; invalid UTF-16 is an error).
    pub fn name(&self) -> Result<String, HiveError> {
        let what = || format!("key at {:#x}", self.offset);
        name(&self.name, self.flags & 0x20 != 0, MAX_KEY_NAME, &what)
    }
}

/// A value (a `vk` cell): its name and type; its data is read with [`Hive::value_data`]
/// and the typed readers beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// Its name ("" for the key's default value, `@` in a .reg file).
    pub name: String,
    /// Its type (`REG_*`; any number, unknown types are read as bytes).
    pub kind: u32,
    offset: u32,
    raw_len: u32,
    data_offset: u32,
}

impl Value {
    /// Its cell offset.
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// The length of its data, as recorded.
    pub fn data_len(&self) -> u32 {
        self.raw_len & 0x7FFF_FFFF
    }

    /// Whether its data is held in the `vk` cell itself (4 bytes or fewer).
    pub fn is_resident(&self) -> bool {
        self.raw_len & 0x8000_0000 != 0
    }

    fn wrong(&self, wanted: &'static str) -> HiveError {
        HiveError::Type {
            name: self.name.clone(),
            kind: self.kind,
            wanted,
        }
    }
}

/// A registry hive read from a [`Store`].
pub struct Hive<'a> {
    cells: Cells<'a>,
    base: BaseBlock,
    lenient: bool,
}

impl<'a> Hive<'a> {
    /// Opens a hive, strictly: damage anywhere it reads is an error, as hivex's default.
    pub fn open(store: &'a dyn Store) -> Result<Hive<'a>, HiveError> {
        Hive::open_with(store, false)
    }

    /// Opens a hive leniently, as hivex's `HIVEX_OPEN_UNSAFE` (which libguestfs's
    /// inspection uses): garbage where an hbin should be is skipped to the next hbin (4 KiB
    /// steps), a bad cell size ends its hbin's cells, subkey list entries that are not keys
    /// are skipped, and a key with fewer subkeys than its count says is accepted.
    pub fn open_lenient(store: &'a dyn Store) -> Result<Hive<'a>, HiveError> {
        Hive::open_with(store, true)
    }

    fn open_with(store: &'a dyn Store, lenient: bool) -> Result<Hive<'a>, HiveError> {
        if store.size() < 0x2000 {
            return Err(corrupt(format!(
                "{} bytes: too small for a hive (base block and one hbin)",
                store.size()
            )));
        }
        let mut b = [0u8; 512];
        store.read_exact_at(0, &mut b).map_err(HiveError::Store)?;
        if &b[..4] != b"regf" {
            return Err(corrupt(String::from("no regf signature")));
        }
        let sum = (0..0x1FC).step_by(4).fold(0u32, |s, i| s ^ le32(&b, i));
        let stored = le32(&b, 0x1FC);
        // Windows stores 0 as 1 and -1 as -2 (libregf); hivex takes the plain XOR.
        let ok = sum == stored
            || (sum == 0 && stored == 1)
            || (sum == u32::MAX && stored == u32::MAX - 1);
        if !ok {
            return Err(corrupt(format!(
                "base block checksum {stored:#x}, computed {sum:#x}"
            )));
        }
        let name_units: Vec<u16> = b[0x30..0x70]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let base = BaseBlock {
            sequence1: le32(&b, 4),
            sequence2: le32(&b, 8),
            last_written: le64(&b, 12),
            major: le32(&b, 20),
            minor: le32(&b, 24),
            root: le32(&b, 36),
            bins_size: le32(&b, 40),
            file_name: char::decode_utf16(name_units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        };
        if base.major != 1 {
            return Err(HiveError::Unsupported(format!(
                "version {}.{} (only 1.x)",
                base.major, base.minor
            )));
        }
        let hive = Hive {
            cells: Cells::new(store, base.bins_size, lenient),
            base,
            lenient,
        };
        hive.root()?;
        Ok(hive)
    }

    /// The base block's fields.
    pub fn base_block(&self) -> &BaseBlock {
        &self.base
    }

    /// The root key.
    pub fn root(&self) -> Result<Key, HiveError> {
        self.key_at(self.base.root)
    }

    /// The key whose `nk` cell is at `offset` ([`Key::offset`]).
    pub fn key_at(&self, offset: u32) -> Result<Key, HiveError> {
        let what = || String::from("key");
        let cell = self.cells.cell(offset, &what)?;
        let sig = self.cells.read_cell(&cell, 0, 2)?;
        if sig != b"nk" {
            return Err(corrupt(format!(
                "key at {offset:#x}: signature {sig:?}, not nk"
            )));
        }
        if cell.len < 76 {
            return Err(corrupt(format!(
                "key at {offset:#x}: cell of {} bytes, too small",
                cell.len
            )));
        }
        let h = self.cells.read_cell(&cell, 0, 76)?;
        let name_len = le16(&h, 72);
        if 76 + u32::from(name_len) > cell.len {
            return Err(corrupt(format!(
                "key at {offset:#x}: name of {name_len} bytes runs past its cell ({} bytes)",
                cell.len
            )));
        }
        let flags = le16(&h, 2);
        let max = if flags & 0x20 != 0 {
            MAX_KEY_NAME
        } else {
            2 * MAX_KEY_NAME
        };
        if usize::from(name_len) > max {
            return Err(corrupt(format!(
                "key at {offset:#x}: name of {name_len} bytes, over {MAX_KEY_NAME} characters"
            )));
        }
        Ok(Key {
            offset,
            flags,
            last_written: le64(&h, 4),
            parent: le32(&h, 16),
            subkeys: le32(&h, 20),
            subkey_list: le32(&h, 28),
            values: le32(&h, 36),
            value_list: le32(&h, 40),
            name: self.cells.read_cell(&cell, 76, usize::from(name_len))?,
        })
    }

    /// A key's name (see [`Key::name`]).
    pub fn key_name(&self, key: &Key) -> Result<String, HiveError> {
        key.name()
    }

    /// The cell offsets of a key's subkeys, in on-disk order.
    fn child_offsets(&self, key: &Key) -> Result<Vec<u32>, HiveError> {
        let mut out = Vec::new();
        if key.subkeys == 0 {
            return Ok(out);
        }
        if key.subkeys > MAX_SUBKEYS {
            return Err(HiveError::Unsupported(format!(
                "key at {:#x}: {} subkeys, over {MAX_SUBKEYS}",
                key.offset, key.subkeys
            )));
        }
        let mut seen = BTreeSet::new();
        self.subkey_list(key, key.subkey_list, None, &mut out, &mut seen)?;
        if out.len() != key.subkeys as usize && !self.lenient {
            return Err(corrupt(format!(
                "key at {:#x}: {} subkeys listed, its count is {}",
                key.offset,
                out.len(),
                key.subkeys
            )));
        }
        Ok(out)
    }

    /// Reads subkey list `list` of `key` into `out`; `ri` is the index list it is in.
    fn subkey_list(
        &self,
        key: &Key,
        list: u32,
        ri: Option<u32>,
        out: &mut Vec<u32>,
        seen: &mut BTreeSet<u32>,
    ) -> Result<(), HiveError> {
        let what = || format!("subkey list of key {:#x}", key.offset);
        let cell = self.cells.cell(list, &what)?;
        let h = self.cells.read_cell(&cell, 0, 4)?;
        let n = u32::from(le16(&h, 2));
        let stride = match &h[..2] {
            b"lf" | b"lh" => 8u32,
            b"li" | b"ri" => 4,
            sig => {
                return Err(corrupt(format!(
                    "{} at {list:#x}: signature {sig:?}, not lf/lh/li/ri",
                    what()
                )));
            }
        };
        if 4 + n * stride > cell.len {
            return Err(corrupt(format!(
                "{} at {list:#x}: {n} entries do not fit its cell ({} bytes)",
                what(),
                cell.len
            )));
        }
        let is_ri = &h[..2] == b"ri";
        if let (true, Some(parent)) = (is_ri, ri) {
            return Err(corrupt(format!(
                "{} at {list:#x}: an ri list inside ri list {parent:#x}",
                what()
            )));
        }
        let body = self.cells.read_cell(&cell, 4, (n * stride) as usize)?;
        for i in 0..n as usize {
            let off = le32(&body, i * stride as usize);
            if is_ri {
                // Each list once: this also bounds the work by the lists' sizes.
                if !seen.insert(off) {
                    return Err(corrupt(format!(
                        "{} at {list:#x}: list {off:#x} is listed twice",
                        what()
                    )));
                }
                if self.lenient && self.cells.cell(off, &what).is_err() {
                    // hivex (unsafe) skips ri entries that are not cells.
                    continue;
                }
                self.subkey_list(key, off, Some(list), out, seen)?;
                continue;
            }
            if off == key.offset {
                return Err(corrupt(format!(
                    "{} at {list:#x}: the key lists itself as a subkey",
                    what()
                )));
            }
            if self.lenient {
                // hivex (unsafe) skips entries that are not keys.
                match self.key_at(off) {
                    Ok(_) => {}
                    Err(HiveError::Corrupt(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            {
                if out.len() >= key.subkeys as usize {
                    return Err(corrupt(format!(
                        "key at {:#x}: more subkeys listed than its count {}",
                        key.offset, key.subkeys
                    )));
                }
                if !seen.insert(off) {
                    return Err(corrupt(format!(
                        "{} at {list:#x}: subkey {off:#x} is listed twice",
                        what()
                    )));
                }
                out.push(off);
            }
        }
        Ok(())
    }

    /// A key's subkeys, in on-disk order (the order of its `lf`/`lh`/`li` lists, through
    /// its `ri` list if it has one), as `hivex_node_children` returns them.
    pub fn children(&self, key: &Key) -> Result<Vec<Key>, HiveError> {
        self.child_offsets(key)?
            .into_iter()
            .map(|o| self.key_at(o))
            .collect()
    }

    /// A subkey by name. Compared as `hivex_node_get_child` does: `strcasecmp` on the
    /// UTF-8 names, that is ASCII case folding only ("é" and "É" differ); the first match in
    /// on-disk order.
    pub fn child(&self, key: &Key, name: &str) -> Result<Option<Key>, HiveError> {
        for o in self.child_offsets(key)? {
            let k = self.key_at(o)?;
            if k.name()?.eq_ignore_ascii_case(name) {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    /// A path of subkeys from `key`, each looked up as [`Hive::child`] does.
    pub fn path(&self, key: &Key, path: &[&str]) -> Result<Option<Key>, HiveError> {
        let mut k = key.clone();
        for part in path {
            match self.child(&k, part)? {
                Some(c) => k = c,
                None => return Ok(None),
            }
        }
        Ok(Some(k))
    }

    /// A path of subkeys from `key` written with backslashes
    /// (`"Microsoft\\Windows NT\\CurrentVersion"`); empty components are ignored.
    pub fn path_str(&self, key: &Key, path: &str) -> Result<Option<Key>, HiveError> {
        let parts: Vec<&str> = path.split('\\').filter(|p| !p.is_empty()).collect();
        self.path(key, &parts)
    }

    /// Visits `key` and the keys under it, depth first, each before its subkeys, subkeys in
    /// on-disk order (the order of `hivexregedit --export`). `visit` gets the path from `key`
    /// to the key visited (inclusive) and says whether to descend into it. A key reached
    /// twice (a cycle, or a subkey shared by two keys) is an error, as in `hivex_visit`.
    pub fn walk(
        &self,
        key: &Key,
        visit: &mut dyn FnMut(&[Key]) -> Result<bool, HiveError>,
    ) -> Result<(), HiveError> {
        let mut seen = BTreeSet::new();
        seen.insert(key.offset);
        let mut path = alloc::vec![key.clone()];
        if !visit(&path)? {
            return Ok(());
        }
        // The stack holds offsets only: its size is bounded by the subkey lists' sizes
        // (each list is on it once at most, since its first key is then seen).
        let mut stack = alloc::vec![(self.child_offsets(key)?, 0usize)];
        while let Some((list, i)) = stack.last_mut() {
            let Some(&off) = list.get(*i) else {
                stack.pop();
                path.pop();
                continue;
            };
            *i += 1;
            if !seen.insert(off) {
                return Err(corrupt(format!(
                    "key at {off:#x} is reached twice (a cycle or a shared subkey)"
                )));
            }
            let k = self.key_at(off)?;
            path.push(k);
            if visit(&path)? {
                let children = match path.last() {
                    Some(k) => self.child_offsets(k)?,
                    None => Vec::new(),
                };
                stack.push((children, 0));
            } else {
                path.pop();
            }
        }
        Ok(())
    }

    /// A key's values, in on-disk order (as `hivex_node_values`).
    pub fn values(&self, key: &Key) -> Result<Vec<Value>, HiveError> {
        let mut out = Vec::new();
        if key.values == 0 {
            return Ok(out);
        }
        if key.values > MAX_VALUES {
            return Err(HiveError::Unsupported(format!(
                "key at {:#x}: {} values, over {MAX_VALUES}",
                key.offset, key.values
            )));
        }
        let what = || format!("value list of key {:#x}", key.offset);
        let cell = self.cells.cell(key.value_list, &what)?;
        if u64::from(key.values) * 4 > u64::from(cell.len) {
            return Err(corrupt(format!(
                "{} at {:#x}: {} values do not fit its cell ({} bytes)",
                what(),
                key.value_list,
                key.values,
                cell.len
            )));
        }
        let list = self.cells.read_cell(&cell, 0, key.values as usize * 4)?;
        let mut seen = BTreeSet::new();
        for i in 0..key.values as usize {
            let off = le32(&list, i * 4);
            if !seen.insert(off) {
                return Err(corrupt(format!(
                    "{} at {:#x}: value {off:#x} is listed twice",
                    what(),
                    key.value_list
                )));
            }
            out.push(self.value_at(off)?);
        }
        Ok(out)
    }

    fn value_at(&self, offset: u32) -> Result<Value, HiveError> {
        let what = || format!("value at {offset:#x}");
        let cell = self.cells.cell(offset, &|| String::from("value"))?;
        let sig = self.cells.read_cell(&cell, 0, 2)?;
        if sig != b"vk" {
            return Err(corrupt(format!("{}: signature {sig:?}, not vk", what())));
        }
        if cell.len < 20 {
            return Err(corrupt(format!(
                "{}: cell of {} bytes, too small",
                what(),
                cell.len
            )));
        }
        let h = self.cells.read_cell(&cell, 0, 20)?;
        let name_len = le16(&h, 2);
        if 20 + u32::from(name_len) > cell.len {
            return Err(corrupt(format!(
                "{}: name of {name_len} bytes runs past its cell ({} bytes)",
                what(),
                cell.len
            )));
        }
        let raw = self.cells.read_cell(&cell, 20, usize::from(name_len))?;
        Ok(Value {
            name: name(&raw, le16(&h, 16) & 1 != 0, MAX_VALUE_NAME, &what)?,
            kind: le32(&h, 12),
            offset,
            raw_len: le32(&h, 4),
            data_offset: le32(&h, 8),
        })
    }

    /// A value by name, compared as `hivex_node_get_value` does (ASCII case folding); ""
    /// is the default value. (libguestfs looks up the CurrentVersion values with an exact
    /// comparison over [`Hive::values`] instead.)
    pub fn value(&self, key: &Key, name: &str) -> Result<Option<Value>, HiveError> {
        Ok(self
            .values(key)?
            .into_iter()
            .find(|v| v.name.eq_ignore_ascii_case(name)))
    }

    /// A value's data, whatever its type: resident in the `vk` cell (4 bytes or fewer), in
    /// one cell, or in a big-data `db` cell's segments (16344 bytes each) when the length is
    /// more than the cell holds, as `hivex_value_value` decides. Over [`MAX_VALUE`] is an
    /// error. An empty value is empty without its data offset being looked at.
    pub fn value_data(&self, value: &Value) -> Result<Vec<u8>, HiveError> {
        let len = value.data_len();
        let what = || format!("data of value {:?} ({:#x})", value.name, value.offset);
        if value.is_resident() {
            if len > 4 {
                return Err(corrupt(format!("{}: resident data of {len} bytes", what())));
            }
            return Ok(value.data_offset.to_le_bytes()[..len as usize].to_vec());
        }
        if len > MAX_VALUE {
            return Err(corrupt(format!(
                "{}: {len} bytes, over {MAX_VALUE}",
                what()
            )));
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let cell = self.cells.cell(value.data_offset, &what)?;
        if len <= cell.len {
            return self.cells.read_cell(&cell, 0, len as usize);
        }
        let h = self.cells.read_cell(&cell, 0, cell.len.min(8) as usize)?;
        if h.len() < 8 || &h[..2] != b"db" {
            return Err(corrupt(format!(
                "{} at {:#x}: {len} bytes, more than its cell ({} bytes), not big data",
                what(),
                value.data_offset,
                cell.len
            )));
        }
        self.big_data(&h, len, &what)
    }

    /// The segments of a `db` cell whose first 8 bytes are `h`.
    fn big_data(
        &self,
        h: &[u8],
        len: u32,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<u8>, HiveError> {
        let n = u32::from(le16(h, 2));
        let needed = len.div_ceil(DB_SEGMENT);
        if n < needed {
            return Err(corrupt(format!(
                "{}: {n} big-data segments for {len} bytes",
                what()
            )));
        }
        let list_what = || format!("{}: segment list", what());
        let list = self.cells.cell(le32(h, 4), &list_what)?;
        if needed * 4 > list.len {
            return Err(corrupt(format!(
                "{}: {needed} segments do not fit its cell ({} bytes)",
                list_what(),
                list.len
            )));
        }
        let offs = self.cells.read_cell(&list, 0, needed as usize * 4)?;
        let mut out = Vec::with_capacity(len as usize);
        let mut seen = BTreeSet::new();
        for i in 0..needed as usize {
            let seg_what = || format!("{}: segment {i}", what());
            let off = le32(&offs, i * 4);
            // Each segment once: the data is never more than the file holds.
            if !seen.insert(off) {
                return Err(corrupt(format!(
                    "{}: segment {off:#x} is listed twice",
                    what()
                )));
            }
            let seg = self.cells.cell(off, &seg_what)?;
            let want = (len - out.len() as u32).min(DB_SEGMENT);
            if want > seg.len {
                return Err(corrupt(format!(
                    "{} at {:#x}: {want} bytes, more than its cell ({} bytes)",
                    seg_what(),
                    seg.off,
                    seg.len
                )));
            }
            out.extend_from_slice(&self.cells.read_cell(&seg, 0, want as usize)?);
        }
        Ok(out)
    }

    /// A `REG_SZ`, `REG_EXPAND_SZ` or `REG_LINK` value as a string, as `hivex_value_string`
    /// reads it: UTF-16LE up to the first NUL (a trailing odd byte is dropped); invalid
    /// UTF-16 is an error, and so is any other type.
    pub fn value_string(&self, value: &Value) -> Result<String, HiveError> {
        if !matches!(value.kind, REG_SZ | REG_EXPAND_SZ | REG_LINK) {
            return Err(value.wrong("a string"));
        }
        let data = self.value_data(value)?;
        let what = || format!("value {:?}", value.name);
        utf16(&data[..utf16_len(&data)], &what)
    }

    /// A `REG_MULTI_SZ` value's strings, as `hivex_value_multiple_strings` reads them: each
    /// NUL-terminated UTF-16LE string up to the end of the data, empty ones included (so the
    /// list's terminating empty string is returned too: `a\0b\0\0` is `["a", "b", ""]`).
    pub fn value_multi_strings(&self, value: &Value) -> Result<Vec<String>, HiveError> {
        if value.kind != REG_MULTI_SZ {
            return Err(value.wrong("a multi-string"));
        }
        let data = self.value_data(value)?;
        let what = || format!("value {:?}", value.name);
        let mut out = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = utf16_len(rest);
            out.push(utf16(&rest[..n], &what)?);
            rest = rest.get(n + 2..).unwrap_or(&[]);
        }
        Ok(out)
    }

    /// A `REG_DWORD` (little-endian) or `REG_DWORD_BIG_ENDIAN` value of 4 bytes or more (the
    /// first 4 are read), as `hivex_value_dword` (which returns it as an `int32`).
    pub fn value_dword(&self, value: &Value) -> Result<u32, HiveError> {
        if !matches!(value.kind, REG_DWORD | REG_DWORD_BIG_ENDIAN) || value.data_len() < 4 {
            return Err(value.wrong("a DWORD of 4 bytes"));
        }
        let d = self.value_data(value)?;
        let n = le32(&d, 0);
        Ok(if value.kind == REG_DWORD {
            n
        } else {
            n.swap_bytes()
        })
    }

    /// A `REG_QWORD` value of 8 bytes or more (the first 8 are read), as `hivex_value_qword`.
    pub fn value_qword(&self, value: &Value) -> Result<u64, HiveError> {
        if value.kind != REG_QWORD || value.data_len() < 8 {
            return Err(value.wrong("a QWORD of 8 bytes"));
        }
        let d = self.value_data(value)?;
        Ok(le64(&d, 0))
    }

    /// How many hbins have been walked (tests: hbins are found lazily).
    #[cfg(test)]
    fn bins_walked(&self) -> usize {
        self.cells.bins_walked()
    }
}

/// The length in bytes of the UTF-16LE string at the start of `b`: up to its first NUL
/// unit, or to its last whole unit.
fn utf16_len(b: &[u8]) -> usize {
    b.chunks_exact(2)
        .position(|c| c == [0, 0])
        .unwrap_or(b.len() / 2)
        * 2
}

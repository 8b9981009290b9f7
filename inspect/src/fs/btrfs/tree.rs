//! Tree blocks and the walk over a tree's items.
//!
//! Every block is checked when read: checksum, the logical address and fsid it records, its
//! level against the level its parent (or the root pointer) promised, the item table and
//! each item's data inside the block, and keys in strictly ascending order. A child's level
//! must be its parent's minus one, so a block that points at itself or at an ancestor is
//! refused rather than followed: a walk from a root reads at most [`MAX_LEVEL`] blocks down
//! and never revisits a block on its path. A [`Cursor`] also refuses keys that do not
//! ascend from one leaf to the next (a subtree linked twice).

use alloc::format;
use alloc::rc::Rc;
use alloc::vec::Vec;

use super::{Inner, Result, corrupt};
use crate::disk::{le32, le64};

/// Levels are 0 (leaves) to 7.
pub const MAX_LEVEL: u8 = 8;
/// Bytes of a block header.
pub const HEADER: usize = 101;
/// Bytes of a leaf item header.
const ITEM: usize = 25;
/// Bytes of a node's key pointer.
const PTR: usize = 33;

/// A btrfs key: (objectid, type, offset), ordered in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Object id (inode number, subvolume id, ...).
    pub objectid: u64,
    /// Item type.
    pub ty: u8,
    /// Type-specific offset.
    pub offset: u64,
}

impl Key {
    /// A key.
    pub const fn new(objectid: u64, ty: u8, offset: u64) -> Self {
        Self {
            objectid,
            ty,
            offset,
        }
    }

    /// The disk key at `b[at..at + 17]` (callers check the length).
    pub fn parse(b: &[u8], at: usize) -> Self {
        Self {
            objectid: le64(b, at),
            ty: b.get(at + 8).copied().unwrap_or(0),
            offset: le64(b, at + 9),
        }
    }
}

/// Where a tree starts: its root block and that block's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeRoot {
    /// Logical address of the root block.
    pub bytenr: u64,
    /// Its level.
    pub level: u8,
}

/// One checked tree block.
#[derive(Debug)]
pub struct Node {
    /// Its logical address.
    pub bytenr: u64,
    /// 0 for a leaf.
    pub level: u8,
    /// Items (leaf) or key pointers (node).
    pub n: usize,
    data: Vec<u8>,
}

/// One leaf item, copied out of its block.
#[derive(Clone, Debug)]
pub struct Item {
    /// Its key.
    pub key: Key,
    /// Its data.
    pub data: Vec<u8>,
}

impl Node {
    /// Checks `data` (one block, `nodesize` bytes) as the block at `bytenr` of `level`.
    pub fn parse(bytenr: u64, level: u8, data: Vec<u8>, fsid: &[u8; 16]) -> Result<Self> {
        let bad = |what: &str| corrupt(format!("tree block {bytenr:#x}: {what}"));
        if data.len() < HEADER {
            return Err(bad("shorter than its header"));
        }
        let stored = le32(&data, 0);
        if stored != super::crc::csum(&data[32..]) {
            return Err(bad("checksum mismatch"));
        }
        if &data[32..48] != fsid {
            return Err(bad("belongs to another filesystem (fsid)"));
        }
        if le64(&data, 48) != bytenr {
            return Err(bad(&format!("records address {:#x}", le64(&data, 48))));
        }
        let got_level = data[100];
        if got_level != level {
            return Err(bad(&format!(
                "level {got_level} where {level} was expected"
            )));
        }
        let n = le32(&data, 96) as usize;
        let size = data.len();
        let entry = if level == 0 { ITEM } else { PTR };
        let table_end = n
            .checked_mul(entry)
            .and_then(|t| t.checked_add(HEADER))
            .filter(|&e| e <= size)
            .ok_or_else(|| bad(&format!("{n} items do not fit")))?;
        if level > 0 && n == 0 {
            return Err(bad("node with no children"));
        }
        let node = Self {
            bytenr,
            level,
            n,
            data,
        };
        if level == 0 {
            for i in 0..n {
                let at = HEADER + i * ITEM + 17;
                let off = le32(&node.data, at) as usize;
                let len = le32(&node.data, at + 4) as usize;
                let start = HEADER + off;
                if start < table_end || start.checked_add(len).is_none_or(|e| e > size) {
                    return Err(bad(&format!(
                        "item {i}'s data ({len} bytes at {off}) leaves the block"
                    )));
                }
            }
        }
        for i in 1..n {
            if node.key(i - 1) >= node.key(i) {
                return Err(bad(&format!("keys {} and {i} out of order", i - 1)));
            }
        }
        Ok(node)
    }

    /// Key `i` (an item's or a pointer's).
    pub fn key(&self, i: usize) -> Key {
        let entry = if self.level == 0 { ITEM } else { PTR };
        Key::parse(&self.data, HEADER + i * entry)
    }

    /// Leaf item `i`'s data (checked in [`Node::parse`]).
    pub fn item_data(&self, i: usize) -> &[u8] {
        let at = HEADER + i * ITEM + 17;
        let start = HEADER + le32(&self.data, at) as usize;
        let len = le32(&self.data, at + 4) as usize;
        self.data.get(start..start + len).unwrap_or(&[])
    }

    /// Node pointer `i`'s child address.
    pub fn child(&self, i: usize) -> u64 {
        le64(&self.data, HEADER + i * PTR + 17)
    }

    /// How many of the first keys are `< key` (`strict`) or `<= key`.
    fn count_below(&self, key: &Key, or_equal: bool) -> usize {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = self.key(mid);
            if k < *key || (or_equal && k == *key) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// Where a cursor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seek {
    /// At the first item `>= key`.
    Ge,
    /// At the last item `<= key`, or the first item when all are greater.
    Le,
}

/// A position in a tree: the blocks from the root down to a leaf, and the index in each.
pub struct Cursor<'a> {
    fs: &'a Inner,
    path: Vec<(Rc<Node>, usize)>,
    last: Option<Key>,
}

impl<'a> Cursor<'a> {
    /// A cursor on tree `root` placed by `how` relative to `key`.
    pub fn seek(fs: &'a Inner, root: TreeRoot, key: Key, how: Seek) -> Result<Self> {
        let mut c = Self {
            fs,
            path: Vec::new(),
            last: None,
        };
        let mut node = fs.node(root.bytenr, root.level)?;
        loop {
            if node.level == 0 {
                let idx = match how {
                    Seek::Ge => node.count_below(&key, false),
                    Seek::Le => node.count_below(&key, true).saturating_sub(1),
                };
                c.path.push((node, idx));
                return Ok(c);
            }
            let idx = node.count_below(&key, true).saturating_sub(1);
            let child = c.child(&node, idx)?;
            c.path.push((node, idx));
            node = child;
        }
    }

    /// Child `idx` of `node`, checked against the pointer's key and level.
    fn child(&self, node: &Node, idx: usize) -> Result<Rc<Node>> {
        let child = self.fs.node(node.child(idx), node.level - 1)?;
        if child.n == 0 {
            return Err(corrupt(format!(
                "tree block {:#x}: empty block below the root",
                child.bytenr
            )));
        }
        if child.key(0) != node.key(idx) {
            return Err(corrupt(format!(
                "tree block {:#x}: first key differs from its parent's pointer",
                child.bytenr
            )));
        }
        Ok(child)
    }

    /// The item at the cursor, then moves past it; `None` at the end of the tree.
    pub fn next(&mut self) -> Result<Option<Item>> {
        loop {
            let Some((leaf, idx)) = self.path.last_mut() else {
                return Ok(None);
            };
            if *idx < leaf.n {
                let key = leaf.key(*idx);
                let data = leaf.item_data(*idx).to_vec();
                *idx += 1;
                if self.last.is_some_and(|l| l >= key) {
                    return Err(corrupt(format!(
                        "tree block {:#x}: keys do not ascend from the previous leaf",
                        leaf.bytenr
                    )));
                }
                self.last = Some(key);
                return Ok(Some(Item { key, data }));
            }
            // This leaf is done: up to the first node with a next child, then down its
            // leftmost path.
            self.path.pop();
            loop {
                let Some((node, idx)) = self.path.last_mut() else {
                    return Ok(None);
                };
                *idx += 1;
                if *idx < node.n {
                    break;
                }
                self.path.pop();
            }
            loop {
                let Some((node, idx)) = self.path.last() else {
                    return Ok(None);
                };
                if node.level == 0 {
                    break;
                }
                let child = self.child(node, *idx)?;
                self.path.push((child, 0));
            }
        }
    }
}

/// The item with exactly `key` in tree `root`, if any.
pub fn find(fs: &Inner, root: TreeRoot, key: Key) -> Result<Option<Vec<u8>>> {
    let mut c = Cursor::seek(fs, root, key, Seek::Ge)?;
    Ok(c.next()?.filter(|i| i.key == key).map(|i| i.data))
}

/// The first item in tree `root` with this objectid and type, offset `>= offset`.
pub fn find_first(
    fs: &Inner,
    root: TreeRoot,
    objectid: u64,
    ty: u8,
    offset: u64,
) -> Result<Option<Item>> {
    let mut c = Cursor::seek(fs, root, Key::new(objectid, ty, offset), Seek::Ge)?;
    Ok(c.next()?
        .filter(|i| i.key.objectid == objectid && i.key.ty == ty))
}

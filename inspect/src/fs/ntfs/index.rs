//! Directory indexes (`$I30`): the entries of an index node, in the `$INDEX_ROOT` value or
//! in an `INDX` record of `$INDEX_ALLOCATION`, each a `$FILE_NAME` key.

use alloc::format;
use alloc::vec::Vec;

use super::corrupt;
use crate::disk::{le16, le32, le64};
use crate::fs::FsError;

/// Entry flag: a sub-node VCN ends the entry.
const ENTRY_SUBNODE: u16 = 0x1;
/// Entry flag: the last entry of its node (no key).
const ENTRY_LAST: u16 = 0x2;

/// `$FILE_NAME` namespaces.
pub const NS_DOS: u8 = 2;

/// One entry of an index node.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The file's MFT record number (its sequence number dropped).
    pub record: u64,
    /// The name, UTF-16 (empty in the last entry).
    pub name: Vec<u16>,
    /// The name's namespace (POSIX 0, Win32 1, DOS 2, Win32 and DOS 3).
    pub namespace: u8,
    /// The sub-node holding the names before this one, if any.
    pub sub: Option<u64>,
    /// Whether it is the last entry of its node.
    pub last: bool,
}

/// The entries of the index node whose header is at `node` in `buf`: the entries must lie
/// inside the node and the node inside `buf`, and the node must end with its last entry.
pub fn parse_node(buf: &[u8], node: usize) -> Result<Vec<Entry>, FsError> {
    let first = le32(buf, node) as usize;
    let total = le32(buf, node + 4) as usize;
    let (Some(start), Some(end)) = (node.checked_add(first), node.checked_add(total)) else {
        return Err(corrupt("index node header out of range"));
    };
    if node + 16 > buf.len() || start < node + 16 || start > end || end > buf.len() {
        return Err(corrupt(format!(
            "index node entries {first}..{total} outside its {} bytes",
            buf.len().saturating_sub(node)
        )));
    }
    let mut out = Vec::new();
    let mut p = start;
    loop {
        if p + 16 > end {
            return Err(corrupt(format!(
                "index node without its last entry (at {p})"
            )));
        }
        let len = le16(buf, p + 8) as usize;
        let key_len = le16(buf, p + 10) as usize;
        let flags = le16(buf, p + 12);
        if len < 16 || !len.is_multiple_of(8) || len > end - p {
            return Err(corrupt(format!(
                "index entry at {p} of {len} bytes is longer than its node (ends at {end})"
            )));
        }
        let sub = if flags & ENTRY_SUBNODE != 0 {
            if len < 24 {
                return Err(corrupt(format!(
                    "index entry at {p}: no room for its sub-node"
                )));
            }
            Some(le64(buf, p + len - 8))
        } else {
            None
        };
        let last = flags & ENTRY_LAST != 0;
        let (record, name, namespace) = if last {
            (0, Vec::new(), 0)
        } else {
            let room = len - 16 - if sub.is_some() { 8 } else { 0 };
            if key_len < 66 || key_len > room {
                return Err(corrupt(format!(
                    "index entry at {p}: key of {key_len} bytes"
                )));
            }
            let key = &buf[p + 16..p + 16 + key_len];
            let n = key[64] as usize;
            if 66 + 2 * n > key_len {
                return Err(corrupt(format!("index entry at {p}: name past its key")));
            }
            let name = key[66..66 + 2 * n]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            (le64(buf, p) & 0x0000_FFFF_FFFF_FFFF, name, key[65])
        };
        out.push(Entry {
            record,
            name,
            namespace,
            sub,
            last,
        });
        if last {
            break;
        }
        p += len;
    }
    Ok(out)
}

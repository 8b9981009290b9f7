//! Subvolumes, from the root tree: their root items, the default subvolume (the `default`
//! entry of directory 6) and their paths, built from `ROOT_BACKREF` items (the parent
//! subvolume and the directory in it) and the `INODE_REF` chain of that directory, the way
//! `btrfs subvolume list` prints them.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::items::{self, INODE_REF, ROOT_BACKREF, ROOT_ITEM};
use super::tree::{self, Cursor, Key, Seek, TreeRoot};
use super::{Inner, Result, corrupt};
use crate::fs::FsError;

/// The top-level subvolume's id.
pub const FS_TREE: u64 = 5;
/// First id of a created subvolume.
pub const FIRST_SUBVOL: u64 = 256;
/// Last id of a subvolume (`BTRFS_LAST_FREE_OBJECTID`).
pub const LAST_SUBVOL: u64 = u64::MAX - 256;
/// The root tree's directory holding `default`.
const ROOT_TREE_DIR: u64 = 6;
/// Most subvolumes listed (snapper keeps a few hundred).
pub const MAX_SUBVOLUMES: usize = 10_000;
/// Longest subvolume path (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;

/// One subvolume, as `btrfs subvolume list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subvolume {
    /// Its id.
    pub id: u64,
    /// The subvolume it is in.
    pub parent: u64,
    /// Its path from the top level (`root`, `@/.snapshots/1/snapshot`).
    pub path: String,
}

/// A subvolume's tree and root directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubvolRoot {
    /// Its id.
    pub id: u64,
    /// Its tree.
    pub tree: TreeRoot,
    /// Its root directory's inode number.
    pub dirid: u64,
}

/// The root item of subvolume `id`, or `None` when there is none or it was deleted.
pub fn root(fs: &Inner, id: u64) -> Result<Option<SubvolRoot>> {
    let Some(item) = tree::find_first(fs, fs.root_tree(), id, ROOT_ITEM, 0)? else {
        return Ok(None);
    };
    let r = items::root_item(&item.data, id)?;
    if r.refs == 0 {
        return Ok(None);
    }
    if r.level >= tree::MAX_LEVEL {
        return Err(corrupt(format!("subvolume {id}: root level {}", r.level)));
    }
    Ok(Some(SubvolRoot {
        id,
        tree: TreeRoot {
            bytenr: r.bytenr,
            level: r.level,
        },
        dirid: r.root_dirid,
    }))
}

/// The id of the default subvolume: what mounting the device without `subvol=` shows.
pub fn default_id(fs: &Inner) -> Result<u64> {
    let key = Key::new(
        ROOT_TREE_DIR,
        items::DIR_ITEM,
        super::crc::name_hash(b"default"),
    );
    let Some(data) = tree::find(fs, fs.root_tree(), key)? else {
        return Ok(FS_TREE);
    };
    for e in items::dir_entries(&data) {
        let e = e?;
        if e.name == b"default" {
            let id = e.location.objectid;
            return Ok(if id == 0 { FS_TREE } else { id });
        }
    }
    Ok(FS_TREE)
}

/// Every subvolume but the top level, by id, with its path.
pub fn list(fs: &Inner) -> Result<Vec<Subvolume>> {
    // id -> (parent, dirid in parent, name)
    let mut refs: BTreeMap<u64, (u64, u64, Vec<u8>)> = BTreeMap::new();
    let mut c = Cursor::seek(fs, fs.root_tree(), Key::new(FIRST_SUBVOL, 0, 0), Seek::Ge)?;
    while let Some(item) = c.next()? {
        if item.key.objectid > LAST_SUBVOL {
            break;
        }
        if item.key.ty != ROOT_BACKREF || refs.contains_key(&item.key.objectid) {
            continue;
        }
        if refs.len() >= MAX_SUBVOLUMES {
            log::warn!("btrfs: more than {MAX_SUBVOLUMES} subvolumes, the rest not listed");
            break;
        }
        let r = items::root_ref(&item.data)?;
        refs.insert(
            item.key.objectid,
            (item.key.offset, r.dirid, r.name.to_vec()),
        );
    }
    let mut out = Vec::with_capacity(refs.len());
    let mut paths: BTreeMap<u64, String> = BTreeMap::new();
    for &id in refs.keys() {
        let path = path_of(fs, id, &refs, &mut paths)?;
        let parent = refs.get(&id).map_or(FS_TREE, |r| r.0);
        out.push(Subvolume { id, parent, path });
    }
    Ok(out)
}

/// The path of subvolume `id` (memoised in `paths`); a chain of parents longer than the
/// number of subvolumes is a loop.
fn path_of(
    fs: &Inner,
    id: u64,
    refs: &BTreeMap<u64, (u64, u64, Vec<u8>)>,
    paths: &mut BTreeMap<u64, String>,
) -> Result<String> {
    // The chain from `id` up to the top level or a subvolume already named.
    let mut chain = Vec::new();
    let mut cur = id;
    let mut base = String::new();
    loop {
        if cur == FS_TREE {
            break;
        }
        if let Some(p) = paths.get(&cur) {
            base = p.clone();
            break;
        }
        if chain.len() > refs.len() {
            return Err(corrupt(format!(
                "subvolume {id}: its parents loop (ROOT_BACKREF cycle)"
            )));
        }
        let Some(r) = refs.get(&cur) else {
            return Err(corrupt(format!(
                "subvolume {cur}: parent of subvolume {id} has no reference"
            )));
        };
        chain.push(cur);
        cur = r.0;
    }
    for &sub in chain.iter().rev() {
        let Some((parent, dirid, name)) = refs.get(&sub) else {
            continue;
        };
        let dir = dir_path(fs, *parent, *dirid)?;
        let mut p = base;
        for part in [dir.as_str(), &String::from_utf8_lossy(name)] {
            if part.is_empty() {
                continue;
            }
            if !p.is_empty() {
                p.push('/');
            }
            p.push_str(part);
        }
        if p.len() > MAX_PATH {
            return Err(FsError::TooLarge(format!(
                "btrfs: subvolume {sub}: path longer than {MAX_PATH} bytes"
            )));
        }
        paths.insert(sub, p.clone());
        base = p;
    }
    Ok(base)
}

/// The path of directory `dirid` inside subvolume `subvol`, from its root directory
/// (empty for the root directory itself), by the directory's `INODE_REF` chain.
fn dir_path(fs: &Inner, subvol: u64, dirid: u64) -> Result<String> {
    let root = root(fs, subvol)?.ok_or_else(|| {
        corrupt(format!(
            "subvolume {subvol}: no root item, yet it holds a subvolume"
        ))
    })?;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut cur = dirid;
    let mut len = 0usize;
    while cur != root.dirid {
        let Some(item) = tree::find_first(fs, root.tree, cur, INODE_REF, 0)? else {
            return Err(corrupt(format!(
                "subvolume {subvol}: directory {cur} has no parent reference"
            )));
        };
        let r = items::inode_ref(&item.data)?;
        len += r.name.len() + 1;
        if len > MAX_PATH || item.key.offset == cur {
            return Err(corrupt(format!(
                "subvolume {subvol}: directory {dirid}'s parents loop or run too deep"
            )));
        }
        parts.push(r.name.to_vec());
        cur = item.key.offset;
    }
    let mut s = String::new();
    for p in parts.iter().rev() {
        if !s.is_empty() {
            s.push('/');
        }
        s.push_str(&String::from_utf8_lossy(p));
    }
    Ok(s)
}

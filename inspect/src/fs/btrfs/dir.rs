//! Directories and paths: lookup by name hash (`DIR_ITEM`), listing in index order
//! (`DIR_INDEX`, the order Linux's `readdir` gives), crossing into subvolumes, and path
//! resolution with symlinks followed inside the subvolume being read.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use vmchannel_proto::{DirEntry, FileKind, Stat};

use super::items::{self, DIR_INDEX, DIR_ITEM, INODE_ITEM, Inode, ROOT_ITEM, ROOT_REF};
use super::subvol::{self, SubvolRoot};
use super::tree::{self, Cursor, Key, Seek, TreeRoot};
use super::{Inner, Result, corrupt};
use crate::fs::{FsError, MAX_SYMLINKS};

/// Longest symlink target read (Linux's `PATH_MAX`).
pub const MAX_LINK_TARGET: u64 = 4096;
/// Most path components walked for one path, link targets included.
pub const MAX_STEPS: usize = 1000;
/// Most entries listed from one directory.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;
/// The inode Linux gives a subvolume entry whose subvolume is not linked there.
const EMPTY_SUBVOL_DIR: u64 = 2;

/// An inode, with the tree it lives in.
#[derive(Clone, Copy, Debug)]
pub struct File {
    /// The subvolume's tree.
    pub tree: TreeRoot,
    /// The subvolume's id.
    pub subvol: u64,
    /// Inode number in that tree.
    pub ino: u64,
    /// Its inode item.
    pub inode: Inode,
}

impl File {
    fn kind_bits(&self) -> u32 {
        self.inode.mode & 0o170000
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.kind_bits() == 0o040000
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.kind_bits() == 0o100000
    }

    /// A symlink.
    pub fn is_symlink(&self) -> bool {
        self.kind_bits() == 0o120000
    }
}

fn kind_of_mode(mode: u32) -> FileKind {
    match mode & 0o170000 {
        0o010000 => FileKind::Fifo,
        0o020000 => FileKind::CharDevice,
        0o040000 => FileKind::Directory,
        0o060000 => FileKind::BlockDevice,
        0o100000 => FileKind::File,
        0o120000 => FileKind::Symlink,
        0o140000 => FileKind::Socket,
        _ => FileKind::Unknown,
    }
}

fn kind_of_ft(ft: u8) -> (FileKind, u32) {
    match ft {
        1 => (FileKind::File, 0o100000),
        2 => (FileKind::Directory, 0o040000),
        3 => (FileKind::CharDevice, 0o020000),
        4 => (FileKind::BlockDevice, 0o060000),
        5 => (FileKind::Fifo, 0o010000),
        6 => (FileKind::Socket, 0o140000),
        7 => (FileKind::Symlink, 0o120000),
        _ => (FileKind::Unknown, 0),
    }
}

/// Inode `ino` of the subvolume with tree `tree`.
pub fn load(fs: &Inner, tree: TreeRoot, subvol: u64, ino: u64) -> Result<File> {
    let data = tree::find(fs, tree, Key::new(ino, INODE_ITEM, 0))?
        .ok_or_else(|| corrupt(format!("subvolume {subvol}: inode {ino} has no inode item")))?;
    Ok(File {
        tree,
        subvol,
        ino,
        inode: items::inode(&data, ino)?,
    })
}

/// The root directory of a subvolume.
pub fn root_dir(fs: &Inner, root: SubvolRoot) -> Result<File> {
    load(fs, root.tree, root.id, root.dirid)
}

/// What entry `name` of directory `dir`, pointing at `location`, is. A subvolume entry is
/// that subvolume's root directory when the root tree links it there (a `ROOT_REF` of this
/// directory and name); otherwise, as on Linux, an empty directory.
fn target(fs: &Inner, dir: &File, name: &[u8], location: Key) -> Result<File> {
    match location.ty {
        INODE_ITEM => load(fs, dir.tree, dir.subvol, location.objectid),
        ROOT_ITEM => {
            let id = location.objectid;
            let key = Key::new(dir.subvol, ROOT_REF, id);
            let linked = match tree::find(fs, fs.root_tree(), key)? {
                Some(d) => {
                    let r = items::root_ref(&d)?;
                    r.dirid == dir.ino && r.name == name
                }
                None => false,
            };
            if linked && let Some(root) = subvol::root(fs, id)? {
                return root_dir(fs, root);
            }
            Ok(File {
                ino: EMPTY_SUBVOL_DIR,
                inode: Inode {
                    size: 0,
                    nlink: 1,
                    uid: 0,
                    gid: 0,
                    mode: 0o040555,
                    mtime: dir.inode.mtime,
                    nbytes: 0,
                    rdev: 0,
                    atime: crate::fs::Time::default(),
                    ctime: crate::fs::Time::default(),
                    mtime_nsec: 0,
                },
                ..*dir
            })
        }
        t => Err(corrupt(format!(
            "directory {}: entry points at an item of type {t}",
            dir.ino
        ))),
    }
}

/// Entry `name` of directory `dir`.
pub fn lookup(fs: &Inner, dir: &File, name: &[u8]) -> Result<Option<File>> {
    if is_empty_subvol_dir(dir) {
        return Ok(None);
    }
    let key = Key::new(dir.ino, DIR_ITEM, super::crc::name_hash(name));
    let Some(data) = tree::find(fs, dir.tree, key)? else {
        return Ok(None);
    };
    for e in items::dir_entries(&data) {
        let e = e?;
        if e.name == name {
            return target(fs, dir, name, e.location).map(Some);
        }
    }
    Ok(None)
}

/// `path` (absolute) from the subvolume's root, every symlink in it followed (the final one
/// only when `follow`), `..` going back the way the walk came.
pub fn resolve(fs: &Inner, root: SubvolRoot, path: &str, follow: bool) -> Result<File> {
    if !path.starts_with('/') {
        return Err(FsError::BadPath(format!("{path}: not absolute")));
    }
    let mut todo: Vec<Vec<u8>> = split(path.as_bytes());
    let mut stack = vec![root_dir(fs, root)?];
    let (mut links, mut steps) = (0u32, 0usize);
    while let Some(comp) = todo.pop() {
        steps += 1;
        if steps > MAX_STEPS {
            return Err(FsError::BadPath(format!("{path}: too many components")));
        }
        let Some(cur) = stack.last().copied() else {
            break;
        };
        if !cur.is_dir() {
            return Err(FsError::NotADirectory(String::from(path)));
        }
        match &comp[..] {
            b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        if comp.len() > 255 {
            return Err(FsError::BadPath(format!("{path}: name too long")));
        }
        let f = lookup(fs, &cur, &comp)?.ok_or_else(|| FsError::NotFound(String::from(path)))?;
        if f.is_symlink() && (follow || !todo.is_empty()) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(FsError::SymlinkLoop(String::from(path)));
            }
            let t = link_target(fs, &f)?;
            if t.starts_with(b"/") {
                stack.truncate(1);
            }
            todo.extend(split(&t));
            continue;
        }
        stack.push(f);
    }
    stack
        .pop()
        .ok_or_else(|| corrupt(format!("{path}: resolution lost its way")))
}

/// The components of `p`, last first.
fn split(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(<[u8]>::to_vec)
        .collect()
}

/// The target of symlink `f`, refused past [`MAX_LINK_TARGET`] bytes.
pub fn link_target(fs: &Inner, f: &File) -> Result<Vec<u8>> {
    if f.inode.size > MAX_LINK_TARGET {
        return Err(corrupt(format!(
            "symlink {}: target of {} bytes",
            f.ino, f.inode.size
        )));
    }
    let mut buf = vec![0u8; f.inode.size as usize];
    let n = super::file::read(fs, f, 0, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// `f`'s metadata.
pub fn stat(fs: &Inner, f: &File) -> Result<Stat> {
    let kind = kind_of_mode(f.inode.mode);
    let link_target = if kind == FileKind::Symlink {
        link_target(fs, f)
            .ok()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
    } else {
        None
    };
    Ok(Stat {
        kind,
        size: f.inode.size,
        mode: f.inode.mode,
        uid: f.inode.uid,
        gid: f.inode.gid,
        mtime: f.inode.mtime,
        link_target,
    })
}

/// Everything stat(2) says of `f` (less `st_dev`), as Linux's btrfs fills it: blocks are
/// the allocated bytes rounded up to the sector, the I/O size the sector size.
pub fn full_stat(f: &File, sectorsize: u64) -> crate::fs::FullStat {
    let i = &f.inode;
    let (major, minor) = ((i.rdev >> 20) & 0xfff, (i.rdev & 0xfffff));
    crate::fs::FullStat {
        ino: f.ino,
        mode: i.mode,
        nlink: i.nlink as u64,
        uid: i.uid,
        gid: i.gid,
        rdev: if matches!(i.mode & 0o170000, 0o020000 | 0o060000) {
            crate::fs::makedev(major, minor)
        } else {
            0
        },
        size: i.size,
        blksize: sectorsize,
        blocks: i
            .nbytes
            .div_ceil(sectorsize.max(1))
            .saturating_mul(sectorsize)
            / 512,
        atime: i.atime,
        mtime: crate::fs::Time {
            sec: i.mtime,
            nsec: i.mtime_nsec,
        },
        ctime: i.ctime,
    }
}

/// readdir(3)'s entries of directory `dir`: `.`, `..` (`parent`'s number), then the index
/// order, each with the number its entry points at (a subvolume's id for a subvolume).
pub fn list_raw(
    fs: &Inner,
    dir: &File,
    parent: u64,
    path: &str,
) -> Result<Vec<crate::fs::RawDirEntry>> {
    if !dir.is_dir() {
        return Err(FsError::NotADirectory(String::from(path)));
    }
    let dot = |name: &str, ino| crate::fs::RawDirEntry {
        name: name.into(),
        ino,
        kind: FileKind::Directory,
    };
    let mut out = alloc::vec![dot(".", dir.ino), dot("..", parent)];
    if !is_empty_subvol_dir(dir) {
        out.extend(entries_of(fs, dir.tree, dir.ino, DIR_INDEX, path, |e| {
            crate::fs::RawDirEntry {
                name: String::from_utf8_lossy(e.name).into_owned(),
                ino: e.location.objectid,
                kind: kind_of_ft(e.ty).0,
            }
        })?);
    }
    Ok(out)
}

/// The extended attributes of `f`, in key (name hash) order as Linux lists them.
pub fn xattrs(fs: &Inner, f: &File) -> Result<Vec<(String, Vec<u8>)>> {
    let what = format!("xattrs of inode {}", f.ino);
    entries_of(fs, f.tree, f.ino, items::XATTR_ITEM, &what, |e| {
        (
            String::from_utf8_lossy(e.name).into_owned(),
            e.data.to_vec(),
        )
    })
}

/// The entries of directory `dir` in index order. An entry whose inode cannot be read is
/// listed with what the entry says (its type), as `ls` shows `?`.
/// Applies `each` to every entry of the items of type `ty` keyed by inode `ino` (a
/// directory's `DIR_INDEX` items, an inode's `XATTR_ITEM`s), in key order; at most
/// [`MAX_DIR_ENTRIES`] items (`what` names them in the error).
fn entries_of<T>(
    fs: &Inner,
    tree: TreeRoot,
    ino: u64,
    ty: u8,
    what: &str,
    mut each: impl FnMut(items::DirEntry<'_>) -> T,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut c = Cursor::seek(fs, tree, Key::new(ino, ty, 0), Seek::Ge)?;
    while let Some(item) = c.next()? {
        if item.key.objectid != ino || item.key.ty != ty {
            break;
        }
        if out.len() >= MAX_DIR_ENTRIES {
            return Err(FsError::TooLarge(format!(
                "{what}: more than {MAX_DIR_ENTRIES} entries"
            )));
        }
        for e in items::dir_entries(&item.data) {
            out.push(each(e?));
        }
    }
    Ok(out)
}

/// Whether `dir` is the empty directory Linux shows for a subvolume not linked there.
fn is_empty_subvol_dir(dir: &File) -> bool {
    dir.ino == EMPTY_SUBVOL_DIR && dir.inode.mode == 0o040555 && dir.inode.size == 0
}

pub fn list(fs: &Inner, dir: &File, path: &str) -> Result<Vec<DirEntry>> {
    if !dir.is_dir() {
        return Err(FsError::NotADirectory(String::from(path)));
    }
    if is_empty_subvol_dir(dir) {
        return Ok(Vec::new());
    }
    entries_of(fs, dir.tree, dir.ino, DIR_INDEX, path, |e| {
        let name = String::from_utf8_lossy(e.name).into_owned();
        let st = target(fs, dir, e.name, e.location).and_then(|f| stat(fs, &f));
        let stat = match st {
            Ok(s) => s,
            Err(err) => {
                log::debug!("btrfs: {path}/{name}: {err}");
                let (kind, bits) = kind_of_ft(e.ty);
                Stat {
                    kind,
                    size: 0,
                    mode: bits,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                    link_target: None,
                }
            }
        };
        DirEntry { stat, name }
    })
}

//! btrfs, read-only, behind [`FileSystem`](crate::fs::FileSystem).
//!
//! What is read: the primary superblock (CRC-32C checked; other checksum types are refused),
//! `sys_chunk_array` and the chunk tree (SINGLE and DUP profiles on one device; a RAID
//! profile or a filesystem of several devices is [`FsError::Unsupported`] naming what is
//! missing), the root tree (subvolumes, the default subvolume, `ROOT_BACKREF` paths), and
//! each subvolume's tree: inode items, directory items (lookup by name hash) and directory
//! index items (listing order, as Linux's `readdir`), inline, regular and preallocated
//! extents, holes, and zlib, lzo and zstd compression ([`compress`]). A directory entry
//! naming another subvolume is crossed into, as a mount of the parent shows it (an entry a
//! snapshot copied without the subvolume reads as an empty directory, as on Linux).
//!
//! What is not: xattrs (ignored), data checksums (not verified, as a `nodatasum` mount),
//! the log tree (a filesystem with an unreplayed log is read as committed, and the log says
//! so), backup superblocks and backup roots, the free-space and extent trees (usage comes
//! from the superblock and the chunks, see [`SubvolFs::usage`](crate::fs::FileSystem::usage)).
//!
//! Why not lambutter 0.5 (read for this): its public API gives no timestamps, no way to list
//! subvolumes and no usage figures, all of which the appliance needs, and its internals are
//! private; its decompression cap is 16 MiB per extent where btrfs's own is 128 KiB, and it
//! reads RAID1 chunks of a multi-device filesystem from one member. Its checks of tree
//! blocks are sound (checksums, key order, a depth cap); this reader checks levels exactly
//! instead, which also rules out loops.
//!
//! [`Btrfs`] is the filesystem on one device; [`SubvolFs`] one subvolume of it, the unit
//! libguestfs mounts (`/dev/sda3` is the default subvolume, `btrfsvol:/dev/sda3/PATH` any
//! other).

mod chunks;
pub mod compress;
mod crc;
mod dir;
mod file;
mod items;
mod subvol;
mod superblock;
mod tree;

#[cfg(test)]
mod tests;

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use vmchannel_proto::{DirEntry, Stat, Usage};

use crate::disk::BlockDevice;
use crate::fs::{FileSystem, FsError};
use chunks::{ChunkMap, Geometry};
use subvol::SubvolRoot;
pub use subvol::Subvolume;
use superblock::Superblock;
use tree::{Node, TreeRoot};

type Result<T> = core::result::Result<T, FsError>;

/// A [`FsError::Corrupt`] for this filesystem.
fn corrupt(what: impl core::fmt::Display) -> FsError {
    FsError::Corrupt(format!("btrfs: {what}"))
}

/// Tree blocks kept parsed (4 MiB of 16 KiB nodes).
const NODE_CACHE: usize = 256;

/// The shared state of one btrfs filesystem.
pub(crate) struct Inner {
    dev: Rc<dyn BlockDevice>,
    sb: Superblock,
    chunks: ChunkMap,
    /// Recently read blocks, most recent last.
    nodes: RefCell<Vec<Rc<Node>>>,
    /// The last decoded compressed extent: (logical address, its bytes).
    extent: RefCell<Option<(u64, Rc<Vec<u8>>)>>,
}

impl Inner {
    fn root_tree(&self) -> TreeRoot {
        TreeRoot {
            bytenr: self.sb.root,
            level: self.sb.root_level,
        }
    }

    /// The tree block at `bytenr`, which must be of `level`; DUP's second copy is read
    /// when the first does not check out.
    fn node(&self, bytenr: u64, level: u8) -> Result<Rc<Node>> {
        {
            let mut cache = self.nodes.borrow_mut();
            if let Some(i) = cache.iter().position(|n| n.bytenr == bytenr) {
                let n = cache.remove(i);
                cache.push(n.clone());
                if n.level != level {
                    return Err(corrupt(format!(
                        "tree block {bytenr:#x}: level {} where {level} was expected",
                        n.level
                    )));
                }
                return Ok(n);
            }
        }
        let size = u64::from(self.sb.nodesize);
        if !bytenr.is_multiple_of(u64::from(self.sb.sectorsize)) {
            return Err(corrupt(format!("tree block {bytenr:#x}: unaligned")));
        }
        let copies = self.chunks.map(bytenr, size)?;
        let mut err = None;
        for phys in copies {
            let mut data = vec![0u8; self.sb.nodesize as usize];
            if let Err(e) = self.dev.read_at(phys, &mut data) {
                err = Some(FsError::Io(format!("btrfs: tree block {bytenr:#x}: {e}")));
                continue;
            }
            match Node::parse(bytenr, level, data, &self.sb.tree_fsid) {
                Ok(n) => {
                    let n = Rc::new(n);
                    let mut cache = self.nodes.borrow_mut();
                    if cache.len() >= NODE_CACHE {
                        cache.remove(0);
                    }
                    cache.push(n.clone());
                    return Ok(n);
                }
                Err(e) => err = Some(e),
            }
        }
        Err(err.unwrap_or_else(|| corrupt(format!("tree block {bytenr:#x}: no copy"))))
    }

    /// Fills `buf` from logical address `logical` (data, which may span chunks).
    fn read_logical(&self, mut logical: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let (phys, run) = self.chunks.map_run(logical)?;
            let take = (buf.len() - done).min(usize::try_from(run).unwrap_or(usize::MAX));
            self.dev
                .read_at(phys, &mut buf[done..done + take])
                .map_err(|e| FsError::Io(format!("btrfs: data at {logical:#x}: {e}")))?;
            done += take;
            logical = logical.saturating_add(take as u64);
        }
        Ok(())
    }
}

/// A btrfs filesystem on one device.
#[derive(Clone)]
pub struct Btrfs {
    inner: Rc<Inner>,
}

impl Btrfs {
    /// Opens the filesystem on `dev`: the superblock, the chunks and the root tree's root.
    pub fn open(dev: Rc<dyn BlockDevice>) -> Result<Self> {
        let sb = superblock::read(&*dev)?;
        if sb.num_devices != 1 {
            return Err(FsError::Unsupported(format!(
                "btrfs: {} devices, only 1 present",
                sb.num_devices
            )));
        }
        let geo = Geometry {
            devid: sb.devid,
            dev_size: dev.size(),
            sectorsize: sb.sectorsize,
        };
        let mut inner = Inner {
            dev,
            sb,
            chunks: ChunkMap::default(),
            nodes: RefCell::new(Vec::new()),
            extent: RefCell::new(None),
        };
        let array = inner.sb.sys_chunk_array.clone();
        inner.chunks.add_sys_array(&array, geo)?;
        // The chunk tree, read through the bootstrap chunks; its items are collected first
        // and added after, as the map cannot change under the walk.
        let chunk_tree = TreeRoot {
            bytenr: inner.sb.chunk_root,
            level: inner.sb.chunk_root_level,
        };
        let mut found = Vec::new();
        {
            let mut c = tree::Cursor::seek(
                &inner,
                chunk_tree,
                tree::Key::new(256, chunks::CHUNK_ITEM_KEY, 0),
                tree::Seek::Ge,
            )?;
            while let Some(item) = c.next()? {
                if item.key.ty != chunks::CHUNK_ITEM_KEY {
                    continue;
                }
                if found.len() >= chunks::MAX_CHUNKS {
                    return Err(FsError::TooLarge(format!(
                        "btrfs: more than {} chunks",
                        chunks::MAX_CHUNKS
                    )));
                }
                found.push(item);
            }
        }
        for item in found {
            inner.chunks.add(item.key.offset, &item.data, geo)?;
        }
        if inner.sb.log_root != 0 {
            log::warn!("btrfs: the log tree is not replayed; reading the last commit");
        }
        let fs = Self {
            inner: Rc::new(inner),
        };
        // The root tree must be readable for anything to be.
        fs.inner.node(fs.inner.sb.root, fs.inner.sb.root_level)?;
        Ok(fs)
    }

    /// The id of the default subvolume (5 when none was set).
    pub fn default_subvolume(&self) -> Result<u64> {
        subvol::default_id(&self.inner)
    }

    /// Every subvolume except the top level, by id, as `btrfs subvolume list` gives them.
    pub fn subvolumes(&self) -> Result<Vec<Subvolume>> {
        subvol::list(&self.inner)
    }

    /// The subvolume with id `id` as a filesystem of its own (`subvolid=` mounts it).
    pub fn subvolume(&self, id: u64) -> Result<SubvolFs> {
        let root = subvol::root(&self.inner, id)?
            .ok_or_else(|| FsError::NotFound(format!("btrfs: subvolume {id}")))?;
        Ok(SubvolFs {
            inner: self.inner.clone(),
            root,
        })
    }

    /// The default subvolume as a filesystem (what a mount without `subvol=` shows).
    pub fn default_fs(&self) -> Result<SubvolFs> {
        self.subvolume(self.default_subvolume()?)
    }
}

/// One subvolume of a btrfs filesystem, read as a filesystem of its own.
#[derive(Clone)]
pub struct SubvolFs {
    inner: Rc<Inner>,
    root: SubvolRoot,
}

impl SubvolFs {
    /// The subvolume's id.
    pub fn id(&self) -> u64 {
        self.root.id
    }
}

impl FileSystem for SubvolFs {
    fn lstat(&self, path: &str) -> Result<Stat> {
        let f = dir::resolve(&self.inner, self.root, path, false)?;
        dir::stat(&self.inner, &f)
    }

    fn stat(&self, path: &str) -> Result<Stat> {
        let f = dir::resolve(&self.inner, self.root, path, true)?;
        dir::stat(&self.inner, &f)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let f = dir::resolve(&self.inner, self.root, path, true)?;
        dir::list(&self.inner, &f, path)
    }

    fn full_stat(&self, path: &str, follow: bool) -> Result<crate::fs::FullStat> {
        let f = dir::resolve(&self.inner, self.root, path, follow)?;
        Ok(dir::full_stat(&f, u64::from(self.inner.sb.sectorsize)))
    }

    fn xattrs(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let f = dir::resolve(&self.inner, self.root, path, false)?;
        dir::xattrs(&self.inner, &f)
    }

    fn readdir_raw(&self, path: &str) -> Result<Vec<crate::fs::RawDirEntry>> {
        let f = dir::resolve(&self.inner, self.root, path, true)?;
        // `..` of the subvolume's root is itself (the mount's root); of another directory,
        // its parent here.
        let parent = if f.ino == self.root.dirid && f.subvol == self.root.id {
            f.ino
        } else {
            dir::resolve(&self.inner, self.root, &alloc::format!("{path}/.."), true)?.ino
        };
        dir::list_raw(&self.inner, &f, parent, path)
    }

    fn read_link(&self, path: &str) -> Result<String> {
        let f = dir::resolve(&self.inner, self.root, path, false)?;
        if !f.is_symlink() {
            return Err(FsError::BadPath(format!("{path}: not a symbolic link")));
        }
        let t = dir::link_target(&self.inner, &f)?;
        Ok(String::from_utf8_lossy(&t).into_owned())
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let f = dir::resolve(&self.inner, self.root, path, true)?;
        if f.is_dir() {
            return Err(FsError::IsADirectory(path.to_string()));
        }
        if !f.is_file() {
            return Err(FsError::NotAFile(path.to_string()));
        }
        file::read(&self.inner, &f, offset, buf)
    }

    /// statvfs as Linux's `btrfs_statfs` reckons it, from what is on disk ([`usage`]).
    fn usage(&self) -> Result<Usage> {
        usage(&self.inner)
    }
}

/// statvfs as Linux's `btrfs_statfs` reckons it: the block size is the sector size; the
/// total is the filesystem's bytes over the data profile's copies (2 for DUP); free is the
/// total less every block group's used bytes (times its copies) and less the global block
/// reserve, estimated as Linux 6.x sizes it on a small filesystem (`nodesize * 8 * 2` for
/// each of 10 items, and 6 more, twice with the free-space tree; Linux keeps the real one
/// in memory); available is the free space in data block groups plus the device space no
/// chunk holds yet (less the first MiB), over the data copies. btrfs has no inode counts.
fn usage(fs: &Inner) -> Result<Usage> {
    const DATA: u64 = 1;
    let sb = &fs.sb;
    let chunks = fs.chunks.chunks();
    let factor = if chunks
        .iter()
        .any(|c| c.flags & DATA != 0 && c.copies.len() == 2)
    {
        2
    } else {
        1
    };
    // Block group items: in the block-group tree (id 11) when there is one, else the
    // extent tree (id 2).
    let bg_tree_id = if sb.compat_ro & (1 << 3) != 0 { 11 } else { 2 };
    let bg_tree = subvol::root(fs, bg_tree_id)?.map(|r| r.tree);
    let (mut used_phys, mut data_total, mut data_used, mut allocated) = (0u64, 0u64, 0u64, 0u64);
    for c in chunks {
        let copies = c.copies.len() as u64;
        allocated = allocated.saturating_add(c.length.saturating_mul(copies));
        let used = match bg_tree {
            Some(t) => tree::find(fs, t, tree::Key::new(c.logical, 192, c.length))?
                .map_or(0, |d| crate::disk::le64(&d, 0).min(c.length)),
            None => 0,
        };
        used_phys = used_phys.saturating_add(used.saturating_mul(copies));
        if c.flags & DATA != 0 {
            data_total = data_total.saturating_add(c.length);
            data_used = data_used.saturating_add(used);
        }
    }
    let bs = u64::from(sb.sectorsize);
    let units = u64::from(sb.nodesize) * 8 * 2;
    let fst = if sb.compat_ro & 1 != 0 { 2 } else { 1 };
    let reserve = (units * 10 + units * 6 * fst).min(512 << 20);
    let blocks = sb.total_bytes / factor / bs;
    let free = blocks.saturating_sub(used_phys / factor / bs + reserve / bs);
    let unallocated = fs
        .dev
        .size()
        .min(sb.total_bytes)
        .saturating_sub(allocated)
        .saturating_sub(1 << 20)
        & !0xffff;
    let avail = (data_total.saturating_sub(data_used) + unallocated) / factor / bs;
    Ok(Usage {
        block_size: bs,
        blocks,
        blocks_free: free,
        blocks_available: avail.min(free),
        inodes: 0,
        inodes_free: 0,
    })
}

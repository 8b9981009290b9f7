//! vfat: FAT12, FAT16 and FAT32 with long names, read-only, behind [`FileSystem`], answering
//! what Linux's vfat answers when mounted read-only with default options (as the libguestfs
//! appliance mounts it).
//!
//! Written here rather than taken from a crate: fatfs 0.3 needs std or a nightly compiler
//! for no_std, embedded-sdmmc works in 8.3 names, and hadris-fat is a release candidate;
//! none of them shows names, modes and sizes the way Linux does, and a read-only reader is
//! small (this one is well under GRUB's fat.c).
//!
//! What is read: the boot sector ([`bpb`]), the first FAT ([`fat`]: entries, chains with
//! exact loop detection, free count), directories ([`dir`]: the fixed FAT12/16 root and
//! cluster chains, long-name runs checked as Linux checks them), names ([`name`]: code page
//! 437 short names with the NT case bits, UTF-16 long names, ASCII-folding lookups) and
//! timestamps ([`time`]). What is not: FSInfo's free count (Linux counts the FAT too, unless
//! mounted `usefree`), the second FAT, and anything to do with writing.
//!
//! As Linux shows it, with `uid=0,gid=0` and the umask 022:
//! - directories are `040755` and files `0100755`, `0100555` when read-only (the attribute
//!   does not touch directories: vfat's `rodir` is off);
//! - a directory's size is its cluster count times the cluster size, the FAT12/16 root's
//!   its entry count times 32; the root's times are 0;
//! - mtime is the last-write date and time as UTC (ctime is the same on Linux, atime the
//!   access date; the protocol carries mtime only, and no link counts or inode numbers);
//! - `usage`: the cluster size as block size, data clusters as blocks, free clusters
//!   counted from the FAT, no inode figures (Linux's `fat_statfs` reports 0 files).
//!
//! Bounds, whatever the disk claims: a directory has at most [`MAX_DIR_BYTES`] (Linux
//! creates at most 65536 entries); a chain at most as many clusters as the volume has and
//! [`fat::MAX_RUNS`] fragments, and never visits a cluster twice; a subdirectory that
//! starts at cluster 0, at the root's cluster or at a directory on its own path is corrupt
//! (Linux's `fat_validate_dir` checks the first two), and so is one without its `.` and
//! `..` entries. A listing sizes its subdirectories by walking their chains, at most
//! [`MAX_SIZING_STEPS`] FAT entries in all. Errors name the path and what was wrong.
//!
//! Costs: a lookup reads and parses each directory on the path (the last
//! [`DIR_CACHE`] directories are kept parsed); a file's chain is mapped as far as reads
//! need it and kept for the last [`CHAIN_CACHE`] files, so reading a 1 MiB file in
//! 64 KiB pieces walks its chain once in all, each piece costing a binary search over the
//! chain's runs and one device read per run it touches; the free count reads the whole
//! FAT once, then is remembered.

pub mod bpb;
pub mod dir;
pub mod fat;
pub mod name;
pub mod time;

#[cfg(test)]
mod tests;

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use vmchannel_proto::{DirEntry, FileKind, Stat, Usage};

use self::bpb::{FatType, Geometry};
use self::dir::{ATTR_RO, Entry};
use self::fat::{Chain, Fat};
use super::{FileSystem, FsError};
use crate::disk::{BlockDevice, le32};

/// Most bytes a directory may hold: 65536 entries of 32 bytes, the most Linux creates.
pub const MAX_DIR_BYTES: u64 = 65536 * 32;

/// Most FAT entries one listing reads to size its subdirectories (Linux walks each
/// subdirectory's chain to give its size): past this, the remaining subdirectories of the
/// listing show size 0 rather than let a forged directory of 65536 subdirectories, each
/// on a long chain, cost billions of reads.
pub const MAX_SIZING_STEPS: u32 = 1 << 20;

/// Cluster chains of recently read files kept mapped.
pub const CHAIN_CACHE: usize = 8;

/// Parsed directories kept, and the most entries one may have to be kept (so the cache
/// holds at most 8 x 4096 entries, a few MiB at worst).
pub const DIR_CACHE: usize = 8;
/// Most entries a directory may have to be kept in the cache.
pub const DIR_CACHE_ENTRIES: usize = 4096;

/// A directory read and checked: its entries and its size.
struct Dir {
    entries: Vec<Entry>,
    size: u64,
}

/// FSInfo signatures (at 0 and 484).
const FSINFO_LEAD: u32 = 0x4161_5252;
const FSINFO_STRUCT: u32 = 0x6141_7272;

pub(crate) fn corrupt(msg: impl Into<String>) -> FsError {
    FsError::Corrupt(msg.into())
}

pub(crate) fn io(msg: impl Into<String>) -> FsError {
    FsError::Io(msg.into())
}

/// Prefixes an error's message with `path`.
fn at(path: &str, e: FsError) -> FsError {
    match e {
        FsError::Corrupt(m) => FsError::Corrupt(format!("{path}: {m}")),
        FsError::Io(m) => FsError::Io(format!("{path}: {m}")),
        FsError::Unsupported(m) => FsError::Unsupported(format!("{path}: {m}")),
        other => other,
    }
}

/// A file or directory found by a lookup.
#[derive(Clone, Debug)]
enum Node {
    Root,
    Entry(Entry),
}

impl Node {
    fn is_dir(&self) -> bool {
        match self {
            Node::Root => true,
            Node::Entry(e) => e.is_dir(),
        }
    }
}

/// A vfat filesystem.
pub struct VfatFs {
    dev: Rc<dyn BlockDevice>,
    geo: Geometry,
    fat: Fat,
    /// Chains of recently read files by first cluster, the most recent last.
    chains: RefCell<Vec<(u32, Chain)>>,
    /// Recently read directories by first cluster (0: the fixed root), the most recent last.
    dirs: RefCell<Vec<(u32, Rc<Dir>)>>,
    /// Free clusters, once counted.
    free: Cell<Option<u64>>,
}

impl VfatFs {
    /// Opens the vfat filesystem on `dev`: checks the boot sector, and on FAT32 reads the
    /// FSInfo sector and walks the root directory's chain (as Linux's mount does).
    pub fn open(dev: Rc<dyn BlockDevice>) -> Result<Self, FsError> {
        let mut boot = vec![0u8; 512];
        dev.read_at(0, &mut boot)
            .map_err(|e| io(format!("boot sector: {e}")))?;
        let geo = Geometry::parse(&boot)?;
        if geo.sector_size > 512 {
            // Linux reads the whole first logical sector.
            let mut whole = vec![0u8; geo.sector_size as usize];
            dev.read_at(0, &mut whole)
                .map_err(|e| io(format!("boot sector: {e}")))?;
        }
        let fat = Fat::new(dev.clone(), &geo);
        let fs = VfatFs {
            dev,
            geo,
            fat,
            chains: RefCell::new(Vec::new()),
            dirs: RefCell::new(Vec::new()),
            free: Cell::new(None),
        };
        if fs.geo.fat_type == FatType::Fat32 {
            let mut info = vec![0u8; fs.geo.sector_size as usize];
            fs.dev
                .read_at(
                    fs.geo.fsinfo_sector as u64 * fs.geo.sector_size as u64,
                    &mut info,
                )
                .map_err(|e| io(format!("FSInfo sector {}: {e}", fs.geo.fsinfo_sector)))?;
            if le32(&info, 0) != FSINFO_LEAD || le32(&info, 484) != FSINFO_STRUCT {
                log::debug!(
                    "vfat: FSInfo sector {} has no signature",
                    fs.geo.fsinfo_sector
                );
            }
            fs.dir(&Node::Root).map_err(|e| at("/", e))?;
        }
        Ok(fs)
    }

    /// The FAT type.
    pub fn fat_type(&self) -> FatType {
        self.geo.fat_type
    }

    /// Most clusters a directory's chain may have.
    fn dir_limit(&self) -> u32 {
        (MAX_DIR_BYTES / self.geo.cluster_size as u64).max(1) as u32
    }

    fn fat32(&self) -> bool {
        self.geo.fat_type == FatType::Fat32
    }

    /// A directory's first cluster, or None for the fixed root.
    fn dir_start(&self, node: &Node) -> Result<Option<u32>, FsError> {
        match node {
            Node::Root if !self.fat32() => Ok(None),
            Node::Root => Ok(Some(self.geo.root_cluster)),
            Node::Entry(e) if e.start == 0 => Err(corrupt("directory without clusters")),
            Node::Entry(e) => Ok(Some(e.start)),
        }
    }

    /// A directory's size as Linux gives it, walking at most `budget` FAT entries (less
    /// what it walked is left in `budget`).
    fn dir_size(&self, node: &Node, budget: &mut u32) -> Result<u64, FsError> {
        let Some(start) = self.dir_start(node)? else {
            return Ok(self.geo.root_entries as u64 * 32);
        };
        let mut chain = Chain::new(&self.fat, start, self.dir_limit().min(*budget))?;
        let walked = chain.all(&self.fat).map(|_| ());
        *budget = budget.saturating_sub(chain.mapped().saturating_add(1));
        walked?;
        Ok(chain.mapped() as u64 * self.geo.cluster_size as u64)
    }

    /// A directory's entries and size, checked as Linux checks a directory it opens: a
    /// subdirectory must hold at least two directory records (`.` and `..`). Recently read
    /// directories come from a small cache.
    fn dir(&self, node: &Node) -> Result<Rc<Dir>, FsError> {
        let start = self.dir_start(node)?;
        let key = start.unwrap_or(0);
        {
            let mut dirs = self.dirs.borrow_mut();
            if let Some(i) = dirs.iter().position(|(k, _)| *k == key) {
                let hit = dirs.remove(i);
                let d = hit.1.clone();
                dirs.push(hit);
                return Ok(d);
            }
        }
        let (data, size) = match start {
            None => {
                let mut data = vec![0u8; self.geo.root_entries as usize * 32];
                self.dev
                    .read_at(self.geo.root_offset, &mut data)
                    .map_err(|e| io(format!("root directory: {e}")))?;
                let size = data.len() as u64;
                (data, size)
            }
            Some(start) => {
                let mut chain = Chain::new(&self.fat, start, self.dir_limit())?;
                let cs = self.geo.cluster_size as u64;
                let mut data = Vec::new();
                for r in chain.all(&self.fat)? {
                    let from = data.len();
                    data.resize(from + (r.len as u64 * cs) as usize, 0);
                    self.dev
                        .read_at(self.geo.cluster_offset(r.disk), &mut data[from..])
                        .map_err(|e| io(format!("directory cluster {}: {e}", r.disk)))?;
                }
                let size = data.len() as u64;
                (data, size)
            }
        };
        if matches!(node, Node::Entry(_)) && dir::subdirs(&data) < 2 {
            return Err(corrupt("directory without its . and .. entries"));
        }
        let d = Rc::new(Dir {
            entries: dir::parse(&data, self.fat32()),
            size,
        });
        if d.entries.len() <= DIR_CACHE_ENTRIES {
            let mut dirs = self.dirs.borrow_mut();
            if dirs.len() >= DIR_CACHE {
                dirs.remove(0);
            }
            dirs.push((key, d.clone()));
        }
        Ok(d)
    }

    /// The node at absolute `path`. `.` and `..` are taken lexically (vfat has no links);
    /// a subdirectory is checked as Linux checks one before entering it, and must not be
    /// a directory already on the path.
    fn resolve(&self, path: &str) -> Result<Node, FsError> {
        if !path.starts_with('/') {
            return Err(FsError::BadPath(format!("{path}: not absolute")));
        }
        let mut stack = vec![Node::Root];
        let mut starts = vec![self.geo.root_cluster];
        for comp in path.split('/') {
            if comp.is_empty() || comp == "." {
                continue;
            }
            let cur = stack.last().cloned().unwrap_or(Node::Root);
            if !cur.is_dir() {
                return Err(FsError::NotADirectory(String::from(path)));
            }
            if comp == ".." {
                if stack.len() > 1 {
                    stack.pop();
                    starts.pop();
                }
                continue;
            }
            let want = name::strip_tail(comp);
            let found = if want.is_empty() {
                None
            } else {
                self.dir(&cur)
                    .map_err(|e| at(path, e))?
                    .entries
                    .iter()
                    .find(|e| name::same_name(&e.short, want) || name::same_name(&e.name, want))
                    .cloned()
            };
            let Some(e) = found else {
                return Err(FsError::NotFound(String::from(path)));
            };
            if e.is_dir() {
                if e.start == 0 || e.start == self.geo.root_cluster {
                    return Err(corrupt(format!(
                        "{path}: directory {comp} starts at cluster {}",
                        e.start
                    )));
                }
                if starts.contains(&e.start) {
                    return Err(corrupt(format!(
                        "{path}: directory {comp} (cluster {}) contains itself",
                        e.start
                    )));
                }
                starts.push(e.start);
            } else {
                starts.push(0);
            }
            stack.push(Node::Entry(e));
        }
        Ok(stack.pop().unwrap_or(Node::Root))
    }

    /// The stat of `node`; `size` is a directory's size, computed by the caller.
    fn stat_of(&self, node: &Node, size: u64) -> Stat {
        let (kind, mode, mtime) = match node {
            Node::Root => (FileKind::Directory, 0o040755, 0),
            Node::Entry(e) if e.is_dir() => (
                FileKind::Directory,
                0o040755,
                time::to_unix(e.wdate, e.wtime),
            ),
            Node::Entry(e) => (
                FileKind::File,
                if e.attr & ATTR_RO != 0 {
                    0o100555
                } else {
                    0o100755
                },
                time::to_unix(e.wdate, e.wtime),
            ),
        };
        Stat {
            kind,
            size,
            mode,
            uid: 0,
            gid: 0,
            mtime,
            link_target: None,
        }
    }

    /// The mapped chain from `start`, out of the cache or new; `f` runs on it and it goes
    /// back to the cache as the most recent.
    fn with_chain<T>(
        &self,
        start: u32,
        f: impl FnOnce(&mut Chain) -> Result<T, FsError>,
    ) -> Result<T, FsError> {
        let cached = {
            let mut chains = self.chains.borrow_mut();
            chains
                .iter()
                .position(|(s, _)| *s == start)
                .map(|i| chains.remove(i).1)
        };
        let mut chain = match cached {
            Some(c) => c,
            None => Chain::new(&self.fat, start, self.geo.clusters)?,
        };
        let out = f(&mut chain);
        let mut chains = self.chains.borrow_mut();
        if chains.len() >= CHAIN_CACHE {
            chains.remove(0);
        }
        chains.push((start, chain));
        out
    }

    /// Reads file `e` from `offset` into `buf` (both inside the file).
    fn read_file_at(&self, e: &Entry, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        if e.start == 0 {
            return Err(corrupt(format!("{} bytes but no clusters", e.size)));
        }
        let cs = self.geo.cluster_size as u64;
        self.with_chain(e.start, |chain| {
            let mut done = 0usize;
            while done < buf.len() {
                let pos = offset + done as u64;
                let index = (pos / cs) as u32;
                let Some((disk, run)) = chain.locate(&self.fat, index)? else {
                    return Err(corrupt(format!(
                        "cluster chain ends after {} clusters, short of {} bytes",
                        chain.mapped(),
                        e.size
                    )));
                };
                let within = pos % cs;
                let avail = run as u64 * cs - within;
                let n = avail.min((buf.len() - done) as u64) as usize;
                self.dev
                    .read_at(
                        self.geo.cluster_offset(disk) + within,
                        &mut buf[done..done + n],
                    )
                    .map_err(|err| io(format!("cluster {disk}: {err}")))?;
                done += n;
            }
            Ok(())
        })
    }
}

impl FileSystem for VfatFs {
    fn lstat(&self, path: &str) -> Result<Stat, FsError> {
        self.stat(path)
    }

    fn stat(&self, path: &str) -> Result<Stat, FsError> {
        let node = self.resolve(path)?;
        let size = match &node {
            Node::Entry(e) if !e.is_dir() => e.size as u64,
            // Linux checks a directory when it builds its inode.
            dir => self.dir(dir).map_err(|e| at(path, e))?.size,
        };
        Ok(self.stat_of(&node, size))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let node = self.resolve(path)?;
        if !node.is_dir() {
            return Err(FsError::NotADirectory(String::from(path)));
        }
        let dir = self.dir(&node).map_err(|e| at(path, e))?;
        let mut out = Vec::with_capacity(dir.entries.len());
        let mut budget = MAX_SIZING_STEPS;
        for e in dir.entries.iter().cloned() {
            let size = if e.is_dir() {
                // One bad subdirectory does not hide the rest of the listing.
                self.dir_size(&Node::Entry(e.clone()), &mut budget)
                    .unwrap_or_else(|err| {
                        log::debug!("vfat: {path}/{}: {err}", e.name);
                        0
                    })
            } else {
                e.size as u64
            };
            let name = e.name.clone();
            out.push(DirEntry {
                stat: self.stat_of(&Node::Entry(e), size),
                name,
            });
        }
        Ok(out)
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        self.resolve(path)?;
        Err(FsError::BadPath(format!("{path}: not a symbolic link")))
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let e = match self.resolve(path)? {
            Node::Entry(e) if !e.is_dir() => e,
            _ => return Err(FsError::IsADirectory(String::from(path))),
        };
        let size = e.size as u64;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = (size - offset).min(buf.len() as u64) as usize;
        self.read_file_at(&e, offset, &mut buf[..n])
            .map_err(|err| at(path, err))?;
        Ok(n)
    }

    fn usage(&self) -> Result<Usage, FsError> {
        let free = match self.free.get() {
            Some(f) => f,
            None => {
                let f = self.fat.count_free().map_err(|e| at("/", e))?;
                self.free.set(Some(f));
                f
            }
        };
        Ok(Usage {
            block_size: self.geo.cluster_size as u64,
            blocks: self.geo.clusters as u64,
            blocks_free: free,
            blocks_available: free,
            inodes: 0,
            inodes_free: 0,
        })
    }
}

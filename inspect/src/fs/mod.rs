//! Filesystems: what the appliance can read, behind one trait.
//!
//! [`FileSystem`] is the read-only view every filesystem driver gives (ext2/3/4 through
//! ext4-view in [`ext4`]); [`detect`] recognises filesystems and other volumes by their
//! superblocks without mounting them.

pub mod btrfs;
pub mod detect;
pub mod ext4;
pub mod ntfs;
pub mod vfat;
pub mod xfs;

use alloc::string::String;
use alloc::vec::Vec;

use vmchannel_proto::{DirEntry, ErrorKind, FileKind, Stat, Usage};

/// Most symlinks followed while resolving one path (Linux's limit).
pub const MAX_SYMLINKS: u32 = 40;

/// Why a filesystem operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// No such file or directory.
    #[error("not found: {0}")]
    NotFound(String),
    /// A path component is not a directory.
    #[error("not a directory: {0}")]
    NotADirectory(String),
    /// A directory where a file was wanted.
    #[error("is a directory: {0}")]
    IsADirectory(String),
    /// Not a regular file (device, fifo, socket) where one was wanted.
    #[error("not a regular file: {0}")]
    NotAFile(String),
    /// Too many levels of symbolic links.
    #[error("too many levels of symbolic links: {0}")]
    SymlinkLoop(String),
    /// A malformed path (relative, not UTF-8, too long).
    #[error("bad path: {0}")]
    BadPath(String),
    /// The answer would exceed a limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The filesystem is corrupt.
    #[error("corrupt filesystem: {0}")]
    Corrupt(String),
    /// The filesystem uses something this driver cannot read.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The device could not be read.
    #[error("I/O error: {0}")]
    Io(String),
}

impl FsError {
    /// The protocol's error kind for this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FsError::NotFound(_) => ErrorKind::NotFound,
            FsError::NotADirectory(_) => ErrorKind::NotADirectory,
            FsError::IsADirectory(_) => ErrorKind::IsADirectory,
            FsError::NotAFile(_) | FsError::Unsupported(_) => ErrorKind::Unsupported,
            FsError::SymlinkLoop(_) | FsError::BadPath(_) => ErrorKind::BadRequest,
            FsError::TooLarge(_) => ErrorKind::TooLarge,
            FsError::Corrupt(_) => ErrorKind::Corrupt,
            FsError::Io(_) => ErrorKind::Io,
        }
    }
}

/// A read-only filesystem. Paths are absolute, `/`-separated, UTF-8.
///
/// Symlinks are followed inside the filesystem (an absolute link target is relative to this
/// filesystem's root) except where a method says otherwise.
pub trait FileSystem {
    /// Metadata of `path`; a final symlink is described, not followed (`lstat`).
    fn lstat(&self, path: &str) -> Result<Stat, FsError>;
    /// Metadata of `path`, following a final symlink (`stat`).
    fn stat(&self, path: &str) -> Result<Stat, FsError>;
    /// The entries of directory `path`, without `.` and `..`, in on-disk order.
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError>;
    /// The target of symlink `path`.
    fn read_link(&self, path: &str) -> Result<String, FsError>;
    /// Reads from regular file `path` at `offset` into `buf`; returns the bytes read, fewer
    /// than `buf.len()` only at end of file.
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError>;
    /// Usage of the filesystem as a whole.
    fn usage(&self) -> Result<Usage, FsError>;

    /// Everything stat(2) gives for `path` (following a final symlink when `follow`):
    /// inode number, link count, blocks, device number, the three times with nanoseconds.
    /// Readers that do not have them refuse with [`FsError::Unsupported`].
    fn full_stat(&self, path: &str, follow: bool) -> Result<FullStat, FsError> {
        let _ = follow;
        Err(FsError::Unsupported(alloc::format!(
            "{path}: inode details on this filesystem"
        )))
    }

    /// The entries of directory `path` as Linux's readdir(3) returns them on this
    /// filesystem: `.` and `..` included, in its order (ext4: hash order), with inode
    /// numbers. Readers that do not know it refuse with [`FsError::Unsupported`].
    fn readdir_raw(&self, path: &str) -> Result<Vec<RawDirEntry>, FsError> {
        Err(FsError::Unsupported(alloc::format!(
            "{path}: readdir order on this filesystem"
        )))
    }

    /// The filesystem's own `f_fsid` as Linux's statfs gives it (ext4: from its UUID), or
    /// `None` where Linux derives it from the device number or the reader does not know it.
    fn fsid(&self) -> Option<u64> {
        None
    }

    /// The extended attributes of `path` itself (a final symlink not followed, as
    /// lgetxattr(2)), full names (`user.x`, `security.selinux`), in on-disk order.
    /// Readers that do not know them refuse with [`FsError::Unsupported`].
    fn xattrs(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, FsError> {
        Err(FsError::Unsupported(alloc::format!(
            "{path}: extended attributes on this filesystem"
        )))
    }

    /// The whole of regular file `path`, refused with [`FsError::TooLarge`] past `max` bytes.
    fn read_file(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let st = self.stat(path)?;
        if st.size > max {
            return Err(FsError::TooLarge(alloc::format!(
                "{path}: {} bytes (limit {max})",
                st.size
            )));
        }
        let mut out = alloc::vec![0u8; st.size as usize];
        let mut done = 0;
        while done < out.len() {
            let n = self.read_at(path, done as u64, &mut out[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        out.truncate(done);
        Ok(out)
    }
}

/// glibc's `makedev`: a device number from its major and minor numbers, as stat(2)'s
/// `st_rdev` and `st_dev` carry them.
pub fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

/// glibc's `major` and `minor` of a device number ([`makedev`]'s inverse).
pub fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor & 0xffff_ffff)
}

/// `dir/name` (one slash between them whether or not `dir` ends with one).
pub fn join_path(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        alloc::format!("{dir}{name}")
    } else {
        alloc::format!("{dir}/{name}")
    }
}

/// A timestamp: seconds since the epoch and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Time {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

/// What stat(2) says of a file, less `st_dev` (which the mount decides).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FullStat {
    /// Inode number.
    pub ino: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    /// Link count.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device node (glibc's `makedev` encoding), else 0.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Preferred I/O size (the filesystem block size).
    pub blksize: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access.
    pub atime: Time,
    /// Last modification.
    pub mtime: Time,
    /// Last status change.
    pub ctime: Time,
}

/// One entry as readdir(3) returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDirEntry {
    /// The name (lossily UTF-8).
    pub name: String,
    /// Inode number.
    pub ino: u64,
    /// `d_type`'s kind, [`FileKind::Unknown`] where the directory does not record it.
    pub kind: FileKind,
}

/// A volume found on the disks: what [`detect`] recognised on one device, and the opened
/// filesystem when there is a driver for it.
#[derive(Clone)]
pub struct Volume {
    /// Device name, type, label and UUID.
    pub info: vmchannel_proto::FilesystemInfo,
    /// The partition's PARTUUID, if the device is a partition.
    pub partuuid: Option<String>,
    /// The partition's PARTLABEL (GPT name), if any.
    pub partlabel: Option<String>,
    /// The readable filesystem, when this type has a driver and it opened cleanly.
    pub fs: Option<alloc::rc::Rc<dyn FileSystem>>,
    /// For btrfs: which subvolume this volume is. The device's own volume (`/dev/sda3`) is
    /// the default subvolume; every other subvolume is a volume of its own named as
    /// libguestfs names it, `btrfsvol:/dev/sda3/PATH`.
    pub subvolume: Option<Subvolume>,
}

/// A btrfs subvolume as a volume: the device holding the filesystem and the subvolume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subvolume {
    /// The device (`/dev/sda3`).
    pub device: String,
    /// The subvolume's id (5 for the top level).
    pub id: u64,
    /// Its path from the top level (`root`, `@/.snapshots/1/snapshot`; empty for the top
    /// level).
    pub path: String,
}

impl Volume {
    /// Whether this is a btrfs subvolume other than its device's default (a
    /// `btrfsvol:` volume): tags like `UUID=` name the device, never these.
    pub fn is_subvolume(&self) -> bool {
        self.subvolume
            .as_ref()
            .is_some_and(|s| s.device != self.info.device)
    }

    /// The device this volume is on: itself, or for a subvolume the btrfs device.
    pub fn device(&self) -> &str {
        match &self.subvolume {
            Some(s) => &s.device,
            None => &self.info.device,
        }
    }
}

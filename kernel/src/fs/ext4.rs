//! ext2, ext3 and ext4 through the ext4-view crate (read-only, no_std), behind
//! [`FileSystem`].
//!
//! ext4-view resolves paths, follows links, replays the journal in memory and reads extents
//! and block maps; this module maps its types onto the protocol's and adds what it does not
//! expose: usage figures from the superblock.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ext4_view::{Ext4, Ext4Error, Ext4Read, Metadata};
use vmchannel_proto::{DirEntry, FileKind, Stat, Usage};

use super::{FileSystem, FsError};
use crate::disk::{BlockDevice, DiskError, le32};

/// ext4-view's reads go to our block device.
struct Reader(Rc<dyn BlockDevice>);

impl Ext4Read for Reader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn core::error::Error + Send + Sync + 'static>> {
        self.0
            .read_at(start_byte, dst)
            .map_err(|e: DiskError| Box::new(e) as Box<dyn core::error::Error + Send + Sync>)
    }
}

/// An ext2/3/4 filesystem.
pub struct Ext4Fs {
    fs: Ext4,
    dev: Rc<dyn BlockDevice>,
}

impl Ext4Fs {
    /// Opens the filesystem on `dev`: reads and checks the superblock, the group descriptors
    /// and the journal.
    pub fn open(dev: Rc<dyn BlockDevice>) -> Result<Self, FsError> {
        let fs = Ext4::load(Box::new(Reader(dev.clone()))).map_err(|e| map_err("/", e))?;
        Ok(Self { fs, dev })
    }
}

fn map_err(path: &str, e: Ext4Error) -> FsError {
    let p = String::from(path);
    match e {
        Ext4Error::NotFound => FsError::NotFound(p),
        Ext4Error::NotADirectory => FsError::NotADirectory(p),
        Ext4Error::IsADirectory => FsError::IsADirectory(p),
        Ext4Error::IsASpecialFile => FsError::NotAFile(p),
        Ext4Error::NotASymlink => FsError::BadPath(format!("{p}: not a symbolic link")),
        Ext4Error::TooManySymlinks => FsError::SymlinkLoop(p),
        Ext4Error::NotAbsolute | Ext4Error::MalformedPath | Ext4Error::PathTooLong => {
            FsError::BadPath(p)
        }
        Ext4Error::NotUtf8 => FsError::BadPath(format!("{p}: not UTF-8")),
        Ext4Error::FileTooLarge => FsError::TooLarge(p),
        Ext4Error::Encrypted => FsError::Unsupported(format!("{p}: encrypted")),
        Ext4Error::Io(inner) => FsError::Io(format!("{p}: {inner}")),
        Ext4Error::Incompatible(i) => FsError::Unsupported(format!("{p}: {i}")),
        Ext4Error::Corrupt(c) => FsError::Corrupt(format!("{p}: {c}")),
        other => FsError::Corrupt(format!("{p}: {other}")),
    }
}

fn kind(m: &Metadata) -> FileKind {
    kind_of_type(m.file_type())
}

fn kind_of_type(t: ext4_view::FileType) -> FileKind {
    if t.is_regular_file() {
        FileKind::File
    } else if t.is_dir() {
        FileKind::Directory
    } else if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_char_dev() {
        FileKind::CharDevice
    } else if t.is_block_dev() {
        FileKind::BlockDevice
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else {
        FileKind::Unknown
    }
}

/// `st_mode`'s file-type bits for a kind.
fn type_bits(k: FileKind) -> u32 {
    match k {
        FileKind::Fifo => 0o010000,
        FileKind::CharDevice => 0o020000,
        FileKind::Directory => 0o040000,
        FileKind::BlockDevice => 0o060000,
        FileKind::File => 0o100000,
        FileKind::Symlink => 0o120000,
        FileKind::Socket => 0o140000,
        FileKind::Unknown => 0,
    }
}

impl Ext4Fs {
    fn to_stat(&self, path: &str, m: &Metadata) -> Stat {
        let kind = kind(m);
        let link_target = if kind == FileKind::Symlink {
            self.fs
                .read_link(path)
                .ok()
                .map(|t| String::from_utf8_lossy(t.as_ref()).into_owned())
        } else {
            None
        };
        Stat {
            kind,
            size: m.len(),
            mode: type_bits(kind) | m.mode() as u32,
            uid: m.uid(),
            gid: m.gid(),
            mtime: m.modified().seconds(),
            link_target,
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

impl FileSystem for Ext4Fs {
    fn lstat(&self, path: &str) -> Result<Stat, FsError> {
        let m = self
            .fs
            .symlink_metadata(path)
            .map_err(|e| map_err(path, e))?;
        Ok(self.to_stat(path, &m))
    }

    fn stat(&self, path: &str) -> Result<Stat, FsError> {
        let m = self.fs.metadata(path).map_err(|e| map_err(path, e))?;
        Ok(self.to_stat(path, &m))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let mut out = Vec::new();
        for entry in self.fs.read_dir(path).map_err(|e| map_err(path, e))? {
            let entry = entry.map_err(|e| map_err(path, e))?;
            let name = String::from_utf8_lossy(entry.file_name().as_ref()).into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let full = join(path, &name);
            // One unreadable inode does not hide the rest of the directory: it is listed
            // with what the entry itself says (as `ls` shows `?`).
            let stat = match entry.metadata() {
                Ok(m) => self.to_stat(&full, &m),
                Err(e) => {
                    log::debug!("ext4: {full}: {e}");
                    let kind = entry.file_type().map_or(FileKind::Unknown, kind_of_type);
                    Stat {
                        kind,
                        size: 0,
                        mode: type_bits(kind),
                        uid: 0,
                        gid: 0,
                        mtime: 0,
                        link_target: None,
                    }
                }
            };
            out.push(DirEntry { stat, name });
        }
        Ok(out)
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let t = self.fs.read_link(path).map_err(|e| map_err(path, e))?;
        Ok(String::from_utf8_lossy(t.as_ref()).into_owned())
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let mut file = self.fs.open(path).map_err(|e| map_err(path, e))?;
        if offset >= file.metadata().len() {
            return Ok(0);
        }
        file.seek_to(offset).map_err(|e| map_err(path, e))?;
        let mut done = 0;
        while done < buf.len() {
            let n = file
                .read_bytes(&mut buf[done..])
                .map_err(|e| map_err(path, e))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    fn usage(&self) -> Result<Usage, FsError> {
        let mut sb = [0u8; 1024];
        self.dev
            .read_at(1024, &mut sb)
            .map_err(|e| FsError::Io(e.to_string()))?;
        usage_from_superblock(&sb)
    }
}

/// statvfs-like figures from an ext superblock.
///
/// The counts are the superblock's, as `dumpe2fs -h` shows them; Linux's `statfs` also
/// subtracts the metadata overhead from the total, so `df` on a mounted filesystem shows a
/// slightly smaller size.
pub fn usage_from_superblock(sb: &[u8]) -> Result<Usage, FsError> {
    let hi = |lo: usize, hi: usize| -> u64 {
        let is_64bit = le32(sb, 96) & 0x80 != 0;
        le32(sb, lo) as u64
            | if is_64bit {
                (le32(sb, hi) as u64) << 32
            } else {
                0
            }
    };
    let log = le32(sb, 24);
    if log > 6 {
        return Err(FsError::Corrupt(format!("block size 2^{} KiB", log)));
    }
    let blocks = hi(4, 0x150);
    let reserved = hi(8, 0x154);
    let free = hi(12, 0x158);
    let overhead = le32(sb, 0x248) as u64;
    Ok(Usage {
        block_size: 1024 << log,
        blocks: blocks.saturating_sub(overhead),
        blocks_free: free.min(blocks),
        blocks_available: free.saturating_sub(reserved),
        inodes: le32(sb, 0) as u64,
        inodes_free: le32(sb, 16) as u64,
    })
}

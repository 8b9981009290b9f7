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
use crate::disk::{BlockDevice, DiskError, le16, le32};

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
        check_group_count(&*dev)?;
        let fs = Ext4::load(Box::new(Reader(dev.clone()))).map_err(|e| map_err("/", e))?;
        Ok(Self { fs, dev })
    }
}

/// Most block groups a filesystem may have: 128 TiB with 4 KiB blocks.
pub const MAX_BLOCK_GROUPS: u64 = 1 << 20;

/// Refuses a superblock whose block-group count is absurd, before ext4-view sees it.
///
/// `Ext4::load` reserves memory for every group descriptor the superblock's counts imply
/// before reading any, and then reads them one by one: a forged count (blocks per group 1,
/// billions of blocks) is an allocation failure, which aborts the appliance, or billions of
/// reads. Here the count must be at most [`MAX_BLOCK_GROUPS`] and the descriptor table must
/// fit on the device (otherwise ext4-view would fail reading it anyway). Other checks are
/// left to ext4-view.
fn check_group_count(dev: &dyn BlockDevice) -> Result<(), FsError> {
    let mut sb = [0u8; 1024];
    dev.read_at(1024, &mut sb)
        .map_err(|e| FsError::Io(format!("/: {e}")))?;
    // As ext4-view counts: the high half of the block count whatever the features say.
    let blocks = le32(&sb, 4) as u64 | (le32(&sb, 0x150) as u64) << 32;
    let first_data_block = le32(&sb, 0x14) as u64;
    let per_group = le32(&sb, 0x20) as u64;
    if per_group == 0 || blocks < first_data_block {
        return Ok(()); // ext4-view refuses these itself
    }
    let groups = (blocks - first_data_block).div_ceil(per_group);
    let is_64bit = le32(&sb, 0x60) & 0x80 != 0;
    let desc_size = if is_64bit { le16(&sb, 0xfe) as u64 } else { 32 };
    if groups > MAX_BLOCK_GROUPS || groups.saturating_mul(desc_size.max(32)) > dev.size() {
        return Err(FsError::Corrupt(format!(
            "/: {groups} block groups of {per_group} blocks on a {}-byte device",
            dev.size()
        )));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A 64 KiB device with an ext4 superblock (1 KiB blocks) of `blocks` blocks in groups of
    /// `per_group`.
    fn device(blocks: u64, per_group: u32) -> Vec<u8> {
        let mut d = vec![0u8; 64 * 1024];
        let sb = &mut d[1024..2048];
        sb[0..4].copy_from_slice(&16u32.to_le_bytes()); // inodes
        sb[4..8].copy_from_slice(&(blocks as u32).to_le_bytes());
        sb[0x14..0x18].copy_from_slice(&1u32.to_le_bytes()); // first data block
        sb[0x20..0x24].copy_from_slice(&per_group.to_le_bytes());
        sb[0x28..0x2c].copy_from_slice(&16u32.to_le_bytes()); // inodes per group
        sb[0x38..0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
        sb[0x58..0x5a].copy_from_slice(&128u16.to_le_bytes()); // inode size
        sb[0x150..0x154].copy_from_slice(&((blocks >> 32) as u32).to_le_bytes());
        d
    }

    #[test]
    fn a_forged_block_group_count_is_refused_before_ext4_view_allocates_for_it() {
        // Found by fuzzing (kernel/fuzz, target `inspect`): 4 billion groups of one block made
        // ext4-view ask for 60 GB up front, and the allocation failure aborted.
        let dev: Rc<dyn BlockDevice> = Rc::new(device(0xF000_0000, 1));
        let err = Ext4Fs::open(dev).err().expect("refused");
        assert!(matches!(err, FsError::Corrupt(_)), "{err:?}");
        // Few groups, but a descriptor table longer than the device.
        let dev = device(4000 * 8, 8);
        assert!(matches!(check_group_count(&dev), Err(FsError::Corrupt(_))));
        // A plausible count passes on to ext4-view.
        assert_eq!(check_group_count(&device(8192, 8192)), Ok(()));
        assert_eq!(check_group_count(&device(1 << 20, 256)), Ok(()));
    }
}

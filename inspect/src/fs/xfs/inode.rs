//! Inodes: locating one by number, checking it, and decoding its core (v1, v2 and v3).

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::sb::Superblock;
use super::{be16, be32, be64, crc_ok};
use crate::disk::BlockDevice;
use crate::fs::FsError;

/// `IN`.
const MAGIC: u16 = 0x494e;
/// Data fork formats (`di_format`).
pub const FMT_DEV: u8 = 0;
/// Inline data: shortform directories, short symlinks.
pub const FMT_LOCAL: u8 = 1;
/// An extent list in the inode.
pub const FMT_EXTENTS: u8 = 2;
/// A block-map B+tree rooted in the inode.
pub const FMT_BTREE: u8 = 3;
/// `di_flags2`: timestamps are 64-bit nanosecond counts.
const FLAGS2_BIGTIME: u64 = 0x08;
/// `di_flags2`: extent counters are 64-bit.
const FLAGS2_NREXT64: u64 = 0x10;
/// Seconds between the bigtime epoch and the Unix epoch.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;

/// A timestamp: seconds since the Unix epoch and nanoseconds (the readers' common type).
pub use crate::fs::Time as Timestamp;

/// A decoded, checked inode.
#[derive(Clone, Debug)]
pub struct Inode {
    /// Its number.
    pub ino: u64,
    /// `st_mode`, type bits included.
    pub mode: u16,
    /// Data fork format (`FMT_*`).
    pub format: u8,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Access, modification, change times.
    pub atime: Timestamp,
    /// Modification time.
    pub mtime: Timestamp,
    /// Change time.
    pub ctime: Timestamp,
    /// Creation time (v3 inodes).
    pub crtime: Option<Timestamp>,
    /// Size in bytes.
    pub size: u64,
    /// Blocks held, metadata and attribute fork included.
    pub nblocks: u64,
    /// Data fork extents.
    pub nextents: u64,
    /// Device number (XFS's encoding) for device inodes.
    pub rdev: u32,
    /// The data fork's bytes in the inode.
    pub fork: Vec<u8>,
    /// The attribute fork, if the inode has one: its format (`FMT_*`) and its bytes in the
    /// inode.
    pub attr_fork: Option<(u8, Vec<u8>)>,
    /// Extents of the attribute fork (when it is not in the inode).
    pub attr_extents: u64,
}

/// File-type bits of a mode.
pub const S_IFMT: u16 = 0o170000;
/// Directory.
pub const S_IFDIR: u16 = 0o040000;
/// Regular file.
pub const S_IFREG: u16 = 0o100000;
/// Symbolic link.
pub const S_IFLNK: u16 = 0o120000;

impl Inode {
    /// The file type bits.
    pub fn kind_bits(&self) -> u16 {
        self.mode & S_IFMT
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind_bits() == S_IFDIR
    }

    /// Whether it is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.kind_bits() == S_IFLNK
    }

    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind_bits() == S_IFREG
    }
}

fn ts(raw: &[u8], at: usize, bigtime: bool) -> Timestamp {
    if bigtime {
        let ns = be64(raw, at);
        Timestamp {
            sec: (ns / 1_000_000_000) as i64 - BIGTIME_EPOCH_OFFSET,
            nsec: (ns % 1_000_000_000) as u32,
        }
    } else {
        Timestamp {
            sec: be32(raw, at) as i32 as i64,
            nsec: be32(raw, at + 4),
        }
    }
}

/// Reads and checks inode `ino`.
///
/// Checked as Linux's inode verifier does, where it matters for reading: the magic, the
/// version (v3 exactly on v5 filesystems), on v5 the CRC, the inode's own number and the
/// filesystem UUID, a non-negative size, a fork offset inside the inode, a format that fits
/// the file type, an extent count that fits the fork, and a mode that is not 0 (a free
/// inode).
pub fn read(dev: &dyn BlockDevice, sb: &Superblock, ino: u64) -> Result<Inode, FsError> {
    let bad = |what: &str| FsError::Corrupt(format!("xfs inode {ino}: {what}"));
    let at = sb.ino_to_byte(ino)?;
    let mut raw = vec![0u8; sb.inode_size as usize];
    dev.read_at(at, &mut raw)
        .map_err(|e| FsError::Io(format!("xfs inode {ino}: {e}")))?;
    if be16(&raw, 0) != MAGIC {
        return Err(bad("bad magic"));
    }
    let version = raw[4];
    let core = match (sb.version, version) {
        (5, 3) => 176,
        (4, 1 | 2) => 100,
        _ => return Err(bad(&format!("version {version}"))),
    };
    if version == 3 {
        if !crc_ok(&raw, 100) {
            return Err(bad("bad CRC"));
        }
        if be64(&raw, 152) != ino {
            return Err(bad(&format!("claims to be inode {}", be64(&raw, 152))));
        }
        if raw[160..176] != sb.meta_uuid {
            return Err(bad("belongs to another filesystem"));
        }
    }
    let mode = be16(&raw, 2);
    if mode == 0 {
        return Err(bad("not in use"));
    }
    let format = raw[5];
    let flags2 = if version == 3 { be64(&raw, 120) } else { 0 };
    let bigtime = flags2 & FLAGS2_BIGTIME != 0;
    if bigtime && !sb.bigtime {
        return Err(bad("bigtime timestamps on a filesystem without them"));
    }
    let nextents = if flags2 & FLAGS2_NREXT64 != 0 {
        if !sb.nrext64 {
            return Err(bad("64-bit extent counts on a filesystem without them"));
        }
        be64(&raw, 24)
    } else {
        be32(&raw, 76) as u64
    };
    let size = be64(&raw, 56);
    if size > i64::MAX as u64 {
        return Err(bad("negative size"));
    }
    let literal = raw.len() - core;
    let forkoff = raw[82] as usize * 8;
    let fork_len = if forkoff == 0 { literal } else { forkoff };
    if fork_len > literal {
        return Err(bad(&format!("attribute fork offset {forkoff}")));
    }
    let fork = raw[core..core + fork_len].to_vec();
    let kind = mode & S_IFMT;
    let fits = match format {
        FMT_DEV => !matches!(kind, S_IFDIR | S_IFREG | S_IFLNK),
        FMT_LOCAL => matches!(kind, S_IFDIR | S_IFLNK),
        FMT_EXTENTS | FMT_BTREE => matches!(kind, S_IFDIR | S_IFREG | S_IFLNK),
        _ => false,
    };
    if !fits {
        return Err(bad(&format!("data fork format {format} for mode {mode:o}")));
    }
    if format == FMT_EXTENTS && nextents > (fork_len / 16) as u64 {
        return Err(bad(&format!(
            "{nextents} extents in a {fork_len}-byte fork"
        )));
    }
    let nlink = if version == 1 {
        be16(&raw, 6) as u32
    } else {
        be32(&raw, 16)
    };
    Ok(Inode {
        ino,
        mode,
        format,
        nlink,
        uid: be32(&raw, 8),
        gid: be32(&raw, 12),
        atime: ts(&raw, 32, bigtime),
        mtime: ts(&raw, 40, bigtime),
        ctime: ts(&raw, 48, bigtime),
        crtime: (version == 3).then(|| ts(&raw, 144, bigtime)),
        size,
        nblocks: be64(&raw, 64),
        nextents,
        rdev: if format == FMT_DEV { be32(&fork, 0) } else { 0 },
        attr_fork: (forkoff != 0).then(|| (raw[83], raw[core + forkoff..].to_vec())),
        attr_extents: if flags2 & FLAGS2_NREXT64 != 0 {
            be32(&raw, 76) as u64
        } else {
            be16(&raw, 80) as u64
        },
        fork,
    })
}

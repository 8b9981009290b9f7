//! The item formats read: inode, directory, root, root reference, inode reference and file
//! extent items. Each parser checks the item's length before reading a field.

use alloc::format;

use super::tree::Key;
use super::{Result, corrupt};
use crate::disk::{le16, le32, le64};

/// `INODE_ITEM`.
pub const INODE_ITEM: u8 = 1;
/// `INODE_REF`.
pub const INODE_REF: u8 = 12;
/// `DIR_ITEM`.
pub const DIR_ITEM: u8 = 84;
/// `DIR_INDEX`.
pub const DIR_INDEX: u8 = 96;
/// `EXTENT_DATA`.
pub const EXTENT_DATA: u8 = 108;
/// `ROOT_ITEM`.
pub const ROOT_ITEM: u8 = 132;
/// `ROOT_BACKREF`.
pub const ROOT_BACKREF: u8 = 144;
/// `ROOT_REF`.
pub const ROOT_REF: u8 = 156;

/// The inode fields a stat needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inode {
    /// Bytes.
    pub size: u64,
    /// Links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `st_mode`, type bits included.
    pub mode: u32,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Bytes allocated (`nbytes`).
    pub nbytes: u64,
    /// Device number of a device node (the kernel's `new_encode_dev` form).
    pub rdev: u64,
    /// Access time.
    pub atime: crate::fs::Time,
    /// Change time.
    pub ctime: crate::fs::Time,
    /// Modification time's nanoseconds.
    pub mtime_nsec: u32,
}

/// Bytes of an inode item.
pub const INODE_SIZE: usize = 160;

/// Parses an inode item.
pub fn inode(d: &[u8], ino: u64) -> Result<Inode> {
    if d.len() < INODE_SIZE {
        return Err(corrupt(format!("inode {ino}: item of {} bytes", d.len())));
    }
    Ok(Inode {
        size: le64(d, 16),
        nlink: le32(d, 40),
        uid: le32(d, 44),
        gid: le32(d, 48),
        mode: le32(d, 52),
        mtime: le64(d, 136) as i64,
        nbytes: le64(d, 24),
        rdev: le64(d, 56),
        atime: time(d, 112),
        ctime: time(d, 124),
        mtime_nsec: nsec(d, 136 + 8),
    })
}

/// Nanoseconds at `at`, 0 when out of range.
fn nsec(d: &[u8], at: usize) -> u32 {
    let n = le32(d, at);
    if n < 1_000_000_000 { n } else { 0 }
}

/// A `btrfs_timespec` (seconds, nanoseconds) at `at`.
fn time(d: &[u8], at: usize) -> crate::fs::Time {
    crate::fs::Time {
        sec: le64(d, at) as i64,
        nsec: nsec(d, at + 8),
    }
}

/// The fields of a root item this reader uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootItem {
    /// Inode number of the subvolume's root directory.
    pub root_dirid: u64,
    /// Logical address of its tree's root block.
    pub bytenr: u64,
    /// That block's level.
    pub level: u8,
    /// References (0: deleted, waiting for cleanup).
    pub refs: u32,
}

/// Parses a root item (the 239-byte original layout; later fields are not needed).
pub fn root_item(d: &[u8], id: u64) -> Result<RootItem> {
    if d.len() < 239 {
        return Err(corrupt(format!("root item {id}: {} bytes", d.len())));
    }
    Ok(RootItem {
        root_dirid: le64(d, 168),
        bytenr: le64(d, 176),
        level: d[238],
        refs: le32(d, 216),
    })
}

/// One directory entry of a `DIR_ITEM` or `DIR_INDEX` item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Where it points: an inode (`INODE_ITEM`) or a subvolume (`ROOT_ITEM`).
    pub location: Key,
    /// `BTRFS_FT_*`.
    pub ty: u8,
    /// The name.
    pub name: &'a [u8],
    /// The data after the name (an xattr's value; empty in directory entries).
    pub data: &'a [u8],
}

/// `XATTR_ITEM`: one extended attribute (or several on a name-hash collision), in the
/// directory entry format with the value as data.
pub const XATTR_ITEM: u8 = 24;

/// Bytes of a directory entry before its name.
const DIR_HEADER: usize = 30;

/// The entries packed in one `DIR_ITEM` (several on a hash collision) or `DIR_INDEX` item.
pub fn dir_entries(d: &[u8]) -> impl Iterator<Item = Result<DirEntry<'_>>> {
    let mut p = 0usize;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed || p >= d.len() {
            return None;
        }
        let rest = &d[p..];
        let parsed = (|| {
            if rest.len() < DIR_HEADER {
                return Err(corrupt("directory entry truncated"));
            }
            let data_len = usize::from(le16(rest, 25));
            let name_len = usize::from(le16(rest, 27));
            let name = rest
                .get(DIR_HEADER..DIR_HEADER + name_len)
                .ok_or_else(|| corrupt("directory entry name leaves its item"))?;
            let total = DIR_HEADER + name_len + data_len;
            if total > rest.len() {
                return Err(corrupt("directory entry data leaves its item"));
            }
            if name_len == 0 || name_len > 255 {
                return Err(corrupt(format!("directory entry name of {name_len} bytes")));
            }
            Ok((
                DirEntry {
                    location: Key::parse(rest, 0),
                    ty: rest[29],
                    name,
                    data: &rest[DIR_HEADER + name_len..total],
                },
                total,
            ))
        })();
        match parsed {
            Ok((e, total)) => {
                p += total;
                Some(Ok(e))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

/// A root backref or inode ref: the parent directory (or, for an inode ref, the key holds
/// it) and the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ref<'a> {
    /// `ROOT_BACKREF`: the directory in the parent subvolume; `INODE_REF`: the index.
    pub dirid: u64,
    /// The name.
    pub name: &'a [u8],
}

/// Parses a `ROOT_REF`/`ROOT_BACKREF` (dirid, sequence, name length, name).
pub fn root_ref(d: &[u8]) -> Result<Ref<'_>> {
    let len = usize::from(le16(d, 16));
    let name = d
        .get(18..18 + len)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| corrupt("root reference truncated"))?;
    Ok(Ref {
        dirid: le64(d, 0),
        name,
    })
}

/// Parses the first reference of an `INODE_REF` item (index, name length, name).
pub fn inode_ref(d: &[u8]) -> Result<Ref<'_>> {
    let len = usize::from(le16(d, 8));
    let name = d
        .get(10..10 + len)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| corrupt("inode reference truncated"))?;
    Ok(Ref {
        dirid: le64(d, 0),
        name,
    })
}

/// A file extent item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extent<'a> {
    /// Data in the item itself (compressed or not): `ram_bytes` once decoded.
    Inline {
        /// Compression (`0` none, `1` zlib, `2` lzo, `3` zstd).
        compression: u8,
        /// Decoded length.
        ram_bytes: u64,
        /// The stored bytes.
        data: &'a [u8],
    },
    /// Data elsewhere (`prealloc`: allocated, reads as zeros).
    Regular {
        /// Preallocated (unwritten).
        prealloc: bool,
        /// Compression.
        compression: u8,
        /// Logical address of the stored extent; 0 is a hole.
        disk_bytenr: u64,
        /// Bytes stored there.
        disk_num_bytes: u64,
        /// Offset of this file range in the decoded extent.
        offset: u64,
        /// Bytes of file this item covers.
        num_bytes: u64,
        /// Decoded length of the whole extent.
        ram_bytes: u64,
    },
}

/// Parses a file extent item.
pub fn extent(d: &[u8], ino: u64) -> Result<Extent<'_>> {
    let bad = |what: &str| corrupt(format!("inode {ino}: file extent {what}"));
    if d.len() < 21 {
        return Err(bad("item truncated"));
    }
    let ram_bytes = le64(d, 8);
    let compression = d[16];
    if d[17] != 0 || le16(d, 18) != 0 {
        return Err(crate::fs::FsError::Unsupported(format!(
            "btrfs: inode {ino}: encrypted or encoded extent"
        )));
    }
    match d[20] {
        0 => Ok(Extent::Inline {
            compression,
            ram_bytes,
            data: &d[21..],
        }),
        t @ (1 | 2) => {
            if d.len() < 53 {
                return Err(bad("item truncated"));
            }
            Ok(Extent::Regular {
                prealloc: t == 2,
                compression,
                disk_bytenr: le64(d, 21),
                disk_num_bytes: le64(d, 29),
                offset: le64(d, 37),
                num_bytes: le64(d, 45),
                ram_bytes,
            })
        }
        t => Err(bad(&format!("of type {t}"))),
    }
}

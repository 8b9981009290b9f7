//! Reparse points and Interix special files, shown as ntfs-3g shows them with its default
//! options (no plugins).
//!
//! - a junction or symlink to `\??\C:\path` points to `/.NTFS-3G/C:/path`, as ntfs-3g
//!   writes a target it does not find on the volume; the caller turns it into `/path` with
//!   the names as they are on the volume when `path` is there (ntfs-3g puts its mount point
//!   in front: here absolute targets are taken from this filesystem's root);
//! - a relative symlink target has its backslashes turned into slashes;
//! - WSL symlinks carry their UTF-8 target; WSL sockets, FIFOs and devices are those kinds;
//! - any other tag is a symlink to `unsupported reparse tag 0xTTTTTTTT`;
//! - an Interix file (the SYSTEM attribute and not HIDDEN) is a FIFO when empty, a socket
//!   when one byte long, and a symlink, character or block device by its `IntxLNK\1`,
//!   `IntxCHR\0` or `IntxBLK\0` header.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vmchannel_proto::FileKind;

use super::record::utf16;
use crate::disk::{le16, le32};

/// `IO_REPARSE_TAG_MOUNT_POINT`: a junction.
pub const TAG_MOUNT_POINT: u32 = 0xA000_0003;
/// `IO_REPARSE_TAG_SYMLINK`.
pub const TAG_SYMLINK: u32 = 0xA000_000C;
/// `IO_REPARSE_TAG_LX_SYMLINK`: a WSL symlink.
pub const TAG_LX_SYMLINK: u32 = 0xA000_001D;
/// WSL's socket, FIFO, character and block device tags.
const TAG_AF_UNIX: u32 = 0x8000_0023;
const TAG_LX_FIFO: u32 = 0x8000_0024;
const TAG_LX_CHR: u32 = 0x8000_0025;
const TAG_LX_BLK: u32 = 0x8000_0026;

/// What a special file is: its kind and, for a link, its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Special {
    /// The kind shown.
    pub kind: FileKind,
    /// The target, for a symlink.
    pub target: Option<String>,
}

fn link(target: String) -> Special {
    Special {
        kind: FileKind::Symlink,
        target: Some(target),
    }
}

fn unsupported(tag: u32) -> Special {
    link(format!("unsupported reparse tag 0x{tag:08x}"))
}

/// `\??\C:\a\b` or `C:\a\b`: the drive letter and the rest (`a\b`).
fn drive_path(s: &str) -> Option<(char, &str)> {
    let s = s.strip_prefix("\\??\\").unwrap_or(s);
    let mut chars = s.chars();
    let letter = chars.next()?;
    if !letter.is_ascii_alphabetic() || chars.next()? != ':' {
        return None;
    }
    let rest = &s[2..];
    Some((letter, rest.strip_prefix('\\').unwrap_or(rest)))
}

/// The substitute name of a mount point or symlink buffer `d` whose path buffer starts at
/// `base`.
fn substitute(d: &[u8], base: usize) -> Option<String> {
    let off = le16(d, 0) as usize;
    let len = le16(d, 2) as usize;
    if !len.is_multiple_of(2) {
        return None;
    }
    let raw = d.get(base + off..base + off + len)?;
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Some(utf16(&units))
}

/// What the `$REPARSE_POINT` value `v` shows as.
pub fn reparse(v: &[u8]) -> Special {
    let tag = le32(v, 0);
    let len = le16(v, 4) as usize;
    let Some(d) = v.get(8..8 + len) else {
        return unsupported(tag);
    };
    match tag {
        TAG_MOUNT_POINT => match substitute(d, 8) {
            Some(s) => match drive_path(&s) {
                Some((letter, rest)) => link(format!(
                    "/.NTFS-3G/{}:/{}",
                    letter.to_ascii_uppercase(),
                    rest.replace('\\', "/")
                )),
                None => unsupported(tag),
            },
            None => unsupported(tag),
        },
        TAG_SYMLINK => {
            let relative = le32(d, 8) & 1 != 0;
            match substitute(d, 12) {
                Some(s) if relative => link(s.replace('\\', "/")),
                Some(s) => match drive_path(&s) {
                    Some((letter, rest)) => link(format!(
                        "/.NTFS-3G/{}:/{}",
                        letter.to_ascii_uppercase(),
                        rest.replace('\\', "/")
                    )),
                    None => unsupported(tag),
                },
                None => unsupported(tag),
            }
        }
        TAG_LX_SYMLINK if d.len() >= 4 && le32(d, 0) == 2 => {
            link(String::from_utf8_lossy(&d[4..]).into_owned())
        }
        TAG_AF_UNIX => Special {
            kind: FileKind::Socket,
            target: None,
        },
        TAG_LX_FIFO => Special {
            kind: FileKind::Fifo,
            target: None,
        },
        TAG_LX_CHR => Special {
            kind: FileKind::CharDevice,
            target: None,
        },
        TAG_LX_BLK => Special {
            kind: FileKind::BlockDevice,
            target: None,
        },
        _ => unsupported(tag),
    }
}

/// Largest Interix file looked into: the header and a target of PATH_MAX UTF-16 units.
pub const INTERIX_MAX: u64 = 8 + 2 * 4096;

/// What an Interix file (SYSTEM, not HIDDEN) of `size` bytes is; `head` gives its bytes
/// when `8 < size <= INTERIX_MAX`. `None`: a regular file.
pub fn interix(size: u64, head: impl FnOnce() -> Option<Vec<u8>>) -> Option<Special> {
    match size {
        0 => Some(Special {
            kind: FileKind::Fifo,
            target: None,
        }),
        1 => Some(Special {
            kind: FileKind::Socket,
            target: None,
        }),
        n if n > 8 && n <= INTERIX_MAX => {
            let b = head()?;
            match b.get(0..8)? {
                b"IntxLNK\x01" => {
                    let units: Vec<u16> = b[8..]
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    Some(link(utf16(&units)))
                }
                b"IntxCHR\0" => Some(Special {
                    kind: FileKind::CharDevice,
                    target: None,
                }),
                b"IntxBLK\0" => Some(Special {
                    kind: FileKind::BlockDevice,
                    target: None,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

//! File contents: the inode's `EXTENT_DATA` items, read from the one covering the offset
//! on. Holes (missing ranges, `disk_bytenr` 0) and preallocated extents read as zeros;
//! compressed extents are decoded whole (at most 128 KiB) and the last one kept.

use alloc::format;
use alloc::rc::Rc;

use super::compress::{self, MAX_DECODED};
use super::dir::File;
use super::items::{self, EXTENT_DATA, Extent};
use super::tree::{Cursor, Key, Seek};
use super::{Inner, Result, corrupt};

/// Reads from file `f` at `offset` into `buf`; the bytes read, fewer only at end of file.
pub fn read(fs: &Inner, f: &File, offset: u64, buf: &mut [u8]) -> Result<usize> {
    let size = f.inode.size;
    if offset >= size || buf.is_empty() {
        return Ok(0);
    }
    let want = usize::try_from(size - offset).map_or(buf.len(), |left| left.min(buf.len()));
    let end = offset + want as u64;
    let buf = &mut buf[..want];
    buf.fill(0);
    let ino = f.ino;
    let mut c = Cursor::seek(fs, f.tree, Key::new(ino, EXTENT_DATA, offset), Seek::Le)?;
    while let Some(item) = c.next()? {
        let k = item.key;
        if (k.objectid, k.ty) < (ino, EXTENT_DATA) {
            continue;
        }
        if (k.objectid, k.ty) > (ino, EXTENT_DATA) || k.offset >= end {
            break;
        }
        let start = k.offset;
        match items::extent(&item.data, ino)? {
            Extent::Inline {
                compression,
                ram_bytes,
                data,
            } => {
                if compression == compress::NONE {
                    copy(buf, offset, start, data);
                } else {
                    let decoded = compress::decode(compression, data, fs.sb.sectorsize as usize)?;
                    let n = decoded
                        .len()
                        .min(usize::try_from(ram_bytes).unwrap_or(usize::MAX));
                    copy(buf, offset, start, &decoded[..n]);
                }
            }
            Extent::Regular {
                prealloc,
                compression,
                disk_bytenr,
                disk_num_bytes,
                offset: ext_off,
                num_bytes,
                ram_bytes,
            } => {
                let Some(ext_end) = start.checked_add(num_bytes) else {
                    return Err(corrupt(format!(
                        "inode {ino}: extent at {start} ends past 2^64"
                    )));
                };
                if prealloc || disk_bytenr == 0 || ext_end <= offset {
                    continue; // zeros, or before the range
                }
                // The part of this extent inside [offset, end).
                let from = start.max(offset);
                let to = ext_end.min(end);
                let dst = &mut buf[(from - offset) as usize..(to - offset) as usize];
                let in_ext = ext_off
                    .checked_add(from - start)
                    .ok_or_else(|| corrupt(format!("inode {ino}: extent offset {ext_off}")))?;
                if compression == compress::NONE {
                    let logical = disk_bytenr
                        .checked_add(in_ext)
                        .ok_or_else(|| corrupt(format!("inode {ino}: extent address")))?;
                    fs.read_logical(logical, dst)?;
                } else {
                    if disk_num_bytes > MAX_DECODED as u64 || ram_bytes > MAX_DECODED as u64 {
                        return Err(corrupt(format!(
                            "inode {ino}: compressed extent of {disk_num_bytes} bytes for {ram_bytes} (btrfs's limit is {MAX_DECODED})"
                        )));
                    }
                    let decoded = decoded(fs, compression, disk_bytenr, disk_num_bytes)?;
                    let avail = decoded.len().min(ram_bytes as usize);
                    let s = usize::try_from(in_ext).unwrap_or(usize::MAX).min(avail);
                    let n = dst.len().min(avail - s);
                    dst[..n].copy_from_slice(&decoded[s..s + n]);
                }
            }
        }
    }
    Ok(want)
}

/// Copies the part of `data` (file bytes from `start`) that falls in `buf` (file bytes from
/// `offset`).
fn copy(buf: &mut [u8], offset: u64, start: u64, data: &[u8]) {
    let Some(data_end) = start.checked_add(data.len() as u64) else {
        return;
    };
    let buf_end = offset + buf.len() as u64;
    let from = start.max(offset);
    let to = data_end.min(buf_end);
    if from >= to {
        return;
    }
    let d = (from - start) as usize;
    let b = (from - offset) as usize;
    let n = (to - from) as usize;
    buf[b..b + n].copy_from_slice(&data[d..d + n]);
}

/// The decoded bytes of the compressed extent stored at `bytenr`, from the one-entry cache
/// when it was the last one decoded.
fn decoded(fs: &Inner, kind: u8, bytenr: u64, stored: u64) -> Result<Rc<alloc::vec::Vec<u8>>> {
    if let Some((at, d)) = &*fs.extent.borrow()
        && *at == bytenr
    {
        return Ok(d.clone());
    }
    let mut src = alloc::vec![0u8; stored as usize];
    fs.read_logical(bytenr, &mut src)?;
    let d = Rc::new(compress::decode(kind, &src, fs.sb.sectorsize as usize)?);
    *fs.extent.borrow_mut() = Some((bytenr, d.clone()));
    Ok(d)
}

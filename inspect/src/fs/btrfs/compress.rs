//! Compressed extents: zlib (miniz_oxide), lzo (btrfs's framing here, LZO1X by lzokay) and
//! zstd (ruzstd), each stopped at [`MAX_DECODED`] bytes, btrfs's own limit for one extent
//! (`BTRFS_MAX_UNCOMPRESSED`), so a forged extent cannot expand without end.
//!
//! lzokay is pinned at 2.0.1: 2.0.0 dropped a stream's first instruction when it was not a
//! literal run of 18 or more bytes, which misreads every lzo extent that starts with
//! incompressible data (found by this reader's mkfs.btrfs tests). ruzstd's decoder is given
//! Linux's 128 KiB window limit and decodes one block at a time, so its buffer stays within
//! a window and a block; miniz_oxide's inflate is given the output limit.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::{Result, corrupt};
use crate::fs::FsError;

/// Most bytes one compressed extent decodes to (and most it may store), as Linux limits it.
pub const MAX_DECODED: usize = 128 * 1024;

/// `BTRFS_COMPRESS_*`.
pub const NONE: u8 = 0;
const ZLIB: u8 = 1;
const LZO: u8 = 2;
const ZSTD: u8 = 3;

/// Decodes `src` (one extent's stored bytes) compressed with `kind`: at most [`MAX_DECODED`]
/// bytes, more is corrupt. `sectorsize` places lzo's segments.
pub fn decode(kind: u8, src: &[u8], sectorsize: usize) -> Result<Vec<u8>> {
    match kind {
        ZLIB => zlib(src),
        LZO => lzo(src, sectorsize),
        ZSTD => zstd(src),
        k => Err(FsError::Unsupported(format!("btrfs: compression type {k}"))),
    }
}

fn zlib(src: &[u8]) -> Result<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(src, MAX_DECODED).map_err(|e| {
        if e.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput {
            corrupt(format!("zlib extent decodes past {MAX_DECODED} bytes"))
        } else {
            corrupt(format!("zlib extent: {:?}", e.status))
        }
    })
}

/// btrfs's lzo framing: a 4-byte total length, then per sector of output a segment of a
/// 4-byte length and that many LZO1X bytes; a segment header never crosses a sector of the
/// stored stream (the writer pads with zeros to the next sector instead).
fn lzo(src: &[u8], sectorsize: usize) -> Result<Vec<u8>> {
    let le = |p: usize| {
        src.get(p..p + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let total = le(0).ok_or_else(|| corrupt("lzo extent truncated"))?;
    if total < 4 || total > src.len() {
        return Err(corrupt(format!(
            "lzo extent of {total} bytes in {} stored",
            src.len()
        )));
    }
    let mut out = Vec::new();
    let mut seg = vec![0u8; sectorsize];
    let mut p = 4;
    while p < total {
        let left = sectorsize - p % sectorsize;
        if left < 4 {
            p += left;
            if p >= total {
                break;
            }
        }
        let len = le(p)
            .filter(|_| p + 4 <= total)
            .ok_or_else(|| corrupt("lzo segment header truncated"))?;
        p += 4;
        let end = p
            .checked_add(len)
            .filter(|&e| e <= total && len > 0)
            .ok_or_else(|| corrupt(format!("lzo segment of {len} bytes")))?;
        if out.len() + sectorsize > MAX_DECODED {
            return Err(corrupt(format!(
                "lzo extent decodes past {MAX_DECODED} bytes"
            )));
        }
        let n = lzokay::decompress::decompress(&src[p..end], &mut seg)
            .map_err(|e| corrupt(format!("lzo segment: {e:?}")))?;
        out.extend_from_slice(&seg[..n]);
        p = end;
    }
    Ok(out)
}

fn zstd(src: &[u8]) -> Result<Vec<u8>> {
    use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
    let bad = |e: &dyn core::fmt::Debug| corrupt(format!("zstd extent: {e:?}"));
    let mut out = Vec::new();
    let mut input = src;
    let mut dec = FrameDecoder::new();
    // Linux's btrfs decodes with a 128 KiB window (ZSTD_BTRFS_MAX_WINDOWLOG 17).
    dec.set_max_window_size(MAX_DECODED as u64);
    if !src.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(corrupt("zstd extent: no frame"));
    }
    // Frames follow one another; zeros pad the last to the sector.
    while input.len() >= 4 && input[..4] == [0x28, 0xb5, 0x2f, 0xfd] {
        dec.reset(&mut input).map_err(|e| bad(&e))?;
        loop {
            // One block (at most 128 KiB) at a time, so the cap is checked before the
            // decoder's buffer can grow further.
            let done = dec
                .decode_blocks(&mut input, BlockDecodingStrategy::UptoBlocks(1))
                .map_err(|e| bad(&e))?;
            if out.len() + dec.can_collect() > MAX_DECODED {
                return Err(corrupt(format!(
                    "zstd extent decodes past {MAX_DECODED} bytes"
                )));
            }
            if let Some(bytes) = dec.collect() {
                out.extend_from_slice(&bytes);
            }
            if done {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_bomb_is_stopped() {
        // One frame of RLE blocks: a 3-byte block header per 128 KiB of output.
        let mut f = alloc::vec![0x28, 0xb5, 0x2f, 0xfd];
        f.push(0x00); // frame header descriptor: no content size, window descriptor follows
        f.push(0x38); // window 2^(10+7) = 128 KiB
        for i in 0..64 {
            let last = u32::from(i == 63);
            // RLE block (type 1) of 128 KiB - 1... size field is the regenerated size.
            let h = last | (1 << 1) | ((128 * 1024 - 1) << 3);
            f.extend_from_slice(&h.to_le_bytes()[..3]);
            f.push(b'A');
        }
        let err = decode(ZSTD, &f, 4096).unwrap_err();
        assert!(
            matches!(err, FsError::Corrupt(ref m) if m.contains("past")),
            "{err:?}"
        );
    }

    #[test]
    fn zstd_big_window_is_refused() {
        let mut f = alloc::vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xF8];
        f.extend_from_slice(&[1, 0, 0]);
        assert!(matches!(decode(ZSTD, &f, 4096), Err(FsError::Corrupt(_))));
    }

    #[test]
    fn zlib_bomb_is_stopped() {
        let data = alloc::vec![0u8; 1 << 20];
        let z = miniz_oxide::deflate::compress_to_vec_zlib(&data, 9);
        let err = decode(ZLIB, &z, 4096).unwrap_err();
        assert!(
            matches!(err, FsError::Corrupt(ref m) if m.contains("past")),
            "{err:?}"
        );
    }

    #[test]
    fn lzo_framing_is_checked() {
        assert!(decode(LZO, &[], 4096).is_err());
        assert!(decode(LZO, &[100, 0, 0, 0], 4096).is_err());
        // A segment claiming more than the total.
        let mut s = alloc::vec![12, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0];
        assert!(decode(LZO, &s, 4096).is_err());
        // Many valid tiny segments of a full sector each stop at the cap: a literal run is
        // too long to write by hand, so a zero-length segment stands in for "bad".
        s[4] = 0;
        assert!(decode(LZO, &s, 4096).is_err());
    }
}

//! A metadata area: its header and the committed metadata text in its circular buffer.
//!
//! ```text
//! mda_header (the area's first 512 bytes):
//!   0  checksum (u32, bytes 4..512)   4  magic " LVM2 x[5A%r0N*>"   20  version (u32, 1)
//!  24  start (u64, the area's offset on the PV)   32  size (u64, the area's size)
//!  40  raw_locn { offset u64, size u64, checksum u32, flags u32 } ..., a zero entry
//! ```
//!
//! `raw_locn[0]` is the committed metadata: `size` bytes at `offset` from the area's start,
//! checksummed; the buffer after the header is circular, so text that reaches the area's
//! end continues right after the header. A later `raw_locn` is precommitted metadata,
//! which LVM2 ignores unless it is committing, and so do we.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::crc::lvm_crc;
use crate::disk::{BlockDevice, le32, le64};
use crate::fs::FsError;

/// The header's magic.
pub const MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// The header's size; the circular buffer follows it.
pub const HEADER: u64 = 512;
/// Largest metadata text read (LVM2's default area is 1 MiB; its text is kilobytes).
pub const MAX_TEXT: u64 = 4 << 20;
/// `RAW_LOCN_IGNORED`: the area is kept but not used (`pvchange --metadataignore y`).
const IGNORED: u32 = 1;

fn corrupt(what: impl core::fmt::Display) -> FsError {
    FsError::Corrupt(format!("LVM metadata area: {what}"))
}

/// The committed metadata text of the area at `start` (`size` bytes, 0 if the label does
/// not say) on `dev`. `Ok(None)`: the area holds no metadata (a PV in no VG) or is marked
/// ignored.
pub fn read_text(dev: &dyn BlockDevice, start: u64, size: u64) -> Result<Option<Vec<u8>>, FsError> {
    let mut h = [0u8; HEADER as usize];
    dev.read_at(start, &mut h)
        .map_err(|e| corrupt(format!("header at {start}: {e}")))?;
    if &h[4..20] != MAGIC {
        return Err(corrupt(format!("no header magic at {start}")));
    }
    let (stored, computed) = (le32(&h, 0), lvm_crc(&h[4..]));
    if stored != computed {
        return Err(corrupt(format!(
            "header checksum {stored:#010x}, computed {computed:#010x}"
        )));
    }
    if le32(&h, 20) != 1 {
        return Err(corrupt(format!("header version {}", le32(&h, 20))));
    }
    if le64(&h, 24) != start {
        return Err(corrupt(format!(
            "header says it starts at {}, found at {start}",
            le64(&h, 24)
        )));
    }
    let area = le64(&h, 32);
    if area <= HEADER || (size != 0 && area > size) {
        return Err(corrupt(format!("area size {area} (label: {size})")));
    }
    if start.checked_add(area).is_none_or(|end| end > dev.size()) {
        return Err(corrupt(format!(
            "area of {area} bytes at {start} is past the end of the device"
        )));
    }
    let (offset, len, crc, flags) = (le64(&h, 40), le64(&h, 48), le32(&h, 56), le32(&h, 60));
    if offset == 0 || flags & IGNORED != 0 {
        return Ok(None);
    }
    if offset < HEADER || offset >= area || len == 0 || len > area - HEADER {
        return Err(corrupt(format!(
            "metadata at {offset} ({len} bytes) is outside the area ({area} bytes)"
        )));
    }
    if len > MAX_TEXT {
        return Err(corrupt(format!(
            "metadata of {len} bytes (limit {MAX_TEXT})"
        )));
    }
    // Both fit in usize: len <= MAX_TEXT.
    let mut text = vec![0u8; len as usize];
    let first = len.min(area - offset) as usize;
    let io = |e| corrupt(format!("metadata text: {e}"));
    dev.read_at(start + offset, &mut text[..first])
        .map_err(io)?;
    if first < text.len() {
        dev.read_at(start + HEADER, &mut text[first..])
            .map_err(io)?;
    }
    let computed = lvm_crc(&text);
    if computed != crc {
        return Err(corrupt(format!(
            "metadata text checksum {crc:#010x}, computed {computed:#010x}"
        )));
    }
    Ok(Some(text))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes an area of `area` bytes at `start` into `img` holding `text` at `offset`
    /// (wrapping), with checksums.
    pub(crate) fn put_area(img: &mut [u8], start: u64, area: u64, offset: u64, text: &[u8]) {
        let s = start as usize;
        let mut h = [0u8; 512];
        h[4..20].copy_from_slice(MAGIC);
        h[20] = 1;
        h[24..32].copy_from_slice(&start.to_le_bytes());
        h[32..40].copy_from_slice(&area.to_le_bytes());
        h[40..48].copy_from_slice(&offset.to_le_bytes());
        h[48..56].copy_from_slice(&(text.len() as u64).to_le_bytes());
        h[56..60].copy_from_slice(&lvm_crc(text).to_le_bytes());
        let crc = lvm_crc(&h[4..]);
        h[0..4].copy_from_slice(&crc.to_le_bytes());
        img[s..s + 512].copy_from_slice(&h);
        let mut pos = offset;
        for &b in text {
            if pos >= area {
                pos = HEADER;
            }
            img[s + pos as usize] = b;
            pos += 1;
        }
    }

    /// Rewrites the header checksum after a test changed the header.
    fn reseal(img: &mut [u8], start: usize) {
        let crc = lvm_crc(&img[start + 4..start + 512]);
        img[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn reads_text_and_wraps() {
        let mut img = vec![0u8; 16384];
        put_area(&mut img, 4096, 4096, 1024, b"vg { seqno = 1 }\n");
        assert_eq!(
            read_text(&img, 4096, 4096).unwrap().unwrap(),
            b"vg { seqno = 1 }\n"
        );
        // Text that runs over the area's end continues after the header.
        let text: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        put_area(&mut img, 4096, 4096, 3500, &text);
        assert_eq!(read_text(&img, 4096, 0).unwrap().unwrap(), text);
        assert_eq!(img[4096 + 512], text[596]);
        // No metadata yet, and an ignored area.
        put_area(&mut img, 8192, 4096, 0, b"");
        assert_eq!(read_text(&img, 8192, 4096).unwrap(), None);
        put_area(&mut img, 8192, 4096, 600, b"x");
        img[8192 + 60] = 1;
        reseal(&mut img, 8192);
        assert_eq!(read_text(&img, 8192, 4096).unwrap(), None);
    }

    #[test]
    fn refuses_bad_areas() {
        let mut img = vec![0u8; 16384];
        let err = |img: &[u8], size| {
            read_text(&img.to_vec(), 4096, size)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&img, 4096).contains("magic"));
        put_area(&mut img, 4096, 4096, 1024, b"text");
        // Bad header checksum.
        img[4096 + 30] ^= 1;
        assert!(err(&img, 4096).contains("header checksum"));
        img[4096 + 30] ^= 1;
        // Bad text checksum.
        img[4096 + 1024] ^= 1;
        assert!(err(&img, 4096).contains("text checksum"));
        // raw_locn outside the area, in several ways.
        for (offset, len) in [
            (100u64, 4u64),
            (4096, 4),
            (8000, 4),
            (1024, 3585),
            (1024, 0),
        ] {
            put_area(&mut img, 4096, 4096, 1024, b"text");
            img[4096 + 40..4096 + 48].copy_from_slice(&offset.to_le_bytes());
            img[4096 + 48..4096 + 56].copy_from_slice(&len.to_le_bytes());
            reseal(&mut img, 4096);
            assert!(
                err(&img, 4096).contains("outside the area"),
                "{offset} {len}"
            );
        }
        // The area is bigger than the label says, past the device, or misplaced.
        put_area(&mut img, 4096, 4096, 1024, b"text");
        assert!(err(&img, 2048).contains("area size"));
        put_area(&mut img, 4096, 1 << 40, 1024, b"text");
        assert!(err(&img, 0).contains("past the end"));
        put_area(&mut img, 4096, 4096, 1024, b"text");
        img[4096 + 24] = 1;
        reseal(&mut img, 4096);
        assert!(err(&img, 0).contains("starts at"));
        // Huge text in a huge (claimed) area.
        let mut big = vec![0u8; (MAX_TEXT + 8192) as usize];
        put_area(&mut big, 4096, MAX_TEXT + 4096, 1024, b"x");
        big[4096 + 48..4096 + 56].copy_from_slice(&(MAX_TEXT + 1).to_le_bytes());
        reseal(&mut big, 4096);
        assert!(
            read_text(&big, 4096, 0)
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
    }
}

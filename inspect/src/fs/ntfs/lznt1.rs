//! LZNT1, the compression of NTFS's compressed files, as Microsoft's MS-XCA describes it:
//! a stream of chunks, each a 16-bit header (bits 0-11: stored size less 3 counting the
//! header; bit 15: compressed) and up to 4096 bytes of output; a compressed chunk is
//! groups of a flag byte and eight items, literal bytes or 16-bit back-references whose
//! split between length and displacement depends on how far into the chunk the output is.
//!
//! Written from the format description. Bounded by construction: the output never grows
//! past the buffer given, each chunk past 4096 bytes, and every back-reference is checked
//! against what the chunk has produced.

use alloc::format;
use alloc::string::String;

/// Bytes of output a chunk holds at most.
pub const CHUNK: usize = 4096;

/// Why a compressed stream is bad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lznt1Error {
    /// The stream does not decode: what and where.
    #[error("LZNT1: {0}")]
    Corrupt(String),
}

/// Decompresses `input` into `out`; returns the bytes written. Decoding stops at a zero
/// chunk header, at the end of the input or when `out` is full; the rest of `out` is left
/// as it is. A chunk that would overflow `out` is cut at its end.
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<usize, Lznt1Error> {
    let mut ip = 0usize;
    let mut op = 0usize;
    while ip + 2 <= input.len() && op < out.len() {
        let header = u16::from_le_bytes([input[ip], input[ip + 1]]);
        if header == 0 {
            break;
        }
        let size = (header & 0x0fff) as usize + 1;
        let start = ip + 2;
        let end = start + size;
        if end > input.len() {
            return Err(Lznt1Error::Corrupt(format!(
                "chunk at {ip} of {size} bytes runs past the end ({} bytes)",
                input.len()
            )));
        }
        let room = (out.len() - op).min(CHUNK);
        let dst = &mut out[op..op + room];
        let n = if header & 0x8000 == 0 {
            // Stored: the chunk's bytes as they are.
            let n = size.min(room);
            dst[..n].copy_from_slice(&input[start..start + n]);
            n
        } else {
            chunk(&input[start..end], dst)
                .map_err(|m| Lznt1Error::Corrupt(format!("chunk at {ip}: {m}")))?
        };
        op += n;
        ip = end;
    }
    Ok(op)
}

/// Decodes one compressed chunk into `dst` (at most [`CHUNK`] bytes); returns its length.
fn chunk(src: &[u8], dst: &mut [u8]) -> Result<usize, &'static str> {
    let mut ip = 0usize;
    let mut op = 0usize;
    while ip < src.len() {
        let flags = src[ip];
        ip += 1;
        for bit in 0..8 {
            if ip >= src.len() {
                return Ok(op);
            }
            if flags & (1 << bit) == 0 {
                if op >= dst.len() {
                    return Ok(op);
                }
                dst[op] = src[ip];
                op += 1;
                ip += 1;
                continue;
            }
            if ip + 2 > src.len() {
                return Err("back-reference cut short");
            }
            let token = u16::from_le_bytes([src[ip], src[ip + 1]]) as usize;
            ip += 2;
            if op == 0 {
                return Err("back-reference before any output");
            }
            // The displacement takes as many bits as the output so far needs, 4 to 12.
            let mut shift = 12usize;
            let mut p = op - 1;
            while p >= 0x10 {
                p >>= 1;
                shift -= 1;
            }
            let len = (token & ((1 << shift) - 1)) + 3;
            let disp = (token >> shift) + 1;
            if disp > op {
                return Err("back-reference before the start of the chunk");
            }
            for _ in 0..len {
                if op >= dst.len() {
                    return Ok(op);
                }
                dst[op] = dst[op - disp];
                op += 1;
            }
        }
    }
    Ok(op)
}

//! Logical to physical addresses: the chunks of `sys_chunk_array` (enough to read the chunk
//! tree) and then every `CHUNK_ITEM` of the chunk tree.
//!
//! Only the SINGLE and DUP profiles are read, on a filesystem of one device: each chunk maps
//! linearly onto its first stripe (DUP's second copy is the fallback when a tree block's
//! checksum fails on the first). A RAID profile is refused by name when the chunk is met.

use alloc::format;
use alloc::vec::Vec;

use super::{Result, corrupt};
use crate::disk::{le16, le64};
use crate::fs::FsError;

/// The key type of a chunk item.
pub const CHUNK_ITEM_KEY: u8 = 228;
/// Most chunks accepted (a 64 TiB filesystem of 1 GiB data chunks has 65536).
pub const MAX_CHUNKS: usize = 1 << 17;
/// Bytes of a chunk item before its stripes.
const CHUNK_HEADER: usize = 48;
/// Bytes of one stripe.
const STRIPE: usize = 32;
/// The profile bits of a block-group type.
const PROFILE_MASK: u64 = 0x7f8;
const DUP: u64 = 1 << 5;

/// One chunk: `length` bytes from `logical`, at each of `copies` on this device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First logical byte.
    pub logical: u64,
    /// Bytes.
    pub length: u64,
    /// Block-group type and profile bits.
    pub flags: u64,
    /// Physical offsets of the copies (one for SINGLE, two for DUP).
    pub copies: Vec<u64>,
}

/// The name of a profile, for errors.
fn profile_name(flags: u64) -> &'static str {
    match flags & PROFILE_MASK {
        0 => "single",
        0x08 => "RAID0",
        0x10 => "RAID1",
        0x20 => "DUP",
        0x40 => "RAID10",
        0x80 => "RAID5",
        0x100 => "RAID6",
        0x200 => "RAID1C3",
        0x400 => "RAID1C4",
        _ => "unknown",
    }
}

/// All chunks, sorted by logical address, not overlapping.
#[derive(Default, Debug)]
pub struct ChunkMap {
    chunks: Vec<Chunk>,
}

/// What the chunk checks need to know of the filesystem.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// This device's id.
    pub devid: u64,
    /// This device's size in bytes.
    pub dev_size: u64,
    /// The filesystem's sector size.
    pub sectorsize: u32,
}

impl ChunkMap {
    /// Parses one chunk item (`data`) for the chunk at `logical` and adds it.
    pub fn add(&mut self, logical: u64, data: &[u8], geo: Geometry) -> Result<()> {
        let chunk = parse(logical, data, geo)?;
        let at = self.chunks.partition_point(|c| c.logical < chunk.logical);
        if let Some(c) = self.chunks.get(at)
            && c.logical == chunk.logical
        {
            // sys_chunk_array and the chunk tree both hold the system chunks.
            if c == &chunk {
                return Ok(());
            }
            return Err(corrupt(format!(
                "two different chunks at logical {logical:#x}"
            )));
        }
        let end = chunk.logical + chunk.length;
        let overlaps_prev = at > 0
            && self
                .chunks
                .get(at - 1)
                .is_some_and(|p| p.logical + p.length > chunk.logical);
        let overlaps_next = self.chunks.get(at).is_some_and(|n| n.logical < end);
        if overlaps_prev || overlaps_next {
            return Err(corrupt(format!(
                "chunk at logical {logical:#x} overlaps another"
            )));
        }
        if self.chunks.len() >= MAX_CHUNKS {
            return Err(FsError::TooLarge(format!(
                "btrfs: more than {MAX_CHUNKS} chunks"
            )));
        }
        self.chunks.insert(at, chunk);
        Ok(())
    }

    /// Parses `sys_chunk_array`: (key, chunk item) pairs.
    pub fn add_sys_array(&mut self, array: &[u8], geo: Geometry) -> Result<()> {
        let mut p = 0;
        while p < array.len() {
            let key = array
                .get(p..p + 17)
                .ok_or_else(|| corrupt("sys_chunk_array: truncated key"))?;
            if key[8] != CHUNK_ITEM_KEY {
                return Err(corrupt(format!("sys_chunk_array: key type {}", key[8])));
            }
            let logical = le64(key, 9);
            p += 17;
            let rest = &array[p..];
            let n = usize::from(le16(rest, 44));
            let len = CHUNK_HEADER + n * STRIPE;
            let item = rest
                .get(..len)
                .ok_or_else(|| corrupt("sys_chunk_array: truncated chunk"))?;
            self.add(logical, item, geo)?;
            p += len;
        }
        if self.chunks.is_empty() {
            return Err(corrupt("sys_chunk_array: no chunks"));
        }
        Ok(())
    }

    /// The chunk holding `logical`.
    pub fn chunk(&self, logical: u64) -> Result<&Chunk> {
        let at = self.chunks.partition_point(|c| c.logical <= logical);
        at.checked_sub(1)
            .and_then(|i| self.chunks.get(i))
            .filter(|c| logical - c.logical < c.length)
            .ok_or_else(|| corrupt(format!("logical address {logical:#x} is in no chunk")))
    }

    /// The physical offsets (one per copy) of `len` bytes at `logical`, which must lie in
    /// one chunk.
    pub fn map(&self, logical: u64, len: u64) -> Result<Vec<u64>> {
        let c = self.chunk(logical)?;
        let off = logical - c.logical;
        if off + len > c.length {
            return Err(corrupt(format!(
                "{len} bytes at logical {logical:#x} cross the end of their chunk"
            )));
        }
        Ok(c.copies.iter().map(|p| p + off).collect())
    }

    /// How many bytes from `logical` stay in its chunk, and where they are on the device.
    pub fn map_run(&self, logical: u64) -> Result<(u64, u64)> {
        let c = self.chunk(logical)?;
        let off = logical - c.logical;
        let phys = c.copies.first().copied().unwrap_or(0) + off;
        Ok((phys, c.length - off))
    }

    /// Every chunk.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }
}

fn parse(logical: u64, d: &[u8], geo: Geometry) -> Result<Chunk> {
    let bad = |what: &str| corrupt(format!("chunk at logical {logical:#x}: {what}"));
    if d.len() < CHUNK_HEADER {
        return Err(bad("item too short"));
    }
    let length = le64(d, 0);
    let flags = le64(d, 24);
    let num_stripes = usize::from(le16(d, 44));
    if d.len() != CHUNK_HEADER + num_stripes * STRIPE {
        return Err(bad(&format!("{} bytes for {num_stripes} stripes", d.len())));
    }
    let sector = u64::from(geo.sectorsize);
    if length == 0 || !length.is_multiple_of(sector) || !logical.is_multiple_of(sector) {
        return Err(bad(&format!("length {length}")));
    }
    if logical.checked_add(length).is_none() {
        return Err(bad("ends past 2^64"));
    }
    let profile = flags & PROFILE_MASK;
    let want_stripes = match profile {
        0 => 1,
        DUP => 2,
        _ => {
            return Err(FsError::Unsupported(format!(
                "btrfs: chunk at logical {logical:#x} has profile {}, which this reader does not read",
                profile_name(flags)
            )));
        }
    };
    if num_stripes != want_stripes {
        return Err(bad(&format!(
            "{} profile with {num_stripes} stripes",
            profile_name(flags)
        )));
    }
    let mut copies = Vec::with_capacity(want_stripes);
    for s in 0..num_stripes {
        let at = CHUNK_HEADER + s * STRIPE;
        let devid = le64(d, at);
        let offset = le64(d, at + 8);
        if devid != geo.devid {
            return Err(FsError::Unsupported(format!(
                "btrfs: chunk at logical {logical:#x} is on device {devid}, which is not present"
            )));
        }
        match offset.checked_add(length) {
            Some(end) if end <= geo.dev_size => {}
            _ => {
                return Err(bad(&format!(
                    "stripe at {offset:#x} of {length} bytes is past the end of the {}-byte device",
                    geo.dev_size
                )));
            }
        }
        copies.push(offset);
    }
    Ok(Chunk {
        logical,
        length,
        flags,
        copies,
    })
}

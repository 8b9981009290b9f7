//! The file allocation table: entries, cluster chains and the free count.
//!
//! Entries are read from the first FAT (as Linux reads it, whatever FAT32's mirroring flags
//! say) through a one-block window, so walking a chain or counting free clusters reads each
//! FAT block once per pass. A chain is checked the way Linux's `fat_ent_read` and
//! `fat_get_cluster` check it: every link must name a data cluster (2 to the cluster count
//! plus one), a free entry inside a chain is corrupt, and values from the bad-cluster
//! marker up end the chain. Loops are found exactly: each chain remembers the runs of
//! clusters it has visited ([`Chain`]).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::bpb::{FIRST_CLUSTER, FatType, Geometry};
use super::{corrupt, io};
use crate::disk::BlockDevice;
use crate::fs::FsError;

/// Bytes of FAT read at a time.
const WINDOW: u64 = 4096;

/// Most runs of contiguous clusters one chain may have (fragments of one file or
/// directory): 2^18 runs are about 6 MiB of bookkeeping at worst.
pub const MAX_RUNS: usize = 1 << 18;

/// What follows a cluster in its chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Another data cluster.
    Cluster(u32),
    /// The end of the chain.
    End,
}

/// The first FAT of a volume.
pub struct Fat {
    dev: Rc<dyn BlockDevice>,
    fat_type: FatType,
    offset: u64,
    bytes: u64,
    clusters: u32,
    /// The FAT block last read: its offset in the FAT and its bytes.
    window: RefCell<(u64, Vec<u8>)>,
}

impl Fat {
    /// The first FAT of the volume `geo` describes, on `dev`.
    pub fn new(dev: Rc<dyn BlockDevice>, geo: &Geometry) -> Self {
        Fat {
            dev,
            fat_type: geo.fat_type,
            offset: geo.fat_offset,
            bytes: geo.fat_bytes,
            clusters: geo.clusters,
            window: RefCell::new((u64::MAX, Vec::new())),
        }
    }

    /// The byte at `at` in the FAT.
    fn byte(&self, at: u64) -> Result<u8, FsError> {
        let mut w = self.window.borrow_mut();
        let base = at - at % WINDOW;
        if w.0 != base || w.1.is_empty() {
            let len = WINDOW.min(self.bytes - base) as usize;
            let mut buf = vec![0u8; len];
            self.dev
                .read_at(self.offset + base, &mut buf)
                .map_err(|e| io(format!("FAT at byte {base}: {e}")))?;
            *w = (base, buf);
        }
        w.1.get((at - base) as usize)
            .copied()
            .ok_or_else(|| corrupt("FAT read past its end"))
    }

    /// The raw entry `n` (masked to its width; 28 bits on FAT32), `n` below the FAT's
    /// capacity (which holds for every data cluster: the count is clipped to it).
    pub fn entry(&self, n: u32) -> Result<u32, FsError> {
        let n64 = n as u64;
        let at = match self.fat_type {
            FatType::Fat12 => n64 + n64 / 2,
            FatType::Fat16 => n64 * 2,
            FatType::Fat32 => n64 * 4,
        };
        let width = match self.fat_type {
            FatType::Fat12 | FatType::Fat16 => 2,
            FatType::Fat32 => 4,
        };
        if at + width > self.bytes {
            return Err(corrupt(format!("FAT entry {n} is past the FAT's end")));
        }
        let mut v = 0u32;
        for i in 0..width {
            v |= (self.byte(at + i)? as u32) << (8 * i);
        }
        Ok(match self.fat_type {
            FatType::Fat12 if n & 1 == 1 => v >> 4,
            FatType::Fat12 => v & 0xFFF,
            FatType::Fat16 => v,
            FatType::Fat32 => v & 0x0FFF_FFFF,
        })
    }

    /// Whether `c` names a data cluster.
    pub fn is_cluster(&self, c: u32) -> bool {
        c >= FIRST_CLUSTER && c - FIRST_CLUSTER < self.clusters
    }

    /// What follows data cluster `c`.
    pub fn next(&self, c: u32) -> Result<Next, FsError> {
        let v = self.entry(c)?;
        let eoc = match self.fat_type {
            FatType::Fat12 => 0xFF7,
            FatType::Fat16 => 0xFFF7,
            FatType::Fat32 => 0x0FFF_FFF7,
        };
        if v >= eoc {
            // Linux ends a chain at the bad-cluster marker too.
            Ok(Next::End)
        } else if v == 0 {
            Err(corrupt(format!("cluster {c} is linked to a free cluster")))
        } else if self.is_cluster(v) {
            Ok(Next::Cluster(v))
        } else {
            Err(corrupt(format!(
                "cluster {c} is linked to {v}, outside clusters 2..={}",
                self.clusters as u64 + 1
            )))
        }
    }

    /// Free data clusters, counted from the FAT (as Linux's `statfs` counts them unless
    /// mounted with `usefree`: FSInfo's count is not trusted). Reads the FAT in 48 KiB
    /// pieces, each entry decoded in place.
    pub fn count_free(&self) -> Result<u64, FsError> {
        // Entries per piece: even, so that FAT12 pieces hold whole entry pairs.
        const PIECE: u64 = 16384;
        let (num, den) = match self.fat_type {
            FatType::Fat12 => (3, 2),
            FatType::Fat16 => (2, 1),
            FatType::Fat32 => (4, 1),
        };
        let end = FIRST_CLUSTER as u64 + self.clusters as u64;
        let mut free = 0;
        let mut buf = Vec::new();
        let mut first = 0u64;
        while first < end {
            let n = PIECE.min(end - first);
            let from = first * num / den;
            // Whole bytes for the piece's entries (FAT12: a last odd entry needs two).
            let len = ((first + n) * num).div_ceil(den).min(self.bytes) - from;
            buf.resize(len as usize, 0);
            self.dev
                .read_at(self.offset + from, &mut buf)
                .map_err(|e| io(format!("FAT at byte {from}: {e}")))?;
            let skip = (FIRST_CLUSTER as u64).saturating_sub(first) as usize;
            // Bytes missing (never, the count being clipped to the FAT) count as used.
            free += match self.fat_type {
                FatType::Fat12 => (first as usize + skip..(first + n) as usize)
                    .filter(|&e| {
                        let at = e * 3 / 2 - from as usize;
                        match (buf.get(at), buf.get(at + 1)) {
                            (Some(&lo), Some(&hi)) => {
                                let w = u16::from_le_bytes([lo, hi]);
                                (if e & 1 == 1 { w >> 4 } else { w & 0xFFF }) == 0
                            }
                            _ => false,
                        }
                    })
                    .count(),
                FatType::Fat16 => buf
                    .chunks_exact(2)
                    .skip(skip)
                    .filter(|c| c[0] | c[1] == 0)
                    .count(),
                FatType::Fat32 => buf
                    .chunks_exact(4)
                    .skip(skip)
                    .filter(|c| c[0] | c[1] | c[2] | (c[3] & 0x0F) == 0)
                    .count(),
            } as u64;
            first += n;
        }
        Ok(free)
    }
}

/// A run of `len` clusters, contiguous on disk from `disk`, holding clusters `first`..
/// of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Index in the chain of the run's first cluster.
    pub first: u32,
    /// Its cluster number.
    pub disk: u32,
    /// Clusters in the run.
    pub len: u32,
}

/// A cluster chain, mapped from its start as far as it has been needed.
///
/// Mapping cluster `i` walks the FAT only from the end of what is already mapped, and a
/// mapped cluster is found by binary search over the runs: reading a file front to back in
/// pieces walks its chain once in all, and each piece costs O(log runs) more. Loops are
/// found exactly: every visited cluster is looked up among the visited runs, O(log runs).
pub struct Chain {
    runs: Vec<Run>,
    /// Visited runs by first cluster: start -> length (a loop revisits one).
    visited: BTreeMap<u32, u32>,
    /// The cluster after the mapped ones, or None at the end of the chain.
    next: Option<u32>,
    /// Most clusters the chain may have.
    limit: u32,
}

impl Chain {
    /// The chain from `start`, which must name a data cluster; at most `limit` clusters.
    pub fn new(fat: &Fat, start: u32, limit: u32) -> Result<Self, FsError> {
        if !fat.is_cluster(start) {
            return Err(corrupt(format!(
                "chain starts at cluster {start}, outside clusters 2..={}",
                fat.clusters as u64 + 1
            )));
        }
        Ok(Chain {
            runs: Vec::new(),
            visited: BTreeMap::new(),
            next: Some(start),
            limit,
        })
    }

    /// Clusters mapped so far.
    pub fn mapped(&self) -> u32 {
        self.runs.last().map_or(0, |r| r.first + r.len)
    }

    /// Whether the whole chain is mapped.
    pub fn complete(&self) -> bool {
        self.next.is_none()
    }

    /// Maps one more cluster; false at the end of the chain.
    fn step(&mut self, fat: &Fat) -> Result<bool, FsError> {
        let Some(c) = self.next else {
            return Ok(false);
        };
        let index = self.mapped();
        if index >= self.limit {
            return Err(corrupt(format!(
                "cluster chain longer than {} clusters",
                self.limit
            )));
        }
        if let Some((&s, &l)) = self.visited.range(..=c).next_back()
            && c - s < l
        {
            return Err(corrupt(format!("cluster chain loops back to cluster {c}")));
        }
        match self.runs.last_mut() {
            Some(r) if r.disk as u64 + r.len as u64 == c as u64 => {
                r.len += 1;
                if let Some(l) = self.visited.get_mut(&r.disk) {
                    *l += 1;
                }
            }
            _ => {
                if self.runs.len() >= MAX_RUNS {
                    return Err(FsError::Unsupported(format!(
                        "cluster chain in more than {MAX_RUNS} fragments"
                    )));
                }
                self.runs.push(Run {
                    first: index,
                    disk: c,
                    len: 1,
                });
                self.visited.insert(c, 1);
            }
        }
        self.next = match fat.next(c)? {
            Next::Cluster(n) => Some(n),
            Next::End => None,
        };
        Ok(true)
    }

    /// Maps the whole chain and returns its runs.
    pub fn all(&mut self, fat: &Fat) -> Result<&[Run], FsError> {
        while self.step(fat)? {}
        Ok(&self.runs)
    }

    /// Cluster `index` of the chain and how many clusters follow it contiguously (itself
    /// included); None past the end of the chain.
    pub fn locate(&mut self, fat: &Fat, index: u32) -> Result<Option<(u32, u32)>, FsError> {
        while self.mapped() <= index {
            if !self.step(fat)? {
                return Ok(None);
            }
        }
        let i = self.runs.partition_point(|r| r.first + r.len <= index);
        let Some(r) = self.runs.get(i) else {
            return Ok(None);
        };
        let off = index - r.first;
        Ok(Some((r.disk + off, r.len - off)))
    }
}

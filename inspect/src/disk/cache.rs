//! A least-recently-used block cache in front of a device, for metadata reads.
//!
//! Partition tables, superblocks, inodes and directories are read in small pieces, many
//! times over (each probe, each path lookup); every miss costs a round trip to the host.
//! The cache reads whole 4 KiB blocks and keeps the most recently used ones. Large aligned
//! reads (file contents) bypass it, so a download does not flush the metadata out.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use core::cell::{Cell, RefCell};

use super::{BlockDevice, DiskError, check_range};

/// Cache block size.
pub const BLOCK: u64 = 4096;
/// Reads of at least this many whole blocks skip the cache.
const BYPASS_BLOCKS: u64 = 16;

struct Entry {
    data: Box<[u8]>,
    stamp: u64,
}

struct State {
    blocks: BTreeMap<u64, Entry>,
    /// Recency order: stamp -> block number.
    order: BTreeMap<u64, u64>,
    clock: u64,
}

/// Hit and miss counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Blocks found in the cache.
    pub hits: u64,
    /// Blocks read from the device.
    pub misses: u64,
    /// Bytes read around the cache.
    pub bypassed: u64,
}

/// A device with an LRU cache of `capacity` blocks in front of it.
pub struct CachedDevice {
    dev: Rc<dyn BlockDevice>,
    capacity: usize,
    state: RefCell<State>,
    stats: Cell<CacheStats>,
}

impl CachedDevice {
    /// Caches up to `capacity` 4 KiB blocks of `dev` (at least one).
    pub fn new(dev: Rc<dyn BlockDevice>, capacity: usize) -> Self {
        Self {
            dev,
            capacity: capacity.max(1),
            state: RefCell::new(State {
                blocks: BTreeMap::new(),
                order: BTreeMap::new(),
                clock: 0,
            }),
            stats: Cell::new(CacheStats::default()),
        }
    }

    /// Hits, misses and bypassed bytes so far.
    pub fn stats(&self) -> CacheStats {
        self.stats.get()
    }

    fn bump(&self, f: impl FnOnce(&mut CacheStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Copies `out.len()` bytes from `offset_in_block` of block `block`, reading it if needed.
    fn copy_block(
        &self,
        block: u64,
        offset_in_block: usize,
        out: &mut [u8],
    ) -> Result<(), DiskError> {
        let mut st = self.state.borrow_mut();
        st.clock += 1;
        let now = st.clock;
        if let Some(e) = st.blocks.get_mut(&block) {
            let old = core::mem::replace(&mut e.stamp, now);
            out.copy_from_slice(&e.data[offset_in_block..offset_in_block + out.len()]);
            st.order.remove(&old);
            st.order.insert(now, block);
            drop(st);
            self.bump(|s| s.hits += 1);
            return Ok(());
        }
        let start = block * BLOCK;
        let len = BLOCK.min(self.dev.size() - start) as usize;
        let mut data = alloc::vec![0u8; len].into_boxed_slice();
        self.dev.read_at(start, &mut data)?;
        out.copy_from_slice(&data[offset_in_block..offset_in_block + out.len()]);
        if st.blocks.len() >= self.capacity
            && let Some((_, victim)) = st.order.pop_first()
        {
            st.blocks.remove(&victim);
        }
        st.blocks.insert(block, Entry { data, stamp: now });
        st.order.insert(now, block);
        drop(st);
        self.bump(|s| s.misses += 1);
        Ok(())
    }
}

impl BlockDevice for CachedDevice {
    fn size(&self) -> u64 {
        self.dev.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size())?;
        let mut pos = offset;
        let mut done = 0usize;
        while done < buf.len() {
            let block = pos / BLOCK;
            let in_block = (pos % BLOCK) as usize;
            let left = buf.len() - done;
            // Whole blocks in a large run: straight from the device.
            if in_block == 0 && left as u64 >= BYPASS_BLOCKS * BLOCK {
                let n = (left as u64 / BLOCK * BLOCK) as usize;
                self.dev.read_at(pos, &mut buf[done..done + n])?;
                self.bump(|s| s.bypassed += n as u64);
                done += n;
                pos += n as u64;
                continue;
            }
            let n = left.min(BLOCK as usize - in_block);
            self.copy_block(block, in_block, &mut buf[done..done + n])?;
            done += n;
            pos += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    struct Counting {
        data: Vec<u8>,
        reads: Cell<u32>,
    }

    impl BlockDevice for Counting {
        fn size(&self) -> u64 {
            self.data.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
            self.reads.set(self.reads.get() + 1);
            self.data.read_at(offset, buf)
        }
    }

    fn device(len: usize) -> Rc<Counting> {
        Rc::new(Counting {
            data: (0..len).map(|i| (i * 31 % 253) as u8).collect(),
            reads: Cell::new(0),
        })
    }

    #[test]
    fn reads_match_the_device_at_every_alignment_and_hit_the_second_time() {
        let dev = device(40_000 + 3);
        let cache = CachedDevice::new(dev.clone(), 4);
        for (off, len) in [
            (0u64, 10usize),
            (4090, 20),
            (12_000, 9000),
            (39_990, 13),
            (0, 0),
        ] {
            let mut a = alloc::vec![0u8; len];
            cache.read_at(off, &mut a).unwrap();
            assert_eq!(&a[..], &dev.data[off as usize..off as usize + len]);
        }
        let before = dev.reads.get();
        let mut a = [0u8; 8];
        cache.read_at(39_995, &mut a).unwrap();
        assert_eq!(dev.reads.get(), before, "the tail block is cached");
        assert!(cache.read_at(39_999, &mut a).is_err());
        assert!(cache.read_at(u64::MAX - 2, &mut a).is_err());
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let dev = device(10 * 4096);
        let cache = CachedDevice::new(dev.clone(), 2);
        let mut b = [0u8; 1];
        cache.read_at(0, &mut b).unwrap(); // block 0
        cache.read_at(4096, &mut b).unwrap(); // block 1
        cache.read_at(0, &mut b).unwrap(); // block 0 again: 1 is now oldest
        cache.read_at(8192, &mut b).unwrap(); // evicts 1
        let reads = dev.reads.get();
        cache.read_at(0, &mut b).unwrap();
        assert_eq!(dev.reads.get(), reads);
        cache.read_at(4096, &mut b).unwrap();
        assert_eq!(dev.reads.get(), reads + 1);
        assert_eq!(cache.stats().hits, 2);
    }

    #[test]
    fn large_aligned_reads_bypass() {
        let dev = device(1 << 20);
        let cache = CachedDevice::new(dev.clone(), 4);
        let mut big = alloc::vec![0u8; 256 * 1024 + 100];
        cache.read_at(4096, &mut big).unwrap();
        assert_eq!(&big[..], &dev.data[4096..4096 + big.len()]);
        assert_eq!(cache.stats().bypassed, 256 * 1024);
        assert_eq!(cache.stats().misses, 1);
    }
}

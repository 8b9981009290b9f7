//! The guest's side of one split virtqueue (virtio 1.x 2.7), written by hand into guest
//! memory: descriptors, the available ring, and reading back the used ring with what the
//! device wrote. Tests post sane chains with [`GuestQueue::post`] and hostile ones (loops,
//! bad indices, indirect tables) with [`GuestQueue::write_desc`] and
//! [`GuestQueue::publish`].

use std::collections::HashMap;

use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

/// VIRTQ_DESC_F_NEXT: the chain goes on in `next`.
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// VIRTQ_DESC_F_WRITE: the device writes this buffer.
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// VIRTQ_DESC_F_INDIRECT: the buffer is a table of descriptors.
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;

/// One descriptor as it lies in a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Desc {
    /// Guest address of the buffer.
    pub addr: u64,
    /// Its length.
    pub len: u32,
    /// `VIRTQ_DESC_F_*` bits.
    pub flags: u16,
    /// The next descriptor, with [`VIRTQ_DESC_F_NEXT`].
    pub next: u16,
}

impl Desc {
    /// The 16 bytes of the descriptor table entry.
    pub fn encode(&self) -> [u8; 16] {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&self.addr.to_le_bytes());
        d[8..12].copy_from_slice(&self.len.to_le_bytes());
        d[12..14].copy_from_slice(&self.flags.to_le_bytes());
        d[14..16].copy_from_slice(&self.next.to_le_bytes());
        d
    }
}

/// One buffer of a chain to post: address, length, flags (NEXT is added for all but the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    /// Guest address.
    pub addr: u64,
    /// Length.
    pub len: u32,
    /// `VIRTQ_DESC_F_WRITE` and/or `VIRTQ_DESC_F_INDIRECT`.
    pub flags: u16,
}

impl Seg {
    /// Whether the device may write the buffer.
    pub fn writable(&self) -> bool {
        self.flags & VIRTQ_DESC_F_WRITE != 0
    }
}

/// A buffer the device reads.
pub fn rd(addr: u64, len: u32) -> Seg {
    Seg {
        addr,
        len,
        flags: 0,
    }
}

/// A buffer the device writes.
pub fn wr(addr: u64, len: u32) -> Seg {
    Seg {
        addr,
        len,
        flags: VIRTQ_DESC_F_WRITE,
    }
}

/// A used-ring entry, with what the device wrote into a chain posted by [`GuestQueue::post`]:
/// `data` is the first `len` bytes of its writable buffers (those inside guest memory), `rest`
/// the writable bytes after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedEntry {
    /// The head the device returned.
    pub head: u16,
    /// The length it said it wrote.
    pub len: u32,
    /// Whether the head was posted by [`GuestQueue::post`] (and is not held any more); else
    /// `data` and `rest` are empty.
    pub posted: bool,
    /// What the device wrote, up to `len`.
    pub data: Vec<u8>,
    /// The writable bytes past `len`.
    pub rest: Vec<u8>,
}

/// The guest's view of one split virtqueue.
#[derive(Debug, Clone, Default)]
pub struct GuestQueue {
    /// Entries (a power of two; 0 for a queue never set up).
    pub size: u16,
    /// Descriptor table address.
    pub desc: u64,
    /// Available ring address.
    pub avail: u64,
    /// Used ring address.
    pub used: u64,
    used_seen: u16,
    free: Vec<u16>,
    /// Chains the device holds, by head: their descriptors and segments.
    chains: HashMap<u16, Vec<(u16, Seg)>>,
}

/// Writes descriptor `idx` of the table at `table`.
pub fn write_desc(
    mem: &GuestMemoryMmap,
    table: u64,
    idx: u16,
    d: Desc,
) -> Result<(), GuestMemoryError> {
    mem.write_slice(&d.encode(), GuestAddress(table + 16 * u64::from(idx)))
}

impl GuestQueue {
    /// A queue of `size` entries at the given addresses, every descriptor free. The rings are
    /// not touched: zero them before the device sees them.
    pub fn new(size: u16, desc: u64, avail: u64, used: u64) -> Self {
        GuestQueue {
            size,
            desc,
            avail,
            used,
            used_seen: 0,
            free: (0..size).rev().collect(),
            chains: HashMap::new(),
        }
    }

    /// Writes descriptor `idx` of this queue's table.
    pub fn write_desc(
        &self,
        mem: &GuestMemoryMmap,
        idx: u16,
        d: Desc,
    ) -> Result<(), GuestMemoryError> {
        write_desc(mem, self.desc, idx, d)
    }

    /// Puts `head` in the next slot of the available ring and publishes it (the index is read
    /// from guest memory, so what else wrote the ring is respected). No notification. The index
    /// is moved on even when the slot is outside guest memory (a hostile ring), and the first
    /// error is returned.
    pub fn publish(&self, mem: &GuestMemoryMmap, head: u16) -> Result<(), GuestMemoryError> {
        let idx: u16 = mem.read_obj(GuestAddress(self.avail + 2))?;
        let slot = self.avail + 4 + 2 * u64::from(idx % self.size.max(1));
        let written = mem.write_obj(head, GuestAddress(slot));
        mem.write_obj(idx.wrapping_add(1), GuestAddress(self.avail + 2))?;
        written
    }

    /// Takes `n` free descriptors. Panics when there are not enough.
    pub fn take_descs(&mut self, n: usize) -> Vec<u16> {
        assert!(
            self.free.len() >= n,
            "queue at {:#x} out of descriptors",
            self.desc
        );
        (0..n).map(|_| self.free.pop().unwrap()).collect()
    }

    /// Descriptors not held by the device.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Records a chain written by hand (with [`GuestQueue::write_desc`]) as posted, so
    /// [`GuestQueue::take_used`] frees its descriptors and reads what the device wrote.
    pub fn track(&mut self, head: u16, descs: Vec<(u16, Seg)>) {
        self.chains.insert(head, descs);
    }

    /// Writes `segs` as a chain into free descriptors and publishes its head in the available
    /// ring (no notification). Returns the head. Panics if guest memory refuses a write.
    pub fn post(&mut self, mem: &GuestMemoryMmap, segs: &[Seg]) -> u16 {
        let idxs = self.take_descs(segs.len());
        for (i, s) in segs.iter().enumerate() {
            let next = idxs.get(i + 1).copied();
            let more = if next.is_some() { VIRTQ_DESC_F_NEXT } else { 0 };
            let d = Desc {
                addr: s.addr,
                len: s.len,
                flags: s.flags | more,
                next: next.unwrap_or(0),
            };
            self.write_desc(mem, idxs[i], d).expect("descriptor table");
        }
        let head = idxs[0];
        self.publish(mem, head).expect("available ring");
        self.chains
            .insert(head, idxs.into_iter().zip(segs.iter().copied()).collect());
        head
    }

    /// The used-ring index the device published.
    pub fn used_idx(&self, mem: &GuestMemoryMmap) -> u16 {
        mem.read_obj(GuestAddress(self.used + 2))
            .expect("used ring")
    }

    /// New used-ring entries, with what the device wrote. The descriptors of chains posted by
    /// [`GuestQueue::post`] are free again.
    pub fn take_used(&mut self, mem: &GuestMemoryMmap) -> Vec<UsedEntry> {
        let idx = self.used_idx(mem);
        let mut out = Vec::new();
        while self.used_seen != idx {
            let at = self.used + 4 + 8 * u64::from(self.used_seen % self.size.max(1));
            let id: u32 = mem.read_obj(GuestAddress(at)).expect("used ring");
            let len: u32 = mem.read_obj(GuestAddress(at + 4)).expect("used ring");
            self.used_seen = self.used_seen.wrapping_add(1);
            let head = u16::try_from(id).expect("used id beyond the queue");
            let mut written = Vec::new();
            let posted = match self.chains.remove(&head) {
                Some(chain) => {
                    for (i, s) in chain {
                        self.free.push(i);
                        // A writable buffer outside guest memory (a hostile chain) adds
                        // nothing.
                        if !s.writable() {
                            continue;
                        }
                        let mut b = vec![0u8; s.len as usize];
                        if mem.read_slice(&mut b, GuestAddress(s.addr)).is_ok() {
                            written.extend(b);
                        }
                    }
                    true
                }
                None => false,
            };
            let n = (len as usize).min(written.len());
            let rest = written.split_off(n);
            out.push(UsedEntry {
                head,
                len,
                posted,
                data: written,
                rest,
            });
        }
        out
    }
}

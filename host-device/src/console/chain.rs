//! The console's work on one descriptor chain, apart from any device state: reading a
//! transmit chain, filling a receive chain, writing a control message into a control receive
//! chain and reading one from a control transmit chain. The device decides which chain goes
//! where and what to count; these only move bytes between guest memory and the host.

use std::collections::VecDeque;
use std::io::{Read, Write};

use virtio_queue::DescriptorChain;
use vm_memory::GuestMemoryMmap;

use super::MAX_CHAIN_BYTES;
use super::control::{HEADER_LEN, Header};

/// A chain popped from one of the device's queues.
pub(crate) type Chain<'m> = DescriptorChain<&'m GuestMemoryMmap>;

/// Why a chain could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChainError {
    /// Its descriptors are unusable (outside guest memory, looping, wrong order).
    #[error("{0}")]
    Descriptors(#[from] virtio_queue::Error),
    /// A transmit chain over [`MAX_CHAIN_BYTES`].
    #[error("chain of {0} bytes is over {MAX_CHAIN_BYTES}")]
    TooLong(usize),
    /// Copying failed part way.
    #[error("{0}")]
    Copy(#[from] std::io::Error),
    /// A receive chain with no room at all.
    #[error("chain has no writable bytes")]
    NoRoom,
}

/// Reads a transmit chain's bytes, refusing chains over [`MAX_CHAIN_BYTES`]. A chain with no
/// readable bytes gives an empty vector.
pub(crate) fn read_tx(mem: &GuestMemoryMmap, chain: Chain<'_>) -> Result<Vec<u8>, ChainError> {
    let mut r = chain.reader(mem)?;
    let n = r.available_bytes();
    if n > MAX_CHAIN_BYTES {
        return Err(ChainError::TooLong(n));
    }
    let mut data = vec![0; n];
    r.read_exact(&mut data)?;
    Ok(data)
}

/// Copies the front of `data` into a receive chain, as much as the chain holds. Returns how
/// many bytes were written; the caller drains them from `data`.
pub(crate) fn fill_rx(
    mem: &GuestMemoryMmap,
    chain: Chain<'_>,
    data: &VecDeque<u8>,
) -> Result<usize, ChainError> {
    let mut w = chain.writer(mem)?;
    let n = w.available_bytes().min(data.len());
    let (a, b) = data.as_slices();
    let first = n.min(a.len());
    w.write_all(&a[..first])?;
    w.write_all(&b[..n - first])?;
    Ok(n)
}

/// Writes one control message into a control receive chain. A buffer shorter than the message
/// gets what fits (logged; Linux's buffers always fit). Returns the bytes written, 0 when the
/// copy failed; [`ChainError::NoRoom`] for a buffer of no bytes.
pub(crate) fn write_control(
    mem: &GuestMemoryMmap,
    chain: Chain<'_>,
    msg: &[u8],
) -> Result<usize, ChainError> {
    let mut w = chain.writer(mem)?;
    let n = w.available_bytes().min(msg.len());
    if n == 0 {
        return Err(ChainError::NoRoom);
    }
    if n < msg.len() {
        log::warn!(
            "virtio-console: control buffer of {n} bytes truncates a {}-byte message",
            msg.len()
        );
    }
    Ok(w.write_all(&msg[..n]).map(|_| n).unwrap_or(0))
}

/// Reads a control message (a bare header) from a control transmit chain: `None` when the
/// chain holds fewer than [`HEADER_LEN`] readable bytes or they cannot be read.
pub(crate) fn read_control(
    mem: &GuestMemoryMmap,
    chain: Chain<'_>,
) -> Result<Option<Header>, ChainError> {
    let mut r = chain.reader(mem)?;
    if r.available_bytes() < HEADER_LEN {
        return Ok(None);
    }
    let mut buf = [0u8; HEADER_LEN];
    Ok(r.read_exact(&mut buf).ok().map(|_| Header::decode(&buf)))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use virtio_bindings::virtio_ring::VRING_DESC_F_WRITE;
    use virtio_queue::desc::RawDescriptor;
    use virtio_queue::desc::split::Descriptor;
    use virtio_queue::mock::MockSplitQueue;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    use super::*;
    use crate::console::control::{self, Header};

    /// Buffers live from here up (MockSplitQueue puts its rings at 0).
    const BUF: u64 = 0x10_0000;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap()
    }

    fn rd(addr: u64, len: u32) -> RawDescriptor {
        RawDescriptor::from(Descriptor::new(addr, len, 0, 0))
    }

    fn wr(addr: u64, len: u32) -> RawDescriptor {
        RawDescriptor::from(Descriptor::new(addr, len, VRING_DESC_F_WRITE as u16, 0))
    }

    fn read(mem: &GuestMemoryMmap, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        mem.read_slice(&mut b, GuestAddress(addr)).unwrap();
        b
    }

    #[test]
    fn read_tx_joins_the_readable_buffers() {
        let m = mem();
        m.write_slice(b"hello ", GuestAddress(BUF)).unwrap();
        m.write_slice(b"guest", GuestAddress(BUF + 0x100)).unwrap();
        let q = MockSplitQueue::new(&m, 16);
        let chain = q
            .build_desc_chain(&[rd(BUF, 6), rd(BUF + 0x100, 5)])
            .unwrap();
        assert_eq!(read_tx(&m, chain).unwrap(), b"hello guest");
    }

    #[test]
    fn read_tx_refuses_a_chain_over_the_limit() {
        let m = mem();
        let q = MockSplitQueue::new(&m, 16);
        let half = (MAX_CHAIN_BYTES / 2) as u32;
        let chain = q
            .build_desc_chain(&[rd(BUF, half), rd(BUF, half), rd(BUF, 1)])
            .unwrap();
        assert!(matches!(
            read_tx(&m, chain),
            Err(ChainError::TooLong(n)) if n == MAX_CHAIN_BYTES + 1
        ));
        let chain = q.build_desc_chain(&[rd(BUF, half), rd(BUF, half)]).unwrap();
        assert_eq!(read_tx(&m, chain).unwrap().len(), MAX_CHAIN_BYTES);
    }

    #[test]
    fn read_tx_of_a_write_only_chain_is_empty() {
        let m = mem();
        let q = MockSplitQueue::new(&m, 16);
        let chain = q.build_desc_chain(&[wr(BUF, 64)]).unwrap();
        assert_eq!(read_tx(&m, chain).unwrap(), b"");
    }

    #[test]
    fn fill_rx_takes_what_fits_across_the_deque_wrap() {
        let m = mem();
        let q = MockSplitQueue::new(&m, 16);
        // A deque whose contents wrap around its buffer: two slices.
        let mut data: VecDeque<u8> = VecDeque::with_capacity(8);
        data.extend(b"xxxxab");
        for _ in 0..4 {
            data.pop_front();
        }
        data.extend(b"cdefgh");
        assert_ne!(data.as_slices().1, b"");
        let chain = q
            .build_desc_chain(&[wr(BUF, 3), wr(BUF + 0x100, 3)])
            .unwrap();
        assert_eq!(fill_rx(&m, chain, &data).unwrap(), 6);
        assert_eq!(read(&m, BUF, 3), b"abc");
        assert_eq!(read(&m, BUF + 0x100, 3), b"def");
        // A larger buffer takes everything.
        let chain = q.build_desc_chain(&[wr(BUF + 0x200, 64)]).unwrap();
        assert_eq!(fill_rx(&m, chain, &data).unwrap(), 8);
        assert_eq!(read(&m, BUF + 0x200, 8), b"abcdefgh");
    }

    #[test]
    fn write_control_fits_truncates_or_refuses() {
        let m = mem();
        let q = MockSplitQueue::new(&m, 16);
        let msg = Header {
            id: 1,
            event: control::PORT_NAME,
            value: 1,
        }
        .encode_with(b"org.x");
        let chain = q.build_desc_chain(&[wr(BUF, 512)]).unwrap();
        assert_eq!(write_control(&m, chain, &msg).unwrap(), msg.len());
        assert_eq!(read(&m, BUF, msg.len()), msg);
        let chain = q.build_desc_chain(&[wr(BUF + 0x400, 4)]).unwrap();
        assert_eq!(write_control(&m, chain, &msg).unwrap(), 4);
        let chain = q.build_desc_chain(&[rd(BUF, 64)]).unwrap();
        assert!(matches!(
            write_control(&m, chain, &msg),
            Err(ChainError::NoRoom)
        ));
    }

    #[test]
    fn read_control_needs_a_whole_header() {
        let m = mem();
        let h = Header {
            id: 3,
            event: control::PORT_READY,
            value: 1,
        };
        m.write_slice(&h.encode(), GuestAddress(BUF)).unwrap();
        let q = MockSplitQueue::new(&m, 16);
        // Split over two descriptors.
        let chain = q.build_desc_chain(&[rd(BUF, 3), rd(BUF + 3, 5)]).unwrap();
        assert_eq!(read_control(&m, chain).unwrap(), Some(h));
        let chain = q.build_desc_chain(&[rd(BUF, 7)]).unwrap();
        assert_eq!(read_control(&m, chain).unwrap(), None);
        let chain = q.build_desc_chain(&[rd(0x1_0000_0000, 8)]).unwrap();
        assert!(read_control(&m, chain).is_err());
    }
}

//! The request format (virtio 1.x 5.2.6) and how one descriptor chain is served.
//!
//! A request is a device-readable header ([`HEADER_LEN`] bytes: le32 type, le32 reserved, le64
//! sector), device-readable or device-writable data depending on the type, and one
//! device-writable status byte, the last writable byte of the chain. Everything in a chain is
//! the guest's to choose, so the chain is gathered through virtio-queue's `Reader` and `Writer`
//! (which check every descriptor against guest memory) and its shape is checked here before
//! anything is read from the image.

use std::io::{Read, Write};

use virtio_queue::{DescriptorChain, Writer};
use vm_memory::GuestMemoryMmap;

use super::backend::BlockBackend;
use super::{BlockStats, MAX_REQUEST_BYTES, SECTOR_SIZE, SEG_MAX};

/// Read sectors into the data buffers.
pub const T_IN: u32 = 0;
/// Write sectors from the data buffers (refused: the device is read-only).
pub const T_OUT: u32 = 1;
/// Flush the device's write cache.
pub const T_FLUSH: u32 = 4;
/// Read the device's serial number ([`ID_BYTES`] bytes).
pub const T_GET_ID: u32 = 8;

/// The request succeeded.
pub const S_OK: u8 = 0;
/// The request failed.
pub const S_IOERR: u8 = 1;
/// The device does not know the request type.
pub const S_UNSUPP: u8 = 2;

/// Bytes in a request header.
pub const HEADER_LEN: usize = 16;
/// Bytes in the answer to [`T_GET_ID`]: the serial number, zero-padded.
pub const ID_BYTES: usize = 20;
/// Most descriptors a chain may have: [`SEG_MAX`] data segments, the header and the status.
pub const MAX_DESCRIPTORS: usize = SEG_MAX as usize + 2;
/// Image bytes read (and copied to the guest) at a time.
const CHUNK: usize = 64 * 1024;

/// A request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The request type (`T_*`).
    pub request_type: u32,
    /// The first sector, in 512-byte units, whatever the block size.
    pub sector: u64,
}

impl Header {
    /// Decodes a header.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Self {
        let [t0, t1, t2, t3, _, _, _, _, s0, s1, s2, s3, s4, s5, s6, s7] = *b;
        Header {
            request_type: u32::from_le_bytes([t0, t1, t2, t3]),
            sector: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
        }
    }

    /// Encodes a header (for drivers and tests).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(&self.request_type.to_le_bytes());
        b[8..].copy_from_slice(&self.sector.to_le_bytes());
        b
    }
}

/// What walking a chain's descriptors found.
struct Shape {
    descriptors: usize,
    /// The walk stopped at a descriptor that says more follow: a loop, a `next` outside the
    /// table, an unreadable descriptor or a bad indirect table.
    truncated: bool,
    /// A device-readable descriptor after a device-writable one (virtio 1.x 2.7.4.2).
    misordered: bool,
}

fn shape(chain: DescriptorChain<&GuestMemoryMmap>) -> Shape {
    let mut s = Shape {
        descriptors: 0,
        truncated: false,
        misordered: false,
    };
    let mut writable = false;
    // Bounded: virtio-queue stops after as many descriptors as the table holds.
    for d in chain {
        s.descriptors += 1;
        s.truncated = d.has_next();
        if d.is_write_only() {
            writable = true;
        } else if writable {
            s.misordered = true;
        }
    }
    s
}

/// The host half of request processing: the image and what requests need from it.
pub(super) struct Engine {
    pub backend: Box<dyn BlockBackend>,
    /// Capacity in 512-byte sectors.
    pub capacity: u64,
    /// The answer to [`T_GET_ID`].
    pub id: [u8; ID_BYTES],
    pub stats: BlockStats,
    scratch: Vec<u8>,
}

impl Engine {
    pub fn new(backend: Box<dyn BlockBackend>, capacity: u64, id: [u8; ID_BYTES]) -> Self {
        Engine {
            backend,
            capacity,
            id,
            stats: BlockStats::default(),
            scratch: Vec::new(),
        }
    }

    /// Serves one chain; returns the used length (bytes written to the guest, status byte
    /// included), 0 for a chain that has no status byte to answer in.
    pub fn handle(
        &mut self,
        mem: &GuestMemoryMmap,
        chain: DescriptorChain<&GuestMemoryMmap>,
    ) -> u32 {
        self.stats.requests += 1;
        let head = chain.head_index();
        let shape = shape(chain.clone());
        let mut data = match chain.clone().writer(mem) {
            Ok(w) => w,
            Err(e) => return self.bad(head, &format!("writable buffers unusable: {e}"), 0),
        };
        let Some(status_at) = data.available_bytes().checked_sub(1) else {
            return self.bad(head, "no writable status byte", 0);
        };
        let mut status = match data.split_at(status_at) {
            Ok(s) => s,
            Err(e) => return self.bad(head, &format!("cannot find the status byte: {e}"), 0),
        };
        let code = self.serve(mem, chain, &shape, &mut data);
        let written = data.bytes_written();
        if let Err(e) = status.write_all(&[code]) {
            return self.bad(head, &format!("cannot write the status: {e}"), 0);
        }
        u32::try_from(written.saturating_add(1)).unwrap_or(u32::MAX)
    }

    fn bad(&mut self, head: u16, why: &str, used: u32) -> u32 {
        log::warn!("virtio-blk: bad chain at descriptor {head}: {why}");
        self.stats.bad_chains += 1;
        used
    }

    /// Performs the request; returns its status. `data` is the writable space before the
    /// status byte.
    fn serve(
        &mut self,
        mem: &GuestMemoryMmap,
        chain: DescriptorChain<&GuestMemoryMmap>,
        shape: &Shape,
        data: &mut Writer<'_>,
    ) -> u8 {
        let head = chain.head_index();
        if shape.truncated || shape.misordered || shape.descriptors > MAX_DESCRIPTORS {
            let why = format!(
                "{} descriptors{}{}",
                shape.descriptors,
                if shape.truncated {
                    ", truncated or looping"
                } else {
                    ""
                },
                if shape.misordered {
                    ", readable after writable"
                } else {
                    ""
                },
            );
            self.bad(head, &why, 0);
            return S_IOERR;
        }
        let mut reader = match chain.reader(mem) {
            Ok(r) => r,
            Err(e) => {
                self.bad(head, &format!("readable buffers unusable: {e}"), 0);
                return S_IOERR;
            }
        };
        let mut raw = [0u8; HEADER_LEN];
        if reader.read_exact(&mut raw).is_err() {
            let n = reader.available_bytes();
            self.bad(head, &format!("header of {n} bytes"), 0);
            return S_IOERR;
        }
        let header = Header::decode(&raw);
        match header.request_type {
            T_IN => {
                if reader.available_bytes() != 0 {
                    self.bad(head, "read request with device-readable data", 0);
                    return S_IOERR;
                }
                self.read(header.sector, data)
            }
            T_OUT => {
                log::debug!("virtio-blk: write to sector {} refused", header.sector);
                self.stats.write_refused += 1;
                S_IOERR
            }
            T_FLUSH => S_OK,
            T_GET_ID => {
                let n = data.available_bytes().min(ID_BYTES);
                match self.id.get(..n).map(|id| data.write_all(id)) {
                    Some(Ok(())) => S_OK,
                    _ => S_IOERR,
                }
            }
            other => {
                log::debug!("virtio-blk: unsupported request type {other}");
                self.stats.unsupported += 1;
                S_UNSUPP
            }
        }
    }

    /// A T_IN request: `data.available_bytes()` bytes from `sector`, all inside the image,
    /// checked before anything is written to the guest.
    fn read(&mut self, sector: u64, data: &mut Writer<'_>) -> u8 {
        let len = data.available_bytes();
        let sector_size = SECTOR_SIZE as u64;
        let range = sector.checked_mul(sector_size).and_then(|start| {
            let end = start.checked_add(len as u64)?;
            (end <= self.capacity.saturating_mul(sector_size)).then_some(start)
        });
        let check = if len > MAX_REQUEST_BYTES {
            Err(format!(
                "{len} bytes is over the {MAX_REQUEST_BYTES}-byte limit"
            ))
        } else if !len.is_multiple_of(SECTOR_SIZE) {
            Err(format!("{len} bytes is not a whole number of sectors"))
        } else {
            range.ok_or_else(|| {
                format!(
                    "{len} bytes at sector {sector} is past the end ({} sectors)",
                    self.capacity
                )
            })
        };
        let mut offset = match check {
            Ok(offset) => offset,
            Err(why) => {
                log::debug!("virtio-blk: read refused: {why}");
                self.stats.io_errors += 1;
                return S_IOERR;
            }
        };
        if self.scratch.len() < CHUNK {
            self.scratch.resize(CHUNK, 0);
        }
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK);
            let Some(buf) = self.scratch.get_mut(..n) else {
                return S_IOERR;
            };
            if let Err(e) = self.backend.read_at(buf, offset) {
                log::warn!("virtio-blk: reading {n} bytes at {offset}: {e}");
                self.stats.io_errors += 1;
                return S_IOERR;
            }
            if let Err(e) = data.write_all(buf) {
                log::warn!("virtio-blk: writing to the guest's buffers: {e}");
                self.stats.io_errors += 1;
                return S_IOERR;
            }
            self.stats.bytes_read += n as u64;
            offset += n as u64;
            left -= n;
        }
        S_OK
    }
}

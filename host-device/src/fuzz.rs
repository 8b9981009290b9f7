//! Drives a console behind its virtio-pci transport with arbitrary input: the body of the
//! cargo-fuzz target (`host-device/fuzz`), also run over pseudo-random inputs by a plain test
//! so every `cargo test` exercises it.
//!
//! The input is a script. It may bring the device up (feature negotiation and queue
//! programming with addresses and sizes it picks, sane or not), then runs operations: raw
//! writes to guest memory, descriptors and available-ring entries written where the queues
//! are, queue notifications, raw register and configuration-space accesses, host API calls,
//! hot-plug, and snapshot/restore (of the real snapshot, and of a damaged one). The only
//! check is that nothing panics, hangs or allocates without bound, and that a snapshot the
//! device wrote restores.

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::console::{Backend, Console, ConsoleConfig, PortConfig, PortHandler};
use crate::pci::VirtioPciDevice;
use crate::pci::driver::common_cfg::{
    DEVICE_STATUS as STATUS, DRIVER_FEATURE as FEATURE, DRIVER_FEATURE_SELECT as FEATURE_SELECT,
    QUEUE_DESC, QUEUE_ENABLE, QUEUE_SELECT, QUEUE_SIZE,
};
use crate::test_utils::{Desc, GuestQueue, PciDriver, RecordingSink};
use crate::virtio::InterruptSink;

/// Guest RAM the fuzzer works in.
const RAM: u64 = 0x1_0000;

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = start + n;
        &self.data[start..end]
    }
}

/// Takes a varying part of what it is offered.
struct Choosy(u8);
impl PortHandler for Choosy {
    fn have_data(&mut self, data: &[u8]) -> usize {
        self.0 = self.0.wrapping_mul(31).wrapping_add(7);
        data.len() * (self.0 as usize % 3) / 2
    }
}

fn console(max: u32) -> Console {
    let mut c = Console::new(ConsoleConfig {
        max_nr_ports: max,
        queue_size: 16,
        ..ConsoleConfig::default()
    })
    .expect("valid configuration");
    let _ = c.add_port(
        PortConfig::console("c").byte_limit(64),
        Backend::Handler(Box::new(Choosy(1))),
    );
    let _ = c.add_port(
        PortConfig::new("a").guest_byte_limit(100),
        Backend::Handler(Box::new(Choosy(2))),
    );
    let _ = c.add_port(PortConfig::new("b").cache_buffers(false), Backend::None);
    c
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut inp = Input { data, pos: 0 };
    let mem =
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM as usize)]).expect("guest RAM");
    let max = 1 + u32::from(inp.u8() % 4);
    // Only counted: a long run must not grow the sink.
    let sink: Arc<dyn InterruptSink> = Arc::new(RecordingSink::counting());
    let dev = VirtioPciDevice::new(console(max), mem.clone(), sink.clone(), 4);
    let mut drv = PciDriver::new(dev, mem.clone());
    let nqueues = 2 * (max as u16 + 1);
    let mut rings = vec![GuestQueue::default(); nqueues as usize];

    if inp.u8() & 1 == 1 {
        // Bring-up, with values from the input (raw writes: they need not be sane).
        drv.write_common(STATUS, &[1 | 2]);
        for sel in 0..2u32 {
            drv.write_common(FEATURE_SELECT, &sel.to_le_bytes());
            let f = if sel == 0 { 0x7 } else { 0x1 } & inp.u32() | inp.u8() as u32 & 0x2;
            drv.write_common(FEATURE, &f.to_le_bytes());
        }
        drv.write_common(STATUS, &[1 | 2 | 8]);
        for (q, ring) in rings.iter_mut().enumerate() {
            let size = 1u16 << (inp.u8() % 6);
            let desc = u64::from(inp.u16() & !0xf);
            let avail = u64::from(inp.u16() & !1);
            let used = u64::from(inp.u16() & !3);
            drv.write_common(QUEUE_SELECT, &(q as u16).to_le_bytes());
            drv.write_common(QUEUE_SIZE, &size.to_le_bytes());
            for (i, a) in [desc, avail, used].into_iter().enumerate() {
                let off = QUEUE_DESC + 8 * i as u64;
                drv.write_common(off, &(a as u32).to_le_bytes());
                drv.write_common(off + 4, &((a >> 32) as u32).to_le_bytes());
            }
            drv.write_common(QUEUE_ENABLE, &1u16.to_le_bytes());
            *ring = GuestQueue::new(size, desc, avail, used);
        }
        drv.write_common(STATUS, &[1 | 2 | 8 | 4]);
    }

    let mut ops = 0;
    while !inp.done() && ops < 4096 {
        ops += 1;
        let q = (inp.u8() as u16) % nqueues;
        let ring = &rings[q as usize];
        let dev = &mut drv.dev;
        match inp.u8() % 15 {
            0 => {
                let at = u64::from(inp.u16());
                let n = inp.u8() as usize;
                let bytes = inp.bytes(n).to_vec();
                let _ = mem.write_slice(&bytes, GuestAddress(at));
            }
            1 => {
                // A descriptor: addr, len, flags, next.
                let idx = inp.u16() % ring.size.max(1);
                let d = Desc {
                    addr: u64::from(inp.u16()),
                    len: u32::from(inp.u16()),
                    flags: u16::from(inp.u8() & 7),
                    next: inp.u16(),
                };
                let _ = ring.write_desc(&mem, idx, d);
            }
            2 => {
                // Publish a head in the available ring.
                let head = inp.u16() % ring.size.max(1);
                let _ = ring.publish(&mem, head);
            }
            3 => {
                let off = VirtioPciDevice::<Console>::notify_offset(q);
                dev.bar_write(off, &q.to_le_bytes());
            }
            4 => {
                let off = u64::from(inp.u16());
                let n = 1 << (inp.u8() % 4);
                let v = inp.bytes(n).to_vec();
                dev.bar_write(off, &v);
            }
            5 => {
                let off = u64::from(inp.u16());
                let mut b = vec![0u8; 1 << (inp.u8() % 4)];
                dev.bar_read(off, &mut b);
            }
            6 => {
                let off = u16::from(inp.u8());
                let n = 1 << (inp.u8() % 3);
                let v = inp.bytes(n).to_vec();
                dev.config_write(off, &v);
            }
            7 => {
                let id = u32::from(inp.u8() % 5);
                let c = dev.device_mut();
                let _ = if inp.u8() & 1 == 1 {
                    c.open(id)
                } else {
                    c.close(id)
                };
            }
            8 => {
                let id = u32::from(inp.u8() % 5);
                let n = inp.u16() as usize % 600;
                let bytes = inp.bytes(n).to_vec();
                let _ = dev.device_mut().write(id, &bytes);
            }
            9 => {
                let id = u32::from(inp.u8() % 5);
                let on = inp.u8() & 1 == 1;
                let _ = dev.device_mut().throttle(id, on);
            }
            10 => {
                let id = u32::from(inp.u8() % 5);
                let c = dev.device_mut();
                if inp.u8() & 1 == 1 {
                    let _ = c.remove_port(id);
                } else {
                    let name = format!("p{}", inp.u8());
                    let _ = c.add_port(
                        PortConfig::new(name).byte_limit(inp.u16() as usize),
                        Backend::Handler(Box::new(Choosy(3))),
                    );
                }
            }
            11 => {
                // Snapshot and restore onto a device with the same ports.
                let snap = dev.snapshot();
                let mut fresh = console(max);
                for p in dev.device().ports() {
                    if fresh.find_port(&p.config.name).is_none() {
                        let _ = fresh.add_port(p.config.clone(), Backend::None);
                    }
                }
                let layout = |c: &Console| {
                    c.ports()
                        .into_iter()
                        .map(|p| (p.id, p.config.name, p.config.console))
                        .collect::<Vec<_>>()
                };
                let same_ids = layout(&fresh) == layout(dev.device());
                match VirtioPciDevice::restore(fresh, mem.clone(), sink.clone(), &snap) {
                    Ok(d) => *dev = d,
                    Err(e) => assert!(!same_ids, "the device's own snapshot does not restore: {e}"),
                }
            }
            12 => {
                // A damaged snapshot must fail cleanly or restore something usable.
                let mut snap = dev.snapshot();
                if !snap.is_empty() {
                    let at = inp.u16() as usize % snap.len();
                    snap[at] ^= inp.u8() | 1;
                    let cut = snap.len() - inp.u8() as usize % snap.len().min(8);
                    snap.truncate(cut);
                }
                if let Ok(d) =
                    VirtioPciDevice::restore(console(max), mem.clone(), sink.clone(), &snap)
                {
                    *dev = d;
                }
            }
            13 => {
                dev.device_mut().poll_backends();
            }
            _ => {
                dev.queue_notify(q);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::run;

    /// The fuzz body over pseudo-random inputs, biased to bring the device up.
    #[test]
    fn random_scripts_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..3000 {
            let len = 16 + (round * 37) % 3000;
            let mut data = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.push((x >> 24) as u8);
            }
            data[1] |= 1;
            run(&data);
        }
    }

    /// Found by fuzzing (a timeout): a restored snapshot whose transmit queue's used ring lies
    /// over its available ring, so each chain returned made another available, and
    /// `process_tx` never ended. Each pass now takes at most a queue's worth of chains.
    #[test]
    fn a_used_ring_over_the_available_ring_does_not_loop() {
        let data = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/console-used-ring-over-avail-ring.bin"
        ));
        let started = std::time::Instant::now();
        run(data);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

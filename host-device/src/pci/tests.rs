//! Tests of the transport against a small fake device, driving it as a guest driver would.

use std::sync::{Arc, Mutex};

use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::*;
use crate::test_utils::RecordingSink;
use crate::virtio::{DeviceState, VIRTIO_F_VERSION_1};

const F_OTHER: u64 = 1 << 0;
const FEATURES: u64 = VIRTIO_F_VERSION_1 | F_OTHER | VIRTIO_RING_F_EVENT_IDX;

// Common configuration offsets.
const DEVICE_FEATURE_SELECT: u64 = 0x00;
const DEVICE_FEATURE: u64 = 0x04;
const DRIVER_FEATURE_SELECT: u64 = 0x08;
const DRIVER_FEATURE: u64 = 0x0c;
const CONFIG_MSIX_VECTOR: u64 = 0x10;
const NUM_QUEUES: u64 = 0x12;
const DEVICE_STATUS: u64 = 0x14;
const CONFIG_GENERATION: u64 = 0x15;
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_SIZE: u64 = 0x18;
const QUEUE_MSIX_VECTOR: u64 = 0x1a;
const QUEUE_ENABLE: u64 = 0x1c;
const QUEUE_NOTIFY_OFF: u64 = 0x1e;
const QUEUE_DESC: u64 = 0x20;
const QUEUE_DRIVER: u64 = 0x28;
const QUEUE_DEVICE: u64 = 0x30;

#[derive(Default)]
struct Log {
    notifies: Vec<u16>,
    activations: u32,
    resets: u32,
    acked: u64,
    restored: Option<(Vec<u8>, bool)>,
}

struct Fake {
    kind: u32,
    features: u64,
    max_sizes: Vec<u16>,
    config: [u8; 8],
    queues: Vec<Queue>,
    irq: Option<Arc<dyn VirtioInterrupt>>,
    fail_activate: bool,
    log: Arc<Mutex<Log>>,
}

impl Fake {
    fn new() -> (Self, Arc<Mutex<Log>>) {
        let log = Arc::new(Mutex::new(Log::default()));
        let fake = Fake {
            kind: 3,
            features: FEATURES,
            max_sizes: vec![256, 64],
            config: [1, 2, 3, 4, 5, 6, 7, 8],
            queues: Vec::new(),
            irq: None,
            fail_activate: false,
            log: log.clone(),
        };
        (fake, log)
    }

    fn irq(&self) -> Arc<dyn VirtioInterrupt> {
        self.irq.clone().expect("device not active")
    }
}

impl VirtioDevice for Fake {
    fn device_type(&self) -> u32 {
        self.kind
    }
    fn device_features(&self) -> u64 {
        self.features
    }
    fn queue_max_sizes(&self) -> Vec<u16> {
        self.max_sizes.clone()
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| self.config.get(o))
                .copied()
                .unwrap_or(0);
        }
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            if let Some(c) = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| self.config.get_mut(o))
            {
                *c = b;
            }
        }
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        if self.fail_activate {
            return Err(ActivateError::BadQueue(0));
        }
        let mut log = self.log.lock().unwrap();
        log.activations += 1;
        log.acked = ctx.acked_features;
        self.queues = ctx.queues;
        self.irq = Some(ctx.interrupt);
        Ok(())
    }
    fn reset(&mut self) {
        self.queues.clear();
        self.irq = None;
        self.log.lock().unwrap().resets += 1;
    }
    fn queue_notify(&mut self, queue: u16) {
        self.log.lock().unwrap().notifies.push(queue);
    }
    fn save(&self) -> DeviceState {
        DeviceState {
            queues: self.queues.iter().map(Queue::state).collect(),
            blob: self.config.to_vec(),
        }
    }
    fn restore(&mut self, blob: &[u8], ctx: Option<ActivateContext>) -> Result<(), ActivateError> {
        self.config = blob
            .try_into()
            .map_err(|_| ActivateError::BadState("blob".into()))?;
        self.log.lock().unwrap().restored = Some((blob.to_vec(), ctx.is_some()));
        if let Some(ctx) = ctx {
            self.queues = ctx.queues;
            self.irq = Some(ctx.interrupt);
        }
        Ok(())
    }
}

/// The VMM's side of interrupts.
type Sink = RecordingSink;

type Dev = VirtioPciDevice<Fake>;

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
}

fn setup(vectors: u16) -> (Dev, Arc<Sink>, Arc<Mutex<Log>>) {
    let (fake, log) = Fake::new();
    let sink = Arc::new(Sink::default());
    (Dev::new(fake, mem(), sink.clone(), vectors), sink, log)
}

fn w8(d: &mut Dev, off: u64, v: u8) {
    d.bar_write(off, &[v]);
}
fn w16(d: &mut Dev, off: u64, v: u16) {
    d.bar_write(off, &v.to_le_bytes());
}
fn w32(d: &mut Dev, off: u64, v: u32) {
    d.bar_write(off, &v.to_le_bytes());
}
fn r8(d: &mut Dev, off: u64) -> u8 {
    let mut b = [0u8; 1];
    d.bar_read(off, &mut b);
    b[0]
}
fn r16(d: &mut Dev, off: u64) -> u16 {
    let mut b = [0u8; 2];
    d.bar_read(off, &mut b);
    u16::from_le_bytes(b)
}
fn r32(d: &mut Dev, off: u64) -> u32 {
    let mut b = [0u8; 4];
    d.bar_read(off, &mut b);
    u32::from_le_bytes(b)
}
fn c8(d: &Dev, off: u16) -> u8 {
    let mut b = [0u8; 1];
    d.config_read(off, &mut b);
    b[0]
}
fn c16(d: &Dev, off: u16) -> u16 {
    let mut b = [0u8; 2];
    d.config_read(off, &mut b);
    u16::from_le_bytes(b)
}
fn c32(d: &Dev, off: u16) -> u32 {
    let mut b = [0u8; 4];
    d.config_read(off, &mut b);
    u32::from_le_bytes(b)
}
fn cw16(d: &mut Dev, off: u16, v: u16) {
    d.config_write(off, &v.to_le_bytes());
}
fn cw32(d: &mut Dev, off: u16, v: u32) {
    d.config_write(off, &v.to_le_bytes());
}

fn write_features(d: &mut Dev, features: u64) {
    w32(d, DRIVER_FEATURE_SELECT, 0);
    w32(d, DRIVER_FEATURE, features as u32);
    w32(d, DRIVER_FEATURE_SELECT, 1);
    w32(d, DRIVER_FEATURE, (features >> 32) as u32);
}

fn negotiate(d: &mut Dev, features: u64) -> bool {
    w8(d, DEVICE_STATUS, status::ACKNOWLEDGE);
    w8(d, DEVICE_STATUS, status::ACKNOWLEDGE | status::DRIVER);
    write_features(d, features);
    w8(
        d,
        DEVICE_STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    r8(d, DEVICE_STATUS) & status::FEATURES_OK != 0
}

/// Queue `q` at `base`: descriptors, then the available ring, then the used ring.
fn program_queue(d: &mut Dev, q: u16, size: u16, base: u64) {
    let avail = base + 16 * u64::from(size);
    let used = (avail + 6 + 2 * u64::from(size)).next_multiple_of(4);
    w16(d, QUEUE_SELECT, q);
    w16(d, QUEUE_SIZE, size);
    w32(d, QUEUE_DESC, base as u32);
    w32(d, QUEUE_DESC + 4, (base >> 32) as u32);
    w32(d, QUEUE_DRIVER, avail as u32);
    w32(d, QUEUE_DRIVER + 4, 0);
    w32(d, QUEUE_DEVICE, used as u32);
    w32(d, QUEUE_DEVICE + 4, 0);
    w16(d, QUEUE_ENABLE, 1);
}

fn driver_ok(d: &mut Dev) {
    let s = r8(d, DEVICE_STATUS);
    w8(d, DEVICE_STATUS, s | status::DRIVER_OK);
}

/// Negotiates, programs both queues and sets DRIVER_OK.
fn bring_up(d: &mut Dev) {
    assert!(negotiate(d, FEATURES));
    program_queue(d, 0, 128, 0x1_0000);
    program_queue(d, 1, 64, 0x2_0000);
    driver_ok(d);
}

/// Enables MSI-X and programs entry `v` with address `0xfee0_0000 + v` and data `0x40 + v`.
fn enable_msix(d: &mut Dev, entries: u16) {
    let control = c16(d, config::MSIX_CONTROL as u16);
    cw16(
        d,
        config::MSIX_CONTROL as u16,
        control | config::MSIX_ENABLE,
    );
    for v in 0..entries {
        let base = MSIX_TABLE_OFFSET + u64::from(v) * 16;
        w32(d, base, 0xfee0_0000 + u32::from(v));
        w32(d, base + 4, 0);
        w32(d, base + 8, 0x40 + u32::from(v));
        w32(d, base + 12, 0);
    }
}

#[test]
fn header_and_bar_sizing() {
    let (mut d, _, _) = setup(4);
    assert_eq!(c16(&d, 0x00), 0x1af4);
    assert_eq!(c16(&d, 0x02), 0x1043);
    assert_eq!(c8(&d, 0x08), 1);
    assert_eq!(c32(&d, 0x08) >> 8, 0x07_80_00);
    assert_eq!(c8(&d, 0x0e), 0);
    assert_eq!(c16(&d, 0x2c), 0x1af4);
    assert_eq!(c16(&d, 0x2e), 0x1100);
    assert_eq!(c8(&d, 0x3d), 1);
    assert_ne!(c16(&d, 0x06) & config::STATUS_CAP_LIST, 0);
    // Read-only fields stay.
    cw32(&mut d, 0x00, 0);
    assert_eq!(c32(&d, 0x00), 0x1043_1af4);
    // Beyond the space: all ones; straddling: the in-range part is real.
    assert_eq!(c32(&d, 0x100), 0xffff_ffff);
    assert_eq!(c32(&d, 0xfe), 0xffff_0000);

    assert_eq!(d.bar_address(), None);
    assert_eq!(c32(&d, 0x10), 0x4, "64-bit non-prefetchable memory BAR");
    cw32(&mut d, 0x10, 0xffff_ffff);
    cw32(&mut d, 0x14, 0xffff_ffff);
    let size_lo = c32(&d, 0x10);
    let size_hi = c32(&d, 0x14);
    let mask = (u64::from(size_hi) << 32) | u64::from(size_lo & !0xf);
    assert_eq!(!mask + 1, Dev::bar_size());
    assert_eq!(size_lo & 0xf, 0x4);
    assert!(Dev::bar_size().is_power_of_two() && Dev::bar_size() >= 4096);
    cw32(&mut d, 0x10, 0xfe00_0000);
    cw32(&mut d, 0x14, 0x1);
    assert_eq!(d.bar_address(), Some(0x1_fe00_0000));
    d.set_bar_address(0xc000_1234);
    assert_eq!(d.bar_address(), Some(0xc000_0000));
    cw32(&mut d, 0x10, 0);
    cw32(&mut d, 0x14, 0);
    assert_eq!(d.bar_address(), None);
    // Other BARs and the ROM BAR are not implemented.
    for bar in (0x18..=0x24).step_by(4).chain([0x30]) {
        cw32(&mut d, bar, 0xffff_ffff);
        assert_eq!(c32(&d, bar), 0, "BAR at {bar:#x}");
    }
    // Command: only memory, bus master and INTx disable stick.
    cw16(&mut d, 0x04, 0xffff);
    assert_eq!(c16(&d, 0x04), 0x0406);
}

/// Walks the capability list: (id, config offset) pairs.
fn caps(d: &Dev) -> Vec<(u8, u16)> {
    let mut out = Vec::new();
    let mut p = u16::from(c8(d, 0x34));
    while p != 0 && out.len() < 48 {
        out.push((c8(d, p), p));
        p = u16::from(c8(d, p + 1));
    }
    out
}

#[test]
fn capability_walk() {
    let (d, _, _) = setup(5);
    let list = caps(&d);
    assert_eq!(list[0].0, config::CAP_ID_MSIX);
    let msix = list[0].1;
    assert_eq!(c16(&d, msix + 2) & 0x7ff, 4, "table size - 1");
    assert_eq!(c32(&d, msix + 4), MSIX_TABLE_OFFSET as u32);
    assert_eq!(c32(&d, msix + 8), MSIX_PBA_OFFSET as u32);

    let mut found = std::collections::BTreeMap::new();
    for &(id, at) in &list[1..] {
        assert_eq!(id, config::CAP_ID_VNDR);
        assert_eq!(at % 4, 0);
        let cfg_type = c8(&d, at + 3);
        assert_eq!(c8(&d, at + 4), 0, "BAR0");
        let offset = u64::from(c32(&d, at + 8));
        let length = u64::from(c32(&d, at + 12));
        if cfg_type != config::VIRTIO_PCI_CAP_PCI_CFG {
            assert!(offset + length <= Dev::bar_size());
            assert!(length > 0);
        }
        found.insert(cfg_type, (at, offset, length));
    }
    let keys: Vec<u8> = found.keys().copied().collect();
    assert_eq!(keys, vec![1, 2, 3, 4, 5]);
    assert_eq!(found[&1].1, COMMON_OFFSET);
    assert!(found[&1].2 >= 0x38);
    let (notify_at, notify_off, notify_len) = found[&2];
    assert_eq!(c8(&d, notify_at + 2), 20);
    assert_eq!(c32(&d, notify_at + 16), 4, "notify_off_multiplier");
    assert_eq!(notify_off, Dev::notify_offset(0));
    assert_eq!(notify_len, 8);
    assert_eq!(Dev::notify_offset(1), notify_off + 4);
    assert_eq!(found[&3].1, ISR_OFFSET);
    assert_eq!(found[&4].1, DEVICE_OFFSET);

    // Without vectors there is no MSI-X capability.
    let (d, _, _) = setup(0);
    let list = caps(&d);
    assert!(list.iter().all(|&(id, _)| id == config::CAP_ID_VNDR));
    assert_eq!(list.len(), 5);
}

#[test]
fn feature_negotiation() {
    let (mut d, _, log) = setup(0);
    w32(&mut d, DEVICE_FEATURE_SELECT, 0);
    assert_eq!(r32(&mut d, DEVICE_FEATURE), FEATURES as u32);
    w32(&mut d, DEVICE_FEATURE_SELECT, 1);
    assert_eq!(r32(&mut d, DEVICE_FEATURE), (FEATURES >> 32) as u32);
    w32(&mut d, DEVICE_FEATURE_SELECT, 7);
    assert_eq!(r32(&mut d, DEVICE_FEATURE), 0);

    // A feature the device did not offer: masked on read-back, FEATURES_OK refused.
    assert!(!negotiate(&mut d, FEATURES | 1 << 5));
    w32(&mut d, DRIVER_FEATURE_SELECT, 0);
    assert_eq!(r32(&mut d, DRIVER_FEATURE), FEATURES as u32);
    // Without VERSION_1: refused.
    assert!(!negotiate(&mut d, F_OTHER));
    // A valid subset sticks, and the features freeze.
    assert!(negotiate(&mut d, VIRTIO_F_VERSION_1 | F_OTHER));
    write_features(&mut d, FEATURES);
    w32(&mut d, DRIVER_FEATURE_SELECT, 1);
    assert_eq!(r32(&mut d, DRIVER_FEATURE), 1);
    w32(&mut d, DRIVER_FEATURE_SELECT, 0);
    assert_eq!(r32(&mut d, DRIVER_FEATURE), F_OTHER as u32);
    w8(&mut d, DEVICE_STATUS, 0);
    assert_eq!(r8(&mut d, DEVICE_STATUS), 0);
    assert!(negotiate(&mut d, FEATURES));
    program_queue(&mut d, 0, 128, 0x1_0000);
    driver_ok(&mut d);
    assert_eq!(log.lock().unwrap().acked, FEATURES);
    assert!(d.device().queues[0].event_idx_enabled());
}

#[test]
fn queue_programming_and_activation() {
    let (mut d, _, log) = setup(0);
    assert_eq!(r16(&mut d, NUM_QUEUES), 2);
    assert!(negotiate(&mut d, FEATURES));
    w16(&mut d, QUEUE_SELECT, 1);
    assert_eq!(r16(&mut d, QUEUE_SIZE), 64);
    assert_eq!(r16(&mut d, QUEUE_NOTIFY_OFF), 1);
    w16(&mut d, QUEUE_SIZE, 48); // not a power of two
    assert_eq!(r16(&mut d, QUEUE_SIZE), 64);
    w16(&mut d, QUEUE_SIZE, 128); // larger than the maximum
    assert_eq!(r16(&mut d, QUEUE_SIZE), 64);
    w16(&mut d, QUEUE_SIZE, 0);
    assert_eq!(r16(&mut d, QUEUE_SIZE), 64);
    w16(&mut d, QUEUE_SIZE, 32);
    assert_eq!(r16(&mut d, QUEUE_SIZE), 32);
    // Out-of-range select: size 0, writes ignored.
    w16(&mut d, QUEUE_SELECT, 2);
    assert_eq!(r16(&mut d, QUEUE_SIZE), 0);
    w16(&mut d, QUEUE_SIZE, 16);
    w16(&mut d, QUEUE_ENABLE, 1);
    assert_eq!(r16(&mut d, QUEUE_SIZE), 0);
    assert_eq!(r16(&mut d, QUEUE_ENABLE), 0);
    assert_eq!(r16(&mut d, QUEUE_MSIX_VECTOR), 0xffff);

    program_queue(&mut d, 0, 128, 0x1_0000);
    w16(&mut d, QUEUE_SELECT, 0);
    let mut b = [0u8; 8];
    d.bar_read(QUEUE_DESC, &mut b);
    assert_eq!(u64::from_le_bytes(b), 0x1_0000);
    assert_eq!(r32(&mut d, QUEUE_DRIVER), 0x1_0000 + 16 * 128);
    assert_eq!(r16(&mut d, QUEUE_ENABLE), 1);
    // An enabled queue can no longer be reprogrammed.
    w16(&mut d, QUEUE_SIZE, 16);
    w32(&mut d, QUEUE_DESC, 0x5000);
    assert_eq!(r16(&mut d, QUEUE_SIZE), 128);
    assert_eq!(r32(&mut d, QUEUE_DESC), 0x1_0000);
    // Badly sized accesses: read zero, write nothing.
    assert_eq!(r32(&mut d, QUEUE_SIZE), 0);
    w32(&mut d, QUEUE_SELECT, 1);
    assert_eq!(r16(&mut d, QUEUE_SELECT), 0);

    assert_eq!(log.lock().unwrap().activations, 0);
    driver_ok(&mut d);
    assert_eq!(log.lock().unwrap().activations, 1);
    let s = r8(&mut d, DEVICE_STATUS);
    assert_eq!(s & status::DEVICE_NEEDS_RESET, 0);
    let queues = &d.device().queues;
    assert_eq!(queues.len(), 2);
    assert!(queues[0].ready());
    assert_eq!(queues[0].size(), 128);
    assert_eq!(queues[0].desc_table(), 0x1_0000);
    assert_eq!(queues[0].avail_ring(), 0x1_0000 + 16 * 128);
    assert!(queues[0].is_valid(&mem()));
    assert!(!queues[1].ready(), "queue 1 was not enabled");
    // After DRIVER_OK nothing about the queues changes.
    w16(&mut d, QUEUE_SELECT, 1);
    w16(&mut d, QUEUE_ENABLE, 1);
    assert_eq!(r16(&mut d, QUEUE_ENABLE), 0);
}

#[test]
fn activation_failures_need_reset() {
    // The device refuses.
    let (mut d, sink, log) = setup(0);
    d.device_mut().fail_activate = true;
    bring_up(&mut d);
    let s = r8(&mut d, DEVICE_STATUS);
    assert_ne!(s & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(d.interrupt_status() & 2, 2, "config change interrupt");
    assert!(sink.intx_level());
    d.queue_notify(0);
    assert!(log.lock().unwrap().notifies.is_empty());

    // A misaligned ring.
    let (mut d, _, log) = setup(0);
    assert!(negotiate(&mut d, FEATURES));
    program_queue(&mut d, 0, 128, 0x1_0008);
    driver_ok(&mut d);
    assert_ne!(r8(&mut d, DEVICE_STATUS) & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(log.lock().unwrap().activations, 0);

    // DRIVER_OK without FEATURES_OK.
    let (mut d, _, log) = setup(0);
    w8(&mut d, DEVICE_STATUS, status::ACKNOWLEDGE | status::DRIVER);
    driver_ok(&mut d);
    assert_ne!(r8(&mut d, DEVICE_STATUS) & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(log.lock().unwrap().activations, 0);
}

#[test]
fn notify_dispatch() {
    let (mut d, _, log) = setup(0);
    w16(&mut d, Dev::notify_offset(0), 0);
    d.queue_notify(0);
    assert!(log.lock().unwrap().notifies.is_empty(), "before DRIVER_OK");
    bring_up(&mut d);
    w16(&mut d, Dev::notify_offset(1), 1);
    w32(&mut d, Dev::notify_offset(0), 0);
    d.queue_notify(1);
    d.queue_notify(2); // no such queue
    w16(&mut d, Dev::notify_offset(2), 2);
    w16(&mut d, Dev::notify_offset(0) + 2, 0); // not a notify address
    w16(&mut d, Dev::notify_offset(1000), 0);
    let mut b = [0xffu8; 2];
    d.bar_read(Dev::notify_offset(0), &mut b);
    assert_eq!(b, [0, 0]);
    assert_eq!(log.lock().unwrap().notifies, vec![1, 0, 1]);
}

#[test]
fn device_config_and_generation() {
    let (mut d, _, _) = setup(0);
    assert_eq!(r32(&mut d, DEVICE_OFFSET), 0x0403_0201);
    assert_eq!(r8(&mut d, DEVICE_OFFSET + 7), 8);
    assert_eq!(r8(&mut d, DEVICE_OFFSET + 100), 0);
    let g = r8(&mut d, CONFIG_GENERATION);
    w16(&mut d, DEVICE_OFFSET + 2, 0xbeef);
    assert_eq!(d.device().config[2..4], [0xef, 0xbe]);
    assert_ne!(r8(&mut d, CONFIG_GENERATION), g);
    // Straddling the end of the region: ignored.
    w32(&mut d, DEVICE_OFFSET + DEVICE_LEN - 2, 0);
}

#[test]
fn msix_delivery_mask_pending_unmask() {
    let (mut d, sink, _) = setup(4);
    bring_up(&mut d);
    enable_msix(&mut d, 4);
    assert!(sink.take_msis().is_empty());
    w16(&mut d, CONFIG_MSIX_VECTOR, 0);
    assert_eq!(r16(&mut d, CONFIG_MSIX_VECTOR), 0);
    w16(&mut d, QUEUE_SELECT, 0);
    w16(&mut d, QUEUE_MSIX_VECTOR, 1);
    assert_eq!(r16(&mut d, QUEUE_MSIX_VECTOR), 1);
    w16(&mut d, QUEUE_SELECT, 1);
    w16(&mut d, QUEUE_MSIX_VECTOR, 4); // beyond the table
    assert_eq!(r16(&mut d, QUEUE_MSIX_VECTOR), 0xffff);
    w16(&mut d, CONFIG_MSIX_VECTOR, 0x7ff);
    assert_eq!(r16(&mut d, CONFIG_MSIX_VECTOR), 0xffff);
    w16(&mut d, CONFIG_MSIX_VECTOR, 3);

    let irq = d.device().irq();
    irq.signal_queue(0);
    assert_eq!(sink.take_msis(), vec![(0xfee0_0001, 0x41)]);
    irq.signal_queue(1); // NO_VECTOR
    irq.signal_queue(9); // no such queue
    assert!(sink.take_msis().is_empty());
    assert_eq!(d.interrupt_status(), 0, "MSI-X does not use ISR bit 0");
    irq.signal_config();
    assert_eq!(sink.take_msis(), vec![(0xfee0_0003, 0x43)]);
    assert!(!sink.intx_level());

    // Mask entry 1: the interrupt is held in the PBA until unmasked.
    let ctrl1 = MSIX_TABLE_OFFSET + 16 + 12;
    w32(&mut d, ctrl1, 1);
    irq.signal_queue(0);
    assert!(sink.take_msis().is_empty());
    assert_eq!(r32(&mut d, MSIX_PBA_OFFSET), 0b10);
    w32(&mut d, MSIX_PBA_OFFSET, 0); // read-only
    assert_eq!(r32(&mut d, MSIX_PBA_OFFSET), 0b10);
    w32(&mut d, ctrl1, 0);
    assert_eq!(sink.take_msis(), vec![(0xfee0_0001, 0x41)]);
    assert_eq!(r32(&mut d, MSIX_PBA_OFFSET), 0);

    // The function mask holds everything.
    let control = config::MSIX_CONTROL as u16;
    let c = c16(&d, control);
    cw16(&mut d, control, c | config::MSIX_FUNCTION_MASK);
    irq.signal_queue(0);
    irq.signal_config();
    assert!(sink.take_msis().is_empty());
    assert_eq!(r32(&mut d, MSIX_PBA_OFFSET), 0b1010);
    cw16(&mut d, control, c);
    assert_eq!(
        sink.take_msis(),
        vec![(0xfee0_0001, 0x41), (0xfee0_0003, 0x43)]
    );

    // Table entries read back; entries of a fresh table start masked.
    assert_eq!(r32(&mut d, MSIX_TABLE_OFFSET + 8), 0x40);
    let (mut fresh, _, _) = setup(4);
    assert_eq!(r32(&mut fresh, MSIX_TABLE_OFFSET + 12), 1);
    assert_eq!(
        fresh.irq.msix_entry(3),
        Some(msix::MsixEntry {
            addr: 0,
            data: 0,
            masked: true
        })
    );
}

#[test]
fn intx_and_isr_clear() {
    let (mut d, sink, _) = setup(2);
    bring_up(&mut d);
    let irq = d.device().irq();
    irq.signal_queue(0);
    assert_eq!(d.interrupt_status(), 1);
    assert!(sink.intx_level());
    assert_ne!(c16(&d, 0x06) & config::STATUS_INTERRUPT, 0);
    irq.signal_config();
    assert_eq!(r8(&mut d, ISR_OFFSET), 3);
    assert_eq!(d.interrupt_status(), 0);
    assert!(!sink.intx_level());
    assert_eq!(c16(&d, 0x06) & config::STATUS_INTERRUPT, 0);
    assert_eq!(r8(&mut d, ISR_OFFSET), 0);

    // INTx disable: the ISR is still set, the line stays low until re-enabled.
    cw16(&mut d, 0x04, config::COMMAND_INTX_DISABLE);
    irq.signal_queue(1);
    assert_eq!(d.interrupt_status(), 1);
    assert!(!sink.intx_level());
    cw16(&mut d, 0x04, 0);
    assert!(sink.intx_level());
    // Enabling MSI-X takes the line down.
    enable_msix(&mut d, 0);
    assert!(!sink.intx_level());
    assert_eq!(sink.take_intx(), vec![true, false, true, false]);
}

#[test]
fn reset_returns_to_defaults() {
    let (mut d, sink, log) = setup(2);
    bring_up(&mut d);
    w16(&mut d, QUEUE_SELECT, 1);
    w16(&mut d, QUEUE_MSIX_VECTOR, 1);
    d.device().irq().signal_queue(1);
    assert!(sink.intx_level());
    w8(&mut d, DEVICE_STATUS, 0);
    assert_eq!(log.lock().unwrap().resets, 1);
    assert!(d.device().queues.is_empty());
    assert_eq!(r8(&mut d, DEVICE_STATUS), 0);
    assert_eq!(d.interrupt_status(), 0);
    assert!(!sink.intx_level());
    assert_eq!(r16(&mut d, QUEUE_SELECT), 0);
    for q in 0..2u16 {
        w16(&mut d, QUEUE_SELECT, q);
        assert_eq!(r16(&mut d, QUEUE_SIZE), [256, 64][usize::from(q)]);
        assert_eq!(r16(&mut d, QUEUE_ENABLE), 0);
        assert_eq!(r32(&mut d, QUEUE_DESC), 0);
        assert_eq!(r16(&mut d, QUEUE_MSIX_VECTOR), 0xffff);
    }
    assert_eq!(r16(&mut d, CONFIG_MSIX_VECTOR), 0xffff);
    w32(&mut d, DRIVER_FEATURE_SELECT, 1);
    assert_eq!(r32(&mut d, DRIVER_FEATURE), 0);
    d.queue_notify(0);
    assert!(log.lock().unwrap().notifies.is_empty());
    // And the device comes up again.
    bring_up(&mut d);
    assert_eq!(log.lock().unwrap().activations, 2);
}

#[test]
fn pci_cfg_capability_window() {
    let (mut d, _, _) = setup(0);
    let at = config::PCI_CFG_CAP as u16;
    d.config_write(at + 4, &[0]); // BAR0
    cw32(&mut d, at + 8, NUM_QUEUES as u32);
    cw32(&mut d, at + 12, 2);
    assert_eq!(c16(&d, at + 16), 2);
    cw32(&mut d, at + 8, DEVICE_STATUS as u32);
    cw32(&mut d, at + 12, 1);
    d.config_write(at + 16, &[status::ACKNOWLEDGE]);
    assert_eq!(r8(&mut d, DEVICE_STATUS), status::ACKNOWLEDGE);
    // Invalid lengths and BARs do nothing.
    cw32(&mut d, at + 12, 3);
    d.config_write(at + 16, &[0]);
    d.config_write(at + 4, &[5]);
    cw32(&mut d, at + 12, 1);
    d.config_write(at + 16, &[0]);
    assert_eq!(r8(&mut d, DEVICE_STATUS), status::ACKNOWLEDGE);
}

/// A transport in a state every part of the snapshot sees: active, MSI-X on with a masked
/// vector pending, vectors for a queue and for configuration changes, device configuration
/// written, queue positions moved, memory decoding on at a placed BAR.
fn snapshot_state() -> (Dev, Arc<Sink>) {
    let (mut d, sink, _) = setup(4);
    bring_up(&mut d);
    enable_msix(&mut d, 4);
    w16(&mut d, QUEUE_SELECT, 0);
    w16(&mut d, QUEUE_MSIX_VECTOR, 2);
    w16(&mut d, CONFIG_MSIX_VECTOR, 1);
    w32(&mut d, MSIX_TABLE_OFFSET + 16 * 2 + 12, 1); // mask vector 2
    d.device().irq().signal_queue(0); // pending
    w8(&mut d, DEVICE_OFFSET, 0x99);
    d.device_mut().queues[0].set_next_avail(5);
    d.device_mut().queues[0].set_next_used(3);
    cw16(
        &mut d,
        0x04,
        config::COMMAND_MEMORY | config::COMMAND_BUS_MASTER,
    );
    d.set_bar_address(0xfebf_0000);
    (d, sink)
}

/// A snapshot of [`snapshot_state`] written by the version 1 format (the field-by-field one
/// in `state.rs` at the time this file was made): later formats must still restore it.
const SNAPSHOT_V1: &[u8] = include_bytes!("snapshot-v1.bin");

/// The version 1 bytes restore to the state they were taken of.
#[test]
fn snapshot_v1_golden_bytes_restore() {
    let (d, _) = snapshot_state();
    let (fake, _) = Fake::new();
    let r = Dev::restore(fake, mem(), Arc::new(Sink::default()), SNAPSHOT_V1).unwrap();
    assert_eq!(r.snapshot(), d.snapshot());
    assert_eq!(r.bar_address(), Some(0xfebf_0000));
}

/// [`snapshot_state`] in the version 2 format (postcard).
const SNAPSHOT_V2: &[u8] = include_bytes!("snapshot-v2.bin");

/// What is saved now is version 2, byte for byte as pinned (a change here is a format change:
/// bump the version and keep reading the old one). See
/// [`crate::test_utils::assert_golden`] to rewrite it.
#[test]
fn snapshot_v2_golden_bytes_are_current() {
    let (d, _) = snapshot_state();
    let snap = d.snapshot();
    crate::test_utils::assert_golden(&snap, SNAPSHOT_V2, "src/pci/snapshot-v2.bin");
}

#[test]
fn snapshot_restore_round_trip() {
    let (d, sink) = snapshot_state();
    let snap = d.snapshot();
    assert_eq!(&snap[..4], b"VPCI");
    assert!(sink.take_msis().is_empty());

    let (fake, log) = Fake::new();
    let sink2 = Arc::new(Sink::default());
    let mut r = Dev::restore(fake, mem(), sink2.clone(), &snap).unwrap();
    assert_eq!(r.snapshot(), snap);
    assert!(log.lock().unwrap().restored.as_ref().unwrap().1);
    assert_eq!(r.device().config[0], 0x99);
    let q = &r.device().queues[0];
    assert!(q.ready());
    assert_eq!(q.next_avail(), 5);
    assert_eq!(q.next_used(), 3);
    assert_eq!(q.size(), 128);
    assert_eq!(r.bar_address(), Some(0xfebf_0000));
    assert_eq!(r16(&mut r, QUEUE_MSIX_VECTOR), 2);
    // The restored transport is live: notifies reach the device, the pending vector fires on
    // unmask, and new interrupts go out through the new sink.
    r.queue_notify(1);
    assert_eq!(log.lock().unwrap().notifies, vec![1]);
    w32(&mut r, MSIX_TABLE_OFFSET + 16 * 2 + 12, 0);
    assert_eq!(sink2.take_msis(), vec![(0xfee0_0002, 0x42)]);
    r.device().irq().signal_config();
    assert_eq!(sink2.take_msis(), vec![(0xfee0_0001, 0x41)]);
    assert!(sink.take_msis().is_empty());

    // Before DRIVER_OK: restore without a context; an asserted INTx is re-asserted.
    let (mut d, _, _) = setup(0);
    assert!(negotiate(&mut d, FEATURES));
    program_queue(&mut d, 0, 32, 0x1_0000);
    d.irq.signal_config();
    let snap = d.snapshot();
    let (fake, log) = Fake::new();
    let sink3 = Arc::new(Sink::default());
    let mut r = Dev::restore(fake, mem(), sink3.clone(), &snap).unwrap();
    assert!(!log.lock().unwrap().restored.as_ref().unwrap().1);
    assert!(sink3.intx_level());
    assert_eq!(r.snapshot(), snap);
    driver_ok(&mut r);
    assert_eq!(log.lock().unwrap().activations, 1);
    assert_eq!(r.device().queues[0].size(), 32);
}

#[test]
fn hostile_snapshots_are_errors() {
    let (mut d, _, _) = setup(3);
    bring_up(&mut d);
    let snap = d.snapshot();
    for len in 0..snap.len() {
        let (fake, _) = Fake::new();
        assert!(
            Dev::restore(fake, mem(), Arc::new(Sink::default()), &snap[..len]).is_err(),
            "truncated at {len}"
        );
    }
    let mut rng = Rng(0x1234_5678);
    for _ in 0..2000 {
        let mut bad = snap.clone();
        let i = rng.below(bad.len() as u64) as usize;
        bad[i] ^= 1 << rng.below(8);
        let (fake, _) = Fake::new();
        let _ = Dev::restore(fake, mem(), Arc::new(Sink::default()), &bad);
    }
    // A device with other queues, or of another type.
    let (mut fake, _) = Fake::new();
    fake.max_sizes = vec![256, 64, 64];
    assert!(matches!(
        Dev::restore(fake, mem(), Arc::new(Sink::default()), &snap),
        Err(PciError::Snapshot(_))
    ));
    let (mut fake, _) = Fake::new();
    fake.kind = 2;
    assert!(matches!(
        Dev::restore(fake, mem(), Arc::new(Sink::default()), &snap),
        Err(PciError::DeviceType {
            found: 3,
            expected: 2
        })
    ));
}

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn random_accesses_never_panic() {
    let mut live = 0;
    for vectors in [0u16, 1, 3, 64, 65, 2048, u16::MAX] {
        let (mut d, _, log) = setup(vectors);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(vectors));
        let mut buf = [0u8; 16];
        for i in 0..20_000u32 {
            if i % 1000 == 0 {
                // Snapshot whatever state the guest drove the transport into: it restores
                // exactly. Then, half the time, start over from a live device so that the
                // random accesses also hit an active one.
                let snap = d.snapshot();
                let (fake, _) = Fake::new();
                let r = Dev::restore(fake, mem(), Arc::new(Sink::default()), &snap).unwrap();
                assert_eq!(r.snapshot(), snap);
                if rng.below(2) == 0 {
                    w8(&mut d, DEVICE_STATUS, 0);
                    bring_up(&mut d);
                    enable_msix(&mut d, vectors.min(8));
                    live += 1;
                }
            }
            let len = [0, 1, 2, 3, 4, 8, 16][rng.below(7) as usize];
            for b in &mut buf[..len] {
                *b = rng.next() as u8;
            }
            match rng.below(9) {
                0 => d.config_write(rng.next() as u16, &buf[..len]),
                1 => d.config_write(rng.below(0x100) as u16, &buf[..len]),
                2 => d.config_read(rng.next() as u16, &mut buf[..len]),
                3 => d.bar_write(rng.below(Dev::bar_size() + 16), &buf[..len]),
                4 => {
                    // The common configuration, with interesting values; the status
                    // register only rarely (writing it tends to reset the device).
                    let mut off = rng.below(0x40);
                    if off == DEVICE_STATUS && rng.below(8) != 0 {
                        off = QUEUE_SELECT;
                    }
                    let v = [0u8, 1, 2, 0xff, 0x80][rng.below(5) as usize];
                    buf[..len].fill(v);
                    d.bar_write(off, &buf[..len]);
                }
                5 => d.bar_read(rng.next(), &mut buf[..len]),
                6 => d.bar_read(rng.below(Dev::bar_size()), &mut buf[..len]),
                7 => {
                    let off = MSIX_TABLE_OFFSET + rng.below(0x300);
                    d.bar_write(off, &buf[..len]);
                }
                _ => {
                    d.queue_notify(rng.below(4) as u16);
                    d.bar_write(Dev::notify_offset(rng.below(4) as u16), &buf[..len]);
                    d.bar_write(u64::MAX - rng.below(8), &buf[..len]);
                    if let Some(irq) = d.device().irq.clone() {
                        irq.signal_queue(rng.below(4) as u16);
                        irq.signal_config();
                    }
                }
            }
        }
        assert!(!log.lock().unwrap().notifies.is_empty());
    }
    assert!(live > 20);
}

#[test]
fn interrupt_handle_is_shareable_across_threads() {
    let (mut d, sink, _) = setup(0);
    bring_up(&mut d);
    let irq = d.device().irq();
    std::thread::spawn(move || irq.signal_queue(0))
        .join()
        .unwrap();
    assert!(sink.intx_level());
    assert_eq!(r8(&mut d, ISR_OFFSET), 1);
}

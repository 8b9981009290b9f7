//! The console against a hostile or odd guest, driven through its virtio-pci transport by a
//! raw driver: the device is brought up by register writes, descriptors and ring entries are
//! written by hand into guest memory, and queues are notified through the notify region.

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::control::{self, HEADER_LEN, Header};
use super::{
    Backend, ChannelHandler, Console, ConsoleConfig, ConsoleError, ConsoleStats, MAX_CHAIN_BYTES,
    PortConfig, PortEvent, PortHandler, rx_queue, tx_queue,
};
use crate::pci::VirtioPciDevice;
use crate::pci::driver::common_cfg::{
    CONFIG_MSIX_VECTOR, NUM_QUEUES, QUEUE_MSIX_VECTOR, QUEUE_SELECT, QUEUE_SIZE,
};
use crate::pci::driver::{CAP_MSIX, CAP_VENDOR, find_capability};
use crate::test_utils::{Desc, GuestQueue, PciDriver, RecordingSink, Seg, UsedEntry, rd, wr};
use crate::virtio::VIRTIO_F_VERSION_1;
use virtio_console_wire::{CONTROL_RX, CONTROL_TX};

type Dev = VirtioPciDevice<Console>;

/// Guest RAM.
const RAM: usize = 1 << 20;
/// Queue `q`'s rings live in the page at `RING_BASE + q * RING_STRIDE`.
const RING_BASE: u64 = 0x1000;
const RING_STRIDE: u64 = 0x1000;
/// Offsets of the available and used rings within a queue's page (room for 32 entries).
const AVAIL_OFF: u64 = 0x200;
const USED_OFF: u64 = 0x400;
/// Buffers are handed out from here up.
const BUF_BASE: u64 = 0x4_0000;
/// What buffers the device may write are filled with before they are posted.
const FILL: u8 = 0xaa;
/// The MSI address every MSI-X entry is programmed with (the data is the vector number).
const MSI_ADDR: u64 = 0xfee0_0000;

// virtio-console feature bits the driver accepts, and VIRTIO_F_VERSION_1.
const DRIVER_FEATURES: u64 =
    VIRTIO_F_VERSION_1 | super::F_SIZE | super::F_MULTIPORT | super::F_EMERG_WRITE;

/// A used-ring entry, with what the device wrote.
type Used = UsedEntry;

/// A control message as the guest receives it.
type Msg = (u32, u16, u16, Vec<u8>);

fn msg(id: u32, event: u16, value: u16, payload: &[u8]) -> Msg {
    (id, event, value, payload.to_vec())
}

/// A raw virtio-pci driver for the console.
struct Driver {
    drv: PciDriver<Console>,
    sink: Arc<RecordingSink>,
    msix: bool,
    msix_table: u64,
    msix_control: u16,
    rings: Vec<GuestQueue>,
    /// Each queue's notify address.
    notify: Vec<u64>,
    next_buf: u64,
}

fn cfg_read(dev: &Dev, off: u16, n: usize) -> u32 {
    let mut b = [0u8; 4];
    dev.config_read(off, &mut b[..n]);
    u32::from_le_bytes(b)
}

/// The configuration-space offset of the capability `id` (of `cfg_type`, for virtio ones).
fn find_cap(dev: &Dev, id: u8, cfg_type: Option<u8>) -> u16 {
    find_capability(dev, id, cfg_type)
        .unwrap_or_else(|| panic!("capability {id:#x} {cfg_type:?} not found"))
}

impl Driver {
    /// A driver for `console` over 1 MiB of guest RAM, using MSI-X (`msix`) or INTx. The device
    /// is not brought up yet.
    fn new(console: Console, msix: bool) -> Self {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
        let sink = Arc::new(RecordingSink::new());
        let nq = 2 * (console.config().max_nr_ports as u16 + 1);
        assert!(
            RING_BASE + u64::from(nq) * RING_STRIDE <= BUF_BASE,
            "too many queues for the ring area"
        );
        let dev = Dev::new(console, mem.clone(), sink.clone(), nq + 1);
        for t in 1..=4 {
            let cap = find_cap(&dev, CAP_VENDOR, Some(t));
            assert_eq!(cfg_read(&dev, cap + 4, 1), 0, "BAR0");
        }
        let msix_cap = find_cap(&dev, CAP_MSIX, None);
        let table = cfg_read(&dev, msix_cap + 4, 4);
        assert_eq!(table & 7, 0, "MSI-X table in BAR0");
        Driver {
            drv: PciDriver::new(dev, mem),
            sink,
            msix,
            msix_table: u64::from(table & !7),
            msix_control: msix_cap + 2,
            rings: Vec::new(),
            notify: Vec::new(),
            next_buf: BUF_BASE,
        }
    }

    /// [`Driver::new`] and [`Driver::bring_up`].
    fn up(console: Console) -> Self {
        let mut d = Driver::new(console, true);
        d.bring_up();
        d
    }

    fn console(&self) -> &Console {
        self.drv.device()
    }

    fn console_mut(&mut self) -> &mut Console {
        self.drv.device_mut()
    }

    fn stats(&self) -> ConsoleStats {
        self.console().stats()
    }

    /// What a driver does at probe: MSI-X set up (one vector per queue, vector `q` for queue
    /// `q`, the last for configuration changes), features negotiated, every queue programmed
    /// with its maximum size at fixed addresses (rings zeroed first), DRIVER_OK.
    fn bring_up(&mut self) {
        let zero = vec![0u8; (BUF_BASE - RING_BASE) as usize];
        self.drv
            .mem
            .write_slice(&zero, GuestAddress(RING_BASE))
            .unwrap();
        if self.msix {
            let c = cfg_read(&self.drv.dev, self.msix_control, 2) as u16;
            self.drv
                .dev
                .config_write(self.msix_control, &(c | 0x8000).to_le_bytes());
        }
        self.drv.negotiate(DRIVER_FEATURES);
        let nq = self.drv.r16(NUM_QUEUES);
        if self.msix {
            for v in 0..=nq {
                let e = self.msix_table + 16 * u64::from(v);
                let dev = &mut self.drv.dev;
                dev.bar_write(e, &(MSI_ADDR as u32).to_le_bytes());
                dev.bar_write(e + 4, &0u32.to_le_bytes());
                dev.bar_write(e + 8, &u32::from(v).to_le_bytes());
                dev.bar_write(e + 12, &0u32.to_le_bytes());
            }
            self.drv.w16(CONFIG_MSIX_VECTOR, nq);
        }
        self.rings.clear();
        self.notify.clear();
        for q in 0..nq {
            self.drv.w16(QUEUE_SELECT, q);
            let size = self.drv.r16(QUEUE_SIZE);
            assert!(
                size.is_power_of_two() && size <= 32,
                "queue {q} size {size}"
            );
            let desc = RING_BASE + u64::from(q) * RING_STRIDE;
            let ring = GuestQueue::new(size, desc, desc + AVAIL_OFF, desc + USED_OFF);
            let notify = self.drv.notify_address(q);
            assert_eq!(notify, Dev::notify_offset(q));
            if self.msix {
                self.drv.w16(QUEUE_MSIX_VECTOR, q);
                assert_eq!(self.drv.r16(QUEUE_MSIX_VECTOR), q);
            }
            self.drv.program_queue(q, &ring);
            self.rings.push(ring);
            self.notify.push(notify);
        }
        self.drv.driver_ok();
    }

    /// Writes 0 to the status register.
    fn reset(&mut self) {
        self.drv.reset();
        assert_eq!(
            self.drv.r8(crate::pci::driver::common_cfg::DEVICE_STATUS),
            0
        );
    }

    /// `len` bytes of guest memory for a buffer, filled with [`FILL`].
    fn alloc(&mut self, len: usize) -> u64 {
        let at = self.next_buf;
        self.next_buf = (at + len as u64).next_multiple_of(16);
        assert!(self.next_buf <= RAM as u64, "test buffers exhausted");
        self.drv
            .mem
            .write_slice(&vec![FILL; len], GuestAddress(at))
            .unwrap();
        at
    }

    /// A buffer holding `bytes`.
    fn buf(&mut self, bytes: &[u8]) -> u64 {
        let at = self.alloc(bytes.len());
        self.drv.mem.write_slice(bytes, GuestAddress(at)).unwrap();
        at
    }

    /// Writes descriptor `idx` of queue `q`.
    fn write_desc(&mut self, q: u16, idx: u16, s: Seg, more: bool, next: u16) {
        let more = if more {
            crate::test_utils::VIRTQ_DESC_F_NEXT
        } else {
            0
        };
        let d = Desc {
            addr: s.addr,
            len: s.len,
            flags: s.flags | more,
            next,
        };
        self.rings[q as usize]
            .write_desc(&self.drv.mem, idx, d)
            .unwrap();
    }

    /// Puts `head` in the next slot of `q`'s available ring and publishes it.
    fn publish(&mut self, q: u16, head: u16) {
        self.rings[q as usize].publish(&self.drv.mem, head).unwrap();
    }

    /// Takes `n` free descriptors of `q`.
    fn take_descs(&mut self, q: u16, n: usize) -> Vec<u16> {
        self.rings[q as usize].take_descs(n)
    }

    /// Writes `segs` as a chain into free descriptors of queue `q` and publishes its head in
    /// the available ring (no notification). Returns the head.
    fn post(&mut self, q: u16, segs: &[Seg]) -> u16 {
        self.rings[q as usize].post(&self.drv.mem, segs)
    }

    /// Writes the notify register of queue `q`.
    fn notify(&mut self, q: u16) {
        let at = self.notify[q as usize];
        self.drv.notify_at(at, q);
    }

    /// Posts a device-readable buffer holding `bytes` on `q` and notifies. Returns the head.
    fn tx(&mut self, q: u16, bytes: &[u8]) -> u16 {
        let at = self.buf(bytes);
        let head = self.post(q, &[rd(at, bytes.len() as u32)]);
        self.notify(q);
        head
    }

    /// Posts a device-writable buffer of `len` bytes on `q` (no notification).
    fn post_rx(&mut self, q: u16, len: u32) -> u16 {
        let at = self.alloc(len as usize);
        self.post(q, &[wr(at, len)])
    }

    /// The used-ring index the device published for `q`.
    fn used_idx(&self, q: u16) -> u16 {
        self.rings[q as usize].used_idx(&self.drv.mem)
    }

    /// New used-ring entries of `q`, with what the device wrote. Their descriptors are free
    /// again.
    fn used(&mut self, q: u16) -> Vec<Used> {
        let used = self.rings[q as usize].take_used(&self.drv.mem);
        for u in &used {
            assert!(
                u.posted,
                "queue {q}: head {} returned but not posted",
                u.head
            );
        }
        used
    }

    /// `(head, len)` of the new used-ring entries of `q`.
    fn used_heads(&mut self, q: u16) -> Vec<(u16, u32)> {
        self.used(q).into_iter().map(|u| (u.head, u.len)).collect()
    }

    /// Gives the device `n` control receive buffers and notifies the control receive queue.
    fn give_ctrl_buffers(&mut self, n: usize) {
        for _ in 0..n {
            self.post_rx(CONTROL_RX, 512);
        }
        self.notify(CONTROL_RX);
    }

    /// The control messages the device put in the guest's buffers since the last call. Each
    /// must be whole and nothing may be written past it.
    fn ctrl_msgs(&mut self) -> Vec<Msg> {
        self.used(CONTROL_RX)
            .into_iter()
            .map(|u| {
                assert!(u.len as usize >= HEADER_LEN, "short control message {u:?}");
                assert!(u.rest.iter().all(|&b| b == FILL), "written past len: {u:?}");
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&u.data[..HEADER_LEN]);
                let h = Header::decode(&h);
                (h.id, h.event, h.value, u.data[HEADER_LEN..].to_vec())
            })
            .collect()
    }

    /// Sends one control message on the control transmit queue and notifies. Returns the head.
    fn send_ctrl(&mut self, id: u32, event: u16, value: u16) -> u16 {
        self.tx(CONTROL_TX, &Header { id, event, value }.encode_with(&[]))
    }

    /// Sends a control message and checks the device took it and gave the chain back.
    fn ctrl(&mut self, id: u32, event: u16, value: u16) {
        let head = self.send_ctrl(id, event, value);
        assert_eq!(self.used_heads(CONTROL_TX), [(head, 0)]);
    }

    /// The MSIs since the last call, as vector numbers (= queue numbers).
    fn msis(&self) -> Vec<u32> {
        self.sink
            .take_msis()
            .into_iter()
            .map(|(addr, data)| {
                assert_eq!(addr, MSI_ADDR);
                data
            })
            .collect()
    }

    /// The INTx level changes since the last call.
    fn intx(&self) -> Vec<bool> {
        self.sink.take_intx()
    }

    /// Reads (and so clears) the ISR.
    fn read_isr(&mut self) -> u8 {
        self.drv.read_isr()
    }

    /// DEVICE_READY with 32 control buffers, checking PORT_ADD for `ids`; then PORT_READY for
    /// each of `ready`. Returns the control messages PORT_READY brought.
    fn handshake(&mut self, ids: &[u32], ready: &[u32]) -> Vec<Msg> {
        self.give_ctrl_buffers(32);
        self.ctrl(0, control::DEVICE_READY, 1);
        let adds: Vec<Msg> = ids
            .iter()
            .map(|&id| msg(id, control::PORT_ADD, 1, &[]))
            .collect();
        assert_eq!(self.ctrl_msgs(), adds);
        assert!(self.console().driver_ready());
        for &id in ready {
            self.ctrl(id, control::PORT_READY, 1);
        }
        let msgs = self.ctrl_msgs();
        self.msis();
        msgs
    }
}

fn console(max_nr_ports: u32) -> Console {
    Console::new(ConsoleConfig {
        max_nr_ports,
        queue_size: 16,
        cols: 80,
        rows: 25,
    })
    .unwrap()
}

fn channel() -> (Backend, Receiver<PortEvent>) {
    let (tx, rx) = mpsc::channel();
    (Backend::Handler(Box::new(ChannelHandler::new(tx))), rx)
}

fn events(rx: &Receiver<PortEvent>) -> Vec<PortEvent> {
    rx.try_iter().collect()
}

/// A handler that takes nothing and records what it was offered.
struct Refuser(Arc<Mutex<Vec<Vec<u8>>>>);

impl PortHandler for Refuser {
    fn have_data(&mut self, data: &[u8]) -> usize {
        self.0.lock().unwrap().push(data.to_vec());
        0
    }
}

fn open_port(d: &mut Driver, id: u32) {
    d.console_mut().open(id).unwrap();
    assert_eq!(d.ctrl_msgs(), [msg(id, control::PORT_OPEN, 1, &[])]);
    d.ctrl(id, control::PORT_OPEN, 1);
    assert!(d.console().port_info(id).unwrap().guest_connected);
    d.msis();
}

/// A device with port 1 ("data", a [`ChannelHandler`]) set up and open on both sides.
fn data_port() -> (Driver, Receiver<PortEvent>) {
    let mut c = console(4);
    let (b1, rx1) = channel();
    assert_eq!(c.add_port(PortConfig::new("data"), b1).unwrap(), 1);
    let mut d = Driver::up(c);
    assert_eq!(
        d.handshake(&[1], &[1]),
        [msg(1, control::PORT_NAME, 1, b"data")]
    );
    open_port(&mut d, 1);
    assert_eq!(events(&rx1), [PortEvent::GuestOpen]);
    (d, rx1)
}

/// Case 1: Start-up: PORT_ADD for every port on DEVICE_READY; per PORT_READY, CONSOLE_PORT for the
/// console, PORT_NAME with the exact name, PORT_OPEN when the host side is open.
#[test]
fn startup_announces_ports_names_and_host_open() {
    let mut c = console(4);
    let (b0, rx0) = channel();
    assert_eq!(c.add_port(PortConfig::console("hvc-name"), b0).unwrap(), 0);
    let agent = "org.qemu.guest_agent.0";
    assert_eq!(
        c.add_port(PortConfig::new(agent), Backend::None).unwrap(),
        1
    );
    assert_eq!(c.add_port(PortConfig::new(""), Backend::None).unwrap(), 2);
    c.open(1).unwrap();
    let mut d = Driver::up(c);
    assert!(!d.console().driver_ready());
    d.give_ctrl_buffers(8);
    assert_eq!(
        d.used_idx(CONTROL_RX),
        0,
        "nothing is said before DEVICE_READY"
    );
    assert!(d.msis().is_empty());

    let head = d.send_ctrl(0, control::DEVICE_READY, 1);
    assert_eq!(d.used_heads(CONTROL_TX), [(head, 0)]);
    assert_eq!(
        d.ctrl_msgs(),
        [
            msg(0, control::PORT_ADD, 1, &[]),
            msg(1, control::PORT_ADD, 1, &[]),
            msg(2, control::PORT_ADD, 1, &[]),
        ]
    );
    assert_eq!(d.msis(), [u32::from(CONTROL_RX), u32::from(CONTROL_TX)]);
    assert!(d.console().driver_ready());

    d.ctrl(0, control::PORT_READY, 1);
    assert_eq!(
        d.ctrl_msgs(),
        [
            msg(0, control::CONSOLE_PORT, 1, &[]),
            msg(0, control::PORT_NAME, 1, b"hvc-name"),
        ]
    );
    d.ctrl(1, control::PORT_READY, 1);
    assert_eq!(
        d.ctrl_msgs(),
        [
            msg(1, control::PORT_NAME, 1, agent.as_bytes()),
            msg(1, control::PORT_OPEN, 1, &[]),
        ]
    );
    // No name, host closed: nothing to say.
    d.ctrl(2, control::PORT_READY, 1);
    assert_eq!(d.ctrl_msgs(), []);
    for p in d.console().ports() {
        assert!(p.ready && !p.guest_connected, "{p:?}");
        assert_eq!(p.host_connected, p.id == 1, "{p:?}");
    }

    // The host opening a ready port is announced at once; the guest opening is passed on.
    d.console_mut().open(0).unwrap();
    assert_eq!(d.ctrl_msgs(), [msg(0, control::PORT_OPEN, 1, &[])]);
    d.ctrl(0, control::PORT_OPEN, 1);
    assert!(d.console().port_info(0).unwrap().guest_connected);
    assert_eq!(events(&rx0), [PortEvent::GuestOpen]);
    assert_eq!(
        d.stats(),
        ConsoleStats {
            bad_control: 0,
            bad_chains: 0,
            control_sent: 8,
            control_pending: 0,
        }
    );
    assert_eq!(d.intx(), [], "MSI-X is on");
}

/// Case 2: Control messages wait for guest buffers, in order, and are never dropped (over INTx).
#[test]
fn control_messages_wait_for_guest_buffers_in_order() {
    let mut c = console(8);
    for i in 1..=5u32 {
        let id = c
            .add_port(PortConfig::new(format!("p{i}")), Backend::None)
            .unwrap();
        assert_eq!(id, i);
    }
    let mut d = Driver::new(c, false);
    d.bring_up();
    let head = d.send_ctrl(0, control::DEVICE_READY, 1);
    assert_eq!(d.used_heads(CONTROL_TX), [(head, 0)]);
    assert_eq!(d.used_idx(CONTROL_RX), 0);
    assert_eq!(d.stats().control_pending, 5);
    assert_eq!(d.stats().control_sent, 0);
    assert_eq!(d.intx(), [true]);
    assert_eq!(d.read_isr(), 1);
    assert_eq!(d.intx(), [false]);

    // A buffer the device cannot write (device-readable) is given back empty; the message
    // it could not take is not lost.
    let at = d.alloc(64);
    let h = d.post(CONTROL_RX, &[rd(at, 64)]);
    d.notify(CONTROL_RX);
    assert_eq!(d.used_heads(CONTROL_RX), [(h, 0)]);
    assert_eq!(d.stats().control_pending, 5);
    assert_eq!(d.read_isr(), 1);
    d.intx();

    for id in 1..=5u32 {
        d.give_ctrl_buffers(1);
        assert_eq!(d.ctrl_msgs(), [msg(id, control::PORT_ADD, 1, &[])]);
        assert_eq!(d.stats().control_pending, 5 - id as usize);
        assert_eq!(d.intx(), [true]);
        assert_eq!(d.read_isr(), 1);
        assert_eq!(d.intx(), [false]);
    }
    // Nothing left: a further buffer stays with the device, unused.
    d.give_ctrl_buffers(1);
    assert_eq!(d.ctrl_msgs(), []);
    assert_eq!(d.intx(), []);
    assert_eq!(
        d.stats(),
        ConsoleStats {
            bad_control: 0,
            bad_chains: 1, // the read-only control buffer above
            control_sent: 5,
            control_pending: 0,
        }
    );
    assert!(d.msis().is_empty());
}

/// Case 3: Control messages a guest must not send, or for ports it may not name, are counted and
/// ignored; malformed chains are counted and given back; nothing changes.
#[test]
fn hostile_control_messages_are_counted_and_ignored() {
    let mut c = console(4);
    let (b0, rx0) = channel();
    let (b1, rx1) = channel();
    assert_eq!(c.add_port(PortConfig::console("c"), b0).unwrap(), 0);
    assert_eq!(c.add_port(PortConfig::new("a"), b1).unwrap(), 1);
    let mut d = Driver::up(c);
    d.handshake(&[0, 1], &[0, 1]);
    // Port 2 is added but the guest never sets it up.
    let b = d
        .console_mut()
        .add_port(PortConfig::new("b"), Backend::None)
        .unwrap();
    assert_eq!(b, 2);
    assert_eq!(d.ctrl_msgs(), [msg(2, control::PORT_ADD, 1, &[])]);
    let ports = d.console().ports();
    let base = d.stats();
    assert_eq!(base.bad_control, 0);

    let hostile: &[(u32, u16, u16)] = &[
        (999, control::PORT_READY, 1),
        (4, control::PORT_READY, 1), // == max_nr_ports
        (3, control::PORT_READY, 1), // a free id
        (u32::MAX, control::PORT_READY, 1),
        (999, control::PORT_OPEN, 1),
        (4, control::PORT_OPEN, 0),
        (2, control::PORT_OPEN, 1), // not set up
        (1, control::PORT_OPEN, 7),
        (1, control::PORT_OPEN, u16::MAX),
        (0, control::PORT_ADD, 1),
        (1, control::PORT_REMOVE, 1),
        (0, control::CONSOLE_PORT, 1),
        (0, control::RESIZE, 0),
        (1, control::PORT_NAME, 1),
        (1, 12345, 1),
        (1, 8, 1),
    ];
    let mut bad = 0;
    for &(id, event, value) in hostile {
        d.ctrl(id, event, value);
        bad += 1;
        assert_eq!(
            d.stats(),
            ConsoleStats {
                bad_control: bad,
                ..base
            },
            "port {id} event {event} value {value}"
        );
        assert_eq!(d.console().ports(), ports, "port {id} event {event}");
        assert_eq!(d.ctrl_msgs(), [], "port {id} event {event}");
    }

    // Short messages: 3 bytes, and an empty descriptor.
    let h = d.tx(CONTROL_TX, &[control::PORT_OPEN as u8, 0, 1]);
    assert_eq!(d.used_heads(CONTROL_TX), [(h, 0)]);
    let at = d.buf(&[0; 8]);
    let h = d.post(CONTROL_TX, &[rd(at, 0)]);
    d.notify(CONTROL_TX);
    assert_eq!(d.used_heads(CONTROL_TX), [(h, 0)]);
    bad += 2;
    assert_eq!(d.stats().bad_control, bad);
    assert_eq!(d.stats().bad_chains, 0);

    // Chains the device cannot read: outside RAM, straddling its end, device-writable only.
    // Each counts once (as a bad chain or a bad message) and is given back.
    let ready0 = Header {
        id: 1,
        event: control::PORT_OPEN,
        value: 1,
    }
    .encode_with(&[]);
    let at = d.buf(&ready0);
    for seg in [rd(0x4000_0000, 8), rd(RAM as u64 - 4, 8), wr(at, 8)] {
        let before = d.stats();
        let h = d.post(CONTROL_TX, &[seg]);
        d.notify(CONTROL_TX);
        assert_eq!(d.used_heads(CONTROL_TX), [(h, 0)], "{seg:?}");
        let after = d.stats();
        assert_eq!(
            after.bad_control + after.bad_chains,
            before.bad_control + before.bad_chains + 1,
            "{seg:?}"
        );
        assert_eq!(d.console().ports(), ports, "{seg:?}");
    }
    // A head beyond the queue in the available ring: counted, and it cannot be given back.
    let before = d.stats();
    d.publish(CONTROL_TX, 999);
    d.notify(CONTROL_TX);
    assert_eq!(d.used_heads(CONTROL_TX), []);
    let after = d.stats();
    assert_eq!(
        after.bad_control + after.bad_chains,
        before.bad_control + before.bad_chains + 1
    );
    assert_eq!(d.console().ports(), ports);
    assert_eq!(d.ctrl_msgs(), []);
    assert_eq!(events(&rx0), []);
    assert_eq!(events(&rx1), []);

    // The queue still works, and an odd but valid guest is understood: the header split over
    // two descriptors, then a header followed by bytes the device ignores.
    let hdr = Header {
        id: 1,
        event: control::PORT_OPEN,
        value: 1,
    }
    .encode_with(&[]);
    let (a, b) = (d.buf(&hdr[..3]), d.buf(&hdr[3..]));
    let h = d.post(CONTROL_TX, &[rd(a, 3), rd(b, 5)]);
    d.notify(CONTROL_TX);
    assert_eq!(d.used_heads(CONTROL_TX), [(h, 0)]);
    assert!(d.console().port_info(1).unwrap().guest_connected);
    assert_eq!(events(&rx1), [PortEvent::GuestOpen]);
    let close = Header {
        id: 1,
        event: control::PORT_OPEN,
        value: 0,
    }
    .encode_with(b"trailing junk");
    d.tx(CONTROL_TX, &close);
    assert_eq!(d.used(CONTROL_TX).len(), 1);
    assert!(!d.console().port_info(1).unwrap().guest_connected);
    assert_eq!(events(&rx1), [PortEvent::GuestClose]);
    assert_eq!(d.ctrl_msgs(), []);
    let end = d.stats();
    assert_eq!(end.bad_control + end.bad_chains, bad + 4);
    assert_eq!(end.control_sent, base.control_sent);
}

/// Documented: [`ConsoleStats::bad_chains`] counts chains with bad addresses; a control chain
/// pointing outside guest memory is such a chain, not a malformed message.
#[test]
fn control_chain_outside_memory_counts_as_bad_chain() {
    let mut d = Driver::up(console(1));
    let h = d.post(CONTROL_TX, &[rd(0x4000_0000, 8)]);
    d.notify(CONTROL_TX);
    assert_eq!(d.used_heads(CONTROL_TX), [(h, 0)]);
    assert_eq!(d.stats().bad_chains, 1);
    assert_eq!(d.stats().bad_control, 0);
}

/// Case 4: A guest that makes the device queue control messages faster than it takes them is no
/// longer read once the backlog reaches its cap, and is read again when it takes them.
#[test]
fn control_backlog_back_pressures_the_guest() {
    let mut c = console(5);
    assert_eq!(
        c.add_port(PortConfig::console("c"), Backend::None).unwrap(),
        0
    );
    for i in 1..5 {
        let id = c
            .add_port(PortConfig::new(format!("p{i}")), Backend::None)
            .unwrap();
        assert_eq!(id, i);
    }
    let mut d = Driver::up(c);
    // 64 + 4 per port: a whole start-up exchange fits.
    assert_eq!(d.console().ctrl_backlog_cap(), 84);
    let ready = Header {
        id: 0,
        event: control::DEVICE_READY,
        value: 1,
    }
    .encode_with(&[]);
    let heads: Vec<u16> = (0..32)
        .map(|_| {
            let at = d.buf(&ready);
            d.post(CONTROL_TX, &[rd(at, 8)])
        })
        .collect();
    let used = |hs: &[u16]| hs.iter().map(|&h| (h, 0)).collect::<Vec<_>>();
    d.notify(CONTROL_TX);
    // Each DEVICE_READY queues five PORT_ADDs: after 16 there are 80, under the cap, so a
    // 17th is read (85), and then no more.
    assert_eq!(d.used_heads(CONTROL_TX), used(&heads[..17]));
    assert_eq!(d.stats().control_pending, 85);
    d.notify(CONTROL_TX);
    assert_eq!(d.used_idx(CONTROL_TX), 17, "read past the backlog cap");
    assert_eq!(d.stats().control_pending, 85);

    // Ten buffers take ten messages (75 left): two more DEVICE_READYs are read (85).
    d.give_ctrl_buffers(10);
    let mut got = d.ctrl_msgs();
    assert_eq!(got.len(), 10);
    assert_eq!(d.used_heads(CONTROL_TX), used(&heads[17..19]));
    assert_eq!(d.stats().control_pending, 85);

    // Taking everything reads the rest; nothing is lost.
    while d.stats().control_pending > 0 {
        let free = d.rings[CONTROL_RX as usize].free_count();
        d.give_ctrl_buffers(free);
        got.extend(d.ctrl_msgs());
    }
    assert_eq!(d.used_heads(CONTROL_TX), used(&heads[19..]));
    assert_eq!(got.len(), 32 * 5);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(
            *m,
            msg(i as u32 % 5, control::PORT_ADD, 1, &[]),
            "message {i}"
        );
    }
    assert_eq!(
        d.stats(),
        ConsoleStats {
            bad_control: 0,
            bad_chains: 0,
            control_sent: 160,
            control_pending: 0,
        }
    );
}

/// Case 5a: Host data written to a port the guest has open lands in its receive buffers.
#[test]
fn host_write_lands_in_guest_rx_buffers() {
    let (mut d, rx1) = data_port();
    let q = rx_queue(1);
    let h = d.post_rx(q, 64);
    d.notify(q);
    assert_eq!(d.used_idx(q), 0);
    assert_eq!(d.console_mut().write(1, b"hello guest").unwrap(), 11);
    assert_eq!(
        d.used(q),
        [Used {
            head: h,
            len: 11,
            posted: true,
            data: b"hello guest".to_vec(),
            rest: vec![FILL; 53],
        }]
    );
    assert_eq!(d.msis(), [u32::from(q)]);
    assert_eq!(events(&rx1), [PortEvent::GuestReady]);

    // With no buffer posted it waits, then fills two buffers.
    let data: Vec<u8> = (0..100).collect();
    assert_eq!(d.console_mut().write(1, &data).unwrap(), 100);
    assert_eq!(d.used_idx(q), 1);
    assert_eq!(d.console().port_info(1).unwrap().queued_for_guest, 100);
    let h1 = d.post_rx(q, 64);
    let h2 = d.post_rx(q, 64);
    d.notify(q);
    let u = d.used(q);
    assert_eq!(
        u.iter().map(|u| (u.head, u.len)).collect::<Vec<_>>(),
        [(h1, 64), (h2, 36)]
    );
    assert_eq!(u[0].data, data[..64]);
    assert_eq!(u[1].data, data[64..]);
    assert_eq!(u[1].rest, [FILL; 28]);
    let info = d.console().port_info(1).unwrap();
    assert_eq!(info.queued_for_guest, 0);
    assert_eq!(info.stats.to_guest, 111);
    assert_eq!(d.stats().bad_chains, 0);
}

/// Case 5b: A transmit chain reaches the port's handler, whole, and is given back with length 0.
#[test]
fn guest_tx_reaches_handler() {
    let mut c = console(4);
    let (b1, rx1) = channel();
    assert_eq!(c.add_port(PortConfig::new("data"), b1).unwrap(), 1);
    let mut d = Driver::up(c);
    d.handshake(&[1], &[1]);
    d.ctrl(1, control::PORT_OPEN, 1);
    assert_eq!(events(&rx1), [PortEvent::GuestOpen]);
    let q = tx_queue(1);
    // Host side closed: kept (cache_buffers), the chain given back.
    let h = d.tx(q, b"early");
    assert_eq!(d.used_heads(q), [(h, 0)]);
    assert_eq!(events(&rx1), []);
    assert_eq!(d.console().port_info(1).unwrap().held_for_host, 5);
    d.console_mut().open(1).unwrap();
    assert_eq!(events(&rx1), [PortEvent::Data(b"early".to_vec())]);
    d.msis();

    let h = d.tx(q, b"from guest");
    assert_eq!(d.used_heads(q), [(h, 0)]);
    assert_eq!(events(&rx1), [PortEvent::Data(b"from guest".to_vec())]);
    assert_eq!(d.msis(), [u32::from(q)]);
    let (a, b) = (d.buf(b"ab"), d.buf(b"cde"));
    let h = d.post(q, &[rd(a, 2), rd(b, 3)]);
    d.notify(q);
    assert_eq!(d.used_heads(q), [(h, 0)]);
    assert_eq!(events(&rx1), [PortEvent::Data(b"abcde".to_vec())]);
    let info = d.console().port_info(1).unwrap();
    assert_eq!(info.stats.to_host, 20);
    assert_eq!(info.held_for_host, 0);
    assert_eq!(d.stats().bad_chains, 0);
}

/// Case 5c: A transmit chain over MAX_CHAIN_BYTES is refused unread; one of exactly that is taken.
#[test]
fn oversized_tx_chain_is_refused() {
    let (mut d, rx1) = data_port();
    let q = tx_queue(1);
    let half = (MAX_CHAIN_BYTES / 2) as u32;
    let big = 0x8_0000;
    assert!(big + u64::from(half) <= RAM as u64);

    // Three descriptors (the first two on the same memory): MAX_CHAIN_BYTES + 1.
    let one = d.buf(b"!");
    let h = d.post(q, &[rd(big, half), rd(big, half), rd(one, 1)]);
    d.notify(q);
    assert_eq!(d.used_heads(q), [(h, 0)]);
    assert_eq!(d.stats().bad_chains, 1);
    assert_eq!(events(&rx1), []);

    // One descriptor looping on itself: 16 × 1 MiB.
    let idx = d.take_descs(q, 1)[0];
    d.write_desc(q, idx, rd(0, 1 << 20), true, idx);
    d.publish(q, idx);
    d.rings[q as usize].track(idx, vec![(idx, rd(0, 1 << 20))]);
    d.notify(q);
    assert_eq!(d.used_heads(q), [(idx, 0)]);
    assert_eq!(d.stats().bad_chains, 2);
    assert_eq!(events(&rx1), []);

    // Outside guest memory.
    let h = d.post(q, &[rd(RAM as u64 - 4, 8)]);
    d.notify(q);
    assert_eq!(d.used_heads(q), [(h, 0)]);
    assert_eq!(d.stats().bad_chains, 3);
    assert_eq!(events(&rx1), []);
    assert_eq!(d.console().port_info(1).unwrap().stats.to_host, 0);

    // Exactly the limit is accepted.
    let h = d.post(q, &[rd(big, half), rd(big, half)]);
    d.notify(q);
    assert_eq!(d.used_heads(q), [(h, 0)]);
    assert_eq!(d.stats().bad_chains, 3);
    match &events(&rx1)[..] {
        [PortEvent::Data(v)] => assert_eq!(v.len(), MAX_CHAIN_BYTES),
        e => panic!("{e:?}"),
    }
    assert_eq!(
        d.console().port_info(1).unwrap().stats.to_host,
        MAX_CHAIN_BYTES as u64
    );
}

/// Case 5d: A transmit chain holding only a device-writable descriptor is given back untouched and
/// the port keeps working.
#[test]
fn tx_chain_of_write_only_descriptor_is_survived() {
    let (mut d, rx1) = data_port();
    let q = tx_queue(1);
    let at = d.alloc(16);
    let h = d.post(q, &[wr(at, 16)]);
    d.notify(q);
    assert_eq!(
        d.used(q),
        [Used {
            head: h,
            len: 0,
            posted: true,
            data: vec![],
            rest: vec![FILL; 16],
        }]
    );
    let h = d.tx(q, b"ok");
    assert_eq!(d.used_heads(q), [(h, 0)]);
    let ev = events(&rx1);
    assert_eq!(ev.last(), Some(&PortEvent::Data(b"ok".to_vec())));
    assert!(
        ev[..ev.len() - 1]
            .iter()
            .all(|e| *e == PortEvent::Data(vec![])),
        "{ev:?}"
    );
    assert_eq!(d.console().port_info(1).unwrap().stats.to_host, 2);
}

/// Documented: [`ConsoleStats::bad_chains`] counts chains of the wrong direction, and a
/// handler is told when "the guest wrote data"; a transmit chain with no readable byte is
/// such a chain and carries no data.
#[test]
fn tx_chain_without_readable_bytes_is_a_bad_chain() {
    let (mut d, rx1) = data_port();
    let q = tx_queue(1);
    let at = d.alloc(16);
    let h = d.post(q, &[wr(at, 16)]);
    d.notify(q);
    assert_eq!(d.used_heads(q), [(h, 0)]);
    assert_eq!(events(&rx1), []);
    assert_eq!(d.stats().bad_chains, 1);
}

/// Case 6: Unplugging a port gives back the chain its backend held and those queued behind it,
/// tells the guest, and later chains on its queues are not read.
#[test]
fn unplug_returns_held_chain_and_ignores_later_ones() {
    let mut c = console(4);
    let offered = Arc::new(Mutex::new(Vec::new()));
    let refuser = Backend::Handler(Box::new(Refuser(offered.clone())));
    assert_eq!(c.add_port(PortConfig::new("slow"), refuser).unwrap(), 1);
    c.open(1).unwrap();
    let mut d = Driver::up(c);
    assert_eq!(
        d.handshake(&[1], &[1]),
        [
            msg(1, control::PORT_NAME, 1, b"slow"),
            msg(1, control::PORT_OPEN, 1, &[]),
        ]
    );
    d.ctrl(1, control::PORT_OPEN, 1);
    let q = tx_queue(1);
    let h1 = d.tx(q, b"held");
    assert_eq!(d.used_heads(q), []);
    assert_eq!(*offered.lock().unwrap(), [b"held".to_vec()]);
    let info = d.console().port_info(1).unwrap();
    assert!(info.throttled);
    assert_eq!(info.held_for_host, 4);
    // Throttled: the next chain stays in the ring.
    let h2 = d.tx(q, b"second");
    assert_eq!(d.used_heads(q), []);
    assert_eq!(offered.lock().unwrap().len(), 1);
    d.msis();

    d.console_mut().remove_port(1).unwrap();
    assert_eq!(d.used_heads(q), [(h1, 0), (h2, 0)]);
    assert_eq!(d.ctrl_msgs(), [msg(1, control::PORT_REMOVE, 1, &[])]);
    assert_eq!(d.msis(), [u32::from(CONTROL_RX), u32::from(q)]);
    assert!(matches!(
        d.console().port_info(1),
        Err(ConsoleError::NoSuchPort(1))
    ));
    assert!(matches!(
        d.console_mut().write(1, b"x"),
        Err(ConsoleError::NoSuchPort(1))
    ));

    // Later transmit chains come back unread; receive buffers are left alone.
    let h3 = d.tx(q, b"late");
    assert_eq!(d.used_heads(q), [(h3, 0)]);
    let rq = rx_queue(1);
    d.post_rx(rq, 32);
    d.notify(rq);
    assert_eq!(d.used_idx(rq), 0);
    assert_eq!(offered.lock().unwrap().len(), 1);
    assert_eq!(d.stats().bad_chains, 0);

    // The id is free again and the guest is told of the new port.
    let id = d
        .console_mut()
        .add_port(PortConfig::new("again"), Backend::None)
        .unwrap();
    assert_eq!(id, 1);
    assert_eq!(d.ctrl_msgs(), [msg(1, control::PORT_ADD, 1, &[])]);
}

/// Case 7: emerg_wr: a 4-byte write at device-config offset 8 gives port 0's handler one byte,
/// whatever the connection state; the rest of the configuration is read-only.
#[test]
fn emerg_wr_delivers_one_byte_to_port_0() {
    let mut c = console(2);
    let (b0, rx0) = channel();
    assert_eq!(c.add_port(PortConfig::console("con"), b0).unwrap(), 0);
    let mut d = Driver::up(c);
    let cfg = d.drv.layout.device;
    let read_cfg = |d: &mut Driver| {
        let mut b = [0u8; 12];
        d.drv.dev.bar_read(cfg, &mut b);
        b
    };
    let want = [80, 0, 25, 0, 2, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(read_cfg(&mut d), want);

    d.drv.dev.bar_write(cfg + 8, b"XYZW");
    assert_eq!(events(&rx0), [PortEvent::Data(b"X".to_vec())]);
    d.drv.dev.bar_write(cfg + 8, b"!");
    assert_eq!(events(&rx0), [PortEvent::Data(b"!".to_vec())]);
    let info = d.console().port_info(0).unwrap();
    assert_eq!(info.stats.to_host, 2);
    assert!(!info.host_connected && !info.guest_connected);

    for (off, v) in [
        (0, &[1u8, 2, 3, 4][..]),
        (4, &[7, 0, 0, 0]),
        (9, b"Q"),
        (10, b"QQ"),
    ] {
        d.drv.dev.bar_write(cfg + off, v);
        assert_eq!(events(&rx0), [], "write at {off}");
    }
    assert_eq!(read_cfg(&mut d), want);
    assert!(d.msis().is_empty());
    assert_eq!(d.used_idx(CONTROL_RX), 0);
}

/// Case 8: A reset and a second bring-up: the exchange starts over, host connections survive.
#[test]
fn reset_then_bring_up_again() {
    let mut c = console(4);
    let (b0, _rx0) = channel();
    let (b1, rx1) = channel();
    assert_eq!(c.add_port(PortConfig::console("con"), b0).unwrap(), 0);
    assert_eq!(c.add_port(PortConfig::new("data"), b1).unwrap(), 1);
    c.open(1).unwrap();
    let mut d = Driver::up(c);
    let startup = [
        msg(0, control::CONSOLE_PORT, 1, &[]),
        msg(0, control::PORT_NAME, 1, b"con"),
        msg(1, control::PORT_NAME, 1, b"data"),
        msg(1, control::PORT_OPEN, 1, &[]),
    ];
    assert_eq!(d.handshake(&[0, 1], &[0, 1]), startup);
    d.ctrl(1, control::PORT_OPEN, 1);
    assert_eq!(events(&rx1), [PortEvent::GuestOpen]);

    d.reset();
    assert!(!d.console().driver_ready());
    assert_eq!(d.stats().control_pending, 0);
    let info = d.console().port_info(1).unwrap();
    assert!(info.host_connected, "the host side survives a reset");
    assert!(!info.ready && !info.guest_connected);
    // A message sent while reset reaches nothing.
    let used = d.used_idx(CONTROL_TX);
    d.send_ctrl(0, control::DEVICE_READY, 1);
    assert_eq!(d.used_idx(CONTROL_TX), used);
    assert!(!d.console().driver_ready());

    d.bring_up();
    assert!(!d.console().driver_ready());
    assert_eq!(d.handshake(&[0, 1], &[0, 1]), startup);
    d.ctrl(1, control::PORT_OPEN, 1);
    let ev = events(&rx1);
    assert_eq!(ev.last(), Some(&PortEvent::GuestOpen));
    let q = tx_queue(1);
    let h = d.tx(q, b"again");
    assert_eq!(d.used_heads(q), [(h, 0)]);
    assert_eq!(events(&rx1), [PortEvent::Data(b"again".to_vec())]);
    let rq = rx_queue(1);
    let h = d.post_rx(rq, 16);
    d.notify(rq);
    assert_eq!(d.console_mut().write(1, b"back").unwrap(), 4);
    let u = d.used(rq);
    assert_eq!((u[0].head, u[0].len, &u[0].data[..]), (h, 4, &b"back"[..]));
    assert_eq!(d.stats().bad_control, 0);
    assert_eq!(d.stats().bad_chains, 0);
}

/// Like QEMU's guest_reset, a reset closes the guest side of open ports, and a handler is
/// told (it was told of the open).
#[test]
fn reset_tells_handler_guest_closed() {
    let (mut d, rx1) = data_port();
    d.reset();
    assert_eq!(events(&rx1), [PortEvent::GuestClose]);
}

/// A snapshot written by the version 1 codec (the hand-written one in `state.rs` at the time
/// this file was made), of [`golden_console`] in [`golden_state`]: later formats must still
/// restore it.
const SNAPSHOT_V1: &[u8] = include_bytes!("snapshot-v1.bin");

/// The device the snapshot golden tests save and restore: a console port and two named ports.
fn golden_console() -> Console {
    let mut c = console(4);
    c.add_port(PortConfig::console("hvc0"), Backend::None)
        .unwrap();
    c.add_port(PortConfig::new("org.libguestfs.channel.0"), Backend::None)
        .unwrap();
    c.add_port(PortConfig::new("data"), Backend::None).unwrap();
    c
}

/// Puts every field a snapshot carries into a state that is not the default.
fn golden_state(c: &mut Console) {
    c.config.cols = 132;
    c.config.rows = 43;
    c.control.driver_ready = true;
    c.control.out.push_back(
        Header {
            id: 2,
            event: control::PORT_OPEN,
            value: 1,
        }
        .encode_with(&[]),
    );
    c.control.out.push_back(
        Header {
            id: 1,
            event: control::PORT_NAME,
            value: 1,
        }
        .encode_with(b"x"),
    );
    c.stats.bad_control = 3;
    c.stats.bad_chains = 5;
    c.stats.control_sent = 7;
    let p = c.ports.get_mut(&1).unwrap();
    p.ready = true;
    p.guest_connected = true;
    p.host_connected = true;
    p.api_throttled = true;
    p.host_cache.extend(b"cached");
    p.inflight = Some(super::port::InFlight {
        head: 9,
        data: b"in flight".to_vec(),
        offset: 3,
    });
    p.to_guest.extend(b"to guest");
    p.stats = super::PortStats {
        to_host: 11,
        to_guest: 13,
        dropped_to_host: 17,
        dropped_to_guest: 19,
    };
    let p = c.ports.get_mut(&0).unwrap();
    p.ready = true;
    p.guest_connected = true;
}

/// Everything a snapshot restores, for comparing two devices.
fn snapshot_view(c: &Console) -> String {
    format!(
        "{:?} {} {:?} {:?} {:?}",
        c.config, c.control.driver_ready, c.control.out, c.stats, c.ports
    )
}

/// A version 1 snapshot restores into a device configured like the saved one, every field in
/// place.
#[test]
fn snapshot_v1_golden_bytes_restore() {
    let mut saved = golden_console();
    golden_state(&mut saved);
    let mut fresh = golden_console();
    fresh.restore_blob(SNAPSHOT_V1).unwrap();
    assert_eq!(snapshot_view(&fresh), snapshot_view(&saved));
}

/// A snapshot written by the version 2 format (postcard), of [`golden_console`] in
/// [`golden_state`].
const SNAPSHOT_V2: &[u8] = include_bytes!("snapshot-v2.bin");

/// What is saved now is version 2, byte for byte as pinned (a change here is a format change:
/// bump the version and keep reading the old one). See
/// [`crate::test_utils::assert_golden`] to rewrite it.
#[test]
fn snapshot_v2_golden_bytes_are_current() {
    let mut c = golden_console();
    golden_state(&mut c);
    let blob = c.save_blob();
    crate::test_utils::assert_golden(&blob, SNAPSHOT_V2, "src/console/snapshot-v2.bin");
    let mut fresh = golden_console();
    fresh.restore_blob(SNAPSHOT_V2).unwrap();
    assert_eq!(snapshot_view(&fresh), snapshot_view(&c));
}

/// A damaged snapshot of either version is an error and leaves the device as it was.
#[test]
fn damaged_snapshots_change_nothing() {
    let fresh = snapshot_view(&golden_console());
    for good in [SNAPSHOT_V1, SNAPSHOT_V2] {
        let mut bad_versions = vec![good.to_vec()];
        let mut newer = good.to_vec();
        newer[4] = 3;
        bad_versions.push(newer);
        let mut trailing = good.to_vec();
        trailing.push(0);
        bad_versions.push(trailing);
        for cut in [0, 4, 8, 9, good.len() / 2, good.len() - 1] {
            bad_versions.push(good[..cut].to_vec());
        }
        for (i, blob) in bad_versions.iter().enumerate().skip(1) {
            let mut c = golden_console();
            assert!(
                c.restore_blob(blob).is_err(),
                "damaged snapshot {i} restored"
            );
            assert_eq!(
                snapshot_view(&c),
                fresh,
                "damaged snapshot {i} changed the device"
            );
        }
        // Another port layout is refused.
        let mut other = console(4);
        other
            .add_port(PortConfig::console("hvc0"), Backend::None)
            .unwrap();
        assert!(other.restore_blob(good).is_err());
    }
}

/// A stream backend in memory: what the test puts in `inbox` is read by the device, what the
/// guest writes lands in `outbox`, and `connected` is the peer.
#[derive(Default)]
struct FakeStreamState {
    connected: bool,
    /// Whether the connection was taken (accepted) by the device.
    accepted: bool,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
}

struct FakeStream(Arc<Mutex<FakeStreamState>>);

impl super::StreamBackend for FakeStream {
    fn describe(&self) -> String {
        "fake".into()
    }
    fn connected(&self) -> bool {
        let s = self.0.lock().unwrap();
        s.connected && s.accepted
    }
    fn accept(&mut self) -> bool {
        let mut s = self.0.lock().unwrap();
        let new = s.connected && !s.accepted;
        s.accepted |= new;
        new
    }
    fn read(&mut self, buf: &mut [u8]) -> super::ReadOutcome {
        let mut s = self.0.lock().unwrap();
        if !s.connected {
            return super::ReadOutcome::Closed;
        }
        let n = buf.len().min(s.inbox.len());
        if n == 0 {
            return super::ReadOutcome::WouldBlock;
        }
        buf[..n].copy_from_slice(&s.inbox[..n]);
        s.inbox.drain(..n);
        super::ReadOutcome::Data(n)
    }
    fn write(&mut self, data: &[u8]) -> Option<usize> {
        let mut s = self.0.lock().unwrap();
        if !s.connected {
            return None;
        }
        s.outbox.extend_from_slice(data);
        Some(data.len())
    }
    fn disconnect(&mut self) {
        let mut s = self.0.lock().unwrap();
        s.accepted = false;
        s.connected = false;
    }
    fn fds(&self, _conn: super::Interest) -> Option<(std::os::fd::RawFd, super::Interest)> {
        None
    }
}

/// Any stream backend serves a port as a socket does, through the interface alone: its peer
/// connecting opens the host side, its bytes reach the guest, the guest's reach it, and the
/// peer leaving closes the host side.
#[test]
fn a_stream_backend_serves_a_port_through_the_interface() {
    let state = Arc::new(Mutex::new(FakeStreamState::default()));
    let mut c = console(4);
    let stream = Backend::Stream(Box::new(FakeStream(state.clone())));
    assert_eq!(c.add_port(PortConfig::new("data"), stream).unwrap(), 1);
    let mut d = Driver::up(c);
    assert_eq!(
        d.handshake(&[1], &[1]),
        [msg(1, control::PORT_NAME, 1, b"data")]
    );
    assert!(matches!(
        d.console_mut().open(1),
        Err(ConsoleError::SocketPort(1))
    ));

    // The peer connects: the host side opens.
    state.lock().unwrap().connected = true;
    assert!(d.console_mut().poll_backends());
    assert_eq!(d.ctrl_msgs(), [msg(1, control::PORT_OPEN, 1, &[])]);
    d.ctrl(1, control::PORT_OPEN, 1);

    // Both ways.
    state.lock().unwrap().inbox.extend_from_slice(b"from host");
    let rq = rx_queue(1);
    d.post_rx(rq, 64);
    d.notify(rq);
    assert!(d.console_mut().poll_backends());
    assert_eq!(d.used(rq)[0].data, b"from host");
    let tq = tx_queue(1);
    let h = d.tx(tq, b"from guest");
    assert_eq!(d.used_heads(tq), [(h, 0)]);
    assert_eq!(state.lock().unwrap().outbox, b"from guest");

    // The peer leaves: the host side closes.
    state.lock().unwrap().connected = false;
    assert!(d.console_mut().poll_backends());
    assert_eq!(d.ctrl_msgs(), [msg(1, control::PORT_OPEN, 0, &[])]);
    assert!(!d.console().port_info(1).unwrap().host_connected);
    assert_eq!(d.stats().bad_chains, 0);
}

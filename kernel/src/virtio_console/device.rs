//! virtio-console over any virtio transport: the virtqueues wired to the [`Multiport`] state
//! machine.
//!
//! Generic over virtio-drivers' [`Hal`] and [`Transport`], so the same code drives QEMU's and
//! the bundled VMM's virtio-serial-pci in the guest and an in-process device model in host
//! tests. All queues (control and every port's pair, up to `max_nr_ports`) are set up before
//! DRIVER_OK, as Linux does; a port's receive buffers are posted when the host adds the port.
//!
//! Flow control follows the Linux driver: a receive buffer the port has no room for is kept
//! (not re-posted) until the reader drains the port, so a port nobody reads stops only its
//! own queue; transmit data is taken from the port only while its transmit queue has room.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use bitflags::bitflags;
use virtio_drivers::Hal;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::{DeviceType, Transport};

use super::control::{
    CONTROL_RX, CONTROL_TX, HEADER_LEN, config_offset, feature, rx_queue, tx_queue,
};
use super::ports::{DriverAction, Multiport};

bitflags! {
    /// The feature bits this driver knows (virtio 1.x, console device).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Features: u64 {
        /// Console size in the configuration space.
        const SIZE = feature::SIZE;
        /// Several ports and the control queues.
        const MULTIPORT = feature::MULTIPORT;
        /// The emergency write register.
        const EMERG_WRITE = feature::EMERG_WRITE;
        /// Modern (non-legacy) device.
        const VERSION_1 = 1 << 32;
    }
}

/// Descriptors in each control queue (QEMU offers 32).
pub const CONTROL_QUEUE_SIZE: usize = super::control::CONTROL_QUEUE_SIZE as usize;
/// Size of each control receive buffer: a header and the longest name we accept, with room.
pub const CONTROL_BUF_SIZE: usize = 512;
/// Most control messages the device sends in answer to one of ours.
const REPLIES_PER_MESSAGE: usize = 4;
/// Descriptors in each port queue (QEMU offers 128).
pub const PORT_QUEUE_SIZE: usize = 32;
/// Receive buffers posted per port, each [`RX_BUF_SIZE`] bytes.
pub const RX_BUFS: usize = 16;
/// Size of one receive buffer (Linux uses a page).
pub const RX_BUF_SIZE: usize = 4096;
/// Transmit buffers in flight per port.
pub const TX_INFLIGHT: usize = 8;
/// Largest transmit buffer.
pub const TX_CHUNK: usize = 16 * 1024;
/// Ports this driver supports, whatever max_nr_ports says (Linux has no cap; each port costs
/// two queues).
pub const MAX_PORTS: u32 = 64;

const CONFIG_COLS: usize = config_offset::COLS;
const CONFIG_ROWS: usize = config_offset::ROWS;
const CONFIG_MAX_NR_PORTS: usize = config_offset::MAX_NR_PORTS;
/// Offset of `emerg_wr` in the device configuration.
pub const CONFIG_EMERG_WR: usize = config_offset::EMERG_WR;

/// What can go wrong bringing the device up.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The transport is not a console.
    #[error("not a virtio console (device type {0:?})")]
    NotConsole(DeviceType),
    /// Named ports need MULTIPORT.
    #[error("the device does not offer MULTIPORT")]
    NoMultiport,
    /// The device does not speak virtio 1.
    #[error("the device does not offer VERSION_1")]
    NotModern,
    /// Setting up or using a queue failed.
    #[error("virtqueue {queue}: {source}")]
    Queue {
        /// The queue index.
        queue: u16,
        /// What virtio-drivers said.
        source: virtio_drivers::Error,
    },
    /// Reading the configuration space failed.
    #[error("configuration space: {0}")]
    Config(virtio_drivers::Error),
}

/// Facts read from the device at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Negotiated features.
    pub features: Features,
    /// `max_nr_ports` from the configuration space.
    pub max_nr_ports: u32,
    /// Ports this driver serves (`max_nr_ports` capped at [`MAX_PORTS`]).
    pub ports: u32,
    /// Console size, when SIZE was negotiated: (cols, rows).
    pub size: Option<(u16, u16)>,
}

/// A queue and the buffers the device holds, indexed by token (the head descriptor).
struct Queue<H: Hal, const SIZE: usize> {
    index: u16,
    vq: VirtQueue<H, SIZE>,
    slots: Vec<Option<Box<[u8]>>>,
    kick: bool,
}

impl<H: Hal, const SIZE: usize> Queue<H, SIZE> {
    fn new<T: Transport>(transport: &mut T, index: u16) -> Result<Self, DeviceError> {
        let vq = VirtQueue::new(transport, index, false, false).map_err(|source| {
            DeviceError::Queue {
                queue: index,
                source,
            }
        })?;
        Ok(Self {
            index,
            vq,
            slots: (0..SIZE).map(|_| None).collect(),
            kick: false,
        })
    }

    fn in_flight(&self) -> usize {
        SIZE - self.vq.available_desc()
    }

    /// Gives the device a buffer to fill.
    fn post_rx(&mut self, mut buf: Box<[u8]>) -> Result<(), Box<[u8]>> {
        // SAFETY: the buffer is moved into `slots` right after and stays there, untouched and
        // at a fixed heap address, until `pop` hands it back with the same token.
        let token = match unsafe { self.vq.add(&[], &mut [&mut buf[..]]) } {
            Ok(token) => token,
            Err(_) => return Err(buf),
        };
        self.slots[usize::from(token)] = Some(buf);
        self.kick = true;
        Ok(())
    }

    /// Gives the device a buffer to read.
    fn post_tx(&mut self, buf: Box<[u8]>) -> Result<(), Box<[u8]>> {
        // SAFETY: as in `post_rx`; the device only reads this buffer.
        let token = match unsafe { self.vq.add(&[&buf[..]], &mut []) } {
            Ok(token) => token,
            Err(_) => return Err(buf),
        };
        self.slots[usize::from(token)] = Some(buf);
        self.kick = true;
        Ok(())
    }

    /// Takes back the next buffer the device used, with the length it wrote.
    fn pop(&mut self, device_writes: bool) -> Option<(Box<[u8]>, usize)> {
        let token = self.vq.peek_used()?;
        let Some(mut buf) = self
            .slots
            .get_mut(usize::from(token))
            .and_then(Option::take)
        else {
            // A token we never handed out: the device is broken. Stop using this queue rather
            // than corrupting the free list.
            log::error!(
                "virtqueue {}: device used unknown token {token}",
                self.index
            );
            return None;
        };
        // SAFETY: `buf` is the buffer added with this token, in the same direction.
        let used = unsafe {
            if device_writes {
                self.vq.pop_used(token, &[], &mut [&mut buf[..]])
            } else {
                self.vq.pop_used(token, &[&buf[..]], &mut [])
            }
        };
        match used {
            Ok(len) => {
                let len = (len as usize).min(buf.len());
                Some((buf, len))
            }
            Err(e) => {
                log::error!("virtqueue {}: {e}", self.index);
                self.slots[usize::from(token)] = Some(buf);
                None
            }
        }
    }

    fn kick<T: Transport>(&mut self, transport: &mut T) {
        if self.kick {
            self.kick = false;
            if self.vq.should_notify() {
                transport.notify(self.index);
            }
        }
    }
}

/// A received buffer not yet (fully) handed to its port.
struct Pending {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

/// One port's queue pair.
struct PortQueues<H: Hal> {
    rx: Queue<H, PORT_QUEUE_SIZE>,
    tx: Queue<H, PORT_QUEUE_SIZE>,
    /// Posted receive buffers (including those the device holds).
    rx_posted: usize,
    pending: VecDeque<Pending>,
    active: bool,
}

/// Counters for diagnostics and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Control messages received.
    pub control_in: u64,
    /// Control messages sent.
    pub control_out: u64,
    /// Data bytes received.
    pub rx_bytes: u64,
    /// Data bytes sent.
    pub tx_bytes: u64,
}

/// A running virtio-console with MULTIPORT.
pub struct ConsoleDevice<H: Hal, T: Transport> {
    transport: T,
    info: DeviceInfo,
    control_rx: Queue<H, CONTROL_QUEUE_SIZE>,
    control_tx: Queue<H, CONTROL_QUEUE_SIZE>,
    control_out: VecDeque<[u8; HEADER_LEN]>,
    ports: Vec<PortQueues<H>>,
    multiport: Multiport,
    stats: Stats,
}

fn port_queues(port: u32) -> (u16, u16) {
    (rx_queue(port), tx_queue(port))
}

impl<H: Hal, T: Transport> ConsoleDevice<H, T> {
    /// Brings the device up: negotiates features, sets up every queue, calls `before_ok`
    /// (where a PCI transport routes the queues to MSI-X vectors), sets DRIVER_OK, fills the
    /// control receive queue and sends DEVICE_READY.
    pub fn new(mut transport: T, before_ok: impl FnOnce(&mut T, u16)) -> Result<Self, DeviceError> {
        let kind = transport.device_type();
        if kind != DeviceType::Console {
            return Err(DeviceError::NotConsole(kind));
        }
        let features = transport.begin_init(Features::all());
        if !features.contains(Features::VERSION_1) {
            return Err(DeviceError::NotModern);
        }
        if !features.contains(Features::MULTIPORT) {
            return Err(DeviceError::NoMultiport);
        }
        let max_nr_ports: u32 = transport
            .read_config_space(CONFIG_MAX_NR_PORTS)
            .map_err(DeviceError::Config)?;
        let size = if features.contains(Features::SIZE) {
            let cols: u16 = transport
                .read_config_space(CONFIG_COLS)
                .map_err(DeviceError::Config)?;
            let rows: u16 = transport
                .read_config_space(CONFIG_ROWS)
                .map_err(DeviceError::Config)?;
            Some((cols, rows))
        } else {
            None
        };
        let nports = max_nr_ports.clamp(1, MAX_PORTS);
        if max_nr_ports > MAX_PORTS {
            log::warn!(
                "virtio-console: max_nr_ports {max_nr_ports}; serving the first {MAX_PORTS}"
            );
        }
        let info = DeviceInfo {
            features,
            max_nr_ports,
            ports: nports,
            size,
        };

        let control_rx = Queue::new(&mut transport, CONTROL_RX)?;
        let control_tx = Queue::new(&mut transport, CONTROL_TX)?;
        let mut ports = Vec::with_capacity(nports as usize);
        for port in 0..nports {
            let (rx, tx) = port_queues(port);
            ports.push(PortQueues {
                rx: Queue::new(&mut transport, rx)?,
                tx: Queue::new(&mut transport, tx)?,
                rx_posted: 0,
                pending: VecDeque::new(),
                active: false,
            });
        }
        let queues = port_queues(nports - 1).1 + 1;
        before_ok(&mut transport, queues);
        transport.finish_init();

        let mut dev = Self {
            transport,
            info,
            control_rx,
            control_tx,
            control_out: VecDeque::new(),
            ports,
            multiport: Multiport::new(nports),
            stats: Stats::default(),
        };
        while dev.control_rx.in_flight() < CONTROL_QUEUE_SIZE {
            if dev
                .control_rx
                .post_rx(vec![0u8; CONTROL_BUF_SIZE].into_boxed_slice())
                .is_err()
            {
                break;
            }
        }
        dev.control_rx.kick(&mut dev.transport);
        dev.multiport.device_ready(true);
        dev.poll();
        Ok(dev)
    }

    /// What the device offered.
    pub fn info(&self) -> DeviceInfo {
        self.info
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// True when everything written to the ports has gone: no bytes wait in a port's
    /// transmit buffer and the device holds no transmit buffer it has not finished with.
    pub fn tx_idle(&self) -> bool {
        self.multiport.tx_ready().next().is_none()
            && self.ports.iter().all(|q| q.tx.in_flight() == 0)
    }

    /// The ports and their API.
    pub fn ports(&mut self) -> &mut Multiport {
        &mut self.multiport
    }

    /// Moves everything that can move: control messages both ways, received data into the
    /// ports, written data onto the transmit queues. Returns true if anything happened.
    pub fn poll(&mut self) -> bool {
        let mut progress = false;
        progress |= self.receive_control();
        progress |= self.run_actions();
        for id in 0..self.ports.len() {
            progress |= self.receive_port(id as u32);
        }
        progress |= self.transmit_ports();
        progress |= self.transmit_control();
        progress
    }

    fn receive_control(&mut self) -> bool {
        let mut progress = false;
        while let Some((buf, len)) = self.control_rx.pop(true) {
            progress = true;
            self.stats.control_in += 1;
            log::trace!("control in: {:02x?}", &buf[..len.min(16)]);
            if let Err(e) = self.multiport.handle_control(&buf[..len]) {
                log::warn!("virtio-console: ignored control message: {e}");
            }
            if let Err(buf) = self.control_rx.post_rx(buf) {
                drop(buf);
                log::error!("virtio-console: control receive queue full");
            }
        }
        self.control_rx.kick(&mut self.transport);
        progress
    }

    fn run_actions(&mut self) -> bool {
        let mut progress = false;
        while let Some(action) = self.multiport.next_action() {
            progress = true;
            match action {
                DriverAction::SetUpPort(id) => {
                    let ok = match self.ports.get_mut(id as usize) {
                        Some(q) => {
                            q.active = true;
                            true
                        }
                        None => false,
                    };
                    if ok {
                        self.refill(id);
                    }
                    self.multiport.port_set_up(id, ok);
                }
                DriverAction::TearDownPort(id) => {
                    // The queues stay (they belong to the device); posted receive buffers
                    // stay posted for a port re-added with this id. Unread data goes.
                    if let Some(q) = self.ports.get_mut(id as usize) {
                        q.active = false;
                        q.pending.clear();
                    }
                }
            }
        }
        progress
    }

    /// Posts receive buffers up to [`RX_BUFS`], unless data is waiting for room in the port.
    fn refill(&mut self, id: u32) {
        let Some(q) = self.ports.get_mut(id as usize) else {
            return;
        };
        if !q.active || !q.pending.is_empty() {
            return;
        }
        while q.rx_posted < RX_BUFS {
            if q.rx
                .post_rx(vec![0u8; RX_BUF_SIZE].into_boxed_slice())
                .is_err()
            {
                break;
            }
            q.rx_posted += 1;
        }
        q.rx.kick(&mut self.transport);
    }

    fn receive_port(&mut self, id: u32) -> bool {
        let Some(q) = self.ports.get_mut(id as usize) else {
            return false;
        };
        let mut progress = false;
        while let Some((buf, len)) = q.rx.pop(true) {
            progress = true;
            self.stats.rx_bytes += len as u64;
            log::trace!("port {id}: received {len} bytes (active {})", q.active);
            if q.active {
                q.pending.push_back(Pending {
                    buf,
                    start: 0,
                    end: len,
                });
            } else {
                q.rx_posted -= 1;
            }
        }
        // Hand pending data over as far as the port has room; re-post the emptied buffers.
        while let Some(p) = q.pending.front_mut() {
            let room = self.multiport.rx_space(id);
            let n = room.min(p.end - p.start);
            if n == 0 && p.end > p.start {
                break;
            }
            // `deliver` keeps all of it (port open) or discards all of it (port closed).
            self.multiport.deliver(id, &p.buf[p.start..p.start + n]);
            p.start += n;
            progress = true;
            if p.start == p.end {
                let Some(Pending { buf, .. }) = q.pending.pop_front() else {
                    break;
                };
                if q.rx.post_rx(buf).is_err() {
                    q.rx_posted -= 1;
                }
            }
        }
        q.rx.kick(&mut self.transport);
        if q.pending.is_empty() && q.rx_posted < RX_BUFS && q.active {
            self.refill(id);
        }
        progress
    }

    fn transmit_ports(&mut self) -> bool {
        let mut progress = false;
        for (id, q) in self.ports.iter_mut().enumerate() {
            while q.tx.pop(false).is_some() {
                progress = true;
            }
            let id = id as u32;
            while q.tx.in_flight() < TX_INFLIGHT {
                let data = self.multiport.take_tx(id, TX_CHUNK);
                if data.is_empty() {
                    break;
                }
                progress = true;
                self.stats.tx_bytes += data.len() as u64;
                if q.tx.post_tx(data.into_boxed_slice()).is_err() {
                    // Cannot happen (in_flight < TX_INFLIGHT <= queue size): say so if it does.
                    log::error!("virtio-console: port {id} transmit queue refused a buffer");
                    break;
                }
            }
            q.tx.kick(&mut self.transport);
        }
        progress
    }

    fn transmit_control(&mut self) -> bool {
        let mut progress = false;
        while self.control_tx.pop(false).is_some() {
            progress = true;
        }
        while let Some(msg) = self.multiport.next_control() {
            self.control_out.push_back(msg.encode());
        }
        // QEMU drops a control message when the control receive queue has no buffer, and
        // answers each of ours with up to four (CONSOLE_PORT, RESIZE, PORT_NAME, PORT_OPEN).
        // So send a batch only when the last one is done, small enough that the answers fit
        // in the receive buffers (all re-posted by `receive_control` just before).
        if self.control_tx.in_flight() > 0 {
            return progress;
        }
        let mut batch = CONTROL_QUEUE_SIZE / REPLIES_PER_MESSAGE;
        while let Some(msg) = self.control_out.front() {
            if batch == 0
                || self
                    .control_tx
                    .post_tx(Box::new(*msg) as Box<[u8]>)
                    .is_err()
            {
                break;
            }
            batch -= 1;
            self.control_out.pop_front();
            self.stats.control_out += 1;
            progress = true;
        }
        self.control_tx.kick(&mut self.transport);
        progress
    }
}

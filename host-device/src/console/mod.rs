//! virtio-console with MULTIPORT: the device model.
//!
//! - [`control`]: the control-queue wire format;
//! - [`port`]: one port's properties, connection flags and held bytes;
//! - [`backend`]: the in-process handler API;
//! - [`socket`]: the unix socket backend;
//! - `state`: the snapshot of the whole device.
//!
//! The host half of the control flow (virtio 1.x 5.3.6, and what QEMU's virtio-serial-bus does):
//! the guest sends DEVICE_READY, the device answers PORT_ADD for every port; the guest sends
//! PORT_READY per port and the device answers CONSOLE_PORT (console ports), PORT_NAME, and
//! PORT_OPEN when the host side is connected. Either side opening or closing later sends
//! PORT_OPEN. Unlike QEMU, control messages for the guest are queued while the guest has no
//! control buffer and never dropped; while many are queued, the guest's own control messages
//! are not read (back-pressure), so a guest cannot make the queue grow without bound.
//!
//! Data moves only while both sides are connected, except what `cache_buffers` keeps (see
//! [`PortConfig`]). Guest output the backend cannot take now stays in the transmit chain that
//! holds it ("throttled", as QEMU); host data waits in a queue toward the guest bounded by
//! `guest_byte_limit`, and sockets are not read while that queue is full.
//!
//! Everything from the guest is checked: queue addresses and chains by virtio-queue and
//! vm-memory, control messages here (unknown ids and events are counted in
//! [`ConsoleStats::bad_control`] and logged, never acted on).

pub mod backend;
mod chain;
pub mod control;
pub mod port;
pub mod socket;
mod state;

use std::collections::BTreeMap;
use std::os::fd::RawFd;

pub use backend::{ChannelHandler, PortEvent, PortHandler};
pub use port::{Backend, PortConfig, PortInfo, PortStats};
pub use socket::{Interest, SocketBackend, SocketError};

use crate::active::{ActiveQueues, pop_chain};
use crate::virtio::{
    ActivateContext, ActivateError, DeviceState, VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC,
    VirtioDevice,
};
use chain::ChainError;
use control::{Control, ControlAction, Header};
use port::{InFlight, MAX_NAME_LEN, Port};
use socket::ReadOutcome;
use virtio_console_wire::{
    CONTROL_RX, CONTROL_TX, ConsoleConfig as ConfigLayout, QueueRole, config_offset, feature,
    queue_role,
};
use zerocopy::IntoBytes;

pub use virtio_console_wire::{CONTROL_QUEUE_SIZE, DEVICE_ID, rx_queue, tx_queue};
/// Console size in the configuration space.
pub const F_SIZE: u64 = feature::SIZE;
/// Several ports and the control queues.
pub const F_MULTIPORT: u64 = feature::MULTIPORT;
/// The emergency write register.
pub const F_EMERG_WRITE: u64 = feature::EMERG_WRITE;
/// Default entries in each port queue (as QEMU).
pub const DEFAULT_QUEUE_SIZE: u16 = 128;
/// Default number of ports (as QEMU's `max_ports`).
pub const DEFAULT_MAX_PORTS: u32 = 31;
/// Most ports a device can have: two queues each plus the control pair within virtio-pci's
/// 1024 queues.
pub const MAX_PORTS_LIMIT: u32 = 511;
/// Largest transmit chain accepted. A chain's length is the guest's to choose; reading a
/// larger one would let the guest make the host allocate without bound. Linux writes at
/// most 32 KiB per chain.
pub const MAX_CHAIN_BYTES: usize = 1 << 20;
/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What can go wrong using the device's host API.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No port has that id.
    #[error("no port {0}")]
    NoSuchPort(u32),
    /// Every id below max_nr_ports is taken.
    #[error("all {0} ports are in use")]
    PortsFull(u32),
    /// A port already has that name.
    #[error("a port is already named {0:?}")]
    DuplicateName(String),
    /// The name is too long or holds a NUL.
    #[error("bad port name {0:?} (at most {MAX_NAME_LEN} bytes, no NUL)")]
    BadName(String),
    /// Port 0 is taken (it is where a console port goes).
    #[error("port 0 (the console port) is already in use")]
    ConsoleTaken,
    /// The host side is closed: open it first.
    #[error("port {0}: the host side is not open")]
    HostClosed(u32),
    /// A socket port is opened and closed by its peer, not through the API.
    #[error("port {0} is served by a socket")]
    SocketPort(u32),
    /// A bad device configuration.
    #[error("bad console configuration: {0}")]
    BadConfig(String),
}

/// Device-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Ports the guest may see (QEMU's `max_ports`), 1 to [`MAX_PORTS_LIMIT`].
    pub max_nr_ports: u32,
    /// Entries in each port queue, a power of two up to 32768.
    pub queue_size: u16,
    /// Console columns in the configuration space.
    pub cols: u16,
    /// Console rows in the configuration space.
    pub rows: u16,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            max_nr_ports: DEFAULT_MAX_PORTS,
            queue_size: DEFAULT_QUEUE_SIZE,
            cols: 0,
            rows: 0,
        }
    }
}

/// Device-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsoleStats {
    /// Control messages from the guest that were malformed or made no sense.
    pub bad_control: u64,
    /// Descriptor chains that could not be used (bad addresses, wrong direction, too long).
    pub bad_chains: u64,
    /// Control messages sent to the guest.
    pub control_sent: u64,
    /// Control messages waiting for a guest buffer.
    pub control_pending: usize,
}

/// The virtio-console device.
pub struct Console {
    config: ConsoleConfig,
    ports: BTreeMap<u32, Port>,
    active: Option<ActiveQueues>,
    control: Control,
    stats: ConsoleStats,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("config", &self.config)
            .field("ports", &self.ports.keys().collect::<Vec<_>>())
            .field("active", &self.active.is_some())
            .field("driver_ready", &self.control.driver_ready)
            .finish()
    }
}

impl Console {
    /// A device with no ports yet.
    pub fn new(config: ConsoleConfig) -> Result<Self, ConsoleError> {
        if config.max_nr_ports == 0 || config.max_nr_ports > MAX_PORTS_LIMIT {
            return Err(ConsoleError::BadConfig(format!(
                "max_nr_ports {} is not in 1..={MAX_PORTS_LIMIT}",
                config.max_nr_ports
            )));
        }
        if !config.queue_size.is_power_of_two() || config.queue_size > 32768 {
            return Err(ConsoleError::BadConfig(format!(
                "queue size {} is not a power of two up to 32768",
                config.queue_size
            )));
        }
        Ok(Console {
            config,
            ports: BTreeMap::new(),
            active: None,
            control: Control::default(),
            stats: ConsoleStats::default(),
            scratch: vec![0; READ_CHUNK],
        })
    }

    /// The device settings.
    pub fn config(&self) -> ConsoleConfig {
        self.config
    }

    /// Counters.
    pub fn stats(&self) -> ConsoleStats {
        ConsoleStats {
            control_pending: self.control.out.len(),
            ..self.stats
        }
    }

    /// Whether the guest driver is up (DEVICE_READY received since the last reset).
    pub fn driver_ready(&self) -> bool {
        self.control.driver_ready
    }

    /// Adds a port (at start-up or hot-plugged) and returns its id: 0 for a console port, else
    /// the lowest free id from 1 (ids 1.. are `virtserialport`s, as in QEMU). A running guest
    /// is told with PORT_ADD.
    pub fn add_port(&mut self, config: PortConfig, backend: Backend) -> Result<u32, ConsoleError> {
        if config.name.len() > MAX_NAME_LEN || config.name.contains('\0') {
            return Err(ConsoleError::BadName(config.name));
        }
        if !config.name.is_empty() && self.find_port(&config.name).is_some() {
            return Err(ConsoleError::DuplicateName(config.name));
        }
        let id = if config.console {
            if self.ports.contains_key(&0) {
                return Err(ConsoleError::ConsoleTaken);
            }
            0
        } else {
            (1..self.config.max_nr_ports)
                .find(|id| !self.ports.contains_key(id))
                .ok_or(ConsoleError::PortsFull(self.config.max_nr_ports))?
        };
        self.ports.insert(id, Port::new(config, backend));
        if self.control.announces(self.multiport()) {
            self.control.send(id, control::PORT_ADD, 1, &[]);
        }
        self.finish();
        Ok(id)
    }

    /// Removes a port (hot-unplug): the guest is told with PORT_REMOVE, chains it queued for
    /// the port are returned unread, and what was held for either side is dropped.
    pub fn remove_port(&mut self, id: u32) -> Result<(), ConsoleError> {
        let port = self.ports.remove(&id).ok_or(ConsoleError::NoSuchPort(id))?;
        if let Some(act) = self.active.as_mut() {
            let q = tx_queue(id);
            if let Some(f) = &port.inflight {
                act.add_used(q, f.head, 0);
            }
            act.discard_available(q);
        }
        if self.control.announces(self.multiport()) {
            self.control.send(id, control::PORT_REMOVE, 1, &[]);
        }
        self.finish();
        Ok(())
    }

    /// The id of the port named `name`.
    pub fn find_port(&self, name: &str) -> Option<u32> {
        self.ports
            .iter()
            .find(|(_, p)| p.config.name == name)
            .map(|(id, _)| *id)
    }

    /// All ports, by id.
    pub fn ports(&self) -> Vec<PortInfo> {
        self.ports.iter().map(|(id, p)| p.info(*id)).collect()
    }

    /// One port.
    pub fn port_info(&self, id: u32) -> Result<PortInfo, ConsoleError> {
        Ok(self.port(id)?.info(id))
    }

    fn port(&self, id: u32) -> Result<&Port, ConsoleError> {
        self.ports.get(&id).ok_or(ConsoleError::NoSuchPort(id))
    }

    fn port_mut(&mut self, id: u32) -> Result<&mut Port, ConsoleError> {
        self.ports.get_mut(&id).ok_or(ConsoleError::NoSuchPort(id))
    }

    /// Opens the host side of a port served in-process (`virtio_serial_open`).
    pub fn open(&mut self, id: u32) -> Result<(), ConsoleError> {
        self.api_set_host(id, true)
    }

    /// Closes the host side of a port served in-process (`virtio_serial_close`).
    pub fn close(&mut self, id: u32) -> Result<(), ConsoleError> {
        self.api_set_host(id, false)
    }

    fn api_set_host(&mut self, id: u32, open: bool) -> Result<(), ConsoleError> {
        if matches!(self.port(id)?.backend, Backend::Socket(_)) {
            return Err(ConsoleError::SocketPort(id));
        }
        self.set_host_connected(id, open);
        self.finish();
        Ok(())
    }

    /// Writes host data toward the guest (`virtio_serial_write`) and returns how many bytes
    /// were taken: all of `data` if it fits under `guest_byte_limit`, else what fits. While the
    /// guest has the port closed the data is kept (`cache_buffers` on) or dropped (off, and
    /// then all of it counts as taken).
    pub fn write(&mut self, id: u32, data: &[u8]) -> Result<usize, ConsoleError> {
        let port = self.port(id)?;
        if !port.host_connected {
            return Err(ConsoleError::HostClosed(id));
        }
        let n = self.queue_to_guest(id, data);
        self.finish();
        Ok(n)
    }

    /// How many bytes [`Console::write`] takes now without dropping any
    /// (`virtio_serial_guest_ready`): 0 while the guest has the port closed and
    /// `cache_buffers` is off, else the room under `guest_byte_limit`.
    pub fn guest_ready(&self, id: u32) -> Result<usize, ConsoleError> {
        let port = self.port(id)?;
        if port.drops_to_guest() {
            return Ok(0);
        }
        Ok(port.guest_room())
    }

    /// Stops (`true`) or resumes offering guest output to the backend
    /// (`virtio_serial_throttle_port`). While throttled the guest's chains stay in its queue.
    pub fn throttle(&mut self, id: u32, throttled: bool) -> Result<(), ConsoleError> {
        self.port_mut(id)?.api_throttled = throttled;
        if !throttled {
            self.process_tx(id);
        }
        self.finish();
        Ok(())
    }

    /// Does the socket work that is ready: accepts connections, reads what the guest has room
    /// for, writes guest output that waited for a full socket. Returns whether anything moved.
    /// Call it when a descriptor from [`Console::fds`] is ready (or periodically).
    pub fn poll_backends(&mut self) -> bool {
        let ids: Vec<u32> = self.ports.keys().copied().collect();
        let mut progress = false;
        for id in ids {
            progress |= self.poll_socket(id);
        }
        self.finish();
        progress
    }

    fn poll_socket(&mut self, id: u32) -> bool {
        let mut progress = false;
        let Some(port) = self.ports.get_mut(&id) else {
            return false;
        };
        let Backend::Socket(sock) = &mut port.backend else {
            return false;
        };
        if sock.accept() {
            self.set_host_connected(id, true);
            progress = true;
        }
        if self.ports.get(&id).is_some_and(|p| p.socket_full) {
            self.port_mut(id).map(|p| p.socket_full = false).ok();
            progress |= self.process_tx(id);
        }
        while let Some(port) = self.ports.get_mut(&id) {
            if !port.host_connected {
                break;
            }
            let drop_mode = port.drops_to_guest();
            let budget = if drop_mode {
                READ_CHUNK
            } else {
                port.guest_room().min(READ_CHUNK)
            };
            if budget == 0 {
                break;
            }
            let Backend::Socket(sock) = &mut port.backend else {
                break;
            };
            match sock.read(&mut self.scratch[..budget]) {
                ReadOutcome::Data(n) => {
                    progress = true;
                    let data = std::mem::take(&mut self.scratch);
                    self.queue_to_guest(id, &data[..n]);
                    self.scratch = data;
                }
                ReadOutcome::WouldBlock => break,
                ReadOutcome::Closed => {
                    self.set_host_connected(id, false);
                    progress = true;
                    break;
                }
            }
        }
        progress
    }

    /// What to wait for before calling [`Console::poll_backends`]: each socket port's
    /// listener or connection, readable while the guest has room for more, writable while
    /// guest output waits for the socket.
    pub fn fds(&self) -> Vec<(RawFd, Interest)> {
        let mut fds = Vec::new();
        self.socket_fds(&mut fds);
        fds
    }

    /// [`Console::fds`], appended to `fds`.
    fn socket_fds(&self, fds: &mut Vec<(RawFd, Interest)>) {
        fds.extend(self.ports.values().filter_map(|p| match &p.backend {
            Backend::Socket(s) => s.fds(Interest {
                read: p.guest_room() > 0 || p.drops_to_guest(),
                write: p.socket_full,
            }),
            _ => None,
        }));
    }

    fn multiport(&self) -> bool {
        self.active
            .as_ref()
            .is_none_or(|a| a.has_feature(F_MULTIPORT))
    }

    /// How many queued control messages stop us reading the guest's: enough for a full
    /// start-up exchange of every port.
    fn ctrl_backlog_cap(&self) -> usize {
        64 + 4 * self.config.max_nr_ports as usize
    }

    /// Queues host data toward the guest and moves what it can; returns how much was taken.
    fn queue_to_guest(&mut self, id: u32, data: &[u8]) -> usize {
        let Some(port) = self.ports.get_mut(&id) else {
            return 0;
        };
        if port.drops_to_guest() {
            port.stats.dropped_to_guest += data.len() as u64;
            return data.len();
        }
        let n = port.guest_room().min(data.len());
        port.to_guest.extend(&data[..n]);
        self.flush_to_guest(id);
        n
    }

    /// Moves queued host data into the guest's receive buffers while the guest has the port
    /// open.
    fn flush_to_guest(&mut self, id: u32) {
        let (Some(act), Some(port)) = (self.active.as_mut(), self.ports.get_mut(&id)) else {
            return;
        };
        if !port.guest_connected || port.to_guest.is_empty() {
            return;
        }
        let q = rx_queue(id);
        let mut moved = 0u64;
        let mut budget = act.chain_budget(q);
        while !port.to_guest.is_empty() {
            let Some(chain) = pop_chain(&mut act.queues, &act.mem, q, &mut budget) else {
                break;
            };
            let head = chain.head_index();
            let written = match chain::fill_rx(&act.mem, chain, &port.to_guest) {
                Ok(n) => n,
                Err(ChainError::Copy(_)) => {
                    self.stats.bad_chains += 1;
                    0
                }
                Err(e) => {
                    log::warn!("virtio-console: port {id}: bad receive chain: {e}");
                    self.stats.bad_chains += 1;
                    0
                }
            };
            port.to_guest.drain(..written);
            moved += written as u64;
            act.add_used(q, head, written as u32);
        }
        port.stats.to_guest += moved;
        if let (true, Backend::Handler(h)) = (moved > 0, &mut port.backend) {
            h.guest_ready();
        }
    }

    /// Moves guest output toward the backend: what is held first, then new chains. Returns
    /// whether anything moved.
    fn process_tx(&mut self, id: u32) -> bool {
        let Some(act) = self.active.as_mut() else {
            return false;
        };
        let q = tx_queue(id);
        let Some(port) = self.ports.get_mut(&id) else {
            // Chains for a port that does not exist: return them unread (as QEMU discards).
            return act.discard_available(q);
        };
        let mut progress = false;
        let mut budget = act.chain_budget(q);
        loop {
            let (moved, more) = drain_held(act, q, port);
            progress |= moved;
            if !more {
                break;
            }
            let Some(chain) = pop_chain(&mut act.queues, &act.mem, q, &mut budget) else {
                break;
            };
            let head = chain.head_index();
            match chain::read_tx(&act.mem, chain) {
                Ok(data) if data.is_empty() => {
                    log::warn!("virtio-console: port {id}: transmit chain with nothing to read");
                    self.stats.bad_chains += 1;
                    act.add_used(q, head, 0);
                }
                Ok(data) => {
                    port.inflight = Some(InFlight {
                        head,
                        data,
                        offset: 0,
                    })
                }
                Err(e) => {
                    log::warn!("virtio-console: port {id}: bad transmit chain: {e}");
                    self.stats.bad_chains += 1;
                    act.add_used(q, head, 0);
                }
            }
            progress = true;
        }
        progress
    }

    /// Reads the guest's control messages.
    fn process_ctrl_tx(&mut self) {
        let mut budget = self
            .active
            .as_ref()
            .map_or(0, |act| act.chain_budget(CONTROL_TX));
        loop {
            if self.control.out.len() >= self.ctrl_backlog_cap() {
                break;
            }
            let Some(act) = self.active.as_mut() else {
                return;
            };
            let Some(chain) = pop_chain(&mut act.queues, &act.mem, CONTROL_TX, &mut budget) else {
                break;
            };
            let head = chain.head_index();
            let header = chain::read_control(&act.mem, chain);
            act.add_used(CONTROL_TX, head, 0);
            match header {
                Ok(Some(h)) => self.handle_control(h),
                Ok(None) => {
                    log::warn!("virtio-console: short control message");
                    self.stats.bad_control += 1;
                }
                Err(e) => {
                    log::warn!("virtio-console: bad control chain: {e}");
                    self.stats.bad_chains += 1;
                }
            }
        }
    }

    fn bad_control(&mut self, h: Header, why: &str) {
        log::warn!(
            "virtio-console: ignoring {} ({}) for port {} value {}: {why}",
            control::event_name(h.event),
            h.event,
            h.id,
            h.value
        );
        self.stats.bad_control += 1;
    }

    fn handle_control(&mut self, h: Header) {
        match self.control.handle(&mut self.ports, h) {
            Ok(ControlAction::None) => {}
            Ok(ControlAction::GuestOpenChanged { id, open }) => {
                if let Some(port) = self.ports.get_mut(&id) {
                    port.guest_open_changed();
                }
                if open {
                    self.flush_to_guest(id);
                }
            }
            Err(why) => self.bad_control(h, why),
        }
    }

    /// Sends queued control messages into the guest's control buffers.
    fn flush_ctrl(&mut self) {
        let Some(act) = self.active.as_mut() else {
            return;
        };
        if !act.has_feature(F_MULTIPORT) {
            self.control.out.clear();
            return;
        }
        let mut budget = act.chain_budget(CONTROL_RX);
        while let Some(msg) = self.control.out.front() {
            let Some(chain) = pop_chain(&mut act.queues, &act.mem, CONTROL_RX, &mut budget) else {
                break;
            };
            let head = chain.head_index();
            let written = match chain::write_control(&act.mem, chain, msg) {
                Ok(n) => n,
                Err(ChainError::NoRoom) => {
                    self.stats.bad_chains += 1;
                    0
                }
                Err(e) => {
                    log::warn!("virtio-console: bad control receive chain: {e}");
                    self.stats.bad_chains += 1;
                    0
                }
            };
            act.add_used(CONTROL_RX, head, written as u32);
            if written > 0 {
                self.control.out.pop_front();
                self.stats.control_sent += 1;
            }
        }
    }

    fn set_host_connected(&mut self, id: u32, open: bool) {
        let multiport = self.multiport();
        let Some(port) = self.ports.get_mut(&id) else {
            return;
        };
        if port.host_connected == open {
            return;
        }
        port.host_connected = open;
        if !open {
            port.api_throttled = false;
            port.socket_full = false;
            if let Backend::Socket(s) = &mut port.backend {
                s.disconnect();
            }
        }
        let tell = port.ready && multiport && self.control.driver_ready;
        if tell {
            self.control.send(id, control::PORT_OPEN, open as u16, &[]);
        }
        self.process_tx(id);
    }

    /// Finishes an entry point: notices peers that went away during writes, sends control
    /// messages, reads the guest's if there was room, and raises the interrupts owed.
    fn finish(&mut self) {
        // Bounded: a guest that keeps posting control messages cannot keep us here.
        for _ in 0..16 {
            let gone: Vec<u32> = self
                .ports
                .iter()
                .filter(|(_, p)| {
                    p.host_connected && matches!(&p.backend, Backend::Socket(s) if !s.connected())
                })
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                self.set_host_connected(id, false);
            }
            self.flush_ctrl();
            let before = self.control.out.len();
            self.process_ctrl_tx();
            if self.control.out.len() == before {
                break;
            }
        }
        if let Some(act) = self.active.as_mut() {
            act.signal();
        }
    }
}

/// Moves what a port holds toward the backend (or into its cache, or drops it, when the host
/// is closed). Returns (whether anything moved, whether another chain may be taken).
fn drain_held(act: &mut ActiveQueues, q: u16, port: &mut Port) -> (bool, bool) {
    let mut moved = false;
    if !port.host_cache.is_empty() && port.can_send() {
        let mut cache = std::mem::take(&mut port.host_cache);
        let (n, gone) = port.send(cache.make_contiguous());
        cache.drain(..n);
        port.host_cache = cache;
        port.stats.to_host += n as u64;
        moved |= n > 0;
        if gone {
            mark_gone(port);
        }
    }
    if let Some(mut f) = port.inflight.take() {
        let before = f.offset;
        if port.can_send() && port.host_cache.is_empty() {
            let (n, gone) = port.send(&f.data[f.offset..]);
            f.offset += n;
            port.stats.to_host += n as u64;
            if gone {
                mark_gone(port);
            }
        } else if !port.host_connected {
            let rest = &f.data[f.offset..];
            if port.config.cache_buffers {
                let room = port.config.byte_limit.saturating_sub(port.host_cache.len());
                let n = room.min(rest.len());
                port.host_cache.extend(&rest[..n]);
                f.offset += n;
            } else {
                port.stats.dropped_to_host += rest.len() as u64;
                f.offset = f.data.len();
            }
        }
        moved |= f.offset != before;
        if f.offset == f.data.len() {
            act.add_used(q, f.head, 0);
            moved = true;
        } else {
            port.inflight = Some(f);
            return (moved, false);
        }
    }
    let more = if port.host_connected {
        port.host_cache.is_empty() && port.can_send()
    } else {
        !port.config.cache_buffers || port.host_cache.len() < port.config.byte_limit
    };
    (moved, more)
}

/// A socket write found the peer gone: drop the connection; [`Console::finish`] then closes
/// the host side properly (PORT_OPEN 0).
fn mark_gone(port: &mut Port) {
    if let Backend::Socket(s) = &mut port.backend {
        s.disconnect();
    }
}

impl VirtioDevice for Console {
    fn device_type(&self) -> u32 {
        DEVICE_ID
    }

    fn device_features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | F_MULTIPORT | F_EMERG_WRITE | F_SIZE
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        let n = 2 * (self.config.max_nr_ports as usize + 1);
        (0..n)
            .map(|q| {
                if q == CONTROL_RX as usize || q == CONTROL_TX as usize {
                    CONTROL_QUEUE_SIZE
                } else {
                    self.config.queue_size
                }
            })
            .collect()
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let layout = ConfigLayout {
            cols: self.config.cols.into(),
            rows: self.config.rows.into(),
            max_nr_ports: self.config.max_nr_ports.into(),
            emerg_wr: 0.into(),
        };
        let cfg = layout.as_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| cfg.get(o).copied())
                .unwrap_or(0);
        }
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        // Only emerg_wr is writable: one character for port 0, sent whatever the connection
        // state, as QEMU does.
        if offset == config_offset::EMERG_WR as u64 && !data.is_empty() {
            if let Some(port) = self.ports.get_mut(&0) {
                let (n, _) = port.send(&data[..1]);
                port.stats.to_host += n as u64;
            }
            self.finish();
        }
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        ActiveQueues::check(&ctx)?;
        let multiport = ctx.acked_features & F_MULTIPORT != 0;
        self.active = Some(ActiveQueues::new(ctx, "virtio-console"));
        self.control.driver_ready = false;
        if !multiport {
            // A single-port driver: port 0 is always open on the guest side.
            if let Some(p) = self.ports.get_mut(&0) {
                p.ready = true;
                p.guest_connected = true;
            }
        }
        self.finish();
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
        self.control.driver_ready = false;
        self.control.out.clear();
        for p in self.ports.values_mut() {
            p.ready = false;
            if p.guest_connected {
                p.guest_connected = false;
                p.guest_open_changed();
            }
            if let Some(f) = p.inflight.take() {
                p.stats.dropped_to_host += (f.data.len() - f.offset) as u64;
            }
        }
    }

    fn queue_notify(&mut self, queue: u16) {
        if self.active.is_none() {
            return;
        }
        match queue_role(queue) {
            QueueRole::ControlRx => {}
            QueueRole::ControlTx => self.process_ctrl_tx(),
            QueueRole::Transmit(id) => {
                self.process_tx(id);
            }
            QueueRole::Receive(id) => self.flush_to_guest(id),
        }
        self.finish();
    }

    fn save(&self) -> DeviceState {
        DeviceState {
            queues: self
                .active
                .as_ref()
                .map(ActiveQueues::states)
                .unwrap_or_default(),
            blob: self.save_blob(),
        }
    }

    fn restore(&mut self, blob: &[u8], ctx: Option<ActivateContext>) -> Result<(), ActivateError> {
        self.restore_blob(blob)
            .map_err(|e| ActivateError::BadState(e.to_string()))?;
        self.active = None;
        if let Some(ctx) = ctx {
            let n = ctx.queues.len();
            if n != self.queue_max_sizes().len() {
                return Err(ActivateError::BadState(format!(
                    "{n} queues saved, the device has {}",
                    self.queue_max_sizes().len()
                )));
            }
            self.active = Some(ActiveQueues::new(ctx, "virtio-console"));
            // Carry on where the source stopped: held data may move now.
            let ids: Vec<u32> = self.ports.keys().copied().collect();
            for id in ids {
                self.flush_to_guest(id);
                self.process_tx(id);
            }
        }
        self.finish();
        Ok(())
    }

    fn has_backends(&self) -> bool {
        true
    }

    fn backend_fds(&self, fds: &mut Vec<(RawFd, Interest)>) {
        self.socket_fds(fds);
    }

    fn poll_backends(&mut self) -> bool {
        Console::poll_backends(self)
    }
}

#[cfg(test)]
mod tests;

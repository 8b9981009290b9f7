//! virtio-console with MULTIPORT: the device model.
//!
//! - [`control`]: the control-queue wire format and the control plane, a state machine that
//!   does no I/O;
//! - [`port`]: one port's properties, connection flags and held bytes;
//! - [`backend`]: the in-process handler API;
//! - [`socket`]: the unix socket backend, and the console's descriptors for the event loop;
//! - `queues`: moving data and control messages through the virtqueues, chain by chain
//!   (`chain`: the work on one descriptor chain);
//! - `device`: the [`crate::virtio::VirtioDevice`] implementation;
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
mod device;
pub mod port;
mod queues;
pub mod socket;
mod state;

use std::collections::BTreeMap;

pub use backend::{ChannelHandler, PortEvent, PortHandler, ReadOutcome, StreamBackend};
pub use port::{Backend, PortConfig, PortInfo, PortStats};
pub use socket::{Interest, SocketBackend, SocketError};

use crate::active::ActiveQueues;
use control::Control;
use port::{MAX_NAME_LEN, Port};
use virtio_console_wire::feature;

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
    /// A port served by a socket (or another [`StreamBackend`]) is opened and closed by its
    /// peer, not through the API.
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
        let multiport = self.multiport();
        self.control.port_changed(id, true, multiport);
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
        let multiport = self.multiport();
        self.control.port_changed(id, false, multiport);
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
        if self.port(id)?.backend.stream().is_some() {
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

    fn multiport(&self) -> bool {
        self.active
            .as_ref()
            .is_none_or(|a| a.has_feature(F_MULTIPORT))
    }

    fn set_host_connected(&mut self, id: u32, open: bool) {
        let multiport = self.multiport();
        let Some(port) = self.ports.get_mut(&id) else {
            return;
        };
        if !self.control.host_open_changed(id, port, open, multiport) {
            return;
        }
        if !open && let Some(s) = port.backend.stream_mut() {
            s.disconnect();
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
                    p.host_connected && p.backend.stream().is_some_and(|s| !s.connected())
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

#[cfg(test)]
mod tests;

//! The multiport state machine and the port API, with the Linux guest driver's semantics
//! (drivers/char/virtio_console.c):
//!
//! - one opener per port: a second [`Multiport::open`] fails with [`PortError::Busy`];
//! - read: data if any; end-of-stream (0) when empty and the host is not connected;
//!   otherwise [`PortError::WouldBlock`];
//! - write: [`PortError::WouldBlock`] while the host is disconnected or the transmit buffer is
//!   full; whatever it accepted is kept until the transport takes it;
//! - readiness: readable, writable, hang-up (not connected);
//! - data for a port the guest has not opened is discarded (console ports keep it);
//! - after PORT_REMOVE every call on the port fails with [`PortError::NoDevice`], also through
//!   handles that outlive an unplug and re-plug of the same id.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use super::control::{self, BAD_ID, ControlError, GuestMessage, HostMessage, event};

/// Default per-port transmit buffer (bytes accepted by `write` not yet taken by the transport).
pub const DEFAULT_TX_CAPACITY: usize = 256 * 1024;
/// Default per-port receive buffer (bytes delivered, not yet read).
pub const DEFAULT_RX_CAPACITY: usize = 256 * 1024;

/// Errors of the port API, named after the errno Linux returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// ENODEV: the port does not exist or was unplugged.
    #[error("no such port (unplugged?)")]
    NoDevice,
    /// EBUSY: the port is already open.
    #[error("port is already open")]
    Busy,
    /// ENXIO: console ports carry the kernel log and cannot be opened.
    #[error("port is a console")]
    Console,
    /// EAGAIN: the call would block.
    #[error("operation would block")]
    WouldBlock,
}

/// An open port. Stale handles (after unplug) fail with [`PortError::NoDevice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortHandle {
    /// The port id.
    pub id: u32,
    generation: u64,
}

/// What `poll` would say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// A read would not block (data, or end-of-stream).
    pub readable: bool,
    /// A write would not block.
    pub writable: bool,
    /// The host side is not connected (or the port is not open).
    pub hangup: bool,
}

/// Notifications for agents (Linux raises SIGIO for connect, disconnect and unplug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortEvent {
    /// A port appeared (its name may follow).
    Added(u32),
    /// A port got its name.
    Named(u32, String),
    /// The host side connected.
    HostConnected(u32),
    /// The host side disconnected.
    HostDisconnected(u32),
    /// Data arrived for an open port.
    Readable(u32),
    /// The port was unplugged.
    Removed(u32),
    /// A console port was resized.
    Resized(u32, u16, u16),
}

/// Work for the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverAction {
    /// Set up the port's queues, fill its receive queue, then call [`Multiport::port_set_up`].
    SetUpPort(u32),
    /// Drop the port's queues and buffers.
    TearDownPort(u32),
}

#[derive(Debug)]
struct Port {
    generation: u64,
    name: Option<String>,
    console: bool,
    ready: bool,
    host_connected: bool,
    guest_open: bool,
    size: Option<(u16, u16)>,
    rx: VecDeque<u8>,
    tx: VecDeque<u8>,
    discarded: u64,
}

/// The guest's view of one multiport console device.
#[derive(Debug)]
pub struct Multiport {
    max_ports: u32,
    ports: BTreeMap<u32, Port>,
    next_generation: u64,
    outbox: VecDeque<GuestMessage>,
    actions: VecDeque<DriverAction>,
    events: VecDeque<PortEvent>,
    bad_messages: u64,
    tx_capacity: usize,
    rx_capacity: usize,
}

impl Multiport {
    /// A device with `max_ports` (its config space's max_nr_ports, at least 1).
    pub fn new(max_ports: u32) -> Self {
        Self {
            max_ports: max_ports.max(1),
            ports: BTreeMap::new(),
            next_generation: 1,
            outbox: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            bad_messages: 0,
            tx_capacity: DEFAULT_TX_CAPACITY,
            rx_capacity: DEFAULT_RX_CAPACITY,
        }
    }

    /// The device's max_nr_ports.
    pub fn max_ports(&self) -> u32 {
        self.max_ports
    }

    /// Reports driver start-up (after the control receive queue is filled): DEVICE_READY.
    pub fn device_ready(&mut self, ok: bool) {
        self.send(BAD_ID, event::DEVICE_READY, ok);
    }

    fn send(&mut self, id: u32, event: u16, value: bool) {
        self.outbox.push_back(GuestMessage {
            id,
            event,
            value: u16::from(value),
        });
    }

    /// Handles one buffer from the control receive queue. A bad message is counted, logged
    /// by the caller, and otherwise ignored: it never changes any port.
    pub fn handle_control(&mut self, buf: &[u8]) -> Result<(), ControlError> {
        let result = control::decode(buf).and_then(|msg| self.apply(msg));
        if result.is_err() {
            self.bad_messages += 1;
        }
        result
    }

    fn apply(&mut self, msg: HostMessage) -> Result<(), ControlError> {
        let id = msg.id();
        if let HostMessage::PortAdd(_) = msg {
            if self.ports.contains_key(&id) {
                // Linux answers a duplicate add with PORT_READY again.
                self.send(id, event::PORT_READY, true);
                return Ok(());
            }
            if id >= self.max_ports {
                return Err(ControlError::OutOfRange {
                    id,
                    max: self.max_ports,
                });
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            self.ports.insert(
                id,
                Port {
                    generation,
                    name: None,
                    console: false,
                    ready: false,
                    host_connected: false,
                    guest_open: false,
                    size: None,
                    rx: VecDeque::new(),
                    tx: VecDeque::new(),
                    discarded: 0,
                },
            );
            self.actions.push_back(DriverAction::SetUpPort(id));
            self.events.push_back(PortEvent::Added(id));
            return Ok(());
        }
        let port = self
            .ports
            .get_mut(&id)
            .ok_or(ControlError::UnknownPort(id))?;
        match msg {
            HostMessage::PortAdd(_) => unreachable!("handled above"),
            HostMessage::PortRemove(_) => {
                // Linux also sends PORT_OPEN 0 for a removed port that was open; QEMU has
                // forgotten the port by then and logs an error, so this driver does not.
                self.ports.remove(&id);
                self.actions.push_back(DriverAction::TearDownPort(id));
                self.events.push_back(PortEvent::Removed(id));
            }
            HostMessage::ConsolePort(_, true) if !port.console => {
                // Console ports are always open on the guest side (they carry the kernel log).
                port.console = true;
                port.guest_open = true;
                self.send(id, event::PORT_OPEN, true);
            }
            HostMessage::ConsolePort(..) => {}
            HostMessage::Resize(_, rows, cols) => {
                port.size = Some((rows, cols));
                self.events.push_back(PortEvent::Resized(id, rows, cols));
            }
            HostMessage::PortOpen(_, connected) => {
                if port.host_connected != connected {
                    port.host_connected = connected;
                    self.events.push_back(if connected {
                        PortEvent::HostConnected(id)
                    } else {
                        PortEvent::HostDisconnected(id)
                    });
                }
            }
            HostMessage::PortName(_, name) => {
                // Set once, as Linux does (a repeat comes after hibernation).
                if port.name.is_none() {
                    port.name = Some(name.clone());
                    self.events.push_back(PortEvent::Named(id, name));
                }
            }
        }
        Ok(())
    }

    /// The transport set up (or failed to set up) a port's queues: PORT_READY.
    pub fn port_set_up(&mut self, id: u32, ok: bool) {
        if let Some(port) = self.ports.get_mut(&id) {
            port.ready = ok;
            self.send(id, event::PORT_READY, ok);
        }
    }

    /// The next control message to put on the control transmit queue.
    pub fn next_control(&mut self) -> Option<GuestMessage> {
        self.outbox.pop_front()
    }

    /// The next piece of work for the transport.
    pub fn next_action(&mut self) -> Option<DriverAction> {
        self.actions.pop_front()
    }

    /// The next notification for agents.
    pub fn next_event(&mut self) -> Option<PortEvent> {
        self.events.pop_front()
    }

    /// How many malformed or misdirected control messages were ignored.
    pub fn bad_messages(&self) -> u64 {
        self.bad_messages
    }

    /// The ports that exist: (id, name if known).
    pub fn ports(&self) -> impl Iterator<Item = (u32, Option<&str>)> {
        self.ports.iter().map(|(id, p)| (*id, p.name.as_deref()))
    }

    /// The id of the port called `name`.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.ports
            .iter()
            .find(|(_, p)| p.name.as_deref() == Some(name))
            .map(|(id, _)| *id)
    }

    /// True while the host side of the port is connected.
    pub fn host_connected(&self, id: u32) -> bool {
        self.ports.get(&id).is_some_and(|p| p.host_connected)
    }

    /// Bytes discarded because they arrived while the guest had the port closed.
    pub fn discarded(&self, id: u32) -> u64 {
        self.ports.get(&id).map_or(0, |p| p.discarded)
    }

    // ----- data path, for the transport -----

    /// Room in the port's receive buffer: post no more receive buffers than this.
    pub fn rx_space(&self, id: u32) -> usize {
        self.ports
            .get(&id)
            .map_or(0, |p| self.rx_capacity.saturating_sub(p.rx.len()))
    }

    /// Data the device put in the port's receive queue. Kept for an open (or console) port,
    /// discarded otherwise, as Linux does. Returns how many bytes were kept.
    pub fn deliver(&mut self, id: u32, data: &[u8]) -> usize {
        let Some(port) = self.ports.get_mut(&id) else {
            return 0;
        };
        if !port.guest_open {
            port.discarded += data.len() as u64;
            return 0;
        }
        port.rx.extend(data);
        if !data.is_empty() {
            self.events.push_back(PortEvent::Readable(id));
        }
        data.len()
    }

    /// Takes up to `max` bytes the guest wrote to `id`, for its transmit queue.
    pub fn take_tx(&mut self, id: u32, max: usize) -> Vec<u8> {
        let Some(port) = self.ports.get_mut(&id) else {
            return Vec::new();
        };
        let n = max.min(port.tx.len());
        port.tx.drain(..n).collect()
    }

    /// Appends kernel log text to every console port whose host is connected. The log never
    /// blocks: what does not fit in a port's transmit buffer is dropped.
    pub fn console_write(&mut self, data: &[u8]) {
        let capacity = self.tx_capacity;
        for port in self
            .ports
            .values_mut()
            .filter(|p| p.console && p.host_connected)
        {
            let n = data.len().min(capacity.saturating_sub(port.tx.len()));
            port.tx.extend(&data[..n]);
        }
    }

    /// Ports with bytes waiting for the transmit queue.
    pub fn tx_ready(&self) -> impl Iterator<Item = u32> + '_ {
        self.ports
            .iter()
            .filter(|(_, p)| !p.tx.is_empty())
            .map(|(id, _)| *id)
    }

    // ----- the port API -----

    fn port(&self, h: PortHandle) -> Result<&Port, PortError> {
        match self.ports.get(&h.id) {
            Some(p) if p.generation == h.generation && p.guest_open => Ok(p),
            _ => Err(PortError::NoDevice),
        }
    }

    fn port_mut(&mut self, h: PortHandle) -> Result<&mut Port, PortError> {
        match self.ports.get_mut(&h.id) {
            Some(p) if p.generation == h.generation && p.guest_open => Ok(p),
            _ => Err(PortError::NoDevice),
        }
    }

    /// Opens port `id`: tells the host (PORT_OPEN 1).
    pub fn open(&mut self, id: u32) -> Result<PortHandle, PortError> {
        let port = self.ports.get_mut(&id).ok_or(PortError::NoDevice)?;
        if port.console {
            return Err(PortError::Console);
        }
        if port.guest_open {
            return Err(PortError::Busy);
        }
        port.guest_open = true;
        let handle = PortHandle {
            id,
            generation: port.generation,
        };
        self.send(id, event::PORT_OPEN, true);
        Ok(handle)
    }

    /// Closes the port: unread data is discarded (as Linux does), PORT_OPEN 0 is sent. Data
    /// already accepted by `write` still goes out.
    pub fn close(&mut self, h: PortHandle) -> Result<(), PortError> {
        let port = self.port_mut(h)?;
        port.guest_open = false;
        port.rx.clear();
        self.send(h.id, event::PORT_OPEN, false);
        Ok(())
    }

    /// Reads into `buf`: `Ok(n > 0)` data, `Ok(0)` end-of-stream (host not connected and
    /// nothing left), or [`PortError::WouldBlock`].
    pub fn read(&mut self, h: PortHandle, buf: &mut [u8]) -> Result<usize, PortError> {
        let port = self.port_mut(h)?;
        if port.rx.is_empty() {
            return if port.host_connected {
                Err(PortError::WouldBlock)
            } else {
                Ok(0)
            };
        }
        let n = buf.len().min(port.rx.len());
        let (a, b) = port.rx.as_slices();
        let first = n.min(a.len());
        buf[..first].copy_from_slice(&a[..first]);
        buf[first..n].copy_from_slice(&b[..n - first]);
        port.rx.drain(..n);
        Ok(n)
    }

    /// Writes what fits in the transmit buffer; [`PortError::WouldBlock`] while the host is
    /// disconnected or the buffer is full.
    pub fn write(&mut self, h: PortHandle, data: &[u8]) -> Result<usize, PortError> {
        let capacity = self.tx_capacity;
        let port = self.port_mut(h)?;
        if !port.host_connected {
            return Err(PortError::WouldBlock);
        }
        let n = data.len().min(capacity.saturating_sub(port.tx.len()));
        if n == 0 && !data.is_empty() {
            return Err(PortError::WouldBlock);
        }
        port.tx.extend(&data[..n]);
        Ok(n)
    }

    /// What `poll` would report for an open port.
    pub fn readiness(&self, h: PortHandle) -> Result<Readiness, PortError> {
        let port = self.port(h)?;
        Ok(Readiness {
            readable: !port.rx.is_empty() || !port.host_connected,
            writable: port.host_connected && port.tx.len() < self.tx_capacity,
            hangup: !port.host_connected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio_console::control::encode_host;

    /// A fake host: feeds control messages and checks what the driver answers.
    struct Fake {
        mp: Multiport,
    }

    impl Fake {
        fn started(max: u32) -> Self {
            let mut mp = Multiport::new(max);
            mp.device_ready(true);
            let ready = mp.next_control().unwrap();
            assert_eq!(ready.encode(), [0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0]);
            Fake { mp }
        }
        fn host(&mut self, m: HostMessage) -> Result<(), ControlError> {
            self.mp.handle_control(&encode_host(&m))
        }
        /// PORT_ADD + queue set-up + PORT_NAME, as QEMU does at start-up.
        fn plug(&mut self, id: u32, name: &str) {
            self.host(HostMessage::PortAdd(id)).unwrap();
            assert_eq!(self.mp.next_action(), Some(DriverAction::SetUpPort(id)));
            self.mp.port_set_up(id, true);
            assert_eq!(self.sent(), vec![(id, event::PORT_READY, 1)]);
            self.host(HostMessage::PortName(id, name.into())).unwrap();
        }
        fn sent(&mut self) -> Vec<(u32, u16, u16)> {
            core::iter::from_fn(|| self.mp.next_control())
                .map(|m| (m.id, m.event, m.value))
                .collect()
        }
        fn events(&mut self) -> Vec<PortEvent> {
            core::iter::from_fn(|| self.mp.next_event()).collect()
        }
    }

    #[test]
    fn start_up_names_and_lookup() {
        let mut f = Fake::started(31);
        f.plug(1, "org.libguestfs.channel.0");
        f.plug(2, "org.qemu.guest_agent.0");
        assert_eq!(f.mp.find("org.qemu.guest_agent.0"), Some(2));
        assert_eq!(f.mp.find("nope"), None);
        assert_eq!(
            f.events(),
            vec![
                PortEvent::Added(1),
                PortEvent::Named(1, "org.libguestfs.channel.0".into()),
                PortEvent::Added(2),
                PortEvent::Named(2, "org.qemu.guest_agent.0".into()),
            ]
        );
        // A second name is ignored, as after hibernation on Linux.
        f.host(HostMessage::PortName(1, "other".into())).unwrap();
        assert_eq!(f.mp.find("org.libguestfs.channel.0"), Some(1));
    }

    #[test]
    fn open_close_and_one_opener() {
        let mut f = Fake::started(4);
        f.plug(1, "a");
        let h = f.mp.open(1).unwrap();
        assert_eq!(f.mp.open(1), Err(PortError::Busy));
        assert_eq!(f.sent(), vec![(1, event::PORT_OPEN, 1)]);
        f.mp.close(h).unwrap();
        assert_eq!(f.sent(), vec![(1, event::PORT_OPEN, 0)]);
        assert_eq!(f.mp.close(h), Err(PortError::NoDevice));
        assert!(f.mp.open(1).is_ok());
        assert_eq!(f.mp.open(9), Err(PortError::NoDevice));
    }

    #[test]
    fn read_semantics_follow_the_host_connection() {
        let mut f = Fake::started(4);
        f.plug(1, "a");
        let h = f.mp.open(1).unwrap();
        let mut buf = [0u8; 8];
        // Host not connected, nothing buffered: end of stream.
        assert_eq!(f.mp.read(h, &mut buf), Ok(0));
        assert_eq!(
            f.mp.readiness(h).unwrap(),
            Readiness {
                readable: true,
                writable: false,
                hangup: true
            }
        );
        f.host(HostMessage::PortOpen(1, true)).unwrap();
        assert_eq!(f.mp.read(h, &mut buf), Err(PortError::WouldBlock));
        assert_eq!(
            f.mp.readiness(h).unwrap(),
            Readiness {
                readable: false,
                writable: true,
                hangup: false
            }
        );
        assert_eq!(f.mp.deliver(1, b"hello world"), 11);
        assert_eq!(f.mp.read(h, &mut buf), Ok(8));
        assert_eq!(&buf, b"hello wo");
        // Host disconnects with data left: the data is still read, then end of stream.
        f.host(HostMessage::PortOpen(1, false)).unwrap();
        assert_eq!(f.mp.read(h, &mut buf), Ok(3));
        assert_eq!(f.mp.read(h, &mut buf), Ok(0));
    }

    #[test]
    fn write_waits_for_the_host_and_keeps_what_it_accepted() {
        let mut f = Fake::started(4);
        f.plug(1, "a");
        let h = f.mp.open(1).unwrap();
        assert_eq!(f.mp.write(h, b"x"), Err(PortError::WouldBlock));
        f.host(HostMessage::PortOpen(1, true)).unwrap();
        let big = vec![7u8; DEFAULT_TX_CAPACITY + 10];
        assert_eq!(f.mp.write(h, &big), Ok(DEFAULT_TX_CAPACITY));
        assert_eq!(f.mp.write(h, b"more"), Err(PortError::WouldBlock));
        assert!(!f.mp.readiness(h).unwrap().writable);
        assert_eq!(f.mp.tx_ready().collect::<Vec<_>>(), vec![1]);
        assert_eq!(f.mp.take_tx(1, 100).len(), 100);
        assert_eq!(f.mp.write(h, b"more"), Ok(4));
        // Accepted data survives a host disconnect and a guest close.
        f.host(HostMessage::PortOpen(1, false)).unwrap();
        f.mp.close(h).unwrap();
        let rest = f.mp.take_tx(1, usize::MAX);
        assert_eq!(rest.len(), DEFAULT_TX_CAPACITY - 100 + 4);
        assert_eq!(&rest[rest.len() - 4..], b"more");
    }

    #[test]
    fn data_for_a_closed_port_is_discarded() {
        let mut f = Fake::started(4);
        f.plug(1, "a");
        f.host(HostMessage::PortOpen(1, true)).unwrap();
        assert_eq!(f.mp.deliver(1, b"early"), 0);
        assert_eq!(f.mp.discarded(1), 5);
        let h = f.mp.open(1).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(f.mp.read(h, &mut buf), Err(PortError::WouldBlock));
    }

    #[test]
    fn unplug_fails_pending_calls_and_stale_handles() {
        let mut f = Fake::started(4);
        f.plug(1, "a");
        let h = f.mp.open(1).unwrap();
        f.sent();
        f.events();
        f.host(HostMessage::PortRemove(1)).unwrap();
        assert_eq!(
            f.sent(),
            vec![],
            "nothing is sent about a port the device removed"
        );
        assert_eq!(f.mp.next_action(), Some(DriverAction::TearDownPort(1)));
        assert_eq!(f.mp.next_action(), None);
        assert_eq!(f.events(), vec![PortEvent::Removed(1)]);
        let mut buf = [0u8; 4];
        assert_eq!(f.mp.read(h, &mut buf), Err(PortError::NoDevice));
        assert_eq!(f.mp.write(h, b"x"), Err(PortError::NoDevice));
        assert_eq!(f.mp.readiness(h), Err(PortError::NoDevice));
        // The same id plugged again is a new port: the old handle stays dead.
        f.plug(1, "a");
        assert_eq!(f.mp.read(h, &mut buf), Err(PortError::NoDevice));
        let h2 = f.mp.open(1).unwrap();
        assert_ne!(h, h2);
    }

    #[test]
    fn bad_and_misdirected_messages_change_nothing() {
        let mut f = Fake::started(2);
        assert_eq!(
            f.host(HostMessage::PortOpen(5, true)),
            Err(ControlError::UnknownPort(5))
        );
        assert_eq!(
            f.host(HostMessage::PortAdd(2)),
            Err(ControlError::OutOfRange { id: 2, max: 2 })
        );
        assert_eq!(
            f.mp.handle_control(&[1, 2, 3]),
            Err(ControlError::Truncated(3))
        );
        assert_eq!(f.mp.bad_messages(), 3);
        assert_eq!(f.mp.ports().count(), 0);
        assert!(f.sent().is_empty());
        // A duplicate PORT_ADD is answered with PORT_READY and keeps the port as it was.
        f.plug(1, "a");
        f.host(HostMessage::PortAdd(1)).unwrap();
        assert_eq!(f.sent(), vec![(1, event::PORT_READY, 1)]);
        assert_eq!(f.mp.find("a"), Some(1));
    }

    #[test]
    fn console_ports_are_guest_open_and_not_openable() {
        let mut f = Fake::started(2);
        f.plug(0, "console");
        f.host(HostMessage::ConsolePort(0, true)).unwrap();
        assert_eq!(f.sent(), vec![(0, event::PORT_OPEN, 1)]);
        assert_eq!(f.mp.open(0), Err(PortError::Console));
        assert_eq!(f.mp.deliver(0, b"keys"), 4);
        f.host(HostMessage::Resize(0, 24, 80)).unwrap();
        assert!(f.events().contains(&PortEvent::Resized(0, 24, 80)));
    }

    #[test]
    fn kernel_log_goes_to_connected_console_ports_only() {
        let mut f = Fake::started(3);
        f.plug(0, "console");
        f.host(HostMessage::ConsolePort(0, true)).unwrap();
        f.sent();
        f.plug(1, "a");
        let h = f.mp.open(1).unwrap();
        f.mp.console_write(b"lost: host away\n");
        assert!(f.mp.take_tx(0, 100).is_empty());
        f.host(HostMessage::PortOpen(0, true)).unwrap();
        f.host(HostMessage::PortOpen(1, true)).unwrap();
        f.mp.console_write(b"log line\n");
        assert_eq!(f.mp.take_tx(0, 100), b"log line\n");
        assert!(f.mp.take_tx(1, 100).is_empty());
        // The log never blocks: beyond the buffer it is cut, and port writes are unaffected.
        f.mp.console_write(&vec![b'x'; DEFAULT_TX_CAPACITY + 5]);
        assert_eq!(f.mp.take_tx(0, usize::MAX).len(), DEFAULT_TX_CAPACITY);
        assert_eq!(f.mp.write(h, b"hi"), Ok(2));
    }

    #[test]
    fn connect_and_disconnect_notify_once_per_change() {
        let mut f = Fake::started(2);
        f.plug(1, "a");
        f.events();
        f.host(HostMessage::PortOpen(1, true)).unwrap();
        f.host(HostMessage::PortOpen(1, true)).unwrap();
        f.host(HostMessage::PortOpen(1, false)).unwrap();
        assert_eq!(
            f.events(),
            vec![PortEvent::HostConnected(1), PortEvent::HostDisconnected(1)]
        );
    }

    #[test]
    fn thirty_one_ports() {
        let mut f = Fake::started(31);
        for id in 0..31 {
            f.plug(id, &alloc::format!("org.vmchannel.echo.{id}"));
        }
        assert_eq!(f.mp.ports().count(), 31);
        assert_eq!(f.mp.find("org.vmchannel.echo.30"), Some(30));
        assert!(f.host(HostMessage::PortAdd(31)).is_err());
    }
}

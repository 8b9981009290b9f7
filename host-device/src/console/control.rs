//! The control plane of the device (virtio 1.x 5.3.6): the wire format, from the crate the
//! guest driver uses too (`virtio-console-wire`: `{ le32 id; le16 event; le16 value }`, a name
//! after PORT_NAME), and `Control`, the device's side of the protocol as a state machine
//! that does no I/O. It decides what each message from the guest does to the ports and what
//! to answer; answers wait in `Control::out` for the guest's control buffers, and what needs
//! the queues or a backend comes back as a `ControlAction` for the device to carry out.

use std::collections::{BTreeMap, VecDeque};

pub use virtio_console_wire::event::*;
pub use virtio_console_wire::{HEADER_LEN, Header, event_name};

use super::port::Port;

/// What the rest of the device must do after a guest control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlAction {
    /// Nothing.
    None,
    /// The guest opened (`open`) or closed port `id`; the port's flags already say so. Tell
    /// the backend, and on open move the host data queued for the guest.
    GuestOpenChanged {
        /// The port.
        id: u32,
        /// Opened or closed.
        open: bool,
    },
}

/// The device's side of the control protocol.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// The guest sent DEVICE_READY(1) since the last reset.
    pub driver_ready: bool,
    /// Messages for the guest, waiting for its control receive buffers (never dropped).
    pub out: VecDeque<Vec<u8>>,
}

impl Control {
    /// Queues a message for the guest.
    pub fn send(&mut self, id: u32, event: u16, value: u16, payload: &[u8]) {
        log::debug!(
            "virtio-console: -> {} port {id} value {value}",
            event_name(event)
        );
        self.out
            .push_back(Header { id, event, value }.encode_with(payload));
    }

    /// Whether the guest is told of port changes: its driver is up and (`multiport`) it
    /// accepted MULTIPORT.
    pub fn announces(&self, multiport: bool) -> bool {
        self.driver_ready && multiport
    }

    /// Port `id` was added (`added`) or removed: the guest is told if its driver is up with
    /// MULTIPORT (`multiport`).
    pub fn port_changed(&mut self, id: u32, added: bool, multiport: bool) {
        if self.announces(multiport) {
            let event = if added { PORT_ADD } else { PORT_REMOVE };
            self.send(id, event, 1, &[]);
        }
    }

    /// The host side of port `id` opened (`open`) or closed: changes the port's flags (a close
    /// also ends any throttling) and tells the guest if it set the port up. Returns false when
    /// the host side already was so. The backend is not touched: dropping a connection is the
    /// caller's I/O.
    pub fn host_open_changed(
        &mut self,
        id: u32,
        port: &mut Port,
        open: bool,
        multiport: bool,
    ) -> bool {
        if port.host_connected == open {
            return false;
        }
        port.host_connected = open;
        if !open {
            port.api_throttled = false;
            port.socket_full = false;
        }
        if port.ready && self.announces(multiport) {
            self.send(id, PORT_OPEN, u16::from(open), &[]);
        }
        true
    }

    /// Acts on a message from the guest. `Err` says why a message makes no sense (it is then
    /// ignored and counted).
    pub fn handle(
        &mut self,
        ports: &mut BTreeMap<u32, Port>,
        h: Header,
    ) -> Result<ControlAction, &'static str> {
        log::debug!(
            "virtio-console: <- {} port {} value {}",
            event_name(h.event),
            h.id,
            h.value
        );
        match h.event {
            DEVICE_READY => {
                if h.value != 1 {
                    log::warn!("virtio-console: the guest driver failed to initialise");
                    self.driver_ready = false;
                    return Ok(ControlAction::None);
                }
                self.driver_ready = true;
                for (&id, p) in ports.iter_mut() {
                    p.ready = false;
                    self.send(id, PORT_ADD, 1, &[]);
                }
                Ok(ControlAction::None)
            }
            PORT_READY => {
                let port = ports.get_mut(&h.id).ok_or("no such port")?;
                if h.value != 1 {
                    port.ready = false;
                    log::warn!("virtio-console: the guest failed to set up port {}", h.id);
                    return Ok(ControlAction::None);
                }
                port.ready = true;
                if port.config.console {
                    self.send(h.id, CONSOLE_PORT, 1, &[]);
                }
                if !port.config.name.is_empty() {
                    self.send(h.id, PORT_NAME, 1, port.config.name.as_bytes());
                }
                if port.host_connected {
                    self.send(h.id, PORT_OPEN, 1, &[]);
                }
                Ok(ControlAction::None)
            }
            PORT_OPEN => {
                if h.value > 1 {
                    return Err("value is not 0 or 1");
                }
                let port = ports.get_mut(&h.id).ok_or("no such port")?;
                if !port.ready {
                    return Err("port not set up");
                }
                let open = h.value == 1;
                if port.guest_connected == open {
                    return Ok(ControlAction::None);
                }
                port.guest_connected = open;
                if port.drops_to_guest() {
                    port.stats.dropped_to_guest += port.to_guest.len() as u64;
                    port.to_guest.clear();
                }
                Ok(ControlAction::GuestOpenChanged { id: h.id, open })
            }
            _ => Err("not an event a guest sends"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::{Backend, PortConfig};

    fn ports() -> BTreeMap<u32, Port> {
        let mut p = BTreeMap::new();
        p.insert(0, Port::new(PortConfig::console("hvc0"), Backend::None));
        p.insert(
            1,
            Port::new(PortConfig::new("data").cache_buffers(false), Backend::None),
        );
        p
    }

    fn h(id: u32, event: u16, value: u16) -> Header {
        Header { id, event, value }
    }

    fn sent(c: &mut Control) -> Vec<(u32, u16, u16)> {
        c.out
            .drain(..)
            .map(|m| {
                let h = Header::decode(m[..HEADER_LEN].try_into().unwrap());
                (h.id, h.event, h.value)
            })
            .collect()
    }

    #[test]
    fn startup_exchange() {
        let (mut c, mut p) = (Control::default(), ports());
        p.get_mut(&1).unwrap().host_connected = true;
        assert_eq!(
            c.handle(&mut p, h(u32::MAX, DEVICE_READY, 1)),
            Ok(ControlAction::None)
        );
        assert!(c.driver_ready && c.announces(true) && !c.announces(false));
        assert_eq!(sent(&mut c), [(0, PORT_ADD, 1), (1, PORT_ADD, 1)]);
        c.handle(&mut p, h(0, PORT_READY, 1)).unwrap();
        c.handle(&mut p, h(1, PORT_READY, 1)).unwrap();
        assert_eq!(
            sent(&mut c),
            [
                (0, CONSOLE_PORT, 1),
                (0, PORT_NAME, 1),
                (1, PORT_NAME, 1),
                (1, PORT_OPEN, 1)
            ]
        );
        assert!(p[&0].ready && p[&1].ready);
    }

    #[test]
    fn guest_open_and_close_are_actions_and_close_drops_uncached_data() {
        let (mut c, mut p) = (Control::default(), ports());
        assert_eq!(c.handle(&mut p, h(1, PORT_OPEN, 1)), Err("port not set up"));
        p.get_mut(&1).unwrap().ready = true;
        assert_eq!(
            c.handle(&mut p, h(1, PORT_OPEN, 1)),
            Ok(ControlAction::GuestOpenChanged { id: 1, open: true })
        );
        assert_eq!(
            c.handle(&mut p, h(1, PORT_OPEN, 1)),
            Ok(ControlAction::None)
        );
        p.get_mut(&1).unwrap().to_guest.extend(b"abc");
        assert_eq!(
            c.handle(&mut p, h(1, PORT_OPEN, 0)),
            Ok(ControlAction::GuestOpenChanged { id: 1, open: false })
        );
        assert!(p[&1].to_guest.is_empty());
        assert_eq!(p[&1].stats.dropped_to_guest, 3);
        assert!(c.out.is_empty());
    }

    #[test]
    fn host_side_and_hot_plug_are_told_when_the_guest_listens() {
        let (mut c, mut p) = (Control::default(), ports());
        let port = p.get_mut(&1).unwrap();
        // Before the driver is up: flags only.
        assert!(c.host_open_changed(1, port, true, true));
        assert!(!c.host_open_changed(1, port, true, true));
        c.port_changed(2, true, true);
        assert!(c.out.is_empty());
        c.driver_ready = true;
        port.ready = true;
        port.api_throttled = true;
        assert!(c.host_open_changed(1, port, false, true));
        assert!(!port.host_connected && !port.api_throttled);
        c.port_changed(2, true, true);
        c.port_changed(2, false, true);
        c.port_changed(3, true, false);
        assert_eq!(
            sent(&mut c),
            [(1, PORT_OPEN, 0), (2, PORT_ADD, 1), (2, PORT_REMOVE, 1)]
        );
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        let (mut c, mut p) = (Control::default(), ports());
        assert_eq!(c.handle(&mut p, h(9, PORT_READY, 1)), Err("no such port"));
        assert_eq!(
            c.handle(&mut p, h(0, PORT_OPEN, 2)),
            Err("value is not 0 or 1")
        );
        assert_eq!(
            c.handle(&mut p, h(0, PORT_ADD, 1)),
            Err("not an event a guest sends")
        );
        assert!(c.out.is_empty());
    }
}

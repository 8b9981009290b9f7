//! The facts of the multiport console (virtio spec, "Console Device") that the guest driver
//! (`kernel`) and the host device model (`host-device`) must agree on, defined once: the
//! feature bits, the configuration layout, which queue belongs to which port, the control
//! queue size and the control message format. no_std with alloc.
//!
//! Facts common to every virtio device (status bits, `VIRTIO_F_VERSION_1`, ring features) are
//! not here: the host takes them from `virtio-bindings`, the guest from `virtio-drivers`.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The virtio device id of a console.
pub const DEVICE_ID: u32 = 3;

/// The console's feature bits (virtio 1.x 5.3.3), as masks of the 64-bit feature word.
pub mod feature {
    /// VIRTIO_CONSOLE_F_SIZE: console size in the configuration space.
    pub const SIZE: u64 = 1 << 0;
    /// VIRTIO_CONSOLE_F_MULTIPORT: several ports and the control queues.
    pub const MULTIPORT: u64 = 1 << 1;
    /// VIRTIO_CONSOLE_F_EMERG_WRITE: the emergency write register.
    pub const EMERG_WRITE: u64 = 1 << 2;
}

/// The device configuration space (virtio 1.x 5.3.4), little-endian on the wire.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ConsoleConfig {
    /// Console columns (with [`feature::SIZE`]).
    pub cols: U16,
    /// Console rows (with [`feature::SIZE`]).
    pub rows: U16,
    /// How many ports the device may have (with [`feature::MULTIPORT`]).
    pub max_nr_ports: U32,
    /// The emergency write register (with [`feature::EMERG_WRITE`]): the driver writes one
    /// character for port 0.
    pub emerg_wr: U32,
}

/// Byte offsets of the [`ConsoleConfig`] fields.
pub mod config_offset {
    use super::ConsoleConfig;
    use core::mem::offset_of;

    /// `cols`.
    pub const COLS: usize = offset_of!(ConsoleConfig, cols);
    /// `rows`.
    pub const ROWS: usize = offset_of!(ConsoleConfig, rows);
    /// `max_nr_ports`.
    pub const MAX_NR_PORTS: usize = offset_of!(ConsoleConfig, max_nr_ports);
    /// `emerg_wr`.
    pub const EMERG_WR: usize = offset_of!(ConsoleConfig, emerg_wr);
}

/// Entries in each control queue (as QEMU offers).
pub const CONTROL_QUEUE_SIZE: u16 = 32;
/// The control receive queue (host to guest).
pub const CONTROL_RX: u16 = 2;
/// The control transmit queue (guest to host).
pub const CONTROL_TX: u16 = 3;

/// The receive queue (host to guest) of port `id`: port 0 uses queues 0 and 1, the control
/// queues are 2 and 3, port n >= 1 uses 2 + 2n and 3 + 2n.
pub const fn rx_queue(id: u32) -> u16 {
    if id == 0 { 0 } else { (2 + 2 * id) as u16 }
}

/// The transmit queue (guest to host) of port `id`.
pub const fn tx_queue(id: u32) -> u16 {
    rx_queue(id) + 1
}

/// What a queue number is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRole {
    /// The control receive queue ([`CONTROL_RX`]).
    ControlRx,
    /// The control transmit queue ([`CONTROL_TX`]).
    ControlTx,
    /// A port's receive queue (host to guest).
    Receive(u32),
    /// A port's transmit queue (guest to host).
    Transmit(u32),
}

/// Which port and direction queue `q` belongs to (the inverse of [`rx_queue`] and
/// [`tx_queue`]).
pub const fn queue_role(q: u16) -> QueueRole {
    match q {
        0 => QueueRole::Receive(0),
        1 => QueueRole::Transmit(0),
        CONTROL_RX => QueueRole::ControlRx,
        CONTROL_TX => QueueRole::ControlTx,
        _ if q.is_multiple_of(2) => QueueRole::Receive((q as u32 - 2) / 2),
        _ => QueueRole::Transmit((q as u32 - 2) / 2),
    }
}

/// Size of the fixed header.
pub const HEADER_LEN: usize = 8;
/// Longest port name accepted (QEMU has no limit; names are reverse-domain strings, and the
/// name travels in one control buffer).
pub const MAX_NAME_LEN: usize = 255;
/// The id used for device-wide messages (DEVICE_READY), as Linux's `VIRTIO_CONSOLE_BAD_ID`.
pub const BAD_ID: u32 = u32::MAX;

/// A readable name for an event number, for logs.
pub fn event_name(ev: u16) -> &'static str {
    match ev {
        event::DEVICE_READY => "DEVICE_READY",
        event::PORT_ADD => "PORT_ADD",
        event::PORT_REMOVE => "PORT_REMOVE",
        event::PORT_READY => "PORT_READY",
        event::CONSOLE_PORT => "CONSOLE_PORT",
        event::RESIZE => "RESIZE",
        event::PORT_OPEN => "PORT_OPEN",
        event::PORT_NAME => "PORT_NAME",
        _ => "unknown",
    }
}

/// Event numbers.
pub mod event {
    /// Guest -> host: the driver is ready (value 1) or failed (0).
    pub const DEVICE_READY: u16 = 0;
    /// Host -> guest: a port exists.
    pub const PORT_ADD: u16 = 1;
    /// Host -> guest: a port is gone.
    pub const PORT_REMOVE: u16 = 2;
    /// Guest -> host: the port's queues are set up (1) or not (0).
    pub const PORT_READY: u16 = 3;
    /// Host -> guest: the port is a console.
    pub const CONSOLE_PORT: u16 = 4;
    /// Host -> guest: console size (rows, cols follow the header).
    pub const RESIZE: u16 = 5;
    /// Both ways: the sender opened (1) or closed (0) its end.
    pub const PORT_OPEN: u16 = 6;
    /// Host -> guest: the port's name follows the header.
    pub const PORT_NAME: u16 = 7;
}

/// A control message that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Shorter than the header (or a RESIZE without its payload).
    #[error("control message of {0} bytes is too short")]
    Truncated(usize),
    /// An event number this driver does not know.
    #[error("unknown control event {event} for port {id}")]
    UnknownEvent {
        /// The port id.
        id: u32,
        /// The event number.
        event: u16,
    },
    /// A PORT_NAME longer than [`MAX_NAME_LEN`], empty, or not UTF-8.
    #[error("bad name for port {0}")]
    BadName(u32),
    /// A message about a port that was never added (or is gone).
    #[error("control message for unknown port {0}")]
    UnknownPort(u32),
    /// PORT_ADD with an id at or beyond `max_nr_ports`.
    #[error("port id {id} is out of range (max_nr_ports {max})")]
    OutOfRange {
        /// The id.
        id: u32,
        /// The device's max_nr_ports.
        max: u32,
    },
}

/// A message from the host, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMessage {
    /// PORT_ADD.
    PortAdd(u32),
    /// PORT_REMOVE.
    PortRemove(u32),
    /// CONSOLE_PORT with its value.
    ConsolePort(u32, bool),
    /// RESIZE: (port, rows, cols).
    Resize(u32, u16, u16),
    /// PORT_OPEN: the host connected (true) or disconnected.
    PortOpen(u32, bool),
    /// PORT_NAME.
    PortName(u32, String),
}

impl HostMessage {
    /// The port the message is about.
    pub fn id(&self) -> u32 {
        match self {
            HostMessage::PortAdd(id)
            | HostMessage::PortRemove(id)
            | HostMessage::ConsolePort(id, _)
            | HostMessage::Resize(id, ..)
            | HostMessage::PortOpen(id, _)
            | HostMessage::PortName(id, _) => *id,
        }
    }
}

/// Decodes one message from the control receive queue.
pub fn decode(buf: &[u8]) -> Result<HostMessage, ControlError> {
    if buf.len() < HEADER_LEN {
        return Err(ControlError::Truncated(buf.len()));
    }
    let id = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let ev = u16::from_le_bytes([buf[4], buf[5]]);
    let value = u16::from_le_bytes([buf[6], buf[7]]);
    let payload = &buf[HEADER_LEN..];
    Ok(match ev {
        event::PORT_ADD => HostMessage::PortAdd(id),
        event::PORT_REMOVE => HostMessage::PortRemove(id),
        event::CONSOLE_PORT => HostMessage::ConsolePort(id, value != 0),
        event::PORT_OPEN => HostMessage::PortOpen(id, value != 0),
        event::RESIZE => {
            if payload.len() < 4 {
                return Err(ControlError::Truncated(buf.len()));
            }
            let rows = u16::from_le_bytes([payload[0], payload[1]]);
            let cols = u16::from_le_bytes([payload[2], payload[3]]);
            HostMessage::Resize(id, rows, cols)
        }
        event::PORT_NAME => {
            // Like Linux, the name ends at the buffer's end or at the first NUL.
            let name = payload.split(|b| *b == 0).next().unwrap_or(&[]);
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(ControlError::BadName(id));
            }
            let name = core::str::from_utf8(name).map_err(|_| ControlError::BadName(id))?;
            HostMessage::PortName(id, String::from(name))
        }
        _ => return Err(ControlError::UnknownEvent { id, event: ev }),
    })
}

/// A control message header; messages from the guest are only this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Port id ([`BAD_ID`] for DEVICE_READY).
    pub id: u32,
    /// One of the [`event`] numbers.
    pub event: u16,
    /// The event's argument (1 or 0 for most).
    pub value: u16,
}

/// Messages from the guest are bare headers.
pub type GuestMessage = Header;

impl Header {
    /// Decodes a header (the first [`HEADER_LEN`] bytes of any control message).
    pub fn decode(b: &[u8; HEADER_LEN]) -> Self {
        Header {
            id: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            event: u16::from_le_bytes([b[4], b[5]]),
            value: u16::from_le_bytes([b[6], b[7]]),
        }
    }

    /// The header followed by `payload`.
    pub fn encode_with(&self, payload: &[u8]) -> Vec<u8> {
        let mut v = self.encode().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// The 8 bytes on the wire.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(&self.id.to_le_bytes());
        b[4..6].copy_from_slice(&self.event.to_le_bytes());
        b[6..].copy_from_slice(&self.value.to_le_bytes());
        b
    }
}

/// Encodes a host message (used by fake devices in tests and by the host device model).
pub fn encode_host(msg: &HostMessage) -> Vec<u8> {
    let (id, ev, value, payload): (u32, u16, u16, &[u8]) = match msg {
        HostMessage::PortAdd(id) => (*id, event::PORT_ADD, 1, &[]),
        HostMessage::PortRemove(id) => (*id, event::PORT_REMOVE, 0, &[]),
        HostMessage::ConsolePort(id, v) => (*id, event::CONSOLE_PORT, u16::from(*v), &[]),
        HostMessage::PortOpen(id, v) => (*id, event::PORT_OPEN, u16::from(*v), &[]),
        HostMessage::PortName(id, name) => (*id, event::PORT_NAME, 1, name.as_bytes()),
        HostMessage::Resize(id, rows, cols) => {
            let mut v = GuestMessage {
                id: *id,
                event: event::RESIZE,
                value: 0,
            }
            .encode()
            .to_vec();
            v.extend_from_slice(&rows.to_le_bytes());
            v.extend_from_slice(&cols.to_le_bytes());
            return v;
        }
    };
    let mut v = GuestMessage {
        id,
        event: ev,
        value,
    }
    .encode()
    .to_vec();
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_numbers_map_both_ways() {
        assert_eq!((rx_queue(0), tx_queue(0)), (0, 1));
        assert_eq!((rx_queue(1), tx_queue(1)), (4, 5));
        assert_eq!((rx_queue(30), tx_queue(30)), (62, 63));
        assert_eq!(queue_role(CONTROL_RX), QueueRole::ControlRx);
        assert_eq!(queue_role(CONTROL_TX), QueueRole::ControlTx);
        for id in [0, 1, 2, 30, 510] {
            assert_eq!(queue_role(rx_queue(id)), QueueRole::Receive(id));
            assert_eq!(queue_role(tx_queue(id)), QueueRole::Transmit(id));
        }
    }

    #[test]
    fn config_layout_is_the_spec_one() {
        assert_eq!(core::mem::size_of::<ConsoleConfig>(), 12);
        assert_eq!(
            (
                config_offset::COLS,
                config_offset::ROWS,
                config_offset::MAX_NR_PORTS,
                config_offset::EMERG_WR
            ),
            (0, 2, 4, 8)
        );
        let c = ConsoleConfig {
            cols: 80.into(),
            rows: 25.into(),
            max_nr_ports: 31.into(),
            emerg_wr: 0.into(),
        };
        assert_eq!(c.as_bytes(), [80, 0, 25, 0, 31, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn round_trips_every_host_message() {
        let msgs = [
            HostMessage::PortAdd(3),
            HostMessage::PortRemove(30),
            HostMessage::ConsolePort(0, true),
            HostMessage::Resize(0, 25, 80),
            HostMessage::PortOpen(7, false),
            HostMessage::PortName(1, String::from("org.libguestfs.channel.0")),
        ];
        for m in msgs {
            assert_eq!(decode(&encode_host(&m)), Ok(m.clone()), "{m:?}");
        }
    }

    #[test]
    fn wire_layout_is_little_endian_id_event_value() {
        let b = GuestMessage {
            id: BAD_ID,
            event: event::DEVICE_READY,
            value: 1,
        }
        .encode();
        assert_eq!(b, [0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0]);
        assert_eq!(
            decode(&[2, 0, 0, 0, 6, 0, 1, 0]),
            Ok(HostMessage::PortOpen(2, true))
        );
    }

    #[test]
    fn rejects_malformed_messages() {
        assert_eq!(decode(&[1, 0, 0]), Err(ControlError::Truncated(3)));
        assert_eq!(
            decode(&[1, 0, 0, 0, 5, 0, 0, 0, 1]),
            Err(ControlError::Truncated(9))
        );
        assert_eq!(
            decode(&[1, 0, 0, 0, 99, 0, 0, 0]),
            Err(ControlError::UnknownEvent { id: 1, event: 99 })
        );
        assert_eq!(
            decode(&[1, 0, 0, 0, 7, 0, 1, 0]),
            Err(ControlError::BadName(1))
        );
        assert_eq!(
            decode(&[1, 0, 0, 0, 7, 0, 1, 0, 0xff, 0xfe]),
            Err(ControlError::BadName(1))
        );
        let mut long = GuestMessage {
            id: 1,
            event: event::PORT_NAME,
            value: 1,
        }
        .encode()
        .to_vec();
        long.extend(core::iter::repeat_n(b'a', MAX_NAME_LEN + 1));
        assert_eq!(decode(&long), Err(ControlError::BadName(1)));
    }

    #[test]
    fn name_stops_at_nul() {
        let mut b = GuestMessage {
            id: 4,
            event: event::PORT_NAME,
            value: 1,
        }
        .encode()
        .to_vec();
        b.extend_from_slice(b"org.x\0junk");
        assert_eq!(
            decode(&b),
            Ok(HostMessage::PortName(4, String::from("org.x")))
        );
    }
}

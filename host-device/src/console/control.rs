//! The control-queue wire format: `{ le32 id; le16 event; le16 value }`, a name after PORT_NAME.

/// Length of a control message header.
pub const HEADER_LEN: usize = 8;

/// The guest announces the driver is ready (value 1) or failed (0).
pub const DEVICE_READY: u16 = 0;
/// The device added a port.
pub const PORT_ADD: u16 = 1;
/// The device removed a port.
pub const PORT_REMOVE: u16 = 2;
/// The guest set up a port (value 1) or failed to (0).
pub const PORT_READY: u16 = 3;
/// The port is a console.
pub const CONSOLE_PORT: u16 = 4;
/// The console size changed.
pub const RESIZE: u16 = 5;
/// One side opened (1) or closed (0) the port.
pub const PORT_OPEN: u16 = 6;
/// The port's name follows the header.
pub const PORT_NAME: u16 = 7;

/// A control message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Port id.
    pub id: u32,
    /// One of the event constants.
    pub event: u16,
    /// Event argument.
    pub value: u16,
}

impl Header {
    /// Decodes a header from the first [`HEADER_LEN`] bytes.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Self {
        Header {
            id: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            event: u16::from_le_bytes([b[4], b[5]]),
            value: u16::from_le_bytes([b[6], b[7]]),
        }
    }

    /// Encodes the header followed by `payload`.
    pub fn encode(&self, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
        v.extend_from_slice(&self.id.to_le_bytes());
        v.extend_from_slice(&self.event.to_le_bytes());
        v.extend_from_slice(&self.value.to_le_bytes());
        v.extend_from_slice(payload);
        v
    }
}

/// A readable name for an event number, for logs.
pub fn event_name(event: u16) -> &'static str {
    match event {
        DEVICE_READY => "DEVICE_READY",
        PORT_ADD => "PORT_ADD",
        PORT_REMOVE => "PORT_REMOVE",
        PORT_READY => "PORT_READY",
        CONSOLE_PORT => "CONSOLE_PORT",
        RESIZE => "RESIZE",
        PORT_OPEN => "PORT_OPEN",
        PORT_NAME => "PORT_NAME",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Header {
            id: 30,
            event: PORT_NAME,
            value: 1,
        };
        let bytes = h.encode(b"org.libguestfs.channel.0");
        assert_eq!(&bytes[..8], &[30, 0, 0, 0, 7, 0, 1, 0]);
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&bytes[..HEADER_LEN]);
        assert_eq!(Header::decode(&head), h);
        assert_eq!(&bytes[8..], b"org.libguestfs.channel.0");
        assert_eq!(event_name(99), "unknown");
    }
}

//! The control-queue wire format, from the crate the guest driver uses too
//! (`virtio-console-wire`): `{ le32 id; le16 event; le16 value }`, a name after PORT_NAME.

pub use virtio_console_wire::event::*;
pub use virtio_console_wire::{HEADER_LEN, Header, event_name};

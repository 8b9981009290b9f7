//! The guest side of virtio-console with MULTIPORT, independent of the transport.
//!
//! - [`control`]: the control-queue wire format (`{le32 id, le16 event, le16 value}` + payload);
//! - [`ports`]: the multiport state machine and the port API with the Linux guest semantics.
//!
//! The virtio-pci plumbing (queues, interrupts) feeds received control messages and data in
//! and drains the outgoing control messages and data; everything here is plain state and runs
//! in host tests against a fake device.

pub mod control;
pub mod ports;

//! The guest side of virtio-console with MULTIPORT.
//!
//! - [`control`]: the control-queue wire format (`{le32 id, le16 event, le16 value}` + payload);
//! - [`ports`]: the multiport state machine and the port API with the Linux guest semantics;
//! - [`device`]: the virtqueues wired to that state machine, over any virtio-drivers transport.
//!
//! Nothing here touches hardware directly: the platform code hands [`device::ConsoleDevice`] a
//! transport (virtio-pci in the guest, an in-process device model in host tests).

/// The control wire format, shared with the host device model.
pub use virtio_console_wire as control;
pub mod device;
pub mod ports;

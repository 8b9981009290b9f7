//! The appliance protocol spoken on `org.vmchannel.appliance.0`, shared by the guest server
//! (the kernel's appliance agent) and the host client (`vmch`). `no_std + alloc`.
//!
//! - [`types`]: what the appliance reports (devices, filesystems, OSes, files).
//! - [`messages`]: the requests, replies and errors, and the messages each side sends.
//! - [`frame`]: how messages become bytes on the stream, the size limit, and resync after
//!   garbage.
//!
//! docs/PROTOCOL.md describes the wire format; `tests/golden.rs` pins it.
#![no_std]

extern crate alloc;

#[cfg(feature = "std")]
pub mod client;
pub mod frame;
pub mod messages;
pub mod types;

pub use messages::*;
pub use types::*;

//! libguestfs's daemon wire protocol (libguestfs 1.48), for an appliance that unmodified
//! libguestfs tools (guestfish, virt-inspector, virt-ls, virt-cat, virt-df, ...) launch and
//! drive over the virtio-serial port `org.libguestfs.channel.0`. `no_std + alloc`.
//!
//! - [`xdr`]: XDR primitives; a decoder that never panics and allocates only what its input
//!   justifies.
//! - [`frame`]: the launch flag, length-prefixed messages (at most 4 MiB), the header, error
//!   bodies, file chunks, cancel and progress messages, and an incremental stream decoder.
//! - [`procs`] (generated from libguestfs's generator by `tools/`): every daemon procedure's
//!   number and signature, the XDR structs, and the typed [`Call`].
//! - [`call`]: decoding a call message with the daemon's checks and error messages.
//! - [`reply`]: return values and reply frames.
//!
//! This crate is written from the protocol's facts (numbers, layouts, messages); it contains
//! no libguestfs code.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod call;
pub mod frame;
#[doc(hidden)]
pub mod fuzz;
#[rustfmt::skip]
pub mod procs;
pub mod procs_types;
pub mod reply;
pub mod xdr;

pub use call::{CallError, CallMessage, DecodeError, decode_call};
pub use frame::{Event, FrameDecoder, FrameError, Header, MessageError, Role};
pub use procs::Call;
pub use procs_types::ProcInfo;
pub use reply::{Ret, encode_reply};
pub use xdr::Bytes;

//! The two kinds of backend a port can have, apart from none:
//!
//! - [`PortHandler`], in-process callbacks (below);
//! - [`StreamBackend`], a byte stream that connects and disconnects by itself and has file
//!   descriptors for an event loop to wait on; the unix socket ([`super::SocketBackend`]) is
//!   one. The device only talks to it through this interface: it asks for its descriptors
//!   ([`crate::virtio::VirtioDevice::backend_fds`]) and, when one is ready, accepts, reads and
//!   writes ([`crate::virtio::VirtioDevice::poll_backends`]).
//!
//! The in-process backend: callbacks from the device, shaped like the seeds' host API.
//!
//! The device calls a [`PortHandler`] when the guest sends data or opens, closes or makes room
//! on a port; the host side acts through the device's API ([`super::Console::open`],
//! [`close`](super::Console::close), [`write`](super::Console::write),
//! [`guest_ready`](super::Console::guest_ready), [`throttle`](super::Console::throttle)).
//! Callbacks run with the device borrowed, so they cannot call back into it; a handler that
//! wants to answer sends itself a message ([`ChannelHandler`]) and acts after the call.

use std::os::fd::RawFd;
use std::sync::mpsc::Sender;

use crate::virtio::Interest;

/// What one read from a stream gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes.
    Data(usize),
    /// Nothing now.
    WouldBlock,
    /// The peer went away (EOF or an error).
    Closed,
}

/// A non-blocking byte stream serving one port, which connects and disconnects by itself (a
/// peer connecting to a socket): the host side of the port is open while it is connected, and
/// it is opened and closed by its peer, not through the device's API.
pub trait StreamBackend: Send {
    /// What it is, for logs and `Debug` (a socket's path).
    fn describe(&self) -> String;
    /// Whether a peer is connected.
    fn connected(&self) -> bool;
    /// Takes a waiting peer if there is none; true when one was taken.
    fn accept(&mut self) -> bool;
    /// Reads what is there into `buf`.
    fn read(&mut self, buf: &mut [u8]) -> ReadOutcome;
    /// Writes as much of `data` as the stream takes now; `None` when the peer is gone.
    fn write(&mut self, data: &[u8]) -> Option<usize>;
    /// Drops the peer (a listener stays, to take the next).
    fn disconnect(&mut self);
    /// The descriptor to wait on now, and for what: the connection with `conn` (what the
    /// device wants from it), or whatever waits for a peer.
    fn fds(&self, conn: Interest) -> Option<(RawFd, Interest)>;
}

/// Receives what the guest does on one port.
pub trait PortHandler: Send {
    /// The guest wrote `data`. Returns how many bytes were taken; taking fewer throttles the
    /// port (nothing more is offered until [`super::Console::throttle`] with `false`) and the
    /// rest is kept and offered again, so nothing is lost.
    fn have_data(&mut self, data: &[u8]) -> usize;
    /// The guest opened the port.
    fn guest_open(&mut self) {}
    /// The guest closed the port.
    fn guest_close(&mut self) {}
    /// Room toward the guest appeared: data queued for the guest drained into its buffers.
    fn guest_ready(&mut self) {}
}

/// What a [`ChannelHandler`] forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortEvent {
    /// Bytes the guest wrote.
    Data(Vec<u8>),
    /// The guest opened the port.
    GuestOpen,
    /// The guest closed the port.
    GuestClose,
    /// Data queued toward the guest drained.
    GuestReady,
}

/// A handler that forwards everything to a channel and always takes all data (the receiver
/// form of the host API). If the receiver is gone the data is still taken, and dropped.
#[derive(Debug)]
pub struct ChannelHandler {
    tx: Sender<PortEvent>,
}

impl ChannelHandler {
    /// A handler sending to `tx`.
    pub fn new(tx: Sender<PortEvent>) -> Self {
        ChannelHandler { tx }
    }
}

impl PortHandler for ChannelHandler {
    fn have_data(&mut self, data: &[u8]) -> usize {
        let _ = self.tx.send(PortEvent::Data(data.to_vec()));
        data.len()
    }
    fn guest_open(&mut self) {
        let _ = self.tx.send(PortEvent::GuestOpen);
    }
    fn guest_close(&mut self) {
        let _ = self.tx.send(PortEvent::GuestClose);
    }
    fn guest_ready(&mut self) {
        let _ = self.tx.send(PortEvent::GuestReady);
    }
}

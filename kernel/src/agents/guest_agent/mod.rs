//! The QEMU guest agent on `org.qemu.guest_agent.0`: qemu-ga's JSON protocol, answered by
//! the appliance about itself.
//!
//! Requests are JSON objects, `{"execute": NAME, "arguments": {...}, "id": ANY}`, any number
//! per read, split across reads, with or without whitespace between them (see [`splitter`]).
//! Each gets one reply line, `{"return": ...}` or `{"error": {"class", "desc"}}`, with the
//! request's `"id"` echoed back (see [`reply`]). Commands ([`commands`]): `guest-sync`,
//! `guest-sync-delimited` (its reply starts with a 0xFF byte), `guest-ping`, `guest-info`,
//! `guest-get-osinfo` (the appliance's own identity), `guest-get-host-name` (the kernel
//! command line's `hostname=`, else `vmchannel`), `guest-get-time` (the CMOS RTC refined by
//! the TSC; an error where there is no RTC, as under the bundled VMM), `guest-get-users` (an
//! appliance has none: `[]`) and `guest-shutdown` (`powerdown`, the default, `halt` or
//! `reboot`; no reply). A shutdown is not done here: the agent records a
//! [`PowerAction`](crate::power::PowerAction) in the shared [`PowerRequests`] cell and stops
//! taking requests; the serve loop (`arch::serve`) takes it once its poll returns, lets the
//! queued output drain, and powers off (`halt` too: under QEMU and the bundled VMM the VM
//! ends either way) or resets through the FADT's reset register.
//!
//! Errors follow qemu-ga's classes and messages: `CommandNotFound` for an unknown command,
//! `GenericError` for everything else (invalid JSON: `JSON parse error, ...`; a text that is
//! not an object; a malformed request; missing, mistyped or unexpected arguments).
//!
//! Robustness: a request is at most [`MAX_REQUEST`] bytes; a longer one is answered with one
//! error and skipped to its end without being buffered. A 0xFF byte from the host discards
//! any partial request. Output is back-pressured (no new request is taken while more than
//! [`OUT_HIGH`] bytes of replies wait for the host), and each poll does a bounded amount of
//! work, so a flood of garbage neither grows memory nor holds up the other ports. A text that
//! never ends (an unbalanced `[`) is skipped until it does or until a 0xFF byte, holding no
//! memory. A host disconnect drops the partial request and unsent replies; input the old
//! client left unread is still read (as with qemu-ga), which is what the 0xFF flush and
//! `guest-sync-delimited` are for.
//!
//! Where this differs from qemu-ga: a 0xFF byte is a silent flush (qemu-ga's lexer also
//! answers it with a `JSON parse error, stray '\xff'` error, one per byte); QEMU's JSON
//! extensions (single-quoted strings, `%` interpolation) are not accepted; a key repeated in
//! a request is not refused (the last one counts); replies are compact JSON (no spaces).

pub mod commands;
pub mod dispatch;
pub mod reply;
pub mod splitter;

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{AgentKind, PortAgent};
use crate::cmdline::Cmdline;
use crate::power::PowerRequests;
use crate::rtc::WallTime;
use crate::virtio_console::ports::{Multiport, PortEvent, PortHandle};
use commands::Context;
use reply::{AgentError, Reply};
use splitter::{Piece, Splitter};

/// The port qemu-ga serves.
pub const PORT_NAME: &str = "org.qemu.guest_agent.0";
/// Largest request accepted, in bytes.
pub const MAX_REQUEST: usize = 64 * 1024;
/// No new request is taken while more than this many reply bytes wait for the host.
pub const OUT_HIGH: usize = 64 * 1024;
/// Bytes read from the port at a time.
const READ_STEP: usize = 16 * 1024;
/// Rounds of work per poll, each at most one flush and [`READ_STEP`] bytes of input.
const MAX_ROUNDS: usize = 4;
/// The host name when the command line gives none.
pub const DEFAULT_HOST_NAME: &str = "vmchannel";

/// What the agent needs from the kernel.
pub struct Config {
    /// The appliance's host name.
    pub host_name: String,
    /// Wall-clock time.
    pub clock: Rc<dyn WallTime>,
    /// Where `guest-shutdown` records its action for the serve loop.
    pub power: PowerRequests,
}

/// The host name from the command line's `hostname=`, else [`DEFAULT_HOST_NAME`].
pub fn host_name(cmdline: &Cmdline<'_>) -> String {
    match cmdline.get("hostname") {
        Some(name) if !name.is_empty() => name.into(),
        _ => DEFAULT_HOST_NAME.into(),
    }
}

/// The agent's registration.
pub fn kind(config: Rc<Config>) -> AgentKind {
    AgentKind {
        name: "guest-agent",
        pattern: PORT_NAME,
        start: Box::new(move |_| Box::new(GuestAgent::new(config.clone()))),
    }
}

/// One port's agent.
pub struct GuestAgent {
    config: Rc<Config>,
    splitter: Splitter,
    input: Box<[u8]>,
    in_pos: usize,
    in_end: usize,
    out: Vec<u8>,
    out_pos: usize,
    connected: bool,
    /// The host left: requests it sent before leaving are still run, their replies dropped.
    draining: bool,
    /// A shutdown was requested here: take no more requests.
    stopped: bool,
}

impl GuestAgent {
    /// An agent with no host connected yet.
    pub fn new(config: Rc<Config>) -> Self {
        Self {
            config,
            splitter: Splitter::new(MAX_REQUEST),
            input: vec![0u8; READ_STEP].into_boxed_slice(),
            in_pos: 0,
            in_end: 0,
            out: Vec::new(),
            out_pos: 0,
            connected: false,
            draining: false,
            stopped: false,
        }
    }

    /// True once a `guest-shutdown` was accepted: no more requests are taken.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Forgets the connection's state: partial request, unread input, unsent replies.
    fn reset(&mut self) {
        self.splitter.reset();
        self.in_pos = 0;
        self.in_end = 0;
        self.out = Vec::new();
        self.out_pos = 0;
    }

    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn flush(&mut self, ports: &mut Multiport, port: PortHandle) -> bool {
        let mut progress = false;
        while self.out_pos < self.out.len() {
            match ports.write(port, &self.out[self.out_pos..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.out_pos += n;
                    progress = true;
                }
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= OUT_HIGH {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        progress
    }

    fn answer(&mut self, piece: Piece) {
        let reply = match piece {
            Piece::TooLarge => Some(Reply::error(AgentError::generic(format!(
                "JSON parse error, request longer than {MAX_REQUEST} bytes"
            )))),
            Piece::Text(text) => {
                let ctx = Context {
                    host_name: &self.config.host_name,
                    clock: &*self.config.clock,
                    power: &self.config.power,
                };
                let reply = dispatch::handle_text(&text, &ctx);
                if reply.is_none() && self.config.power.pending().is_some() {
                    self.stopped = true;
                }
                reply
            }
        };
        if let Some(reply) = reply {
            reply.encode(&mut self.out);
        }
    }

    /// Reads more input if none is left, then splits and answers it until it is used up,
    /// the replies reach [`OUT_HIGH`], or a shutdown is accepted.
    fn take_input(&mut self, ports: &mut Multiport, port: PortHandle) -> bool {
        if self.in_pos == self.in_end {
            match ports.read(port, &mut self.input) {
                Ok(n) if n > 0 => {
                    self.in_pos = 0;
                    self.in_end = n;
                }
                _ => return false,
            }
        }
        while self.in_pos < self.in_end && self.pending() < OUT_HIGH && !self.stopped {
            let byte = self.input[self.in_pos];
            self.in_pos += 1;
            if let Some(piece) = self.splitter.push(byte) {
                self.answer(piece);
            }
        }
        true
    }
}

impl PortAgent for GuestAgent {
    fn event(&mut self, event: &PortEvent) {
        if let PortEvent::HostDisconnected(_) = event
            && self.connected
        {
            self.connected = false;
            self.draining = true;
        }
    }

    fn poll(&mut self, ports: &mut Multiport, port: PortHandle) -> bool {
        let mut progress = false;
        let connected = ports.host_connected(port.id);
        if connected && !self.connected {
            // A new session: nothing of the previous one carries over.
            self.connected = true;
            self.draining = false;
            self.reset();
            progress = true;
        } else if !connected && self.connected {
            self.connected = false;
            self.draining = true;
        }
        if !connected {
            // Complete requests the host sent before it left still run, as qemu-ga runs what
            // it read (a `guest-shutdown` sent just before closing must not be lost); their
            // replies have nobody to go to. A partial request is dropped.
            if self.draining {
                for _ in 0..MAX_ROUNDS {
                    self.out.clear();
                    self.out_pos = 0;
                    if self.stopped || !self.take_input(ports, port) {
                        self.draining = false;
                        self.reset();
                        break;
                    }
                }
                progress = true;
            }
            return progress;
        }
        for _ in 0..MAX_ROUNDS {
            let mut step = self.flush(ports, port);
            if !self.stopped && self.pending() < OUT_HIGH {
                step |= self.take_input(ports, port);
            }
            if !step {
                return progress;
            }
            progress = true;
        }
        progress
    }
}

#[cfg(test)]
mod tests;

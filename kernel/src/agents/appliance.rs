//! The appliance agent on `org.vmchannel.appliance.0`: speaks vmchannel's protocol
//! (docs/PROTOCOL.md) to one client at a time.
//!
//! When the host connects the agent greets it with its [`Hello`]; each connection is a fresh
//! session (a disconnect drops whatever was queued or streaming). Requests are answered in
//! order. A download streams [`ServerMessage::Chunk`]s a few at a time, so other ports keep
//! moving and a [`ClientMessage::Cancel`] or [`ClientMessage::Sync`] that arrives meanwhile
//! takes effect at once. Output is back-pressured: while the host is not reading, the agent
//! stops reading requests, so a client cannot make it buffer without bound.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use sha2::{Digest, Sha256};
use vmchannel_proto::frame::{self, ClientDecoder, Decoded};
use vmchannel_proto::{
    ClientMessage, Error, ErrorKind, Hello, PROTOCOL_VERSION, Reply, Request, ServerMessage, caps,
};

use super::{AgentKind, HostLink, PortAgent};
use crate::virtio_console::ports::{Multiport, PortEvent, PortHandle};
use vmchannel_inspect::appliance::Appliance;
use vmchannel_inspect::appliance::handler::OpenFile;

/// The port the appliance serves, as in libguestfs.
pub const PORT_NAME: &str = "org.vmchannel.appliance.0";
/// Largest frame the agent accepts from the host (requests are small).
pub const MAX_REQUEST_FRAME: u32 = 64 * 1024;
/// Data bytes per download chunk.
pub const CHUNK: usize = 64 * 1024;
/// A progress message every this many bytes of a download.
const PROGRESS_EVERY: u64 = 1 << 20;
/// Stop reading requests while more than this much output waits for the host.
const OUT_HIGH: usize = 256 * 1024;
/// Produce more download chunks only while less than this much output waits.
const OUT_LOW: usize = 2 * CHUNK;
/// Bytes hashed per step of a checksum.
const HASH_STEP: usize = 256 * 1024;
/// Rounds of work per poll (each at most one request, or one chunk or hash step).
const MAX_ROUNDS: usize = 8;
/// Bytes read from the port per step.
const READ_STEP: usize = 16 * 1024;

/// The agent's registration, serving these disks.
pub fn kind(appliance: Rc<RefCell<Appliance>>) -> AgentKind {
    AgentKind {
        name: "appliance",
        pattern: PORT_NAME,
        start: Box::new(move |_| Box::new(Server::new(appliance.clone()))),
    }
}

/// The server's greeting.
pub fn hello() -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        capabilities: caps::ALL,
        max_frame: MAX_REQUEST_FRAME,
        software: format!("vmchannel appliance {}", env!("CARGO_PKG_VERSION")),
    }
}

/// A file being streamed: a download (chunks sent) or a checksum (only hashed). Both go a
/// step at a time, so a huge (or hostile, sparse) file never stalls the agent and can be
/// cancelled.
struct Download {
    id: u32,
    /// Send the data (a download), or only hash it (a checksum).
    send_data: bool,
    file: OpenFile,
    offset: u64,
    hasher: Sha256,
    next_progress: u64,
}

/// One session's state.
pub struct Server {
    appliance: Rc<RefCell<Appliance>>,
    decoder: ClientDecoder,
    out: Vec<u8>,
    out_pos: usize,
    link: HostLink,
    client_version: Option<u16>,
    queue: VecDeque<(u32, Request)>,
    download: Option<Download>,
    inbuf: Box<[u8]>,
}

impl Server {
    /// A server with no client yet.
    pub fn new(appliance: Rc<RefCell<Appliance>>) -> Self {
        Self {
            appliance,
            decoder: ClientDecoder::with_max_frame(frame::HANDSHAKE_MAX_FRAME),
            out: Vec::new(),
            out_pos: 0,
            link: HostLink::default(),
            client_version: None,
            queue: VecDeque::new(),
            download: None,
            inbuf: vec![0u8; READ_STEP].into_boxed_slice(),
        }
    }

    /// A fresh session: until the client's Hello, frames are decoded under the handshake
    /// limit and garbage is passed over silently, so an earlier connection's tail (a request
    /// cut anywhere) can neither swallow the new greeting nor draw replies into this session.
    fn reset(&mut self) {
        self.decoder = ClientDecoder::with_max_frame(frame::HANDSHAKE_MAX_FRAME);
        self.out.clear();
        self.out_pos = 0;
        self.client_version = None;
        self.queue.clear();
        self.download = None;
    }

    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn send(&mut self, msg: &ServerMessage) {
        match frame::encode(msg) {
            Ok(bytes) => self.out.extend_from_slice(&bytes),
            Err(e) => {
                // Only a reply can be too large (chunks are bounded); say so instead.
                if let ServerMessage::Response { id, .. } = msg {
                    let fallback = ServerMessage::Response {
                        id: *id,
                        result: Err(Error {
                            kind: ErrorKind::TooLarge,
                            message: format!("reply does not fit in a frame: {e}"),
                        }),
                    };
                    if let Ok(bytes) = frame::encode(&fallback) {
                        self.out.extend_from_slice(&bytes);
                    }
                } else {
                    log::warn!("appliance: cannot encode a message: {e}");
                }
            }
        }
    }

    fn respond(&mut self, id: u32, result: Result<Reply, Error>) {
        self.send(&ServerMessage::Response { id, result });
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
        } else if self.out_pos > OUT_HIGH {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        progress
    }

    fn on_message(&mut self, msg: ClientMessage) {
        match msg {
            ClientMessage::Hello(h) => {
                self.client_version = Some(h.version);
                self.decoder.set_max_frame(MAX_REQUEST_FRAME);
                self.send(&ServerMessage::Hello(hello()));
            }
            ClientMessage::Request { id, request } => match self.client_version {
                None => self.respond(
                    id,
                    Err(Error {
                        kind: ErrorKind::BadRequest,
                        message: "send Hello before requests".to_string(),
                    }),
                ),
                Some(v) if v != PROTOCOL_VERSION => self.respond(
                    id,
                    Err(Error {
                        kind: ErrorKind::Unsupported,
                        message: format!(
                            "protocol version {v} is not supported (this appliance speaks {PROTOCOL_VERSION})"
                        ),
                    }),
                ),
                Some(_) => self.queue.push_back((id, request)),
            },
            ClientMessage::Cancel { id } => {
                let cancelled = Err(Error {
                    kind: ErrorKind::Cancelled,
                    message: format!("request {id} cancelled"),
                });
                if self.download.as_ref().is_some_and(|d| d.id == id) {
                    self.download = None;
                    self.respond(id, cancelled);
                } else if let Some(at) = self.queue.iter().position(|(q, _)| *q == id) {
                    self.queue.remove(at);
                    self.respond(id, cancelled);
                }
                // Otherwise it already finished: nothing to do.
            }
            ClientMessage::Sync { nonce } => {
                self.queue.clear();
                self.download = None;
                self.send(&ServerMessage::Synced { nonce });
            }
        }
    }

    fn run_next(&mut self) -> bool {
        let Some((id, request)) = self.queue.pop_front() else {
            return false;
        };
        let streamed = match &request {
            Request::Download { target, path } => Some((target, path, true)),
            Request::Checksum { target, path } => Some((target, path, false)),
            _ => None,
        };
        if let Some((target, path, send_data)) = streamed {
            let opened = self.appliance.borrow_mut().open(target, path);
            match opened {
                Ok(file) => {
                    self.download = Some(Download {
                        id,
                        send_data,
                        file,
                        offset: 0,
                        hasher: Sha256::new(),
                        next_progress: PROGRESS_EVERY,
                    })
                }
                Err(e) => self.respond(id, Err(e)),
            }
            return true;
        }
        let result = self.appliance.borrow_mut().handle(&request);
        self.respond(id, result);
        true
    }

    /// Takes the next step of the stream in flight: reads and hashes the next piece (and
    /// sends it, for a download), or sends the final answer at end of file.
    fn download_step(&mut self) -> bool {
        let Some(d) = self.download.as_mut() else {
            return false;
        };
        let mut buf = vec![0u8; if d.send_data { CHUNK } else { HASH_STEP }];
        match d.file.fs.read_at(&d.file.path, d.offset, &mut buf) {
            Err(e) => {
                let id = d.id;
                self.download = None;
                self.respond(id, Err(e.into()));
            }
            Ok(0) => {
                let d = self.download.take().expect("checked above");
                let sha256: [u8; 32] = d.hasher.finalize().into();
                let reply = if d.send_data {
                    Reply::Downloaded {
                        size: d.offset,
                        sha256,
                    }
                } else {
                    Reply::Checksum(sha256)
                };
                self.respond(d.id, Ok(reply));
            }
            Ok(n) => {
                buf.truncate(n);
                d.hasher.update(&buf);
                let (id, offset) = (d.id, d.offset);
                d.offset += n as u64;
                let progress =
                    (d.offset >= d.next_progress || d.offset >= d.file.size).then(|| {
                        d.next_progress = d.offset + PROGRESS_EVERY;
                        ServerMessage::Progress {
                            id,
                            done: d.offset,
                            total: d.file.size.max(d.offset),
                        }
                    });
                if d.send_data {
                    self.send(&ServerMessage::Chunk {
                        id,
                        offset,
                        data: buf,
                    });
                }
                if let Some(p) = progress {
                    self.send(&p);
                }
            }
        }
        true
    }

    fn read_input(&mut self, ports: &mut Multiport, port: PortHandle) -> bool {
        let n = match ports.read(port, &mut self.inbuf) {
            Ok(n) if n > 0 => n,
            _ => return false,
        };
        self.decoder.push(&self.inbuf[..n]);
        while let Some(event) = self.decoder.next() {
            match event {
                Decoded::Message(msg) => self.on_message(msg),
                // Before the Hello, garbage is the preamble or an old session's tail.
                Decoded::Garbage { .. } if self.client_version.is_none() => {}
                Decoded::Garbage { skipped, reason } => self.send(&ServerMessage::Garbage {
                    skipped,
                    message: reason.to_string(),
                }),
            }
        }
        true
    }
}

impl PortAgent for Server {
    fn event(&mut self, event: &PortEvent) {
        if self.link.on_event(event) {
            self.reset();
        }
    }

    fn poll(&mut self, ports: &mut Multiport, port: PortHandle) -> bool {
        let mut progress = false;
        if let Some(connected) = self.link.sync(ports, port) {
            self.reset();
            if connected {
                // The preamble first: it ends whatever of an earlier session the host may
                // still receive ahead of this greeting.
                self.out.extend_from_slice(&frame::PREAMBLE);
                self.send(&ServerMessage::Hello(hello()));
            }
            progress = true;
        }
        if !self.link.connected() {
            return progress;
        }
        // A bounded number of rounds per poll: a stream (a checksum never waits for the
        // host) must let the device and the other ports move, and let a Cancel arrive.
        for _ in 0..MAX_ROUNDS {
            let mut step = self.flush(ports, port);
            if self.pending() < OUT_HIGH {
                step |= self.read_input(ports, port);
            }
            if self.download.is_some() {
                if self.pending() < OUT_LOW {
                    step |= self.download_step();
                }
            } else if self.pending() < OUT_HIGH {
                step |= self.run_next();
            }
            if !step {
                return progress;
            }
            progress = true;
        }
        progress
    }
}

//! The host's client (feature `std`): one session with the appliance over any byte stream
//! (a unix socket to the VMM's or QEMU's port, or an in-process pipe).
//!
//! ```no_run
//! # use vmchannel_proto::client::Client;
//! # use vmchannel_proto::Target;
//! let stream = std::os::unix::net::UnixStream::connect("/tmp/appliance.sock")?;
//! let mut client = Client::connect(stream)?;
//! for os in client.inspect(true)? {
//!     println!("{} {:?} {:?}", os.root, os.distro, os.product_name);
//! }
//! let hosts = client.read_file(&Target::Os("/dev/sda2".into()), "/etc/hosts")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

extern crate std;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use std::io::{self, Read, Write};

use crate::frame::{self, Decoded, FrameError, ServerDecoder};
use crate::{
    ClientMessage, DeviceInfo, DirEntry, Error, FilesystemInfo, Hello, MAX_READ, OsInfo,
    PROTOCOL_VERSION, Reply, Request, ServerMessage, Stat, Target, Usage, caps,
};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The stream failed.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The appliance closed the connection.
    #[error("the appliance closed the connection")]
    Closed,
    /// A message could not be encoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The appliance answered something this client did not expect.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The appliance speaks another protocol version.
    #[error("the appliance speaks protocol version {theirs}, this client {ours}")]
    Version {
        /// Ours.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The appliance refused or failed the request.
    #[error("{}: {}", kind_name(&.0.kind), .0.message)]
    Remote(Error),
}

/// A Sync nonce nobody can predict (a forged Synced in an earlier session's leftovers, say a
/// file downloaded from a hostile disk, must not end the handshake early): std's randomly
/// seeded hasher, over the time and the process id.
fn fresh_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

fn kind_name(k: &crate::ErrorKind) -> &'static str {
    use crate::ErrorKind::*;
    match k {
        NotFound => "not found",
        NotADirectory => "not a directory",
        IsADirectory => "is a directory",
        Corrupt => "corrupt",
        Unsupported => "unsupported",
        TooLarge => "too large",
        BadRequest => "bad request",
        Cancelled => "cancelled",
        Io => "I/O error",
    }
}

/// A session with the appliance.
pub struct Client<S: Read + Write> {
    stream: S,
    decoder: ServerDecoder,
    next_id: u32,
    server: Hello,
    buf: Vec<u8>,
    passed_over: u64,
}

impl<S: Read + Write> Client<S> {
    /// Greets the appliance and waits until it is ready: sends the session preamble, Hello
    /// and a Sync with a fresh random nonce, then reads until the Sync's answer. Until then
    /// it decodes under [`frame::HANDSHAKE_MAX_FRAME`] and passes over whatever else comes
    /// (an earlier session's leftovers, a frame of it cut anywhere, garbage), so that nothing
    /// of an earlier session, however it was cut, can stall or answer this one.
    pub fn connect(stream: S) -> Result<Self, ClientError> {
        let mut c = Self {
            stream,
            decoder: ServerDecoder::with_max_frame(frame::HANDSHAKE_MAX_FRAME),
            next_id: 1,
            server: Hello {
                version: 0,
                capabilities: 0,
                max_frame: 0,
                software: String::new(),
            },
            buf: alloc::vec![0u8; 256 * 1024],
            passed_over: 0,
        };
        let nonce = fresh_nonce();
        let mut greeting = frame::PREAMBLE.to_vec();
        greeting.extend(frame::encode(&ClientMessage::Hello(Hello {
            version: PROTOCOL_VERSION,
            capabilities: caps::ALL,
            max_frame: frame::MAX_FRAME,
            software: format!("vmchannel client {}", env!("CARGO_PKG_VERSION")),
        }))?);
        greeting.extend(frame::encode(&ClientMessage::Sync { nonce })?);
        c.stream.write_all(&greeting)?;
        c.stream.flush()?;
        // The last Hello before our Synced is the server's (leftovers come before it).
        let mut hello = None;
        loop {
            match c.next_event()? {
                Decoded::Message(ServerMessage::Hello(h)) => hello = Some(h),
                Decoded::Message(ServerMessage::Synced { nonce: n }) if n == nonce => break,
                _ => c.passed_over += 1,
            }
        }
        c.decoder.set_max_frame(frame::MAX_FRAME);
        let hello = hello.ok_or_else(|| ClientError::Protocol("no Hello before Synced".into()))?;
        if hello.version != PROTOCOL_VERSION {
            return Err(ClientError::Version {
                ours: PROTOCOL_VERSION,
                theirs: hello.version,
            });
        }
        c.server = hello;
        Ok(c)
    }

    /// Messages received that answered nothing this client was waiting for (leftovers of an
    /// earlier session, chunks of a cancelled download ...), and runs of garbage passed over
    /// before the session began, since the connection began.
    pub fn passed_over(&self) -> u64 {
        self.passed_over
    }

    /// The appliance's greeting.
    pub fn server(&self) -> &Hello {
        &self.server
    }

    /// The underlying stream.
    pub fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let bytes = frame::encode(msg)?;
        self.stream.write_all(&bytes)?;
        self.stream.flush()?;
        Ok(())
    }

    /// The next message from the appliance.
    /// The next message; undecodable bytes are an error.
    fn next(&mut self) -> Result<ServerMessage, ClientError> {
        match self.next_event()? {
            Decoded::Message(m) => Ok(m),
            Decoded::Garbage { skipped, reason } => Err(ClientError::Protocol(format!(
                "{skipped} undecodable bytes from the appliance: {reason}"
            ))),
        }
    }

    /// The next event from the stream: a message or a run of garbage.
    fn next_event(&mut self) -> Result<Decoded<ServerMessage>, ClientError> {
        loop {
            if let Some(event) = self.decoder.next() {
                return Ok(event);
            }
            let n = match self.stream.read(&mut self.buf) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.decoder.push(&self.buf[..n]);
        }
    }

    fn start(&mut self, request: Request) -> Result<u32, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.send(&ClientMessage::Request { id, request })?;
        Ok(id)
    }

    /// Sends `request` without waiting; returns its id for [`Client::wait`] or
    /// [`Client::cancel`].
    pub fn send_request(&mut self, request: Request) -> Result<u32, ClientError> {
        self.start(request)
    }

    /// Asks the appliance to stop request `id` (a download or checksum in flight, or one
    /// still queued); its answer is then an error of kind `Cancelled`.
    pub fn cancel(&mut self, id: u32) -> Result<(), ClientError> {
        self.send(&ClientMessage::Cancel { id })
    }

    /// Sends `request` and waits for its answer.
    pub fn call(&mut self, request: Request) -> Result<Reply, ClientError> {
        let id = self.start(request)?;
        self.wait(id)
    }

    /// Waits for the answer to request `id`, passing over chunks and progress.
    pub fn wait(&mut self, id: u32) -> Result<Reply, ClientError> {
        loop {
            match self.next()? {
                ServerMessage::Response { id: got, result } if got == id => {
                    return result.map_err(ClientError::Remote);
                }
                ServerMessage::Garbage { message, .. } => {
                    return Err(ClientError::Protocol(format!(
                        "the appliance could not decode our request: {message}"
                    )));
                }
                _ => self.passed_over += 1,
            }
        }
    }

    /// Block devices and partitions.
    pub fn list_devices(&mut self) -> Result<Vec<DeviceInfo>, ClientError> {
        match self.call(Request::ListDevices)? {
            Reply::Devices(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    /// Filesystems with type, label and UUID.
    pub fn list_filesystems(&mut self) -> Result<Vec<FilesystemInfo>, ClientError> {
        match self.call(Request::ListFilesystems)? {
            Reply::Filesystems(f) => Ok(f),
            other => Err(unexpected(&other)),
        }
    }

    /// Operating systems, with installed packages when `applications`.
    pub fn inspect(&mut self, applications: bool) -> Result<Vec<OsInfo>, ClientError> {
        match self.call(Request::Inspect { applications })? {
            Reply::Inspection(o) => Ok(o),
            other => Err(unexpected(&other)),
        }
    }

    /// Directory entries.
    pub fn read_dir(&mut self, target: &Target, path: &str) -> Result<Vec<DirEntry>, ClientError> {
        match self.call(Request::ReadDir {
            target: target.clone(),
            path: path.into(),
        })? {
            Reply::Entries(e) => Ok(e),
            other => Err(unexpected(&other)),
        }
    }

    /// Metadata (`follow`: of a symlink's target).
    pub fn stat(&mut self, target: &Target, path: &str, follow: bool) -> Result<Stat, ClientError> {
        match self.call(Request::Stat {
            target: target.clone(),
            path: path.into(),
            follow,
        })? {
            Reply::Stat(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Up to `len` bytes at `offset` (at most [`MAX_READ`]).
    pub fn read(
        &mut self,
        target: &Target,
        path: &str,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, ClientError> {
        match self.call(Request::Read {
            target: target.clone(),
            path: path.into(),
            offset,
            len,
        })? {
            Reply::Data(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    /// A whole (small) file, read [`MAX_READ`] bytes at a time.
    pub fn read_file(&mut self, target: &Target, path: &str) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        loop {
            let piece = self.read(target, path, out.len() as u64, MAX_READ)?;
            if piece.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&piece);
        }
    }

    /// Streams a file into `sink`, calling `progress(done, total)` as it goes. Returns the
    /// size and the sha256 the appliance computed over what it sent.
    pub fn download(
        &mut self,
        target: &Target,
        path: &str,
        sink: &mut dyn Write,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(u64, [u8; 32]), ClientError> {
        let id = self.start(Request::Download {
            target: target.clone(),
            path: path.into(),
        })?;
        let mut expected = 0u64;
        loop {
            match self.next()? {
                ServerMessage::Chunk {
                    id: got,
                    offset,
                    data,
                } if got == id => {
                    if offset != expected {
                        return Err(ClientError::Protocol(format!(
                            "chunk at {offset}, expected {expected}"
                        )));
                    }
                    sink.write_all(&data)?;
                    expected += data.len() as u64;
                }
                ServerMessage::Progress {
                    id: got,
                    done,
                    total,
                } if got == id => progress(done, total),
                ServerMessage::Response { id: got, result } if got == id => {
                    return match result.map_err(ClientError::Remote)? {
                        Reply::Downloaded { size, sha256 } if size == expected => {
                            Ok((size, sha256))
                        }
                        Reply::Downloaded { size, .. } => Err(ClientError::Protocol(format!(
                            "download ended at {size} bytes after {expected} received"
                        ))),
                        other => Err(unexpected(&other)),
                    };
                }
                _ => self.passed_over += 1,
            }
        }
    }

    /// sha256 of a file, computed in the guest.
    pub fn checksum(&mut self, target: &Target, path: &str) -> Result<[u8; 32], ClientError> {
        match self.call(Request::Checksum {
            target: target.clone(),
            path: path.into(),
        })? {
            Reply::Checksum(h) => Ok(h),
            other => Err(unexpected(&other)),
        }
    }

    /// Usage of the filesystem holding `path`.
    pub fn usage(&mut self, target: &Target, path: &str) -> Result<Usage, ClientError> {
        match self.call(Request::Usage {
            target: target.clone(),
            path: path.into(),
        })? {
            Reply::Usage(u) => Ok(u),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends raw bytes (tests use this to inject garbage).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes)?;
        Ok(self.stream.flush()?)
    }

    /// Gets back to a clean state: sends Sync and passes over everything until its answer.
    /// Returns how many messages were passed over.
    pub fn resync(&mut self) -> Result<usize, ClientError> {
        let nonce = self.next_id as u64 ^ 0xA5A5_0000_0000;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.send(&ClientMessage::Sync { nonce })?;
        let mut skipped = 0;
        loop {
            match self.next() {
                Ok(ServerMessage::Synced { nonce: n }) if n == nonce => return Ok(skipped),
                Ok(_) | Err(ClientError::Protocol(_)) => skipped += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts a download and cancels it after `after` bytes; returns the error the appliance
    /// ended it with (tests and `vmch` use this to stop a transfer early).
    pub fn download_cancel_after(
        &mut self,
        target: &Target,
        path: &str,
        after: u64,
    ) -> Result<Error, ClientError> {
        let id = self.start(Request::Download {
            target: target.clone(),
            path: path.into(),
        })?;
        let mut got_bytes = 0u64;
        let mut cancelled = false;
        loop {
            match self.next()? {
                ServerMessage::Chunk { id: got, data, .. } if got == id => {
                    got_bytes += data.len() as u64;
                    if got_bytes >= after && !cancelled {
                        self.send(&ClientMessage::Cancel { id })?;
                        cancelled = true;
                    }
                }
                ServerMessage::Response { id: got, result } if got == id => {
                    return match result {
                        Err(e) => Ok(e),
                        Ok(r) => Err(ClientError::Protocol(format!(
                            "download finished despite cancel: {r:?}"
                        ))),
                    };
                }
                _ => self.passed_over += 1,
            }
        }
    }
}

fn unexpected(reply: &Reply) -> ClientError {
    let name = match reply {
        Reply::Devices(_) => "Devices",
        Reply::Filesystems(_) => "Filesystems",
        Reply::Inspection(_) => "Inspection",
        Reply::Entries(_) => "Entries",
        Reply::Stat(_) => "Stat",
        Reply::Data(_) => "Data",
        Reply::Downloaded { .. } => "Downloaded",
        Reply::Checksum(_) => "Checksum",
        Reply::Usage(_) => "Usage",
    };
    ClientError::Protocol(format!("unexpected reply {name}"))
}

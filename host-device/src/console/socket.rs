//! The unix socket backend, as QEMU's `-chardev socket,path=...[,server=on]`.
//!
//! A server listens on a path (created mode 0600) and serves one connection at a time; further
//! clients wait in the listen backlog until the current one disconnects. A client connects to
//! a path when the port is created. Connecting and disconnecting are the host side opening and
//! closing the port. Everything is non-blocking: the event loop asks the device for its
//! backends' descriptors ([`crate::virtio::VirtioDevice::backend_fds`]) and calls
//! [`crate::virtio::VirtioDevice::poll_backends`] when one is ready.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::backend::{ReadOutcome, StreamBackend};
use super::{Console, READ_CHUNK};

/// Why a socket backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Binding the listening socket failed.
    #[error("cannot listen on {path}: {source}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Connecting to the peer failed.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

pub use crate::virtio::Interest;

/// A unix socket serving one port.
#[derive(Debug)]
pub struct SocketBackend {
    path: PathBuf,
    listener: Option<UnixListener>,
    stream: Option<UnixStream>,
}

impl SocketBackend {
    /// Listens on `path`, which must not exist yet (as QEMU, we do not remove someone else's
    /// socket). The socket file is made mode 0600.
    pub fn server(path: impl AsRef<Path>) -> Result<Self, SocketError> {
        let path = path.as_ref().to_path_buf();
        let err = |source| SocketError::Listen {
            path: path.clone(),
            source,
        };
        let listener = UnixListener::bind(&path).map_err(err)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        Ok(SocketBackend {
            path,
            listener: Some(listener),
            stream: None,
        })
    }

    /// Connects to a listening socket at `path` now.
    pub fn client(path: impl AsRef<Path>) -> Result<Self, SocketError> {
        let path = path.as_ref().to_path_buf();
        let err = |source| SocketError::Connect {
            path: path.clone(),
            source,
        };
        let stream = UnixStream::connect(&path).map_err(err)?;
        stream.set_nonblocking(true).map_err(err)?;
        Ok(SocketBackend {
            path,
            listener: None,
            stream: Some(stream),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a peer is connected.
    pub fn connected(&self) -> bool {
        self.stream.is_some()
    }
}

impl StreamBackend for SocketBackend {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn connected(&self) -> bool {
        SocketBackend::connected(self)
    }

    /// Accepts a waiting connection if there is none.
    fn accept(&mut self) -> bool {
        if self.stream.is_some() {
            return false;
        }
        let Some(listener) = &self.listener else {
            return false;
        };
        match listener.accept() {
            Ok((s, _)) => {
                if let Err(e) = s.set_nonblocking(true) {
                    log::warn!("{}: dropping a connection: {e}", self.path.display());
                    return false;
                }
                self.stream = Some(s);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                log::warn!("{}: accept: {e}", self.path.display());
                false
            }
        }
    }

    /// Reads into `buf`.
    fn read(&mut self, buf: &mut [u8]) -> ReadOutcome {
        let Some(s) = &mut self.stream else {
            return ReadOutcome::Closed;
        };
        loop {
            return match s.read(buf) {
                Ok(0) => ReadOutcome::Closed,
                Ok(n) => ReadOutcome::Data(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::info!("{}: read: {e}", self.path.display());
                    ReadOutcome::Closed
                }
            };
        }
    }

    /// Writes as much of `data` as the socket takes now; `None` when the peer is gone.
    fn write(&mut self, data: &[u8]) -> Option<usize> {
        let s = self.stream.as_mut()?;
        let mut done = 0;
        while done < data.len() {
            match s.write(&data[done..]) {
                Ok(0) => return None,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::info!("{}: write: {e}", self.path.display());
                    return None;
                }
            }
        }
        Some(done)
    }

    /// Drops the connection (the listener stays).
    fn disconnect(&mut self) {
        self.stream = None;
    }

    /// The descriptors to wait on: the connection when there is one (with `conn` interest),
    /// else the listener.
    fn fds(&self, conn: Interest) -> Option<(RawFd, Interest)> {
        match (&self.stream, &self.listener) {
            (Some(s), _) => Some((s.as_raw_fd(), conn)),
            (None, Some(l)) => Some((
                l.as_raw_fd(),
                Interest {
                    read: true,
                    write: false,
                },
            )),
            (None, None) => None,
        }
    }
}

impl Drop for SocketBackend {
    fn drop(&mut self) {
        if self.listener.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The console's socket ports as seen from the event loop: their descriptors and what to do
/// when one is ready.
impl Console {
    /// Does the socket work that is ready: accepts connections, reads what the guest has room
    /// for, writes guest output that waited for a full socket. Returns whether anything moved.
    /// Call it when a descriptor from [`Console::fds`] is ready (or periodically).
    pub fn poll_backends(&mut self) -> bool {
        let ids: Vec<u32> = self.ports.keys().copied().collect();
        let mut progress = false;
        for id in ids {
            progress |= self.poll_socket(id);
        }
        self.finish();
        progress
    }

    pub(super) fn poll_socket(&mut self, id: u32) -> bool {
        let mut progress = false;
        let Some(port) = self.ports.get_mut(&id) else {
            return false;
        };
        let Some(stream) = port.backend.stream_mut() else {
            return false;
        };
        if stream.accept() {
            self.set_host_connected(id, true);
            progress = true;
        }
        if self.ports.get(&id).is_some_and(|p| p.socket_full) {
            self.port_mut(id).map(|p| p.socket_full = false).ok();
            progress |= self.process_tx(id);
        }
        while let Some(port) = self.ports.get_mut(&id) {
            if !port.host_connected {
                break;
            }
            let drop_mode = port.drops_to_guest();
            let budget = if drop_mode {
                READ_CHUNK
            } else {
                port.guest_room().min(READ_CHUNK)
            };
            if budget == 0 {
                break;
            }
            let Some(stream) = port.backend.stream_mut() else {
                break;
            };
            match stream.read(&mut self.scratch[..budget]) {
                ReadOutcome::Data(n) => {
                    progress = true;
                    let data = std::mem::take(&mut self.scratch);
                    self.queue_to_guest(id, &data[..n]);
                    self.scratch = data;
                }
                ReadOutcome::WouldBlock => break,
                ReadOutcome::Closed => {
                    self.set_host_connected(id, false);
                    progress = true;
                    break;
                }
            }
        }
        progress
    }

    /// What to wait for before calling [`Console::poll_backends`]: each socket port's
    /// listener or connection, readable while the guest has room for more, writable while
    /// guest output waits for the socket.
    pub fn fds(&self) -> Vec<(RawFd, Interest)> {
        let mut fds = Vec::new();
        self.socket_fds(&mut fds);
        fds
    }

    /// [`Console::fds`], appended to `fds`.
    pub(super) fn socket_fds(&self, fds: &mut Vec<(RawFd, Interest)>) {
        fds.extend(self.ports.values().filter_map(|p| {
            p.backend.stream()?.fds(Interest {
                read: p.guest_room() > 0 || p.drops_to_guest(),
                write: p.socket_full,
            })
        }));
    }
}

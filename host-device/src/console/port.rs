//! One port's host-side state: its properties, connection flags and the bytes held for each
//! direction.

use std::collections::VecDeque;

use super::backend::{PortHandler, StreamBackend};
use super::socket::SocketBackend;

/// Default `byte_limit`: guest output cached on the host while the host side is closed.
pub const DEFAULT_BYTE_LIMIT: usize = 1 << 20;
/// Default `guest_byte_limit`: host data queued toward the guest.
pub const DEFAULT_GUEST_BYTE_LIMIT: usize = 1 << 20;
pub use virtio_console_wire::MAX_NAME_LEN;

/// A port's properties, as QEMU's `-device virtserialport,name=...` plus the seeds'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// The name the guest sees (`org.libguestfs.channel.0`); may be empty.
    pub name: String,
    /// A console port (`virtconsole`): port 0, announced with CONSOLE_PORT.
    pub console: bool,
    /// Keep data that arrives while the other side is closed and deliver it when it opens
    /// (default); when off, such data is dropped, and data queued toward the guest is dropped
    /// when the guest closes.
    pub cache_buffers: bool,
    /// Most guest output held on the host side (while the host is closed, or the backend is
    /// slower than the guest). At the cap the guest's transmit queue is no longer read: the
    /// guest is back-pressured and nothing it wrote is lost. At least one descriptor chain is
    /// always held, so a cap of 0 still makes progress while the host is open.
    pub byte_limit: usize,
    /// Most host data queued toward the guest (while the guest is closed or has no receive
    /// buffers). At the cap the backend is no longer read; [`super::Console::write`] takes
    /// only what fits.
    pub guest_byte_limit: usize,
}

impl PortConfig {
    /// A serial port with the default properties.
    pub fn new(name: impl Into<String>) -> Self {
        PortConfig {
            name: name.into(),
            console: false,
            cache_buffers: true,
            byte_limit: DEFAULT_BYTE_LIMIT,
            guest_byte_limit: DEFAULT_GUEST_BYTE_LIMIT,
        }
    }

    /// A console port (port 0).
    pub fn console(name: impl Into<String>) -> Self {
        PortConfig {
            console: true,
            ..PortConfig::new(name)
        }
    }

    /// Sets `cache_buffers`.
    pub fn cache_buffers(mut self, on: bool) -> Self {
        self.cache_buffers = on;
        self
    }

    /// Sets `byte_limit`.
    pub fn byte_limit(mut self, n: usize) -> Self {
        self.byte_limit = n;
        self
    }

    /// Sets `guest_byte_limit`.
    pub fn guest_byte_limit(mut self, n: usize) -> Self {
        self.guest_byte_limit = n;
        self
    }
}

/// Who serves the host side of a port.
pub enum Backend {
    /// Nobody: the host side stays closed unless opened through the API.
    None,
    /// Rust callbacks in this process.
    Handler(Box<dyn PortHandler>),
    /// A unix socket.
    Socket(SocketBackend),
    /// Another byte stream that connects by itself.
    Stream(Box<dyn StreamBackend>),
}

impl Backend {
    /// The stream serving the port (a socket or another [`StreamBackend`]), if it is one.
    pub(crate) fn stream(&self) -> Option<&dyn StreamBackend> {
        match self {
            Backend::Socket(s) => Some(s),
            Backend::Stream(s) => Some(s.as_ref()),
            Backend::None | Backend::Handler(_) => None,
        }
    }

    /// [`Backend::stream`], mutably.
    pub(crate) fn stream_mut(&mut self) -> Option<&mut dyn StreamBackend> {
        match self {
            Backend::Socket(s) => Some(s),
            Backend::Stream(s) => Some(s.as_mut()),
            Backend::None | Backend::Handler(_) => None,
        }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::None => f.write_str("None"),
            Backend::Handler(_) => f.write_str("Handler"),
            Backend::Socket(s) => write!(f, "Socket({})", s.path().display()),
            Backend::Stream(s) => write!(f, "Stream({})", s.describe()),
        }
    }
}

/// Byte counters of one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortStats {
    /// Bytes the guest wrote that the backend took.
    pub to_host: u64,
    /// Bytes put into the guest's receive buffers.
    pub to_guest: u64,
    /// Guest bytes dropped (host closed with cache_buffers off, or the port went away).
    pub dropped_to_host: u64,
    /// Host bytes dropped (guest closed with cache_buffers off, or the port went away).
    pub dropped_to_guest: u64,
}

/// A transmit descriptor chain taken from the guest and not yet given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InFlight {
    /// Head descriptor index, returned through the used ring when done.
    pub head: u16,
    /// The chain's bytes.
    pub data: Vec<u8>,
    /// How many of them have left (to the backend or the cache).
    pub offset: usize,
}

/// What the outside can see of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Port id.
    pub id: u32,
    /// Properties.
    pub config: PortConfig,
    /// The guest set the port up (PORT_READY).
    pub ready: bool,
    /// The guest has it open.
    pub guest_connected: bool,
    /// The host side is open.
    pub host_connected: bool,
    /// The host side is throttled (by the API or a full socket).
    pub throttled: bool,
    /// Guest bytes held on the host side, the in-flight chain included.
    pub held_for_host: usize,
    /// Host bytes queued toward the guest.
    pub queued_for_guest: usize,
    /// Counters.
    pub stats: PortStats,
}

/// What offering data to a port's backend gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Bytes the backend took.
    pub taken: usize,
    /// The socket's peer went away.
    pub gone: bool,
}

/// One port.
#[derive(Debug)]
pub(crate) struct Port {
    pub config: PortConfig,
    pub backend: Backend,
    pub ready: bool,
    pub guest_connected: bool,
    pub host_connected: bool,
    /// Throttled through the API or by a handler taking less than offered.
    pub api_throttled: bool,
    /// The socket would block.
    pub socket_full: bool,
    /// Guest output waiting for the host side (cache_buffers).
    pub host_cache: VecDeque<u8>,
    pub inflight: Option<InFlight>,
    /// Host data waiting for guest buffers.
    pub to_guest: VecDeque<u8>,
    pub stats: PortStats,
}

impl Port {
    pub fn new(config: PortConfig, backend: Backend) -> Self {
        let host_connected = backend.stream().is_some_and(|s| s.connected());
        Port {
            config,
            backend,
            ready: false,
            guest_connected: false,
            host_connected,
            api_throttled: false,
            socket_full: false,
            host_cache: VecDeque::new(),
            inflight: None,
            to_guest: VecDeque::new(),
            stats: PortStats::default(),
        }
    }

    /// Whether guest output can go to the backend now.
    pub fn can_send(&self) -> bool {
        self.host_connected && !self.api_throttled && !self.socket_full
    }

    /// Whether host data for the guest is dropped now rather than queued: the guest has the
    /// port closed and `cache_buffers` is off.
    pub fn drops_to_guest(&self) -> bool {
        !self.guest_connected && !self.config.cache_buffers
    }

    /// Room left toward the guest.
    pub fn guest_room(&self) -> usize {
        self.config
            .guest_byte_limit
            .saturating_sub(self.to_guest.len())
    }

    pub fn info(&self, id: u32) -> PortInfo {
        PortInfo {
            id,
            config: self.config.clone(),
            ready: self.ready,
            guest_connected: self.guest_connected,
            host_connected: self.host_connected,
            throttled: self.api_throttled || self.socket_full,
            held_for_host: self.host_cache.len()
                + self
                    .inflight
                    .as_ref()
                    .map_or(0, |f| f.data.len() - f.offset),
            queued_for_guest: self.to_guest.len(),
            stats: self.stats,
        }
    }

    /// Offers `data` to the backend: how much it took, and whether the peer is gone.
    pub fn send(&mut self, data: &[u8]) -> Sent {
        let taken = |taken| Sent { taken, gone: false };
        if let Backend::Handler(h) = &mut self.backend {
            let n = h.have_data(data).min(data.len());
            if n < data.len() {
                self.api_throttled = true;
            }
            return taken(n);
        }
        let Some(stream) = self.backend.stream_mut() else {
            return taken(0);
        };
        match stream.write(data) {
            Some(n) => {
                if n < data.len() {
                    self.socket_full = true;
                }
                taken(n)
            }
            None => Sent {
                taken: 0,
                gone: true,
            },
        }
    }

    pub fn guest_open_changed(&mut self) {
        if let Backend::Handler(h) = &mut self.backend {
            if self.guest_connected {
                h.guest_open();
            } else {
                h.guest_close();
            }
        }
    }
}

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

/// What [`Port::drain_held`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Drained {
    /// Bytes moved, or the held chain is finished.
    pub moved: bool,
    /// Another transmit chain may be taken now.
    pub more: bool,
    /// The held chain was used up: return this head to the guest (used length 0).
    pub finished: Option<u16>,
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

    /// Moves what the port holds from the guest toward the backend: the cache first, then
    /// the chain in flight (into the cache, or dropped, while the host side is closed). No
    /// queue is touched: a chain used up comes back in [`Drained::finished`].
    pub fn drain_held(&mut self) -> Drained {
        let mut moved = false;
        if !self.host_cache.is_empty() && self.can_send() {
            let mut cache = std::mem::take(&mut self.host_cache);
            let Sent { taken: n, gone } = self.send(cache.make_contiguous());
            cache.drain(..n);
            self.host_cache = cache;
            self.stats.to_host += n as u64;
            moved |= n > 0;
            if gone {
                self.peer_gone();
            }
        }
        let mut finished = None;
        if let Some(mut f) = self.inflight.take() {
            let before = f.offset;
            if self.can_send() && self.host_cache.is_empty() {
                let Sent { taken: n, gone } = self.send(&f.data[f.offset..]);
                f.offset += n;
                self.stats.to_host += n as u64;
                if gone {
                    self.peer_gone();
                }
            } else if !self.host_connected {
                let rest = &f.data[f.offset..];
                if self.config.cache_buffers {
                    let room = self.config.byte_limit.saturating_sub(self.host_cache.len());
                    let n = room.min(rest.len());
                    self.host_cache.extend(&rest[..n]);
                    f.offset += n;
                } else {
                    self.stats.dropped_to_host += rest.len() as u64;
                    f.offset = f.data.len();
                }
            }
            moved |= f.offset != before;
            if f.offset == f.data.len() {
                finished = Some(f.head);
                moved = true;
            } else {
                self.inflight = Some(f);
                return Drained {
                    moved,
                    more: false,
                    finished,
                };
            }
        }
        let more = if self.host_connected {
            self.host_cache.is_empty() && self.can_send()
        } else {
            !self.config.cache_buffers || self.host_cache.len() < self.config.byte_limit
        };
        Drained {
            moved,
            more,
            finished,
        }
    }

    /// A write found the stream's peer gone: drop the connection; the device then closes the
    /// host side properly (PORT_OPEN 0) when it next looks.
    fn peer_gone(&mut self) {
        if let Some(s) = self.backend.stream_mut() {
            s.disconnect();
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Takes at most `.0` bytes per offer, recording what it took.
    struct Taker(usize, Arc<Mutex<Vec<u8>>>);

    impl PortHandler for Taker {
        fn have_data(&mut self, data: &[u8]) -> usize {
            let n = self.0.min(data.len());
            self.1.lock().unwrap().extend_from_slice(&data[..n]);
            n
        }
    }

    fn port(config: PortConfig, take: usize) -> (Port, Arc<Mutex<Vec<u8>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let p = Port::new(config, Backend::Handler(Box::new(Taker(take, got.clone()))));
        (p, got)
    }

    fn inflight(head: u16, data: &[u8]) -> Option<InFlight> {
        Some(InFlight {
            head,
            data: data.to_vec(),
            offset: 0,
        })
    }

    #[test]
    fn an_open_host_takes_the_chain_and_it_is_returned() {
        let (mut p, got) = port(PortConfig::new("p"), usize::MAX);
        p.host_connected = true;
        p.inflight = inflight(7, b"hello");
        let d = p.drain_held();
        assert_eq!(
            d,
            Drained {
                moved: true,
                more: true,
                finished: Some(7)
            }
        );
        assert_eq!(*got.lock().unwrap(), b"hello");
        assert_eq!(p.stats.to_host, 5);
        assert!(p.inflight.is_none());
    }

    #[test]
    fn a_slow_handler_throttles_and_the_rest_stays_in_flight() {
        let (mut p, got) = port(PortConfig::new("p"), 2);
        p.host_connected = true;
        p.inflight = inflight(7, b"hello");
        let d = p.drain_held();
        assert_eq!((d.moved, d.more, d.finished), (true, false, None));
        assert!(p.api_throttled);
        assert_eq!(*got.lock().unwrap(), b"he");
        assert_eq!(p.inflight.as_ref().unwrap().offset, 2);
        // Still throttled: nothing moves.
        assert!(!p.drain_held().moved);
    }

    #[test]
    fn a_closed_host_caches_up_to_the_limit_or_drops() {
        let (mut p, _) = port(PortConfig::new("p").byte_limit(3), usize::MAX);
        p.inflight = inflight(1, b"hello");
        let d = p.drain_held();
        assert_eq!((d.moved, d.more, d.finished), (true, false, None));
        assert_eq!(p.host_cache, b"hel");
        // The host opens: the cache goes first, then the rest of the chain.
        p.host_connected = true;
        let d = p.drain_held();
        assert_eq!(d.finished, Some(1));
        assert!(p.host_cache.is_empty());
        assert_eq!(p.stats.to_host, 5);

        let (mut p, _) = port(PortConfig::new("p").cache_buffers(false), usize::MAX);
        p.inflight = inflight(2, b"lost");
        let d = p.drain_held();
        assert_eq!((d.moved, d.more, d.finished), (true, true, Some(2)));
        assert_eq!(p.stats.dropped_to_host, 4);
    }
}

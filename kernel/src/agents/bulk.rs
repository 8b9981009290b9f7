//! Bulk-transfer agents for measuring one direction at a time (the echo couples both).
//!
//! - `org.vmchannel.sink.*` reads and discards everything, and writes one byte (`#`) back for
//!   every full MiB it has received on the current connection, so the host knows when its
//!   data has reached the guest.
//! - `org.vmchannel.source.*` reads requests of 8 bytes (a little-endian byte count) and
//!   answers each with that many bytes of a repeating pattern (`i % 251`, counted from the
//!   start of the answer), so the host can check what it got.

use alloc::boxed::Box;

use super::{AgentKind, PortAgent};
use crate::virtio_console::ports::{Multiport, PortEvent, PortHandle};

/// The sink's registration.
pub fn sink() -> AgentKind {
    AgentKind {
        name: "sink",
        pattern: "org.vmchannel.sink.",
        start: Box::new(start_sink),
    }
}

/// The source's registration.
pub fn source() -> AgentKind {
    AgentKind {
        name: "source",
        pattern: "org.vmchannel.source.",
        start: Box::new(start_source),
    }
}

const MIB: u64 = 1 << 20;
const CHUNK: usize = 64 * 1024;

fn start_sink(_: &str) -> Box<dyn PortAgent> {
    Box::new(Sink {
        buf: alloc::vec![0u8; CHUNK].into_boxed_slice(),
        received: 0,
        acked: 0,
    })
}

fn start_source(_: &str) -> Box<dyn PortAgent> {
    Box::new(Source {
        request: [0; 8],
        have: 0,
        remaining: 0,
        sent: 0,
        pattern: (0..CHUNK + 251).map(|i| (i % 251) as u8).collect(),
    })
}

struct Sink {
    buf: Box<[u8]>,
    received: u64,
    acked: u64,
}

impl PortAgent for Sink {
    fn event(&mut self, event: &PortEvent) {
        if let PortEvent::HostDisconnected(_) = event {
            self.received = 0;
            self.acked = 0;
        }
    }

    fn poll(&mut self, ports: &mut Multiport, port: PortHandle) -> bool {
        let mut progress = false;
        loop {
            while self.acked < self.received / MIB {
                match ports.write(port, b"#") {
                    Ok(1) => {
                        self.acked += 1;
                        progress = true;
                    }
                    _ => return progress,
                }
            }
            match ports.read(port, &mut self.buf) {
                Ok(0) | Err(_) => return progress,
                Ok(n) => {
                    self.received += n as u64;
                    progress = true;
                }
            }
        }
    }
}

struct Source {
    request: [u8; 8],
    have: usize,
    remaining: u64,
    sent: u64,
    pattern: alloc::vec::Vec<u8>,
}

impl PortAgent for Source {
    fn event(&mut self, event: &PortEvent) {
        if let PortEvent::HostDisconnected(_) = event {
            self.have = 0;
            self.remaining = 0;
        }
    }

    fn poll(&mut self, ports: &mut Multiport, port: PortHandle) -> bool {
        let mut progress = false;
        loop {
            if self.remaining > 0 {
                let at = (self.sent % 251) as usize;
                let n = (self.remaining.min(CHUNK as u64)) as usize;
                match ports.write(port, &self.pattern[at..at + n]) {
                    Ok(n) if n > 0 => {
                        self.remaining -= n as u64;
                        self.sent += n as u64;
                        progress = true;
                        continue;
                    }
                    _ => return progress,
                }
            }
            match ports.read(port, &mut self.request[self.have..]) {
                Ok(0) | Err(_) => return progress,
                Ok(n) => {
                    progress = true;
                    self.have += n;
                    if self.have == 8 {
                        self.have = 0;
                        self.remaining = u64::from_le_bytes(self.request);
                        self.sent = 0;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio_console::control::{HostMessage, encode_host};

    fn open() -> (Multiport, PortHandle) {
        let mut mp = Multiport::new(2);
        mp.device_ready(true);
        mp.handle_control(&encode_host(&HostMessage::PortAdd(1)))
            .unwrap();
        mp.port_set_up(1, true);
        let h = mp.open(1).unwrap();
        mp.handle_control(&encode_host(&HostMessage::PortOpen(1, true)))
            .unwrap();
        (mp, h)
    }

    #[test]
    fn sink_acks_each_mib() {
        let (mut mp, h) = open();
        let mut sink = start_sink("s");
        let chunk = alloc::vec![1u8; 200_000];
        for _ in 0..11 {
            mp.deliver(1, &chunk);
            sink.poll(&mut mp, h);
        }
        assert_eq!(mp.take_tx(1, 100), b"##");
    }

    #[test]
    fn source_sends_what_was_asked_in_pattern() {
        let (mut mp, h) = open();
        let mut source = start_source("s");
        mp.deliver(1, &300_000u64.to_le_bytes()[..3]);
        source.poll(&mut mp, h);
        mp.deliver(1, &300_000u64.to_le_bytes()[3..]);
        let mut got = alloc::vec::Vec::new();
        while got.len() < 300_000 {
            source.poll(&mut mp, h);
            got.extend(mp.take_tx(1, usize::MAX));
        }
        assert_eq!(got.len(), 300_000);
        assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
        assert!(!source.poll(&mut mp, h));
    }
}

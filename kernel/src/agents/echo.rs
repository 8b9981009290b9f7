//! The echo agent: every port named `org.vmchannel.echo.*` sends back every byte it receives,
//! in order, while the host is connected.
//!
//! Backpressure is end to end: while the echo cannot be written (the host is not reading) the
//! agent stops reading, so the port's receive buffer fills and the device stops sending on
//! that port only. Bytes read but not yet echoed when the host disconnects are dropped: the
//! echo belongs to the connection that sent them. Bytes that arrive before the host's
//! connection is announced wait for it.

use alloc::boxed::Box;

use super::{AgentKind, PortAgent};
use crate::virtio_console::ports::{Multiport, PortEvent, PortHandle};

/// The echo agent's registration.
pub fn kind() -> AgentKind {
    AgentKind {
        name: "echo",
        pattern: "org.vmchannel.echo.",
        start: Box::new(start),
    }
}

const BUF: usize = 64 * 1024;

/// Starts an echo agent.
pub fn start(_port_name: &str) -> Box<dyn PortAgent> {
    Box::new(Echo {
        buf: alloc::vec![0u8; BUF].into_boxed_slice(),
        start: 0,
        end: 0,
    })
}

/// Echo state: bytes read and not yet written back are `buf[start..end]`.
struct Echo {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl PortAgent for Echo {
    fn event(&mut self, event: &PortEvent) {
        if let PortEvent::HostDisconnected(_) = event {
            self.start = 0;
            self.end = 0;
        }
    }

    fn poll(&mut self, ports: &mut Multiport, port: PortHandle) -> bool {
        let mut progress = false;
        loop {
            if self.start < self.end {
                match ports.write(port, &self.buf[self.start..self.end]) {
                    Ok(n) => {
                        self.start += n;
                        progress |= n > 0;
                        continue;
                    }
                    // Full, or the host is not connected: keep the data and stop reading.
                    // Data can arrive before the device's PORT_OPEN does (QEMU reads the
                    // socket as soon as it accepts it), so "not connected yet" must not
                    // drop anything; a disconnect event does.
                    Err(_) => return progress,
                }
            }
            self.start = 0;
            self.end = 0;
            match ports.read(port, &mut self.buf) {
                Ok(0) | Err(_) => return progress,
                Ok(n) => {
                    self.end = n;
                    progress = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio_console::control::{HostMessage, encode_host};

    fn setup() -> (Multiport, PortHandle, Box<dyn PortAgent>) {
        let mut mp = Multiport::new(2);
        mp.device_ready(true);
        mp.handle_control(&encode_host(&HostMessage::PortAdd(1)))
            .unwrap();
        mp.port_set_up(1, true);
        let h = mp.open(1).unwrap();
        mp.handle_control(&encode_host(&HostMessage::PortOpen(1, true)))
            .unwrap();
        (mp, h, start("org.vmchannel.echo.t"))
    }

    #[test]
    fn echoes_in_order_with_backpressure() {
        let (mut mp, h, mut echo) = setup();
        let data: alloc::vec::Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut sent = 0;
        let mut back = alloc::vec::Vec::new();
        while back.len() < data.len() {
            let room = mp.rx_space(1);
            let n = room.min(data.len() - sent).min(5000);
            mp.deliver(1, &data[sent..sent + n]);
            sent += n;
            echo.poll(&mut mp, h);
            // The "device" drains slowly: backpressure must hold data, not lose it.
            back.extend(mp.take_tx(1, 3000));
        }
        assert_eq!(back, data);
    }

    #[test]
    fn data_before_the_connect_notice_waits_for_it_and_a_disconnect_drops_the_rest() {
        let (mut mp, h, mut echo) = setup();
        mp.handle_control(&encode_host(&HostMessage::PortOpen(1, false)))
            .unwrap();
        echo.event(&PortEvent::HostDisconnected(1));
        mp.deliver(1, b"early");
        echo.poll(&mut mp, h);
        assert!(mp.take_tx(1, 100).is_empty());
        mp.handle_control(&encode_host(&HostMessage::PortOpen(1, true)))
            .unwrap();
        echo.poll(&mut mp, h);
        assert_eq!(mp.take_tx(1, 100), b"early");
        // A disconnect drops what was read for the old connection.
        mp.handle_control(&encode_host(&HostMessage::PortOpen(1, false)))
            .unwrap();
        mp.deliver(1, b"old");
        echo.poll(&mut mp, h);
        echo.event(&PortEvent::HostDisconnected(1));
        mp.handle_control(&encode_host(&HostMessage::PortOpen(1, true)))
            .unwrap();
        mp.deliver(1, b"new");
        echo.poll(&mut mp, h);
        assert_eq!(mp.take_tx(1, 100), b"new");
    }

    #[test]
    fn a_stalled_host_stops_reading_not_losing() {
        let (mut mp, h, mut echo) = setup();
        let chunk = [5u8; 4096];
        // Nobody takes the echo: after the transmit buffer and the agent's buffer fill, the
        // agent stops reading and the receive side fills up.
        while mp.rx_space(1) > 0 {
            let n = mp.rx_space(1).min(chunk.len());
            mp.deliver(1, &chunk[..n]);
            echo.poll(&mut mp, h);
        }
        assert!(!echo.poll(&mut mp, h));
        let total = mp.take_tx(1, usize::MAX).len();
        assert_eq!(total, crate::virtio_console::ports::DEFAULT_TX_CAPACITY);
        // Once drained it flows again.
        assert!(echo.poll(&mut mp, h));
        assert!(!mp.take_tx(1, usize::MAX).is_empty());
    }
}

//! The console's snapshot: connection flags, held bytes, in-flight chains, names and pending
//! control messages (section "VCON", version 1). Queue positions travel beside it in
//! [`crate::virtio::DeviceState`].
//!
//! Restoring needs a device configured like the saved one (the same ports by id and name, as
//! QEMU's migration needs the same command line); the destination's backends stay attached.
//! A socket port takes its connection state from its socket, and the guest is told with
//! PORT_OPEN if that differs from the saved state.

use super::port::{InFlight, PortStats};
use super::{Backend, Console, control};
use crate::snapshot::{Decoder, Encoder, SnapshotError};

const MAGIC: &[u8; 4] = b"VCON";
const VERSION: u32 = 1;

impl Console {
    pub(super) fn save_blob(&self) -> Vec<u8> {
        let mut e = Encoder::new(MAGIC, VERSION);
        e.u32(self.config.max_nr_ports);
        e.u16(self.config.queue_size);
        e.u16(self.config.cols);
        e.u16(self.config.rows);
        e.bool(self.driver_ready);
        e.u64(self.ctrl_out.len() as u64);
        for m in &self.ctrl_out {
            e.bytes(m);
        }
        e.u64(self.stats.bad_control);
        e.u64(self.stats.bad_chains);
        e.u64(self.stats.control_sent);
        e.u64(self.ports.len() as u64);
        for (id, p) in &self.ports {
            e.u32(*id);
            e.str(&p.config.name);
            e.bool(p.config.console);
            e.bool(p.ready);
            e.bool(p.guest_connected);
            e.bool(p.host_connected);
            e.bool(p.api_throttled);
            e.bytes(&p.host_cache.iter().copied().collect::<Vec<_>>());
            match &p.inflight {
                Some(f) => {
                    e.bool(true);
                    e.u16(f.head);
                    e.bytes(&f.data);
                    e.u64(f.offset as u64);
                }
                None => e.bool(false),
            }
            e.bytes(&p.to_guest.iter().copied().collect::<Vec<_>>());
            e.u64(p.stats.to_host);
            e.u64(p.stats.to_guest);
            e.u64(p.stats.dropped_to_host);
            e.u64(p.stats.dropped_to_guest);
        }
        e.finish()
    }

    pub(super) fn restore_blob(&mut self, blob: &[u8]) -> Result<(), SnapshotError> {
        let (mut d, _version) = Decoder::new(blob, MAGIC, "virtio-console", VERSION)?;
        let max = d.u32()?;
        let queue_size = d.u16()?;
        let cols = d.u16()?;
        let rows = d.u16()?;
        if max != self.config.max_nr_ports || queue_size != self.config.queue_size {
            return Err(SnapshotError::BadField(
                "max_nr_ports or queue size differ from this device's",
            ));
        }
        let driver_ready = d.bool("driver_ready")?;
        let n = d.count(8)?;
        let mut ctrl = std::collections::VecDeque::with_capacity(n);
        for _ in 0..n {
            ctrl.push_back(d.bytes()?.to_vec());
        }
        let bad_control = d.u64()?;
        let bad_chains = d.u64()?;
        let control_sent = d.u64()?;
        let n = d.count(4)?;
        if n != self.ports.len() {
            return Err(SnapshotError::BadField(
                "the saved device has a different number of ports",
            ));
        }
        // Decode everything before changing anything, so a bad snapshot leaves the device as
        // it was.
        let mut saved = Vec::with_capacity(n);
        for _ in 0..n {
            let id = d.u32()?;
            let name = d.str("port name")?.to_string();
            let console = d.bool("console")?;
            let port = self
                .ports
                .get(&id)
                .filter(|p| p.config.name == name && p.config.console == console)
                .ok_or(SnapshotError::BadField(
                    "a saved port is not configured on this device",
                ))?;
            let _ = port;
            let ready = d.bool("ready")?;
            let guest_connected = d.bool("guest_connected")?;
            let host_connected = d.bool("host_connected")?;
            let api_throttled = d.bool("throttled")?;
            let host_cache = d.bytes()?.to_vec();
            let inflight = if d.bool("inflight")? {
                let head = d.u16()?;
                let data = d.bytes()?.to_vec();
                let offset = usize::try_from(d.u64()?)
                    .ok()
                    .filter(|&o| o <= data.len())
                    .ok_or(SnapshotError::BadField("in-flight offset"))?;
                Some(InFlight { head, data, offset })
            } else {
                None
            };
            let to_guest = d.bytes()?.to_vec();
            let stats = PortStats {
                to_host: d.u64()?,
                to_guest: d.u64()?,
                dropped_to_host: d.u64()?,
                dropped_to_guest: d.u64()?,
            };
            saved.push((
                id,
                ready,
                guest_connected,
                host_connected,
                api_throttled,
                host_cache,
                inflight,
                to_guest,
                stats,
            ));
        }
        d.end()?;

        self.config.cols = cols;
        self.config.rows = rows;
        self.driver_ready = driver_ready;
        self.ctrl_out = ctrl;
        self.stats.bad_control = bad_control;
        self.stats.bad_chains = bad_chains;
        self.stats.control_sent = control_sent;
        for (id, ready, gc, hc, thr, cache, inflight, to_guest, stats) in saved {
            let Some(p) = self.ports.get_mut(&id) else {
                continue;
            };
            p.ready = ready;
            p.guest_connected = gc;
            p.api_throttled = thr;
            p.socket_full = false;
            p.host_cache = cache.into();
            p.inflight = inflight;
            p.to_guest = to_guest.into();
            p.stats = stats;
            let actual = match &p.backend {
                Backend::Socket(s) => s.connected(),
                _ => hc,
            };
            p.host_connected = actual;
            if actual != hc && ready && driver_ready {
                self.ctrl_out.push_back(
                    control::Header {
                        id,
                        event: control::PORT_OPEN,
                        value: actual as u16,
                    }
                    .encode_with(&[]),
                );
            }
        }
        Ok(())
    }
}

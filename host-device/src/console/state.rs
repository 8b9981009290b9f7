//! The console's snapshot: connection flags, held bytes, in-flight chains, names and pending
//! control messages (section "VCON"). Queue positions travel beside it in
//! [`crate::virtio::DeviceState`].
//!
//! The section is the magic and a little-endian version number ([`crate::snapshot`]'s section
//! header), then the body:
//! - version 2 (written now): [`ConsoleSnapshot`], encoded with postcard;
//! - version 1 (read only): the same fields in the hand-written format of the first release,
//!   decoded by [`decode_v1`] into the same struct.
//!
//! Restoring needs a device configured like the saved one (the same ports by id and name, as
//! QEMU's migration needs the same command line); the destination's backends stay attached.
//! A socket port takes its connection state from its socket, and the guest is told with
//! PORT_OPEN if that differs from the saved state.

use serde::{Deserialize, Serialize};

use super::port::{InFlight, PortStats};
use super::{Console, control};
use crate::snapshot::{Blob, Decoder, SnapshotError, section_header};

const MAGIC: &[u8; 4] = b"VCON";
/// The version [`Console::save_blob`] writes.
const VERSION: u32 = 2;

/// The whole device, as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ConsoleSnapshot {
    /// Must match the destination's.
    max_nr_ports: u32,
    /// Must match the destination's.
    queue_size: u16,
    cols: u16,
    rows: u16,
    driver_ready: bool,
    /// Control messages not yet given to the guest, in order.
    ctrl_out: Vec<Blob>,
    bad_control: u64,
    bad_chains: u64,
    control_sent: u64,
    /// Every port, by id.
    ports: Vec<PortSnapshot>,
}

/// One port, as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PortSnapshot {
    id: u32,
    /// With `console`, identifies the port on the destination.
    name: String,
    console: bool,
    ready: bool,
    guest_connected: bool,
    host_connected: bool,
    api_throttled: bool,
    /// Guest output cached while the host side was closed.
    host_cache: Blob,
    /// The transmit chain taken from the guest and not yet returned.
    inflight: Option<InFlightSnapshot>,
    /// Host data queued toward the guest.
    to_guest: Blob,
    stats: PortStats,
}

/// A transmit chain in flight, as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InFlightSnapshot {
    head: u16,
    data: Blob,
    /// How many bytes of `data` have left; at most its length.
    offset: u64,
}

impl Console {
    pub(super) fn save_blob(&self) -> Vec<u8> {
        let snap = ConsoleSnapshot {
            max_nr_ports: self.config.max_nr_ports,
            queue_size: self.config.queue_size,
            cols: self.config.cols,
            rows: self.config.rows,
            driver_ready: self.control.driver_ready,
            ctrl_out: self.control.out.iter().cloned().map(Blob).collect(),
            bad_control: self.stats.bad_control,
            bad_chains: self.stats.bad_chains,
            control_sent: self.stats.control_sent,
            ports: self
                .ports
                .iter()
                .map(|(id, p)| PortSnapshot {
                    id: *id,
                    name: p.config.name.clone(),
                    console: p.config.console,
                    ready: p.ready,
                    guest_connected: p.guest_connected,
                    host_connected: p.host_connected,
                    api_throttled: p.api_throttled,
                    host_cache: Blob(p.host_cache.iter().copied().collect()),
                    inflight: p.inflight.as_ref().map(|f| InFlightSnapshot {
                        head: f.head,
                        data: Blob(f.data.clone()),
                        offset: f.offset as u64,
                    }),
                    to_guest: Blob(p.to_guest.iter().copied().collect()),
                    stats: p.stats,
                })
                .collect(),
        };
        let out = section_header(MAGIC, VERSION);
        postcard::to_extend(&snap, out).expect("a snapshot always encodes")
    }

    pub(super) fn restore_blob(&mut self, blob: &[u8]) -> Result<(), SnapshotError> {
        let (d, version) = Decoder::new(blob, MAGIC, "virtio-console", VERSION)?;
        let snap = match version {
            1 => decode_v1(d)?,
            _ => d.postcard()?,
        };
        self.apply(snap)
    }

    /// Checks that `snap` fits this device, then restores it; a snapshot that does not fit
    /// leaves the device as it was.
    fn apply(&mut self, snap: ConsoleSnapshot) -> Result<(), SnapshotError> {
        if snap.max_nr_ports != self.config.max_nr_ports
            || snap.queue_size != self.config.queue_size
        {
            return Err(SnapshotError::BadField(
                "max_nr_ports or queue size differ from this device's",
            ));
        }
        if snap.ports.len() != self.ports.len() {
            return Err(SnapshotError::BadField(
                "the saved device has a different number of ports",
            ));
        }
        for saved in &snap.ports {
            self.ports
                .get(&saved.id)
                .filter(|p| p.config.name == saved.name && p.config.console == saved.console)
                .ok_or(SnapshotError::BadField(
                    "a saved port is not configured on this device",
                ))?;
            if let Some(f) = &saved.inflight
                && usize::try_from(f.offset).map_or(true, |o| o > f.data.0.len())
            {
                return Err(SnapshotError::BadField("in-flight offset"));
            }
        }

        self.config.cols = snap.cols;
        self.config.rows = snap.rows;
        self.control.driver_ready = snap.driver_ready;
        self.control.out = snap.ctrl_out.into_iter().map(|b| b.0).collect();
        self.stats.bad_control = snap.bad_control;
        self.stats.bad_chains = snap.bad_chains;
        self.stats.control_sent = snap.control_sent;
        for saved in snap.ports {
            let Some(p) = self.ports.get_mut(&saved.id) else {
                continue;
            };
            p.ready = saved.ready;
            p.guest_connected = saved.guest_connected;
            p.api_throttled = saved.api_throttled;
            p.socket_full = false;
            p.host_cache = saved.host_cache.0.into();
            p.inflight = saved.inflight.map(|f| InFlight {
                head: f.head,
                data: f.data.0,
                // Checked above to be at most the data's length.
                offset: f.offset as usize,
            });
            p.to_guest = saved.to_guest.0.into();
            p.stats = saved.stats;
            let actual = p
                .backend
                .stream()
                .map_or(saved.host_connected, |s| s.connected());
            p.host_connected = actual;
            if actual != saved.host_connected && saved.ready && snap.driver_ready {
                self.control
                    .send(saved.id, control::PORT_OPEN, u16::from(actual), &[]);
            }
        }
        Ok(())
    }
}

/// Reads a version 1 body: little-endian integers, one-byte booleans, byte strings after a
/// u64 length, in the order of [`ConsoleSnapshot`]'s fields.
fn decode_v1(mut d: Decoder<'_>) -> Result<ConsoleSnapshot, SnapshotError> {
    let max_nr_ports = d.u32()?;
    let queue_size = d.u16()?;
    let cols = d.u16()?;
    let rows = d.u16()?;
    let driver_ready = d.bool("driver_ready")?;
    let n = d.count(8)?;
    let mut ctrl_out = Vec::with_capacity(n);
    for _ in 0..n {
        ctrl_out.push(Blob(d.bytes()?.to_vec()));
    }
    let bad_control = d.u64()?;
    let bad_chains = d.u64()?;
    let control_sent = d.u64()?;
    let n = d.count(4)?;
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let id = d.u32()?;
        let name = d.str("port name")?.to_string();
        let console = d.bool("console")?;
        let ready = d.bool("ready")?;
        let guest_connected = d.bool("guest_connected")?;
        let host_connected = d.bool("host_connected")?;
        let api_throttled = d.bool("throttled")?;
        let host_cache = Blob(d.bytes()?.to_vec());
        let inflight = if d.bool("inflight")? {
            Some(InFlightSnapshot {
                head: d.u16()?,
                data: Blob(d.bytes()?.to_vec()),
                offset: d.u64()?,
            })
        } else {
            None
        };
        let to_guest = Blob(d.bytes()?.to_vec());
        let stats = PortStats {
            to_host: d.u64()?,
            to_guest: d.u64()?,
            dropped_to_host: d.u64()?,
            dropped_to_guest: d.u64()?,
        };
        ports.push(PortSnapshot {
            id,
            name,
            console,
            ready,
            guest_connected,
            host_connected,
            api_throttled,
            host_cache,
            inflight,
            to_guest,
            stats,
        });
    }
    d.end()?;
    Ok(ConsoleSnapshot {
        max_nr_ports,
        queue_size,
        cols,
        rows,
        driver_ready,
        ctrl_out,
        bad_control,
        bad_chains,
        control_sent,
        ports,
    })
}

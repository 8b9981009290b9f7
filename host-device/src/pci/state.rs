//! The transport's snapshot: configuration space, MSI-X, the common configuration, and the
//! device's own [`crate::virtio::DeviceState`].
//!
//! Section `VPCI` ([`crate::snapshot`]'s section header), then the body:
//! - version 2 (written now): [`PciSnapshot`], encoded with postcard;
//! - version 1 (read only): the same fields written one by one, decoded by [`decode_v1`]:
//!
//! ```text
//! u32 device type
//! bytes configuration space (256)
//! u16 MSI-X vectors n; n × (u64 address, u32 data, bool masked, bool pending)
//! u8 ISR, u8 config_generation, u16 config_msix_vector
//! u32 device_feature_select, u32 driver_feature_select, 2 × u32 driver features
//! u8 device_status, u16 queue_select, bool activated
//! u64 queues q; q × (u16 size, bool enable, u64 desc, u64 driver, u64 device, u16 vector)
//! u64 device queues; each a QueueState (u16 max_size, next_avail, next_used, bool event_idx,
//!     u16 size, bool ready, u64 desc_table, avail_ring, used_ring)
//! bytes device blob
//! ```
//!
//! Restoring treats the data as hostile whatever its version: every value is checked against
//! what this device and build allow, read-only configuration bytes are rebuilt rather than
//! restored, and nothing is allocated for a count the remaining data cannot hold.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use virtio_queue::{Queue, QueueState};
use vm_memory::GuestMemoryMmap;

use super::common::QueueRegs;
use super::config::{COMMAND_INTX_DISABLE, CONFIG_SIZE, MSIX_ENABLE, MSIX_FUNCTION_MASK};
use super::interrupt::{ISR_CONFIG, ISR_QUEUE, Interrupts, IrqState};
use super::msix::{MAX_VECTORS, MsixEntry, NO_VECTOR};
use super::{PciError, VirtioPciDevice};
use crate::snapshot::{Blob, Decoder, SnapshotError, section_header};
use crate::virtio::{InterruptSink, VirtioDevice, status};

const MAGIC: &[u8; 4] = b"VPCI";
/// The version [`encode`] writes.
const VERSION: u32 = 2;
const SECTION: &str = "virtio-pci";

/// Encoded size of one transport queue entry in version 1.
const QUEUE_REGS_BYTES: usize = 2 + 1 + 8 * 3 + 2;
/// Encoded size of one [`QueueState`] in version 1.
const QUEUE_STATE_BYTES: usize = 2 * 3 + 1 + 2 + 1 + 8 * 3;

/// The transport, as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PciSnapshot {
    /// Must be the destination device's type.
    device_type: u32,
    /// The whole configuration space; only its writable bytes are restored.
    config: Blob,
    /// The MSI-X table, one entry per vector.
    msix: Vec<MsixSnapshot>,
    isr: u8,
    config_generation: u8,
    config_vector: u16,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: [u32; 2],
    status: u8,
    queue_select: u16,
    /// The device accepted its queues.
    activated: bool,
    /// The queue registers the driver programmed, one per queue.
    queues: Vec<QueueRegsSnapshot>,
    /// The device's queues with their positions (when active).
    device_queues: Vec<QueueStateSnapshot>,
    /// The device's own state.
    device_blob: Blob,
}

/// One MSI-X vector, as saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct MsixSnapshot {
    addr: u64,
    data: u32,
    masked: bool,
    pending: bool,
}

/// One queue's registers, as saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct QueueRegsSnapshot {
    size: u16,
    enabled: bool,
    desc: u64,
    driver: u64,
    device: u64,
    vector: u16,
}

/// A [`QueueState`], as saved: its fields in order (serde's remote derive through
/// [`QueueStateDef`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct QueueStateSnapshot(#[serde(with = "QueueStateDef")] QueueState);

/// [`QueueState`]'s fields, for serde.
#[derive(Serialize, Deserialize)]
#[serde(remote = "QueueState")]
struct QueueStateDef {
    max_size: u16,
    next_avail: u16,
    next_used: u16,
    event_idx_enabled: bool,
    size: u16,
    ready: bool,
    desc_table: u64,
    avail_ring: u64,
    used_ring: u64,
}

/// Encodes `dev` (version 2).
pub(super) fn encode<D: VirtioDevice>(dev: &VirtioPciDevice<D>) -> Vec<u8> {
    let irq = dev.irq.state();
    let c = &dev.common;
    let ds = dev.device.save();
    let snap = PciSnapshot {
        device_type: dev.device.device_type(),
        config: Blob(dev.config.bytes().to_vec()),
        msix: (0..irq.msix.len())
            .map(|v| {
                let entry = irq.msix.entry(v).unwrap_or_default();
                MsixSnapshot {
                    addr: entry.addr,
                    data: entry.data,
                    masked: entry.masked,
                    pending: irq.msix.pending(v),
                }
            })
            .collect(),
        isr: irq.isr,
        config_generation: irq.config_generation,
        config_vector: irq.config_vector,
        device_feature_select: c.device_feature_select,
        driver_feature_select: c.driver_feature_select,
        driver_features: c.driver_features,
        status: c.status,
        queue_select: c.queue_select,
        activated: dev.activated,
        queues: c
            .queues
            .iter()
            .zip(&irq.queue_vectors)
            .map(|(q, &vector)| QueueRegsSnapshot {
                size: q.size,
                enabled: q.enabled,
                desc: q.desc,
                driver: q.driver,
                device: q.device,
                vector,
            })
            .collect(),
        device_queues: ds.queues.into_iter().map(QueueStateSnapshot).collect(),
        device_blob: Blob(ds.blob),
    };
    postcard::to_extend(&snap, section_header(MAGIC, VERSION)).expect("a snapshot always encodes")
}

/// A vector register value from a snapshot: NO_VECTOR or an entry of the table.
fn vector(v: u16, vectors: u16) -> Result<u16, SnapshotError> {
    if v == NO_VECTOR || v < vectors {
        Ok(v)
    } else {
        Err(SnapshotError::BadField("msix vector"))
    }
}

/// Reads a version 1 body (see the module documentation).
fn decode_v1(mut d: Decoder<'_>) -> Result<PciSnapshot, SnapshotError> {
    let device_type = d.u32()?;
    let config = Blob(d.bytes()?.to_vec());
    let vectors = d.u16()?;
    if vectors > MAX_VECTORS {
        return Err(SnapshotError::BadField("msix vectors"));
    }
    let mut msix = Vec::with_capacity(usize::from(vectors));
    for _ in 0..vectors {
        msix.push(MsixSnapshot {
            addr: d.u64()?,
            data: d.u32()?,
            masked: d.bool("msix mask")?,
            pending: d.bool("msix pending")?,
        });
    }
    let isr = d.u8()?;
    let config_generation = d.u8()?;
    let config_vector = d.u16()?;
    let device_feature_select = d.u32()?;
    let driver_feature_select = d.u32()?;
    let driver_features = [d.u32()?, d.u32()?];
    let status = d.u8()?;
    let queue_select = d.u16()?;
    let activated = d.bool("activated")?;
    let n = d.count(QUEUE_REGS_BYTES)?;
    let mut queues = Vec::with_capacity(n);
    for _ in 0..n {
        queues.push(QueueRegsSnapshot {
            size: d.u16()?,
            enabled: d.bool("queue enable")?,
            desc: d.u64()?,
            driver: d.u64()?,
            device: d.u64()?,
            vector: d.u16()?,
        });
    }
    let n = d.count(QUEUE_STATE_BYTES)?;
    let mut device_queues = Vec::with_capacity(n);
    for _ in 0..n {
        device_queues.push(QueueStateSnapshot(QueueState {
            max_size: d.u16()?,
            next_avail: d.u16()?,
            next_used: d.u16()?,
            event_idx_enabled: d.bool("queue event_idx")?,
            size: d.u16()?,
            ready: d.bool("queue ready")?,
            desc_table: d.u64()?,
            avail_ring: d.u64()?,
            used_ring: d.u64()?,
        }));
    }
    let device_blob = Blob(d.bytes()?.to_vec());
    d.end()?;
    Ok(PciSnapshot {
        device_type,
        config,
        msix,
        isr,
        config_generation,
        config_vector,
        device_feature_select,
        driver_feature_select,
        driver_features,
        status,
        queue_select,
        activated,
        queues,
        device_queues,
        device_blob,
    })
}

/// Rebuilds a transport around `device` from `data`.
pub(super) fn decode<D: VirtioDevice>(
    device: D,
    mem: GuestMemoryMmap,
    sink: Arc<dyn InterruptSink>,
    data: &[u8],
) -> Result<VirtioPciDevice<D>, PciError> {
    let (d, version) = Decoder::new(data, MAGIC, SECTION, VERSION)?;
    let snap = match version {
        1 => decode_v1(d)?,
        _ => d.postcard()?,
    };
    let expected = device.device_type();
    if snap.device_type != expected {
        return Err(PciError::DeviceType {
            found: snap.device_type,
            expected,
        });
    }
    let config: &[u8; CONFIG_SIZE] = snap
        .config
        .0
        .as_slice()
        .try_into()
        .map_err(|_| SnapshotError::BadField("config space"))?;
    let vectors = u16::try_from(snap.msix.len())
        .ok()
        .filter(|&v| v <= MAX_VECTORS)
        .ok_or(SnapshotError::BadField("msix vectors"))?;

    let mut dev = VirtioPciDevice::new(device, mem, sink.clone(), vectors);
    dev.config.restore_writable(config);
    let mut irq = IrqState::new(vectors, dev.common.num_queues());
    for (v, m) in (0u16..).zip(&snap.msix) {
        let entry = MsixEntry {
            addr: m.addr,
            data: m.data,
            masked: m.masked,
        };
        irq.msix.set_entry(v, entry);
        irq.msix.set_pending(v, m.pending);
    }
    irq.isr = snap.isr;
    if irq.isr & !(ISR_QUEUE | ISR_CONFIG) != 0 {
        return Err(SnapshotError::BadField("isr").into());
    }
    irq.config_generation = snap.config_generation;
    irq.config_vector = vector(snap.config_vector, vectors)?;

    let c = &mut dev.common;
    c.device_feature_select = snap.device_feature_select;
    c.driver_feature_select = snap.driver_feature_select;
    c.driver_features = snap.driver_features;
    c.status = snap.status;
    c.queue_select = snap.queue_select;
    let activated = snap.activated;
    if activated && c.status & status::DRIVER_OK == 0 {
        return Err(SnapshotError::BadField("activated").into());
    }
    if snap.queues.len() != c.queues.len() {
        return Err(SnapshotError::BadField("queue count").into());
    }
    for ((q, v), saved) in c
        .queues
        .iter_mut()
        .zip(irq.queue_vectors.iter_mut())
        .zip(&snap.queues)
    {
        let size = saved.size;
        if size == 0 || !size.is_power_of_two() || size > q.max_size {
            return Err(SnapshotError::BadField("queue size").into());
        }
        *q = QueueRegs {
            max_size: q.max_size,
            size,
            enabled: saved.enabled,
            desc: saved.desc,
            driver: saved.driver,
            device: saved.device,
        };
        *v = vector(saved.vector, vectors)?;
    }
    let saved_queues = snap.device_queues;
    let blob = &snap.device_blob.0;

    let control = dev.config.msix_control();
    irq.msix_enabled = control & MSIX_ENABLE != 0;
    irq.function_masked = control & MSIX_FUNCTION_MASK != 0;
    irq.intx_disabled = dev.config.command() & COMMAND_INTX_DISABLE != 0;
    dev.irq = Arc::new(Interrupts::new(sink, irq));

    if activated {
        if saved_queues.len() != dev.common.queues.len() {
            return Err(SnapshotError::BadField("device queues").into());
        }
        let queues = (0u16..)
            .zip(saved_queues)
            .map(|(index, q)| {
                Queue::try_from(q.0).map_err(|source| PciError::Queue { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let acked = dev.common.acked_features(dev.device.device_features());
        let ctx = dev.activate_context(queues, acked);
        dev.device.restore(blob, Some(ctx))?;
    } else {
        dev.device.restore(blob, None)?;
    }
    dev.activated = activated;
    dev.irq.resync_intx();
    Ok(dev)
}

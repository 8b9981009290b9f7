//! The transport's snapshot: configuration space, MSI-X, the common configuration, and the
//! device's own [`crate::virtio::DeviceState`].
//!
//! Section `VPCI`, version 1, in the [`crate::snapshot`] format:
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
//! Decoding treats the data as hostile: every value is checked against what this device and
//! build allow, read-only configuration bytes are rebuilt rather than restored, and counts are
//! checked against the remaining data before anything is allocated.

use std::sync::Arc;

use virtio_queue::{Queue, QueueState};
use vm_memory::GuestMemoryMmap;

use super::common::QueueRegs;
use super::config::{COMMAND_INTX_DISABLE, CONFIG_SIZE, MSIX_ENABLE, MSIX_FUNCTION_MASK};
use super::interrupt::{ISR_CONFIG, ISR_QUEUE, Interrupts, IrqState};
use super::msix::{MAX_VECTORS, MsixEntry, NO_VECTOR};
use super::{PciError, VirtioPciDevice};
use crate::snapshot::{Decoder, Encoder, SnapshotError};
use crate::virtio::{InterruptSink, VirtioDevice, status};

const MAGIC: &[u8; 4] = b"VPCI";
const VERSION: u32 = 1;
const SECTION: &str = "virtio-pci";

/// Encoded size of one transport queue entry.
const QUEUE_REGS_BYTES: usize = 2 + 1 + 8 * 3 + 2;
/// Encoded size of one [`QueueState`].
const QUEUE_STATE_BYTES: usize = 2 * 3 + 1 + 2 + 1 + 8 * 3;

/// Encodes `dev` (see the module documentation for the layout).
pub(super) fn encode<D: VirtioDevice>(dev: &VirtioPciDevice<D>) -> Vec<u8> {
    let mut e = Encoder::new(MAGIC, VERSION);
    e.u32(dev.device.device_type());
    e.bytes(dev.config.bytes());

    let irq = dev.irq.state();
    e.u16(irq.msix.len());
    for v in 0..irq.msix.len() {
        let entry = irq.msix.entry(v).unwrap_or_default();
        e.u64(entry.addr);
        e.u32(entry.data);
        e.bool(entry.masked);
        e.bool(irq.msix.pending(v));
    }
    e.u8(irq.isr);
    e.u8(irq.config_generation);
    e.u16(irq.config_vector);

    let c = &dev.common;
    e.u32(c.device_feature_select);
    e.u32(c.driver_feature_select);
    e.u32(c.driver_features[0]);
    e.u32(c.driver_features[1]);
    e.u8(c.status);
    e.u16(c.queue_select);
    e.bool(dev.activated);
    e.u64(c.queues.len() as u64);
    for (q, &vector) in c.queues.iter().zip(&irq.queue_vectors) {
        e.u16(q.size);
        e.bool(q.enabled);
        e.u64(q.desc);
        e.u64(q.driver);
        e.u64(q.device);
        e.u16(vector);
    }

    let ds = dev.device.save();
    e.u64(ds.queues.len() as u64);
    for q in &ds.queues {
        e.u16(q.max_size);
        e.u16(q.next_avail);
        e.u16(q.next_used);
        e.bool(q.event_idx_enabled);
        e.u16(q.size);
        e.bool(q.ready);
        e.u64(q.desc_table);
        e.u64(q.avail_ring);
        e.u64(q.used_ring);
    }
    e.bytes(&ds.blob);
    e.finish()
}

/// A vector register value from a snapshot: NO_VECTOR or an entry of the table.
fn vector(d: &mut Decoder<'_>, vectors: u16) -> Result<u16, SnapshotError> {
    let v = d.u16()?;
    if v == NO_VECTOR || v < vectors {
        Ok(v)
    } else {
        Err(SnapshotError::BadField("msix vector"))
    }
}

fn queue_state(d: &mut Decoder<'_>) -> Result<QueueState, SnapshotError> {
    Ok(QueueState {
        max_size: d.u16()?,
        next_avail: d.u16()?,
        next_used: d.u16()?,
        event_idx_enabled: d.bool("queue event_idx")?,
        size: d.u16()?,
        ready: d.bool("queue ready")?,
        desc_table: d.u64()?,
        avail_ring: d.u64()?,
        used_ring: d.u64()?,
    })
}

/// Rebuilds a transport around `device` from `data`.
pub(super) fn decode<D: VirtioDevice>(
    device: D,
    mem: GuestMemoryMmap,
    sink: Arc<dyn InterruptSink>,
    data: &[u8],
) -> Result<VirtioPciDevice<D>, PciError> {
    let (mut d, _version) = Decoder::new(data, MAGIC, SECTION, VERSION)?;
    let found = d.u32()?;
    let expected = device.device_type();
    if found != expected {
        return Err(PciError::DeviceType { found, expected });
    }
    let config: &[u8; CONFIG_SIZE] = d
        .bytes()?
        .try_into()
        .map_err(|_| SnapshotError::BadField("config space"))?;
    let vectors = d.u16()?;
    if vectors > MAX_VECTORS {
        return Err(SnapshotError::BadField("msix vectors").into());
    }

    let mut dev = VirtioPciDevice::new(device, mem, sink.clone(), vectors);
    dev.config.restore_writable(config);
    let mut irq = IrqState::new(vectors, dev.common.num_queues());
    for v in 0..vectors {
        let entry = MsixEntry {
            addr: d.u64()?,
            data: d.u32()?,
            masked: d.bool("msix mask")?,
        };
        irq.msix.set_entry(v, entry);
        irq.msix.set_pending(v, d.bool("msix pending")?);
    }
    irq.isr = d.u8()?;
    if irq.isr & !(ISR_QUEUE | ISR_CONFIG) != 0 {
        return Err(SnapshotError::BadField("isr").into());
    }
    irq.config_generation = d.u8()?;
    irq.config_vector = vector(&mut d, vectors)?;

    let c = &mut dev.common;
    c.device_feature_select = d.u32()?;
    c.driver_feature_select = d.u32()?;
    c.driver_features = [d.u32()?, d.u32()?];
    c.status = d.u8()?;
    c.queue_select = d.u16()?;
    let activated = d.bool("activated")?;
    if activated && c.status & status::DRIVER_OK == 0 {
        return Err(SnapshotError::BadField("activated").into());
    }
    if d.count(QUEUE_REGS_BYTES)? != c.queues.len() {
        return Err(SnapshotError::BadField("queue count").into());
    }
    for (q, v) in c.queues.iter_mut().zip(irq.queue_vectors.iter_mut()) {
        let size = d.u16()?;
        if size == 0 || !size.is_power_of_two() || size > q.max_size {
            return Err(SnapshotError::BadField("queue size").into());
        }
        *q = QueueRegs {
            max_size: q.max_size,
            size,
            enabled: d.bool("queue enable")?,
            desc: d.u64()?,
            driver: d.u64()?,
            device: d.u64()?,
        };
        *v = vector(&mut d, vectors)?;
    }

    let n = d.count(QUEUE_STATE_BYTES)?;
    let mut saved_queues = Vec::with_capacity(n);
    for _ in 0..n {
        saved_queues.push(queue_state(&mut d)?);
    }
    let blob = d.bytes()?;
    d.end()?;

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
                Queue::try_from(q).map_err(|source| PciError::Queue { index, source })
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

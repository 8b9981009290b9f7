//! A virtio-scsi host adapter (virtio spec 1.2, 5.6) and its disks, read-only.
//!
//! libguestfs attaches disks as `scsi-hd` on `virtio-scsi-pci`, and QEMU users often do too,
//! so the appliance reads them as it reads virtio-blk disks. virtio-drivers has no SCSI
//! driver; this one is written over its transport and queue (generic over [`Hal`] and
//! [`Transport`], like virtio-drivers' own devices): one request queue, polled, one command
//! in flight. Disks are found by INQUIRY on LUN 0 of every target the device allows, in
//! target order, and read with READ (10)/(16).
//!
//! The device's answers are untrusted: sizes are checked, a sense buffer or a residual count
//! larger than what was sent is refused, and every loop is bounded.

pub mod scsi;

use alloc::vec;
use alloc::vec::Vec;

use bitflags::bitflags;
use virtio_drivers::Hal;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport;

use scsi::{Capacity, Inquiry};

/// The request queue (0 is the control queue, 1 the event queue).
const REQUEST_QUEUE: u16 = 2;
const QUEUE_SIZE: usize = 16;
/// Response codes (virtio spec 5.6.6.1).
const S_OK: u8 = 0;
const S_BAD_TARGET: u8 = 3;
/// The most targets scanned (the LUN address has one byte for the target).
const MAX_TARGETS: u16 = 256;
/// How many times a command that meets UNIT ATTENTION or NOT READY is retried.
const RETRIES: usize = 4;

bitflags! {
    /// Feature bits this driver accepts (no SCSI-specific ones).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Features: u64 {
        const RING_EVENT_IDX = 1 << 29;
        const VERSION_1 = 1 << 32;
    }
}

/// Why a command or the adapter failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScsiError {
    /// The transport or the queue failed.
    #[error("virtqueue: {0}")]
    Queue(virtio_drivers::Error),
    /// The device's configuration is not usable.
    #[error("device configuration: {0}")]
    Config(&'static str),
    /// The device answered with a virtio-scsi response code other than OK.
    #[error("virtio-scsi response {0}")]
    Response(u8),
    /// The command ended with a SCSI status other than GOOD.
    #[error("SCSI status {status:#x}, sense key {sense_key:?}")]
    Status {
        /// The SCSI status.
        status: u8,
        /// The sense key, when sense data came back.
        sense_key: Option<u8>,
    },
    /// The device returned less data than the command needs.
    #[error("short data: {0} bytes missing")]
    Short(u32),
}

/// What one command returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    response: u8,
    status: u8,
    residual: u32,
    sense_key: Option<u8>,
}

/// A virtio-scsi adapter.
pub struct VirtioScsi<H: Hal, T: Transport> {
    transport: T,
    queue: VirtQueue<H, QUEUE_SIZE>,
    cdb_size: usize,
    sense_size: usize,
    max_target: u16,
    /// Most blocks' bytes in one READ (from `max_sectors`, in 512-byte sectors).
    max_transfer: usize,
    tag: u64,
}

/// One logical unit found by [`VirtioScsi::scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Its target.
    pub target: u8,
    /// Its size.
    pub capacity: Capacity,
}

fn config_u32<T: Transport>(t: &T, offset: usize) -> Result<u32, ScsiError> {
    t.read_config_space::<u32>(offset).map_err(ScsiError::Queue)
}

impl<H: Hal, T: Transport> VirtioScsi<H, T> {
    /// Negotiates features, reads the configuration and sets up the request queue.
    pub fn new(mut transport: T) -> Result<Self, ScsiError> {
        let features = transport.begin_init(Features::all());
        let max_sectors = config_u32(&transport, 8)?;
        let sense_size = config_u32(&transport, 20)? as usize;
        let cdb_size = config_u32(&transport, 24)? as usize;
        let max_target = transport
            .read_config_space::<u16>(30)
            .map_err(ScsiError::Queue)?;
        if !(16..=256).contains(&cdb_size) {
            return Err(ScsiError::Config("CDB size outside 16..=256"));
        }
        if sense_size > 256 {
            return Err(ScsiError::Config("sense size over 256"));
        }
        let queue = VirtQueue::new(
            &mut transport,
            REQUEST_QUEUE,
            false,
            features.contains(Features::RING_EVENT_IDX),
        )
        .map_err(ScsiError::Queue)?;
        transport.finish_init();
        // 256 KiB per command at most, and what the device allows.
        let max_transfer = (max_sectors.max(1) as usize)
            .saturating_mul(512)
            .min(256 * 1024);
        Ok(Self {
            transport,
            queue,
            cdb_size,
            sense_size,
            max_target: max_target.min(MAX_TARGETS - 1),
            max_transfer,
            tag: 0,
        })
    }

    /// Most bytes one READ moves.
    pub fn max_transfer(&self) -> usize {
        self.max_transfer
    }

    /// Sends `cdb` to LUN 0 of `target`; the device writes up to `data.len()` bytes into it.
    fn command(&mut self, target: u8, cdb: &[u8], data: &mut [u8]) -> Result<Outcome, ScsiError> {
        if cdb.len() > self.cdb_size {
            return Err(ScsiError::Config(
                "command longer than the device's CDB size",
            ));
        }
        self.tag = self.tag.wrapping_add(1);
        // virtio_scsi_req_cmd: lun[8], id, task_attr, prio, crn, cdb[cdb_size].
        let mut req = vec![0u8; 19 + self.cdb_size];
        req[0] = 1;
        req[1] = target;
        // LUN 0 in the flat addressing QEMU and Linux use: 0x40 | lun >> 8, lun & 0xff.
        req[2] = 0x40;
        req[8..16].copy_from_slice(&self.tag.to_le_bytes());
        req[19..19 + cdb.len()].copy_from_slice(cdb);
        // virtio_scsi_resp_cmd: sense_len, residual, status_qualifier, status, response,
        // sense[sense_size]; the data the device writes comes after it.
        let mut resp = vec![0u8; 12 + self.sense_size];
        if data.is_empty() {
            self.queue
                .add_notify_wait_pop(&[&req], &mut [&mut resp], &mut self.transport)
                .map_err(ScsiError::Queue)?;
        } else {
            self.queue
                .add_notify_wait_pop(&[&req], &mut [&mut resp, data], &mut self.transport)
                .map_err(ScsiError::Queue)?;
        }
        let word =
            |at: usize| u32::from_le_bytes([resp[at], resp[at + 1], resp[at + 2], resp[at + 3]]);
        let sense_len = (word(0) as usize).min(self.sense_size);
        let residual = word(4);
        if residual as usize > data.len() {
            return Err(ScsiError::Config("residual larger than the transfer"));
        }
        Ok(Outcome {
            response: resp[11],
            status: resp[10],
            residual,
            sense_key: scsi::sense_key(&resp[12..12 + sense_len]),
        })
    }

    /// Runs `cdb`, retrying on UNIT ATTENTION or NOT READY; returns the bytes the device
    /// wrote into `data` (its length less the residual).
    fn run(&mut self, target: u8, cdb: &[u8], data: &mut [u8]) -> Result<usize, ScsiError> {
        let mut last = None;
        for _ in 0..RETRIES {
            let o = self.command(target, cdb, data)?;
            if o.response != S_OK {
                return Err(ScsiError::Response(o.response));
            }
            if o.status == scsi::STATUS_GOOD {
                return Ok(data.len() - o.residual as usize);
            }
            let retry = o.status == scsi::STATUS_CHECK_CONDITION
                && matches!(
                    o.sense_key,
                    Some(scsi::SENSE_UNIT_ATTENTION | scsi::SENSE_NOT_READY)
                );
            last = Some(ScsiError::Status {
                status: o.status,
                sense_key: o.sense_key,
            });
            if !retry {
                break;
            }
        }
        Err(last.unwrap_or(ScsiError::Config("no attempt made")))
    }

    /// The disks on LUN 0 of each target, in target order. Targets that are absent, are not
    /// disks, or fail are skipped (the failures are returned beside the disks).
    pub fn scan(&mut self) -> (Vec<Unit>, Vec<(u8, ScsiError)>) {
        let mut units = Vec::new();
        let mut failures = Vec::new();
        for target in 0..=self.max_target {
            let target = target as u8;
            match self.probe(target) {
                Ok(Some(unit)) => units.push(unit),
                Ok(None) => {}
                Err(e) => failures.push((target, e)),
            }
        }
        (units, failures)
    }

    fn probe(&mut self, target: u8) -> Result<Option<Unit>, ScsiError> {
        let mut inq = [0u8; scsi::INQUIRY_LEN];
        let got = match self.run(target, &scsi::inquiry(), &mut inq) {
            Ok(n) => n,
            Err(ScsiError::Response(S_BAD_TARGET)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !Inquiry::parse(&inq[..got]).is_some_and(|i| i.is_disk()) {
            return Ok(None);
        }
        // Clears a pending UNIT ATTENTION (power on, reset) before the real commands.
        let _ = self.run(target, &scsi::test_unit_ready(), &mut []);
        let capacity = self.capacity(target)?;
        if capacity.bytes().is_none() {
            return Err(ScsiError::Config("unusable capacity or block size"));
        }
        Ok(Some(Unit { target, capacity }))
    }

    fn capacity(&mut self, target: u8) -> Result<Capacity, ScsiError> {
        let mut ten = [0u8; 8];
        let got = self.run(target, &scsi::read_capacity10(), &mut ten)?;
        if got < ten.len() {
            return Err(ScsiError::Short((ten.len() - got) as u32));
        }
        if let Some(c) = Capacity::parse10(&ten) {
            return Ok(c);
        }
        let mut sixteen = [0u8; 32];
        let got = self.run(target, &scsi::read_capacity16(), &mut sixteen)?;
        Capacity::parse16(&sixteen[..got]).ok_or(ScsiError::Short(12))
    }

    /// Reads whole blocks of `unit` from `lba` into `buf` (a multiple of the block size, at
    /// most [`Self::max_transfer`] bytes).
    pub fn read_blocks(&mut self, unit: &Unit, lba: u64, buf: &mut [u8]) -> Result<(), ScsiError> {
        let block = unit.capacity.block_size as usize;
        if !buf.len().is_multiple_of(block) || buf.len() > self.max_transfer {
            return Err(ScsiError::Config("read not in whole blocks, or too long"));
        }
        let blocks = (buf.len() / block) as u32;
        let (cdb, len) = scsi::read(lba, blocks);
        let got = self.run(unit.target, &cdb[..len], buf)?;
        if got < buf.len() {
            return Err(ScsiError::Short((buf.len() - got) as u32));
        }
        Ok(())
    }
}

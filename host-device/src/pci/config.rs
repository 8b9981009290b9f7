//! PCI configuration space: a type-0 header and the capability list.
//!
//! The 256 bytes are kept as an array plus a per-byte write mask, so every access width and
//! alignment is handled the same way (as its bytes) and a byte the mask does not cover cannot
//! change. BAR sizing falls out of the mask too: the address bits below the BAR size are not
//! writable, so writing all-ones reads back the size mask. The few registers with side effects
//! (command, MSI-X message control, the PCI_CFG access window) are handled by the caller after
//! the write, in [`super::VirtioPciDevice::config_write`].
//!
//! Layout:
//!
//! | offset | what |
//! |---|---|
//! | 0x00–0x3f | type-0 header; BAR0+BAR1 a 64-bit memory BAR |
//! | 0x40 | MSI-X capability (only with MSI-X vectors), 12 bytes |
//! | 0x50 | virtio COMMON_CFG, 16 bytes |
//! | 0x60 | virtio NOTIFY_CFG, 20 bytes |
//! | 0x74 | virtio ISR_CFG, 16 bytes |
//! | 0x84 | virtio DEVICE_CFG, 16 bytes |
//! | 0x94 | virtio PCI_CFG (access window into BAR0), 20 bytes |

use super::msix::MAX_VECTORS;
use super::{
    BAR_SIZE, COMMON_LEN, COMMON_OFFSET, DEVICE_LEN, DEVICE_OFFSET, ISR_LEN, ISR_OFFSET,
    MSIX_PBA_OFFSET, MSIX_TABLE_OFFSET, NOTIFY_MULTIPLIER, NOTIFY_OFFSET,
};

/// Size of the configuration space.
pub(super) const CONFIG_SIZE: usize = 256;

/// The vendor ID of virtio devices (Red Hat, Inc.), also used as the subsystem vendor.
pub(super) const VIRTIO_VENDOR_ID: u16 = 0x1af4;
/// Modern virtio device IDs are this plus the virtio device type.
pub(super) const VIRTIO_DEVICE_ID_BASE: u16 = 0x1040;
/// The subsystem ID: 0x1100, as QEMU uses for its devices (the spec asks for 0x40 or more).
pub(super) const SUBSYSTEM_ID: u16 = 0x1100;
/// Revision 1: a non-transitional (modern only) device.
pub(super) const REVISION: u8 = 1;

pub(super) const VENDOR_ID: usize = 0x00;
pub(super) const DEVICE_ID: usize = 0x02;
pub(super) const COMMAND: usize = 0x04;
pub(super) const STATUS: usize = 0x06;
const REVISION_ID: usize = 0x08;
const CLASS_CODE: usize = 0x09;
const HEADER_TYPE: usize = 0x0e;
pub(super) const BAR0: usize = 0x10;
const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
const SUBSYSTEM_ID_OFF: usize = 0x2e;
pub(super) const CAPABILITIES_POINTER: usize = 0x34;
const INTERRUPT_LINE: usize = 0x3c;
const INTERRUPT_PIN: usize = 0x3d;

/// Command register: memory space enable.
pub(super) const COMMAND_MEMORY: u16 = 1 << 1;
/// Command register: bus master enable.
pub(super) const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Command register: INTx disable.
pub(super) const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// Status register: interrupt status (INTx asserted internally).
pub(super) const STATUS_INTERRUPT: u16 = 1 << 3;
/// Status register: the capability list is present.
pub(super) const STATUS_CAP_LIST: u16 = 1 << 4;

/// BAR0 low bits: memory BAR, 64-bit (type 0b10), not prefetchable.
const BAR_MEM64: u32 = 0b100;

/// Capability ID of MSI-X.
pub(super) const CAP_ID_MSIX: u8 = 0x11;
/// Capability ID of vendor-specific capabilities (all virtio structures).
pub(super) const CAP_ID_VNDR: u8 = 0x09;

/// Where the MSI-X capability sits.
pub(super) const MSIX_CAP: usize = 0x40;
/// Offset of message control within the MSI-X capability.
pub(super) const MSIX_CONTROL: usize = MSIX_CAP + 2;
/// Message control: MSI-X enable.
pub(super) const MSIX_ENABLE: u16 = 1 << 15;
/// Message control: function mask.
pub(super) const MSIX_FUNCTION_MASK: u16 = 1 << 14;

/// virtio_pci_cap.cfg_type values (virtio 1.x 4.1.4).
pub(super) const VIRTIO_PCI_CAP_COMMON_CFG: u8 = 1;
/// Notifications.
pub(super) const VIRTIO_PCI_CAP_NOTIFY_CFG: u8 = 2;
/// ISR status.
pub(super) const VIRTIO_PCI_CAP_ISR_CFG: u8 = 3;
/// Device-specific configuration.
pub(super) const VIRTIO_PCI_CAP_DEVICE_CFG: u8 = 4;
/// PCI configuration access.
pub(super) const VIRTIO_PCI_CAP_PCI_CFG: u8 = 5;

const COMMON_CAP: usize = 0x50;
const NOTIFY_CAP: usize = 0x60;
const ISR_CAP: usize = 0x74;
const DEVICE_CAP: usize = 0x84;
/// Where the PCI_CFG capability sits.
pub(super) const PCI_CFG_CAP: usize = 0x94;
/// Its `cap.bar` byte.
pub(super) const PCI_CFG_BAR: usize = PCI_CFG_CAP + 4;
/// Its `cap.offset` dword.
pub(super) const PCI_CFG_OFFSET: usize = PCI_CFG_CAP + 8;
/// Its `cap.length` dword.
pub(super) const PCI_CFG_LENGTH: usize = PCI_CFG_CAP + 12;
/// Its `pci_cfg_data` window (4 bytes).
pub(super) const PCI_CFG_DATA: usize = PCI_CFG_CAP + 16;

/// The configuration space of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    wmask: [u8; CONFIG_SIZE],
}

impl ConfigSpace {
    /// The configuration space of a virtio device of `device_type` with `msix_vectors` MSI-X
    /// entries (0: no MSI-X capability) and a notify region of `notify_len` bytes.
    pub fn new(device_type: u32, msix_vectors: u16, notify_len: u32) -> Self {
        let mut c = ConfigSpace {
            bytes: [0; CONFIG_SIZE],
            wmask: [0; CONFIG_SIZE],
        };
        let device_id = u16::try_from(device_type)
            .ok()
            .and_then(|t| VIRTIO_DEVICE_ID_BASE.checked_add(t))
            .unwrap_or(u16::MAX);
        c.put16(VENDOR_ID, VIRTIO_VENDOR_ID);
        c.put16(DEVICE_ID, device_id);
        c.put16(STATUS, STATUS_CAP_LIST);
        c.bytes[REVISION_ID] = REVISION;
        let class = class_code(device_type).to_le_bytes();
        c.bytes[CLASS_CODE..CLASS_CODE + 3].copy_from_slice(&class[..3]);
        c.bytes[HEADER_TYPE] = 0;
        c.put32(BAR0, BAR_MEM64);
        c.put16(SUBSYSTEM_VENDOR_ID, VIRTIO_VENDOR_ID);
        c.put16(SUBSYSTEM_ID_OFF, SUBSYSTEM_ID);
        c.bytes[INTERRUPT_PIN] = 1; // INTA#

        // Writable: command (memory, bus master, INTx disable), the BAR's address bits and the
        // interrupt line (a scratch byte firmware writes the routing into).
        let command = COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE;
        c.wmask[COMMAND..COMMAND + 2].copy_from_slice(&command.to_le_bytes());
        let bar_mask = !(BAR_SIZE - 1);
        c.wmask[BAR0..BAR0 + 8].copy_from_slice(&bar_mask.to_le_bytes());
        c.wmask[INTERRUPT_LINE] = 0xff;

        let vectors = msix_vectors.min(MAX_VECTORS);
        let first = if vectors > 0 {
            c.bytes[MSIX_CAP] = CAP_ID_MSIX;
            c.bytes[MSIX_CAP + 1] = COMMON_CAP as u8;
            c.put16(MSIX_CONTROL, vectors - 1);
            c.put32(MSIX_CAP + 4, MSIX_TABLE_OFFSET as u32); // BIR 0
            c.put32(MSIX_CAP + 8, MSIX_PBA_OFFSET as u32); // BIR 0
            let control = MSIX_ENABLE | MSIX_FUNCTION_MASK;
            c.wmask[MSIX_CONTROL..MSIX_CONTROL + 2].copy_from_slice(&control.to_le_bytes());
            MSIX_CAP
        } else {
            COMMON_CAP
        };
        c.bytes[CAPABILITIES_POINTER] = first as u8;

        let region = |off: u64, len: u64| (off as u32, len as u32);
        c.virtio_cap(
            COMMON_CAP,
            NOTIFY_CAP,
            16,
            VIRTIO_PCI_CAP_COMMON_CFG,
            region(COMMON_OFFSET, COMMON_LEN),
        );
        c.virtio_cap(
            NOTIFY_CAP,
            ISR_CAP,
            20,
            VIRTIO_PCI_CAP_NOTIFY_CFG,
            (NOTIFY_OFFSET as u32, notify_len),
        );
        c.put32(NOTIFY_CAP + 16, NOTIFY_MULTIPLIER as u32);
        c.virtio_cap(
            ISR_CAP,
            DEVICE_CAP,
            16,
            VIRTIO_PCI_CAP_ISR_CFG,
            region(ISR_OFFSET, ISR_LEN),
        );
        c.virtio_cap(
            DEVICE_CAP,
            PCI_CFG_CAP,
            16,
            VIRTIO_PCI_CAP_DEVICE_CFG,
            region(DEVICE_OFFSET, DEVICE_LEN),
        );
        // The PCI_CFG capability: bar, offset, length and the data window are the driver's.
        c.virtio_cap(PCI_CFG_CAP, 0, 20, VIRTIO_PCI_CAP_PCI_CFG, (0, 0));
        c.wmask[PCI_CFG_BAR] = 0xff;
        c.wmask[PCI_CFG_OFFSET..PCI_CFG_DATA + 4].fill(0xff);
        c
    }

    /// Fills in a `struct virtio_pci_cap` at `at` pointing into BAR0.
    fn virtio_cap(&mut self, at: usize, next: usize, len: u8, cfg_type: u8, region: (u32, u32)) {
        self.bytes[at] = CAP_ID_VNDR;
        self.bytes[at + 1] = next as u8;
        self.bytes[at + 2] = len;
        self.bytes[at + 3] = cfg_type;
        self.bytes[at + 4] = 0; // bar
        self.bytes[at + 5] = 0; // id
        self.put32(at + 8, region.0);
        self.put32(at + 12, region.1);
    }

    fn put16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn put32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// The 16-bit register at `at` (a fixed offset inside the space).
    pub fn get16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    /// The 32-bit register at `at` (a fixed offset inside the space).
    pub fn get32(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    /// Reads `data.len()` bytes at `offset`; bytes beyond the space read as 0xff.
    pub fn read(&self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::from(offset)
                .checked_add(i)
                .and_then(|o| self.bytes.get(o))
                .copied()
                .unwrap_or(0xff);
        }
    }

    /// Writes `data` at `offset` through the write mask; bytes beyond the space are ignored.
    pub fn write(&mut self, offset: u16, data: &[u8]) {
        let start = usize::from(offset);
        for (i, &v) in data.iter().enumerate() {
            let Some(o) = start.checked_add(i).filter(|&o| o < CONFIG_SIZE) else {
                break;
            };
            let m = self.wmask[o];
            self.bytes[o] = (self.bytes[o] & !m) | (v & m);
        }
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.get16(COMMAND)
    }

    /// MSI-X message control (0 when there is no MSI-X capability, i.e. disabled).
    pub fn msix_control(&self) -> u16 {
        if self.bytes[MSIX_CAP] == CAP_ID_MSIX {
            self.get16(MSIX_CONTROL)
        } else {
            0
        }
    }

    /// The raw 64-bit value of BAR0+BAR1, type bits masked off.
    pub fn bar0(&self) -> u64 {
        let lo = u64::from(self.get32(BAR0));
        let hi = u64::from(self.get32(BAR0 + 4));
        ((hi << 32) | lo) & !0xf
    }

    /// Programs BAR0+BAR1 (address bits below the BAR size are dropped).
    pub fn set_bar0(&mut self, addr: u64) {
        let v = (addr & !(BAR_SIZE - 1)) | u64::from(BAR_MEM64);
        self.bytes[BAR0..BAR0 + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// The PCI_CFG capability's `cap.bar`, `cap.offset` and `cap.length`.
    pub fn pci_cfg_window(&self) -> (u8, u32, u32) {
        (
            self.bytes[PCI_CFG_BAR],
            self.get32(PCI_CFG_OFFSET),
            self.get32(PCI_CFG_LENGTH),
        )
    }

    /// The PCI_CFG data window.
    pub fn pci_cfg_data(&self) -> [u8; 4] {
        let mut d = [0u8; 4];
        d.copy_from_slice(&self.bytes[PCI_CFG_DATA..PCI_CFG_DATA + 4]);
        d
    }

    /// The whole space (for snapshots).
    pub fn bytes(&self) -> &[u8; CONFIG_SIZE] {
        &self.bytes
    }

    /// Restores the writable bytes of a saved space; read-only bytes keep this build's values,
    /// so a snapshot cannot change IDs or the capability list.
    pub fn restore_writable(&mut self, saved: &[u8; CONFIG_SIZE]) {
        for ((b, &m), &s) in self.bytes.iter_mut().zip(&self.wmask).zip(saved) {
            *b = (*b & !m) | (s & m);
        }
    }
}

/// The PCI class code (class, subclass, programming interface) of a virtio device type.
pub(super) fn class_code(device_type: u32) -> u32 {
    match device_type {
        // Simple communication controller, other.
        3 => 0x07_80_00,
        // Mass storage controller, SCSI.
        2 => 0x01_00_00,
        // Unassigned class.
        _ => 0xff_00_00,
    }
}

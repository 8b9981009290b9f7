//! PCI configuration access through the legacy ports 0xCF8/0xCFC (every PC machine has them;
//! ECAM is not needed for the first 256 bytes, which hold everything virtio uses).

use crate::arch::io::IoPorts;
use alloc::vec::Vec;

use spin::Once;

use crate::pci::{Bdf, ConfigAccess, PciFunction, VirtioCapKind, enumerate};

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// Configuration mechanism #1.
pub struct PortIoConfig;

fn address(bdf: Bdf, offset: u8) -> u32 {
    0x8000_0000
        | u32::from(bdf.bus) << 16
        | u32::from(bdf.device & 0x1f) << 11
        | u32::from(bdf.function & 7) << 8
        | u32::from(offset & 0xfc)
}

fn ports() -> IoPorts {
    // SAFETY: 0xCF8..0xD00 are the host bridge's configuration ports; only this module
    // drives them.
    unsafe { IoPorts::new(CONFIG_ADDRESS, 8) }
}

impl ConfigAccess for PortIoConfig {
    fn read32(&self, bdf: Bdf, offset: u8) -> u32 {
        // In ring 3, one core call does both port accesses (the core's fast path).
        if super::ring3::active() {
            let address = u64::from(address(bdf, offset));
            return super::ring3::call(super::ring3::Call::PciRead, address) as u32;
        }
        let ports = ports();
        ports.write32(0, address(bdf, offset));
        ports.read32(CONFIG_DATA - CONFIG_ADDRESS)
    }

    fn write32(&self, bdf: Bdf, offset: u8, value: u32) {
        if super::ring3::active() {
            let address = u64::from(address(bdf, offset));
            super::ring3::call2(super::ring3::Call::PciWrite, address, u64::from(value));
            return;
        }
        let ports = ports();
        ports.write32(0, address(bdf, offset));
        ports.write32(CONFIG_DATA - CONFIG_ADDRESS, value);
    }
}

static FUNCTIONS: Once<Vec<PciFunction>> = Once::new();

/// Every PCI function, enumerated once (the console's and the disks' drivers both look them
/// up; under kvm-pvm each configuration read is a core call of about 66 µs).
pub fn functions() -> &'static [PciFunction] {
    FUNCTIONS.call_once(|| enumerate(&PortIoConfig))
}

/// Prints every PCI function and, for virtio devices, their virtio capabilities (`lspci`).
pub fn list() {
    let functions = functions();
    crate::kprint!("lspci: {} functions\n", functions.len());
    for f in functions {
        let (class, sub, prog) = f.class;
        crate::kprint!(
            "lspci: {} {:04x}:{:04x} class {:02x}.{:02x}.{:02x}{}\n",
            f.bdf,
            f.vendor,
            f.device,
            class,
            sub,
            prog,
            if f.is_virtio_console() {
                " virtio-console"
            } else {
                ""
            }
        );
        if f.vendor == crate::pci::VIRTIO_VENDOR {
            for cap in f.virtio_caps(&PortIoConfig) {
                let kind = match cap.kind {
                    VirtioCapKind::Common => "common",
                    VirtioCapKind::Notify(_) => "notify",
                    VirtioCapKind::Isr => "isr",
                    VirtioCapKind::Device => "device",
                    VirtioCapKind::PciCfg => "pci-cfg",
                    VirtioCapKind::Other(_) => "other",
                };
                crate::kprint!(
                    "lspci:   virtio {kind} in BAR{} at {:#x}+{:#x}\n",
                    cap.bar,
                    cap.offset,
                    cap.length
                );
            }
        }
    }
}

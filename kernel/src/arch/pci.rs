//! PCI configuration access: ECAM (PCIe MMCONFIG) where the ACPI MCFG table names a window,
//! else the legacy ports 0xCF8/0xCFC (every PC machine has them; the first 256 bytes hold
//! everything virtio uses).
//!
//! Why ECAM first: in ring 3 under kvm-pvm, a port access goes through the CPL0 core (two
//! port exits and an exception entry, about 66 us per configuration dword), while an ECAM
//! access is one MMIO exit straight from ring 3. The bundled VMM and QEMU's q35 have an MCFG;
//! QEMU's pc has none.

use core::ops::Range;

use crate::arch::io::{IdentityMemory, IoPorts, Mmio};
use alloc::vec::Vec;

use spin::Once;

use crate::acpi;
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

/// An ECAM window: its registers and the buses it covers.
struct Ecam {
    regs: Mmio,
    buses: core::ops::RangeInclusive<u8>,
}

static ECAM: Once<Option<Ecam>> = Once::new();

/// The ECAM window of segment 0, read from the MCFG on first use. Only through the RSDP the
/// loader gave (the bundled VMM and QEMU's PVH loader give one): without it, mechanism #1 is
/// used rather than scanning the BIOS area for the RSDP (milliseconds under nested KVM).
fn ecam() -> Option<&'static Ecam> {
    ECAM.call_once(|| {
        let rsdp = super::power::rsdp_hint()?;
        let window = match acpi::ecam(&IdentityMemory, rsdp) {
            Ok(window) => window?,
            Err(e) => {
                log::warn!("ACPI MCFG: {e}; PCI configuration through ports 0xCF8/0xCFC");
                return None;
            }
        };
        // SAFETY: the MCFG's window is the host bridge's configuration space (not RAM), and
        // this module is its only user.
        let regs = unsafe { Mmio::new(window.base, window.size()) };
        if regs.is_none() {
            log::warn!(
                "ECAM window at {:#x} is outside the identity map; using ports 0xCF8/0xCFC",
                window.base
            );
        }
        Some(Ecam {
            regs: regs?,
            buses: window.start_bus..=window.end_bus,
        })
    })
    .as_ref()
}

/// The physical range of the ECAM window in use, if any (BARs must not be placed there).
pub fn ecam_range() -> Option<Range<u64>> {
    ecam().map(|e| e.regs.base()..e.regs.base() + e.regs.size())
}

/// The machine's configuration access: ECAM for the buses the MCFG window covers, else
/// mechanism #1 ([`PortIoConfig`]).
pub struct PciConfig;

impl PciConfig {
    /// Where `bdf`'s dword at `offset` is in the ECAM window, if there is one for its bus.
    fn ecam_at(bdf: Bdf, offset: u8) -> Option<(&'static Mmio, u64)> {
        let e = ecam()?;
        if !e.buses.contains(&bdf.bus) {
            return None;
        }
        let at = u64::from(bdf.bus - e.buses.start()) << 20
            | u64::from(bdf.device & 0x1f) << 15
            | u64::from(bdf.function & 7) << 12
            | u64::from(offset & 0xfc);
        Some((&e.regs, at))
    }
}

impl ConfigAccess for PciConfig {
    fn read32(&self, bdf: Bdf, offset: u8) -> u32 {
        match Self::ecam_at(bdf, offset) {
            Some((regs, at)) => regs.read32(at),
            None => PortIoConfig.read32(bdf, offset),
        }
    }

    fn write32(&self, bdf: Bdf, offset: u8, value: u32) {
        match Self::ecam_at(bdf, offset) {
            Some((regs, at)) => regs.write32(at, value),
            None => PortIoConfig.write32(bdf, offset, value),
        }
    }
}

static FUNCTIONS: Once<Vec<PciFunction>> = Once::new();

/// Every PCI function, enumerated once (the console's and the disks' drivers both look them
/// up; under kvm-pvm each configuration access is a VM exit).
pub fn functions() -> &'static [PciFunction] {
    FUNCTIONS.call_once(|| enumerate(&PciConfig))
}

/// Prints every PCI function and, for virtio devices, their virtio capabilities (`lspci`).
pub fn list() {
    let functions = functions();
    crate::kprint!(
        "lspci: {} functions; configuration through {}\n",
        functions.len(),
        match ecam_range() {
            Some(r) => alloc::format!("ECAM at {:#x}", r.start),
            None => "ports 0xCF8/0xCFC".into(),
        }
    );
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
            for cap in f.virtio_caps(&PciConfig) {
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

//! Port I/O and identity-mapped physical memory access.

use x86_64::instructions::port::Port;

use super::ring3;
use crate::acpi::{AddressSpace, PhysMemory, RegisterWrite};

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    port_in(port, 1) as u8
}

/// Writes a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    port_out(port, 1, u32::from(value))
}

/// Writes a word to an I/O port.
pub fn outw(port: u16, value: u16) {
    port_out(port, 2, u32::from(value))
}

/// Writes a doubleword to an I/O port.
pub fn outl(port: u16, value: u32) {
    port_out(port, 4, value)
}

/// Reads a doubleword from an I/O port.
pub fn inl(port: u16) -> u32 {
    port_in(port, 4)
}

fn port_in(port: u16, width: u8) -> u32 {
    if ring3::active() {
        ring3::call2(
            ring3::Call::PortIo,
            u64::from(port) | u64::from(width) << 16,
            0,
        ) as u32
    } else {
        cpl0_in(port, width)
    }
}

fn port_out(port: u16, width: u8, value: u32) {
    if ring3::active() {
        ring3::call2(
            ring3::Call::PortIo,
            u64::from(port) | u64::from(width) << 16 | 1 << 24,
            u64::from(value),
        );
    } else {
        cpl0_out(port, width, value)
    }
}

/// A port read at CPL0 (the core, or the kernel under `ring0`).
pub(super) fn cpl0_in(port: u16, width: u8) -> u32 {
    // SAFETY: port reads have no memory effects; callers only read ports of devices they own.
    unsafe {
        match width {
            1 => u32::from(Port::<u8>::new(port).read()),
            2 => u32::from(Port::<u16>::new(port).read()),
            _ => Port::<u32>::new(port).read(),
        }
    }
}

/// A port write at CPL0.
pub fn cpl0_out(port: u16, width: u8, value: u32) {
    // SAFETY: port writes cannot break memory safety; callers only write ports they own.
    unsafe {
        match width {
            1 => Port::<u8>::new(port).write(value as u8),
            2 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value),
        }
    }
}

/// Physical memory as the boot page tables map it: identity, low 4 GiB only.
pub struct IdentityMemory;

/// Top of the identity map set up by the bootloader.
pub const IDENTITY_LIMIT: u64 = 1 << 32;

impl PhysMemory for IdentityMemory {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> bool {
        let Some(end) = paddr.checked_add(buf.len() as u64) else {
            return false;
        };
        if paddr == 0 || end > IDENTITY_LIMIT {
            return false;
        }
        // SAFETY: the range lies inside the identity map, and reading firmware tables or RAM
        // through a raw byte copy has no side effects.
        unsafe { core::ptr::copy_nonoverlapping(paddr as *const u8, buf.as_mut_ptr(), buf.len()) };
        true
    }
}

/// Performs a register write described by the ACPI tables.
pub fn write_register(w: &RegisterWrite) {
    match w.space {
        AddressSpace::Io => {
            let port = w.address as u16;
            match w.width {
                8 => outb(port, w.value as u8),
                32 => outl(port, w.value),
                _ => outw(port, w.value as u16),
            }
        }
        AddressSpace::Memory if w.address < IDENTITY_LIMIT => {
            let ptr = w.address as *mut u8;
            // SAFETY: the address is an MMIO register named by the FADT and identity-mapped.
            unsafe {
                match w.width {
                    16 => ptr.cast::<u16>().write_volatile(w.value as u16),
                    32 => ptr.cast::<u32>().write_volatile(w.value),
                    _ => ptr.write_volatile(w.value as u8),
                }
            }
        }
        AddressSpace::Memory => {
            log::warn!("ACPI register {:#x} is outside the identity map", w.address)
        }
    }
}

/// A memory-mapped register block in the identity map (BARs, the local APIC).
#[derive(Debug, Clone, Copy)]
pub struct Mmio {
    base: u64,
    len: u64,
}

impl Mmio {
    /// The block at `base` (physical = virtual), `len` bytes; `None` if it leaves the
    /// identity map or starts at 0.
    pub fn new(base: u64, len: u64) -> Option<Self> {
        let end = base.checked_add(len)?;
        (base != 0 && end <= IDENTITY_LIMIT).then_some(Self { base, len })
    }

    /// Its physical base address.
    pub fn base(&self) -> u64 {
        self.base
    }

    fn at<T>(&self, offset: u64) -> *mut T {
        let size = core::mem::size_of::<T>() as u64;
        assert!(
            offset.is_multiple_of(size) && offset + size <= self.len,
            "MMIO access at {offset:#x} outside a {:#x}-byte block",
            self.len
        );
        (self.base + offset) as *mut T
    }

    /// Reads a 32-bit register.
    pub fn read32(&self, offset: u64) -> u32 {
        // SAFETY: `new` checked the block is inside the identity map; `at` keeps the access
        // aligned and inside the block, which the caller took from a device's BAR or the APIC.
        unsafe { self.at::<u32>(offset).read_volatile() }
    }

    /// Writes a 32-bit register.
    pub fn write32(&self, offset: u64, value: u32) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u32>(offset).write_volatile(value) }
    }

    /// Reads a 16-bit register.
    pub fn read16(&self, offset: u64) -> u16 {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u16>(offset).read_volatile() }
    }

    /// Writes a 16-bit register.
    pub fn write16(&self, offset: u64, value: u16) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u16>(offset).write_volatile(value) }
    }
}

//! x86_64 machine code: everything that touches the CPU, I/O ports or physical memory.
//!
//! Where unsafe code lives: this module tree, and one place outside it,
//! `virtio_console/device.rs`, whose queue hands buffers to virtio-drivers (`add` and
//! `pop_used` are unsafe there because the device owns a buffer until it gives it back).
//! Inside `arch`:
//! - device registers only through typed handles ([`io::IoPorts`], [`io::Mmio`]) whose unsafe
//!   constructors say which device they reach, and which then keep every access inside it;
//! - CPU state at CPL0: [`gdt`], [`interrupts`] (IDT, entry stubs), [`ring3`] (the drop to
//!   ring 3, the core's calls), MSRs in [`apic`] and [`clock`];
//! - memory the boot hands over: [`boot`] (start info), [`heap`], the DMA HAL in [`virtio`];
//! - deliberate faults in [`selftests`] and [`crash`].
//!
//! The kernel runs its work in ring 3 (see [`ring3`]); what needs CPL0 goes through the core.

pub mod apic;
pub mod blk;
pub mod boot;
pub mod clock;
pub mod crash;
pub mod gdt;
pub mod heap;
pub mod interrupts;
pub mod io;
pub mod pci;
pub mod power;
pub mod ring3;
pub mod ring3probe;
pub mod rtc;
pub mod scsi;
pub mod selftests;
pub mod serial;
pub mod serve;
pub mod virtio;

/// Prints to COM1 without a trailing newline.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::arch::serial::write_fmt(format_args!($($arg)*)) };
}

/// The hypervisor's CPUID signature (leaf 0x4000_0000), e.g. `KVMKVMKVM\0\0\0` or
/// `TCGTCGTCGTCG`; `None` on bare metal.
pub fn hypervisor_signature() -> Option<[u8; 12]> {
    use core::arch::x86_64::__cpuid;
    // Bit 31 of CPUID.1:ECX says a hypervisor is present.
    if __cpuid(1).ecx & (1 << 31) == 0 {
        return None;
    }
    let r = __cpuid(0x4000_0000);
    let mut sig = [0u8; 12];
    sig[..4].copy_from_slice(&r.ebx.to_le_bytes());
    sig[4..8].copy_from_slice(&r.ecx.to_le_bytes());
    sig[8..].copy_from_slice(&r.edx.to_le_bytes());
    Some(sig)
}

/// True when running under KVM.
pub fn under_kvm() -> bool {
    hypervisor_signature().is_some_and(|s| s.starts_with(b"KVMKVMKVM"))
}

/// Halts the CPU with interrupts disabled, forever.
pub fn halt_forever() -> ! {
    ring3::halt_forever()
}

//! The local APIC: just enough for MSI-X delivery (enable, end-of-interrupt). The 8259s stay
//! masked and the APIC timer off, so device interrupts are the only thing that wakes `hlt`.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::registers::model_specific::Msr;

use super::io::Mmio;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_GLOBAL_ENABLE: u64 = 1 << 11;
const REG_ID: u64 = 0x20;
const REG_TPR: u64 = 0x80;
const REG_EOI: u64 = 0xb0;
const REG_SVR: u64 = 0xf0;
const SPURIOUS_VECTOR: u32 = 0xff;
/// Where MSI messages go (the fixed x86 MSI address window).
pub const MSI_ADDRESS_BASE: u64 = 0xfee0_0000;

static BASE: AtomicU64 = AtomicU64::new(0);

fn regs() -> Option<Mmio> {
    Mmio::new(BASE.load(Ordering::Acquire), 0x1000)
}

/// Enables the local APIC in xAPIC mode and returns its id (the MSI destination).
pub fn init() -> u8 {
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; setting the global enable bit keeps
    // the APIC at its current base.
    let base = unsafe {
        let value = msr.read();
        if value & APIC_GLOBAL_ENABLE == 0 {
            msr.write(value | APIC_GLOBAL_ENABLE);
        }
        value & 0x000f_ffff_ffff_f000
    };
    BASE.store(base, Ordering::Release);
    let Some(apic) = regs() else {
        log::error!("local APIC at {base:#x} is outside the identity map");
        return 0;
    };
    apic.write32(REG_TPR, 0);
    apic.write32(REG_SVR, (1 << 8) | SPURIOUS_VECTOR);
    (apic.read32(REG_ID) >> 24) as u8
}

/// Signals end-of-interrupt for the vector being handled.
pub fn eoi() {
    if let Some(apic) = regs() {
        apic.write32(REG_EOI, 0);
    }
}

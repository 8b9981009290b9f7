//! The local APIC: just enough for MSI-X delivery (enable, end-of-interrupt). The 8259s stay
//! masked and the APIC timer off, so device interrupts are the only thing that wakes `hlt`.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

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

const REG_ICR_LOW: u64 = 0x300;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INITIAL: u64 = 0x380;
const REG_TIMER_DIVIDE: u64 = 0x3e0;
/// ICR destination shorthand "self".
const ICR_SELF: u32 = 1 << 18;

static BASE: AtomicU64 = AtomicU64::new(0);
static ID: AtomicU8 = AtomicU8::new(0);

fn regs() -> Option<Mmio> {
    // SAFETY: BASE is the local APIC's register page as IA32_APIC_BASE gives it (or 0, which
    // `new` refuses); only this module drives the APIC.
    unsafe { Mmio::new(BASE.load(Ordering::Acquire), 0x1000) }
}

/// Enables the local APIC in xAPIC mode and records its id (the MSI destination). Needs
/// CPL0 (it writes an MSR): boot calls it before entering ring 3.
pub fn init() {
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
        return;
    };
    apic.write32(REG_TPR, 0);
    apic.write32(REG_SVR, (1 << 8) | SPURIOUS_VECTOR);
    ID.store((apic.read32(REG_ID) >> 24) as u8, Ordering::Release);
}

/// This CPU's APIC id, as [`init`] read it.
pub fn id() -> u8 {
    ID.load(Ordering::Acquire)
}

/// Sends `vector` to this CPU (a fixed self-IPI), as a device's MSI would arrive.
pub fn self_ipi(vector: u8) {
    if let Some(apic) = regs() {
        apic.write32(REG_ICR_LOW, ICR_SELF | u32::from(vector));
    }
}

/// Arms the APIC timer once: `vector` after `ticks` of the APIC clock (divide by 1).
pub fn one_shot(vector: u8, ticks: u32) {
    if let Some(apic) = regs() {
        apic.write32(REG_TIMER_DIVIDE, 0b1011);
        apic.write32(REG_LVT_TIMER, u32::from(vector));
        apic.write32(REG_TIMER_INITIAL, ticks);
    }
}

/// Reads the APIC id register (an MMIO read, for measurements).
pub fn read_id_register() -> u32 {
    regs().map_or(0, |apic| apic.read32(REG_ID))
}

/// Signals end-of-interrupt for the vector being handled.
pub fn eoi() {
    if let Some(apic) = regs() {
        apic.write32(REG_EOI, 0);
    }
}

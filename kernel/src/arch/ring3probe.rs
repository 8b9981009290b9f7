//! `ring3probe` on the command line: measures, on the host at hand, what the kernel's
//! operations cost at CPL0 and at CPL3 (a compute loop, port I/O, an MMIO read, a core call,
//! an interrupt into the core and back, a wait for an interrupt through the core), prints one
//! line per figure and powers off. This is how the decision to run the kernel's work in ring 3
//! was measured (docs/BENCHMARKS.md), and how to check it on another host.

use core::sync::atomic::{AtomicU32, Ordering};

use super::{apic, clock, interrupts, io, ring3};

const IPI_VECTOR: u8 = 0x41;
const TIMER_VECTOR: u8 = 0x42;
static DELIVERED: AtomicU32 = AtomicU32::new(0);

fn on_probe_interrupt(_vector: u8) {
    DELIVERED.fetch_add(1, Ordering::SeqCst);
    apic::eoi();
}

/// Nanoseconds per call of `op`, over `n` calls.
fn per_op(n: u32, mut op: impl FnMut()) -> u64 {
    let start = clock::rdtsc();
    for _ in 0..n {
        op();
    }
    clock::ticks_to_ns(clock::rdtsc() - start) / u64::from(n)
}

/// Picoseconds per iteration of a `dec; jnz` loop.
fn loop_ps(iterations: u64) -> u64 {
    let start = clock::rdtsc();
    // SAFETY: a register-only loop.
    unsafe {
        core::arch::asm!("2:", "dec {n}", "jnz 2b", n = inout(reg) iterations => _, options(nomem, nostack));
    }
    clock::ticks_to_ns(clock::rdtsc() - start) * 1000 / iterations
}

fn report(ring: u8, what: &str, ns: u64) {
    log::info!("ring3probe: CPL{ring} {what}: {ns} ns");
}

/// The operations both rings can do, measured in the ring the caller is in.
fn common(ring: u8, scale: u32) {
    log::info!(
        "ring3probe: CPL{ring} compute loop: {} ps per iteration",
        loop_ps(u64::from(scale) * 1000)
    );
    // SAFETY: port 0x80 is the POST diagnostic port, which nothing else uses.
    let post = unsafe { io::IoPorts::new(0x80, 1) };
    report(
        ring,
        "port I/O (out to port 0x80)",
        per_op(scale, || post.write8(0, 0)),
    );
    report(
        ring,
        "PCI configuration read (00:00.0, mechanism #1)",
        per_op(scale, || {
            use crate::pci::ConfigAccess;
            super::pci::PortIoConfig.read32(
                crate::pci::Bdf {
                    bus: 0,
                    device: 0,
                    function: 0,
                },
                0,
            );
        }),
    );
    report(
        ring,
        "MMIO read (local APIC id, handled in the host kernel)",
        per_op(scale, || {
            apic::read_id_register();
        }),
    );
    let before = DELIVERED.load(Ordering::SeqCst);
    report(
        ring,
        "self-IPI delivered to the core and back",
        per_op(scale, || {
            ring3::mask();
            apic::self_ipi(IPI_VECTOR);
            ring3::unmask();
        }),
    );
    let ipis = DELIVERED.load(Ordering::SeqCst) - before;
    report(
        ring,
        "wait for an interrupt (APIC timer, 1 tick) through the core",
        per_op(scale, || {
            ring3::mask();
            apic::one_shot(TIMER_VECTOR, 1);
            ring3::unmask_and_wait();
        }),
    );
    let all = DELIVERED.load(Ordering::SeqCst) - before;
    log::info!(
        "ring3probe: CPL{ring} interrupts delivered: {ipis} IPIs, {} timer, of {scale} each",
        all - ipis
    );
}

/// Runs the CPL0 half; call at CPL0 with the APIC and clock up, before [`ring3::enter`].
pub fn before_ring3() {
    interrupts::set_handler(IPI_VECTOR, on_probe_interrupt);
    interrupts::set_handler(TIMER_VECTOR, on_probe_interrupt);
    common(0, 100);
}

/// Runs the CPL3 half; call right after [`ring3::enter`].
pub fn in_ring3() {
    common(3, 1000);
    report(
        3,
        "core call (ud2 trap, nothing, iretq)",
        per_op(1000, || {
            ring3::call(ring3::Call::Nop, 0);
        }),
    );
    let before = DELIVERED.load(Ordering::SeqCst);
    report(
        3,
        "self-IPI unmasked (taken at once, no call)",
        per_op(1000, || apic::self_ipi(IPI_VECTOR)),
    );
    log::info!(
        "ring3probe: CPL3 unmasked IPIs delivered: {}",
        DELIVERED.load(Ordering::SeqCst) - before
    );
}

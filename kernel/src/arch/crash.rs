//! Deliberate failures (`crash=MODE` on the command line), so the test harness can prove it
//! catches a broken kernel: a panic, a fault, a triple fault, a hang.

use crate::arch::{halt_forever, power, ring3};

/// Fails in the way `mode` names. Never returns.
pub fn crash(mode: &str) -> ! {
    log::warn!("crash={mode} requested on the command line");
    match mode {
        "panic" => panic!("deliberate panic (crash=panic)"),
        "pagefault" => {
            // SAFETY: not safe at all, on purpose: 4 GiB is outside the identity map, so the
            // read faults and the exception handler ends the VM.
            let v = unsafe { core::ptr::read_volatile(0x1_0000_0000 as *const u64) };
            panic!("read of unmapped memory returned {v:#x}")
        }
        "triple" => {
            ring3::load_empty_idt();
            // SAFETY: deliberately raises #BP with no IDT: the CPU shuts down (triple fault).
            unsafe { core::arch::asm!("int3") };
            panic!("triple fault did not happen")
        }
        "hang" => halt_forever(),
        other => {
            log::error!("unknown crash mode {other:?} (panic, pagefault, triple, hang)");
            power::exit(false)
        }
    }
}

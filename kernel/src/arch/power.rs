//! Leaving the VM: test exit codes through isa-debug-exit, ACPI soft-off, halting.
//!
//! QEMU's `isa-debug-exit` (iobase 0xf4, iosize 4) turns a write of `v` into exit status
//! `(v << 1) | 1`, so it cannot express 0. A clean power-off therefore uses ACPI S5 first (QEMU
//! exits 0) and falls back to the debug port when the machine has no ACPI.

use spin::Once;

use crate::acpi::{self, AcpiError, PowerOff};
use crate::arch::io::{IdentityMemory, outl, write_register};

/// The isa-debug-exit port.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Written to the debug port when the self tests pass: QEMU exits with 33.
pub const EXIT_SUCCESS: u32 = 0x10;
/// Written to the debug port on failure: QEMU exits with 35.
pub const EXIT_FAILURE: u32 = 0x11;

static POWER_OFF: Once<PowerOff> = Once::new();

/// Reads the ACPI tables and remembers how to power off.
pub fn init_acpi(rsdp_hint: Option<u64>) -> Result<(), AcpiError> {
    let rsdp = acpi::find_rsdp(&IdentityMemory, rsdp_hint)?;
    let method = acpi::power_off_method(&IdentityMemory, rsdp)?;
    log::debug!("ACPI: RSDP at {rsdp:#x}, power-off by {:x?}", method.writes);
    POWER_OFF.call_once(|| method);
    Ok(())
}

/// Writes `code` to isa-debug-exit; returns if no such device is present.
pub fn debug_exit(code: u32) {
    outl(DEBUG_EXIT_PORT, code);
}

/// Ends a test run: the debug-exit code for `success`, then (if still running) ACPI power-off
/// for success or a halt for failure, so a failure can never look like a clean exit.
pub fn exit(success: bool) -> ! {
    debug_exit(if success { EXIT_SUCCESS } else { EXIT_FAILURE });
    if success {
        power_off()
    }
    crate::arch::halt_forever()
}

/// Powers the machine off cleanly: ACPI S5, else the debug-exit port, else halts.
pub fn power_off() -> ! {
    if let Some(method) = POWER_OFF.get() {
        for w in &method.writes {
            write_register(w);
        }
        // S5 takes effect at once on QEMU; give slower platforms a moment.
        crate::arch::clock::delay_us(10_000);
        crate::arch::serial::emergency_write(format_args!("ACPI power-off did not take effect\n"));
    }
    debug_exit(0);
    crate::arch::halt_forever()
}

//! Leaving the VM: test exit codes through isa-debug-exit, ACPI soft-off, reset, halting.
//!
//! QEMU's `isa-debug-exit` (iobase 0xf4, iosize 4) turns a write of `v` into exit status
//! `(v << 1) | 1`, so it cannot express 0. A clean power-off therefore uses ACPI S5 first (QEMU
//! exits 0) and falls back to the debug port when the machine has no ACPI.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Once;

use crate::acpi::{self, AcpiError, PowerOff, RegisterWrite};
use crate::arch::io::{IdentityMemory, IoPorts, write_register};

/// The isa-debug-exit port.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Written to the debug port when the self tests pass: QEMU exits with 33.
pub const EXIT_SUCCESS: u32 = 0x10;
/// Written to the debug port on failure: QEMU exits with 35.
pub const EXIT_FAILURE: u32 = 0x11;

static POWER_OFF: Once<Result<PowerOff, AcpiError>> = Once::new();
static RESET: Once<Result<RegisterWrite, AcpiError>> = Once::new();
static RSDP_HINT: AtomicU64 = AtomicU64::new(0);

/// Remembers where the loader said the RSDP is (read at the first power-off).
pub fn set_rsdp_hint(rsdp: Option<u64>) {
    RSDP_HINT.store(rsdp.unwrap_or(0), Ordering::Relaxed);
}

/// Where the loader said the RSDP is, if it did.
pub fn rsdp_hint() -> Option<u64> {
    Some(RSDP_HINT.load(Ordering::Relaxed)).filter(|&h| h != 0)
}

/// How to power off, read from the ACPI tables on first use. Done lazily because finding the
/// RSDP scans the BIOS area, which costs milliseconds under nested KVM, and boot needs none of it.
pub fn acpi_power_off() -> Result<&'static PowerOff, AcpiError> {
    POWER_OFF
        .call_once(|| {
            let hint = Some(RSDP_HINT.load(Ordering::Relaxed)).filter(|&h| h != 0);
            let rsdp = acpi::find_rsdp(&IdentityMemory, hint)?;
            let method = acpi::power_off_method(&IdentityMemory, rsdp)?;
            log::debug!("ACPI: RSDP at {rsdp:#x}, power-off by {:x?}", method.writes);
            Ok(method)
        })
        .as_ref()
        .map_err(|e| *e)
}

/// How to reset, read from the FADT on first use (lazily, as for [`acpi_power_off`]).
pub fn acpi_reset() -> Result<&'static RegisterWrite, AcpiError> {
    RESET
        .call_once(|| {
            let hint = Some(RSDP_HINT.load(Ordering::Relaxed)).filter(|&h| h != 0);
            let rsdp = acpi::find_rsdp(&IdentityMemory, hint)?;
            let method = acpi::reset_method(&IdentityMemory, rsdp)?;
            log::debug!("ACPI: reset by {method:x?}");
            Ok(method)
        })
        .as_ref()
        .map_err(|e| *e)
}

/// The PCI reset control register of PC chipsets (PIIX, ICH).
const RESET_CONTROL_PORT: u16 = 0xcf9;
/// The 8042 keyboard controller's command port, and its "pulse the reset line" command.
const KBC_COMMAND_PORT: u16 = 0x64;
const KBC_PULSE_RESET: u8 = 0xfe;

/// Resets the machine: the FADT's reset register, else port 0xCF9, else the keyboard
/// controller; halts if none of them takes effect.
pub fn reboot() -> ! {
    match acpi_reset() {
        Ok(w) => {
            write_register(w);
            crate::arch::clock::delay_us(10_000);
            log::error!("ACPI reset did not take effect");
        }
        Err(e) => log::info!("ACPI: {e}; resetting through port 0xcf9"),
    }
    // As Linux does: set "system reset" first, then add "full reset" and "reset CPU".
    // SAFETY: 0xCF9 is the PC reset control register, and resetting is what this does.
    let reset = unsafe { IoPorts::new(RESET_CONTROL_PORT, 1) };
    reset.write8(0, 0x02);
    crate::arch::clock::delay_us(50);
    reset.write8(0, 0x06);
    crate::arch::clock::delay_us(10_000);
    log::warn!("port 0xcf9 reset did not take effect; trying the keyboard controller");
    // SAFETY: the 8042's command port; only this reset path uses it.
    unsafe { IoPorts::new(KBC_COMMAND_PORT, 1) }.write8(0, KBC_PULSE_RESET);
    crate::arch::clock::delay_us(10_000);
    log::error!("no reset method took effect; halting");
    crate::arch::halt_forever()
}

/// Writes `code` to isa-debug-exit; returns if no such device is present.
pub fn debug_exit(code: u32) {
    // SAFETY: isa-debug-exit's port (or nothing); only this function writes it.
    unsafe { IoPorts::new(DEBUG_EXIT_PORT, 4) }.write32(0, code);
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
    match acpi_power_off() {
        Ok(method) => {
            for w in &method.writes {
                write_register(w);
            }
            // S5 takes effect at once on QEMU; give slower platforms a moment.
            crate::arch::clock::delay_us(10_000);
            log::error!("ACPI power-off did not take effect");
        }
        Err(e) => log::info!("ACPI: {e}; powering off through the debug-exit port"),
    }
    debug_exit(0);
    crate::arch::halt_forever()
}

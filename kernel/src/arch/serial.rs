//! COM1 (the 16550 at 0x3f8): the kernel log and panic output.

use core::fmt::{self, Write};

use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{BaudRate, Config, Uart16550};

static COM1: Mutex<Option<Uart16550<PioBackend>>> = Mutex::new(None);

struct Out<'a>(&'a mut Uart16550<PioBackend>);

impl Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.send_bytes_exact(s.as_bytes());
        Ok(())
    }
}

/// Programs COM1; returns false when no UART answers (output is then dropped).
pub fn init() -> bool {
    // SAFETY: 0x3f8..=0x3ff is COM1 on PC-compatible machines, and only this module uses it.
    let Ok(mut uart) = (unsafe { Uart16550::new_port(0x3f8) }) else {
        return false;
    };
    let config = Config {
        baud_rate: BaudRate::Baud115200,
        ..Config::DEFAULT
    };
    if uart.init(config).is_err() {
        return false;
    }
    *COM1.lock() = Some(uart);
    true
}

/// Writes formatted text to COM1.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    if let Some(uart) = COM1.lock().as_mut() {
        let _ = Out(uart).write_fmt(args);
    }
}

/// Writes from a context that may have interrupted a writer (panic, exception): takes the
/// port even if it is locked. Output may interleave with the interrupted line.
pub fn emergency_write(args: fmt::Arguments<'_>) {
    if COM1.is_locked() {
        // SAFETY: single CPU; the holder was interrupted by this failure path and will never
        // run again, so taking the lock over cannot race with it.
        unsafe { COM1.force_unlock() };
    }
    write_fmt(args);
}

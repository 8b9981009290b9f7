//! COM1 (the 16550 at 0x3f8): the kernel log and panic output.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{BaudRate, Config, Uart16550};

static COM1: Mutex<Option<Uart16550<PioBackend>>> = Mutex::new(None);

/// A copy of the log for virtio console ports, once something drains it.
static MIRROR: Mutex<Option<VecDeque<u8>>> = Mutex::new(None);
/// The mirror keeps at most this much undrained text (the oldest goes first).
const MIRROR_LIMIT: usize = 16 * 1024;

struct Out<'a>(Option<&'a mut Uart16550<PioBackend>>);

impl Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(uart) = self.0.as_mut() {
            uart.send_bytes_exact(s.as_bytes());
        }
        // `try_lock`: a failure path writing while the mirror is held must not deadlock.
        if let Some(mut mirror) = MIRROR.try_lock()
            && let Some(ring) = mirror.as_mut()
        {
            let bytes = s.as_bytes();
            let keep = bytes.len().min(MIRROR_LIMIT);
            let overflow = (ring.len() + keep).saturating_sub(MIRROR_LIMIT);
            ring.drain(..overflow);
            ring.extend(&bytes[bytes.len() - keep..]);
        }
        Ok(())
    }
}

/// Starts copying the log for console ports (see [`take_mirror`]).
pub fn start_mirror() {
    *MIRROR.lock() = Some(VecDeque::new());
}

/// Takes the log text written since the last call.
pub fn take_mirror() -> Vec<u8> {
    MIRROR
        .lock()
        .as_mut()
        .map(|ring| ring.drain(..).collect())
        .unwrap_or_default()
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
    let _ = Out(COM1.lock().as_mut()).write_fmt(args);
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

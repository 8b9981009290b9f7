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

/// Collects a formatted message so that ring 3 hands it to the core in one call per 256
/// bytes rather than one per piece (each call is an entry into the core).
struct Out {
    buf: [u8; 256],
    len: usize,
}

impl Out {
    fn flush(&mut self) {
        let bytes = &self.buf[..self.len];
        if super::ring3::active() {
            super::ring3::serial_write(bytes);
        } else {
            cpl0_send(bytes);
        }
        self.len = 0;
    }
}

impl Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            if self.len == self.buf.len() {
                self.flush();
            }
            let n = rest.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&rest[..n]);
            self.len += n;
            rest = &rest[n..];
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

/// Sends `bytes` to the UART, at CPL0 (the port I/O needs it; in ring 3 the core calls this).
pub(super) fn cpl0_send(bytes: &[u8]) {
    if let Some(uart) = COM1.lock().as_mut() {
        uart.send_bytes_exact(bytes);
    }
}

/// Writes formatted text to COM1.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let mut out = Out {
        buf: [0; 256],
        len: 0,
    };
    let _ = out.write_fmt(args);
    if out.len > 0 {
        out.flush();
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

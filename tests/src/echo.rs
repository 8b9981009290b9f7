//! Host side of the echo agent: payloads, concurrent write-and-read, comparisons.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

/// A deterministic pseudo-random generator (xorshift64*), so a failing payload can be rebuilt.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// FNV-1a 64: a checksum for messages about large payloads.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Sends `data` on `stream` from a second thread while reading the same number of bytes back
/// on this one (the echo applies backpressure, so writing it all first could deadlock).
/// Returns what came back, or an error naming how far it got.
pub fn echo(stream: &UnixStream, data: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
    reader
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    thread::scope(|s| {
        let w = s.spawn(move || writer.write_all(data));
        let mut back = vec![0u8; data.len()];
        let mut got = 0;
        while got < back.len() {
            match reader.read(&mut back[got..]) {
                Ok(0) => return Err(format!("EOF after {got} of {} bytes", data.len())),
                Ok(n) => got += n,
                Err(e) => return Err(format!("{e} after {got} of {} bytes", data.len())),
            }
        }
        w.join()
            .map_err(|_| "writer panicked".to_string())?
            .map_err(|e| format!("write: {e}"))?;
        Ok(back)
    })
}

/// Checks an echo: same length and checksum, else says where they first differ.
pub fn check_echo(what: &str, sent: &[u8], back: &[u8]) -> Result<(), String> {
    if sent == back {
        return Ok(());
    }
    let at = sent.iter().zip(back).position(|(a, b)| a != b);
    Err(format!(
        "{what}: sent {} bytes (checksum {:#x}), got {} (checksum {:#x}); first difference at {at:?}",
        sent.len(),
        checksum(sent),
        back.len(),
        checksum(back)
    ))
}

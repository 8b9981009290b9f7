//! A fake [`InterruptSink`]: what a VMM's irqfds would receive, recorded or counted.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::virtio::InterruptSink;

/// Records (or only counts) the MSIs and INTx level changes a transport delivers.
#[derive(Debug)]
pub struct RecordingSink {
    /// Keep every MSI and level change, not only the counts.
    record: bool,
    msis: Mutex<Vec<(u64, u32)>>,
    intx: Mutex<Vec<bool>>,
    msi_count: AtomicU64,
    intx_raised: AtomicU64,
    intx_level: AtomicBool,
}

impl Default for RecordingSink {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingSink {
    /// A sink that records every interrupt, for [`RecordingSink::take_msis`] and
    /// [`RecordingSink::take_intx`].
    pub fn new() -> Self {
        Self::with_recording(true)
    }

    /// A sink that only counts (for long runs: benchmarks, fuzzing), so it does not grow.
    pub fn counting() -> Self {
        Self::with_recording(false)
    }

    fn with_recording(record: bool) -> Self {
        RecordingSink {
            record,
            msis: Mutex::new(Vec::new()),
            intx: Mutex::new(Vec::new()),
            msi_count: AtomicU64::new(0),
            intx_raised: AtomicU64::new(0),
            intx_level: AtomicBool::new(false),
        }
    }

    /// The `(address, data)` of every MSI since the last call (empty when only counting).
    pub fn take_msis(&self) -> Vec<(u64, u32)> {
        std::mem::take(&mut *lock(&self.msis))
    }

    /// Every INTx level change since the last call (empty when only counting).
    pub fn take_intx(&self) -> Vec<bool> {
        std::mem::take(&mut *lock(&self.intx))
    }

    /// The INTx line's level now.
    pub fn intx_level(&self) -> bool {
        self.intx_level.load(Ordering::Relaxed)
    }

    /// MSIs delivered since the sink was made.
    pub fn msi_count(&self) -> u64 {
        self.msi_count.load(Ordering::Relaxed)
    }

    /// Times INTx was raised since the sink was made.
    pub fn intx_raised(&self) -> u64 {
        self.intx_raised.load(Ordering::Relaxed)
    }
}

/// A poisoned lock only means another test thread panicked; the data is still good.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl InterruptSink for RecordingSink {
    fn msi(&self, address: u64, data: u32) {
        self.msi_count.fetch_add(1, Ordering::Relaxed);
        if self.record {
            lock(&self.msis).push((address, data));
        }
    }

    fn set_intx(&self, level: bool) {
        if level {
            self.intx_raised.fetch_add(1, Ordering::Relaxed);
        }
        self.intx_level.store(level, Ordering::Relaxed);
        if self.record {
            lock(&self.intx).push(level);
        }
    }
}

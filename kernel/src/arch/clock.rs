//! The monotonic clock: the TSC, calibrated against the PIT (channel 2, gated by port 0x61).
//!
//! Time zero is the TSC the bootloader read at the PVH entry point, so [`now_ns`] is "time
//! since entry", which is what boot-time figures want.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::io::IoPorts;

/// The 8254 PIT: channel 0 data at +0, mode/command at +3.
fn pit() -> IoPorts {
    // SAFETY: 0x40..=0x43 are the PIT's; only the clock calibration here drives it.
    unsafe { IoPorts::new(0x40, 4) }
}

/// PIT input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// Calibration window: 1 ms each keeps boot fast and the error near 0.1%.
const CALIBRATION_TICKS: u16 = 1193;
/// Calibration windows; their median survives a window spoiled by a descheduled vCPU.
const CALIBRATION_WINDOWS: usize = 3;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Why calibration failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// Channel 2's output never rose: there is no PIT on this machine.
    #[error("the PIT did not count down (no PIT?)")]
    NoPit,
    /// The measured frequency is outside 10 MHz..100 GHz.
    #[error("implausible TSC frequency {0} Hz")]
    Implausible(u64),
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects and is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Reads PIT channel 0's current count (latched, so both bytes belong together).
fn pit_count() -> u16 {
    let pit = pit();
    pit.write8(3, 0b0000_0000); // latch channel 0
    let lo = pit.read8(0);
    let hi = pit.read8(0);
    u16::from_le_bytes([lo, hi])
}

/// One PIT window: how many TSC ticks passed while PIT channel 0 counted `pit` ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PitSample {
    /// TSC ticks between the window's first and last PIT reads.
    pub tsc: u64,
    /// PIT ticks actually elapsed (at least the requested window, often a little more).
    pub pit: u64,
}

impl PitSample {
    /// The TSC frequency this window implies.
    pub fn hz(&self) -> u64 {
        (u128::from(self.tsc) * u128::from(PIT_HZ) / u128::from(self.pit.max(1))) as u64
    }
}

/// Reads the PIT count with the TSC taken right after it.
fn pit_read() -> (u16, u64) {
    let c = pit_count();
    (c, rdtsc())
}

/// Counts TSC ticks while PIT channel 0 counts down at least `ticks` (at 1.193182 MHz).
///
/// Channel 0 with latched reads works on every PC machine, microvm included; channel 2's gate
/// at port 0x61 belongs to the PC speaker, which microvm does not have. Channel 0 runs as a
/// rate generator reloading at 65536. Interrupts are off and the 8259s masked, so its IRQ 0 goes
/// nowhere.
///
/// The PIT ticks are counted as they really elapsed, poll by poll, not assumed to be `ticks`:
/// a vCPU descheduled by a busy host (QEMU TCG on a loaded machine) overshoots the window by
/// milliseconds, and both clocks see that overshoot. What remains is the few instructions
/// between a PIT read and the TSC read after it.
pub fn pit_measure(ticks: u16) -> Result<PitSample, ClockError> {
    let pit = pit();
    pit.write8(3, 0b0011_0100); // channel 0, lobyte/hibyte, mode 2, binary
    pit.write8(0, 0);
    pit.write8(0, 0); // reload value 0 means 65536
    // Wait for the first decrement, so the window starts on a tick edge.
    // Give up after the window's length at a 50 GHz TSC: about 20 windows on a 2.5 GHz CPU.
    let budget = u64::from(ticks.max(1000)) * 50_000_000 / (PIT_HZ / 1000);
    let (first, begin) = pit_read();
    let (mut last, t0) = loop {
        let (c, t) = pit_read();
        if c != first {
            break (c, t);
        }
        if t - begin > budget {
            return Err(ClockError::NoPit);
        }
    };
    let mut elapsed = 0u64;
    loop {
        let (c, t) = pit_read();
        // Consecutive polls are far less than one 55 ms PIT period apart unless the vCPU was
        // descheduled that long; the median over several windows discards such a window.
        elapsed += u64::from(last.wrapping_sub(c));
        last = c;
        if elapsed >= u64::from(ticks) {
            return Ok(PitSample {
                tsc: t - t0,
                pit: elapsed,
            });
        }
        if t - t0 > budget {
            return Err(ClockError::NoPit);
        }
    }
}

/// The median TSC frequency over `N` PIT windows of `ticks` each (N odd).
pub fn pit_hz_median<const N: usize>(ticks: u16) -> Result<u64, ClockError> {
    let mut rates = [0u64; N];
    for rate in rates.iter_mut() {
        *rate = pit_measure(ticks)?.hz();
    }
    rates.sort_unstable();
    Ok(rates[N / 2])
}

/// Where the TSC frequency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// KVM's paravirtual clock (exact, instant).
    KvmClock,
    /// Counted against PIT channel 0: the median of three 1 ms windows.
    Pit,
}

impl core::fmt::Display for Source {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Source::KvmClock => "kvmclock",
            Source::Pit => "PIT calibration",
        })
    }
}

/// KVM's `pvclock_vcpu_time_info`.
#[repr(C, align(64))]
#[derive(Default)]
struct PvClock {
    version: u32,
    pad0: u32,
    tsc_timestamp: u64,
    system_time: u64,
    tsc_to_system_mul: u32,
    tsc_shift: i8,
    flags: u8,
    pad: [u8; 2],
}

const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
const KVM_FEATURE_CLOCKSOURCE2: u32 = 1 << 3;

/// The TSC frequency from kvmclock, when KVM offers it.
fn kvmclock_hz() -> Option<u64> {
    use core::arch::x86_64::__cpuid;
    use x86_64::registers::model_specific::Msr;
    if !crate::arch::under_kvm() || __cpuid(0x4000_0001).eax & KVM_FEATURE_CLOCKSOURCE2 == 0 {
        return None;
    }
    let mut pv = PvClock::default();
    let addr = &raw mut pv;
    let mut msr = Msr::new(MSR_KVM_SYSTEM_TIME_NEW);
    // The MSR is switched off again below, before `pv` goes out of scope, so the host never
    // writes to this stack memory afterwards.
    // SAFETY: the stack is identity-mapped, so `addr` is `pv`'s physical address.
    unsafe { msr.write(addr as u64 | 1) };
    // SAFETY: `addr` points at `pv`, live and aligned; volatile because the host writes it.
    let (version, mul, shift) = unsafe {
        (
            (&raw const (*addr).version).read_volatile(),
            (&raw const (*addr).tsc_to_system_mul).read_volatile(),
            (&raw const (*addr).tsc_shift).read_volatile(),
        )
    };
    // SAFETY: writing 0 disables the clock structure; nothing else depends on it.
    unsafe { msr.write(0) };
    if version & 1 != 0 || mul == 0 {
        return None;
    }
    // ns = ((ticks << shift) * mul) >> 32, so hz = 1e9 * 2^32 / (mul * 2^shift).
    let num = 1_000_000_000u128 << 32;
    let hz = if shift >= 0 {
        num / (u128::from(mul) << shift)
    } else {
        (num << shift.unsigned_abs()) / u128::from(mul)
    };
    u64::try_from(hz).ok()
}

/// Finds the TSC frequency (kvmclock when available, else the PIT) and starts the clock.
pub fn calibrate() -> Result<(u64, Source), ClockError> {
    let (hz, source) = match kvmclock_hz() {
        Some(hz) => (hz, Source::KvmClock),
        None => {
            let hz = pit_hz_median::<CALIBRATION_WINDOWS>(CALIBRATION_TICKS)?;
            (hz, Source::Pit)
        }
    };
    if !(10_000_000..=100_000_000_000).contains(&hz) {
        return Err(ClockError::Implausible(hz));
    }
    TSC_HZ.store(hz, Ordering::Relaxed);
    Ok((hz, source))
}

/// The calibrated TSC frequency, 0 before calibration.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Converts a TSC delta to nanoseconds (0 before calibration).
pub fn ticks_to_ns(ticks: u64) -> u64 {
    match tsc_hz() {
        0 => 0,
        hz => (u128::from(ticks) * 1_000_000_000 / u128::from(hz)) as u64,
    }
}

/// Nanoseconds since the PVH entry point.
pub fn now_ns() -> u64 {
    ticks_to_ns(rdtsc().saturating_sub(bootloader::entry::entry_tsc()))
}

/// Busy-waits for `us` microseconds (roughly, when the clock could not be calibrated: a
/// wait on a clock that reads 0 would never end).
pub fn delay_us(us: u64) {
    if tsc_hz() == 0 {
        for _ in 0..us.saturating_mul(1000) {
            core::hint::spin_loop();
        }
        return;
    }
    let end = now_ns() + us * 1000;
    while now_ns() < end {
        core::hint::spin_loop();
    }
}

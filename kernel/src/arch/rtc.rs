//! The CMOS real-time clock at ports 0x70 (index) and 0x71 (data), read on demand.
//!
//! A read waits for the update-in-progress flag to clear (the RTC then stays still for at
//! least 244 us), takes every date register, and takes them again: two equal snapshots are
//! one consistent time. Machines without an RTC (the bundled VMM) answer 0xFF everywhere,
//! which [`crate::rtc::decode`] reports as [`RtcError::Absent`].

use crate::arch::clock;
use crate::arch::io::IoPorts;
use crate::rtc::{RtcClock, RtcError, RtcRegisters, RtcSource};

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;
/// Status register A; bit 7 is "update in progress".
const STATUS_A: u8 = 0x0a;
const STATUS_A_UIP: u8 = 1 << 7;
const STATUS_B: u8 = 0x0b;
/// The century register on PCs (the FADT's CENTURY field; QEMU uses this one).
const CENTURY: u8 = 0x32;
/// Snapshot pairs tried before giving up.
const ATTEMPTS: usize = 8;
/// Status reads while waiting for an update to end (an update lasts about 2 ms at most).
const UIP_POLLS: usize = 20_000;

/// The PC's CMOS RTC.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cmos;

/// The wall clock the kernel's agents use.
pub fn wall_clock() -> RtcClock<Cmos> {
    RtcClock::new(Cmos)
}

fn register(index: u8) -> u8 {
    // Bit 7 of the index port masks NMIs; leave it clear.
    // SAFETY: the CMOS index and data ports; only this module drives the RTC.
    let cmos = unsafe { IoPorts::new(INDEX, 2) };
    cmos.write8(0, index & 0x7f);
    cmos.read8(DATA - INDEX)
}

fn snapshot() -> RtcRegisters {
    RtcRegisters {
        seconds: register(0x00),
        minutes: register(0x02),
        hours: register(0x04),
        day: register(0x07),
        month: register(0x08),
        year: register(0x09),
        century: Some(register(CENTURY)),
        status_b: register(STATUS_B),
    }
}

/// Waits (bounded) until no update is in progress; false if one never ends.
fn wait_for_update_end() -> bool {
    (0..UIP_POLLS).any(|_| register(STATUS_A) & STATUS_A_UIP == 0)
}

impl RtcSource for Cmos {
    fn read(&self) -> Result<(i64, u64), RtcError> {
        if clock::tsc_hz() == 0 {
            return Err(RtcError::NoMonotonicClock);
        }
        for _ in 0..ATTEMPTS {
            let first = snapshot();
            if first.absent() {
                return Err(RtcError::Absent);
            }
            if !wait_for_update_end() {
                return Err(RtcError::Unstable);
            }
            let at = clock::now_ns();
            let again = snapshot();
            if first == again {
                return crate::rtc::decode(&again).map(|seconds| (seconds, at));
            }
        }
        Err(RtcError::Unstable)
    }
}

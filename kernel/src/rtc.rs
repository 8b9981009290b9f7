//! Wall-clock time from the CMOS real-time clock (MC146818), with sub-second resolution
//! from the monotonic clock.
//!
//! The RTC counts whole seconds, in BCD or binary and in 12- or 24-hour form as its status
//! register B says. [`decode`] turns a snapshot of its date registers into Unix seconds; the
//! port I/O that takes the snapshot lives in `arch::rtc`.
//!
//! [`RtcClock`] reads the RTC on every request and combines it with the monotonic clock:
//! each reading `s` taken at monotonic time `m` says the Unix time at `m` is at least
//! `s * 10^9` ns, so the clock keeps `offset = max(s * 10^9 - m)` over all readings and
//! answers `m + offset`. The first answer is late by up to a second (the part of the second
//! that had passed when the RTC was read); later readings that catch the seconds boundary
//! close that gap. The answer never goes backwards.

use core::cell::Cell;

/// Register B bit: the date registers hold binary values (else BCD).
pub const STATUS_B_BINARY: u8 = 1 << 2;
/// Register B bit: hours count 0..=23 (else 1..=12 with bit 7 meaning PM).
pub const STATUS_B_24_HOUR: u8 = 1 << 1;

/// Why no time could be had from the RTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcError {
    /// Every register read 0xFF: nothing answers at the RTC's ports.
    #[error("no real-time clock answers")]
    Absent,
    /// A register holds a value no date has.
    #[error("the real-time clock holds an impossible {0}")]
    Invalid(&'static str),
    /// The RTC kept updating while it was being read.
    #[error("the real-time clock kept changing while being read")]
    Unstable,
    /// The monotonic clock is not running (its calibration failed).
    #[error("the monotonic clock is not running")]
    NoMonotonicClock,
}

/// One snapshot of the RTC's registers, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcRegisters {
    /// Register 0x00.
    pub seconds: u8,
    /// Register 0x02.
    pub minutes: u8,
    /// Register 0x04 (bit 7 is PM in 12-hour mode).
    pub hours: u8,
    /// Register 0x07, day of the month.
    pub day: u8,
    /// Register 0x08.
    pub month: u8,
    /// Register 0x09, year within the century.
    pub year: u8,
    /// The century register (0x32 on PCs and QEMU), when the machine has one.
    pub century: Option<u8>,
    /// Status register B (data mode, hour mode).
    pub status_b: u8,
}

impl RtcRegisters {
    /// True when every register reads 0xFF (an empty I/O port).
    pub fn absent(&self) -> bool {
        [
            self.seconds,
            self.minutes,
            self.hours,
            self.day,
            self.month,
            self.year,
            self.status_b,
        ]
        .iter()
        .all(|&b| b == 0xff)
    }
}

/// A register value in the RTC's data mode, or `None` for a malformed BCD byte.
fn value(raw: u8, binary: bool) -> Option<u8> {
    if binary {
        return Some(raw);
    }
    let (hi, lo) = (raw >> 4, raw & 0x0f);
    (hi <= 9 && lo <= 9).then_some(hi * 10 + lo)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (month 1..=12, day 1..=31).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    // Count from 1 March of year 0, so the leap day falls at the end of each year.
    let (y, m) = if month <= 2 {
        (year - 1, i64::from(month) + 9)
    } else {
        (year, i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The Unix time (seconds) a snapshot shows. Years are 2000..=2099 unless the century
/// register holds a plausible century (19..=99).
pub fn decode(r: &RtcRegisters) -> Result<i64, RtcError> {
    if r.absent() {
        return Err(RtcError::Absent);
    }
    let binary = r.status_b & STATUS_B_BINARY != 0;
    let field = |raw: u8, name: &'static str, range: core::ops::RangeInclusive<u8>| {
        value(raw, binary)
            .filter(|v| range.contains(v))
            .ok_or(RtcError::Invalid(name))
    };
    let seconds = field(r.seconds, "second", 0..=59)?;
    let minutes = field(r.minutes, "minute", 0..=59)?;
    let hours = if r.status_b & STATUS_B_24_HOUR != 0 {
        field(r.hours, "hour", 0..=23)?
    } else {
        let pm = r.hours & 0x80 != 0;
        let h = field(r.hours & 0x7f, "hour", 1..=12)? % 12;
        if pm { h + 12 } else { h }
    };
    let year_in_century = field(r.year, "year", 0..=99)?;
    let century = r
        .century
        .and_then(|c| value(c, binary))
        .filter(|c| (19..=99).contains(c))
        .unwrap_or(20);
    let year = i64::from(century) * 100 + i64::from(year_in_century);
    let month = field(r.month, "month", 1..=12)?;
    let day = field(r.day, "day", 1..=days_in_month(year, month))?;
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + i64::from(hours) * 3600 + i64::from(minutes) * 60 + i64::from(seconds))
}

/// Somewhere to read the RTC.
pub trait RtcSource {
    /// The RTC's time in Unix seconds, and the monotonic clock (ns) when it was read.
    fn read(&self) -> Result<(i64, u64), RtcError>;
}

/// Wall-clock time, for those who answer "what time is it".
pub trait WallTime {
    /// Nanoseconds since 1970-01-01 00:00 UTC.
    fn unix_ns(&self) -> Result<i64, RtcError>;
}

/// The RTC refined by the monotonic clock (see the module docs).
#[derive(Debug)]
pub struct RtcClock<S> {
    source: S,
    offset_ns: Cell<Option<i64>>,
}

impl<S: RtcSource> RtcClock<S> {
    /// A clock reading `source`.
    pub fn new(source: S) -> Self {
        Self {
            source,
            offset_ns: Cell::new(None),
        }
    }
}

impl<S: RtcSource> WallTime for RtcClock<S> {
    fn unix_ns(&self) -> Result<i64, RtcError> {
        let (seconds, mono) = self.source.read()?;
        let mono = i64::try_from(mono).map_err(|_| RtcError::Invalid("monotonic time"))?;
        let lower = seconds
            .checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_sub(mono))
            .ok_or(RtcError::Invalid("year"))?;
        let offset = self.offset_ns.get().map_or(lower, |o| o.max(lower));
        self.offset_ns.set(Some(offset));
        mono.checked_add(offset).ok_or(RtcError::Invalid("year"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-02-29 23:59:58 in BCD, 24-hour mode, century register present.
    fn leap_day_bcd() -> RtcRegisters {
        RtcRegisters {
            seconds: 0x58,
            minutes: 0x59,
            hours: 0x23,
            day: 0x29,
            month: 0x02,
            year: 0x24,
            century: Some(0x20),
            status_b: STATUS_B_24_HOUR,
        }
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }

    #[test]
    fn bcd_24_hour() {
        // date -u -d '2024-02-29 23:59:58' +%s
        assert_eq!(decode(&leap_day_bcd()), Ok(1_709_251_198));
    }

    #[test]
    fn binary_12_hour_without_century() {
        let r = RtcRegisters {
            seconds: 5,
            minutes: 30,
            hours: 0x80 | 12, // 12 PM is noon
            day: 1,
            month: 7,
            year: 25,
            century: None,
            status_b: STATUS_B_BINARY,
        };
        // 2025-07-01 12:30:05 UTC
        assert_eq!(decode(&r), Ok(1_751_373_005));
        // 12 AM is midnight, 1 PM is 13:00.
        let midnight = RtcRegisters { hours: 12, ..r };
        assert_eq!(decode(&midnight), Ok(1_751_373_005 - 12 * 3600));
        let one_pm = RtcRegisters {
            hours: 0x80 | 1,
            ..r
        };
        assert_eq!(decode(&one_pm), Ok(1_751_373_005 + 3600));
    }

    #[test]
    fn implausible_century_falls_back_to_2000s() {
        let r = RtcRegisters {
            century: Some(0x00),
            ..leap_day_bcd()
        };
        assert_eq!(decode(&r), Ok(1_709_251_198));
        let r = RtcRegisters {
            century: Some(0x19),
            year: 0x99,
            month: 0x12,
            day: 0x31,
            ..leap_day_bcd()
        };
        // 1999-12-31 23:59:58
        assert_eq!(decode(&r), Ok(946_684_798));
    }

    #[test]
    fn absent_and_impossible_values() {
        let absent = RtcRegisters {
            seconds: 0xff,
            minutes: 0xff,
            hours: 0xff,
            day: 0xff,
            month: 0xff,
            year: 0xff,
            century: Some(0xff),
            status_b: 0xff,
        };
        assert_eq!(decode(&absent), Err(RtcError::Absent));
        let bad = |r: RtcRegisters| decode(&r).unwrap_err();
        let ok = leap_day_bcd();
        assert_eq!(
            bad(RtcRegisters {
                seconds: 0x1a,
                ..ok
            }),
            RtcError::Invalid("second")
        );
        assert_eq!(
            bad(RtcRegisters { hours: 0x24, ..ok }),
            RtcError::Invalid("hour")
        );
        assert_eq!(
            bad(RtcRegisters { month: 0x13, ..ok }),
            RtcError::Invalid("month")
        );
        // 2023 is not a leap year; February has no 29th.
        assert_eq!(
            bad(RtcRegisters { year: 0x23, ..ok }),
            RtcError::Invalid("day")
        );
        assert_eq!(bad(RtcRegisters { day: 0, ..ok }), RtcError::Invalid("day"));
        // 12-hour mode has no hour 0.
        assert_eq!(
            bad(RtcRegisters {
                hours: 0,
                status_b: 0,
                ..ok
            }),
            RtcError::Invalid("hour")
        );
    }

    /// A fake RTC: a true Unix time in ns, advanced by hand; reports whole seconds.
    struct Fake {
        true_ns: Cell<i64>,
        boot_ns: i64,
        fail: Cell<bool>,
    }

    impl RtcSource for &Fake {
        fn read(&self) -> Result<(i64, u64), RtcError> {
            if self.fail.get() {
                return Err(RtcError::Absent);
            }
            let t = self.true_ns.get();
            Ok((t / 1_000_000_000, (t - self.boot_ns) as u64))
        }
    }

    #[test]
    fn clock_converges_on_the_seconds_boundary_and_never_goes_back() {
        let boot = 1_700_000_000_700_000_000; // .7 s into a second
        let fake = Fake {
            true_ns: Cell::new(boot + 100),
            boot_ns: boot,
            fail: Cell::new(false),
        };
        let clock = RtcClock::new(&fake);
        // First reading: the whole second only, up to a second late.
        let first = clock.unix_ns().unwrap();
        assert_eq!(first, 1_700_000_000_000_000_000);
        let mut last = first;
        // Readings every 50 ms: once one lands just past the boundary the error is < 50 ms.
        for _ in 0..40 {
            fake.true_ns.set(fake.true_ns.get() + 50_000_000);
            let now = clock.unix_ns().unwrap();
            assert!(now >= last, "time went backwards");
            assert!(now <= fake.true_ns.get(), "time ran ahead");
            last = now;
        }
        assert!(fake.true_ns.get() - last < 50_000_000);
        fake.fail.set(true);
        assert_eq!(clock.unix_ns(), Err(RtcError::Absent));
    }
}

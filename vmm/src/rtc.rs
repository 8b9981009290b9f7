//! A read-only CMOS real-time clock (MC146818 registers at ports 0x70/0x71), so the guest can
//! tell the time of day (the guest agent's `guest-get-time`).
//!
//! The clock reads the host's time at each access, in binary, 24-hour mode (status B = 0x06),
//! and never reports an update in progress. The guest cannot set it: writes to time registers
//! are ignored, as are the alarm, the periodic interrupt and the NVRAM. vm-superio has an RTC
//! for Arm (PL031) only, hence this.

use std::time::{SystemTime, UNIX_EPOCH};

/// The index port.
pub const INDEX: u16 = 0x70;
/// The data port.
pub const DATA: u16 = 0x71;

/// Status register B: 24-hour clock (bit 1), binary values (bit 2).
const STATUS_B: u8 = 0x06;
/// Status register D: the clock's battery is good (bit 7).
const STATUS_D: u8 = 0x80;
/// Status register A: the default divider, no update in progress.
const STATUS_A: u8 = 0x26;

/// The CMOS clock's state: the selected register.
#[derive(Debug, Default)]
pub struct Rtc {
    index: u8,
}

/// A civil UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Full year.
    pub year: i64,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
    /// 1 = Sunday ... 7 = Saturday.
    pub weekday: u8,
}

/// Seconds since the epoch to a civil UTC time (Howard Hinnant's days-to-civil algorithm).
pub fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u8,
        minute: (rem % 3600 / 60) as u8,
        second: (rem % 60) as u8,
        // 1970-01-01 was a Thursday (5 in 1 = Sunday numbering).
        weekday: ((days + 4).rem_euclid(7) + 1) as u8,
    }
}

impl Rtc {
    /// A clock with register 0 selected.
    pub fn new() -> Self {
        Rtc::default()
    }

    /// A write to the index port (bit 7 is the NMI mask, ignored).
    pub fn select(&mut self, value: u8) {
        self.index = value & 0x7f;
    }

    /// A read of the data port, at the host's current time.
    pub fn read(&self) -> u8 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.read_at(secs)
    }

    /// A read of the data port at `secs` since the epoch.
    pub fn read_at(&self, secs: i64) -> u8 {
        let t = civil(secs);
        match self.index {
            0x00 => t.second,
            0x02 => t.minute,
            0x04 => t.hour,
            0x06 => t.weekday,
            0x07 => t.day,
            0x08 => t.month,
            0x09 => t.year.rem_euclid(100) as u8,
            0x0a => STATUS_A,
            0x0b => STATUS_B,
            0x0d => STATUS_D,
            0x32 => t.year.div_euclid(100).clamp(0, 99) as u8,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        let t = civil(0);
        assert_eq!((t.year, t.month, t.day, t.weekday), (1970, 1, 1, 5));
        // 2026-11-21 13:45:07 UTC, a Saturday.
        let t = civil(1_795_268_707);
        assert_eq!(
            (
                t.year, t.month, t.day, t.hour, t.minute, t.second, t.weekday
            ),
            (2026, 11, 21, 13, 45, 7, 7)
        );
        let t = civil(951_782_400); // 2000-02-29, a Tuesday.
        assert_eq!((t.year, t.month, t.day, t.weekday), (2000, 2, 29, 3));
    }

    #[test]
    fn registers() {
        let mut rtc = Rtc::new();
        let at = 1_795_268_707;
        let mut reg = |i: u8| {
            rtc.select(i | 0x80);
            rtc.read_at(at)
        };
        assert_eq!(
            [reg(0), reg(2), reg(4), reg(7), reg(8), reg(9), reg(0x32)],
            [7, 45, 13, 21, 11, 26, 20]
        );
        assert_eq!(reg(0x0a) & 0x80, 0, "never an update in progress");
        assert_eq!(reg(0x0b), STATUS_B);
        assert_eq!(reg(0x40), 0);
    }
}

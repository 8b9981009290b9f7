//! DOS dates and times to Unix time, as Linux's `fat_time_fat2unix` converts them: no
//! field is checked (a month of 0 counts as January, a day of 0 as the 1st, hours up to
//! 31 and minutes up to 63 are added as they are), and the result is UTC, since the
//! appliance's kernel has no timezone set (`sys_tz` is 0).

/// Days before the 1st of each month in a non-leap year, indexed by month 0 to 15.
const DAYS_BEFORE: [i64; 16] = [
    0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 0, 0, 0,
];

/// Seconds since the epoch for DOS `date` and `time`.
pub fn to_unix(date: u16, time: u16) -> i64 {
    let year = (date >> 9) as i64;
    let month = (((date >> 5) & 0xF) as usize).max(1);
    let day = ((date & 0x1F) as i64).max(1) - 1;
    let mut leap_days = (year + 3) / 4;
    // 2100 (year 120) is not a leap year.
    if year > 120 {
        leap_days -= 1;
    }
    if year % 4 == 0 && year != 120 && month > 2 {
        leap_days += 1;
    }
    let secs =
        ((time & 0x1F) as i64) * 2 + ((time >> 5) & 0x3F) as i64 * 60 + (time >> 11) as i64 * 3600;
    // 1980-01-01 is 3652 days after 1970-01-01.
    secs + (year * 365 + leap_days + DAYS_BEFORE[month] + day + 3652) * 86400
}

#[cfg(test)]
mod tests {
    use super::to_unix;

    fn dos(y: u16, mo: u16, d: u16, h: u16, mi: u16, s: u16) -> (u16, u16) {
        ((y - 1980) << 9 | mo << 5 | d, h << 11 | mi << 5 | (s / 2))
    }

    #[test]
    fn dates_convert_as_linux_converts_them() {
        let (d, t) = dos(1980, 1, 1, 0, 0, 0);
        assert_eq!(to_unix(d, t), 315_532_800);
        let (d, t) = dos(2023, 11, 14, 22, 13, 20);
        assert_eq!(to_unix(d, t), 1_700_000_000);
        let (d, t) = dos(2024, 2, 29, 12, 0, 0);
        assert_eq!(to_unix(d, t), 1_709_208_000);
        let (d, t) = dos(2100, 3, 1, 0, 0, 0);
        assert_eq!(to_unix(d, t), 4_107_542_400);
        // Zero fields and out-of-range ones, without a panic.
        assert_eq!(to_unix(0, 0), 315_532_800);
        assert!(to_unix(0xFFFF, 0xFFFF) > 0);
    }
}

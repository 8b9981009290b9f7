//! `ls -la` as the stock appliance's GNU coreutils prints it, for libguestfs's `ll`: the
//! daemon runs `ls -la /sysroot/PATH` with no locale (C), no time zone (UTC) and no
//! `/etc/passwd` or `/etc/group` (owners and groups print as numbers).
//!
//! The rules reproduced (coreutils 9.1, `ls.c`'s long format): entries sorted by name bytes;
//! a `total` line of the 512-byte blocks of every entry, in KiB rounded up; columns padded
//! to the widest value (link counts, owner and group numbers and sizes right-aligned,
//! `major, minor` for device nodes); the ACL or security-context indicator (`+`, `.`) after
//! the mode, with a space for the others when any entry has one; the modification time as
//! `Mon dd HH:MM` within the six months before now, else `Mon dd  YYYY`; ` -> target` after
//! a symlink's name. Names are printed as they are (ls quotes nothing when writing to a
//! pipe).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::fs::{FullStat, Time, major_minor};

/// One line of the listing.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name as printed.
    pub name: String,
    /// lstat(2) of it.
    pub stat: FullStat,
    /// A symlink's target.
    pub link: Option<String>,
    /// `+` (an ACL), `.` (only a security context) or none.
    pub indicator: Option<char>,
}

/// Half of the average Gregorian year, in seconds: what ls calls six months.
const SIX_MONTHS: i64 = 31_556_952 / 2;

/// The mode string: type letter and the nine permission letters with setuid, setgid and
/// sticky folded in.
pub fn mode_string(mode: u32) -> String {
    let t = match mode & 0o170000 {
        0o140000 => 's',
        0o120000 => 'l',
        0o100000 => '-',
        0o060000 => 'b',
        0o040000 => 'd',
        0o020000 => 'c',
        0o010000 => 'p',
        _ => '?',
    };
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let special = |x: u32, s: u32, on: char, off: char| match (mode & x != 0, mode & s != 0) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => 'x',
        (false, false) => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

/// (year, month 1-12, day) of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The date column for modification time `t` as ls prints it at time `now` (UTC, C locale).
pub fn date(t: Time, now: Time) -> String {
    let (days, secs) = (t.sec.div_euclid(86_400), t.sec.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let before = |a: Time, b: Time| (a.sec, a.nsec) < (b.sec, b.nsec);
    let six_months_ago = Time {
        sec: now.sec - SIX_MONTHS,
        nsec: now.nsec,
    };
    let month = MONTHS[(m - 1) as usize];
    if before(six_months_ago, t) && before(t, now) {
        format!("{month} {d:>2} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{month} {d:>2}  {y}")
    }
}

fn is_device(st: &FullStat) -> bool {
    matches!(st.mode & 0o170000, 0o020000 | 0o060000)
}

/// The listing of `entries` (in any order; `with_total` for a directory's) at time `now`.
pub fn ls_la(mut entries: Vec<Entry>, with_total: bool, now: Time) -> String {
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let digits = |n: u64| format!("{n}").len();
    let mut nlink_w = 0;
    let mut uid_w = 0;
    let mut gid_w = 0;
    let mut size_w = 0;
    let mut major_w = 0;
    let mut minor_w = 0;
    let mut blocks = 0u64;
    let any_indicator = entries.iter().any(|e| e.indicator.is_some());
    for e in &entries {
        let s = &e.stat;
        blocks = blocks.saturating_add(s.blocks);
        nlink_w = nlink_w.max(digits(s.nlink));
        uid_w = uid_w.max(digits(s.uid as u64));
        gid_w = gid_w.max(digits(s.gid as u64));
        if is_device(s) {
            let (ma, mi) = major_minor(s.rdev);
            major_w = major_w.max(digits(ma));
            minor_w = minor_w.max(digits(mi));
            size_w = size_w.max(major_w + 2 + minor_w);
        } else {
            size_w = size_w.max(digits(s.size));
        }
    }
    let mut out = String::new();
    if with_total {
        out.push_str(&format!("total {}\n", blocks.div_ceil(2)));
    }
    for e in &entries {
        let s = &e.stat;
        out.push_str(&mode_string(s.mode));
        if any_indicator {
            out.push(e.indicator.unwrap_or(' '));
        }
        out.push_str(&format!(
            " {:>nlink_w$} {:>uid_w$} {:>gid_w$} ",
            s.nlink, s.uid, s.gid
        ));
        if is_device(s) {
            let (ma, mi) = major_minor(s.rdev);
            let blanks = size_w.saturating_sub(major_w + 2 + minor_w);
            out.push_str(&format!("{ma:>w$}, {mi:>minor_w$} ", w = major_w + blanks));
        } else {
            out.push_str(&format!("{:>size_w$} ", s.size));
        }
        out.push_str(&date(s.mtime, now));
        out.push(' ');
        out.push_str(&e.name);
        if let Some(t) = &e.link {
            out.push_str(" -> ");
            out.push_str(t);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_dates_as_ls_prints_them() {
        assert_eq!(mode_string(0o104755), "-rwsr-xr-x");
        assert_eq!(mode_string(0o41777), "drwxrwxrwt");
        assert_eq!(mode_string(0o102644), "-rw-r-Sr--");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
        assert_eq!(mode_string(0o20620), "crw--w----");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let now = Time {
            sec: 1_765_000_000,
            nsec: 0,
        }; // 2025-12-06
        let t = |sec| Time { sec, nsec: 0 };
        assert_eq!(date(t(1_700_000_000), now), "Nov 14  2023");
        assert_eq!(date(t(1_764_000_000), now), "Nov 24 16:00");
        // In the future: the year.
        assert_eq!(date(t(1_766_000_000), now), "Dec 17  2025");
        assert_eq!(major_minor(crate::fs::makedev(300, 70000)), (300, 70000));
    }
}

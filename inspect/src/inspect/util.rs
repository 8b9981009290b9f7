//! Small helpers the probes share: bounded file reads, lossy lines, shell unquoting, version
//! numbers and device-name ordering.

use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use vmchannel_proto::FileKind;

use crate::fs::FileSystem;

/// Largest configuration or release file a probe reads (libguestfs's `is_small_file`).
pub(crate) const MAX_SMALL_FILE: u64 = 2 * 1024 * 1024;

/// Longest product name or host name kept; longer values are cut (hostile images).
pub(crate) const MAX_FIELD: usize = 1024;

/// Whether `path` is a regular file, following symlinks (`Is.is_file ~followsymlinks:true`).
pub(crate) fn is_file(fs: &dyn FileSystem, path: &str) -> bool {
    matches!(fs.stat(path), Ok(st) if st.kind == FileKind::File)
}

/// Whether `path` itself (not following a final symlink) has kind `kind`.
pub(crate) fn lkind_is(fs: &dyn FileSystem, path: &str, kind: FileKind) -> bool {
    matches!(fs.lstat(path), Ok(st) if st.kind == kind)
}

/// The whole of `path` if it is a regular file of at most [`MAX_SMALL_FILE`] bytes (links
/// followed); `None` when missing, not a file, too large or unreadable.
pub(crate) fn read_small(fs: &dyn FileSystem, path: &str) -> Option<Vec<u8>> {
    match fs.stat(path) {
        Ok(st) if st.kind == FileKind::File && st.size <= MAX_SMALL_FILE => {}
        Ok(_) => {
            log::debug!("inspect: {path}: not a regular file or too large");
            return None;
        }
        Err(_) => return None,
    }
    match fs.read_file(path, MAX_SMALL_FILE) {
        Ok(data) => Some(data),
        Err(e) => {
            log::warn!("inspect: {path}: {e}");
            None
        }
    }
}

/// The lines of `data` (split on `\n`, a trailing `\r` removed), each converted lossily.
pub(crate) fn lossy_lines(data: &[u8]) -> impl Iterator<Item = String> + '_ {
    data.split(|&b| b == b'\n').map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        String::from_utf8_lossy(line).into_owned()
    })
}

/// The first line of `data`, converted lossily.
pub(crate) fn first_line(data: &[u8]) -> String {
    lossy_lines(data).next().unwrap_or_default()
}

/// `s` cut to at most [`MAX_FIELD`] bytes on a character boundary.
pub(crate) fn clip(mut s: String) -> String {
    if s.len() > MAX_FIELD {
        let mut end = MAX_FIELD;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Removes shell quoting as os-release(5) describes it: `'...'` literally, `"..."` with
/// backslash escapes of `$`, `` ` ``, `"`, `\`, and a backslash escaping any character outside
/// quotes. Segments are concatenated (`a"b c"` -> `ab c`).
pub(crate) fn shell_unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&n) if matches!(n, '$' | '`' | '"' | '\\' | '\n') => {
                                out.push(n);
                                chars.next();
                            }
                            _ => out.push('\\'),
                        },
                        _ => out.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Removes one pair of matching surrounding `"` or `'` (libguestfs's `simple_unquote`).
pub(crate) fn simple_unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// `KEY=value` pairs of a shell-variable file: blank lines and `#` comments skipped, lines
/// without `=` ignored, the key trimmed, the value as written (unquote it yourself).
pub(crate) fn key_values(data: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    lossy_lines(data).filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (k, v) = line.split_once('=')?;
        Some((String::from(k.trim()), String::from(v)))
    })
}

/// The run of ASCII digits at the start of `s`.
pub(crate) fn leading_digits(s: &str) -> &str {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    &s[..end]
}

/// libguestfs's `parse_version_from_major_minor`: the first `(\d+)\.(\d+)` in `s`, else the
/// first `(\d+)` as the major version with minor 0; `None` when there is no number (or it
/// does not fit in a `u32`).
pub(crate) fn version_from_major_minor(s: &str) -> Option<(u32, u32)> {
    let mut first_major = None;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let d = leading_digits(rest);
        if d.is_empty() {
            // Step over one character (not byte) to stay on a boundary.
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let after = &rest[d.len()..];
        if let Some(m) = after.strip_prefix('.') {
            let m = leading_digits(m);
            if !m.is_empty() {
                return Some((d.parse().ok()?, m.parse().ok()?));
            }
        }
        if first_major.is_none() {
            first_major = Some(d);
        }
        i += d.len();
    }
    first_major.and_then(|d| d.parse().ok()).map(|m| (m, 0))
}

/// Orders device names the way Linux lists them: digit runs compare as numbers, so
/// `/dev/sda2` < `/dev/sda10` and `/dev/sdz` < `/dev/sdaa`.
pub(crate) fn device_cmp(a: &str, b: &str) -> Ordering {
    let (ka, kb) = (disk_key(a), disk_key(b));
    ka.cmp(&kb).then_with(|| a.cmp(b))
}

/// Sort key for [`device_cmp`]: the name split into (text, number) pieces, with the letters of
/// an `sd`-style disk name compared shortest first.
fn disk_key(name: &str) -> Vec<(usize, String, u128)> {
    let mut key = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let d = leading_digits(rest);
        if !d.is_empty() {
            let n = d.parse::<u128>().unwrap_or(u128::MAX);
            key.push((0, String::new(), n));
            rest = &rest[d.len()..];
        } else {
            let end = rest
                .bytes()
                .position(|b| b.is_ascii_digit())
                .unwrap_or(rest.len());
            let text = &rest[..end];
            key.push((text.len(), String::from(text), 0));
            rest = &rest[end..];
        }
    }
    key
}

/// The whole-disk part of a device name (`/dev/sda1` -> `/dev/sda`, `/dev/nvme0n1p2` ->
/// `/dev/nvme0n1`).
pub(crate) fn disk_of(device: &str) -> &str {
    let trimmed = device.trim_end_matches(|c: char| c.is_ascii_digit());
    if trimmed.len() == device.len() {
        return device;
    }
    match trimmed.strip_suffix('p') {
        Some(base) if base.ends_with(|c: char| c.is_ascii_digit()) => base,
        _ => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquotes_like_a_shell() {
        assert_eq!(
            shell_unquote("\"Debian GNU/Linux 12 (bookworm)\""),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(shell_unquote("'a b'"), "a b");
        assert_eq!(shell_unquote("plain"), "plain");
        assert_eq!(shell_unquote(r#""say \"hi\" \$x \a""#), r#"say "hi" $x \a"#);
        assert_eq!(shell_unquote(r"a\ b"), "a b");
        assert_eq!(shell_unquote("\"unterminated"), "unterminated");
        assert_eq!(shell_unquote("trailing\\"), "trailing");
        assert_eq!(simple_unquote("\"x\""), "x");
        assert_eq!(simple_unquote("'x"), "'x");
        assert_eq!(simple_unquote("\""), "\"");
    }

    #[test]
    fn versions() {
        assert_eq!(version_from_major_minor("12"), Some((12, 0)));
        assert_eq!(version_from_major_minor("22.04"), Some((22, 4)));
        assert_eq!(version_from_major_minor("3.19.1"), Some((3, 19)));
        assert_eq!(version_from_major_minor("12.5"), Some((12, 5)));
        assert_eq!(version_from_major_minor("bookworm/sid"), None);
        assert_eq!(version_from_major_minor("v7 then 8.1"), Some((8, 1)));
        assert_eq!(version_from_major_minor("é12."), Some((12, 0)));
        assert_eq!(version_from_major_minor("99999999999999999999.1"), None);
        assert_eq!(version_from_major_minor(""), None);
    }

    #[test]
    fn device_order() {
        let mut v = alloc::vec![
            "/dev/sdaa1",
            "/dev/sda10",
            "/dev/sdb1",
            "/dev/sda2",
            "/dev/sdz"
        ];
        v.sort_by(|a, b| device_cmp(a, b));
        assert_eq!(
            v,
            [
                "/dev/sda2",
                "/dev/sda10",
                "/dev/sdb1",
                "/dev/sdz",
                "/dev/sdaa1"
            ]
        );
        assert_eq!(disk_of("/dev/sda1"), "/dev/sda");
        assert_eq!(disk_of("/dev/sdb"), "/dev/sdb");
        assert_eq!(disk_of("/dev/nvme0n1p2"), "/dev/nvme0n1");
    }

    #[test]
    fn lines_and_clip() {
        let lines: Vec<String> = lossy_lines(b"a\r\nb\xff\n").collect();
        assert_eq!(lines, ["a", "b\u{fffd}", ""]);
        let long = "é".repeat(MAX_FIELD);
        assert!(clip(long).len() <= MAX_FIELD);
        let kv: Vec<(String, String)> = key_values(b"# c\n\nA=1\nnoeq\n B = 2").collect();
        assert_eq!(kv, [("A".into(), "1".into()), ("B".into(), " 2".into())]);
    }
}

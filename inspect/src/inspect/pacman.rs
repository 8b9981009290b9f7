//! Arch Linux packages: the pacman local database, one directory per installed package under
//! /var/lib/pacman/local, each with a `desc` file.
//!
//! libguestfs 1.48 (lib/inspect-apps.c) lists every entry of /var/lib/pacman/local that is a
//! directory (a symlink is not), reads its `desc` when it is at most 8 KiB (a missing or
//! larger one is skipped: the database is damaged, the next package is read), and takes from
//! it the first line after each of `%NAME%`, `%VERSION%`, `%DESC%`, `%URL%` and `%ARCH%`.
//! Name, version and architecture are required, and the version must split into
//! `[epoch:]version-release` with both parts non-empty; the description is `%DESC%` and the
//! summary is empty. This module does the same, in the directory's order.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vmchannel_proto::{Application, FileKind};

use super::apps::Collector;
use crate::fs::{FileSystem, FsError};

/// The local database.
pub(crate) const LOCAL: &str = "/var/lib/pacman/local";
/// Largest `desc` read (libguestfs's limit).
const MAX_DESC: u64 = 8192;

/// The packages in the pacman database of `fs`; empty when there is none.
pub(crate) fn list(fs: &dyn FileSystem) -> Vec<Application> {
    let entries = match fs.read_dir(LOCAL) {
        Ok(e) => e,
        Err(FsError::NotFound(_)) => return Vec::new(),
        Err(e) => {
            log::warn!("inspect: {LOCAL}: {e}; no applications listed");
            return Vec::new();
        }
    };
    let mut out = Collector::new(LOCAL);
    for entry in entries {
        if entry.stat.kind != FileKind::Directory || entry.name == "." || entry.name == ".." {
            continue;
        }
        let path = format!("{LOCAL}/{}/desc", entry.name);
        match fs.read_file(&path, MAX_DESC) {
            Ok(desc) => {
                if let Some(app) = parse_desc(&desc) {
                    out.push(app);
                }
            }
            Err(FsError::NotFound(_)) => {}
            Err(e) => log::warn!("inspect: {path}: {e}; package skipped"),
        }
    }
    out.apps
}

/// The application one `desc` file describes, or `None` when a required field is missing or
/// the version does not parse.
pub(crate) fn parse_desc(data: &[u8]) -> Option<Application> {
    let (mut name, mut version, mut desc, mut url, mut arch) = (None, None, None, None, None);
    let mut key: Option<&mut Option<String>> = None;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            key = None;
            continue;
        }
        // The line after a key is its value, whatever it holds; later lines are ignored
        // until the next key.
        if let Some(slot) = key.take() {
            *slot = Some(String::from_utf8_lossy(line).into_owned());
            continue;
        }
        key = match line {
            b"%NAME%" => Some(&mut name),
            b"%VERSION%" => Some(&mut version),
            b"%DESC%" => Some(&mut desc),
            b"%URL%" => Some(&mut url),
            b"%ARCH%" => Some(&mut arch),
            _ => None,
        };
    }
    let (name, version, arch) = (name?, version?, arch?);
    let (epoch, rest) = match version.split_once(':') {
        Some((e, rest)) => (parse_epoch(e)?, rest),
        None => (0, version.as_str()),
    };
    let (ver, rel) = rest.split_once('-')?;
    if ver.is_empty() || rel.is_empty() {
        return None;
    }
    Some(Application {
        name,
        epoch,
        version: String::from(ver),
        release: String::from(rel),
        arch,
        summary: String::new(),
        description: desc.unwrap_or_default(),
        url: url.unwrap_or_default(),
        ..Application::default()
    })
}

/// An epoch as libguestfs parses it: decimal digits (a leading `+` or white space is
/// tolerated as strtol does), at most `i32::MAX`.
fn parse_epoch(s: &str) -> Option<u32> {
    let t = s.trim_start();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<u32>().ok().filter(|&e| e <= i32::MAX as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;

    const BASH: &str = "%NAME%\nbash\n\n%VERSION%\n5.2.026-2\n\n%BASE%\nbash\n\n\
        %DESC%\nThe GNU Bourne Again shell\n\n%URL%\nhttps://www.gnu.org/software/bash/bash.html\n\n\
        %ARCH%\nx86_64\n\n%BUILDDATE%\n1704147011\n\n%INSTALLDATE%\n1717000000\n\n\
        %PACKAGER%\nSomeone <someone@archlinux.org>\n\n%SIZE%\n9403005\n\n%REASON%\n1\n\n\
        %LICENSE%\nGPL-3.0-or-later\n\n%VALIDATION%\npgp\n\n%DEPENDS%\nreadline\nlibreadline.so=8-64\nglibc\nncurses\n\n";

    #[test]
    fn desc_fields() {
        let a = parse_desc(BASH.as_bytes()).unwrap();
        assert_eq!(a.name, "bash");
        assert_eq!(
            (a.epoch, a.version.as_str(), a.release.as_str()),
            (0, "5.2.026", "2")
        );
        assert_eq!(a.arch, "x86_64");
        assert_eq!(a.description, "The GNU Bourne Again shell");
        assert_eq!(a.summary, "");
        assert_eq!(a.url, "https://www.gnu.org/software/bash/bash.html");
    }

    #[test]
    fn versions_as_libguestfs_splits_them() {
        let desc = |v: &str| format!("%NAME%\nx\n\n%VERSION%\n{v}\n\n%ARCH%\nany\n");
        let v = |s: &str| parse_desc(desc(s).as_bytes()).map(|a| (a.epoch, a.version, a.release));
        assert_eq!(v("1:2.3-4"), Some((1, "2.3".into(), "4".into())));
        assert_eq!(v("2.3-4-5"), Some((0, "2.3".into(), "4-5".into())));
        assert_eq!(v("2.3"), None, "release is required");
        assert_eq!(v("2.3-"), None);
        assert_eq!(v("-4"), None);
        assert_eq!(v("x:2.3-4"), None);
        assert_eq!(v("3000000000:2.3-4"), None);
        assert_eq!(v("2147483647:1-1").map(|t| t.0), Some(i32::MAX as u32));
    }

    #[test]
    fn required_fields_and_first_line_only() {
        assert!(
            parse_desc(b"%NAME%\nx\n\n%VERSION%\n1-1\n").is_none(),
            "no arch"
        );
        assert!(
            parse_desc(b"%VERSION%\n1-1\n\n%ARCH%\nany\n").is_none(),
            "no name"
        );
        // A value is the first line after its key; a key's line as a value is a value.
        let a = parse_desc(
            b"%NAME%\n%ARCH%\n\n%VERSION%\n1-1\nmore\n\n%ARCH%\nany\n\n%DESC%\none\ntwo\n",
        )
        .unwrap();
        assert_eq!(a.name, "%ARCH%");
        assert_eq!(a.description, "one");
        assert_eq!(a.arch, "any");
        assert!(parse_desc(b"").is_none());
    }

    #[test]
    fn lists_directories_only() {
        let fs = TestFs::new()
            .file(&format!("{LOCAL}/bash-5.2.026-2/desc"), BASH.as_bytes())
            .file(&format!("{LOCAL}/ALPM_DB_VERSION"), b"9\n")
            .file(
                &format!("{LOCAL}/big-1-1/desc"),
                &[
                    b"%NAME%\nbig\n\n%VERSION%\n1-1\n\n%ARCH%\nany\n\n".as_slice(),
                    &[b' '; 9000],
                ]
                .concat(),
            )
            .file(&format!("{LOCAL}/nodesc-1-1/files"), b"%FILES%\n");
        let apps = list(&fs);
        assert_eq!(apps.len(), 1, "{apps:?}");
        assert_eq!(apps[0].name, "bash");
        assert!(list(&TestFs::new()).is_empty());
    }

    #[test]
    fn arbitrary_bytes() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let alphabet = b"%NAMEVRSIODCUL\n\n\n:-0123456789x\xff";
        for _ in 0..500 {
            let mut buf = Vec::new();
            for _ in 0..(x % 300) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let _ = parse_desc(&buf);
        }
    }
}

//! Alpine packages: /lib/apk/db/installed.

use alloc::string::String;
use alloc::vec::Vec;

use vmchannel_proto::Application;

use super::apps::{Collector, split_version};

/// The packages listed in apk database text `data`.
///
/// Records are separated by blank lines; each line is `K:value` with a one-letter key: `P`
/// name, `V` version (`1.2.3-r4`: version `1.2.3`, release `4`, the `r` dropped as libguestfs
/// does), `A` architecture, `T` one-line description (the description; apk has no summary),
/// `U` the URL. Other keys, and lines not of that form, are ignored. Bytes that are not UTF-8
/// are replaced.
pub(crate) fn parse(data: &[u8]) -> Vec<Application> {
    let mut out = Collector::new("/lib/apk/db/installed");
    let mut rec = Record::default();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (key, value) = match line {
            [] => {
                rec.finish(&mut out);
                continue;
            }
            [k, b':', v @ ..] => (*k, v),
            _ => continue,
        };
        let value = || String::from_utf8_lossy(value).into_owned();
        match key {
            b'P' => rec.name = value(),
            b'V' => rec.version = value(),
            b'A' => rec.arch = value(),
            b'T' => rec.description = value(),
            b'U' => rec.url = value(),
            _ => {}
        }
    }
    rec.finish(&mut out);
    out.apps
}

#[derive(Default)]
struct Record {
    name: String,
    version: String,
    arch: String,
    description: String,
    url: String,
}

impl Record {
    fn finish(&mut self, out: &mut Collector) {
        let r = core::mem::take(self);
        if r.name.is_empty() || r.version.is_empty() {
            return;
        }
        let Some((epoch, version, release)) = split_version(&r.version) else {
            return;
        };
        let release = match release.strip_prefix('r') {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.into(),
            _ => release,
        };
        out.push(Application {
            name: r.name,
            epoch,
            version,
            release,
            arch: r.arch,
            summary: String::new(),
            description: r.description,
            url: r.url,
            ..Application::default()
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const INSTALLED: &[u8] = b"C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1700000000
c:abc
F:lib
R:ld-musl-x86_64.so.1

P:busybox
V:1.36.1-r15
A:x86_64
T:Size optimized toolbox of many common UNIX utilities
";

    #[test]
    fn parses_installed() {
        let apps = parse(INSTALLED);
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].name, "musl");
        assert_eq!(
            (apps[0].version.as_str(), apps[0].release.as_str()),
            ("1.2.4_git20230717", "4")
        );
        assert_eq!(apps[0].arch, "x86_64");
        assert_eq!(apps[0].summary, "");
        assert_eq!(
            apps[0].description,
            "the musl c library (libc) implementation"
        );
        assert_eq!(apps[1].name, "busybox");
        assert_eq!(
            (
                apps[1].epoch,
                apps[1].version.as_str(),
                apps[1].release.as_str()
            ),
            (0, "1.36.1", "15")
        );
    }

    #[test]
    fn malformed_input() {
        assert!(parse(b"").is_empty());
        assert!(parse(b"P\nV\nP:\nV:\n\n").is_empty());
        assert!(parse(b"P:x\n\nV:1\n").is_empty());
        let apps = parse(b"PX:no\nP:n\xff\nV:1.0\nA:\n\n\n");
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].name, "n\u{fffd}");
        assert_eq!(apps[0].release, "");
    }
}

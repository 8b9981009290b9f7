//! Debian packages: /var/lib/dpkg/status.

use alloc::string::String;
use alloc::vec::Vec;

use vmchannel_proto::Application;

use super::apps::{Collector, split_version};

/// The installed packages listed in dpkg status text `data`.
///
/// The file is RFC 822-like stanzas separated by blank lines; a line starting with a space or
/// tab continues the previous field. Only packages whose `Status` says `installed` (its
/// third word: `install ok installed`, `hold ok installed` ...) are listed. `Version` is
/// `[epoch:]upstream[-revision]`; the summary is the first line of `Description` and the
/// description its continuation lines with their first character (the space) removed, `.`
/// lines kept as `.`, as libguestfs 1.48 reports them; `Homepage` is the URL and `Source`
/// (without a `(version)` suffix) the source package. Bytes that are not UTF-8 are replaced;
/// nothing here panics on malformed input.
pub(crate) fn parse(data: &[u8]) -> Vec<Application> {
    let mut out = Collector::new("/var/lib/dpkg/status");
    let mut st = Stanza::default();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            st.finish(&mut out);
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if st.in_description {
                st.description
                    .push(String::from_utf8_lossy(&line[1..]).into_owned());
            }
            continue;
        }
        st.in_description = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let key = String::from_utf8_lossy(&line[..colon]);
        let value = || String::from(String::from_utf8_lossy(&line[colon + 1..]).trim());
        let key = key.trim();
        if key.eq_ignore_ascii_case("Package") {
            st.name = value();
        } else if key.eq_ignore_ascii_case("Status") {
            st.installed = value().split_whitespace().nth(2) == Some("installed");
        } else if key.eq_ignore_ascii_case("Version") {
            st.version = value();
        } else if key.eq_ignore_ascii_case("Architecture") {
            st.arch = value();
        } else if key.eq_ignore_ascii_case("Homepage") {
            st.url = value();
        } else if key.eq_ignore_ascii_case("Source") {
            // "glibc" or "shadow (1:4.13+dfsg1-1)": the package name only.
            st.source = value().split_whitespace().next().unwrap_or_default().into();
        } else if key.eq_ignore_ascii_case("Description") {
            st.summary = value();
            st.description.clear();
            st.in_description = true;
        }
    }
    st.finish(&mut out);
    out.apps
}

/// The fields of the stanza being read.
#[derive(Default)]
struct Stanza {
    name: String,
    installed: bool,
    version: String,
    arch: String,
    summary: String,
    description: Vec<String>,
    in_description: bool,
    url: String,
    source: String,
}

impl Stanza {
    /// Adds the stanza read so far (if it is an installed package) and starts a new one.
    fn finish(&mut self, out: &mut Collector) {
        let st = core::mem::take(self);
        if !st.installed || st.name.is_empty() || st.version.is_empty() {
            return;
        }
        let Some((epoch, version, release)) = split_version(&st.version) else {
            log::debug!("inspect: dpkg: {}: bad version {}", st.name, st.version);
            return;
        };
        out.push(Application {
            name: st.name,
            epoch,
            version,
            release,
            arch: st.arch,
            summary: st.summary,
            description: st.description.join("\n"),
            url: st.url,
            source_package: st.source,
            ..Application::default()
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const STATUS: &[u8] = b"Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7164
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 5.2.15-2+b2
Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 .
 Bash also incorporates useful features.
Homepage: http://tiswww.case.edu/php/chet/bash/bashtop.html

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: old-thing
Status: deinstall ok config-files
Architecture: all
Version: 1.0-1
Description: removed

Package: perl-base
Status: hold ok installed
Architecture: amd64
Version: 1:5.36.0-7+deb12u1
Description: minimal Perl system
 Perl is a scripting language.
";

    #[test]
    fn parses_status() {
        let apps = parse(STATUS);
        assert_eq!(apps.len(), 3);
        let bash = &apps[0];
        assert_eq!(bash.name, "bash");
        assert_eq!(
            (bash.epoch, bash.version.as_str(), bash.release.as_str()),
            (0, "5.2.15", "2+b2")
        );
        assert_eq!(bash.arch, "amd64");
        assert_eq!(bash.summary, "GNU Bourne Again SHell");
        assert_eq!(
            bash.description,
            "Bash is an sh-compatible command language interpreter.\n.\nBash also incorporates useful features."
        );
        assert_eq!(
            bash.url,
            "http://tiswww.case.edu/php/chet/bash/bashtop.html"
        );
        assert_eq!(bash.source_package, "");
        let libc = &apps[1];
        assert_eq!(
            (libc.version.as_str(), libc.release.as_str()),
            ("2.36", "9+deb12u4")
        );
        assert_eq!(libc.description, "");
        let perl = &apps[2];
        assert_eq!(
            (perl.epoch, perl.version.as_str(), perl.release.as_str()),
            (1, "5.36.0", "7+deb12u1")
        );
        // No trailing blank line: the last stanza still counts.
        assert_eq!(perl.description, "Perl is a scripting language.");
    }

    #[test]
    fn malformed_input() {
        assert!(parse(b"").is_empty());
        assert!(parse(b"\n\n\n").is_empty());
        assert!(parse(b" continuation first\n:\n::::\nPackage\n").is_empty());
        // Missing version, bad epoch, not installed, half-installed: all skipped.
        let text = b"Package: a\nStatus: install ok installed\n\n\
                     Package: b\nStatus: install ok installed\nVersion: x:1\n\n\
                     Package: c\nStatus: install ok half-installed\nVersion: 1\n\n\
                     Package: d\nStatus: installed\nVersion: 1\n\n\
                     Status: install ok installed\nVersion: 1\n\n";
        assert!(parse(text).is_empty());
        // Not UTF-8, CRLF, tabs.
        let text = b"Package: caf\xe9\r\nStatus: install ok installed\r\nVersion: 1.0\r\n\
                     Description: s\xff\r\n\t.\r\n\tmore\r\n";
        let apps = parse(text);
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].name, "caf\u{fffd}");
        assert_eq!(apps[0].summary, "s\u{fffd}");
        assert_eq!(apps[0].description, ".\nmore");
        assert_eq!(apps[0].release, "");
    }

    #[test]
    fn arbitrary_bytes_do_not_panic() {
        // A cheap deterministic fuzz: xorshift bytes biased towards the syntax.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"PackgeStusVrinDcp: \n\n\t.-:0123456789\xff\xc3";
        for _ in 0..200 {
            let mut buf = Vec::new();
            for _ in 0..(x % 512) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let _ = parse(&buf);
            let _ = super::super::apk::parse(&buf);
        }
    }
}

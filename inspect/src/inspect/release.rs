//! Distribution, version and product name from the release files, in libguestfs's order
//! (`linux_root_tests` in daemon/inspect_fs_unix.ml).
//!
//! Each test names a file; when the file exists (links followed) its parser runs, and the
//! first parser to succeed ends the search. As in libguestfs, parsers fill in the fields they
//! find even when they then fail, so a later file overrides only what it sets: Debian's
//! os-release gives `VERSION_ID=12` without a minor version, so the search goes on to
//! /etc/debian_version, whose first line ("12.5") becomes the version and product name.

use alloc::string::String;

use crate::fs::FileSystem;

use super::distro::Distro;
use super::util::{
    clip, first_line, is_file, key_values, leading_digits, lossy_lines, read_small, shell_unquote,
    simple_unquote, version_from_major_minor,
};

/// What the release files said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Release {
    pub distro: Option<Distro>,
    pub product_name: Option<String>,
    /// (major, minor)
    pub version: Option<(u32, u32)>,
}

/// Where a version number follows in a release line (a tiny stand-in for libguestfs's
/// regular expressions, with the same greedy-match results).
#[derive(Clone, Copy)]
enum Minor {
    /// `prefix.*key(\d+)`
    None,
    /// `prefix.*key(\d+)\.(\d+)`
    Dot,
    /// `prefix.*key(\d+).*Update (\d+)`
    Update,
}

#[derive(Clone, Copy)]
struct Rex {
    prefix: &'static str,
    key: &'static str,
    minor: Minor,
}

const fn rex(prefix: &'static str, key: &'static str, minor: Minor) -> Option<Rex> {
    Some(Rex { prefix, key, minor })
}

#[derive(Clone, Copy)]
enum Parser {
    OsRelease,
    Lsb,
    /// First line is the product name; with a pattern, it must match and gives the version;
    /// without, a best-effort version.
    Generic(Distro, Option<Rex>),
    /// The file's existence is enough.
    Exists(Distro),
    Suse,
    BrVersion,
    /// /etc/pld-release: `(\d+)\.(\d+) PLD Linux`.
    Pld,
}

use Minor::{Dot, Update};
use Parser::{Exists, Generic};

const REL: &str = "release ";

/// libguestfs 1.48's list, in its order. (Later versions test /etc/opencloudos-release,
/// /etc/tencentos-release and /etc/circle-release too; 1.48 does not.)
const TESTS: &[(&str, Parser)] = &[
    ("/etc/os-release", Parser::OsRelease),
    ("/etc/lsb-release", Parser::Lsb),
    (
        "/etc/openmandriva-release",
        Generic(Distro::OpenMandriva, rex("OpenMandriva", REL, Dot)),
    ),
    (
        "/etc/oracle-release",
        Generic(Distro::OracleLinux, rex("Oracle Linux", REL, Update)),
    ),
    (
        "/etc/oracle-release",
        Generic(Distro::OracleLinux, rex("Oracle Linux", REL, Dot)),
    ),
    (
        "/etc/oracle-release",
        Generic(Distro::OracleLinux, rex("Oracle Linux", REL, Minor::None)),
    ),
    (
        "/etc/centos-release",
        Generic(Distro::CentOs, rex("CentOS", REL, Update)),
    ),
    (
        "/etc/centos-release",
        Generic(Distro::CentOs, rex("CentOS", REL, Dot)),
    ),
    (
        "/etc/centos-release",
        Generic(Distro::CentOs, rex("CentOS", REL, Minor::None)),
    ),
    (
        "/etc/rocky-release",
        Generic(Distro::Rocky, rex("Rocky Linux", REL, Dot)),
    ),
    (
        "/etc/rocky-release",
        Generic(Distro::Rocky, rex("Rocky Linux", REL, Minor::None)),
    ),
    ("/etc/altlinux-release", Generic(Distro::AltLinux, None)),
    (
        "/etc/redhat-release",
        Generic(Distro::Fedora, rex("", "Fedora release ", Minor::None)),
    ),
    (
        "/etc/redhat-release",
        Generic(Distro::Rhel, rex("Red Hat", REL, Update)),
    ),
    (
        "/etc/redhat-release",
        Generic(Distro::Rhel, rex("Red Hat", REL, Dot)),
    ),
    (
        "/etc/redhat-release",
        Generic(Distro::Rhel, rex("Red Hat", REL, Minor::None)),
    ),
    (
        "/etc/redhat-release",
        Generic(Distro::CentOs, rex("CentOS", REL, Update)),
    ),
    (
        "/etc/redhat-release",
        Generic(Distro::CentOs, rex("CentOS", REL, Dot)),
    ),
    (
        "/etc/redhat-release",
        Generic(Distro::CentOs, rex("CentOS", REL, Minor::None)),
    ),
    (
        "/etc/redhat-release",
        Generic(Distro::Rocky, rex("Rocky Linux", REL, Dot)),
    ),
    (
        "/etc/redhat-release",
        Generic(Distro::Rocky, rex("Rocky Linux", REL, Minor::None)),
    ),
    (
        "/etc/redhat-release",
        Generic(
            Distro::ScientificLinux,
            rex("Scientific Linux", REL, Update),
        ),
    ),
    (
        "/etc/redhat-release",
        Generic(Distro::ScientificLinux, rex("Scientific Linux", REL, Dot)),
    ),
    (
        "/etc/redhat-release",
        Generic(
            Distro::ScientificLinux,
            rex("Scientific Linux", REL, Minor::None),
        ),
    ),
    ("/etc/redhat-release", Generic(Distro::RedhatBased, None)),
    ("/etc/redhat-release", Exists(Distro::RedhatBased)),
    ("/etc/debian_version", Generic(Distro::Debian, None)),
    ("/etc/pardus-release", Generic(Distro::Pardus, None)),
    ("/etc/arch-release", Exists(Distro::ArchLinux)),
    ("/etc/gentoo-release", Generic(Distro::Gentoo, None)),
    ("/etc/meego-release", Generic(Distro::Meego, None)),
    ("/etc/slackware-version", Generic(Distro::Slackware, None)),
    ("/etc/ttylinux-target", Generic(Distro::TtyLinux, None)),
    ("/etc/SuSE-release", Parser::Suse),
    ("/etc/SuSE-release", Exists(Distro::SuseBased)),
    ("/etc/cirros/version", Generic(Distro::Cirros, None)),
    ("/etc/br-version", Parser::BrVersion),
    ("/etc/alpine-release", Generic(Distro::AlpineLinux, None)),
    (
        "/etc/frugalware-release",
        Generic(Distro::Frugalware, rex("", "Frugalware ", Dot)),
    ),
    ("/etc/pld-release", Parser::Pld),
];

/// Runs the release-file tests on `fs` (the OS tree, so links into a separate /usr work).
/// When /etc/os-release does not exist, /usr/lib/os-release stands in for it.
pub(crate) fn detect(fs: &dyn FileSystem) -> Release {
    let mut data = Release::default();
    for &(path, parser) in TESTS {
        let path = if path == "/etc/os-release" && !is_file(fs, path) {
            "/usr/lib/os-release"
        } else {
            path
        };
        if is_file(fs, path) && run(fs, path, parser, &mut data) {
            break;
        }
    }
    data.product_name = data.product_name.map(clip);
    data
}

fn run(fs: &dyn FileSystem, path: &str, parser: Parser, data: &mut Release) -> bool {
    match parser {
        Parser::OsRelease => parse_os_release(fs, path, data),
        Parser::Lsb => parse_lsb_release(fs, path, data),
        Parser::Generic(distro, rex) => parse_generic(fs, path, distro, rex, data),
        Parser::Exists(distro) => {
            data.distro = Some(distro);
            true
        }
        Parser::Suse => parse_suse_release(fs, path, data),
        Parser::BrVersion => {
            let distro = if is_file(fs, "/usr/share/cirros/logo") {
                Distro::Cirros
            } else {
                Distro::Buildroot
            };
            parse_generic(fs, path, distro, None, data)
        }
        Parser::Pld => parse_pld(fs, path, data),
    }
}

/// /etc/pld-release: the first line is the product name, and must hold `N.M PLD Linux`.
fn parse_pld(fs: &dyn FileSystem, path: &str, data: &mut Release) -> bool {
    let Some(text) = read_small(fs, path) else {
        return false;
    };
    let line = first_line(&text);
    if line.is_empty() {
        return false;
    }
    data.product_name = Some(line.clone());
    data.distro = Some(Distro::PldLinux);
    let Some((major, minor)) = pld_version(&line) else {
        return false;
    };
    if let Some(major) = major {
        data.version = Some((major, minor.unwrap_or(0)));
    }
    true
}

/// The first `digits.digits PLD Linux` in `line`: (major, minor), each `None` if it does
/// not fit in a `u32`.
fn pld_version(line: &str) -> Option<(Option<u32>, Option<u32>)> {
    const KEY: &str = " PLD Linux";
    line.match_indices(KEY).find_map(|(i, _)| {
        let before = &line[..i];
        let minor = trailing_digits(before);
        let rest = before[..before.len() - minor.len()].strip_suffix('.')?;
        let major = trailing_digits(rest);
        (!minor.is_empty() && !major.is_empty()).then(|| (major.parse().ok(), minor.parse().ok()))
    })
}

/// The run of ASCII digits at the end of `s`.
fn trailing_digits(s: &str) -> &str {
    let n = s.bytes().rev().take_while(u8::is_ascii_digit).count();
    &s[s.len() - n..]
}

/// os-release(5): `ID`, `VERSION_ID`, `PRETTY_NAME`.
fn parse_os_release(fs: &dyn FileSystem, path: &str, data: &mut Release) -> bool {
    let Some(text) = read_small(fs, path) else {
        return false;
    };
    for (key, value) in key_values(&text) {
        let value = shell_unquote(&value);
        match key.as_str() {
            "ID" => {
                if let Some(d) = Distro::from_os_release_id(&value) {
                    data.distro = Some(d);
                } else {
                    log::debug!("inspect: {path}: unknown ID={value}");
                }
            }
            "PRETTY_NAME" => data.product_name = Some(value),
            "VERSION_ID" => {
                if let Some(v) =
                    neokylin_version(&value).or_else(|| version_from_major_minor(&value))
                {
                    data.version = Some(v);
                }
            }
            _ => {}
        }
    }
    let Some(distro) = data.distro else {
        return false;
    };
    if data.product_name.is_none() {
        return false;
    }
    match data.version {
        // Debian and CentOS-likes put only the major version here: the release files
        // have the full one.
        Some((_, 0)) if matches!(distro, Distro::Debian | Distro::CentOs | Distro::Rocky) => false,
        None if distro.is_rolling() => {
            data.version = Some((0, 0));
            true
        }
        None => false,
        Some(_) => true,
    }
}

/// NeoKylin's `VERSION_ID=V7Update6`.
fn neokylin_version(v: &str) -> Option<(u32, u32)> {
    let rest = v.strip_prefix('V')?;
    let major = leading_digits(rest);
    let rest = rest[major.len()..].strip_prefix("Update")?;
    let minor = leading_digits(rest);
    if major.is_empty() || minor.is_empty() || minor.len() != rest.len() {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// /etc/lsb-release: `DISTRIB_ID`, `DISTRIB_RELEASE`, `DISTRIB_DESCRIPTION`. A file with
/// neither a known id nor a description (RHEL 3's bare `LSB_VERSION`) does not count.
fn parse_lsb_release(fs: &dyn FileSystem, path: &str, data: &mut Release) -> bool {
    let Some(text) = read_small(fs, path) else {
        return false;
    };
    let mut ok = false;
    for (key, value) in key_values(&text) {
        let value = simple_unquote(&value);
        match key.as_str() {
            "DISTRIB_ID" => {
                if let Some(d) = Distro::from_lsb_id(value) {
                    data.distro = Some(d);
                    ok = true;
                }
            }
            "DISTRIB_RELEASE" => {
                if let Some(v) = version_from_major_minor(value) {
                    data.version = Some(v);
                }
            }
            "DISTRIB_DESCRIPTION" => {
                data.product_name = Some(String::from(value));
                ok = true;
            }
            _ => {}
        }
    }
    ok
}

/// A one-line release file: the first line is the product name.
fn parse_generic(
    fs: &dyn FileSystem,
    path: &str,
    distro: Distro,
    rex: Option<Rex>,
    data: &mut Release,
) -> bool {
    let Some(text) = read_small(fs, path) else {
        return false;
    };
    let line = first_line(&text);
    if line.is_empty() {
        return false;
    }
    let matched = rex.map(|r| r.find(&line));
    data.product_name = Some(line.clone());
    data.distro = Some(distro);
    match matched {
        Some(Some((major, minor))) => {
            match (major, minor) {
                (Some(a), Some(b)) => data.version = Some((a, b)),
                (Some(a), None) => data.version = Some((a, 0)),
                _ => {}
            }
            true
        }
        Some(None) => false,
        None => {
            if let Some(v) = version_from_major_minor(&line) {
                data.version = Some(v);
            }
            true
        }
    }
}

/// /etc/SuSE-release: product name, then `VERSION = N`, then `PATCHLEVEL = N` (SLES), or a
/// version line (openSUSE).
fn parse_suse_release(fs: &dyn FileSystem, path: &str, data: &mut Release) -> bool {
    let Some(text) = read_small(fs, path) else {
        return false;
    };
    let mut lines = lossy_lines(&text);
    let Some(product) = lines.next() else {
        return false;
    };
    let line2 = lines.next();
    let line3 = lines.next();
    let number_after = |line: Option<&String>, prefix: &str| -> Option<u32> {
        let rest = line?.strip_prefix(prefix)?;
        leading_digits(rest).parse().ok()
    };
    if product.starts_with("SUSE Linux Enterprise ")
        || product.starts_with("SUSE LINUX Enterprise ")
        || product.starts_with("Novell Linux Desktop ")
    {
        let major = number_after(line2.as_ref(), "VERSION = ");
        let minor = number_after(line3.as_ref(), "PATCHLEVEL = ");
        data.distro = Some(Distro::Sles);
        data.version = major.map(|m| (m, minor.unwrap_or(0)));
    } else if ["openSUSE ", "SuSE Linux ", "SUSE LINUX "]
        .iter()
        .any(|p| product.starts_with(p))
    {
        if let Some(v) = line2.as_deref().and_then(version_from_major_minor) {
            data.version = Some(v);
        }
        data.distro = Some(Distro::OpenSuse);
    }
    data.product_name = Some(product);
    true
}

impl Rex {
    /// Matches `line`; `Some((major, minor))` on a match, each `None` if its digits do not
    /// fit in a `u32`.
    fn find(&self, line: &str) -> Option<(Option<u32>, Option<u32>)> {
        let start = if self.prefix.is_empty() {
            0
        } else {
            line.find(self.prefix)? + self.prefix.len()
        };
        let hay = line.get(start..)?;
        let num = |d: &str| d.parse::<u32>().ok();
        match self.minor {
            Minor::None => {
                // Greedy `.*`: the last occurrence of the key followed by digits.
                hay.rmatch_indices(self.key).find_map(|(i, _)| {
                    let d = leading_digits(&hay[i + self.key.len()..]);
                    (!d.is_empty()).then(|| (num(d), None))
                })
            }
            Minor::Dot => hay.rmatch_indices(self.key).find_map(|(i, _)| {
                let rest = &hay[i + self.key.len()..];
                let d = leading_digits(rest);
                let m = leading_digits(rest[d.len()..].strip_prefix('.')?);
                (!d.is_empty() && !m.is_empty()).then(|| (num(d), num(m)))
            }),
            Minor::Update => {
                const UPD: &str = "Update ";
                // The last "Update N", then the last "key N" before it.
                let (u, m) = hay.rmatch_indices(UPD).find_map(|(i, _)| {
                    let m = leading_digits(&hay[i + UPD.len()..]);
                    (!m.is_empty()).then_some((i, m))
                })?;
                let before = &hay[..u];
                before.rmatch_indices(self.key).find_map(|(i, _)| {
                    let d = leading_digits(&before[i + self.key.len()..]);
                    (!d.is_empty()).then(|| (num(d), num(m)))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;

    fn detect_on(fs: TestFs) -> Release {
        detect(&fs)
    }

    fn rel(d: Distro, name: &str, v: (u32, u32)) -> Release {
        Release {
            distro: Some(d),
            product_name: Some(String::from(name)),
            version: Some(v),
        }
    }

    #[test]
    fn patterns() {
        let r = |p, k, m, s| {
            Rex {
                prefix: p,
                key: k,
                minor: m,
            }
            .find(s)
        };
        assert_eq!(
            r("CentOS", REL, Dot, "CentOS Linux release 7.9.2009 (Core)"),
            Some((Some(7), Some(9)))
        );
        assert_eq!(
            r("CentOS", REL, Minor::None, "CentOS Stream release 9"),
            Some((Some(9), None))
        );
        assert_eq!(r("CentOS", REL, Dot, "CentOS Stream release 9"), None);
        assert_eq!(
            r(
                "Red Hat",
                REL,
                Update,
                "Red Hat Enterprise Linux AS release 4 (Nahant Update 9)"
            ),
            Some((Some(4), Some(9)))
        );
        assert_eq!(
            r(
                "Red Hat",
                REL,
                Update,
                "Red Hat Enterprise Linux release 9.3 (Plow)"
            ),
            None
        );
        assert_eq!(
            r(
                "",
                "Fedora release ",
                Minor::None,
                "Fedora release 39 (Thirty Nine)"
            ),
            Some((Some(39), None))
        );
        assert_eq!(r("Red Hat", REL, Dot, "Fedora release 39"), None);
        assert_eq!(
            r("X", REL, Dot, "X release 99999999999.1"),
            Some((None, Some(1)))
        );
        assert_eq!(r("X", REL, Dot, "X release ."), None);
        assert_eq!(
            r("TencentOS", " ", Dot, "TencentOS Server 3.1 (Final)"),
            Some((Some(3), Some(1)))
        );
    }

    #[test]
    fn debian_falls_through_to_debian_version() {
        let fs = TestFs::new()
            .file(
                "/etc/os-release",
                b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                  VERSION_ID=\"12\"\nID=debian\n",
            )
            .file("/etc/debian_version", b"12.5\n");
        assert_eq!(detect_on(fs), rel(Distro::Debian, "12.5", (12, 5)));
        // Testing: no VERSION_ID, debian_version is a codename.
        let fs = TestFs::new()
            .file(
                "/etc/os-release",
                b"PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nID=debian\n",
            )
            .file("/etc/debian_version", b"trixie/sid\n");
        let r = detect_on(fs);
        assert_eq!(r.distro, Some(Distro::Debian));
        assert_eq!(r.product_name.as_deref(), Some("trixie/sid"));
        assert_eq!(r.version, None);
    }

    #[test]
    fn ubuntu_variants() {
        let osr = TestFs::new().file(
            "/etc/os-release",
            b"NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nPRETTY_NAME=\"Ubuntu 22.04.3 LTS\"\nID=ubuntu\nID_LIKE=debian\n",
        );
        assert_eq!(
            detect_on(osr),
            rel(Distro::Ubuntu, "Ubuntu 22.04.3 LTS", (22, 4))
        );
        let lsb = TestFs::new().file(
            "/etc/lsb-release",
            b"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n\
              DISTRIB_DESCRIPTION=\"Ubuntu 22.04.3 LTS\"\n",
        );
        assert_eq!(
            detect_on(lsb),
            rel(Distro::Ubuntu, "Ubuntu 22.04.3 LTS", (22, 4))
        );
        // A bare LSB_VERSION file does not count; the next file decides.
        let bare = TestFs::new()
            .file("/etc/lsb-release", b"LSB_VERSION=base-4.0\n")
            .file("/etc/alpine-release", b"3.19.1\n");
        assert_eq!(detect_on(bare), rel(Distro::AlpineLinux, "3.19.1", (3, 19)));
    }

    #[test]
    fn redhat_family() {
        let fs = TestFs::new()
            .file(
                "/etc/os-release",
                b"ID=\"centos\"\nVERSION_ID=\"7\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\n",
            )
            .file(
                "/etc/centos-release",
                b"CentOS Linux release 7.9.2009 (Core)\n",
            )
            .link("/etc/redhat-release", "centos-release");
        assert_eq!(
            detect_on(fs),
            rel(
                Distro::CentOs,
                "CentOS Linux release 7.9.2009 (Core)",
                (7, 9)
            )
        );
        let rhel6 = TestFs::new().file(
            "/etc/redhat-release",
            b"Red Hat Enterprise Linux Server release 6.10 (Santiago)\n",
        );
        assert_eq!(
            detect_on(rhel6),
            rel(
                Distro::Rhel,
                "Red Hat Enterprise Linux Server release 6.10 (Santiago)",
                (6, 10)
            )
        );
        let fedora =
            TestFs::new().file("/etc/redhat-release", b"Fedora release 39 (Thirty Nine)\n");
        assert_eq!(
            detect_on(fedora),
            rel(Distro::Fedora, "Fedora release 39 (Thirty Nine)", (39, 0))
        );
        let other = TestFs::new().file("/etc/redhat-release", b"Foo Linux release 2.1\n");
        assert_eq!(
            detect_on(other),
            rel(Distro::RedhatBased, "Foo Linux release 2.1", (2, 1))
        );
        let empty = TestFs::new().file("/etc/redhat-release", b"");
        assert_eq!(detect_on(empty).distro, Some(Distro::RedhatBased));
        // libguestfs 1.48 does not know ID=almalinux: os-release fails, keeping its name and
        // version, and /etc/redhat-release (no known pattern) makes it `redhat-based`.
        let alma_osr = TestFs::new().file(
            "/etc/os-release",
            b"NAME=\"AlmaLinux\"\nVERSION_ID=\"9.3\"\nID=\"almalinux\"\nPRETTY_NAME=\"AlmaLinux 9.3 (Shamrock Pearl Cat)\"\n",
        );
        let r = detect_on(alma_osr.clone());
        assert_eq!(r.distro, None);
        assert_eq!(
            r.product_name.as_deref(),
            Some("AlmaLinux 9.3 (Shamrock Pearl Cat)")
        );
        assert_eq!(r.version, Some((9, 3)));
        let alma = alma_osr
            .file(
                "/etc/almalinux-release",
                b"AlmaLinux release 9.3 (Shamrock Pearl Cat)\n",
            )
            .link("/etc/redhat-release", "almalinux-release");
        assert_eq!(
            detect_on(alma),
            rel(
                Distro::RedhatBased,
                "AlmaLinux release 9.3 (Shamrock Pearl Cat)",
                (9, 3)
            )
        );
        // Circle Linux's own release file is not read either.
        let circle = TestFs::new()
            .file(
                "/etc/circle-release",
                b"Circle Linux release 8.6 (Mojave)\n",
            )
            .link("/etc/redhat-release", "circle-release");
        assert_eq!(
            detect_on(circle),
            rel(
                Distro::RedhatBased,
                "Circle Linux release 8.6 (Mojave)",
                (8, 6)
            )
        );
    }

    #[test]
    fn rolling_and_others() {
        let arch = TestFs::new().file(
            "/etc/os-release",
            b"NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n",
        );
        assert_eq!(
            detect_on(arch),
            rel(Distro::ArchLinux, "Arch Linux", (0, 0))
        );
        let arch_old = TestFs::new().file("/etc/arch-release", b"");
        assert_eq!(detect_on(arch_old).distro, Some(Distro::ArchLinux));
        let suse = TestFs::new().file(
            "/etc/SuSE-release",
            b"SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n",
        );
        assert_eq!(
            detect_on(suse),
            rel(
                Distro::Sles,
                "SUSE Linux Enterprise Server 11 (x86_64)",
                (11, 4)
            )
        );
        let opensuse = TestFs::new().file(
            "/etc/os-release",
            b"ID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"openSUSE Leap 15.5\"\n",
        );
        assert_eq!(
            detect_on(opensuse),
            rel(Distro::OpenSuse, "openSUSE Leap 15.5", (15, 5))
        );
        let pld = TestFs::new().file("/etc/pld-release", b"3.0 PLD Linux (Th)\n");
        assert_eq!(
            detect_on(pld),
            rel(Distro::PldLinux, "3.0 PLD Linux (Th)", (3, 0))
        );
        assert_eq!(
            pld_version("x 2.10 PLD Linux 3.1 PLD Linux"),
            Some((Some(2), Some(10)))
        );
        assert_eq!(pld_version("PLD Linux 3.0"), None);
        let nothing = TestFs::new().dir("/etc");
        assert_eq!(detect_on(nothing), Release::default());
    }

    #[test]
    fn os_release_fallbacks() {
        // Unknown ID: os-release fails but its name stays until a later file replaces it.
        let unknown = TestFs::new().file(
            "/etc/os-release",
            b"ID=nixos\nPRETTY_NAME=\"NixOS 23.11\"\nVERSION_ID=\"23.11\"\n",
        );
        let r = detect_on(unknown);
        assert_eq!(r.distro, None);
        assert_eq!(r.product_name.as_deref(), Some("NixOS 23.11"));
        // /usr/lib/os-release when /etc has none, and through a symlink.
        let usr = TestFs::new().file(
            "/usr/lib/os-release",
            b"ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
        );
        assert_eq!(
            detect_on(usr.clone()),
            rel(Distro::AlpineLinux, "Alpine Linux v3.19", (3, 19))
        );
        let linked = usr.link("/etc/os-release", "../usr/lib/os-release");
        assert_eq!(
            detect_on(linked),
            rel(Distro::AlpineLinux, "Alpine Linux v3.19", (3, 19))
        );
        // A dangling /etc/os-release is not a file: /usr/lib/os-release is used.
        let dangling = TestFs::new().link("/etc/os-release", "nowhere").file(
            "/usr/lib/os-release",
            b"ID=fedora\nVERSION_ID=39\nPRETTY_NAME=\"Fedora Linux 39\"\n",
        );
        assert_eq!(
            detect_on(dangling),
            rel(Distro::Fedora, "Fedora Linux 39", (39, 0))
        );
        assert_eq!(neokylin_version("V7Update6"), Some((7, 6)));
        assert_eq!(neokylin_version("V7Update6x"), None);
    }

    #[test]
    fn garbage_and_unreadable_files() {
        let bad = TestFs::new()
            .file(
                "/etc/os-release",
                b"\xff\xfe\x00ID=\xc3\x28\n=\n==\nPRETTY_NAME\n",
            )
            .broken("/etc/lsb-release", 100)
            .fifo("/etc/redhat-release")
            .file("/etc/debian_version", b"\xffbookworm\n");
        let r = detect_on(bad);
        assert_eq!(r.distro, Some(Distro::Debian));
        assert_eq!(r.product_name.as_deref(), Some("\u{fffd}bookworm"));
        let huge = TestFs::new().file("/etc/alpine-release", &alloc::vec![b'9'; 3 * 1024 * 1024]);
        assert_eq!(detect_on(huge), Release::default());
        let long_line = TestFs::new().file("/etc/alpine-release", &alloc::vec![b'x'; 100_000]);
        assert_eq!(
            detect_on(long_line).product_name.map(|p| p.len()),
            Some(super::super::util::MAX_FIELD)
        );
    }
}

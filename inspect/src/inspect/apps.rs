//! Installed applications: which package database to read for a package format, and the
//! limits and ordering all of them share.

use alloc::string::String;
use alloc::vec::Vec;

use vmchannel_proto::Application;

use crate::fs::{FileSystem, FsError};

use super::{apk, dpkg, pacman, rpm};

/// A package database parser.
type Parser = fn(&[u8]) -> Vec<Application>;

/// Largest package database read; a larger one is refused (empty list, warning).
pub(crate) const MAX_DB_FILE: u64 = 64 * 1024 * 1024;
/// Most packages listed from one database; the rest are dropped with a warning.
pub(crate) const MAX_PACKAGES: usize = 100_000;

/// The installed packages of the OS in `fs` for `package_format` (`deb`, `apk`, `rpm`,
/// `pacman`), in libguestfs's order (see [`sort`]); empty for other formats, or when the
/// database is missing, too large or unreadable.
pub(crate) fn list(fs: &dyn FileSystem, package_format: Option<&str>) -> Vec<Application> {
    let mut apps = match package_format {
        Some("deb") => whole_file(fs, "/var/lib/dpkg/status", dpkg::parse),
        Some("apk") => whole_file(fs, "/lib/apk/db/installed", apk::parse),
        Some("rpm") => rpm::list(fs),
        Some("pacman") => pacman::list(fs),
        _ => Vec::new(),
    };
    sort(&mut apps);
    apps
}

/// The packages a database held in one file lists.
fn whole_file(fs: &dyn FileSystem, path: &str, parse: Parser) -> Vec<Application> {
    match fs.read_file(path, MAX_DB_FILE) {
        Ok(data) => parse(&data),
        Err(FsError::NotFound(_)) => Vec::new(),
        Err(e) => {
            log::warn!("inspect: {path}: {e}; no applications listed");
            Vec::new()
        }
    }
}

/// Sorts by name as libguestfs does (`strcmp` in a stable sort): packages of the same name
/// keep the order their database lister gave them.
pub(crate) fn sort(apps: &mut [Application]) {
    apps.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
}

/// Splits `epoch:version-release`: the epoch is before the first `:` (0 when there is none),
/// the release after the first `-` (empty when there is none), as libguestfs does: a Debian
/// version with a `-` in its upstream part (`4.4.3-P1-2`) splits there too (`4.4.3`,
/// `P1-2`), which is what virt-inspector prints. `None` when the epoch is not a number.
pub(crate) fn split_version(v: &str) -> Option<(u32, String, String)> {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => (e.trim().parse::<u32>().ok()?, rest),
        None => (0, v),
    };
    let (version, release) = rest.split_once('-').unwrap_or((rest, ""));
    Some((epoch, String::from(version), String::from(release)))
}

/// Collects applications up to [`MAX_PACKAGES`], warning once when the limit is reached.
pub(crate) struct Collector {
    pub apps: Vec<Application>,
    what: &'static str,
    warned: bool,
}

impl Collector {
    pub fn new(what: &'static str) -> Collector {
        Collector {
            apps: Vec::new(),
            what,
            warned: false,
        }
    }

    /// Adds `app` unless the limit is reached.
    pub fn push(&mut self, app: Application) {
        if self.apps.len() < MAX_PACKAGES {
            self.apps.push(app);
        } else if !self.warned {
            self.warned = true;
            log::warn!(
                "inspect: {}: more than {MAX_PACKAGES} packages, rest ignored",
                self.what
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;

    #[test]
    fn versions() {
        let s = split_version;
        assert_eq!(s("1:2.3-4"), Some((1, "2.3".into(), "4".into())));
        assert_eq!(
            s("2.36.1-8+deb12u1"),
            Some((0, "2.36.1".into(), "8+deb12u1".into()))
        );
        assert_eq!(
            s("1.0-beta-2ubuntu1"),
            Some((0, "1.0".into(), "beta-2ubuntu1".into()))
        );
        assert_eq!(s("5.2.15"), Some((0, "5.2.15".into(), "".into())));
        assert_eq!(s("1:2:3"), Some((1, "2:3".into(), "".into())));
        assert_eq!(s("x:1.0"), None);
        assert_eq!(s("99999999999:1"), None);
        assert_eq!(s(""), Some((0, "".into(), "".into())));
    }

    #[test]
    fn refuses_huge_databases() {
        let fs = TestFs::new().broken("/var/lib/dpkg/status", MAX_DB_FILE + 1);
        assert!(list(&fs, Some("deb")).is_empty());
        let fs = TestFs::new().broken("/var/lib/dpkg/status", 10);
        assert!(list(&fs, Some("deb")).is_empty());
        assert!(list(&TestFs::new(), Some("deb")).is_empty());
        assert!(list(&TestFs::new(), Some("rpm")).is_empty());
        assert!(list(&TestFs::new(), None).is_empty());
    }

    #[test]
    fn caps_package_count() {
        let mut c = Collector::new("test");
        for _ in 0..MAX_PACKAGES + 10 {
            c.push(Application::default());
        }
        assert_eq!(c.apps.len(), MAX_PACKAGES);
    }
}

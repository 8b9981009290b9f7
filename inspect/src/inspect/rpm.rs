//! rpm packages: find the guest's rpm database, read its header blobs with the store's
//! reader ([`crate::pkgdb`]) and list what libguestfs lists for each.
//!
//! libguestfs 1.48 asks librpm, inside a chroot into the guest, for every header of the
//! database (daemon/rpm-c.c, daemon/rpm.ml): NAME, VERSION, RELEASE, ARCH, URL, SUMMARY and
//! DESCRIPTION as `headerFormat` prints them (`(none)` when absent) and EPOCH (0 when
//! absent); gpg-pubkey pseudo-packages are headers like any other and are listed. The
//! daemon pushes each package on the front of a list, then sorts it by name with a stable
//! sort, so packages of the same name come in the reverse of the database's order; the
//! library's own stable sort by name keeps that.
//!
//! Where: librpm's `%_dbpath` is /var/lib/rpm on RHEL/CentOS and older systems, and
//! /usr/lib/sysimage/rpm on Fedora >= 36 and SUSE, with /var/lib/rpm a symlink to it
//! (possibly on another btrfs subvolume, which the OS tree mounts). Both directories are
//! tried in that order. In a directory, the store is chosen as rpm's backend detection
//! finds one: `rpmdb.sqlite` (sqlite, rpm >= 4.16), `Packages.db` (ndb), `Packages`
//! (Berkeley DB).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use vmchannel_proto::Application;

use super::apps::Collector;
use crate::fs::FileSystem;
use crate::pkgdb::{Store, bdb, ndb, rpmheader, sqlite};
use crate::store::FileStore;

/// The directories rpm keeps its database in, in the order they are tried.
pub(crate) const DBPATHS: [&str; 2] = ["/var/lib/rpm", "/usr/lib/sysimage/rpm"];

/// Largest database file read (pages are read on demand, so this bounds the work, not the
/// memory).
const MAX_DB: u64 = 1 << 30;

/// One of the stores rpm has used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Ndb,
    Bdb,
}

impl Backend {
    /// Its file in the database directory.
    fn file(self) -> &'static str {
        match self {
            Backend::Sqlite => "rpmdb.sqlite",
            Backend::Ndb => "Packages.db",
            Backend::Bdb => "Packages",
        }
    }
}

/// The packages in the rpm database of `fs`; empty when none is found. A database that is
/// damaged gives the packages read before the damage, and a warning.
pub(crate) fn list(fs: &dyn FileSystem) -> Vec<Application> {
    let Some((backend, path)) = find(fs) else {
        log::warn!("inspect: no rpm database in {}", DBPATHS.join(" or "));
        return Vec::new();
    };
    let db = match FileStore::open(fs, &path, MAX_DB) {
        Ok(db) => db,
        Err(e) => {
            log::warn!("inspect: {path}: {e}; no applications listed");
            return Vec::new();
        }
    };
    let mut out = Collector::new("rpm database");
    let mut bad_headers = 0usize;
    let mut each = |blob: &[u8]| match rpmheader::package(blob) {
        Ok(p) => out.push(Application {
            name: p.name,
            epoch: p.epoch,
            version: p.version,
            release: p.release,
            arch: p.arch,
            summary: p.summary,
            description: p.description,
            url: p.url,
            ..Application::default()
        }),
        Err(e) => {
            if bad_headers == 0 {
                log::warn!("inspect: {path}: a package header: {e}; skipped");
            }
            bad_headers += 1;
        }
    };
    let result = match backend {
        Backend::Sqlite => {
            let wal_path = format!("{path}-wal");
            let wal = FileStore::open(fs, &wal_path, MAX_DB)
                .ok()
                .filter(|w| w.size() > 0);
            sqlite::packages(&db, wal.as_ref().map(|w| w as &dyn Store), &mut each)
                .map_err(|e| e.to_string())
        }
        Backend::Ndb => ndb::packages(&db, &mut each).map_err(|e| e.to_string()),
        Backend::Bdb => bdb::packages(&db, &mut each).map_err(|e| e.to_string()),
    };
    if let Err(e) = result {
        log::warn!(
            "inspect: {path}: {e}; {} packages read before it",
            out.apps.len()
        );
    }
    if bad_headers > 1 {
        log::warn!("inspect: {path}: {bad_headers} package headers skipped");
    }
    // The daemon's order before its stable sort by name: the reverse of the database's.
    let mut apps = out.apps;
    apps.reverse();
    apps
}

/// The first database found: for each of [`DBPATHS`], the first of the stores that exists
/// as a regular file.
fn find(fs: &dyn FileSystem) -> Option<(Backend, String)> {
    for dir in DBPATHS {
        for backend in [Backend::Sqlite, Backend::Ndb, Backend::Bdb] {
            let path = format!("{dir}/{}", backend.file());
            match fs.stat(&path) {
                Ok(st) if st.kind == vmchannel_proto::FileKind::File => {
                    return Some((backend, path));
                }
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;
    use crate::pkgdb::ndb::build::build as ndb_store;

    const EPOCH: &[u8] = include_bytes!("../pkgdb/testdata/rpmheader/vmc-epoch.bin");
    const NOURL: &[u8] = include_bytes!("../pkgdb/testdata/rpmheader/vmc-nourl.bin");
    const BDB: &[u8] = include_bytes!("../pkgdb/testdata/bdb/real-le-4096.db");
    const NDB: &[u8] = include_bytes!("../pkgdb/testdata/ndb/Packages.db");
    const SQLITE_ZZ: &[u8] = include_bytes!("../pkgdb/testdata/sqlite/rpm.sqlite.zz");

    fn sqlite() -> Vec<u8> {
        miniz_oxide::inflate::decompress_to_vec_zlib(SQLITE_ZZ).unwrap()
    }

    fn names(apps: &[Application]) -> Vec<String> {
        apps.iter()
            .map(|a| format!("{}-{}-{}.{}", a.name, a.version, a.release, a.arch))
            .collect()
    }

    #[test]
    fn every_store_where_distributions_keep_it() {
        // CentOS 7: Berkeley DB in /var/lib/rpm, read in hash-bucket order as librpm reads
        // it (the daemon's list is then reversed, and sorted by name later).
        let fs = TestFs::new().file("/var/lib/rpm/Packages", BDB);
        let mut apps = list(&fs);
        assert_eq!(apps.len(), 3);
        super::super::apps::sort(&mut apps);
        assert_eq!(
            apps.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["alpha", "beta", "gamma"]
        );
        // openSUSE: ndb in /usr/lib/sysimage/rpm, reached through the /var/lib/rpm link.
        let fs = TestFs::new()
            .file("/usr/lib/sysimage/rpm/Packages.db", NDB)
            .link("/var/lib/rpm", "../../usr/lib/sysimage/rpm");
        assert_eq!(list(&fs).len(), 3);
        // Fedora: sqlite in /usr/lib/sysimage/rpm, no link.
        let fs = TestFs::new().file("/usr/lib/sysimage/rpm/rpmdb.sqlite", &sqlite());
        assert_eq!(
            names(&list(&fs)),
            [
                "alpha-1.0-1.noarch",
                "beta-1.1-1.noarch",
                "gamma-1.2-1.noarch"
            ],
            "the reverse of the database's order (gamma was installed first)"
        );
    }

    #[test]
    fn fields_as_libguestfs_lists_them() {
        let fs = TestFs::new().file("/var/lib/rpm/Packages.db", &ndb_store(&[EPOCH, NOURL]));
        let apps = list(&fs);
        let a = apps.iter().find(|a| a.name == "vmc-epoch").unwrap();
        assert_eq!(
            (a.epoch, a.version.as_str(), a.release.as_str()),
            (2, "1.2.3", "4")
        );
        assert_eq!(a.arch, "x86_64");
        assert_eq!(a.url, "https://example.org/vmc-epoch");
        assert_eq!(a.summary, "Package with an epoch");
        assert_eq!(a.description, "A package with Epoch: 2.");
        let b = apps.iter().find(|a| a.name == "vmc-nourl").unwrap();
        assert_eq!(b.url, "(none)", "headerFormat's text for an absent tag");
        assert_eq!(b.epoch, 0);
        assert_eq!(b.source_package, "");
    }

    #[test]
    fn same_name_keeps_the_daemons_order() {
        // A second package named vmc-epoch: nourl's header with its name patched (same
        // length, so every offset stays valid).
        let mut twin = NOURL.to_vec();
        for i in 0..twin.len() - 9 {
            if &twin[i..i + 9] == b"vmc-nourl" {
                twin[i..i + 9].copy_from_slice(b"vmc-epoch");
            }
        }
        let fs = TestFs::new().file("/var/lib/rpm/Packages.db", &ndb_store(&[EPOCH, &twin]));
        let mut apps = list(&fs);
        super::super::apps::sort(&mut apps);
        assert_eq!(
            names(&apps),
            ["vmc-epoch-0.9-1.test.x86_64", "vmc-epoch-1.2.3-4.x86_64"],
            "libguestfs pushes each package on the front, then sorts by name stably"
        );
    }

    #[test]
    fn which_store_and_where() {
        // sqlite is preferred to a leftover Berkeley DB in the same directory, and
        // /var/lib/rpm to /usr/lib/sysimage/rpm.
        let fs = TestFs::new()
            .file("/var/lib/rpm/Packages", BDB)
            .file("/var/lib/rpm/rpmdb.sqlite", &sqlite())
            .file("/usr/lib/sysimage/rpm/Packages.db", &ndb_store(&[EPOCH]));
        assert_eq!(
            find(&fs).map(|f| f.1),
            Some("/var/lib/rpm/rpmdb.sqlite".into())
        );
        assert_eq!(list(&fs).len(), 3);
        let fs = TestFs::new().dir("/var/lib/rpm/Packages");
        assert_eq!(find(&fs), None, "a directory is not a store");
        assert!(list(&TestFs::new()).is_empty());
    }

    #[test]
    fn damaged_stores() {
        // Truncated: whatever was read before the damage, never a panic.
        for db in [BDB, NDB] {
            for cut in [0, 100, 4096, db.len() / 2, db.len() - 1] {
                let fs = TestFs::new().file("/var/lib/rpm/Packages", &db[..cut]);
                assert!(list(&fs).len() <= 3);
            }
        }
        let s = sqlite();
        for cut in [0, 99, 1024, s.len() / 2] {
            let fs = TestFs::new().file("/var/lib/rpm/rpmdb.sqlite", &s[..cut]);
            assert!(list(&fs).len() <= 3);
        }
        // Headers that do not parse are skipped, the rest listed.
        let fs = TestFs::new().file(
            "/var/lib/rpm/Packages.db",
            &ndb_store(&[b"garbage".as_slice(), EPOCH, &[0xff; 64]]),
        );
        assert_eq!(names(&list(&fs)), ["vmc-epoch-1.2.3-4.x86_64"]);
        // Unreadable.
        let fs = TestFs::new().broken("/var/lib/rpm/rpmdb.sqlite", 1 << 20);
        assert!(list(&fs).is_empty());
    }
}

//! Disks for the application-listing benchmark (`vmch/benches/apps.rs`): one system of
//! [`PACKAGES`] Fedora-sized packages in each package database inspection reads.
//!
//! The rpm database is written by the real tools, once: one `rpmbuild -bb` of one spec with
//! a `%package` per package (each with its own version, release, epoch, summary, multi-line
//! `%description` and a `%files` list of 30 to 60 files with the paths real packages have:
//! binaries, libraries, documentation, man pages, configuration and, as in most real
//! packages, message catalogues), then one `rpm -i --justdb` of every package into a sqlite
//! `rpmdb.sqlite`. The Berkeley DB `Packages` and ndb `Packages.db` hold the same header
//! blobs, converted as the layout disks convert theirs ([`crate::layouts`]). The pacman
//! (`desc` and `files` per package) and dpkg (`status`) databases list the same names and
//! versions with the same file lists.
//!
//! Each [`Format`] gets its own disk: an MBR disk with one ext4 root (`mkfs.ext4 -d`) that
//! inspection recognises as Fedora 40 (the three rpm stores, in /usr/lib/sysimage/rpm with
//! /var/lib/rpm a link to it, as Fedora keeps it), Arch (pacman) or Debian 12 (dpkg).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::images::{Content, EM_X86_64, ImageError, Part, Tree, elf, make_disk};
use crate::layouts::{rpm_blobs, to_bdb, to_ndb, tool};

/// How many packages each database holds.
pub const PACKAGES: usize = 500;

/// One package database format, each on its own disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// rpm >= 4.16's sqlite store, `rpmdb.sqlite` (Fedora >= 33).
    RpmSqlite,
    /// rpm <= 4.15's Berkeley DB hash `Packages` (RHEL/CentOS <= 8).
    RpmBdb,
    /// rpm's ndb store, `Packages.db` (SUSE).
    RpmNdb,
    /// pacman's local database, a `desc` and a `files` per package directory.
    Pacman,
    /// dpkg's `/var/lib/dpkg/status`.
    Dpkg,
}

impl Format {
    /// Every format, in the order the benchmark prints them.
    pub const ALL: [Format; 5] = [
        Format::RpmSqlite,
        Format::RpmBdb,
        Format::RpmNdb,
        Format::Pacman,
        Format::Dpkg,
    ];

    /// A short name for tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Format::RpmSqlite => "rpm-sqlite",
            Format::RpmBdb => "rpm-bdb",
            Format::RpmNdb => "rpm-ndb",
            Format::Pacman => "pacman",
            Format::Dpkg => "dpkg",
        }
    }

    /// The database in the guest: its file, or for pacman its directory.
    pub fn guest_path(self) -> &'static str {
        match self {
            Format::RpmSqlite => "/usr/lib/sysimage/rpm/rpmdb.sqlite",
            Format::RpmBdb => "/usr/lib/sysimage/rpm/Packages",
            Format::RpmNdb => "/usr/lib/sysimage/rpm/Packages.db",
            Format::Pacman => "/var/lib/pacman/local",
            Format::Dpkg => "/var/lib/dpkg/status",
        }
    }

    /// Whether the database is one of rpm's stores.
    pub fn is_rpm(self) -> bool {
        matches!(self, Format::RpmSqlite | Format::RpmBdb | Format::RpmNdb)
    }
}

/// One package of the benchmark system.
#[derive(Clone, Debug)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Epoch, when it has one.
    pub epoch: Option<u32>,
    /// Upstream version.
    pub version: String,
    /// Release (`N.fc40`; pacman's pkgrel and Debian's revision are its number).
    pub release: String,
    /// Whether it is architecture-independent (`noarch`, `any`, `all`).
    pub noarch: bool,
    /// One-line summary.
    pub summary: String,
    /// Multi-line description.
    pub description: String,
    /// Home page.
    pub url: String,
    /// Absolute paths of the files it owns.
    pub files: Vec<String>,
}

impl Package {
    /// The release number without the distribution tag (`3` of `3.fc40`).
    pub fn release_number(&self) -> &str {
        self.release.split('.').next().unwrap_or(&self.release)
    }

    /// `[epoch:]version-release` with the bare release number (pacman, dpkg).
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(e) => format!("{e}:{}-{}", self.version, self.release_number()),
            None => format!("{}-{}", self.version, self.release_number()),
        }
    }
}

/// Real Fedora package names, each the base of up to three packages (`X`, `X-libs`,
/// `X-common`), as a Fedora system's split packages are.
const BASES: &[&str] = &[
    "acl",
    "alternatives",
    "attr",
    "audit",
    "authselect",
    "basesystem",
    "bash",
    "bzip2",
    "c-ares",
    "ca-certificates",
    "chrony",
    "cloud-init",
    "cloud-utils-growpart",
    "coreutils",
    "cpio",
    "cracklib",
    "crypto-policies",
    "cryptsetup",
    "curl",
    "cyrus-sasl",
    "dbus",
    "dbus-broker",
    "device-mapper",
    "dhcp-client",
    "diffutils",
    "dnf",
    "dnf-data",
    "dosfstools",
    "dracut",
    "e2fsprogs",
    "efibootmgr",
    "elfutils",
    "expat",
    "file",
    "filesystem",
    "findutils",
    "fuse",
    "gawk",
    "gdbm",
    "gettext",
    "glib2",
    "glibc",
    "gmp",
    "gnupg2",
    "gnutls",
    "gpgme",
    "grep",
    "groff",
    "grub2",
    "grubby",
    "gzip",
    "hostname",
    "hwdata",
    "iproute",
    "iptables",
    "iputils",
    "jansson",
    "json-c",
    "kbd",
    "kernel-core",
    "kernel-modules",
    "keyutils",
    "kmod",
    "kpartx",
    "krb5",
    "less",
    "libarchive",
    "logrotate",
    "cronie",
    "libassuan",
    "libblkid",
    "libbpf",
    "libcap",
    "libcap-ng",
    "libcbor",
    "libcom_err",
    "libcomps",
    "libdnf",
    "libeconf",
    "libedit",
    "libevent",
    "libfdisk",
    "libffi",
    "libfido2",
    "libgcc",
    "libgcrypt",
    "libgomp",
    "libgpg-error",
    "libidn2",
    "libksba",
    "libmnl",
    "libmodulemd",
    "libmount",
    "libnghttp2",
    "libnl3",
    "libpsl",
    "libpwquality",
    "librepo",
    "libreport",
    "libseccomp",
    "libselinux",
    "libsemanage",
    "libsepol",
    "libsmartcols",
    "libsolv",
    "libssh",
    "libstdc++",
    "libtasn1",
    "libtirpc",
    "libunistring",
    "libuser",
    "libutempter",
    "libuuid",
    "libverto",
    "libxcrypt",
    "libxml2",
    "libyaml",
    "libzstd",
    "lmdb",
    "lua",
    "lz4",
    "man-db",
    "mpfr",
    "ncurses",
    "nettle",
    "npth",
    "openldap",
    "openssh",
    "openssl",
    "p11-kit",
    "pam",
    "parted",
    "passwd",
    "pcre2",
    "policycoreutils",
    "polkit",
    "popt",
    "procps-ng",
    "psmisc",
    "publicsuffix-list",
    "python3",
    "python3-dnf",
    "NetworkManager",
    "firewalld",
    "python3-pip",
    "python3-setuptools",
    "qemu-guest-agent",
    "readline",
    "rootfiles",
    "rpm",
    "rsync",
    "sed",
    "selinux-policy",
    "setup",
    "shadow-utils",
    "sqlite",
    "sssd",
    "sudo",
    "systemd",
    "tar",
    "tpm2-tss",
    "tzdata",
    "util-linux",
    "vim",
    "which",
    "xfsprogs",
    "xz",
    "yum",
    "zchunk",
    "zlib-ng",
    "zram-generator",
];

/// Suffixes of the split packages of a base.
const SPLITS: [&str; 3] = ["", "-libs", "-common"];

/// Locales with message catalogues (the bulk of most real packages' file lists).
const LANGS: &[&str] = &[
    "af", "ar", "as", "ast", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en_GB",
    "eo", "es", "et", "eu", "fa", "fi", "fr", "ga", "gl", "gu", "he", "hi", "hr", "hu", "ia", "id",
    "it", "ja", "ka", "kk", "kn", "ko", "lt", "lv", "mk", "ml", "mr", "ms", "nb", "nl", "nn", "or",
    "pa", "pl", "pt", "pt_BR", "ro", "ru", "si", "sk", "sl", "sq", "sr", "sv", "ta", "te", "th",
    "tr", "uk", "vi", "zh_CN", "zh_TW",
];

/// A deterministic mix of `i` (splitmix64).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The file list of package `name` (base `base`), `count` files long.
fn files(name: &str, base: &str, split: &str, count: usize, h: u64) -> Vec<String> {
    let major = h % 9 + 1;
    let mut f = Vec::with_capacity(count);
    match split {
        "-libs" => {
            let lib = base.trim_start_matches("lib");
            for i in 0..3 {
                f.push(format!("/usr/lib64/lib{lib}{i}.so.{major}"));
                f.push(format!("/usr/lib64/lib{lib}{i}.so.{major}.{}.0", h % 40));
            }
            f.push(format!("/usr/lib64/{base}/plugins/default.so"));
            f.push(format!("/usr/lib64/{base}/plugins/extra.so"));
            f.push(format!("/usr/share/licenses/{name}/COPYING"));
            f.push(format!("/usr/share/licenses/{name}/COPYING.LIB"));
        }
        "-common" => {
            f.push(format!("/etc/{base}/{base}.conf"));
            f.push(format!("/etc/{base}/defaults.d/00-{base}.conf"));
            f.push(format!("/usr/share/{base}/data/default.dat"));
            f.push(format!("/usr/share/{base}/data/schema.xml"));
            f.push(format!("/usr/share/doc/{name}/README.md"));
            f.push(format!("/usr/share/doc/{name}/NEWS"));
            f.push(format!("/usr/share/licenses/{name}/COPYING"));
        }
        _ => {
            f.push(format!("/usr/bin/{base}"));
            for tool in ["ctl", "config", "check", "dump"] {
                f.push(format!("/usr/bin/{base}-{tool}"));
            }
            f.push(format!("/usr/sbin/{base}d"));
            f.push(format!("/usr/lib/systemd/system/{base}.service"));
            f.push(format!("/usr/lib/tmpfiles.d/{base}.conf"));
            f.push(format!("/usr/libexec/{base}/{base}-helper"));
            for page in ["1", "5", "8"] {
                f.push(format!("/usr/share/man/man{page}/{base}.{page}.gz"));
            }
            f.push(format!("/usr/share/man/man1/{base}-ctl.1.gz"));
            f.push(format!("/usr/share/bash-completion/completions/{base}"));
            for doc in ["AUTHORS", "ChangeLog", "NEWS", "README", "THANKS"] {
                f.push(format!("/usr/share/doc/{name}/{doc}"));
            }
            f.push(format!("/usr/share/licenses/{name}/COPYING"));
        }
    }
    // Message catalogues (or data files, for a library's package) fill the rest.
    let start = (h >> 20) as usize % LANGS.len();
    let mut i = 0;
    while f.len() < count {
        if split == "-libs" {
            f.push(format!("/usr/lib64/{base}/modules/mod{i:03}.so"));
        } else if i < LANGS.len() {
            let lang = LANGS[(start + i) % LANGS.len()];
            f.push(format!("/usr/share/locale/{lang}/LC_MESSAGES/{name}.mo"));
        } else {
            f.push(format!("/usr/share/{base}/data/extra{i:03}.dat"));
        }
        i += 1;
    }
    f.truncate(count);
    f
}

/// The [`PACKAGES`] packages of the benchmark system, in a fixed order.
pub fn packages() -> Vec<Package> {
    let mut out = Vec::with_capacity(PACKAGES);
    'all: for split in SPLITS {
        for (b, base) in BASES.iter().enumerate() {
            if out.len() == PACKAGES {
                break 'all;
            }
            // Split packages of a base share its version, as a spec's subpackages do.
            let h = mix(b as u64);
            let name = format!("{base}{split}");
            let hp = mix(h ^ out.len() as u64);
            let count = 30 + (hp % 31) as usize;
            let epoch = match b % 9 {
                0 => Some(1),
                4 => Some(2),
                _ => None,
            };
            out.push(Package {
                epoch,
                version: format!("{}.{}.{}", h % 9 + 1, (h >> 8) % 40, (h >> 16) % 12),
                release: format!("{}.fc40", (h >> 24) % 12 + 1),
                noarch: split == "-common",
                summary: match split {
                    "-libs" => format!("Libraries for {base}"),
                    "-common" => format!("Common files and configuration for {base}"),
                    _ => format!("The {base} programs and services"),
                },
                description: format!(
                    "The {name} package contains {}.\n\
                     It is part of the {base} project, which a minimal Fedora system\n\
                     installs by default; other packages of the project provide the\n\
                     libraries, the development files and the documentation.\n\
                     \n\
                     Install {name} if you need {}.",
                    match split {
                        "-libs" => "the shared libraries used by the programs",
                        "-common" => "the configuration and data files shared by the project",
                        _ => "the command-line programs and the system service",
                    },
                    match split {
                        "-libs" => "to run programs linked against it",
                        "-common" => "any of the other packages of the project",
                        _ => "the programs themselves",
                    }
                ),
                url: format!("https://example.org/projects/{base}"),
                files: files(&name, base, split, count, hp),
                name,
            });
        }
    }
    out
}

/// The base a package was split from ([`SPLITS`]).
fn base_of(name: &str) -> &str {
    name.strip_suffix("-libs")
        .or_else(|| name.strip_suffix("-common"))
        .unwrap_or(name)
}

/// The spec building every package as a subpackage of one source package, whose `%install`
/// copies the build root from `SOURCES/root`.
fn spec(packages: &[Package]) -> String {
    let mut s = String::from(
        "Name: fedora-bench\nVersion: 1\nRelease: 1\nSummary: The benchmark system\n\
         License: MIT\nBuildArch: x86_64\n\n%description\nThe source of every package.\n\n",
    );
    for p in packages {
        let _ = write!(
            s,
            "%package -n {}\nVersion: {}\nRelease: {}\nSummary: {}\nLicense: MIT AND \
             GPL-2.0-or-later\nURL: {}\nRequires: glibc\nRequires: {}-common\n",
            p.name,
            p.version,
            p.release,
            p.summary,
            p.url,
            base_of(&p.name)
        );
        if let Some(e) = p.epoch {
            let _ = writeln!(s, "Epoch: {e}");
        }
        if p.noarch {
            s.push_str("BuildArch: noarch\n");
        }
        let _ = write!(s, "\n%description -n {}\n{}\n\n", p.name, p.description);
    }
    s.push_str("%install\ncp -a %{_sourcedir}/root/. %{buildroot}/\n\n");
    for p in packages {
        let _ = writeln!(s, "%files -n {}", p.name);
        let base = base_of(&p.name);
        let mut dirs: Vec<&str> = Vec::new();
        for f in &p.files {
            // The package's own directories (named after it or its base), as %dir entries.
            let parent = &f[..f.rfind('/').unwrap_or(0)];
            let own = parent.split('/').any(|seg| seg == base || seg == p.name);
            if own && !dirs.contains(&parent) {
                dirs.push(parent);
            }
            if f.starts_with("/usr/share/licenses/") {
                let _ = writeln!(s, "%license {f}");
            } else if f.starts_with("/usr/share/doc/") {
                let _ = writeln!(s, "%doc {f}");
            } else if f.starts_with("/etc/") {
                let _ = writeln!(s, "%config(noreplace) {f}");
            } else if f.contains("/LC_MESSAGES/") {
                let lang = f.split('/').nth(4).unwrap_or("C");
                let _ = writeln!(s, "%lang({lang}) {f}");
            } else {
                let _ = writeln!(s, "{f}");
            }
        }
        for d in dirs {
            let _ = writeln!(s, "%dir {d}");
        }
        s.push('\n');
    }
    s.push_str(
        "%changelog\n\
         * Mon Apr 15 2024 Fedora Release Engineering <releng@fedoraproject.org> - 1-1\n\
         - Rebuilt for Fedora 40\n\
         - Update to the latest upstream release, with its security fixes\n\n\
         * Wed Jan 24 2024 Fedora Release Engineering <releng@fedoraproject.org> - 0.9-2\n\
         - Rebuilt for https://fedoraproject.org/wiki/Fedora_40_Mass_Rebuild\n\n\
         * Sat Jul 22 2023 Fedora Release Engineering <releng@fedoraproject.org> - 0.9-1\n\
         - Rebuilt for https://fedoraproject.org/wiki/Fedora_39_Mass_Rebuild\n",
    );
    s
}

/// Builds every package with one `rpmbuild -bb` under `s` and enters them all into a new
/// sqlite rpm database at `dbpath` with one `rpm -i --justdb`.
fn rpmdb(dbpath: &Path, packages: &[Package], s: &Path) -> Result<(), ImageError> {
    let top = s.join("rpmbuild");
    let root = top.join("SOURCES/root");
    for p in packages {
        for f in &p.files {
            let path = root.join(f.trim_start_matches('/'));
            if let Some(d) = path.parent() {
                fs::create_dir_all(d)?;
            }
            fs::write(&path, format!("{} {}\n", p.name, f))?;
        }
    }
    fs::create_dir_all(top.join("SPECS"))?;
    let spec_path = top.join("SPECS/fedora-bench.spec");
    fs::write(&spec_path, spec(packages))?;
    tool(
        Command::new("rpmbuild")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .args([
                "--define",
                "debug_package %{nil}",
                "--define",
                "_build_id_links none",
                "--define",
                "__os_install_post %{nil}",
                "--define",
                "_binary_payload w1.gzdio",
            ])
            .args(["--quiet", "-bb"])
            .arg(&spec_path),
    )?;
    let mut rpms = Vec::new();
    for arch in ["x86_64", "noarch"] {
        if let Ok(dir) = fs::read_dir(top.join("RPMS").join(arch)) {
            for e in dir {
                rpms.push(e?.path());
            }
        }
    }
    rpms.sort();
    if rpms.len() != packages.len() {
        return Err(ImageError::Tool {
            tool: "rpmbuild".into(),
            message: format!("{} packages built, {} expected", rpms.len(), packages.len()),
        });
    }
    crate::layouts::rpm_initdb(dbpath)?;
    crate::layouts::rpm_justdb(dbpath, &rpms)?;
    let _ = fs::remove_dir_all(&top);
    Ok(())
}

/// The files of a root every system has: os-release and friends, hostname, fstab, a shell.
fn base_root(t: &Tree, os_release: &str, hostname: &str, uuid: &str) -> Result<(), ImageError> {
    t.file("etc/os-release", os_release)?
        .file("etc/hostname", format!("{hostname}\n"))?
        .file("etc/fstab", format!("UUID={uuid} / ext4 defaults 1 1\n"))?
        .file("usr/bin/bash", elf(EM_X86_64))?
        .link("bin", "usr/bin")?;
    Ok(())
}

/// A Fedora 40 root holding the rpm database from `sqlite` in /usr/lib/sysimage/rpm,
/// converted to `format`'s store.
fn fedora_root(
    t: &Tree,
    format: Format,
    sqlite: &Path,
    uuid: &str,
    s: &Path,
) -> Result<(), ImageError> {
    base_root(
        t,
        "NAME=\"Fedora Linux\"\nVERSION=\"40 (Cloud Edition)\"\nID=fedora\nVERSION_ID=40\n\
         PRETTY_NAME=\"Fedora Linux 40 (Cloud Edition)\"\nVARIANT_ID=cloud\n",
        "fedora-bench",
        uuid,
    )?;
    t.file("etc/fedora-release", "Fedora release 40 (Forty)\n")?
        .link("var/lib/rpm", "../../usr/lib/sysimage/rpm")?;
    let dbpath = t.path().join("usr/lib/sysimage/rpm");
    fs::create_dir_all(&dbpath)?;
    fs::copy(sqlite, dbpath.join("rpmdb.sqlite"))?;
    match format {
        Format::RpmBdb => to_bdb(&dbpath, s),
        Format::RpmNdb => to_ndb(&dbpath, s),
        _ => Ok(()),
    }
}

/// An Arch root with the packages in pacman's local database.
fn arch_root(t: &Tree, packages: &[Package], uuid: &str) -> Result<(), ImageError> {
    base_root(
        t,
        "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n",
        "arch-bench",
        uuid,
    )?;
    t.file("etc/arch-release", "")?
        .file("var/lib/pacman/local/ALPM_DB_VERSION", "9\n")?;
    for p in packages {
        let (name, version) = (&p.name, p.evr());
        let arch = if p.noarch { "any" } else { "x86_64" };
        let dir = format!("var/lib/pacman/local/{name}-{version}");
        let summary = &p.summary;
        let url = &p.url;
        let size = 4096 * p.files.len();
        t.file(
            &format!("{dir}/desc"),
            format!(
                "%NAME%\n{name}\n\n%VERSION%\n{version}\n\n%BASE%\n{name}\n\n%DESC%\n{summary}\n\n\
                 %URL%\n{url}\n\n%ARCH%\n{arch}\n\n%BUILDDATE%\n1715000000\n\n\
                 %INSTALLDATE%\n1717000000\n\n%PACKAGER%\nArch Linux <build@archlinux.org>\n\n\
                 %SIZE%\n{size}\n\n%REASON%\n1\n\n%LICENSE%\nGPL-2.0-or-later\n\n\
                 %VALIDATION%\npgp\n\n%DEPENDS%\nglibc\n\n"
            ),
        )?;
        // `files` lists every directory (with a trailing slash) before the files in it.
        let mut lines: Vec<String> = Vec::new();
        for f in &p.files {
            let rel = f.trim_start_matches('/');
            let mut at = 0;
            while let Some(i) = rel[at..].find('/') {
                lines.push(format!("{}/", &rel[..at + i]));
                at += i + 1;
            }
            lines.push(rel.to_string());
        }
        lines.sort();
        lines.dedup();
        t.file(
            &format!("{dir}/files"),
            format!("%FILES%\n{}\n\n", lines.join("\n")),
        )?;
    }
    Ok(())
}

/// A Debian 12 root with the packages in dpkg's status file.
fn debian_root(t: &Tree, packages: &[Package], uuid: &str) -> Result<(), ImageError> {
    base_root(
        t,
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
         VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        "debian-bench",
        uuid,
    )?;
    t.file("etc/debian_version", "12.5\n")?;
    let mut status = String::new();
    for p in packages {
        let arch = if p.noarch { "all" } else { "amd64" };
        let _ = write!(
            status,
            "Package: {}\nStatus: install ok installed\nPriority: optional\nSection: misc\n\
             Installed-Size: {}\nMaintainer: Debian Maintainers <maint@debian.org>\n\
             Architecture: {arch}\nVersion: {}\nDepends: libc6 (>= 2.36)\n\
             Description: {}\n",
            p.name,
            4 * p.files.len(),
            p.evr(),
            p.summary,
        );
        for l in p.description.lines() {
            let _ = writeln!(status, " {}", if l.is_empty() { "." } else { l });
        }
        let _ = write!(status, "Homepage: {}\n\n", p.url);
        t.file(
            &format!("var/lib/dpkg/info/{}.list", p.name),
            p.files.join("\n") + "\n",
        )?;
    }
    t.file("var/lib/dpkg/status", status)?;
    Ok(())
}

/// One benchmark disk.
#[derive(Debug)]
pub struct Disk {
    /// Its database format.
    pub format: Format,
    /// The disk image.
    pub image: PathBuf,
    /// A copy of the database file on the host (for pacman, of its directory).
    pub database: PathBuf,
    /// The database's size in bytes (for pacman, the sum of its files).
    pub database_bytes: u64,
}

/// Total size of the regular files under `p` (or of `p` itself).
fn bytes_under(p: &Path) -> Result<u64, ImageError> {
    let meta = fs::symlink_metadata(p)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut n = 0;
    for e in fs::read_dir(p)? {
        n += bytes_under(&e?.path())?;
    }
    Ok(n)
}

/// Copies the tree at `from` to `to` (files and directories only).
fn copy_tree(from: &Path, to: &Path) -> Result<(), ImageError> {
    if fs::symlink_metadata(from)?.is_dir() {
        fs::create_dir_all(to)?;
        for e in fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
    } else {
        fs::copy(from, to)?;
    }
    Ok(())
}

/// Builds the disk of every [`Format`] under `dir` (scratch files too, removed after):
/// `dir/<format>.img`, with a copy of its database beside it in `dir/db/`.
pub fn build(dir: &Path) -> Result<Vec<Disk>, ImageError> {
    let packages = packages();
    let s = dir.join("scratch");
    fs::create_dir_all(&s)?;
    let master = s.join("rpmdb");
    rpmdb(&master, &packages, &s)?;
    let sqlite = master.join("rpmdb.sqlite");
    // Sanity: rpm wrote every package (python3's sqlite3, the same reader as the layouts').
    let blobs = rpm_blobs(&master, &s.join("check-blobs"))?;
    if blobs.len() != packages.len() {
        return Err(ImageError::Tool {
            tool: "rpm --justdb".into(),
            message: format!(
                "{} headers in rpmdb.sqlite, {} expected",
                blobs.len(),
                PACKAGES
            ),
        });
    }
    fs::remove_dir_all(s.join("check-blobs"))?;
    let dbs = dir.join("db");
    fs::create_dir_all(&dbs)?;
    let mut out = Vec::new();
    for (i, format) in Format::ALL.into_iter().enumerate() {
        let uuid = format!("be7c0000-0000-4000-8000-00000000000{i}");
        let root = Tree::new(s.join(format.name()))?;
        match format {
            Format::Pacman => arch_root(&root, &packages, &uuid)?,
            Format::Dpkg => debian_root(&root, &packages, &uuid)?,
            _ => fedora_root(&root, format, &sqlite, &uuid, &s)?,
        }
        let db_in_tree = root
            .path()
            .join(format.guest_path().trim_start_matches('/'));
        let database = dbs.join(format.name());
        copy_tree(&db_in_tree, &database)?;
        let database_bytes = bytes_under(&database)?;
        // Room for the database twice over, the rest of the tree and ext4's own metadata.
        let mib = (database_bytes * 2 / crate::images::MIB + 32).max(48);
        let image = dir.join(format!("{}.img", format.name()));
        make_disk(
            &image,
            mib + 2,
            "dos",
            &[Part {
                mib,
                kind: "83",
                name: None,
                content: Content::Ext4 {
                    tree: root.path(),
                    uuid: &uuid,
                    label: Some("root"),
                },
            }],
        )?;
        fs::remove_dir_all(root.path())?;
        out.push(Disk {
            format,
            image,
            database,
            database_bytes,
        });
    }
    let _ = fs::remove_dir_all(&s);
    Ok(out)
}

/// The benchmark disks, built into a temporary directory that is removed at exit.
pub struct PkgBenchSet {
    /// Keeps the files.
    pub dir: tempfile::TempDir,
    /// One disk per format, in [`Format::ALL`] order.
    pub disks: Vec<Disk>,
}

/// The benchmark disks, built on first use and shared by the process.
pub fn shared() -> &'static PkgBenchSet {
    static SET: std::sync::OnceLock<PkgBenchSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("vmch-pkgbench")
            .tempdir()
            .expect("a temp dir for the benchmark disks");
        crate::images::remove_at_exit(dir.path());
        let disks = build(dir.path())
            .unwrap_or_else(|e| panic!("building the package benchmark disks: {e}"));
        PkgBenchSet { dir, disks }
    })
}

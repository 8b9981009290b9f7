//! Whole-inspection tests on in-memory disk sets.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vmchannel_proto::{FileKind, OsInfo};

use super::arch::tests::elf;
use super::testfs::TestFs;
use super::*;
use crate::fs::FileSystem;

const X86_64: (u8, u8, u16) = (2, 1, 0x3e);
const AARCH64: (u8, u8, u16) = (2, 1, 0xb7);

fn elf_of(m: (u8, u8, u16)) -> Vec<u8> {
    elf(m.0, m.1, m.2)
}

fn swap(device: &str, uuid: &str) -> Volume {
    let mut v = TestFs::new().volume(device, Some(uuid), None);
    v.fs = None;
    v.info.fstype = String::from("swap");
    v
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

fn devices(info: &OsInfo) -> Vec<&str> {
    info.filesystems.iter().map(|f| f.device.as_str()).collect()
}

const DEBIAN_FSTAB: &[u8] = b"# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=1111-root /               ext4    errors=remount-ro 0       1
LABEL=boot      /boot           ext4    defaults        0       2
UUID=3333-swap none            swap    sw              0       0
proc            /proc           proc    defaults        0       0
tmpfs           /tmp            tmpfs   defaults        0       0
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0
";

const DEBIAN_STATUS: &[u8] = b"Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: perl-base
Status: install ok installed
Architecture: amd64
Version: 1:5.36.0-7+deb12u1
Description: minimal Perl system
 Perl is a scripting language used in many system scripts and utilities.
 .
 This package provides a Perl interpreter.

Package: vim-tiny
Status: deinstall ok config-files
Architecture: amd64
Version: 2:9.0.1378-2
Description: Vi IMproved - enhanced vi editor - compact version
";

fn debian_root() -> TestFs {
    TestFs::new()
        .file(
            "/etc/os-release",
            b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
              VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        )
        .file("/etc/debian_version", b"12.5\n")
        .file("/etc/hostname", b"debian12\n")
        .file("/etc/hosts", b"127.0.0.1 localhost\n")
        .file("/etc/fstab", DEBIAN_FSTAB)
        .file("/bin/ls", &elf_of(X86_64))
        .dir("/boot")
        .file("/var/lib/dpkg/status", DEBIAN_STATUS)
}

fn debian_disks(root: TestFs) -> Vec<Volume> {
    alloc::vec![
        root.volume("/dev/sda1", Some("1111-root"), None),
        TestFs::new()
            .file("/vmlinuz-6.1.0-18-amd64", b"")
            .file("/grub/grub.cfg", b"")
            .volume("/dev/sda2", Some("2222-boot"), Some("boot")),
        swap("/dev/sda5", "3333-swap"),
    ]
}

#[test]
fn debian_12() {
    let disks = debian_disks(debian_root());
    let os = inspect(&disks, true);
    assert_eq!(os.len(), 1);
    let d = &os[0];
    assert_eq!(d.root, "/dev/sda1");
    assert_eq!(d.os_type, "linux");
    assert_eq!(d.distro.as_deref(), Some("debian"));
    // libguestfs: Debian's os-release lacks the minor version, so /etc/debian_version decides
    // both the version and the product name.
    assert_eq!(d.product_name.as_deref(), Some("12.5"));
    assert_eq!((d.major_version, d.minor_version), (12, 5));
    assert_eq!(d.arch.as_deref(), Some("x86_64"));
    assert_eq!(d.hostname.as_deref(), Some("debian12"));
    assert_eq!(d.package_format.as_deref(), Some("deb"));
    assert_eq!(d.package_management.as_deref(), Some("apt"));
    assert_eq!(d.osinfo.as_deref(), Some("debian12"));
    assert_eq!(
        pairs(&d.mountpoints),
        [("/dev/sda1", "/"), ("/dev/sda2", "/boot")]
    );
    assert_eq!(devices(d), ["/dev/sda1", "/dev/sda2", "/dev/sda5"]);
    assert_eq!(d.filesystems[2].fstype, "swap");
    let apps: Vec<(&str, u32, &str, &str)> = d
        .applications
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                a.epoch,
                a.version.as_str(),
                a.release.as_str(),
            )
        })
        .collect();
    assert_eq!(
        apps,
        [
            ("base-files", 0, "12.4+deb12u5", ""),
            ("perl-base", 1, "5.36.0", "7+deb12u1")
        ]
    );
    assert_eq!(d.applications[1].summary, "minimal Perl system");
    assert_eq!(
        d.applications[1].description,
        "Perl is a scripting language used in many system scripts and utilities.\n.\n\
         This package provides a Perl interpreter."
    );
    assert_eq!(d.applications[1].arch, "amd64");

    // Without applications, nothing else changes.
    let plain = inspect(&disks, false);
    assert!(plain[0].applications.is_empty());
    assert_eq!(
        OsInfo {
            applications: Vec::new(),
            ..d.clone()
        },
        plain[0]
    );
}

#[test]
fn debian_os_tree() {
    let disks = debian_disks(debian_root());
    let t = os_tree(&disks, "/dev/sda1").unwrap();
    assert_eq!(
        pairs(t.mounts()),
        [("/dev/sda1", "/"), ("/dev/sda2", "/boot")]
    );
    assert_eq!(t.read_file("/boot/grub/grub.cfg", 10).unwrap(), b"");
    assert_eq!(
        t.stat("/boot/vmlinuz-6.1.0-18-amd64").unwrap().kind,
        FileKind::File
    );
    assert!(matches!(
        os_tree(&disks, "/dev/sdz1"),
        Err(FsError::NotFound(_))
    ));
    // The swap volume has no filesystem.
    assert!(os_tree(&disks, "/dev/sda5").is_err());
    // The /boot filesystem is not an operating system's root.
    assert!(matches!(
        os_tree(&disks, "/dev/sda2"),
        Err(FsError::NotFound(_))
    ));
}

#[test]
fn ubuntu_2204_both_ways() {
    let base = TestFs::new()
        .dir("/etc")
        .file(
            "/etc/fstab",
            b"/dev/disk/by-uuid/u-root / ext4 defaults 0 1\n",
        )
        .link("/bin", "usr/bin")
        .file("/usr/bin/bash", &elf_of(X86_64));
    let lsb = base.clone().file(
        "/etc/lsb-release",
        b"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION=\"Ubuntu 22.04.4 LTS\"\n",
    );
    let osr = base.file(
        "/etc/os-release",
        b"PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n",
    );
    for fs in [lsb, osr] {
        let os = inspect(&[fs.volume("/dev/sda1", Some("u-root"), None)], false);
        assert_eq!(os.len(), 1);
        let u = &os[0];
        assert_eq!(u.distro.as_deref(), Some("ubuntu"));
        assert_eq!(u.product_name.as_deref(), Some("Ubuntu 22.04.4 LTS"));
        assert_eq!((u.major_version, u.minor_version), (22, 4));
        assert_eq!(u.osinfo.as_deref(), Some("ubuntu22.04"));
        assert_eq!(u.arch.as_deref(), Some("x86_64"));
        assert_eq!(u.package_management.as_deref(), Some("apt"));
        assert_eq!(u.hostname, None);
        assert_eq!(pairs(&u.mountpoints), [("/dev/sda1", "/")]);
    }
}

fn alpine_root() -> TestFs {
    TestFs::new()
        .file("/etc/alpine-release", b"3.19.1\n")
        .file("/etc/hostname", b"alpine\n")
        .file(
            "/etc/fstab",
            b"/dev/vda1 / ext4 rw,relatime 0 1\n/dev/vda2 swap swap defaults 0 0\n",
        )
        .file("/bin/busybox", &elf_of(AARCH64))
        .link("/bin/sh", "/bin/busybox")
        .file("/lib/apk/db/installed", super::apk::tests::INSTALLED)
}

#[test]
fn alpine_319() {
    let disks = [
        alpine_root().volume("/dev/sda1", None, None),
        swap("/dev/sda2", "s"),
    ];
    let os = inspect(&disks, true);
    assert_eq!(os.len(), 1);
    let a = &os[0];
    assert_eq!(a.distro.as_deref(), Some("alpinelinux"));
    assert_eq!(a.product_name.as_deref(), Some("3.19.1"));
    assert_eq!((a.major_version, a.minor_version), (3, 19));
    assert_eq!(a.osinfo.as_deref(), Some("alpinelinux3.19"));
    assert_eq!(a.arch.as_deref(), Some("aarch64"));
    assert_eq!(a.hostname.as_deref(), Some("alpine"));
    assert_eq!(
        (a.package_format.as_deref(), a.package_management.as_deref()),
        (Some("apk"), Some("apk"))
    );
    assert_eq!(pairs(&a.mountpoints), [("/dev/sda1", "/")]);
    assert_eq!(devices(a), ["/dev/sda1", "/dev/sda2"]);
    let names: Vec<&str> = a.applications.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["busybox", "musl"]);
    assert_eq!(a.applications[0].release, "15");
}

#[test]
fn usr_merged_with_separate_usr() {
    let root = TestFs::new()
        .dir("/etc")
        .dir("/usr")
        .link("/bin", "usr/bin")
        .link("/lib", "usr/lib")
        .link("/etc/os-release", "../usr/lib/os-release")
        .file("/etc/hostname", b"fedora-box\n")
        .file(
            "/etc/fstab",
            b"UUID=f-root / ext4 defaults 1 1\nUUID=f-usr /usr ext4 defaults 1 2\n",
        );
    let usr = TestFs::new()
        .file("/bin/bash", &elf_of(AARCH64))
        .file("/bin/dnf", b"#!/usr/bin/python3\n")
        .dir("/share")
        .dir("/local")
        .dir("/src")
        .file(
            "/lib/os-release",
            b"NAME=\"Fedora Linux\"\nVERSION_ID=39\nID=fedora\nPRETTY_NAME=\"Fedora Linux 39 (Server Edition)\"\n",
        );
    let disks = [
        root.volume("/dev/sda1", Some("f-root"), None),
        usr.volume("/dev/sda2", Some("f-usr"), None),
    ];
    let os = inspect(&disks, true);
    assert_eq!(os.len(), 1, "the /usr filesystem is not a root");
    let f = &os[0];
    assert_eq!(f.root, "/dev/sda1");
    assert_eq!(f.distro.as_deref(), Some("fedora"));
    assert_eq!(
        f.product_name.as_deref(),
        Some("Fedora Linux 39 (Server Edition)")
    );
    assert_eq!((f.major_version, f.minor_version), (39, 0));
    assert_eq!(f.osinfo.as_deref(), Some("fedora39"));
    assert_eq!(f.arch.as_deref(), Some("aarch64"));
    assert_eq!(f.package_management.as_deref(), Some("dnf"));
    assert_eq!(f.package_format.as_deref(), Some("rpm"));
    assert!(f.applications.is_empty());
    assert_eq!(
        pairs(&f.mountpoints),
        [("/dev/sda1", "/"), ("/dev/sda2", "/usr")]
    );
    assert_eq!(devices(f), ["/dev/sda1", "/dev/sda2"]);
    // Without /usr mounted, /bin is a dangling link: no arch, no os-release.
    let alone = inspect(&disks[..1], false);
    assert_eq!(alone[0].arch, None);
    assert_eq!(alone[0].distro, None);
    assert_eq!(pairs(&alone[0].mountpoints), [("/dev/sda1", "/")]);
}

#[test]
fn two_roots_and_other_volumes() {
    let disks = [
        // Listed out of order on purpose.
        alpine_root().volume("/dev/sdb1", None, None),
        TestFs::new()
            .dir("/lost+found")
            .file("/data.bin", b"x")
            .volume("/dev/sdb2", None, Some("data")),
        Volume {
            info: vmchannel_proto::FilesystemInfo {
                device: String::from("/dev/sdc"),
                fstype: String::from("xfs"),
                label: None,
                uuid: None,
            },
            partuuid: None,
            partlabel: None,
            fs: None,
            subvolume: None,
        },
        debian_root().volume("/dev/sda1", Some("1111-root"), None),
        TestFs::new().file("/grub/grub.cfg", b"").volume(
            "/dev/sda2",
            Some("2222-boot"),
            Some("boot"),
        ),
    ];
    let os = inspect(&disks, false);
    let roots: Vec<&str> = os.iter().map(|o| o.root.as_str()).collect();
    assert_eq!(roots, ["/dev/sda1", "/dev/sdb1"]);
    assert_eq!(os[0].distro.as_deref(), Some("debian"));
    assert_eq!(os[1].distro.as_deref(), Some("alpinelinux"));
    // The Alpine fstab's /dev/vda1 is the first disk's first partition, not its own root.
    assert_eq!(pairs(&os[1].mountpoints), [("/dev/sdb1", "/")]);
    // Its swap (/dev/vda2 -> /dev/sda2) is the Debian /boot here: reported, not mounted.
    assert_eq!(devices(&os[1]), ["/dev/sda2", "/dev/sdb1"]);
    assert!(inspect(&disks[1..3], true).is_empty());
    assert!(inspect(&[], true).is_empty());
}

#[test]
fn root_count_is_capped() {
    let disks: Vec<Volume> = (0..MAX_ROOTS + 5)
        .map(|i| {
            TestFs::new()
                .dir("/etc")
                .dir("/bin")
                .file("/etc/hosts", b"")
                .volume(&format!("/dev/sda{}", i + 1), None, None)
        })
        .collect();
    let os = inspect(&disks, false);
    assert_eq!(os.len(), MAX_ROOTS);
    assert_eq!(os[0].root, "/dev/sda1");
    assert_eq!(os[9].root, "/dev/sda10");
    assert_eq!(os[0].distro, None);
    assert_eq!(os[0].osinfo, None);
    assert_eq!(os[0].package_format, None);
}

#[test]
fn symlink_loop_in_bin_sh() {
    let root = TestFs::new()
        .dir("/etc")
        .dir("/bin")
        .file("/etc/fstab", b"")
        .link("/bin/sh", "/bin/sh")
        .link("/etc/hostname", "hostname")
        .file("/etc/alpine-release", b"3.19.0\n");
    let os = inspect(&[root.volume("/dev/sda1", None, None)], true);
    assert_eq!(os.len(), 1);
    assert_eq!(os[0].arch, None);
    assert_eq!(os[0].hostname, None);
    assert_eq!(os[0].distro.as_deref(), Some("alpinelinux"));
    assert!(os[0].applications.is_empty());
}

#[test]
fn fstab_with_garbage() {
    let mut fstab = Vec::new();
    fstab.extend_from_slice(b"\xff\xfe garbage\n\0\0\0\nUUID\nLABEL= / ext4\n   \n#\n");
    fstab.extend_from_slice(b"UUID=2222-boot /boot ext4 defaults 0 2 extra fields here\n");
    fstab.extend_from_slice(b"UUID=1111-root /boot/../etc ext4 defaults\n");
    fstab.extend_from_slice(b"UUID=1111-root relative ext4 defaults\n");
    fstab.extend_from_slice(&alloc::vec![b'a'; 10_000]);
    fstab.extend_from_slice(b"\n/dev/sda9 /srv ext4 defaults\nUUID=unknown /home ext4 defaults\n");
    fstab.extend_from_slice(b"/dev/sda2 /dev/shm ext4 defaults\n/dev/sda2 /sys ext4 defaults\n");
    let root = debian_root().file("/etc/fstab", &fstab);
    let disks = debian_disks(root);
    let os = inspect(&disks, false);
    assert_eq!(os.len(), 1);
    assert_eq!(
        pairs(&os[0].mountpoints),
        [
            ("/dev/sda1", "/"),
            ("/dev/sda9", "/srv"),
            ("/dev/sda2", "/boot"),
            ("/dev/sda1", "/boot/../etc")
        ]
    );
    let t = os_tree(&disks, "/dev/sda1").unwrap();
    // `/boot/../etc` is not a usable mountpoint; /dev/sda9 does not exist.
    assert_eq!(
        pairs(t.mounts()),
        [("/dev/sda1", "/"), ("/dev/sda2", "/boot")]
    );
    assert_eq!(os[0].hostname.as_deref(), Some("debian12"));
}

#[test]
fn huge_dpkg_status_is_refused() {
    let root = debian_root().broken("/var/lib/dpkg/status", apps::MAX_DB_FILE + 1);
    let os = inspect(&debian_disks(root), true);
    assert_eq!(os.len(), 1);
    assert!(os[0].applications.is_empty());
    assert_eq!(os[0].distro.as_deref(), Some("debian"));
}

#[test]
fn corrupt_and_non_utf8_files() {
    let root = TestFs::new()
        .dir("/etc")
        .dir("/bin")
        .file("/etc/hosts", b"")
        .broken("/etc/os-release", 100)
        .file("/etc/lsb-release", b"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=2\xff.04\nDISTRIB_DESCRIPTION=\"Ub\xc3\x28untu\"\n")
        .file("/etc/hostname", b"\xfe\xffhost\xe9\n")
        .broken("/etc/fstab", 10)
        .file("/bin/bash", b"\x7fELF")
        .file("/bin/ls", b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x03\0")
        .file("/var/lib/dpkg/status", b"Package: \xff\xfe\nStatus: install ok installed\nVersion: \xff1.0-\xfe\n");
    let os = inspect(&[root.volume("/dev/sda1", None, None)], true);
    assert_eq!(os.len(), 1);
    let o = &os[0];
    assert_eq!(o.distro.as_deref(), Some("ubuntu"));
    assert_eq!(o.product_name.as_deref(), Some("Ub\u{fffd}(untu"));
    assert_eq!((o.major_version, o.minor_version), (2, 0));
    assert_eq!(o.hostname.as_deref(), Some("\u{fffd}\u{fffd}host\u{fffd}"));
    assert_eq!(o.arch.as_deref(), Some("i386"));
    assert_eq!(pairs(&o.mountpoints), [("/dev/sda1", "/")]);
    assert_eq!(o.applications.len(), 1);
    assert_eq!(o.applications[0].name, "\u{fffd}\u{fffd}");
    assert_eq!(o.applications[0].release, "\u{fffd}");
}

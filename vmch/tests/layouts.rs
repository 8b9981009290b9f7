//! `vmch inspect --format xml` on the layouts of real cloud images (Fedora's btrfs
//! subvolumes, RHEL's XFS on LVM, openSUSE's XFS, Arch's btrfs, Ubuntu's four partitions, each
//! with its EFI vfat partition), under QEMU (TCG) and under the bundled VMM, compared with
//! virt-inspector's XML for the same disks (recorded in tests/data/inspector/).
//!
//! The whole document must be virt-inspector's, byte for byte, on every layout: roots,
//! mountpoints, filesystems, distribution fields, applications from each package database
//! (rpm's sqlite, Berkeley DB and ndb stores, pacman, dpkg) and icons. openSUSE's reference
//! was recorded on the same disk with its rpm database in sqlite, which Debian's
//! libguestfs can read (see `Layout::build_for_reference`); vmch reads the ndb one.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use vmchannel_inspect::disk::partition::read_table;
use vmchannel_tests::inproc::disk::FileDisk;

use vmchannel_tests::hosts::{require_kvm, require_qemu};
use vmchannel_tests::images::pseudo_random;
use vmchannel_tests::layouts::{Layout, compressible, placements, shared};
use vmchannel_tests::procs::assert_status as status;

mod support;
use support::{text, vmch};

const QEMU: &[&str] = &["--backend", "qemu", "--accel", "tcg"];
const VMM: &[&str] = &["--backend", "vmm"];

fn check(backend: &[&str]) {
    let set = shared();
    let mut failures = Vec::new();
    for layout in Layout::ALL {
        let want = std::fs::read_to_string(layout.inspector_xml()).expect("recorded XML");
        let out = Command::new(env!("CARGO_BIN_EXE_vmch"))
            .arg("inspect")
            .args(backend)
            .args(["--format", "xml"])
            .arg(set.image(layout))
            .output()
            .expect("vmch runs");
        let got = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            failures.push(format!(
                "{}: exit {:?}: {}\n{got}",
                layout.name(),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        if placements(&got) != placements(&want) {
            failures.push(format!(
                "{}: roots, mountpoints or filesystems differ\n--- virt-inspector\n{want}\n--- vmch\n{got}",
                layout.name()
            ));
        } else if got != want {
            failures.push(format!(
                "{}: XML differs\n--- virt-inspector\n{want}\n--- vmch\n{got}",
                layout.name()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `ls`, `cat`, `stat`, `download` and `df` on vfat, btrfs (a named subvolume and the OS tree
/// over three subvolumes, /boot and the ESP), XFS and XFS on an LV.
fn files(backend: &[&str]) {
    let set = shared();
    let img = |l: Layout| set.image(l).to_str().expect("UTF-8 temp path").to_string();
    let (fedora, rhel, suse) = (
        img(Layout::Fedora),
        img(Layout::Rhel),
        img(Layout::Opensuse),
    );
    let dir = tempfile::tempdir().unwrap();

    // vfat on its own, and as /boot/efi inside Fedora's tree (btrfs root, ext4 /boot).
    let out = vmch("ls", backend, &["--device", "/dev/sda2", &fedora, "/EFI"]);
    status(&out, 0);
    assert_eq!(text(&out.stdout), "BOOT\nfedora\n");
    let out = vmch("cat", backend, &[&fedora, "/boot/efi/EFI/fedora/grub.cfg"]);
    status(&out, 0);
    assert_eq!(out.stdout, b"search --fs-uuid --set=dev x\n");
    let dest = dir.path().join("BOOTX64.EFI");
    let dest_s = dest.to_str().unwrap();
    let out = vmch(
        "download",
        backend,
        &[&fedora, "/boot/efi/EFI/BOOT/BOOTX64.EFI", dest_s],
    );
    status(&out, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), pseudo_random(70_000, 3));

    // btrfs: a named subvolume on its own, and zstd-compressed files through the OS tree
    // (root and var subvolumes).
    let out = vmch(
        "ls",
        backend,
        &["--device", "btrfsvol:/dev/sda4/home", &fedora, "/"],
    );
    status(&out, 0);
    assert_eq!(text(&out.stdout), "fedora\n");
    let dest = dir.path().join("README");
    let out = vmch(
        "download",
        backend,
        &[
            &fedora,
            "/usr/share/doc/fedora/README",
            dest.to_str().unwrap(),
        ],
    );
    status(&out, 0);
    assert!(
        std::fs::read(&dest).unwrap() == compressible(300_000),
        "compressed file differs"
    );
    let out = vmch("stat", backend, &[&fedora, "/var/log/messages"]);
    status(&out, 0);
    let s = text(&out.stdout);
    assert!(s.contains("  Type: regular file\n  Size: 200000\n"), "{s}");

    // XFS root (openSUSE), and XFS on the LV rhel/root by every name.
    let out = vmch("cat", backend, &[&suse, "/etc/HOSTNAME"]);
    status(&out, 0);
    assert_eq!(out.stdout, b"leap-vm\n");
    let out = vmch("ls", backend, &["-l", &suse, "/etc"]);
    status(&out, 0);
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.ends_with(" os-release")),
        "{}",
        text(&out.stdout)
    );
    let out = vmch("cat", backend, &[&rhel, "/etc/hostname"]);
    status(&out, 0);
    assert_eq!(out.stdout, b"rhel9.example.com\n");
    for dev in ["/dev/rhel/root", "/dev/mapper/rhel-root"] {
        let out = vmch(
            "cat",
            backend,
            &["--device", dev, &rhel, "/etc/redhat-release"],
        );
        status(&out, 0);
        assert_eq!(
            out.stdout, b"Red Hat Enterprise Linux release 9.4 (Plow)\n",
            "{dev}"
        );
    }

    // df over every readable filesystem, the LV and the subvolumes included.
    let out = vmch("df", backend, &[&rhel]);
    status(&out, 0);
    let df = text(&out.stdout);
    for dev in ["/dev/sda2", "/dev/sda3", "/dev/rhel/root"] {
        assert!(df.contains(&format!("{rhel}:{dev} ")), "{dev}: {df}");
    }
    let out = vmch("df", backend, &[&fedora]);
    status(&out, 0);
    let df = text(&out.stdout);
    assert!(
        df.contains(&format!("{fedora}:btrfsvol:/dev/sda4/root ")),
        "{df}"
    );
}

/// Byte offset of partition `number` of `img`.
fn partition_start(img: &Path, number: u32) -> u64 {
    let disk = FileDisk::open(img).unwrap();
    let table = read_table(&disk).unwrap().expect("a partition table");
    table
        .partitions
        .iter()
        .find(|p| p.number == number)
        .expect("the partition")
        .start
}

fn patch(img: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// Copies of the Fedora and RHEL layouts made hostile:
/// - Fedora: the ESP's FAT has every entry pointing at cluster 2 (chains that loop); all of
///   the btrfs filesystem past its superblock is garbage (checksums that fail, trees that
///   are not trees);
/// - RHEL: XFS /boot's allocation-group headers and first inodes are garbage; the LVM
///   metadata area is garbage (its checksum fails).
fn hostile(dir: &Path) -> (PathBuf, PathBuf) {
    let set = shared();
    let fedora = dir.join("fedora-hostile.img");
    let rhel = dir.join("rhel-hostile.img");
    std::fs::copy(set.image(Layout::Fedora), &fedora).unwrap();
    std::fs::copy(set.image(Layout::Rhel), &rhel).unwrap();

    let esp = partition_start(&fedora, 2);
    let mut bpb = [0u8; 64];
    std::fs::File::open(&fedora)
        .unwrap()
        .read_exact_at(&mut bpb, esp)
        .unwrap();
    let sector = u16::from_le_bytes([bpb[11], bpb[12]]) as u64;
    let reserved = u16::from_le_bytes([bpb[14], bpb[15]]) as u64;
    let fat_sectors = u16::from_le_bytes([bpb[22], bpb[23]]) as u64;
    assert!(fat_sectors > 0, "the test ESP is FAT12/16");
    let mut fat = vec![0u8; (fat_sectors * sector) as usize];
    for (i, pair) in fat.chunks_exact_mut(2).enumerate() {
        let v: u16 = if i < 2 { 0xfff8 } else { 2 };
        pair.copy_from_slice(&v.to_le_bytes());
    }
    patch(&fedora, esp + reserved * sector, &fat);
    let btrfs = partition_start(&fedora, 4);
    patch(
        &fedora,
        btrfs + (128 << 10),
        &pseudo_random((150 << 20) - (128 << 10), 11),
    );

    let boot = partition_start(&rhel, 3);
    patch(&rhel, boot + 512, &pseudo_random((4 << 20) - 512, 12));
    let pv = partition_start(&rhel, 4);
    patch(
        &rhel,
        pv + 4096 + 512,
        &pseudo_random((1 << 20) - 4096 - 512, 13),
    );
    (fedora, rhel)
}

/// Hostile filesystems and volumes beside a good disk: the good OS is still found with
/// its placements, each hostile one answers a clear error (status 4), in bounded time.
fn hostile_checks(backend: &[&str]) {
    let set = shared();
    let dir = tempfile::tempdir().unwrap();
    let (fedora, rhel) = hostile(dir.path());
    let ubuntu = set.image(Layout::Ubuntu).to_str().unwrap().to_string();
    let (fedora, rhel) = (fedora.to_str().unwrap(), rhel.to_str().unwrap());
    let add = ["--add", fedora, "--add", rhel];

    let start = std::time::Instant::now();
    // Without -j, several images are the disks of one machine.
    let out = vmch(
        "inspect",
        backend,
        &["--format", "xml", &ubuntu, fedora, rhel],
    );
    status(&out, 0);
    let want = std::fs::read_to_string(Layout::Ubuntu.inspector_xml()).unwrap();
    let (got, want) = (placements(&text(&out.stdout)), placements(&want));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (&got[0].root, &got[0].mountpoints),
        (&want[0].root, &want[0].mountpoints)
    );
    let log = text(&out.stderr);

    // /dev/sdb2: the looping ESP; sdb4: the garbage btrfs; sdc3: the garbage XFS; the LVs of
    // sdc4 are gone with the metadata.
    for (dev, path) in [
        ("/dev/sdb2", "/EFI/BOOT"),
        ("/dev/sdb4", "/"),
        ("/dev/sdc3", "/"),
        ("/dev/rhel/root", "/"),
    ] {
        let out = vmch(
            "ls",
            backend,
            &[&["--device", dev, &ubuntu, path][..], &add].concat(),
        );
        let err = text(&out.stderr);
        // A missing device is the user's error (1); a corrupt volume an unreadable image (4).
        let (want, code) = if dev.starts_with("/dev/rhel") {
            ("no device", 1)
        } else {
            ("corrupt", 4)
        };
        assert_eq!(out.status.code(), Some(code), "{dev}: {err}");
        assert!(err.contains(want), "{dev}: wanted {want:?}: {err}");
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(300),
        "took {:?}; {log}",
        start.elapsed()
    );
}

#[test]
fn hostile_volumes_under_qemu() {
    if !require_qemu("hostile_volumes_under_qemu") {
        return;
    }
    hostile_checks(QEMU);
}

#[test]
fn hostile_volumes_under_the_vmm() {
    if !require_kvm("hostile_volumes_under_the_vmm") {
        return;
    }
    hostile_checks(VMM);
}

#[test]
fn files_on_every_new_type_under_qemu() {
    if !require_qemu("files_on_every_new_type_under_qemu") {
        return;
    }
    files(QEMU);
}

#[test]
fn files_on_every_new_type_under_the_vmm() {
    if !require_kvm("files_on_every_new_type_under_the_vmm") {
        return;
    }
    files(VMM);
}

#[test]
fn layouts_under_qemu_match_virt_inspector() {
    if !require_qemu("layouts_under_qemu_match_virt_inspector") {
        return;
    }
    check(QEMU);
}

#[test]
fn layouts_under_the_vmm_match_virt_inspector() {
    if !require_kvm("layouts_under_the_vmm_match_virt_inspector") {
        return;
    }
    check(VMM);
}

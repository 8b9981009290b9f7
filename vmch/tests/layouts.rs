//! `vmch inspect --format xml` on the layouts of real cloud images (Fedora's btrfs
//! subvolumes, RHEL's XFS on LVM, openSUSE's XFS, Arch's btrfs, Ubuntu's four partitions, each
//! with its EFI vfat partition), under QEMU (TCG) and under the bundled VMM, compared with
//! virt-inspector's XML for the same disks (recorded in tests/data/inspector/).
//!
//! The roots, mountpoints and filesystems must be virt-inspector's on every layout; on Ubuntu,
//! whose package format is read today, the whole document must be. The distribution fields of
//! the rpm and pacman systems come with their readers.

use std::process::Command;

use vmchannel_tests::hosts::{require_kvm, require_qemu};
use vmchannel_tests::layouts::{Layout, placements, shared};

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
        } else if layout == Layout::Ubuntu && got != want {
            failures.push(format!(
                "{}: XML differs\n--- virt-inspector\n{want}\n--- vmch\n{got}",
                layout.name()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
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

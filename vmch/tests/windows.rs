//! Windows guests end to end: `vmch inspect --format xml` on a Windows Server 2022-like MBR
//! disk and a Windows 11-like GPT disk (`vmchannel_tests::windows`: NTFS by mkntfs and an
//! ntfs-3g mount, hives by hivexregedit) must equal virt-inspector's XML for the same disks
//! byte for byte (recorded in tests/data/inspector/), drive mappings and applications
//! included; and the file commands take Windows paths as libguestfs's tools do: a drive
//! letter, backslashes, any case. Under QEMU (TCG) and under the bundled VMM.

use vmchannel_tests::hosts::{require_kvm, require_qemu};
use vmchannel_tests::procs::assert_status as status;
use vmchannel_tests::windows::{WinLayout, shared};

mod support;
use support::{text, vmch};

const QEMU: &[&str] = &["--backend", "qemu", "--accel", "tcg"];
const VMM: &[&str] = &["--backend", "vmm"];

fn inspect(backend: &[&str]) {
    let set = shared();
    let mut failures = Vec::new();
    for layout in WinLayout::ALL {
        let want = std::fs::read_to_string(layout.inspector_xml()).expect("recorded XML");
        let img = set
            .image(layout)
            .to_str()
            .expect("UTF-8 temp path")
            .to_string();
        let out = vmch("inspect", backend, &["--format", "xml", &img]);
        let got = text(&out.stdout);
        if !out.status.success() {
            failures.push(format!(
                "{}: exit {:?}: {}\n{got}",
                layout.name(),
                out.status.code(),
                text(&out.stderr)
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

/// `cat`, `ls`, `stat` and `download` with Windows paths.
fn files(backend: &[&str]) {
    let set = shared();
    let srv = set
        .image(WinLayout::Server2022)
        .to_str()
        .expect("UTF-8 temp path")
        .to_string();
    // A drive letter and backslashes, in the wrong case: C: is the system's own volume.
    let out = vmch("cat", backend, &[&srv, "c:\\WINDOWS\\WIN.INI"]);
    status(&out, 0);
    assert!(text(&out.stdout).starts_with("; for 16-bit app support\r\n"));
    // The OS tree without a letter is case-insensitive too.
    let out = vmch(
        "cat",
        backend,
        &[&srv, "/windows/system32/DRIVERS/etc/HOSTS"],
    );
    status(&out, 0);
    assert!(text(&out.stdout).contains("localhost name resolution"));
    // Non-ASCII names, found whatever their case.
    let out = vmch(
        "cat",
        backend,
        &[&srv, "C:\\users\\public\\documents\\übersicht.TXT"],
    );
    status(&out, 0);
    assert_eq!(text(&out.stdout), "Grüße aus Zürich\r\n");
    // ls lists the names as they are on disk.
    let out = vmch("ls", backend, &[&srv, "c:\\"]);
    status(&out, 0);
    let names = text(&out.stdout);
    for name in ["Windows", "Program Files", "Users", "$Recycle.Bin"] {
        assert!(names.lines().any(|l| l == name), "{name} in {names}");
    }
    let out = vmch("stat", backend, &[&srv, "C:\\Windows\\System32\\cmd.exe"]);
    status(&out, 0);
    assert!(
        text(&out.stdout).contains("Type: regular file"),
        "{}",
        text(&out.stdout)
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let dest = dir.path().join("hosts");
    let out = vmch(
        "download",
        backend,
        &[
            &srv,
            "C:/Windows/System32/drivers/etc/hosts",
            dest.to_str().expect("UTF-8 temp path"),
        ],
    );
    status(&out, 0);
    assert!(
        std::fs::read_to_string(&dest)
            .expect("downloaded")
            .contains("localhost")
    );
    // Another drive of the system (Windows 11's R:, its recovery partition): its own
    // filesystem, names found case-insensitively over the protocol.
    let win11 = set
        .image(WinLayout::Win11)
        .to_str()
        .expect("UTF-8 temp path")
        .to_string();
    let out = vmch(
        "cat",
        backend,
        &[&win11, "r:\\RECOVERY\\windowsre\\reagent.XML"],
    );
    status(&out, 0);
    assert!(text(&out.stdout).contains("<WindowsRE version=\"2.0\">"));
    let out = vmch("ls", backend, &[&win11, "R:\\Recovery"]);
    status(&out, 0);
    assert_eq!(text(&out.stdout), "WindowsRE\n");
    // A letter the system does not map, and a missing file: clear errors, status 1.
    let out = vmch("cat", backend, &[&srv, "Q:\\x"]);
    status(&out, 1);
    assert!(
        text(&out.stderr).contains("drive Q: is not a drive"),
        "{}",
        text(&out.stderr)
    );
    let out = vmch("cat", backend, &[&srv, "C:\\Windows\\nowhere.ini"]);
    status(&out, 1);
}

#[test]
fn windows_disks_under_qemu_match_virt_inspector() {
    if !require_qemu("windows_disks_under_qemu_match_virt_inspector") {
        return;
    }
    inspect(QEMU);
}

#[test]
fn windows_disks_under_the_vmm_match_virt_inspector() {
    if !require_kvm("windows_disks_under_the_vmm_match_virt_inspector") {
        return;
    }
    inspect(VMM);
}

#[test]
fn windows_paths_under_qemu() {
    if !require_qemu("windows_paths_under_qemu") {
        return;
    }
    files(QEMU);
}

#[test]
fn windows_paths_under_the_vmm() {
    if !require_kvm("windows_paths_under_the_vmm") {
        return;
    }
    files(VMM);
}

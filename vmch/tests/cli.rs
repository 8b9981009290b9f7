//! `vmch`'s subcommands end to end, as a user runs them: the built binary on disk images the
//! tests build (raw and qcow2), under QEMU (TCG) and under the bundled VMM, checking output
//! and exit statuses.

use std::path::{Path, PathBuf};
use std::process::Command;

use vmchannel_tests::hosts::{require_kvm, require_qemu};
use vmchannel_tests::images::{DiskSet, ids};
use vmchannel_tests::procs::assert_status as status;

mod support;
use support::{text, vmch};

const QEMU: &[&str] = &["--backend", "qemu", "--accel", "tcg"];
const VMM: &[&str] = &["--backend", "vmm"];

fn disks() -> &'static DiskSet {
    vmchannel_tests::images::shared()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The Debian test disk as qcow2 (compressed), beside the raw one.
fn debian_qcow2(dir: &Path) -> PathBuf {
    let q = dir.join("debian.qcow2");
    let ok = Command::new("qemu-img")
        .args(["convert", "-c", "-O", "qcow2"])
        .arg(&disks().debian)
        .arg(&q)
        .status()
        .expect("qemu-img runs");
    assert!(ok.success());
    q
}

/// The lines virt-inspector prints for the Debian test disk, in order (applications aside).
fn expected_debian_xml() -> Vec<String> {
    [
        "<?xml version=\"1.0\"?>",
        "<operatingsystems>",
        "  <operatingsystem>",
        "    <root>/dev/sda2</root>",
        "    <name>linux</name>",
        "    <arch>x86_64</arch>",
        "    <distro>debian</distro>",
        "    <product_name>12.5</product_name>",
        "    <major_version>12</major_version>",
        "    <minor_version>5</minor_version>",
        "    <package_format>deb</package_format>",
        "    <package_management>apt</package_management>",
        "    <hostname>debhost</hostname>",
        "    <osinfo>debian12</osinfo>",
        "    <mountpoints>",
        "      <mountpoint dev=\"/dev/sda2\">/</mountpoint>",
        "      <mountpoint dev=\"/dev/sda1\">/boot</mountpoint>",
        "    </mountpoints>",
        "    <filesystems>",
        "      <filesystem dev=\"/dev/sda1\">",
        "        <type>ext4</type>",
        &format!("        <label>{}</label>", ids::DEBIAN_BOOT_LABEL),
        &format!("        <uuid>{}</uuid>", ids::DEBIAN_BOOT_UUID),
        "      </filesystem>",
        "      <filesystem dev=\"/dev/sda2\">",
        "        <type>ext4</type>",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn inspect_checks(backend: &[&str], dir: &Path) {
    let d = disks();
    let debian = p(&d.debian);

    // virt-inspector's XML, with applications.
    let out = vmch("inspect", backend, &["--format", "xml", debian]);
    status(&out, 0);
    let xml = text(&out.stdout);
    let lines: Vec<&str> = xml.lines().collect();
    let expected = expected_debian_xml();
    assert_eq!(&lines[..expected.len()], expected.as_slice(), "{xml}");
    assert!(xml.contains("      <application>\n        <name>perl-base</name>\n        <epoch>1</epoch>\n        <version>5.36.0</version>\n        <release>7</release>\n"), "{xml}");
    assert!(xml.ends_with("  </operatingsystem>\n</operatingsystems>\n"));

    // The same disk as qcow2 gives the same XML.
    let qcow2 = debian_qcow2(dir);
    let out = vmch("inspect", backend, &["--format", "xml", p(&qcow2)]);
    status(&out, 0);
    assert_eq!(text(&out.stdout), xml);

    // JSON without applications.
    let out = vmch(
        "inspect",
        backend,
        &["--format", "json", "--no-applications", debian],
    );
    status(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let os = &json["operatingsystems"][0];
    assert_eq!(os["hostname"], "debhost");
    assert_eq!(os["major_version"], 12);
    assert_eq!(os["mountpoints"][1]["path"], "/boot");
    assert!(os.get("applications").is_none());

    // The summary, on the demo disk (no image given).
    let out = vmch("inspect", backend, &[]);
    status(&out, 0);
    let summary = text(&out.stdout);
    assert!(summary.starts_with("/dev/sda1: debian 12.7\n"), "{summary}");
    assert!(summary.contains("Hostname      vmch-demo"), "{summary}");
    assert!(
        summary.contains("deb, managed by apt: 7 installed"),
        "{summary}"
    );

    // -j: one JSON line per image, failures included; the worst status wins.
    let zero = dir.join("zero.img");
    std::fs::write(&zero, vec![0u8; 1 << 20]).unwrap();
    let missing = dir.join("missing.img");
    let out = vmch(
        "inspect",
        backend,
        &[
            "-j",
            "2",
            "--no-applications",
            debian,
            p(&zero),
            p(&missing),
            p(&qcow2),
        ],
    );
    status(&out, 4);
    let mut results: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    results.sort_by_key(|v| v["image"].as_str().unwrap().to_owned());
    let by_image = |path: &Path| {
        results
            .iter()
            .find(|v| v["image"] == p(path))
            .unwrap_or_else(|| panic!("no line for {}", path.display()))
    };
    assert_eq!(results.len(), 4);
    assert_eq!(
        by_image(&d.debian)["operatingsystems"][0]["root"],
        "/dev/sda2"
    );
    assert_eq!(by_image(&qcow2)["operatingsystems"][0]["root"], "/dev/sda2");
    assert_eq!(by_image(&zero)["error"]["kind"], "no-os");
    assert_eq!(by_image(&zero)["error"]["status"], 3);
    assert_eq!(by_image(&missing)["error"]["kind"], "unreadable-image");

    // Exit statuses on their own.
    status(&vmch("inspect", backend, &[p(&zero)]), 3);
    let out = vmch("inspect", backend, &[p(&missing)]);
    status(&out, 4);
    assert!(text(&out.stderr).contains("missing.img"));
    let vmdk = dir.join("disk.vmdk");
    std::fs::write(&vmdk, b"KDMV\x01\0\0\0").unwrap();
    let out = vmch("inspect", backend, &[p(&vmdk)]);
    status(&out, 4);
    assert!(text(&out.stderr).contains("VMDK"), "{}", text(&out.stderr));
    let out = vmch("inspect", backend, &["--kernel", "/etc/hostname", debian]);
    status(&out, 5);
    assert!(
        text(&out.stderr).contains("did not start"),
        "{}",
        text(&out.stderr)
    );
}

fn file_checks(backend: &[&str], dir: &Path) {
    let d = disks();
    let debian = p(&d.debian);

    let out = vmch("ls", backend, &[debian, "/boot"]);
    status(&out, 0);
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l == "vmlinuz-6.1.0-18-amd64")
    );
    let out = vmch("ls", backend, &["-l", debian, "/etc"]);
    status(&out, 0);
    let listing = text(&out.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rw-r--r--") && l.ends_with(" hostname")),
        "{listing}"
    );

    let out = vmch("cat", backend, &[debian, "/etc/hostname"]);
    status(&out, 0);
    assert_eq!(out.stdout, b"debhost\n");

    let out = vmch("stat", backend, &[debian, "/etc/hostname"]);
    status(&out, 0);
    let s = text(&out.stdout);
    assert!(s.contains("  Type: regular file\n  Size: 8\n"), "{s}");

    let out = vmch("df", backend, &[debian]);
    status(&out, 0);
    let df = text(&out.stdout);
    assert!(df.starts_with("Filesystem"), "{df}");
    for dev in ["/dev/sda1", "/dev/sda2"] {
        assert!(df.contains(&format!("{debian}:{dev} ")), "{df}");
    }
    assert!(!df.contains("/dev/sda3"), "swap has no usage: {df}");

    let dest = dir.join("vmlinuz");
    let out = vmch(
        "download",
        backend,
        &[debian, "/boot/vmlinuz-6.1.0-18-amd64", p(&dest)],
    );
    status(&out, 0);
    assert!(text(&out.stderr).contains("verified"));
    let got = std::fs::read(&dest).unwrap();
    assert_eq!(got.len(), 100_000);
    assert!(got.iter().all(|&b| b == 0x4d));

    // A path that is not there: status 1, and nothing left behind by download.
    let out = vmch("cat", backend, &[debian, "/etc/nope"]);
    status(&out, 1);
    assert!(text(&out.stderr).contains("not found"));
    let before = std::fs::read_dir(dir).unwrap().count();
    let out = vmch("download", backend, &[debian, "/etc/nope", p(dir)]);
    status(&out, 1);
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), before);
    // A disk with no OS: status 3 unless a device is named.
    let zero = dir.join("zero.img");
    std::fs::write(&zero, vec![0u8; 1 << 20]).unwrap();
    status(&vmch("ls", backend, &[p(&zero), "/"]), 3);
    let out = vmch("ls", backend, &["--device", "/dev/sda1", debian, "/"]);
    status(&out, 0);
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l == "vmlinuz-6.1.0-18-amd64")
    );
}

#[test]
fn every_subcommand_under_qemu() {
    if !require_qemu("every_subcommand_under_qemu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    inspect_checks(QEMU, dir.path());
    file_checks(QEMU, dir.path());
    // QEMU missing: the appliance failed.
    let out = vmch(
        "inspect",
        &["--backend", "qemu", "--qemu", "/nonexistent/qemu"],
        &[p(&disks().debian)],
    );
    status(&out, 5);
}

#[test]
fn every_subcommand_under_the_vmm() {
    if !require_kvm("every_subcommand_under_the_vmm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    inspect_checks(VMM, dir.path());
    file_checks(VMM, dir.path());
}

/// `qemu-img create -f qcow2 -u -b BACKING -F FORMAT PATH 64M`: a header naming `backing` as
/// given, unchecked (it need not exist, nor be what it says).
fn overlay(path: &Path, backing: &str, format: &str) {
    let ok = Command::new("qemu-img")
        .args([
            "create", "-q", "-f", "qcow2", "-u", "-F", format, "-b", backing,
        ])
        .arg(path)
        .arg("64M")
        .status()
        .expect("qemu-img runs");
    assert!(ok.success());
}

/// The images: a qcow2 naming itself (it crashed vmch with a stack overflow) and one
/// naming /etc/shadow. Both are refused on the host, status 4, before any VM starts, so this
/// needs neither KVM nor QEMU: the same check guards both backends.
#[test]
fn hostile_backing_files_are_refused_with_status_4_under_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let me = dir.path().join("self.qcow2");
    overlay(&me, "self.qcow2", "qcow2");
    let shadow = dir.path().join("shadow.qcow2");
    overlay(&shadow, "/etc/shadow", "raw");
    let null = dir.path().join("null.qcow2");
    overlay(&null, "/dev/null", "raw");
    for backend in [QEMU, VMM] {
        for allow in [&[][..], &["--allow-backing"][..]] {
            let out = vmch("inspect", backend, &[allow, &[p(&me)]].concat());
            status(&out, 4);
            let err = text(&out.stderr);
            assert!(
                err.contains("self.qcow2") && err.contains("a loop"),
                "{err}"
            );
            let out = vmch("inspect", backend, &[allow, &[p(&null)]].concat());
            status(&out, 4);
            let err = text(&out.stderr);
            assert!(
                err.contains("/dev/null") && err.contains("character device"),
                "{err}"
            );
        }
        let out = vmch("inspect", backend, &[p(&shadow)]);
        status(&out, 4);
        let err = text(&out.stderr);
        assert!(
            err.contains("\"/etc/shadow\"") && err.contains("--allow-backing"),
            "{err}"
        );
        // Every command that attaches images checks them, --add included.
        let out = vmch("cat", backend, &[p(&shadow), "/etc/hostname"]);
        status(&out, 4);
        let zero = dir.path().join("zero.img");
        std::fs::write(&zero, vec![0u8; 1 << 20]).unwrap();
        let out = vmch("ls", backend, &["--add", p(&me), p(&zero), "/"]);
        status(&out, 4);
        assert!(
            text(&out.stderr).contains("a loop"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// A backing chain the host checked reads through under QEMU (given every layer as
/// -blockdev) and the VMM: beside the image by default, elsewhere with --allow-backing.
fn backing_chain_checks(backend: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.qcow2");
    std::fs::copy(debian_qcow2(other.path()), &base).unwrap();
    let top = dir.path().join("top, with a comma.qcow2");
    overlay(&top, "base.qcow2", "qcow2");
    let out = vmch("inspect", backend, &[p(&top)]);
    status(&out, 0);
    assert!(
        text(&out.stdout).contains("debhost"),
        "{}",
        text(&out.stdout)
    );

    let far = other.path().join("far.qcow2");
    overlay(&far, p(&base), "qcow2");
    let out = vmch("inspect", backend, &[p(&far)]);
    status(&out, 4);
    assert!(text(&out.stderr).contains("--allow-backing"));
    let out = vmch("inspect", backend, &["--allow-backing", p(&far)]);
    status(&out, 0);
    assert!(
        text(&out.stdout).contains("debhost"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn backing_chains_under_qemu() {
    if require_qemu("backing_chains_under_qemu") {
        backing_chain_checks(QEMU);
    }
}

#[test]
fn backing_chains_under_the_vmm() {
    if require_kvm("backing_chains_under_the_vmm") {
        backing_chain_checks(VMM);
    }
}

//! `vmch inspect --format xml --no-applications --no-icon` on the distribution test systems
//! (`vmchannel_tests::distros`: the Red Hat, SUSE and Arch families by their release files),
//! under QEMU (TCG), compared byte for byte with virt-inspector's XML for the same disks
//! (recorded in tests/data/inspector/distros/). The layouts test already runs the bundled
//! VMM; this one measures the distribution rules only.

use std::process::Command;
use std::time::{Duration, Instant};

use vmchannel_tests::distros::shared;
use vmchannel_tests::hosts::require_qemu;

const QEMU: &[&str] = &["--backend", "qemu", "--accel", "tcg"];

/// The differing lines of two documents, side by side (they have the same shape: one
/// operating system each).
fn line_diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i).copied(), g.get(i).copied());
        if a != b {
            out.push_str(&format!(
                "  line {}:\n    virt-inspector: {}\n    vmch:           {}\n",
                i + 1,
                a.unwrap_or("(none)"),
                b.unwrap_or("(none)")
            ));
        }
    }
    out
}

#[test]
fn distributions_under_qemu_match_virt_inspector() {
    if !require_qemu("distributions_under_qemu_match_virt_inspector") {
        return;
    }
    let set = shared();
    let start = Instant::now();
    let mut failures = Vec::new();
    for (system, img) in &set.images {
        let want = std::fs::read_to_string(system.inspector_xml())
            .unwrap_or_else(|e| panic!("{}: recorded XML: {e}", system.name));
        let out = Command::new(env!("CARGO_BIN_EXE_vmch"))
            .arg("inspect")
            .args(QEMU)
            .args(["--format", "xml", "--no-applications", "--no-icon"])
            .arg(img)
            .output()
            .expect("vmch runs");
        let got = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            failures.push(format!(
                "{} ({}): exit {:?}: {}\n{got}",
                system.name,
                system.imitates,
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        } else if got != want {
            failures.push(format!(
                "{} ({}): XML differs\n{}",
                system.name,
                system.imitates,
                line_diff(&want, &got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} systems differ from virt-inspector:\n\n{}",
        failures.len(),
        set.images.len(),
        failures.join("\n")
    );
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "took {:?}",
        start.elapsed()
    );
}

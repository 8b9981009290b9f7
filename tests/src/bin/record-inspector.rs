//! Records virt-inspector's XML for the layout disks (`vmchannel_tests::layouts`) into
//! `tests/data/inspector/`, the reference the layout tests compare with. libguestfs is slow
//! (its appliance boots under TCG here) and not installed by CI, so its answers are kept.
//!
//! Each disk is built as the tests build it, except that openSUSE's rpm database stays in
//! sqlite (`Layout::build_for_reference`): Debian's librpm has no ndb backend.
//!
//! `cargo run -p vmchannel-tests --bin record-inspector [LAYOUT...]` (needs libguestfs-tools
//! and a kernel for its appliance: linux-image-amd64).

use std::process::{Command, ExitCode};

use vmchannel_tests::layouts::Layout;

fn main() -> ExitCode {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let dir = match tempfile::Builder::new().prefix("vmch-layouts").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("record-inspector: temp dir: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ok = true;
    for layout in Layout::ALL {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == layout.name()) {
            continue;
        }
        let img = dir.path().join(format!("{}.img", layout.name()));
        if let Err(e) = layout.build_for_reference(&img, dir.path()) {
            eprintln!("record-inspector: {}: {e}", layout.name());
            ok = false;
            continue;
        }
        let mut cmd = Command::new("virt-inspector");
        let out = cmd
            .arg("--format=raw")
            .arg("-a")
            .arg(&img)
            .env("LIBGUESTFS_BACKEND", "direct")
            .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let path = layout.inspector_xml();
                if let Some(p) = path.parent() {
                    let _ = std::fs::create_dir_all(p);
                }
                if let Err(e) = std::fs::write(&path, &o.stdout) {
                    eprintln!("record-inspector: {}: {e}", path.display());
                    ok = false;
                } else {
                    println!("{}: {}", layout.name(), path.display());
                }
            }
            Ok(o) => {
                eprintln!(
                    "record-inspector: {}: virt-inspector failed: {}",
                    layout.name(),
                    String::from_utf8_lossy(&o.stderr)
                );
                ok = false;
            }
            Err(e) => {
                eprintln!("record-inspector: virt-inspector: {e} (install libguestfs-tools)");
                return ExitCode::FAILURE;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

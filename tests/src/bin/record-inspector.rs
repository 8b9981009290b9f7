//! Records virt-inspector's XML for the layout disks (`vmchannel_tests::layouts`) into
//! `tests/data/inspector/`, the reference the layout tests compare with. libguestfs is slow
//! (its appliance boots under TCG here) and not installed by CI, so its answers are kept.
//!
//! Each disk is built as the tests build it, except that openSUSE's rpm database stays in
//! sqlite (`Layout::build_for_reference`): Debian's librpm has no ndb backend.
//!
//! `cargo run -p vmchannel-tests --bin record-inspector [LAYOUT...]` (needs libguestfs-tools
//! and a kernel for its appliance: linux-image-amd64). The Windows disks
//! (`vmchannel_tests::windows`) are layouts too: `record-inspector win2022 win11` (as root:
//! they are filled through an ntfs-3g mount).
//!
//! `cargo run -p vmchannel-tests --bin record-inspector libguestfs-tools [FILE...]` records
//! what virt-cat, virt-df, virt-ls and guestfish print on the layouts with the stock
//! appliance into `tests/data/libguestfs/` (LIBGUESTFS_TOOL_CASES on the Ubuntu layout and
//! LIBGUESTFS_LAYOUT_CASES: the drop-in test runs the same cases against ours); with FILEs,
//! only the cases recorded into those.
//!
//! `cargo run -p vmchannel-tests --bin record-inspector distros [NAME...]` records the
//! distribution test systems (`vmchannel_tests::distros`) instead, with `--no-applications
//! --no-icon`, into `tests/data/inspector/distros/`. The disks are inspected one after the
//! other: each libguestfs appliance takes both cores for some 25 s.

use std::path::Path;
use std::process::{Command, ExitCode};

use vmchannel_tests::distros;
use vmchannel_tests::layouts::Layout;
use vmchannel_tests::windows::WinLayout;

/// What went wrong with one disk.
enum Failure {
    /// This disk only.
    One,
    /// virt-inspector cannot run at all.
    All,
}

/// Runs virt-inspector on `img` with `extra` arguments and writes its XML to `dest`.
fn record(name: &str, img: &Path, extra: &[&str], dest: &Path) -> Result<(), Failure> {
    let out = Command::new("virt-inspector")
        .args(extra)
        .arg("--format=raw")
        .arg("-a")
        .arg(img)
        .env("LIBGUESTFS_BACKEND", "direct")
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .output();
    match out {
        Ok(o) if o.status.success() => {
            if let Some(p) = dest.parent() {
                let _ = std::fs::create_dir_all(p);
            }
            if let Err(e) = std::fs::write(dest, &o.stdout) {
                eprintln!("record-inspector: {}: {e}", dest.display());
                return Err(Failure::One);
            }
            println!("{name}: {}", dest.display());
            Ok(())
        }
        Ok(o) => {
            eprintln!(
                "record-inspector: {name}: virt-inspector failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            Err(Failure::One)
        }
        Err(e) => {
            eprintln!("record-inspector: virt-inspector: {e} (install libguestfs-tools)");
            Err(Failure::All)
        }
    }
}

/// Runs every case of [`vmchannel_tests::layouts::LIBGUESTFS_TOOL_CASES`] on `img` with the
/// stock appliance and writes its output to tests/data/libguestfs/.
fn record_tools(scratch: &Path, only: &[String]) -> ExitCode {
    use vmchannel_tests::layouts::{LIBGUESTFS_LAYOUT_CASES, LIBGUESTFS_TOOL_CASES};
    let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/libguestfs");
    if let Err(e) = std::fs::create_dir_all(&dest) {
        eprintln!("record-inspector: {}: {e}", dest.display());
        return ExitCode::FAILURE;
    }
    let cases = LIBGUESTFS_TOOL_CASES
        .iter()
        .map(|&(p, f, a)| (Layout::Ubuntu, p, f, a))
        .chain(LIBGUESTFS_LAYOUT_CASES);
    let mut built: Vec<(Layout, std::path::PathBuf)> = Vec::new();
    for (layout, program, file, args) in cases {
        if !only.is_empty() && !only.iter().any(|o| o == file) {
            continue;
        }
        let img = match built.iter().find(|(l, _)| *l == layout) {
            Some((_, p)) => p.clone(),
            None => {
                let p = scratch.join(format!("{}.img", layout.name()));
                if let Err(e) = layout.build(&p, scratch) {
                    eprintln!("record-inspector: {}: {e}", layout.name());
                    return ExitCode::FAILURE;
                }
                built.push((layout, p.clone()));
                p
            }
        };
        let img = img.as_path();
        let args: Vec<std::ffi::OsString> = args
            .iter()
            .map(|a| if *a == "IMAGE" { img.into() } else { a.into() })
            .collect();
        let out = match Command::new(program)
            .args(&args)
            .env("LIBGUESTFS_BACKEND", "direct")
            .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
            .env_remove("LIBGUESTFS_PATH")
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                eprintln!("record-inspector: {program}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if !out.status.success() {
            eprintln!(
                "record-inspector: {program} {file}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return ExitCode::FAILURE;
        }
        if let Err(e) = std::fs::write(dest.join(file), &out.stdout) {
            eprintln!("record-inspector: {file}: {e}");
            return ExitCode::FAILURE;
        }
        println!("{program}: {file}");
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let mut wanted: Vec<String> = std::env::args().skip(1).collect();
    if wanted.first().is_some_and(|w| w == "libguestfs-tools") {
        let dir = match tempfile::Builder::new().prefix("vmch-tools").tempdir() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("record-inspector: temp dir: {e}");
                return ExitCode::FAILURE;
            }
        };
        return record_tools(dir.path(), &wanted[1..]);
    }
    let distros_mode = wanted.first().is_some_and(|w| w == "distros");
    if distros_mode {
        wanted.remove(0);
    }
    let dir = match tempfile::Builder::new().prefix("vmch-layouts").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("record-inspector: temp dir: {e}");
            return ExitCode::FAILURE;
        }
    };
    let picked = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let mut ok = true;
    if distros_mode {
        for system in distros::ALL.iter().filter(|s| picked(s.name)) {
            let img = dir.path().join(format!("{}.img", system.name));
            if let Err(e) = system.build(&img, dir.path()) {
                eprintln!("record-inspector: {}: {e}", system.name);
                ok = false;
                continue;
            }
            let extra = ["--no-applications", "--no-icon"];
            match record(system.name, &img, &extra, &system.inspector_xml()) {
                Ok(()) => {}
                Err(Failure::One) => ok = false,
                Err(Failure::All) => return ExitCode::FAILURE,
            }
            let _ = std::fs::remove_file(&img);
        }
    } else {
        for layout in Layout::ALL.into_iter().filter(|l| picked(l.name())) {
            let img = dir.path().join(format!("{}.img", layout.name()));
            if let Err(e) = layout.build_for_reference(&img, dir.path()) {
                eprintln!("record-inspector: {}: {e}", layout.name());
                ok = false;
                continue;
            }
            match record(layout.name(), &img, &[], &layout.inspector_xml()) {
                Ok(()) => {}
                Err(Failure::One) => ok = false,
                Err(Failure::All) => return ExitCode::FAILURE,
            }
        }
        for layout in WinLayout::ALL.into_iter().filter(|l| picked(l.name())) {
            let img = dir.path().join(format!("{}.img", layout.name()));
            let start = std::time::Instant::now();
            if let Err(e) = layout.build(&img, dir.path()) {
                eprintln!("record-inspector: {}: {e}", layout.name());
                ok = false;
                continue;
            }
            println!("{}: built in {:.1?}", layout.name(), start.elapsed());
            match record(layout.name(), &img, &[], &layout.inspector_xml()) {
                Ok(()) => {}
                Err(Failure::One) => ok = false,
                Err(Failure::All) => return ExitCode::FAILURE,
            }
            let _ = std::fs::remove_file(&img);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

//! The libguestfs drop-in: unmodified libguestfs 1.48 programs (virt-inspector, virt-cat,
//! virt-df, virt-ls) with `LIBGUESTFS_PATH` at the appliance `vmch libguestfs-appliance`
//! writes, which boots our kernel under libguestfs's own QEMU command line (TCG here) and
//! answers libguestfs's daemon protocol.
//!
//! What they print is compared with what the same programs print with libguestfs's stock
//! appliance, recorded once (it takes 20 s a launch): virt-inspector's XML for every layout
//! and distribution disk the tests build (tests/data/inspector/, the same references
//! `vmch inspect` is held to), and the other programs' output on the Ubuntu layout
//! (tests/data/libguestfs/, recorded by `record-inspector libguestfs-tools`). Windows guests
//! go through the hivex procedures (the SOFTWARE hive's Uninstall keys).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vmchannel_tests::hosts::{qemu_path, require};
use vmchannel_tests::layouts::{
    LIBGUESTFS_LAYOUT_CASES, LIBGUESTFS_TOOL_CASES, Layout, shared as layouts,
};

/// libguestfs's tools and QEMU are installed (CI installs libguestfs-tools).
fn require_libguestfs(test: &str) -> bool {
    require(
        "libguestfs's tools (apt: libguestfs-tools) and qemu-system-x86_64",
        vmch::launch::program_available(Path::new("virt-inspector")) && qemu_path().is_some(),
        test,
    )
}

/// Our appliance, written once per test binary.
fn appliance() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("vmch-libguestfs")
            .tempdir()
            .unwrap();
        vmch::fixed_appliance::write(dir.path(), Path::new(vmch::launch::BUILT_KERNEL))
            .expect("the appliance is written");
        dir
    })
    .path()
}

/// Runs a libguestfs program against our appliance (direct backend, TCG, as this machine's
/// nested KVM cannot run libguestfs's QEMU command line any faster).
fn run(program: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(program)
        .args(args)
        .env("LIBGUESTFS_PATH", appliance())
        .env("LIBGUESTFS_BACKEND", "direct")
        .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        .env_remove("LIBGUESTFS_DEBUG")
        .env_remove("LIBGUESTFS_TRACE")
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

fn inspector_xml(image: &Path, extra: &[&str]) -> Result<String, String> {
    let mut args: Vec<&std::ffi::OsStr> = extra.iter().map(|a| a.as_ref()).collect();
    args.extend(["--format=raw".as_ref(), "-a".as_ref(), image.as_os_str()]);
    let out = run("virt-inspector", &args);
    if !out.status.success() {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs virt-inspector (with `extra` arguments) on each `(name, image, reference XML)` and
/// asserts every document equals its reference.
fn inspect_all<'a>(extra: &[&str], disks: impl IntoIterator<Item = (&'a str, &'a Path, PathBuf)>) {
    let mut failures = Vec::new();
    for (name, image, reference) in disks {
        let want = std::fs::read_to_string(&reference)
            .unwrap_or_else(|e| panic!("{}: {e}", reference.display()));
        match inspector_xml(image, extra) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "{name}: XML differs\n--- stock appliance\n{want}\n--- ours\n{got}"
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn virt_inspector_prints_the_stock_appliances_xml_on_every_linux_layout() {
    if !require_libguestfs("virt_inspector_prints_the_stock_appliances_xml_on_every_linux_layout") {
        return;
    }
    let set = layouts();
    inspect_all(
        &[],
        Layout::ALL.map(|l| (l.name(), set.image(l), l.inspector_xml())),
    );
}

#[test]
fn virt_inspector_prints_the_stock_appliances_xml_on_every_distribution() {
    if !require_libguestfs("virt_inspector_prints_the_stock_appliances_xml_on_every_distribution") {
        return;
    }
    let set = vmchannel_tests::distros::shared();
    // Recorded without applications and icons (see record-inspector).
    inspect_all(
        &["--no-applications", "--no-icon"],
        set.images
            .iter()
            .map(|(s, image)| (s.name, image.as_path(), s.inspector_xml())),
    );
}

/// The recorded output of a stock-appliance run (tests/data/libguestfs/NAME).
fn recorded(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/libguestfs")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn virt_cat_df_and_ls_print_what_the_stock_appliance_prints() {
    if !require_libguestfs("virt_cat_df_and_ls_print_what_the_stock_appliance_prints") {
        return;
    }
    let mut failures = Vec::new();
    let cases = LIBGUESTFS_TOOL_CASES
        .iter()
        .map(|&(p, f, a)| (Layout::Ubuntu, p, f, a))
        .chain(LIBGUESTFS_LAYOUT_CASES);
    for (layout, program, reference, args) in cases {
        let image = layouts().image(layout);
        let args: Vec<&std::ffi::OsStr> = args
            .iter()
            .map(|a| {
                if *a == "IMAGE" {
                    image.as_os_str()
                } else {
                    a.as_ref()
                }
            })
            .collect();
        let out = run(program, &args);
        let want = recorded(reference);
        if !out.status.success() || out.stdout != want {
            failures.push(format!(
                "{program} {reference}: exit {:?}\n--- stock appliance\n{}\n--- ours\n{}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn virt_inspector_prints_the_stock_appliances_xml_on_the_windows_disks() {
    if !require_libguestfs("virt_inspector_prints_the_stock_appliances_xml_on_the_windows_disks") {
        return;
    }
    use vmchannel_tests::windows::{WinLayout, shared as windows};
    let set = windows();
    inspect_all(
        &[],
        WinLayout::ALL.map(|l| (l.name(), set.image(l), l.inspector_xml())),
    );
}

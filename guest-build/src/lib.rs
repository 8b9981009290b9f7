//! Builds the guest kernel for `x86_64-unknown-none` from a build script, so that the crates
//! that boot it (the tests, `vmch`) always get the kernel of this source tree. A nested cargo
//! with its own target directory (`target/guest`) avoids waiting on the lock the outer cargo
//! holds on `target/`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target the guest kernel is built for.
pub const TARGET: &str = "x86_64-unknown-none";

/// Whether the standard library for [`TARGET`] is installed for the toolchain of `rustc`.
fn target_installed(rustc: &str, root: &Path) -> bool {
    let Ok(out) = Command::new(rustc)
        .current_dir(root)
        .args(["--print", "sysroot"])
        .output()
    else {
        return false;
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    sysroot
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib")
        .is_dir()
}

/// Polls for up to a minute for [`TARGET`] to be installed by someone else.
fn wait_for_target(rustc: &str, root: &Path) -> bool {
    for _ in 0..60 {
        if target_installed(rustc, root) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    false
}

/// Makes sure [`TARGET`] is installed: rust-toolchain.toml names it, but rustup does not
/// always add it (not with `RUSTUP_AUTO_INSTALL=0`, as on fresh machines here). Adds it
/// with rustup and says so (a cargo warning, shown before the build goes on); without
/// rustup, stops with one line saying what to install.
fn ensure_target(root: &Path) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if target_installed(&rustc, root) {
        return;
    }
    let added = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", TARGET])
        .output();
    match added {
        Ok(o) if o.status.success() && target_installed(&rustc, root) => {
            println!(
                "cargo::warning=installed the Rust target {TARGET} for the guest kernel \
                 (`rustup target add {TARGET}`)"
            );
        }
        // Another build script (the tests' and vmch's both build the kernel) may be adding
        // it at the same moment: give that a chance to finish.
        Ok(_) if wait_for_target(&rustc, root) => {}
        Ok(o) => {
            eprintln!(
                "the Rust target {TARGET} is missing and `rustup target add {TARGET}` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!(
                "the Rust target {TARGET} is missing: run `rustup target add {TARGET}` \
                 (or install your distribution's Rust standard library for {TARGET})"
            );
            std::process::exit(1);
        }
    }
}

/// Builds the kernel (release) and returns the ELF's path; prints the `rerun-if-changed`
/// lines for the kernel's sources. Call from a build script of a crate in the workspace root.
pub fn build_kernel() -> PathBuf {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("the calling crate lives in the workspace root")
        .to_path_buf();
    // The kernel and every workspace crate it is built from: a change in any of them must
    // rebuild the guest (the inspection code, the protocols), or tests run a stale kernel.
    for dir in ["kernel", "bootloader", "virtio-console-wire"] {
        println!("cargo::rerun-if-changed={}", root.join(dir).display());
    }
    for krate in ["inspect", "proto", "guestfs-proto"] {
        for part in ["src", "Cargo.toml"] {
            println!(
                "cargo::rerun-if-changed={}",
                root.join(krate).join(part).display()
            );
        }
    }
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
        "rust-toolchain.toml",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(file).display());
    }
    ensure_target(&root);
    let target_dir = root.join("target").join("guest");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "kernel",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir)
        // The outer build's flags are for the host; the guest's come from .cargo/config.toml.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo to build the guest kernel");
    if !output.status.success() {
        panic!(
            "building the guest kernel failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let kernel = target_dir.join(TARGET).join("release").join("kernel");
    assert!(
        kernel.is_file(),
        "the guest build did not produce {}",
        kernel.display()
    );
    kernel
}

//! Builds the guest kernel for `x86_64-unknown-none` from a build script, so that the crates
//! that boot it (the tests, `vmch`) always get the kernel of this source tree. A nested cargo
//! with its own target directory (`target/guest`) avoids waiting on the lock the outer cargo
//! holds on `target/`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Builds the kernel (release) and returns the ELF's path; prints the `rerun-if-changed`
/// lines for the kernel's sources. Call from a build script of a crate in the workspace root.
pub fn build_kernel() -> PathBuf {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("the calling crate lives in the workspace root")
        .to_path_buf();
    for dir in ["kernel", "bootloader", "virtio-console-wire"] {
        println!("cargo::rerun-if-changed={}", root.join(dir).display());
    }
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
        "rust-toolchain.toml",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(file).display());
    }
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
            "x86_64-unknown-none",
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
    let kernel = target_dir
        .join("x86_64-unknown-none")
        .join("release")
        .join("kernel");
    assert!(
        kernel.is_file(),
        "the guest build did not produce {}",
        kernel.display()
    );
    kernel
}

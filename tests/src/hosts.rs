//! What this machine offers: QEMU, KVM. Tests that need one and find none say so loudly and
//! skip; under CI (`CI=true`) they fail instead.

use std::fs::OpenOptions;
use std::path::PathBuf;

/// The QEMU system emulator the tests use.
pub const QEMU: &str = "qemu-system-x86_64";

/// True when running under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// The path of `qemu-system-x86_64` on `PATH`, if any.
pub fn qemu_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(QEMU))
        .find(|p| p.is_file())
}

/// True when /dev/kvm can be opened for reading and writing.
pub fn kvm_usable() -> bool {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Decides whether a test that needs `what` runs: true if `available`; otherwise prints a
/// loud SKIPPED line and returns false, or panics under CI.
pub fn require(what: &str, available: bool, test: &str) -> bool {
    if available {
        return true;
    }
    if in_ci() {
        panic!("{test}: needs {what}, which this machine lacks, and CI=true forbids skipping");
    }
    eprintln!("\n*** SKIPPED {test}: needs {what}, not found on this machine ***\n");
    false
}

/// [`require`] for QEMU.
pub fn require_qemu(test: &str) -> bool {
    require(
        "qemu-system-x86_64 (apt: qemu-system-x86)",
        qemu_path().is_some(),
        test,
    )
}

/// [`require`] for QEMU with KVM.
pub fn require_qemu_kvm(test: &str) -> bool {
    require_qemu(test) && require("a usable /dev/kvm", kvm_usable(), test)
}

/// [`require`] for KVM alone (the bundled VMM).
pub fn require_kvm(test: &str) -> bool {
    require("a usable /dev/kvm", kvm_usable(), test)
}

/// Connects to the unix socket at `path`, retrying every 200 µs until `timeout` (a VMM
/// creates its socket some time after it starts). The error is the last connect's.
pub fn connect_unix(
    path: &std::path::Path,
    timeout: std::time::Duration,
) -> std::io::Result<std::os::unix::net::UnixStream> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(std::time::Duration::from_micros(200)),
        }
    }
}

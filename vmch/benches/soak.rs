//! Soak: many inspections in a row through `vmch::launch` (what `vmch inspect` and `-j` do),
//! each in its own appliance, checking that nothing grows or leaks: this process's RSS and
//! open file descriptors, the VM process's peak RSS, processes left running, files left in
//! the temporary directory.
//!
//! `cargo bench -p vmch --bench soak -- [qemu|vmm|both] [COUNT]` (default both, 500 each).
//! Exits non-zero if anything leaked. The Debian test disk is inspected, with applications.

use std::path::Path;
use std::time::{Duration, Instant};

use vmch::launch::{Accel, Appliance, Backend, LaunchOptions};
use vmchannel_tests::hosts::{kvm_usable, qemu_path};
use vmchannel_tests::procs::children;

/// A figure from /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

struct Sample {
    at: usize,
    rss_kib: u64,
    fds: usize,
    vm_peak_kib: u64,
}

/// Runs `count` inspections; returns whether nothing leaked.
fn soak(backend: Backend, count: usize, image: &Path, tmp: &Path) -> bool {
    let options = LaunchOptions {
        backend,
        accel: Accel::Tcg,
        timeout: Duration::from_secs(120),
        ..LaunchOptions::default()
    };
    let label = match backend {
        Backend::Vmm => "bundled VMM (KVM)",
        Backend::Qemu => "QEMU TCG",
    };
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut vm_peak_max = 0;
    let mut failures = 0;
    let every = (count / 10).max(1);
    for i in 0..count {
        let mut a = match Appliance::launch(std::slice::from_ref(&image.to_path_buf()), &options) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{label}: run {i}: {e}");
                failures += 1;
                continue;
            }
        };
        match a.client().inspect(true) {
            Ok(oses) if oses.len() == 1 => {}
            other => {
                eprintln!("{label}: run {i}: {other:?}");
                failures += 1;
            }
        }
        let vm_peak = status_kib(a.pid(), "VmHWM:").unwrap_or(0);
        vm_peak_max = vm_peak_max.max(vm_peak);
        a.shutdown();
        if i == 0 || (i + 1) % every == 0 {
            samples.push(Sample {
                at: i + 1,
                rss_kib: status_kib(std::process::id(), "VmRSS:").unwrap_or(0),
                fds: open_fds(),
                vm_peak_kib: vm_peak,
            });
        }
    }
    let elapsed = started.elapsed();
    println!(
        "\n{label}: {count} inspections in {:.1} s ({:.0} ms each), {failures} failed",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / count as f64
    );
    println!("| after run | vmch RSS (KiB) | open fds | VM peak RSS (KiB) |");
    println!("|---|---|---|---|");
    for s in &samples {
        println!(
            "| {} | {} | {} | {} |",
            s.at, s.rss_kib, s.fds, s.vm_peak_kib
        );
    }
    let left_children = children();
    let left_files = entries(tmp);
    println!(
        "left behind: {} processes, {} temporary files; VM peak RSS at most {vm_peak_max} KiB",
        left_children.len(),
        left_files
    );
    // Flat: the last sample's RSS within 2 MiB of the second's (the first includes warm-up),
    // the fds exactly as after the first run.
    let flat = match (samples.get(1), samples.last()) {
        (Some(a), Some(z)) => z.rss_kib <= a.rss_kib + 2048 && z.fds == samples[0].fds,
        _ => true,
    };
    if !flat {
        println!("LEAK: RSS or descriptors grew");
    }
    failures == 0 && flat && left_children.is_empty() && left_files == 0
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let which = args.first().map(String::as_str).unwrap_or("both");
    let count = args.get(1).and_then(|c| c.parse().ok()).unwrap_or(500);
    let disks = vmchannel_tests::images::DiskSet::build().expect("test disks");
    // Our own temporary directory, so that leftovers are ours to count.
    let tmp = tempfile::tempdir().unwrap();
    // SAFETY: set before any thread is started (the appliance threads come later).
    unsafe { std::env::set_var("TMPDIR", tmp.path()) };
    let image = disks.debian.clone();
    let mut ok = true;
    if matches!(which, "qemu" | "both") {
        if qemu_path().is_some() {
            ok &= soak(Backend::Qemu, count, &image, tmp.path());
        } else {
            println!("SKIPPED: QEMU not found");
        }
    }
    if matches!(which, "vmm" | "both") {
        if kvm_usable() {
            ok &= soak(Backend::Vmm, count, &image, tmp.path());
        } else {
            println!("SKIPPED: /dev/kvm not usable");
        }
    }
    drop(disks);
    if !ok {
        std::process::exit(1);
    }
}

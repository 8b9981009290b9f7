//! Boot benchmark: kernel image size, and PVH-entry-to-ready time plus QEMU wall time for the
//! same kernel on pc, q35 and microvm under TCG and KVM, measured side by side in one run.
//!
//! `cargo bench -p vmchannel-tests --bench boot [-- RUNS]` (default 10 runs per configuration).

use std::time::Duration;

use vmchannel_tests::hosts::qemu_path;
use vmchannel_tests::kernel_image;
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let image = kernel_image();
    let size = std::fs::metadata(image).expect("kernel image").len();
    println!(
        "kernel image: {} ({} bytes, {:.1} KiB)",
        image.display(),
        size,
        size as f64 / 1024.0
    );
    if qemu_path().is_none() {
        eprintln!("qemu-system-x86_64 not found: no boot figures");
        return;
    }
    let accels = Accel::available();
    println!("{runs} runs each; median [min..max]");
    println!(
        "{:<9} {:<4} {:>24} {:>28}",
        "machine", "accel", "entry->ready (us)", "qemu spawn->exit (ms)"
    );
    // Interleave configurations run by run, so machine noise spreads evenly over them.
    let configs: Vec<(Machine, Accel)> = Machine::ALL
        .iter()
        .flat_map(|m| accels.iter().map(move |a| (*m, *a)))
        .collect();
    let mut ready = vec![Vec::new(); configs.len()];
    let mut wall = vec![Vec::new(); configs.len()];
    for _ in 0..runs {
        for (i, (m, a)) in configs.iter().enumerate() {
            let o = QemuBoot::new(image, *m, *a, "")
                .timeout(Duration::from_secs(60))
                .run()
                .expect("QEMU runs");
            if let Err(f) = o.expect_powered_off() {
                panic!("{f}");
            }
            ready[i].push(o.ready_us().expect("ready line") as f64);
            wall[i].push(o.elapsed.as_secs_f64() * 1000.0);
        }
    }
    for (i, (m, a)) in configs.iter().enumerate() {
        let (rmin, rmax) = (
            ready[i].iter().cloned().fold(f64::MAX, f64::min),
            ready[i].iter().cloned().fold(0.0, f64::max),
        );
        let (wmin, wmax) = (
            wall[i].iter().cloned().fold(f64::MAX, f64::min),
            wall[i].iter().cloned().fold(0.0, f64::max),
        );
        println!(
            "{:<9} {:<5} {:>8.0} [{:>5.0}..{:>6.0}] {:>10.1} [{:>7.1}..{:>7.1}]",
            format!("{m:?}"),
            format!("{a:?}"),
            median(&mut ready[i]),
            rmin,
            rmax,
            median(&mut wall[i]),
            wmin,
            wmax
        );
    }
}

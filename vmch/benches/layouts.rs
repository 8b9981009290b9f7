//! Inspection of the cloud-image layouts (`vmchannel_tests::layouts`), side by side in one
//! run, and reads per filesystem type:
//!
//! - full inspection (disk scan, every filesystem opened, libguestfs's rules, applications)
//!   in process over the image file (no VM), and `vmch inspect --format xml` end to end under
//!   QEMU TCG (process start to exit);
//! - reads per second of a small file (`/etc/os-release`, 4 KiB reads) and throughput of a
//!   1 MiB incompressible file (64 KiB reads, `layouts::bench_file`) on each type: ext4, vfat,
//!   XFS, XFS on an LVM LV, btrfs, and btrfs zstd (a 300 KB compressible file on a
//!   subvolume), in process over the image file (the host's page cache holds it).
//!
//! `cargo bench -p vmch --bench layouts [-- RUNS]` (default 5 runs of each).

use std::time::{Duration, Instant};

use vmchannel_proto::{Reply, Request, Target};
use vmchannel_tests::layouts::{Layout, shared};

use support::{appliance, median, ms, reads, vmch_inspect_qemu};

mod support;

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let set = shared();
    let vmch = env!("CARGO_BIN_EXE_vmch");

    println!("full inspection, median of {runs} (in process | vmch inspect under QEMU TCG):");
    for layout in Layout::ALL {
        let img = set.image(layout);
        let mut inproc = Vec::new();
        let mut qemu = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let mut a = appliance(img);
            let r = a.handle(&Request::Inspect { applications: true });
            inproc.push(t.elapsed());
            assert!(
                matches!(r, Ok(Reply::Inspection(_))),
                "{}: {r:?}",
                layout.name()
            );
            qemu.push(vmch_inspect_qemu(
                std::path::Path::new(vmch),
                img,
                layout.name(),
            ));
        }
        println!(
            "  {:<9} {:>10} | {:>10}",
            layout.name(),
            ms(median(inproc)),
            ms(median(qemu))
        );
    }

    println!(
        "reads in process, 1 s each (small: /etc/os-release by 4 KiB; large: 1 MiB by 64 KiB):"
    );
    let cases: [(&str, Layout, &str, &str, &str); 6] = [
        (
            "ext4",
            Layout::Ubuntu,
            "/dev/sda1",
            "/etc/os-release",
            "/usr/share/bench.bin",
        ),
        (
            "vfat",
            Layout::Fedora,
            "/dev/sda2",
            "/EFI/fedora/grub.cfg",
            "/bench.bin",
        ),
        (
            "xfs",
            Layout::Opensuse,
            "/dev/sda3",
            "/etc/os-release",
            "/usr/share/bench.bin",
        ),
        (
            "xfs on LV",
            Layout::Rhel,
            "/dev/rhel/root",
            "/etc/os-release",
            "/usr/share/bench.bin",
        ),
        (
            "btrfs",
            Layout::Arch,
            "/dev/sda3",
            "/etc/os-release",
            "/usr/share/bench.bin",
        ),
        (
            "btrfs zstd",
            Layout::Fedora,
            "btrfsvol:/dev/sda4/root",
            "/etc/os-release",
            "/usr/share/doc/fedora/README",
        ),
    ];
    for (kind, layout, dev, small, large) in cases {
        let mut a = appliance(set.image(layout));
        let target = Target::Device(dev.into());
        let s = reads(&mut a, &target, small, 4096, Duration::from_secs(1));
        let l = reads(&mut a, &target, large, 65536, Duration::from_secs(1));
        match (s, l) {
            (Some((sr, _)), Some((_, lb))) => println!(
                "  {kind:<11} {:>9.0} small reads/s  {:>8.1} MB/s large",
                sr,
                lb / 1e6
            ),
            _ => println!("  {kind:<11} (not readable)"),
        }
    }
}

//! Windows inspection, side by side in one run: the Windows Server 2022-like and Windows
//! 11-like disks (`vmchannel_tests::windows`: NTFS by mkntfs and ntfs-3g, hives by
//! hivexregedit).
//!
//! - full inspection in process over the image file (no VM): the disk scan, NTFS opened,
//!   the system root found, SOFTWARE and SYSTEM hives read, with and without applications;
//!   and `vmch inspect --format xml` end to end under QEMU TCG (process start to exit);
//! - NTFS reads per second of a small file (4 KiB reads) and throughput of a larger one
//!   (64 KiB reads), in process, through the case-insensitive OS tree and on the volume;
//! - the registry alone: both hives opened and the Uninstall keys listed, in memory.
//!
//! `cargo bench -p vmch --bench windows [-- RUNS]` (default 5 runs of each).

use std::time::{Duration, Instant};

use vmchannel_proto::{Reply, Request, Target};
use vmchannel_tests::windows::{WinLayout, shared};

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

    println!(
        "full inspection, median of {runs} (in process with applications | without | \
         vmch inspect --format xml under QEMU TCG):"
    );
    for layout in WinLayout::ALL {
        let img = set.image(layout);
        let (mut with, mut without, mut qemu) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            for (apps, times) in [(true, &mut with), (false, &mut without)] {
                let t = Instant::now();
                let mut a = appliance(img);
                let r = a.handle(&Request::Inspect { applications: apps });
                times.push(t.elapsed());
                match r {
                    Ok(Reply::Inspection(oses)) => {
                        assert_eq!(oses.len(), 1, "{}", layout.name());
                        assert_eq!(oses[0].os_type, "windows");
                        assert_eq!(!oses[0].applications.is_empty(), apps);
                    }
                    other => panic!("{}: {other:?}", layout.name()),
                }
            }
            qemu.push(vmch_inspect_qemu(
                std::path::Path::new(vmch),
                img,
                layout.name(),
            ));
        }
        println!(
            "  {:<8} {:>10} | {:>10} | {:>10}",
            layout.name(),
            ms(median(with)),
            ms(median(without)),
            ms(median(qemu))
        );
    }

    println!("NTFS reads in process, 1 s each (small by 4 KiB | large by 64 KiB):");
    let img = set.image(WinLayout::Server2022);
    let mut a = appliance(img);
    let os = Target::Os("/dev/sda2".into());
    let (small, _) = reads(
        &mut a,
        &os,
        "/windows/WIN.INI",
        4096,
        Duration::from_secs(1),
    )
    .expect("win.ini reads");
    let (_, large) = reads(
        &mut a,
        &Target::Device("/dev/sda1".into()),
        "/bootmgr",
        65536,
        Duration::from_secs(1),
    )
    .expect("bootmgr reads");
    println!(
        "  OS tree (case-insensitive) {small:>9.0} small reads/s | System Reserved {:>8.1} MB/s large",
        large / 1e6
    );
    let vol = Target::Device("/dev/sda2".into());
    let (small, _) = reads(
        &mut a,
        &vol,
        "/Windows/win.ini",
        4096,
        Duration::from_secs(1),
    )
    .expect("win.ini reads");
    println!("  volume (exact names)       {small:>9.0} small reads/s");
}

//! virtio-serial data path benchmark under QEMU TCG and QEMU KVM, side by side in one run:
//! host→guest and guest→host throughput (sink and source agents), echo throughput, 1-byte
//! round trips per second, and the host CPU an idle guest costs.
//!
//! `cargo bench -p vmchannel-tests --bench echo [-- MIB]` (default 64 MiB per transfer).

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use vmchannel_tests::echo::{Rng, check_echo, echo};
use vmchannel_tests::hosts::qemu_path;
use vmchannel_tests::kernel_image;
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};
use vmchannel_tests::vm::SerialVm;

const ECHO: &str = "org.vmchannel.echo.bench";
const SINK: &str = "org.vmchannel.sink.bench";
const SOURCE: &str = "org.vmchannel.source.bench";
const T: Duration = Duration::from_secs(300);

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn host_to_guest(vm: &SerialVm, bytes: usize) -> Duration {
    let mut s = vm.connect(SINK).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut r = s.try_clone().unwrap();
    let acks = thread::spawn(move || {
        let mut got = vec![0u8; bytes >> 20];
        r.read_exact(&mut got).map(|_| Instant::now())
    });
    for _ in 0..bytes >> 20 {
        s.write_all(&chunk).unwrap();
    }
    acks.join().unwrap().expect("sink acknowledgements") - start
}

fn guest_to_host(vm: &SerialVm, bytes: usize) -> Duration {
    let mut s = vm.connect(SOURCE).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    s.write_all(&(bytes as u64).to_le_bytes()).unwrap();
    let mut got = 0usize;
    let mut bad = 0usize;
    while got < bytes {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "source EOF after {got}");
        bad += buf[..n]
            .iter()
            .enumerate()
            .filter(|(i, b)| **b != ((got + i) % 251) as u8)
            .count();
        got += n;
    }
    let d = start.elapsed();
    assert_eq!(bad, 0, "source data corrupted");
    d
}

fn echo_throughput(vm: &SerialVm, bytes: usize) -> Duration {
    let s = vm.connect(ECHO).unwrap();
    let data = Rng::new(42).bytes(bytes);
    let start = Instant::now();
    let back = echo(&s, &data, T).expect("echo");
    let d = start.elapsed();
    check_echo("bench", &data, &back).unwrap();
    d
}

fn round_trips(vm: &SerialVm, window: Duration) -> f64 {
    let mut s = vm.connect(ECHO).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut b = [0u8; 1];
    // Warm up.
    for _ in 0..100 {
        s.write_all(b"x").unwrap();
        s.read_exact(&mut b).unwrap();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < window {
        s.write_all(b"x").unwrap();
        s.read_exact(&mut b).unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" of the command name: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// Percent of one host core QEMU uses while the guest idles with ports open.
fn idle_cpu(vm: &SerialVm, window: Duration) -> f64 {
    let _connected = vm.connect(ECHO).unwrap();
    thread::sleep(Duration::from_millis(500));
    let hz = 100.0; // USER_HZ on Linux
    let before = cpu_ticks(vm.pid());
    let start = Instant::now();
    thread::sleep(window);
    let ticks = cpu_ticks(vm.pid()) - before;
    ticks as f64 / hz / start.elapsed().as_secs_f64() * 100.0
}

fn main() {
    let mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(64);
    if qemu_path().is_none() {
        eprintln!("qemu-system-x86_64 not found: nothing to measure");
        return;
    }
    let accels = Accel::available();
    println!("{mib} MiB per transfer; q35, virtio-serial-pci (modern), one port per agent\n");
    println!(
        "| QEMU | host→guest MiB/s | guest→host MiB/s | echo MiB/s (each way) | 1-byte round trips/s | idle guest, host CPU |"
    );
    println!("|---|---|---|---|---|---|");
    let configs: Vec<(Accel, &str)> = accels
        .iter()
        .flat_map(|a| [(*a, ""), (*a, "idle=poll")])
        .collect();
    for (accel, cmdline) in configs {
        let boot = QemuBoot::new(kernel_image(), Machine::Q35, accel, cmdline);
        let vm = SerialVm::start(&boot, "disable-legacy=on", &[ECHO, SINK, SOURCE], false)
            .expect("QEMU starts");
        vm.wait_for_log("echo agent started", 1, Duration::from_secs(60))
            .expect("guest serves");
        let bytes = mib << 20;
        let h2g = host_to_guest(&vm, bytes);
        let g2h = guest_to_host(&vm, bytes);
        let e = echo_throughput(&vm, bytes / 4);
        let rtt = round_trips(&vm, Duration::from_secs(3));
        let idle = idle_cpu(&vm, Duration::from_secs(5));
        println!(
            "| {:?} {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} % |",
            accel,
            if cmdline.is_empty() {
                "(hlt when idle)"
            } else {
                cmdline
            },
            mib_per_s(bytes, h2g),
            mib_per_s(bytes, g2h),
            mib_per_s(bytes / 4, e),
            rtt,
            idle
        );
    }
}

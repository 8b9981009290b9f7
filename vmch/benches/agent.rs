//! Guest agent round trips: `guest-ping` answered per second through `vmch::agent`, side by
//! side in one run, under QEMU q35 TCG and the bundled VMM (`vmch run`, KVM), with an echo
//! round trip of the same size on the same VM for scale.
//!
//! `cargo bench -p vmch --bench agent [-- PINGS]` (default 2000 per VM).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use vmch::agent::AgentClient;
use vmchannel_tests::hosts::{kvm_usable, qemu_path};
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};
use vmchannel_tests::vm::SerialVm;
use vmchannel_tests::vmch::{VmchOptions, VmchVm};

const AGENT: &str = "org.qemu.guest_agent.0";
const ECHO: &str = "org.vmchannel.echo.0";
const T: Duration = Duration::from_secs(120);

/// Pings per second, and echo round trips per second with a message as long as a ping.
fn measure(agent: UnixStream, mut echo: UnixStream, n: u32) -> (f64, f64) {
    agent.set_read_timeout(Some(T)).unwrap();
    echo.set_read_timeout(Some(T)).unwrap();
    let mut c = AgentClient::new(agent);
    c.sync().expect("sync");
    for _ in 0..10 {
        assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));
    }
    let start = Instant::now();
    for _ in 0..n {
        assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));
    }
    let pings = f64::from(n) / start.elapsed().as_secs_f64();
    let msg = b"{\"execute\":\"guest-ping\"}\n";
    let mut back = [0u8; 25];
    let start = Instant::now();
    for _ in 0..n {
        echo.write_all(msg).unwrap();
        echo.read_exact(&mut back).unwrap();
    }
    let echoes = f64::from(n) / start.elapsed().as_secs_f64();
    (pings, echoes)
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    println!("guest-ping round trips, {n} per VM (one client, one request in flight)");
    println!(
        "{:<22} {:>14} {:>18}",
        "VM", "pings/s", "echo round trips/s"
    );
    if qemu_path().is_some() {
        let boot = QemuBoot::new(
            vmchannel_tests::kernel_image(),
            Machine::Q35,
            Accel::Tcg,
            "loglevel=warn",
        );
        let vm = SerialVm::start(&boot, "disable-legacy=on", &[AGENT, ECHO], false).unwrap();
        vm.wait_for_log("agent started", 2, T).ok();
        let (p, e) = measure(vm.connect(AGENT).unwrap(), vm.connect(ECHO).unwrap(), n);
        println!("{:<22} {p:>14.0} {e:>18.0}", "QEMU q35 TCG");
    } else {
        println!("QEMU q35 TCG: SKIPPED (no QEMU)");
    }
    if kvm_usable() {
        let options = VmchOptions {
            cmdline: "loglevel=warn".into(),
            ..VmchOptions::default()
        };
        let vm = VmchVm::start(
            Path::new(env!("CARGO_BIN_EXE_vmch")),
            &[AGENT, ECHO],
            &options,
        )
        .unwrap();
        vm.wait_for_log("agent started", 2, T).ok();
        let (p, e) = measure(vm.connect(AGENT).unwrap(), vm.connect(ECHO).unwrap(), n);
        println!("{:<22} {p:>14.0} {e:>18.0}", "vmch run (KVM)");
    } else {
        println!("vmch run (KVM): SKIPPED (no usable /dev/kvm)");
    }
}

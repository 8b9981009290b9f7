//! Start-up and echo benchmark of the bundled VMM against QEMU, side by side in one run, with
//! the same kernel, the same command line and the same virtio-serial configuration:
//!
//! - process start (spawn) to the first echo reply on a named port: `vmch run`, QEMU TCG and
//!   QEMU KVM (q35, where virtio-serial-pci lives), runs interleaved;
//! - echo throughput through that port, `vmch run` against QEMU KVM (and TCG for scale).
//!
//! `cargo bench -p vmch --bench startup [-- RUNS [ECHO_KIB]]` (default 5 runs, 256 KiB);
//! `STARTUP_VMMS=vmch,tcg` leaves QEMU KVM out. The echo table also gives each VMM's peak RSS.
//! `STARTUP_BASE=DIR` adds another build's `DIR/vmch` with its `DIR/kernel` (e.g. the tree
//! before a change), run interleaved with this one, for before/after figures from one run.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vmchannel_tests::echo::{Rng, check_echo, echo};
use vmchannel_tests::hosts::{QEMU, connect_unix, kvm_usable, qemu_path};
use vmchannel_tests::kernel_image;
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};

const PORT: &str = "org.vmchannel.echo.bench";
const CMDLINE: &str = "loglevel=warn";
const MEM_MIB: u32 = 64;
const T: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Vmm {
    Vmch,
    QemuTcg,
    QemuKvm,
    /// `vmch run` of another build (`STARTUP_BASE`).
    VmchBase,
}

impl Vmm {
    fn label(self) -> &'static str {
        match self {
            Vmm::Vmch => "vmch run (KVM)",
            Vmm::QemuTcg => "QEMU q35 TCG",
            Vmm::QemuKvm => "QEMU q35 KVM",
            Vmm::VmchBase => "vmch run, STARTUP_BASE build",
        }
    }
}

/// A started VMM with one echo port; killed on drop.
struct Running {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(vmm: Vmm, max_ports: u32) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("echo.sock");
    let mut cmd = match vmm {
        Vmm::Vmch | Vmm::VmchBase => {
            let mut c = match vmm {
                Vmm::Vmch => Command::new(env!("CARGO_BIN_EXE_vmch")),
                _ => {
                    let base = PathBuf::from(std::env::var_os("STARTUP_BASE").unwrap());
                    let mut c = Command::new(base.join("vmch"));
                    c.arg("run").arg("--kernel").arg(base.join("kernel"));
                    c
                }
            };
            if vmm == Vmm::Vmch {
                c.arg("run");
            }
            c.args(["--serial", "none", "--cmdline", CMDLINE])
                .args(["--mem", &MEM_MIB.to_string()])
                .args(["--max-ports", &max_ports.to_string()])
                .arg("--port")
                .arg(format!("name={PORT},socket={}", socket.display()));
            c
        }
        Vmm::QemuTcg | Vmm::QemuKvm => {
            let accel = if vmm == Vmm::QemuKvm {
                Accel::Kvm
            } else {
                Accel::Tcg
            };
            let boot =
                QemuBoot::new(kernel_image(), Machine::Q35, accel, CMDLINE).memory_mib(MEM_MIB);
            let mut c = Command::new(QEMU);
            c.args(boot.args()).args([
                "-serial",
                "none",
                "-device",
                &format!("virtio-serial-pci,id=vser0,disable-legacy=on,max_ports={max_ports}"),
                "-chardev",
                &format!("socket,id=c0,path={},server=on,wait=off", socket.display()),
                "-device",
                &format!("virtserialport,bus=vser0.0,chardev=c0,name={PORT}"),
            ]);
            c
        }
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Running {
        child,
        socket,
        _dir: dir,
    }
}

fn connect(socket: &Path) -> UnixStream {
    connect_unix(socket, T).unwrap_or_else(|e| panic!("{}: {e}", socket.display()))
}

/// Spawn to first echo reply; returns the time and the running VM (for throughput).
fn first_reply(vmm: Vmm, max_ports: u32) -> (Duration, Running, UnixStream) {
    let start = Instant::now();
    let vm = spawn(vmm, max_ports);
    let mut s = connect(&vm.socket);
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"x");
    (start.elapsed(), vm, s)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The process's peak resident set (VmHWM in /proc/PID/status), KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let echo_kib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    if !kvm_usable() {
        eprintln!("startup bench: /dev/kvm is not usable; nothing to compare");
        return;
    }
    let mut vmms = vec![Vmm::Vmch];
    if qemu_path().is_some() {
        vmms.extend([Vmm::QemuTcg, Vmm::QemuKvm]);
    } else {
        eprintln!("startup bench: {QEMU} not found; only vmch is measured");
    }
    // STARTUP_VMMS=vmch,tcg leaves QEMU KVM out (4 s a start on a nested kvm-pvm host).
    if let Ok(only) = std::env::var("STARTUP_VMMS") {
        let keep = |v: &Vmm| {
            let name = match v {
                Vmm::Vmch => "vmch",
                Vmm::QemuTcg => "tcg",
                Vmm::QemuKvm => "kvm",
                Vmm::VmchBase => "base",
            };
            only.split(',').any(|o| o == name)
        };
        vmms.retain(|v| *v == Vmm::Vmch || keep(v));
    }
    if std::env::var_os("STARTUP_BASE").is_some() {
        vmms.insert(1, Vmm::VmchBase);
    }

    for max_ports in [2u32, 31] {
        println!(
            "\n## spawn to first echo reply, max_ports={max_ports}, {runs} runs each, interleaved\n"
        );
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); vmms.len()];
        for _ in 0..runs {
            for (i, vmm) in vmms.iter().enumerate() {
                let (t, _vm, _s) = first_reply(*vmm, max_ports);
                times[i].push(t);
            }
        }
        println!("| VMM | median ms | min ms | max ms |");
        println!("|---|---|---|---|");
        let mut medians = Vec::new();
        for (vmm, t) in vmms.iter().zip(times.iter_mut()) {
            let m = median(t);
            medians.push(m);
            println!(
                "| {} | {:.1} | {:.1} | {:.1} |",
                vmm.label(),
                ms(m),
                ms(t[0]),
                ms(t[t.len() - 1])
            );
        }
        for (vmm, m) in vmms.iter().zip(&medians).skip(1) {
            println!(
                "\n{} / vmch run (medians): {:.1}x",
                vmm.label(),
                m.as_secs_f64() / medians[0].as_secs_f64()
            );
        }
    }

    println!("\n## echo throughput, {echo_kib} KiB through one port (max_ports=2)\n");
    println!("| VMM | MiB/s | 1-byte round trip ms | peak RSS MiB (VmHWM) |");
    println!("|---|---|---|---|");
    let data = Rng::new(5).bytes(echo_kib << 10);
    let mut rates = Vec::new();
    for vmm in &vmms {
        let (_, vm, s) = first_reply(*vmm, 2);
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(echo(&s, b"y", T).unwrap(), b"y");
        }
        let rtt = t.elapsed() / 10;
        let t = Instant::now();
        let back = echo(&s, &data, T).unwrap();
        let d = t.elapsed();
        check_echo(vmm.label(), &data, &back).unwrap();
        let rate = data.len() as f64 / (1 << 20) as f64 / d.as_secs_f64();
        rates.push(rate);
        let hwm =
            peak_rss_kib(vm.child.id()).map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0));
        println!("| {} | {:.3} | {:.2} | {hwm} |", vmm.label(), rate, ms(rtt));
    }
    if let Some(kvm) = vmms.iter().position(|v| *v == Vmm::QemuKvm) {
        println!(
            "\nvmch run / QEMU KVM echo throughput: {:.2}x",
            rates[0] / rates[kvm]
        );
    }
}

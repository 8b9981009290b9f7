//! Appliance benchmark, side by side in one run on the same test disk (the Debian image of
//! `vmchannel_tests::images::DiskSet`):
//!
//! - process start to the first inspection answered (boot + handshake + inspection with
//!   applications): `vmch run` (KVM), QEMU q35 TCG and, when asked, QEMU q35 KVM;
//! - then, on the running appliance: inspection alone, small-file reads (`/etc/hostname`)
//!   per second, and download throughput of a 3 MiB file;
//! - the same operations against the in-process appliance (no VM: the kernel's code on the
//!   host), for scale.
//!
//! `cargo bench -p vmch --bench appliance [-- RUNS [kvm]]` (default 3 runs; `kvm` adds QEMU KVM,
//! whose firmware takes seconds here).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use host_device::console::{Backend, ConsoleConfig, PortConfig, SocketBackend};
use vmchannel_proto::Target;
use vmchannel_proto::client::Client;
use vmchannel_tests::appliance::PORT;
use vmchannel_tests::hosts::{QEMU, connect_unix, kvm_usable};
use vmchannel_tests::images::DiskSet;
use vmchannel_tests::inproc::InProcVm;
use vmchannel_tests::kernel_image;
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};

const CMDLINE: &str = "loglevel=warn";
const MEM_MIB: u32 = 64;
const T: Duration = Duration::from_secs(300);
const READS: u32 = 50;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Where {
    Vmch,
    QemuTcg,
    QemuKvm,
    InProc,
}

impl Where {
    fn label(self) -> &'static str {
        match self {
            Where::Vmch => "vmch run (KVM)",
            Where::QemuTcg => "QEMU q35 TCG",
            Where::QemuKvm => "QEMU q35 KVM",
            Where::InProc => "in process (no VM)",
        }
    }
}

enum Vm {
    Child(Child),
    InProc(#[allow(dead_code)] InProcVm),
}

struct Running {
    vm: Vm,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Vm::Child(c) = &mut self.vm {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(w: Where, disk: &Path) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("appliance.sock");
    let mut cmd = match w {
        Where::InProc => {
            let ports = vec![(
                PortConfig::new(PORT),
                Backend::Socket(SocketBackend::server(&socket).unwrap()),
            )];
            let vm = InProcVm::start_with_disks(
                ConsoleConfig::default(),
                ports,
                vec![disk.to_path_buf()],
            )
            .unwrap();
            return Running {
                vm: Vm::InProc(vm),
                socket,
                _dir: dir,
            };
        }
        Where::Vmch => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_vmch"));
            c.args(["run", "--serial", "none", "--cmdline", CMDLINE])
                .args(["--mem", &MEM_MIB.to_string()])
                .arg("--disk")
                .arg(disk)
                .arg("--port")
                .arg(format!("name={PORT},socket={}", socket.display()));
            c
        }
        Where::QemuTcg | Where::QemuKvm => {
            let accel = if w == Where::QemuKvm {
                Accel::Kvm
            } else {
                Accel::Tcg
            };
            let boot =
                QemuBoot::new(kernel_image(), Machine::Q35, accel, CMDLINE).memory_mib(MEM_MIB);
            let mut c = Command::new(QEMU);
            c.args(boot.args()).args([
                "-serial".into(),
                "none".into(),
                "-drive".into(),
                format!(
                    "file={},if=none,id=d0,format=raw,readonly=on",
                    disk.display()
                ),
                "-device".into(),
                "virtio-blk-pci,drive=d0,disable-legacy=on".to_string(),
                "-device".into(),
                "virtio-serial-pci,id=vser0,disable-legacy=on,max_ports=2".to_string(),
                "-chardev".into(),
                format!("socket,id=c0,path={},server=on,wait=off", socket.display()),
                "-device".into(),
                format!("virtserialport,bus=vser0.0,chardev=c0,name={PORT}"),
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
        vm: Vm::Child(child),
        socket,
        _dir: dir,
    }
}

fn connect(socket: &Path) -> UnixStream {
    let s = connect_unix(socket, T).unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
    s.set_read_timeout(Some(T)).unwrap();
    s
}

#[derive(Default, Clone)]
struct Sample {
    first_inspection: Duration,
    inspection: Duration,
    reads_per_s: f64,
    download_mib_s: f64,
}

fn measure(w: Where, disk: &Path) -> Sample {
    let start = Instant::now();
    let vm = spawn(w, disk);
    let mut c = Client::connect(connect(&vm.socket)).expect("handshake");
    let oses = c.inspect(true).expect("inspect");
    let first_inspection = start.elapsed();
    assert_eq!(oses.len(), 1);
    assert_eq!(oses[0].applications.len(), 4);
    let t = Instant::now();
    c.inspect(true).unwrap();
    let inspection = t.elapsed();
    let os = Target::Os("/dev/sda2".into());
    let t = Instant::now();
    for _ in 0..READS {
        assert_eq!(c.read(&os, "/etc/hostname", 0, 4096).unwrap(), b"debhost\n");
    }
    let reads_per_s = f64::from(READS) / t.elapsed().as_secs_f64();
    let mut sink = Vec::new();
    let t = Instant::now();
    let (size, _) = c
        .download(
            &os,
            "/boot/initrd.img-6.1.0-18-amd64",
            &mut sink,
            &mut |_, _| {},
        )
        .unwrap();
    let download_mib_s = size as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    drop(c);
    drop(vm);
    Sample {
        first_inspection,
        inspection,
        reads_per_s,
        download_mib_s,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median_by<T: Clone>(v: &[T], key: impl Fn(&T) -> f64) -> f64 {
    let mut k: Vec<f64> = v.iter().map(key).collect();
    k.sort_by(|a, b| a.partial_cmp(b).unwrap());
    k[k.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let with_qemu_kvm = args.iter().any(|a| a == "kvm");
    let set = DiskSet::build().expect("test disks");
    let mut wheres = vec![Where::InProc, Where::QemuTcg];
    if kvm_usable() {
        wheres.push(Where::Vmch);
        if with_qemu_kvm {
            wheres.push(Where::QemuKvm);
        }
    } else {
        eprintln!("appliance bench: /dev/kvm not usable, vmch and QEMU KVM left out");
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); wheres.len()];
    for run in 0..runs {
        for (i, w) in wheres.iter().enumerate() {
            let s = measure(*w, &set.debian);
            eprintln!(
                "run {run} {:<20} first inspection {:8.1} ms, inspection {:7.1} ms, {:7.1} reads/s, download {:6.2} MiB/s",
                w.label(),
                ms(s.first_inspection),
                ms(s.inspection),
                s.reads_per_s,
                s.download_mib_s
            );
            samples[i].push(s);
        }
    }
    println!(
        "\nmedians of {runs} interleaved runs, Debian test disk (80 MiB, 4 packages), {MEM_MIB} MiB guests, `{CMDLINE}`:\n"
    );
    println!("| where | start to first inspection | inspection | 4 KiB reads/s | 3 MiB download |");
    println!("|---|---|---|---|---|");
    for (i, w) in wheres.iter().enumerate() {
        let s = &samples[i];
        println!(
            "| {} | {:.0} ms | {:.1} ms | {:.0} | {:.2} MiB/s |",
            w.label(),
            median_by(s, |x| ms(x.first_inspection)),
            median_by(s, |x| ms(x.inspection)),
            median_by(s, |x| x.reads_per_s),
            median_by(s, |x| x.download_mib_s)
        );
    }
}

//! `vmch run`: boot a kernel under the bundled VMM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use vmm::{PortSpec, RunReport, SeccompMode, SerialOutput, VcpuStop, Vm, VmConfig};

use host_device::block::image::BackingPolicy;
use vmch::launch::BUILT_KERNEL;

/// `vmch run`'s arguments.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The PVH kernel ELF [default: the vmchannel kernel built with vmch].
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// The kernel command line.
    #[arg(long, default_value = "")]
    cmdline: String,
    /// Guest RAM in MiB.
    #[arg(long, default_value_t = vmm::config::DEFAULT_MEM_MIB)]
    mem: u64,
    /// A named virtio-serial port:
    /// name=N,socket=PATH[,server|client][,console][,cache_buffers=0|1][,byte_limit=N][,guest_byte_limit=N]
    #[arg(long = "port", value_name = "SPEC")]
    ports: Vec<PortSpec>,
    /// A disk image (raw or qcow2), attached read-only as a virtio-blk device (repeatable).
    #[arg(long = "disk", value_name = "PATH")]
    disks: Vec<PathBuf>,
    /// Follow a qcow2 disk's backing files wherever they are [default: only beside the
    /// image]. Loops, chains over 16 deep and non-regular files are refused regardless.
    #[arg(long)]
    allow_backing: bool,
    /// Where COM1 goes: stdout, none or file:PATH.
    #[arg(long, default_value = "stdout")]
    serial: SerialOutput,
    /// The virtio-serial device's max_ports (1..=511) [default: the ports given plus port 0;
    /// QEMU's default is 31].
    #[arg(long)]
    max_ports: Option<u32>,
    /// The KVM device.
    #[arg(long, default_value = "/dev/kvm", hide = true)]
    kvm_device: PathBuf,
    /// Report the time from process start to the guest's boot-complete signal on stderr.
    #[arg(long)]
    boot_time: bool,
    /// Exit when the guest resets instead of rebooting it (as QEMU's -no-reboot).
    #[arg(long)]
    no_reboot: bool,
    /// Confine the VMM's threads with seccomp filters (off: for debugging only). A forbidden
    /// system call ends vmch with status 148 and a line naming the thread and the call.
    #[arg(long, value_enum, default_value_t = Seccomp::On)]
    seccomp: Seccomp,
}

/// `--seccomp`'s values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Seccomp {
    /// Each VMM thread runs under its own filter.
    On,
    /// No filters.
    Off,
}

/// Runs `vmch run`.
pub fn run(args: RunArgs, started: Instant) -> ExitCode {
    let config = VmConfig {
        kernel: args.kernel.unwrap_or_else(|| PathBuf::from(BUILT_KERNEL)),
        cmdline: args.cmdline,
        mem_mib: args.mem,
        ports: args.ports,
        disks: args.disks,
        backing: if args.allow_backing {
            BackingPolicy::Any
        } else {
            BackingPolicy::Beside
        },
        serial: args.serial,
        max_ports: args.max_ports,
        kvm_device: args.kvm_device,
        // The waiting thread keeps what building the next VM needs only when a reset reboots.
        seccomp: match args.seccomp {
            Seccomp::On => SeccompMode::On {
                rebuild: !args.no_reboot,
            },
            Seccomp::Off => SeccompMode::Off,
        },
    };
    // A reset reboots: the VM is built again from the same configuration (fresh RAM, the
    // kernel reloaded, devices reset). Port sockets are made anew, so hosts reconnect, as
    // they would to a QEMU chardev whose guest rebooted and reopened its ports.
    let report = loop {
        let vm = match Vm::new(&config) {
            Ok(vm) => vm,
            Err(e) => {
                eprintln!("vmch: {e}");
                return ExitCode::from(vmm::EXIT_VMM_ERROR as u8);
            }
        };
        let boot_time = args.boot_time;
        let report = match vm.run(started, move |t| {
            if boot_time {
                eprintln!(
                    "vmch: guest ready {:.3} ms after process start",
                    t.as_secs_f64() * 1e3
                );
            }
        }) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("vmch: {e}");
                return ExitCode::from(vmm::EXIT_VMM_ERROR as u8);
            }
        };
        if report.stop == VcpuStop::Reset && report.signal.is_none() && !args.no_reboot {
            eprintln!("vmch: the guest reset: rebooting");
            continue;
        }
        break report;
    };
    if args.boot_time {
        let steps: Vec<String> = report
            .setup
            .iter()
            .map(|(name, t)| format!("{name} {:.3}", t.as_secs_f64() * 1e3))
            .collect();
        eprintln!(
            "vmch: set-up steps, ms after process start: {}",
            steps.join(", ")
        );
        eprintln!(
            "vmch: VMM set-up {:.3} ms; vCPU exits: {} port I/O ({} to no device), {} MMIO, {} other",
            report.vcpu_started.as_secs_f64() * 1e3,
            report.exits.pio,
            report.exits.unhandled_pio,
            report.exits.mmio,
            report.exits.other
        );
    }
    describe(&report);
    ExitCode::from(report.exit_code() as u8)
}

/// Says on stderr how the guest ended, when it is not a plain success.
fn describe(report: &RunReport) {
    if let Some(sig) = report.signal {
        eprintln!("vmch: stopped by signal {sig}");
        return;
    }
    match &report.stop {
        VcpuStop::PowerOff => log::info!("guest powered off"),
        VcpuStop::Reset => {
            eprintln!("vmch: the guest asked for a reset; exiting (--no-reboot)")
        }
        VcpuStop::DebugExit(v) if *v == vmm::DEBUG_EXIT_SUCCESS => {}
        VcpuStop::DebugExit(v) => {
            eprintln!("vmch: guest wrote {v:#x} to the debug-exit port (failure)")
        }
        VcpuStop::Crash(why) => eprintln!("vmch: guest crashed: {why}"),
        VcpuStop::Stopped => eprintln!("vmch: the VM was stopped"),
    }
}

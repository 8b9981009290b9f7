//! Boots the kernel under QEMU with a hard timeout and captures COM1.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::hosts::QEMU;
use crate::outcome::Outcome;

/// The QEMU machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// i440FX + PIIX.
    Pc,
    /// Q35 + ICH9 (PCIe, ECAM).
    Q35,
    /// The minimal microvm machine (no PCI by default, hardware-reduced ACPI).
    Microvm,
}

impl Machine {
    /// Every machine the kernel must boot on.
    pub const ALL: [Machine; 3] = [Machine::Pc, Machine::Q35, Machine::Microvm];

    fn arg(self) -> &'static str {
        match self {
            Machine::Pc => "pc",
            Machine::Q35 => "q35",
            Machine::Microvm => "microvm",
        }
    }
}

/// The accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation: slow CPU, but no firmware delay.
    Tcg,
    /// Hardware virtualization through /dev/kvm.
    Kvm,
}

impl Accel {
    fn arg(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

impl Accel {
    /// The accelerators this machine offers for benchmarks: TCG, and KVM when /dev/kvm is
    /// usable (says so on stderr when it is not).
    pub fn available() -> Vec<Accel> {
        let mut accels = vec![Accel::Tcg];
        if crate::hosts::kvm_usable() {
            accels.push(Accel::Kvm);
        } else {
            eprintln!("/dev/kvm not usable: KVM figures left out");
        }
        accels
    }
}

/// Why QEMU could not be run at all (as opposed to a guest that failed).
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// Spawning or waiting on the process failed.
    #[error("running {QEMU}: {0}")]
    Spawn(#[from] std::io::Error),
}

/// A QEMU invocation that boots the kernel.
#[derive(Debug, Clone)]
pub struct QemuBoot {
    /// Kernel ELF to pass as `-kernel`.
    pub kernel: PathBuf,
    /// Machine type.
    pub machine: Machine,
    /// Accelerator.
    pub accel: Accel,
    /// Kernel command line (`-append`).
    pub cmdline: String,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// Killed after this long.
    pub timeout: Duration,
    /// Let a guest reset reboot the machine (no `-no-reboot`).
    pub reboot: bool,
    /// Further QEMU arguments (devices, chardevs).
    pub extra_args: Vec<String>,
}

impl QemuBoot {
    /// Boots `kernel` on `machine` with `accel` and `cmdline`; 128 MiB, 60 s timeout.
    pub fn new(kernel: &Path, machine: Machine, accel: Accel, cmdline: &str) -> Self {
        Self {
            kernel: kernel.to_path_buf(),
            machine,
            accel,
            cmdline: cmdline.to_string(),
            memory_mib: 128,
            timeout: Duration::from_secs(60),
            extra_args: Vec::new(),
            reboot: false,
        }
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Appends QEMU arguments (devices, chardevs).
    pub fn with_args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the guest RAM size.
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// The QEMU arguments, minus the serial destination.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-M",
            self.machine.arg(),
            "-accel",
            self.accel.arg(),
            "-display",
            "none",
            "-nodefaults",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !self.reboot {
            args.push("-no-reboot".into());
        }
        args.extend(["-m".into(), format!("{}M", self.memory_mib)]);
        args.extend(["-kernel".into(), self.kernel.display().to_string()]);
        args.extend(["-append".into(), self.cmdline.clone()]);
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Runs QEMU to its exit or the timeout and returns what happened.
    pub fn run(&self) -> Result<Outcome, QemuError> {
        let dir = tempfile::tempdir()?;
        let serial_path = dir.path().join("serial.log");
        let mut cmd = Command::new(QEMU);
        cmd.args(self.args())
            .arg("-serial")
            .arg(format!("file:{}", serial_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn()?;
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr_reader = thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        });
        let deadline = start + self.timeout;
        let (status, timed_out) = loop {
            if let Some(status) = child.try_wait()? {
                break (status.code(), false);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break (None, true);
            }
            thread::sleep(Duration::from_millis(5));
        };
        let elapsed = start.elapsed();
        let serial = std::fs::read(&serial_path).unwrap_or_default();
        Ok(Outcome {
            description: self.to_string(),
            status,
            timed_out,
            serial: String::from_utf8_lossy(&serial).into_owned(),
            vmm_stderr: stderr_reader.join().unwrap_or_default(),
            elapsed,
        })
    }
}

impl fmt::Display for QemuBoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QEMU {:?}/{:?} \"{}\"",
            self.machine, self.accel, self.cmdline
        )
    }
}

//! The subcommands, and the options they share.

pub mod agent;
pub mod files;
pub mod inspect;
pub mod run;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use host_device::block::image::BackingPolicy;
use vmch::launch::{Accel, Appliance, Backend, BackendRequest, LaunchError, LaunchOptions};

/// How to run the appliance (shared by every subcommand that starts one).
#[derive(clap::Args, Debug, Clone)]
pub struct ApplianceArgs {
    /// What runs the appliance: the bundled KVM VMM, qemu-system-x86_64, or auto: the VMM
    /// wherever /dev/kvm is usable (hardware KVM or a paravirtual one), else QEMU with TCG
    /// when it is installed.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendRequest,
    /// QEMU's accelerator (with --backend qemu): auto is KVM when /dev/kvm is usable, else TCG.
    #[arg(long, value_enum, default_value = "auto")]
    accel: Accel,
    /// Guest RAM in MiB.
    #[arg(long, default_value_t = vmch::launch::DEFAULT_MEM_MIB)]
    mem: u64,
    /// Seconds to wait for the appliance to start, and for each answer.
    #[arg(long, default_value_t = vmch::launch::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// The appliance kernel [default: the one built with vmch].
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// The QEMU binary (with --backend qemu).
    #[arg(long, default_value = "qemu-system-x86_64")]
    qemu: PathBuf,
    /// Follow qcow2 backing files wherever the image says they are [default: only beside the
    /// image]: for images you trust. Loops, chains over 16 deep and non-regular files are
    /// refused regardless.
    #[arg(long)]
    allow_backing: bool,
    /// Say on stderr which backend runs the appliance and how long it took to start.
    #[arg(long, short)]
    verbose: bool,
}

impl ApplianceArgs {
    /// The backend and accelerator to use, and for `auto` why (see
    /// [`vmch::launch::choose_backend`]); an error when nothing can run the appliance.
    fn backend(&self) -> Result<(Backend, Accel, Option<&'static str>), &'static str> {
        let accel = self.accel;
        match self.backend {
            BackendRequest::Given(backend) => Ok((backend, accel, None)),
            BackendRequest::Auto => {
                let c = vmch::launch::choose_backend(
                    vmch::launch::kvm_usable(),
                    vmch::launch::hardware_virtualization(),
                    vmch::launch::program_available(&self.qemu),
                )?;
                // An accelerator asked for explicitly stands.
                let accel = if self.accel == Accel::Auto {
                    c.accel
                } else {
                    accel
                };
                Ok((c.backend, accel, Some(c.why)))
            }
        }
    }

    /// What ran the appliance, as the JSON output names it: `vmm`, `qemu-kvm`, `qemu-tcg`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend() {
            Ok((Backend::Vmm, _, _)) | Err(_) => "vmm",
            Ok((Backend::Qemu, Accel::Kvm, _)) => "qemu-kvm",
            Ok((Backend::Qemu, Accel::Tcg, _)) => "qemu-tcg",
            Ok((Backend::Qemu, Accel::Auto, _)) if vmch::launch::kvm_usable() => "qemu-kvm",
            Ok((Backend::Qemu, Accel::Auto, _)) => "qemu-tcg",
        }
    }

    /// The launch options these arguments give.
    pub fn options(&self) -> Result<LaunchOptions, &'static str> {
        let (backend, accel, _) = self.backend()?;
        let mut o = LaunchOptions {
            backend,
            accel,
            mem_mib: self.mem,
            timeout: Duration::from_secs(self.timeout.max(1)),
            qemu_program: self.qemu.clone(),
            backing: if self.allow_backing {
                BackingPolicy::Any
            } else {
                BackingPolicy::Beside
            },
            ..LaunchOptions::default()
        };
        if let Some(k) = &self.kernel {
            o.kernel = k.clone();
        }
        Ok(o)
    }

    /// Starts the appliance on `images`, or says why not.
    pub fn launch(&self, images: &[PathBuf]) -> Result<Appliance, ExitCode> {
        let options = match self.options() {
            Ok(o) => o,
            Err(e) => return Err(fail(e, vmch::exit::APPLIANCE_FAILED)),
        };
        if self.verbose
            && let Ok((_, _, Some(why))) = self.backend()
        {
            eprintln!("vmch: backend auto: {} ({why})", self.backend_name());
        }
        match Appliance::launch(images, &options) {
            Ok(a) => {
                if self.verbose {
                    eprintln!(
                        "vmch: appliance ready after {:.1} ms ({})",
                        a.ready_after().as_secs_f64() * 1e3,
                        self.backend_name()
                    );
                }
                Ok(a)
            }
            Err(e) => Err(fail_launch(&e)),
        }
    }
}

/// Reports a failed start and gives its exit status.
pub fn fail_launch(e: &LaunchError) -> ExitCode {
    // A VM killed by a signal's clean-up is not a failure to report.
    vmch::cleanup::hold_if_stopping();
    eprintln!("vmch: {e}");
    ExitCode::from(vmch::session::launch_status(e))
}

/// Reports an error with a status.
pub fn fail(message: impl std::fmt::Display, status: u8) -> ExitCode {
    vmch::cleanup::hold_if_stopping();
    eprintln!("vmch: {message}");
    ExitCode::from(status)
}

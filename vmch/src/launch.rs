//! Starting the appliance: the unikernel in a VM with disk images attached read-only, and a
//! connected protocol client on its `org.libguestfs.channel.0` port.
//!
//! Two backends run the same kernel ELF:
//! - [`Backend::Vmm`], the bundled KVM VMM, run as a child `vmch run` process (its signal
//!   handling is per process, and a child keeps one VM's failure away from the caller and
//!   from other appliances running in parallel);
//! - [`Backend::Qemu`], `qemu-system-x86_64` with KVM or TCG, a q35 machine with
//!   virtio-serial-pci and one virtio-blk-pci per image.
//!
//! Images are probed on the host first (raw or qcow2; see `host_device::block::image`), so a
//! missing or foreign image is reported as such before any VM starts, and QEMU is always told
//! the format instead of guessing it. The VM's serial log and stderr go to files in a private
//! temporary directory; a boot failure quotes their tails.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use host_device::block::image::{self, ImageError, ImageFormat};
use vmchannel_proto::client::{Client, ClientError};

/// The port the appliance serves.
pub const PORT: &str = "org.libguestfs.channel.0";
/// The kernel built with this crate.
pub const BUILT_KERNEL: &str = env!("VMCHANNEL_KERNEL");
/// Guest RAM for the appliance, in MiB (the kernel uses a few; each disk's cache 4 MiB).
pub const DEFAULT_MEM_MIB: u64 = 128;
/// QEMU's minimal firmware, used when installed (Debian's qemu-system-data ships it).
pub const QBOOT: &str = "/usr/share/qemu/qboot.rom";
/// How long to wait for the appliance to answer, at start and for each reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// What runs the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The bundled KVM VMM (`vmch run`).
    #[default]
    Vmm,
    /// `qemu-system-x86_64`.
    Qemu,
}

/// QEMU's accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// KVM when `/dev/kvm` can be opened read-write, else TCG.
    #[default]
    Auto,
    /// KVM.
    Kvm,
    /// TCG (software emulation).
    Tcg,
}

/// How to start an appliance.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// What runs the VM.
    pub backend: Backend,
    /// QEMU's accelerator (the VMM is always KVM).
    pub accel: Accel,
    /// The kernel ELF.
    pub kernel: PathBuf,
    /// Guest RAM in MiB.
    pub mem_mib: u64,
    /// How long to wait for the appliance at start and for each reply.
    pub timeout: Duration,
    /// The `vmch` binary whose `run` subcommand is the VMM [default: see [`vmm_program`]].
    pub vmm_program: Option<PathBuf>,
    /// The QEMU binary.
    pub qemu_program: PathBuf,
    /// Extra words for the kernel command line (`loglevel=debug` ...).
    pub cmdline: String,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            backend: Backend::Vmm,
            accel: Accel::Auto,
            kernel: PathBuf::from(BUILT_KERNEL),
            mem_mib: DEFAULT_MEM_MIB,
            timeout: DEFAULT_TIMEOUT,
            vmm_program: None,
            qemu_program: PathBuf::from("qemu-system-x86_64"),
            cmdline: String::new(),
        }
    }
}

/// Why an appliance could not be started or stopped answering.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// An image cannot be read on the host.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The VMM or QEMU could not be started.
    #[error("cannot start {program}: {source}", program = program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Setting up the run (temporary directory, log files) failed.
    #[error("{what}: {source}")]
    Setup {
        /// What was being done.
        what: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
    /// The VM ended, or never answered, before the appliance was ready.
    #[error("the appliance did not start ({backend}): {reason}{logs}")]
    Boot {
        /// Which backend.
        backend: &'static str,
        /// What happened.
        reason: String,
        /// The tails of the VM's stderr and serial log, formatted for the message.
        logs: String,
    },
    /// The appliance answered, but not as the protocol says.
    #[error("the appliance failed: {0}")]
    Protocol(#[from] ClientError),
}

/// The `vmch` binary that runs the VMM: `$VMCH_VMM` if set; the running program if it is
/// `vmch`; else a `vmch` beside the running program or one directory up (where cargo puts
/// binaries relative to tests); else `vmch` on `PATH`.
pub fn vmm_program() -> PathBuf {
    if let Some(p) = std::env::var_os("VMCH_VMM") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if exe.file_name().is_some_and(|n| n == "vmch") {
            return exe;
        }
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("vmch");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("vmch")
}

/// Whether `/dev/kvm` can be opened read-write.
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// An image to attach, probed.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its path.
    pub path: PathBuf,
    /// Its format.
    pub format: ImageFormat,
}

impl Image {
    /// Probes `path`: it must exist and be raw or qcow2 (a qcow2 header must also open).
    pub fn probe(path: &Path) -> Result<Image, ImageError> {
        // Opening checks more than the magic (a qcow2 header, its backing chain).
        let opened = image::open(path)?;
        Ok(Image {
            path: path.to_owned(),
            format: opened.format,
        })
    }
}

/// A running appliance and its connected client. Dropping it stops the VM.
pub struct Appliance {
    child: Child,
    backend: Backend,
    dir: tempfile::TempDir,
    client: Client<UnixStream>,
    started: Instant,
    ready: Duration,
}

impl std::fmt::Debug for Appliance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appliance")
            .field("backend", &self.backend)
            .field("pid", &self.child.id())
            .field("ready", &self.ready)
            .finish()
    }
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Vmm => "bundled VMM",
        Backend::Qemu => "QEMU",
    }
}

impl Appliance {
    /// Probes `images`, starts the VM with them attached read-only (`/dev/sda`, `/dev/sdb` ...
    /// in order) and connects to the appliance.
    pub fn launch(images: &[PathBuf], options: &LaunchOptions) -> Result<Appliance, LaunchError> {
        let probed = images
            .iter()
            .map(|p| Image::probe(p))
            .collect::<Result<Vec<_>, _>>()?;
        Self::launch_probed(&probed, options)
    }

    /// Starts the VM with images already probed.
    pub fn launch_probed(
        images: &[Image],
        options: &LaunchOptions,
    ) -> Result<Appliance, LaunchError> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("vmch-")
            .tempdir()
            .map_err(|source| LaunchError::Setup {
                what: "creating a temporary directory",
                source,
            })?;
        let socket = dir.path().join("appliance.sock");
        let serial = dir.path().join("serial.log");
        let stderr =
            File::create(dir.path().join("stderr.log")).map_err(|source| LaunchError::Setup {
                what: "creating the VM's stderr log",
                source,
            })?;
        let (program, args) = match options.backend {
            Backend::Vmm => vmm_command(images, options, &socket, &serial),
            Backend::Qemu => qemu_command(images, options, &socket, &serial),
        };
        let child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                program: program.clone(),
                source,
            })?;
        let mut starting = Starting {
            child: Some(child),
            backend: options.backend,
            dir: dir.path().to_owned(),
        };
        let stream = starting.connect(&socket, started + options.timeout)?;
        stream
            .set_read_timeout(Some(options.timeout))
            .map_err(|source| LaunchError::Setup {
                what: "setting the socket timeout",
                source,
            })?;
        let client = match Client::connect(stream) {
            Ok(c) => c,
            Err(e) => return Err(starting.failed(format!("no greeting from the appliance: {e}"))),
        };
        let Some(child) = starting.child.take() else {
            return Err(starting.failed("the VM process was lost".into()));
        };
        Ok(Appliance {
            child,
            backend: options.backend,
            dir,
            client,
            started,
            ready: started.elapsed(),
        })
    }

    /// The protocol client, connected and greeted.
    pub fn client(&mut self) -> &mut Client<UnixStream> {
        &mut self.client
    }

    /// Which backend runs it.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How long the start took, from [`Appliance::launch`] to the appliance's greeting.
    pub fn ready_after(&self) -> Duration {
        self.ready
    }

    /// How long since [`Appliance::launch`] began.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// The guest's serial log so far (the kernel's log).
    pub fn serial_log(&self) -> String {
        read_lossy(&self.dir.path().join("serial.log"))
    }

    /// Turns a client error into an error that says whether the VM is still running and
    /// quotes its logs.
    pub fn explain(&mut self, error: ClientError) -> LaunchError {
        match self.child.try_wait() {
            Ok(Some(status)) => LaunchError::Boot {
                backend: backend_name(self.backend),
                reason: format!("the VM exited ({}): {error}", describe_status(status)),
                logs: logs(self.dir.path()),
            },
            _ => LaunchError::Protocol(error),
        }
    }

    /// Stops the VM and waits for it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A VM that has not greeted yet: killed if dropped.
struct Starting {
    child: Option<Child>,
    backend: Backend,
    dir: PathBuf,
}

impl Starting {
    /// Connects to the port's socket once the VM has made it, watching the VM meanwhile.
    fn connect(&mut self, socket: &Path, deadline: Instant) -> Result<UnixStream, LaunchError> {
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(self.failed(format!("the VM exited ({})", describe_status(status))));
            }
            if socket.exists()
                && let Ok(stream) = UnixStream::connect(socket)
            {
                return Ok(stream);
            }
            if Instant::now() >= deadline {
                return Err(self.failed("timed out waiting for the port's socket".into()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the VM and builds the error, with its logs.
    fn failed(&mut self, reason: String) -> LaunchError {
        let mut reason = reason;
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            } else if let Ok(Some(status)) = child.try_wait()
                && !reason.contains("exited")
            {
                reason.push_str(&format!(" (the VM exited: {})", describe_status(status)));
            }
            let _ = child.wait();
        }
        LaunchError::Boot {
            backend: backend_name(self.backend),
            reason,
            logs: logs(&self.dir),
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last lines of the VM's stderr and serial log, for an error message.
fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for (name, file) in [("stderr", "stderr.log"), ("serial log", "serial.log")] {
        let text = read_lossy(&dir.join(file));
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        let tail = &lines[lines.len().saturating_sub(12)..];
        out.push_str(&format!("\n--- VM {name} (last {} lines) ---", tail.len()));
        for l in tail {
            out.push('\n');
            out.push_str(l);
        }
    }
    out
}

fn vmm_command(
    images: &[Image],
    options: &LaunchOptions,
    socket: &Path,
    serial: &Path,
) -> (PathBuf, Vec<String>) {
    let program = options.vmm_program.clone().unwrap_or_else(vmm_program);
    let mut args = vec![
        "run".to_owned(),
        "--kernel".into(),
        options.kernel.display().to_string(),
        "--mem".into(),
        options.mem_mib.to_string(),
        "--serial".into(),
        format!("file:{}", serial.display()),
        "--cmdline".into(),
        options.cmdline.clone(),
        "--port".into(),
        format!("name={PORT},socket={},server", socket.display()),
    ];
    for image in images {
        args.push("--disk".into());
        args.push(image.path.display().to_string());
    }
    (program, args)
}

/// The QEMU command line: a q35 machine without defaults, the kernel by `-kernel` (PVH),
/// virtio-serial and virtio-blk in modern-only mode.
pub fn qemu_args(
    images: &[Image],
    options: &LaunchOptions,
    socket: &Path,
    serial: &Path,
) -> Vec<String> {
    let accel = match options.accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg,tb-size=64",
        Accel::Auto if kvm_usable() => "kvm",
        Accel::Auto => "tcg,tb-size=64",
    };
    let mut args: Vec<String> = [
        "-M",
        "q35",
        "-accel",
        accel,
        "-display",
        "none",
        "-nodefaults",
        "-no-user-config",
        "-no-reboot",
        // QEMU's own seccomp filter, as libvirt sets it: no obsolete calls, no setuid, no
        // fork/exec, no scheduler or priority changes.
        "-sandbox",
        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // qboot, QEMU's minimal firmware, boots a PVH kernel in a fraction of SeaBIOS's time.
    if Path::new(QBOOT).exists() {
        args.extend(["-bios".into(), QBOOT.into()]);
    }
    args.extend([
        "-m".into(),
        format!("{}M", options.mem_mib),
        "-kernel".into(),
        options.kernel.display().to_string(),
        "-append".into(),
        options.cmdline.clone(),
        "-serial".into(),
        format!("file:{}", serial.display()),
        "-device".into(),
        "virtio-serial-pci,id=vser0,disable-legacy=on".into(),
        "-chardev".into(),
        format!(
            "socket,id=appl,path={},server=on,wait=off",
            socket.display()
        ),
        "-device".into(),
        format!("virtserialport,bus=vser0.0,chardev=appl,name={PORT}"),
    ]);
    for (i, image) in images.iter().enumerate() {
        // QEMU's -drive splits on commas: double them in the path.
        let path = image.path.display().to_string().replace(',', ",,");
        args.push("-drive".into());
        args.push(format!(
            "file={path},if=none,id=d{i},format={},readonly=on",
            image.format.qemu_name()
        ));
        args.push("-device".into());
        args.push(format!("virtio-blk-pci,drive=d{i},disable-legacy=on"));
    }
    args
}

fn qemu_command(
    images: &[Image],
    options: &LaunchOptions,
    socket: &Path,
    serial: &Path,
) -> (PathBuf, Vec<String>) {
    (
        options.qemu_program.clone(),
        qemu_args(images, options, socket, serial),
    )
}

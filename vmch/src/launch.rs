//! Starting the appliance: the unikernel in a VM with disk images attached read-only, and a
//! connected protocol client on its `org.vmchannel.appliance.0` port.
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

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use host_device::block::image::{self, BackingPolicy, ImageError, ImageFormat, Layer, LayerFiles};
use vmchannel_proto::client::{Client, ClientError};

use crate::cleanup;

/// The port the appliance serves.
pub const PORT: &str = "org.vmchannel.appliance.0";
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

/// What runs the VM as a user asks for it (`--backend`): one backend, or `Auto` to let
/// [`choose_backend`] pick from what the host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendRequest {
    /// Whatever [`choose_backend`] picks.
    #[default]
    Auto,
    /// This backend.
    Given(Backend),
}

impl BackendRequest {
    const ALL: [BackendRequest; 3] = [
        BackendRequest::Auto,
        BackendRequest::Given(Backend::Vmm),
        BackendRequest::Given(Backend::Qemu),
    ];
}

/// The command-line values: `auto`, `vmm`, `qemu`.
impl clap::ValueEnum for BackendRequest {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            BackendRequest::Auto => "auto",
            BackendRequest::Given(Backend::Vmm) => "vmm",
            BackendRequest::Given(Backend::Qemu) => "qemu",
        }))
    }
}

/// The command-line values: `auto`, `kvm`, `tcg`.
impl clap::ValueEnum for Accel {
    fn value_variants<'a>() -> &'a [Self] {
        &[Accel::Auto, Accel::Kvm, Accel::Tcg]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Accel::Auto => "auto",
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }))
    }
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
    /// Which backing files a qcow2 image may lead to (checked on the host for both backends;
    /// QEMU is then given exactly the chain that was checked).
    pub backing: BackingPolicy,
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
            backing: BackingPolicy::default(),
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
    /// `vmch` is being stopped by a signal: no new VM starts.
    #[error(transparent)]
    Stopping(cleanup::CleanupError),
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

/// Whether the CPU has hardware virtualization (`vmx` or `svm` in /proc/cpuinfo's flags).
/// Without it a usable /dev/kvm is a paravirtual one (kvm-pvm), which emulates every guest
/// instruction at CPL0 and runs CPL3 natively (../shared/FIELD-NOTES.md, "The machine"); the
/// kernel does its work in ring 3 for that reason. Only said in `--verbose`'s reason.
pub fn hardware_virtualization() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
    })
}

/// Whether `program` (a path, or a name looked up on `PATH`) is an executable file.
pub fn program_available(program: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 {
        return executable(program);
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| executable(&d.join(program))))
}

/// What `--backend auto` runs the appliance with, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoChoice {
    /// The backend.
    pub backend: Backend,
    /// QEMU's accelerator (TCG when QEMU is chosen for want of hardware virtualization).
    pub accel: Accel,
    /// Why, in a few words.
    pub why: &'static str,
}

/// Chooses the backend from what the host is, without trying any: the bundled VMM wherever
/// /dev/kvm is usable (hardware KVM, or a paravirtual one such as kvm-pvm, on which the
/// kernel's ring-3 work runs natively and the VMM is the faster: docs/BENCHMARKS.md); else
/// QEMU with TCG when it is installed; else an error saying what to install.
pub fn choose_backend(kvm: bool, hardware: bool, qemu: bool) -> Result<AutoChoice, &'static str> {
    match (kvm, hardware, qemu) {
        (true, true, _) => Ok(AutoChoice {
            backend: Backend::Vmm,
            accel: Accel::Auto,
            why: "hardware KVM",
        }),
        (true, false, _) => Ok(AutoChoice {
            backend: Backend::Vmm,
            accel: Accel::Auto,
            why: "/dev/kvm without hardware virtualization (kvm-pvm): the kernel's ring-3 work \
                  runs natively there",
        }),
        (false, _, true) => Ok(AutoChoice {
            backend: Backend::Qemu,
            accel: Accel::Tcg,
            why: "no usable /dev/kvm",
        }),
        (false, _, false) => Err(
            "no usable /dev/kvm and no qemu-system-x86_64: install QEMU (Debian: apt install \
             qemu-system-x86) or run where /dev/kvm is usable",
        ),
    }
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
    /// The files it is read from, itself first, then each backing file (see
    /// [`image::OpenedImage::chain`]).
    pub chain: Vec<Layer>,
    /// The same files, open: QEMU inherits these descriptors and reads through them, so a
    /// file swapped in at a checked path after the check is never what it opens. Empty for an
    /// `Image` made by hand (QEMU then opens `path`).
    pub files: Vec<LayerFiles>,
}

impl Image {
    /// Probes `path`: it must exist and be raw or qcow2 (a qcow2 header must also open),
    /// with backing files only beside it.
    pub fn probe(path: &Path) -> Result<Image, ImageError> {
        Self::probe_with(path, BackingPolicy::default())
    }

    /// Probes `path`, following backing files as `backing` allows.
    pub fn probe_with(path: &Path, backing: BackingPolicy) -> Result<Image, ImageError> {
        // Opening checks more than the magic (a qcow2 header, its backing chain).
        let opened = image::open_with(path, backing)?;
        Ok(Image {
            path: path.to_owned(),
            format: opened.format,
            chain: opened.chain,
            files: opened.files,
        })
    }
}

/// A running appliance and its connected client. Dropping it stops the VM.
pub struct Appliance {
    child: Child,
    /// The child's registration with [`crate::cleanup`].
    registered: Option<cleanup::Registered>,
    backend: Backend,
    /// Dropped after the child is stopped (fields drop after `Drop::drop`).
    dir: cleanup::RegisteredDir,
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
            .map(|p| Image::probe_with(p, options.backing))
            .collect::<Result<Vec<_>, _>>()?;
        Self::launch_probed(&probed, options)
    }

    /// Starts the VM with images already probed.
    pub fn launch_probed(
        images: &[Image],
        options: &LaunchOptions,
    ) -> Result<Appliance, LaunchError> {
        let started = Instant::now();
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(|| {
            cleanup::sweep_stale(&std::env::temp_dir());
        });
        let dir = cleanup::temp_dir(&cleanup::temp_prefix()).map_err(|e| match e {
            cleanup::TempDirError::Stopping(e) => LaunchError::Stopping(e),
            cleanup::TempDirError::Create(source) => LaunchError::Setup {
                what: "creating a temporary directory",
                source,
            },
        })?;
        let socket = dir.path().join("appliance.sock");
        let serial = dir.path().join("serial.log");
        let stderr =
            File::create(dir.path().join("stderr.log")).map_err(|source| LaunchError::Setup {
                what: "creating the VM's stderr log",
                source,
            })?;
        let (program, args, inherit) = match options.backend {
            Backend::Vmm => {
                let (program, args) = vmm_command(images, options, &socket, &serial);
                (program, args, Vec::new())
            }
            Backend::Qemu => {
                let (args, inherit) = qemu_invocation(images, options, &socket, &serial);
                (options.qemu_program.clone(), args, inherit)
            }
        };
        // The VM dies with us: `vmch run` stops cleanly on SIGTERM; QEMU is killed.
        let death_signal = match options.backend {
            Backend::Vmm => libc::SIGTERM,
            Backend::Qemu => libc::SIGKILL,
        };
        let parent = std::process::id();
        let mut command = Command::new(&program);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // The image descriptors QEMU is told about (`-add-fd`) stay open across exec.
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (prctl, getppid, fcntl, _exit); it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                cleanup::tie_to_parent(death_signal, parent)?;
                for &fd in &inherit {
                    // SAFETY: fcntl(F_SETFD) on a descriptor this process holds open (the
                    // images outlive the spawn); async-signal-safe.
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| LaunchError::Spawn {
            program: program.clone(),
            source,
        })?;
        let child_registered = cleanup::process(&mut child).map_err(LaunchError::Stopping)?;
        let mut starting = Starting {
            child: Some(child),
            registered: Some(child_registered),
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
        let (Some(child), Some(child_registered)) =
            (starting.child.take(), starting.registered.take())
        else {
            return Err(starting.failed("the VM process was lost".into()));
        };
        Ok(Appliance {
            child,
            registered: Some(child_registered),
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

    /// The VM process's id (`vmch run`, or QEMU).
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        cleanup::stop_process(&mut self.child, self.registered.take());
        // The directory goes with `self.dir` just after, unregistered only once removed.
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
    /// The child's registration with [`crate::cleanup`], ended as it is reaped.
    registered: Option<cleanup::Registered>,
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

    /// Kills and reaps the VM (once), ending its registration. Returns its exit status if it
    /// had exited by itself.
    fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let exited = child.try_wait().ok().flatten();
        cleanup::stop_process(&mut child, self.registered.take());
        exited
    }

    /// Stops the VM and builds the error, with its logs.
    fn failed(&mut self, reason: String) -> LaunchError {
        let mut reason = reason;
        if let Some(status) = self.stop()
            && !reason.contains("exited")
        {
            reason.push_str(&format!(" (the VM exited: {})", describe_status(status)));
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
        self.stop();
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
) -> (PathBuf, Vec<OsString>) {
    let program = options.vmm_program.clone().unwrap_or_else(vmm_program);
    // Paths go as they are (OsStr), never through a lossy `display()`.
    let mut args: Vec<OsString> = vec![
        "run".into(),
        "--kernel".into(),
        options.kernel.clone().into(),
        "--mem".into(),
        options.mem_mib.to_string().into(),
        "--serial".into(),
        joined(&["file:".as_ref(), serial.as_os_str()]),
        "--cmdline".into(),
        options.cmdline.clone().into(),
        "--port".into(),
        joined(&[
            format!("name={PORT},socket=").as_ref(),
            socket.as_os_str(),
            ",server".as_ref(),
        ]),
        // The appliance never resets on purpose: a reset ends the run, and the VMM's main
        // thread gets the narrower seccomp filter of a VMM that never rebuilds a VM.
        "--no-reboot".into(),
    ];
    if options.backing == BackingPolicy::Any {
        args.push("--allow-backing".into());
    }
    for image in images {
        args.push("--disk".into());
        args.push(image.path.clone().into());
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
) -> Vec<OsString> {
    qemu_invocation(images, options, socket, serial).0
}

/// [`qemu_args`], and the descriptors QEMU must inherit for them: each checked image file is
/// passed open (`-add-fd`, read through `/dev/fdset/N`), never by name.
pub fn qemu_invocation(
    images: &[Image],
    options: &LaunchOptions,
    socket: &Path,
    serial: &Path,
) -> (Vec<OsString>, Vec<RawFd>) {
    let mut inherit = Vec::new();
    let accel = match options.accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg,tb-size=64",
        Accel::Auto if kvm_usable() => "kvm",
        Accel::Auto => "tcg,tb-size=64",
    };
    let mut args: Vec<OsString> = [
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
    .map(OsString::from)
    .collect();
    // qboot, QEMU's minimal firmware, boots a PVH kernel in a fraction of SeaBIOS's time.
    if Path::new(QBOOT).exists() {
        args.extend(["-bios".into(), QBOOT.into()]);
    }
    args.extend([
        "-m".into(),
        format!("{}M", options.mem_mib).into(),
        "-kernel".into(),
        options.kernel.clone().into(),
        "-append".into(),
        options.cmdline.clone().into(),
        "-serial".into(),
        joined(&["file:".as_ref(), serial.as_os_str()]),
        "-device".into(),
        "virtio-serial-pci,id=vser0,disable-legacy=on".into(),
        "-chardev".into(),
        joined(&[
            "socket,id=appl,path=".as_ref(),
            &double_commas(socket.as_os_str()),
            ",server=on,wait=off".as_ref(),
        ]),
        "-device".into(),
        format!("virtserialport,bus=vser0.0,chardev=appl,name={PORT}").into(),
    ]);
    for (i, image) in images.iter().enumerate() {
        args.extend(blockdevs(&format!("d{i}"), image, &mut inherit));
        args.push("-device".into());
        args.push(format!("virtio-blk-pci,drive=d{i},disable-legacy=on").into());
    }
    (args, inherit)
}

/// `-blockdev` options for `image`, its format node named `node`: every file of the chain the
/// host checked is given explicitly, read-only, and the bottom layer's `backing` is null, so
/// QEMU opens nothing the header names by itself.
fn blockdevs(node: &str, image: &Image, inherit: &mut Vec<RawFd>) -> Vec<OsString> {
    let mut args = Vec::new();
    // A file node: the open file as an fd set when there is one (`-add-fd` first), else its
    // path verbatim (not lossily converted), commas doubled for QEMU's option parser.
    let mut file_node = |args: &mut Vec<OsString>, name: &str, path: &Path, open: Option<&File>| {
        let mut arg = OsString::from(format!("driver=file,node-name={name},filename="));
        match open {
            Some(file) => {
                inherit.push(file.as_raw_fd());
                let set = inherit.len();
                args.push("-add-fd".into());
                args.push(format!("fd={},set={set}", file.as_raw_fd()).into());
                arg.push(format!("/dev/fdset/{set}"));
            }
            None => arg.push(double_commas(path.as_os_str())),
        }
        arg.push(",read-only=on,auto-read-only=off");
        args.push("-blockdev".into());
        args.push(arg);
    };
    let single;
    let chain: &[Layer] = if image.chain.is_empty() {
        // An `Image` made by hand, not probed: the image alone, without a backing file.
        single = [Layer {
            path: image.path.clone(),
            format: image.format,
            data_file: None,
        }];
        &single
    } else {
        &image.chain
    };
    let name = |j: usize| {
        if j == 0 {
            node.to_owned()
        } else {
            format!("{node}-b{j}")
        }
    };
    // Bottom up: QEMU resolves `backing` to a node already defined.
    for (j, layer) in chain.iter().enumerate().rev() {
        let file = format!("{}-file", name(j));
        let files = image.files.get(j);
        file_node(&mut args, &file, &layer.path, files.map(|f| &*f.image));
        // The format node in QEMU's JSON syntax, the only one with a null `backing`; it
        // holds node names only, no paths, so nothing needs escaping.
        let mut format = format!(
            r#"{{"driver":"{}","node-name":"{}","file":"{file}","read-only":true"#,
            layer.format.qemu_name(),
            name(j)
        );
        if layer.format == ImageFormat::Qcow2 {
            if let Some(data) = &layer.data_file {
                let data_node = format!("{}-data", name(j));
                let open = files.and_then(|f| f.data.as_deref());
                file_node(&mut args, &data_node, data, open);
                format.push_str(&format!(r#","data-file":"{data_node}""#));
            }
            if j + 1 < chain.len() {
                format.push_str(&format!(r#","backing":"{}""#, name(j + 1)));
            } else {
                // No backing file, whatever the header says.
                format.push_str(r#","backing":null"#);
            }
        }
        format.push('}');
        args.push("-blockdev".into());
        args.push(format.into());
    }
    args
}

/// `s` with every comma doubled, as QEMU's option parser reads a literal comma.
/// `parts` one after the other.
fn joined(parts: &[&OsStr]) -> OsString {
    let mut out = OsString::new();
    for p in parts {
        out.push(p);
    }
    out
}

fn double_commas(s: &OsStr) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut out = Vec::with_capacity(s.len());
    for &b in s.as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// `--backend auto`: every kind of host, decided from what it is.
    #[test]
    fn auto_backend_for_every_host() {
        let pick = |kvm, hw, qemu| choose_backend(kvm, hw, qemu).map(|c| (c.backend, c.accel));
        // Hardware KVM: the bundled VMM, QEMU or not.
        assert_eq!(pick(true, true, true), Ok((Backend::Vmm, Accel::Auto)));
        assert_eq!(pick(true, true, false), Ok((Backend::Vmm, Accel::Auto)));
        // kvm-pvm (no vmx/svm): the VMM too, since the kernel works in ring 3.
        assert_eq!(pick(true, false, true), Ok((Backend::Vmm, Accel::Auto)));
        assert_eq!(pick(true, false, false), Ok((Backend::Vmm, Accel::Auto)));
        // No /dev/kvm: QEMU's TCG, or an error that says what to install.
        assert_eq!(pick(false, true, true), Ok((Backend::Qemu, Accel::Tcg)));
        assert_eq!(pick(false, false, true), Ok((Backend::Qemu, Accel::Tcg)));
        let e = choose_backend(false, false, false).unwrap_err();
        assert!(e.contains("apt install qemu-system-x86"), "{e}");
    }

    #[test]
    fn programs_found_on_path_or_by_path() {
        assert!(program_available(Path::new("sh")));
        assert!(program_available(Path::new("/bin/sh")));
        assert!(!program_available(Path::new("no-such-program-vmch")));
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"#!/bin/sh\n").unwrap();
        assert!(!program_available(&plain), "not executable");
        assert!(!program_available(dir.path()), "a directory");
    }

    /// The chain reaches QEMU explicitly: every file a read-only node, bottom first, its path
    /// byte for byte with commas doubled, and no backing below the last layer.
    #[test]
    fn qemu_gets_the_checked_chain_and_nothing_else() {
        let odd = Path::new(OsStr::from_bytes(b"/img/a,b\xff.qcow2"));
        let image = Image {
            path: odd.to_owned(),
            format: ImageFormat::Qcow2,
            chain: vec![
                Layer {
                    path: odd.to_owned(),
                    format: ImageFormat::Qcow2,
                    data_file: Some(PathBuf::from("/img/data.raw")),
                },
                Layer {
                    path: PathBuf::from("/img/base.raw"),
                    format: ImageFormat::Raw,
                    data_file: None,
                },
            ],
            files: Vec::new(),
        };
        let args = qemu_args(
            &[image],
            &LaunchOptions::default(),
            Path::new("/s"),
            Path::new("/l"),
        );
        let from = args.iter().position(|a| a == "-blockdev").unwrap();
        let blockdevs: Vec<&OsStr> = args[from..]
            .chunks(2)
            .take_while(|w| w[0] == "-blockdev")
            .map(|w| w[1].as_os_str())
            .collect();
        let want: [&[u8]; 5] = [
            b"driver=file,node-name=d0-b1-file,filename=/img/base.raw,read-only=on,auto-read-only=off",
            br#"{"driver":"raw","node-name":"d0-b1","file":"d0-b1-file","read-only":true}"#,
            b"driver=file,node-name=d0-file,filename=/img/a,,b\xff.qcow2,read-only=on,auto-read-only=off",
            b"driver=file,node-name=d0-data,filename=/img/data.raw,read-only=on,auto-read-only=off",
            br#"{"driver":"qcow2","node-name":"d0","file":"d0-file","read-only":true,"data-file":"d0-data","backing":"d0-b1"}"#,
        ];
        let got: Vec<&[u8]> = blockdevs.iter().map(|a| a.as_bytes()).collect();
        assert_eq!(got, want);
        assert_eq!(args[from + 10], "-device");
        assert_eq!(args[from + 11], "virtio-blk-pci,drive=d0,disable-legacy=on");
        assert!(!args.iter().any(|a| a == "-drive"));

        // A lone qcow2: backing null, so QEMU cannot follow its header.
        let lone = Image {
            path: PathBuf::from("/img/x.qcow2"),
            format: ImageFormat::Qcow2,
            chain: Vec::new(),
            files: Vec::new(),
        };
        let args = qemu_args(
            &[lone],
            &LaunchOptions::default(),
            Path::new("/s"),
            Path::new("/l"),
        );
        assert!(
            args.iter().any(|a| a
                .as_bytes()
                .ends_with(br#""read-only":true,"backing":null}"#)),
            "{args:?}"
        );
    }

    /// The kernel, socket and serial paths reach the VMM and QEMU byte for byte (commas
    /// doubled where QEMU parses options), not through a lossy `display()`.
    #[test]
    fn paths_reach_the_vm_byte_for_byte() {
        let odd = |s: &[u8]| PathBuf::from(OsStr::from_bytes(s));
        let options = LaunchOptions {
            kernel: odd(b"/k/ker\xffnel"),
            vmm_program: Some(PathBuf::from("/bin/vmch")),
            ..LaunchOptions::default()
        };
        let (socket, serial) = (odd(b"/d/s,\xfe"), odd(b"/d/l\xfd"));
        let (_, args) = vmm_command(&[], &options, &socket, &serial);
        let has = |args: &[OsString], want: &[u8]| args.iter().any(|a| a.as_bytes() == want);
        assert!(has(&args, b"/k/ker\xffnel"), "{args:?}");
        assert!(has(&args, b"file:/d/l\xfd"), "{args:?}");
        assert!(has(
            &args,
            b"name=org.vmchannel.appliance.0,socket=/d/s,\xfe,server"
        ));
        let args = qemu_args(&[], &options, &socket, &serial);
        assert!(has(&args, b"/k/ker\xffnel"), "{args:?}");
        assert!(has(&args, b"file:/d/l\xfd"), "{args:?}");
        assert!(has(
            &args,
            b"socket,id=appl,path=/d/s,,\xfe,server=on,wait=off"
        ));
    }

    /// A probed image reaches QEMU as the descriptor that was checked, never by its name.
    #[test]
    fn qemu_reads_probed_images_through_the_checked_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk,1.img");
        std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
        let image = Image::probe(&raw).unwrap();
        let fd = image.files[0].image.as_raw_fd();
        let (args, inherit) = qemu_invocation(
            std::slice::from_ref(&image),
            &LaunchOptions::default(),
            Path::new("/s"),
            Path::new("/l"),
        );
        assert_eq!(inherit, vec![fd]);
        let at = args.iter().position(|a| a == "-add-fd").unwrap();
        assert_eq!(args[at + 1], format!("fd={fd},set=1").as_str());
        assert_eq!(args[at + 2], "-blockdev");
        assert_eq!(
            args[at + 3],
            "driver=file,node-name=d0-file,filename=/dev/fdset/1,read-only=on,auto-read-only=off"
        );
        assert!(
            !args
                .iter()
                .any(|a| a.as_bytes().windows(6).any(|w| w == b"disk,1"))
        );
    }
}

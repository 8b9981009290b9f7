//! The bundled VMM: boots the vmchannel kernel (a PVH ELF) under KVM in milliseconds, with
//! `host-device`'s virtio-serial and read-only virtio-blk on a small PCI bus.
//!
//! - [`config`]: what a VM is made of (`--port` specs shaped like QEMU's `virtserialport`);
//! - [`layout`]: guest-physical addresses and ports;
//! - [`boot`]: guest RAM, the ELF through linux-loader, `hvm_start_info`;
//! - [`acpi`]: the tables that let the guest power off and reset, and the MCFG;
//! - [`pci`]: configuration mechanism #1 and ECAM, BARs, MMIO dispatch, ioeventfds;
//! - [`irq`]: MSI-X messages as irqfds;
//! - [`io`]: COM1 (vm-superio), debug-exit, the boot stamp, ACPI registers;
//! - [`rtc`]: the CMOS clock;
//! - [`vcpu`]: the PVH entry state and the exit loop;
//! - [`event_loop`]: the backend thread (queues, sockets);
//! - [`signals`]: Ctrl-C and kicking the vCPU;
//! - [`seccomp`]: the per-thread system-call filters.
//!
//! [`Vm::run`] ties them together: the vCPU runs in one thread, the event loop in another, and
//! the caller's thread waits for either to finish or for a signal. Unless
//! [`VmConfig::seccomp`] is off, each of the three installs its seccomp filter before the
//! guest runs.

pub mod acpi;
pub mod boot;
pub mod config;
pub mod event_loop;
pub mod io;
pub mod irq;
pub mod layout;
pub mod pci;
pub mod rtc;
pub mod seccomp;
pub mod signals;
pub mod vcpu;

use std::fs::OpenOptions;
use std::io::{LineWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use host_device::block::{Block, BlockConfig, BlockError};
use host_device::console::{
    Backend, Console, ConsoleConfig, ConsoleError, PortConfig, SocketBackend, SocketError,
};
use host_device::pci::VirtioPciDevice;
use host_device::virtio::VirtioDevice;
use kvm_bindings::{KVM_PIT_SPEAKER_DUMMY, kvm_pit_config, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

pub use config::{PortSpec, SerialOutput, SocketMode, VmConfig};
pub use seccomp::{EXIT_SECCOMP, SeccompMode};
pub use vcpu::{ExitCounts, VcpuStop};

use crate::event_loop::EventLoop;
use crate::io::{PortBus, PortEvent};
use crate::irq::MsiRouter;
use crate::pci::PciBus;
use crate::seccomp::ThreadKind;

/// The debug-exit value the kernel writes when its self tests pass.
pub const DEBUG_EXIT_SUCCESS: u32 = 0x10;
/// Exit status for a VMM error (the VM could not be built or run).
pub const EXIT_VMM_ERROR: i32 = 1;
/// Exit status for a guest crash (triple fault, failed entry, internal error).
pub const EXIT_GUEST_CRASH: i32 = 2;

/// Why the VM could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// The KVM device is missing or not accessible.
    #[error("KVM is not available: {path}: {source}", path = .0.display(), source = .1)]
    NoKvm(std::path::PathBuf, kvm_ioctls::Error),
    /// A KVM ioctl failed.
    #[error("{what}: {source}")]
    Kvm {
        /// Which step.
        what: &'static str,
        /// The error.
        source: kvm_ioctls::Error,
    },
    /// Loading the kernel failed.
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    /// The vCPU could not be set up.
    #[error(transparent)]
    Vcpu(#[from] vcpu::VcpuError),
    /// The PCI bus could not take a device.
    #[error(transparent)]
    Pci(#[from] pci::PciError),
    /// The virtio-serial device refused its configuration.
    #[error("virtio-serial: {0}")]
    Console(#[from] ConsoleError),
    /// A port's socket could not be set up.
    #[error("port socket: {0}")]
    Socket(#[from] SocketError),
    /// A disk could not be opened.
    #[error("disk: {0}")]
    Disk(#[from] BlockError),
    /// The event loop failed.
    #[error(transparent)]
    EventLoop(#[from] event_loop::EventLoopError),
    /// A seccomp filter could not be built or installed.
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    /// Some other I/O failed (the serial file, eventfds, signals, threads).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmmError {
    move |source| VmmError::Kvm { what, source }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmmError {
    let what = what.into();
    move |source| VmmError::Io { what, source }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Why the vCPU stopped.
    pub stop: VcpuStop,
    /// The signal that stopped the VM (SIGINT, SIGTERM), if one did.
    pub signal: Option<i32>,
    /// When the guest signalled boot-complete, measured from the start instant given to
    /// [`Vm::run`].
    pub boot_complete: Option<Duration>,
    /// When the vCPU first ran, from the same instant (the VMM's own set-up time).
    pub vcpu_started: Duration,
    /// The vCPU's exits by kind.
    pub exits: ExitCounts,
    /// The VMM's set-up steps and when each ended, from the same instant.
    pub setup: Vec<(&'static str, Duration)>,
}

impl RunReport {
    /// The process exit status: 0 for a clean power-off or the self tests' success code,
    /// QEMU's `(v << 1) | 1` for other debug-exit values, [`EXIT_GUEST_CRASH`] for a crash,
    /// 128 + the signal when stopped by one.
    pub fn exit_code(&self) -> i32 {
        match (&self.stop, self.signal) {
            (_, Some(sig)) => 128 + sig,
            (VcpuStop::PowerOff | VcpuStop::Reset, _) => 0,
            (VcpuStop::DebugExit(DEBUG_EXIT_SUCCESS), _) => 0,
            (VcpuStop::DebugExit(v), _) => ((v << 1) | 1) as u8 as i32,
            (VcpuStop::Crash(_), _) => EXIT_GUEST_CRASH,
            (VcpuStop::Stopped, None) => EXIT_VMM_ERROR,
        }
    }
}

/// A VM, built and ready to run.
pub struct Vm {
    kvm: Kvm,
    vm: Arc<VmFd>,
    mem: GuestMemoryMmap,
    entry: u64,
    bus: PciBus,
    event_loop: EventLoop,
    serial: Box<dyn Write + Send>,
    stop: EventFd,
    seccomp: SeccompMode,
    phases: Phases,
}

/// When each step of the VMM's set-up ended (`vmch run --boot-time` prints them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phases(Vec<(&'static str, Instant)>);

impl Phases {
    fn mark(&mut self, name: &'static str) {
        self.0.push((name, Instant::now()));
    }

    /// Each step's name and when it ended, measured from `started`.
    pub fn since(&self, started: Instant) -> Vec<(&'static str, Duration)> {
        self.0
            .iter()
            .map(|(name, t)| (*name, t.saturating_duration_since(started)))
            .collect()
    }
}

thread_local! {
    /// Whether this thread already carries its [`Vm::run`] filter (filters stack and cannot be
    /// removed: a rebooting caller installs its own once).
    static MAIN_FILTERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn serial_writer(out: &SerialOutput) -> Result<Box<dyn Write + Send>, VmmError> {
    Ok(match out {
        SerialOutput::Stdout => Box::new(LineWriter::new(std::io::stdout())),
        SerialOutput::None => Box::new(std::io::sink()),
        SerialOutput::File(path) => Box::new(LineWriter::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io_err(format!("opening serial log {}", path.display())))?,
        )),
    })
}

fn port_config(spec: &PortSpec) -> PortConfig {
    let mut config = if spec.console {
        PortConfig::console(spec.name.clone())
    } else {
        PortConfig::new(spec.name.clone())
    };
    if let Some(on) = spec.cache_buffers {
        config = config.cache_buffers(on);
    }
    if let Some(n) = spec.byte_limit {
        config = config.byte_limit(n);
    }
    if let Some(n) = spec.guest_byte_limit {
        config = config.guest_byte_limit(n);
    }
    config
}

/// Asks for transparent huge pages behind guest RAM (this host's THP mode is `madvise`).
/// Done before anything is written: loading the kernel into 4 KiB pages took about 1.1 ms
/// here, into huge pages about 0.55 ms.
fn advise_huge_pages(mem: &GuestMemoryMmap) {
    for region in mem.iter() {
        if let Ok(host) = mem.get_host_address(region.start_addr()) {
            let len = region.len() as usize;
            // SAFETY: advice only, on a mapping `mem` owns; it cannot change the memory's
            // contents.
            let _ = unsafe { libc::madvise(host.cast(), len, libc::MADV_HUGEPAGE) };
        }
    }
}

/// Registers every region of `mem` with KVM.
fn register_memory(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<(), VmmError> {
    for (slot, region) in mem.iter().enumerate() {
        let host = mem
            .get_host_address(region.start_addr())
            .map_err(|e| VmmError::Io {
                what: format!("guest RAM address: {e}"),
                source: std::io::Error::other("unmapped region"),
            })?;
        let region = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the mapping belongs to `mem`, which the `Vm` keeps alive until after the VM
        // fd is closed, and no other slot overlaps it.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
    }
    Ok(())
}

/// Opens the KVM device at `path` (read-write, close-on-exec).
fn open_kvm(path: &std::path::Path) -> Result<Kvm, VmmError> {
    let no_kvm = |e| VmmError::NoKvm(path.to_path_buf(), e);
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| no_kvm(kvm_ioctls::Error::new(libc::EINVAL)))?;
    let kvm = Kvm::new_with_path(&c_path).map_err(no_kvm)?;
    if kvm.get_api_version() != 12 {
        return Err(no_kvm(kvm_ioctls::Error::new(libc::ENOTSUP)));
    }
    Ok(kvm)
}

fn shared<D: VirtioDevice>(dev: VirtioPciDevice<D>) -> Arc<Mutex<VirtioPciDevice<D>>> {
    Arc::new(Mutex::new(dev))
}

impl Vm {
    /// Builds the VM: KVM, RAM, the kernel, ACPI, the PCI devices and their sockets.
    pub fn new(config: &VmConfig) -> Result<Self, VmmError> {
        let mut phases = Phases::default();
        let kvm = open_kvm(&config.kvm_device)?;
        let vm = Arc::new(kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?);
        phases.mark("KVM_CREATE_VM");

        let mem = boot::guest_memory(config.mem_mib)?;
        advise_huge_pages(&mem);
        // The kernel and the boot tables are written before the memory is given to KVM: on
        // a nested host (kvm-pvm) every first touch of registered guest memory costs tens
        // of microseconds (FIELD-NOTES); under strace, loading the 1.3 MB kernel into
        // registered memory took 9 ms, and 0.7 ms before registering.
        let entry = boot::load_kernel(&mem, &config.kernel)?;
        let rsdp = acpi::write_tables(&mem, layout::ACPI_ADDR)
            .map_err(|e| boot::BootError::Write(e.to_string()))?;
        boot::write_start_info(&mem, config.mem_mib << 20, &config.cmdline, rsdp)?;
        boot::write_gdt(&mem)?;
        phases.mark("kernel loaded");
        // Memory is registered before the irqchip and the PIT exist: after them, the first
        // KVM_SET_USER_MEMORY_REGION waits 4-8 ms here (kvm-pvm; apparently for a grace
        // period their creation started), before them it takes 0.1 ms (docs/BENCHMARKS.md).
        register_memory(&vm, &mem)?;
        phases.mark("KVM_SET_USER_MEMORY_REGION");
        if let Err(e) = vm.set_tss_address(layout::KVM_TSS_ADDR) {
            log::debug!("KVM_SET_TSS_ADDR: {e}");
        }
        vm.create_irq_chip()
            .map_err(kvm_err("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.create_pit2(pit).map_err(kvm_err("KVM_CREATE_PIT2"))?;
        phases.mark("irqchip and PIT");

        let router = Arc::new(MsiRouter::new(vm.clone()));
        let stop = EventFd::new(EFD_NONBLOCK).map_err(io_err("eventfd"))?;
        let wake = EventFd::new(EFD_NONBLOCK).map_err(io_err("eventfd"))?;
        let mut event_loop = EventLoop::new(
            stop.try_clone().map_err(io_err("eventfd"))?,
            wake.try_clone().map_err(io_err("eventfd"))?,
        )?;
        let mut bus = PciBus::new(vm.clone());
        bus.set_wake(wake);

        // The virtio-serial device exists when ports are given (QEMU's needs an explicit
        // -device too): a guest with nothing to serve then powers off.
        if !config.ports.is_empty() {
            let mut console = Console::new(ConsoleConfig {
                max_nr_ports: config.max_ports(),
                ..ConsoleConfig::default()
            })?;
            for spec in &config.ports {
                let socket = match spec.mode {
                    SocketMode::Server => SocketBackend::server(&spec.socket)?,
                    SocketMode::Client => SocketBackend::client(&spec.socket)?,
                };
                console.add_port(port_config(spec), Backend::Socket(socket))?;
            }
            let queues = console.queue_max_sizes().len() as u16;
            let console = shared(VirtioPciDevice::new(
                console,
                mem.clone(),
                router.clone(),
                queues + 1,
            ));
            let (_, handle) = bus.add_virtio(console, queues)?;
            event_loop.add_function(handle)?;
        }

        for (i, path) in config.disks.iter().enumerate() {
            let block = Block::open_with(
                path,
                BlockConfig {
                    serial: Some(format!("vmch-disk{i}")),
                },
                config.backing,
            )?;
            let queues = block.queue_max_sizes().len() as u16;
            let dev = shared(VirtioPciDevice::new(
                block,
                mem.clone(),
                router.clone(),
                queues + 1,
            ));
            let (_, handle) = bus.add_virtio(dev, queues)?;
            event_loop.add_function(handle)?;
        }

        phases.mark("devices");
        Ok(Vm {
            kvm,
            vm,
            mem,
            entry,
            bus,
            event_loop,
            serial: serial_writer(&config.serial)?,
            stop,
            seccomp: config.seccomp,
            phases,
        })
    }

    /// Runs the VM to its end. `started` is the instant boot times are measured from (the
    /// process start, as near as the caller can tell); `on_boot` is called once when the guest
    /// signals boot-complete, with the time since `started`.
    pub fn run(
        self,
        started: Instant,
        mut on_boot: impl FnMut(Duration) + Send + 'static,
    ) -> Result<RunReport, VmmError> {
        let Vm {
            kvm,
            vm,
            mem,
            entry,
            bus,
            mut event_loop,
            serial,
            stop,
            seccomp: mode,
            mut phases,
        } = self;
        let mut vcpu = vcpu::create(&kvm, &vm, entry)?;
        phases.mark("vCPU");
        signals::install(&stop).map_err(io_err("installing signal handlers"))?;

        // The filters are compiled here, where allocating is free; each thread installs its
        // own just before it starts serving the guest.
        let filters = match mode {
            SeccompMode::Off => None,
            SeccompMode::On { rebuild } => {
                seccomp::install_sigsys_handler()?;
                let main = if MAIN_FILTERED.with(|f| f.get()) {
                    None
                } else if rebuild {
                    Some(seccomp::filter(ThreadKind::MainRebuild)?)
                } else {
                    Some(seccomp::filter(ThreadKind::Main)?)
                };
                Some((
                    seccomp::filter(ThreadKind::Vcpu)?,
                    seccomp::filter(ThreadKind::EventLoop)?,
                    main,
                ))
            }
        };
        phases.mark("seccomp filters");
        let (vcpu_filter, loop_filter, main_filter) = match filters {
            Some((v, l, m)) => (Some(v), Some(l), m),
            None => (None, None, None),
        };

        enum Done {
            Vcpu(VcpuStop, Option<Duration>, ExitCounts),
            EventLoop(Result<(), event_loop::EventLoopError>),
            Seccomp(seccomp::SeccompError),
        }
        let (tx, rx) = mpsc::channel();
        let halt = Arc::new(AtomicBool::new(false));
        let loop_tx = tx.clone();
        // Both threads hand their halves of the VM back through `join`, so the devices (and
        // the port sockets they unlink) are dropped on this thread, not on a confined one.
        let backend = thread::Builder::new()
            .name("vmch-events".into())
            .spawn(move || {
                if let Some(f) = &loop_filter
                    && let Err(e) = seccomp::apply("vmch-events", f)
                {
                    let _ = loop_tx.send(Done::Seccomp(e));
                    return event_loop;
                }
                let result = event_loop.run();
                let _ = loop_tx.send(Done::EventLoop(result));
                event_loop
            })
            .map_err(io_err("starting the event loop thread"))?;
        let vcpu_started = started.elapsed();
        let vcpu_halt = halt.clone();
        let vcpu_thread = thread::Builder::new()
            .name("vmch-vcpu0".into())
            .spawn(move || {
                let mut ports = PortBus::new(serial, bus);
                if let Some(f) = &vcpu_filter
                    && let Err(e) = seccomp::apply("vmch-vcpu0", f)
                {
                    let _ = tx.send(Done::Seccomp(e));
                    return (vcpu, ports);
                }
                let mut boot_complete = None;
                let mut counts = ExitCounts::default();
                let stop = vcpu::run(&mut vcpu, &mut ports, &vcpu_halt, &mut counts, |event| {
                    if event == PortEvent::BootComplete && boot_complete.is_none() {
                        let t = started.elapsed();
                        boot_complete = Some(t);
                        on_boot(t);
                    }
                });
                counts.unhandled_pio = ports.unhandled;
                ports.flush();
                let _ = tx.send(Done::Vcpu(stop, boot_complete, counts));
                (vcpu, ports)
            })
            .map_err(io_err("starting the vCPU thread"))?;

        let mut seccomp_error = None;
        if let Some(f) = &main_filter {
            match seccomp::apply("main", f) {
                Ok(()) => MAIN_FILTERED.with(|m| m.set(true)),
                Err(e) => {
                    seccomp_error = Some(e);
                    halt.store(true, Ordering::SeqCst);
                    signals::kick(&vcpu_thread);
                    let _ = stop.write(1);
                }
            }
        }
        let mut loop_error: Option<event_loop::EventLoopError> = None;
        let (stop_reason, boot_complete, exits) = loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(Done::Vcpu(stop, boot, counts)) => break (stop, boot, counts),
                Ok(Done::EventLoop(result)) => {
                    // The backends are gone: stop the guest too.
                    loop_error = result.err();
                    halt.store(true, Ordering::SeqCst);
                    signals::kick(&vcpu_thread);
                }
                Ok(Done::Seccomp(e)) => {
                    // A thread could not confine itself: the guest must not run unconfined.
                    // Both threads are told to end; the loop ends with the vCPU's report or
                    // when both have gone.
                    seccomp_error.get_or_insert(e);
                    halt.store(true, Ordering::SeqCst);
                    signals::kick(&vcpu_thread);
                    let _ = stop.write(1);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if signals::stop_signal().is_some() || halt.load(Ordering::SeqCst) {
                        halt.store(true, Ordering::SeqCst);
                        signals::kick(&vcpu_thread);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break (VcpuStop::Stopped, None, ExitCounts::default());
                }
            }
        };
        let _ = stop.write(1);
        let vcpu_parts = vcpu_thread.join();
        let backend_parts = backend.join();
        signals::uninstall();
        // The VM's memory and devices go here: the vCPU fd and the bus, then the event loop
        // (the console's last reference removes the server sockets), then the VM and its RAM.
        drop((vcpu_parts, backend_parts));
        drop((vm, mem));
        if let Some(e) = seccomp_error {
            return Err(e.into());
        }
        if let Some(e) = loop_error {
            return Err(e.into());
        }
        Ok(RunReport {
            stop: stop_reason,
            signal: signals::stop_signal(),
            boot_complete,
            vcpu_started,
            exits,
            setup: phases.since(started),
        })
    }
}

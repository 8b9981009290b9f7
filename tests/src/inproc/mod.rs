//! Kernel-less runs: the guest kernel's own virtio-console driver and agents (the `kernel`
//! crate built for the host) against host-device's device model, in one process over shared
//! guest memory.
//!
//! [`InProcVm`] runs the guest side on its own thread (driver, agents, and the device's socket
//! backends polled in the same loop, as an event loop would) while the test thread acts as the
//! host through the device's API, its sockets, or snapshots.
//!
//! The guest loop stands in for the kernel's `arch::serve`: after each round it takes the
//! power action an agent requested (the guest agent's `guest-shutdown`) and, where the
//! kernel would power off or reset once the output drained, records it for the test
//! ([`InProcVm::power_actions`]) and keeps serving. The guest agent's clock is the host's
//! system time and its host name [`HOST_NAME`].

pub mod disk;
pub mod ram;
pub mod transport;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use host_device::console::{Backend, Console, ConsoleConfig, PortConfig};
use host_device::pci::VirtioPciDevice;
use kernel::agents::{self, Supervisor, guest_agent};
use kernel::power::{PowerAction, PowerRequests};
use kernel::rtc::{RtcError, WallTime};
use kernel::virtio_console::device::ConsoleDevice;

pub use ram::{GuestRam, InProcHal};
pub use transport::{InProcTransport, SharedDevice};

/// Guest RAM for in-process runs.
pub const RAM_SIZE: usize = 32 << 20;

/// The guest agent's host name in process.
pub const HOST_NAME: &str = "inproc-guest";

/// The host's system time, standing in for the guest's RTC.
struct SystemClock;

impl WallTime for SystemClock {
    fn unix_ns(&self) -> Result<i64, RtcError> {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| RtcError::Invalid("year"))?;
        i64::try_from(since.as_nanos()).map_err(|_| RtcError::Invalid("year"))
    }
}

/// Counts interrupts, standing in for a VMM's irqfds (host-device's fake, counting only so a
/// long run does not grow it).
pub use host_device::test_utils::RecordingSink as CountingSink;

/// The guest's side, handed to closures run on the guest thread.
pub struct Guest {
    /// The kernel's driver.
    pub console: ConsoleDevice<InProcHal, InProcTransport<Console>>,
    /// The kernel's agents.
    pub agents: Supervisor,
}

type GuestJob = Box<dyn FnOnce(&mut Guest) + Send>;

/// A device model with the kernel driver running against it.
pub struct InProcVm {
    dev: SharedDevice<Console>,
    ram: Arc<GuestRam>,
    sink: Arc<CountingSink>,
    stop: Arc<AtomicBool>,
    jobs: Sender<GuestJob>,
    thread: Option<JoinHandle<()>>,
    power_actions: Arc<Mutex<Vec<PowerAction>>>,
}

/// Why an in-process VM could not start.
#[derive(Debug, thiserror::Error)]
pub enum InProcError {
    /// Guest RAM.
    #[error(transparent)]
    Ram(#[from] ram::RamError),
    /// The device configuration.
    #[error(transparent)]
    Console(#[from] host_device::console::ConsoleError),
    /// Restoring a snapshot.
    #[error("restore: {0}")]
    Restore(String),
    /// A disk image.
    #[error("disk {0}")]
    Disk(String),
}

impl InProcVm {
    /// Builds the device with `ports` and starts the guest driver on its own thread.
    pub fn start(
        config: ConsoleConfig,
        ports: Vec<(PortConfig, Backend)>,
    ) -> Result<Self, InProcError> {
        Self::start_with(config, ports, |_| {})
    }

    /// As [`InProcVm::start`], with `before` run on the device before the guest starts (to
    /// open ports and write data the guest finds at boot).
    pub fn start_with(
        config: ConsoleConfig,
        ports: Vec<(PortConfig, Backend)>,
        before: impl FnOnce(&mut Console),
    ) -> Result<Self, InProcError> {
        Self::start_full(config, ports, before, Vec::new())
    }

    /// As [`InProcVm::start`], with disk images the appliance agent serves (`/dev/sda` ...
    /// in order), read by the guest thread through [`disk::FileDisk`].
    pub fn start_with_disks(
        config: ConsoleConfig,
        ports: Vec<(PortConfig, Backend)>,
        disks: Vec<std::path::PathBuf>,
    ) -> Result<Self, InProcError> {
        Self::start_full(config, ports, |_| {}, disks)
    }

    fn start_full(
        config: ConsoleConfig,
        ports: Vec<(PortConfig, Backend)>,
        before: impl FnOnce(&mut Console),
        disks: Vec<std::path::PathBuf>,
    ) -> Result<Self, InProcError> {
        let opened = disks
            .iter()
            .map(|p| {
                disk::FileDisk::open(p)
                    .map_err(|e| InProcError::Disk(format!("{}: {e}", p.display())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ram = GuestRam::new(RAM_SIZE)?;
        let mut console = Console::new(config)?;
        for (cfg, backend) in ports {
            console.add_port(cfg, backend)?;
        }
        before(&mut console);
        let sink = Arc::new(CountingSink::counting());
        let dev = Arc::new(Mutex::new(VirtioPciDevice::new(
            console,
            ram.memory(),
            sink.clone(),
            4,
        )));
        let stop = Arc::new(AtomicBool::new(false));
        let power_actions = Arc::new(Mutex::new(Vec::new()));
        let (jobs, job_rx) = channel::<GuestJob>();
        let thread = {
            let (ram, dev, stop) = (ram.clone(), dev.clone(), stop.clone());
            let actions = power_actions.clone();
            std::thread::Builder::new()
                .name("inproc-guest".into())
                .spawn(move || {
                    ram.install();
                    let transport = InProcTransport::new(dev.clone()).expect("virtio capabilities");
                    let console = ConsoleDevice::<InProcHal, _>::new(transport, |_, _| {})
                        .expect("the guest driver starts");
                    let disks = opened
                        .into_iter()
                        .map(|d| {
                            std::rc::Rc::new(d)
                                as std::rc::Rc<dyn vmchannel_inspect::disk::BlockDevice>
                        })
                        .collect();
                    let power = PowerRequests::new();
                    let guest_agent = guest_agent::Config {
                        host_name: HOST_NAME.into(),
                        clock: std::rc::Rc::new(SystemClock),
                        power: power.clone(),
                    };
                    let mut guest = Guest {
                        console,
                        agents: Supervisor::new(agents::builtin(disks, guest_agent)),
                    };
                    let mut idle = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        while let Ok(job) = job_rx.try_recv() {
                            job(&mut guest);
                        }
                        let mut progress = guest.console.poll();
                        progress |= guest.agents.poll(guest.console.ports());
                        progress |= lock(&dev).device_mut().poll_backends();
                        if let Some(action) = power.take() {
                            actions
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(action);
                        }
                        if progress {
                            idle = 0;
                        } else {
                            idle += 1;
                            if idle > 64 {
                                std::thread::sleep(Duration::from_micros(50));
                            } else {
                                std::thread::yield_now();
                            }
                        }
                    }
                })
                .expect("spawn the guest thread")
        };
        Ok(InProcVm {
            dev,
            ram,
            sink,
            stop,
            jobs,
            thread: Some(thread),
            power_actions,
        })
    }

    /// Runs `f` on the host side: the device, locked (the guest waits meanwhile).
    pub fn host<R>(&self, f: impl FnOnce(&mut Console) -> R) -> R {
        f(lock(&self.dev).device_mut())
    }

    /// Runs `f` on the guest thread between two polls and returns its result.
    pub fn guest<R: Send + 'static>(&self, f: impl FnOnce(&mut Guest) -> R + Send + 'static) -> R {
        let (tx, rx) = channel();
        self.jobs
            .send(Box::new(move |g| {
                let _ = tx.send(f(g));
            }))
            .expect("the guest thread is running");
        rx.recv().expect("the guest thread answered")
    }

    /// Polls `cond` on the host side until it holds or `timeout` passes.
    pub fn wait_host(
        &self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&mut Console) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !self.host(&mut cond) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The power actions the guest's serve loop took from its agents, in order.
    pub fn power_actions(&self) -> Vec<PowerAction> {
        self.power_actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the guest's serve loop has taken a power action, and returns it.
    pub fn wait_power_action(&self, timeout: Duration) -> Option<PowerAction> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(a) = self.power_actions().first() {
                return Some(*a);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Interrupts the device raised.
    pub fn interrupts(&self) -> u64 {
        self.sink.msi_count() + self.sink.intx_raised()
    }

    /// Snapshots the device, drops it, and continues on a device restored from the snapshot
    /// into `fresh` (configured with the same ports, its own backends attached), as a migration
    /// does; the guest is paused meanwhile. Returns the snapshot's size.
    pub fn snapshot_restore(&self, fresh: Console) -> Result<usize, InProcError> {
        let mut guard = lock(&self.dev);
        let bytes = guard.snapshot();
        let restored =
            VirtioPciDevice::restore(fresh, self.ram.memory(), self.sink.clone(), &bytes)
                .map_err(|e| InProcError::Restore(e.to_string()))?;
        *guard = restored;
        Ok(bytes.len())
    }
}

impl Drop for InProcVm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<D: host_device::virtio::VirtioDevice>(
    dev: &SharedDevice<D>,
) -> MutexGuard<'_, VirtioPciDevice<D>> {
    dev.lock().unwrap_or_else(|e| e.into_inner())
}

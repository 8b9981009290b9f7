//! The backend thread: one epoll over the queue-notification ioeventfds of every virtio
//! function, the console's sockets, a wake-up eventfd and the stop eventfd. It runs beside the
//! vCPU thread, so every port is served while the guest runs.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

use host_device::console::Console;
use host_device::pci::VirtioPciDevice;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use crate::pci::{VirtioHandle, lock};

const TOKEN_STOP: u64 = 0;
const TOKEN_WAKE: u64 = 1;
const TOKEN_QUEUE: u64 = 1 << 32;
const TOKEN_SOCKET: u64 = 2 << 32;

/// Why the event loop ended.
#[derive(Debug, thiserror::Error)]
pub enum EventLoopError {
    /// epoll failed.
    #[error("epoll: {0}")]
    Epoll(#[from] std::io::Error),
}

/// The shared virtio-console.
pub type SharedConsole = Arc<Mutex<VirtioPciDevice<Console>>>;

/// Everything the backend thread serves.
pub struct EventLoop {
    epoll: Epoll,
    /// (function, queue) for each registered ioeventfd, by token index.
    queues: Vec<(VirtioHandle, u16)>,
    console: Option<SharedConsole>,
    /// Socket fds registered, with their current event set.
    sockets: HashMap<RawFd, EventSet>,
    stop: EventFd,
    wake: EventFd,
}

impl EventLoop {
    /// A loop that stops when `stop` is written and re-reads the console's interests when
    /// `wake` is written (after the vCPU touched a device's registers).
    pub fn new(stop: EventFd, wake: EventFd) -> Result<Self, EventLoopError> {
        let epoll = Epoll::new()?;
        epoll.ctl(
            ControlOperation::Add,
            stop.as_raw_fd(),
            EpollEvent::new(EventSet::IN, TOKEN_STOP),
        )?;
        epoll.ctl(
            ControlOperation::Add,
            wake.as_raw_fd(),
            EpollEvent::new(EventSet::IN, TOKEN_WAKE),
        )?;
        Ok(EventLoop {
            epoll,
            queues: Vec::new(),
            console: None,
            sockets: HashMap::new(),
            stop,
            wake,
        })
    }

    /// Serves a virtio function's queue notifications.
    pub fn add_function(&mut self, handle: VirtioHandle) -> Result<(), EventLoopError> {
        for (q, ev) in handle.events.iter().enumerate() {
            let token = TOKEN_QUEUE + self.queues.len() as u64;
            self.epoll.ctl(
                ControlOperation::Add,
                ev.as_raw_fd(),
                EpollEvent::new(EventSet::IN, token),
            )?;
            let handle = VirtioHandle {
                function: handle.function.clone(),
                events: vec![ev.try_clone()?],
            };
            self.queues.push((handle, q as u16));
        }
        Ok(())
    }

    /// Serves the console's socket backends.
    pub fn set_console(&mut self, console: SharedConsole) {
        self.console = Some(console);
    }

    /// Brings the epoll set in line with what the console wants to wait for.
    fn sync_sockets(&mut self) {
        let Some(console) = &self.console else { return };
        let wanted: HashMap<RawFd, EventSet> = console
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .device()
            .fds()
            .into_iter()
            .filter(|(_, i)| i.read || i.write)
            .map(|(fd, i)| {
                let mut set = EventSet::empty();
                if i.read {
                    set |= EventSet::IN;
                }
                if i.write {
                    set |= EventSet::OUT;
                }
                (fd, set)
            })
            .collect();
        let stale: Vec<RawFd> = self
            .sockets
            .keys()
            .filter(|fd| !wanted.contains_key(fd))
            .copied()
            .collect();
        for fd in stale {
            // A closed fd has already left the epoll set: ignore the error.
            let _ = self
                .epoll
                .ctl(ControlOperation::Delete, fd, EpollEvent::default());
            self.sockets.remove(&fd);
        }
        for (fd, set) in wanted {
            if self.sockets.get(&fd) == Some(&set) {
                continue;
            }
            let event = EpollEvent::new(set, TOKEN_SOCKET + fd as u64);
            let done = if self.sockets.contains_key(&fd) {
                // The fd may have been closed and reused: fall back to adding it.
                self.epoll
                    .ctl(ControlOperation::Modify, fd, event)
                    .or_else(|_| self.epoll.ctl(ControlOperation::Add, fd, event))
            } else {
                self.epoll
                    .ctl(ControlOperation::Add, fd, event)
                    .or_else(|_| self.epoll.ctl(ControlOperation::Modify, fd, event))
            };
            match done {
                Ok(()) => {
                    self.sockets.insert(fd, set);
                }
                Err(e) => log::warn!("epoll on socket fd {fd}: {e}"),
            }
        }
    }

    /// Runs until the stop eventfd is written.
    pub fn run(&mut self) -> Result<(), EventLoopError> {
        let mut events = vec![EpollEvent::default(); 128];
        loop {
            self.sync_sockets();
            let n = match self.epoll.wait(-1, &mut events) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            for event in &events[..n] {
                match event.data() {
                    TOKEN_STOP => {
                        let _ = self.stop.read();
                        return Ok(());
                    }
                    TOKEN_WAKE => {
                        let _ = self.wake.read();
                    }
                    t if (TOKEN_QUEUE..TOKEN_SOCKET).contains(&t) => {
                        if let Some((handle, q)) = self.queues.get((t - TOKEN_QUEUE) as usize) {
                            if let Some(ev) = handle.events.first() {
                                let _ = ev.read();
                            }
                            lock(&handle.function).queue_notify(*q);
                        }
                    }
                    _ => {}
                }
            }
            if let Some(console) = &self.console {
                console
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .device_mut()
                    .poll_backends();
            }
        }
    }
}

//! The backend thread: one epoll over the queue-notification ioeventfds of every virtio
//! function, the descriptors of the functions' host-side backends (the console's sockets), a
//! wake-up eventfd and the stop eventfd. It runs beside the vCPU thread, so every port is
//! served while the guest runs.
//!
//! Functions are registered alike ([`EventLoop::add_function`]): a function with backends
//! ([`PciFunction::has_backends`](crate::pci::PciFunction::has_backends)) is asked after each
//! wake what its backends wait on, and the epoll set is changed only where that differs from
//! what is registered.

use std::os::fd::{AsRawFd, RawFd};

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use crate::pci::{SharedFunction, VirtioHandle, lock};

const TOKEN_STOP: u64 = 0;
const TOKEN_WAKE: u64 = 1;
const TOKEN_QUEUE: u64 = 1 << 32;
const TOKEN_BACKEND: u64 = 2 << 32;

/// Why the event loop ended.
#[derive(Debug, thiserror::Error)]
pub enum EventLoopError {
    /// epoll failed.
    #[error("epoll: {0}")]
    Epoll(#[from] std::io::Error),
}

/// Everything the backend thread serves.
pub struct EventLoop {
    epoll: Epoll,
    /// (function, queue) for each registered ioeventfd, by token index.
    queues: Vec<(VirtioHandle, u16)>,
    /// Functions with backends, polled after every wake.
    backends: Vec<SharedFunction>,
    /// Backend descriptors in the epoll set with their event sets, sorted by descriptor.
    registered: Vec<(RawFd, EventSet)>,
    /// What the backends want now, sorted by descriptor (kept to reuse its allocation).
    wanted: Vec<(RawFd, EventSet)>,
    /// The backends' answer before conversion (kept to reuse its allocation).
    interests: Vec<(RawFd, host_device::virtio::Interest)>,
    stop: EventFd,
    wake: EventFd,
}

impl EventLoop {
    /// A loop that stops when `stop` is written and asks the backends again what they wait for
    /// when `wake` is written (after the vCPU touched a device's registers).
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
            backends: Vec::new(),
            registered: Vec::new(),
            wanted: Vec::new(),
            interests: Vec::new(),
            stop,
            wake,
        })
    }

    /// Serves a virtio function: its queue notifications, and its backends if it has any.
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
        if lock(&handle.function).has_backends() {
            self.backends.push(handle.function);
        }
        Ok(())
    }

    /// Asks the backends what they wait for and changes the epoll set where that differs from
    /// what is registered.
    fn sync_backends(&mut self) {
        if self.backends.is_empty() {
            return;
        }
        self.interests.clear();
        for f in &self.backends {
            lock(f).backend_fds(&mut self.interests);
        }
        self.wanted.clear();
        self.wanted.extend(
            self.interests
                .iter()
                .filter(|(_, i)| i.read || i.write)
                .map(|&(fd, i)| {
                    let mut set = EventSet::empty();
                    if i.read {
                        set |= EventSet::IN;
                    }
                    if i.write {
                        set |= EventSet::OUT;
                    }
                    (fd, set)
                }),
        );
        self.wanted.sort_unstable_by_key(|&(fd, _)| fd);
        self.wanted.dedup_by_key(|&mut (fd, _)| fd);
        if self.wanted == self.registered {
            return;
        }
        let changes = changes(&self.registered, &self.wanted);
        for fd in changes.removed {
            // A closed fd has already left the epoll set: ignore the error.
            let _ = self
                .epoll
                .ctl(ControlOperation::Delete, fd, EpollEvent::default());
        }
        let mut now = changes.kept;
        for (fd, set, known) in changes.set {
            let event = EpollEvent::new(set, TOKEN_BACKEND + fd as u64);
            let done = if known {
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
                Ok(()) => now.push((fd, set)),
                Err(e) => log::warn!("epoll on backend fd {fd}: {e}"),
            }
        }
        now.sort_unstable_by_key(|&(fd, _)| fd);
        self.registered = now;
    }

    /// Runs until the stop eventfd is written.
    pub fn run(&mut self) -> Result<(), EventLoopError> {
        let mut events = vec![EpollEvent::default(); 128];
        loop {
            self.sync_backends();
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
                    t if (TOKEN_QUEUE..TOKEN_BACKEND).contains(&t) => {
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
            for f in &self.backends {
                lock(f).poll_backends();
            }
        }
    }
}

/// How the epoll set must change to go from `registered` to `wanted` (both sorted by
/// descriptor, one entry each).
#[derive(Debug, Default, PartialEq, Eq)]
struct Changes {
    /// Descriptors to remove.
    removed: Vec<RawFd>,
    /// Entries already registered as wanted.
    kept: Vec<(RawFd, EventSet)>,
    /// Entries to add or change, and whether the descriptor was registered before.
    set: Vec<(RawFd, EventSet, bool)>,
}

fn changes(registered: &[(RawFd, EventSet)], wanted: &[(RawFd, EventSet)]) -> Changes {
    let find = |list: &[(RawFd, EventSet)], fd: RawFd| {
        list.binary_search_by_key(&fd, |&(f, _)| f)
            .ok()
            .map(|i| list[i].1)
    };
    let mut c = Changes::default();
    for &(fd, _) in registered {
        if find(wanted, fd).is_none() {
            c.removed.push(fd);
        }
    }
    for &(fd, set) in wanted {
        match find(registered, fd) {
            Some(before) if before == set => c.kept.push((fd, set)),
            before => c.set.push((fd, set, before.is_some())),
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_differs_is_changed() {
        let (r, w, rw) = (EventSet::IN, EventSet::OUT, EventSet::IN | EventSet::OUT);
        assert_eq!(changes(&[(3, r)], &[(3, r)]).set, []);
        let c = changes(&[(3, r), (5, r), (9, w)], &[(3, r), (5, rw), (7, r)]);
        assert_eq!(
            c,
            Changes {
                removed: vec![9],
                kept: vec![(3, r)],
                set: vec![(5, rw, true), (7, r, false)],
            }
        );
        assert_eq!(changes(&[(4, r)], &[]).removed, [4]);
    }
}

//! The queue side of the console: moving host data into the guest's receive chains, guest
//! output from its transmit chains toward the backends (or the cache), and control messages
//! both ways. Which chain goes where and what is counted is decided here; the bytes are moved
//! by [`super::chain`], and control messages are acted on by [`super::control::Control`].

use super::chain::{self, ChainError};
use super::control::{ControlAction, Header, event_name};
use super::port::InFlight;
use super::{Backend, Console, F_MULTIPORT, tx_queue};
use crate::active::pop_chain;
use virtio_console_wire::{CONTROL_RX, CONTROL_TX, rx_queue};

impl Console {
    /// How many queued control messages stop us reading the guest's: enough for a full
    /// start-up exchange of every port.
    pub(super) fn ctrl_backlog_cap(&self) -> usize {
        64 + 4 * self.config.max_nr_ports as usize
    }

    /// Queues host data toward the guest and moves what it can; returns how much was taken.
    pub(super) fn queue_to_guest(&mut self, id: u32, data: &[u8]) -> usize {
        let Some(port) = self.ports.get_mut(&id) else {
            return 0;
        };
        if port.drops_to_guest() {
            port.stats.dropped_to_guest += data.len() as u64;
            return data.len();
        }
        let n = port.guest_room().min(data.len());
        port.to_guest.extend(&data[..n]);
        self.flush_to_guest(id);
        n
    }

    /// Moves queued host data into the guest's receive buffers while the guest has the port
    /// open.
    pub(super) fn flush_to_guest(&mut self, id: u32) {
        let (Some(act), Some(port)) = (self.active.as_mut(), self.ports.get_mut(&id)) else {
            return;
        };
        if !port.guest_connected || port.to_guest.is_empty() {
            return;
        }
        let q = rx_queue(id);
        let mut moved = 0u64;
        let mut budget = act.chain_budget(q);
        while !port.to_guest.is_empty() {
            let Some(chain) = pop_chain(&mut act.queues, &act.mem, q, &mut budget) else {
                break;
            };
            let head = chain.head_index();
            let written = match chain::fill_rx(&act.mem, chain, &port.to_guest) {
                Ok(n) => n,
                Err(ChainError::Copy(_)) => {
                    self.stats.bad_chains += 1;
                    0
                }
                Err(e) => {
                    log::warn!("virtio-console: port {id}: bad receive chain: {e}");
                    self.stats.bad_chains += 1;
                    0
                }
            };
            port.to_guest.drain(..written);
            moved += written as u64;
            act.add_used(q, head, written as u32);
        }
        port.stats.to_guest += moved;
        if let (true, Backend::Handler(h)) = (moved > 0, &mut port.backend) {
            h.guest_ready();
        }
    }

    /// Moves guest output toward the backend: what is held first, then new chains. Returns
    /// whether anything moved.
    pub(super) fn process_tx(&mut self, id: u32) -> bool {
        let Some(act) = self.active.as_mut() else {
            return false;
        };
        let q = tx_queue(id);
        let Some(port) = self.ports.get_mut(&id) else {
            // Chains for a port that does not exist: return them unread (as QEMU discards).
            return act.discard_available(q);
        };
        let mut progress = false;
        let mut budget = act.chain_budget(q);
        loop {
            let drained = port.drain_held();
            if let Some(head) = drained.finished {
                act.add_used(q, head, 0);
            }
            progress |= drained.moved;
            if !drained.more {
                break;
            }
            let Some(chain) = pop_chain(&mut act.queues, &act.mem, q, &mut budget) else {
                break;
            };
            let head = chain.head_index();
            match chain::read_tx(&act.mem, chain) {
                Ok(data) if data.is_empty() => {
                    log::warn!("virtio-console: port {id}: transmit chain with nothing to read");
                    self.stats.bad_chains += 1;
                    act.add_used(q, head, 0);
                }
                Ok(data) => {
                    port.inflight = Some(InFlight {
                        head,
                        data,
                        offset: 0,
                    })
                }
                Err(e) => {
                    log::warn!("virtio-console: port {id}: bad transmit chain: {e}");
                    self.stats.bad_chains += 1;
                    act.add_used(q, head, 0);
                }
            }
            progress = true;
        }
        progress
    }

    /// Reads the guest's control messages.
    pub(super) fn process_ctrl_tx(&mut self) {
        let mut budget = self
            .active
            .as_ref()
            .map_or(0, |act| act.chain_budget(CONTROL_TX));
        loop {
            if self.control.out.len() >= self.ctrl_backlog_cap() {
                break;
            }
            let Some(act) = self.active.as_mut() else {
                return;
            };
            let Some(chain) = pop_chain(&mut act.queues, &act.mem, CONTROL_TX, &mut budget) else {
                break;
            };
            let head = chain.head_index();
            let header = chain::read_control(&act.mem, chain);
            act.add_used(CONTROL_TX, head, 0);
            match header {
                Ok(Some(h)) => self.handle_control(h),
                Ok(None) => {
                    log::warn!("virtio-console: short control message");
                    self.stats.bad_control += 1;
                }
                Err(e) => {
                    log::warn!("virtio-console: bad control chain: {e}");
                    self.stats.bad_chains += 1;
                }
            }
        }
    }

    pub(super) fn bad_control(&mut self, h: Header, why: &str) {
        log::warn!(
            "virtio-console: ignoring {} ({}) for port {} value {}: {why}",
            event_name(h.event),
            h.event,
            h.id,
            h.value
        );
        self.stats.bad_control += 1;
    }

    pub(super) fn handle_control(&mut self, h: Header) {
        match self.control.handle(&mut self.ports, h) {
            Ok(ControlAction::None) => {}
            Ok(ControlAction::GuestOpenChanged { id, open }) => {
                if let Some(port) = self.ports.get_mut(&id) {
                    port.guest_open_changed();
                }
                if open {
                    self.flush_to_guest(id);
                }
            }
            Err(why) => self.bad_control(h, why),
        }
    }

    /// Sends queued control messages into the guest's control buffers.
    pub(super) fn flush_ctrl(&mut self) {
        let Some(act) = self.active.as_mut() else {
            return;
        };
        if !act.has_feature(F_MULTIPORT) {
            self.control.out.clear();
            return;
        }
        let mut budget = act.chain_budget(CONTROL_RX);
        while let Some(msg) = self.control.out.front() {
            let Some(chain) = pop_chain(&mut act.queues, &act.mem, CONTROL_RX, &mut budget) else {
                break;
            };
            let head = chain.head_index();
            let written = match chain::write_control(&act.mem, chain, msg) {
                Ok(n) => n,
                Err(ChainError::NoRoom) => {
                    self.stats.bad_chains += 1;
                    0
                }
                Err(e) => {
                    log::warn!("virtio-console: bad control receive chain: {e}");
                    self.stats.bad_chains += 1;
                    0
                }
            };
            act.add_used(CONTROL_RX, head, written as u32);
            if written > 0 {
                self.control.out.pop_front();
                self.stats.control_sent += 1;
            }
        }
    }
}

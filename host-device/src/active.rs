//! What every device model keeps while the driver has it running: guest memory, its queues,
//! the accepted features and how to interrupt, with the bookkeeping around them (checking the
//! queues at activation, taking chains with a budget, returning them, and raising the
//! interrupts owed once per pass). Shared by the console and the block device.

use std::sync::Arc;

use virtio_queue::{DescriptorChain, Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use crate::virtio::{
    ActivateContext, ActivateError, DeviceState, VIRTIO_F_VERSION_1, VirtioInterrupt,
};

/// The queues and memory of an activated device.
pub(crate) struct ActiveQueues {
    /// Guest memory.
    pub mem: GuestMemoryMmap,
    /// The device's queues, in order.
    pub queues: Vec<Queue>,
    /// The features the driver accepted.
    pub features: u64,
    irq: Arc<dyn VirtioInterrupt>,
    /// Queues that returned chains since the last [`ActiveQueues::signal`].
    used: Vec<bool>,
    /// The device's name, for logs.
    name: &'static str,
}

impl ActiveQueues {
    /// Checks what the driver set up, as at DRIVER_OK: every enabled queue lies in guest
    /// memory, and VIRTIO_F_VERSION_1 was accepted.
    pub fn check(ctx: &ActivateContext) -> Result<(), ActivateError> {
        for (i, q) in ctx.queues.iter().enumerate() {
            if q.ready() && !q.is_valid(&ctx.mem) {
                return Err(ActivateError::BadQueue(i as u16));
            }
        }
        if ctx.acked_features & VIRTIO_F_VERSION_1 == 0 {
            return Err(ActivateError::MissingFeatures(VIRTIO_F_VERSION_1));
        }
        Ok(())
    }

    /// Takes the queues of `ctx` (checked or restored) for the device called `name`.
    pub fn new(ctx: ActivateContext, name: &'static str) -> Self {
        let n = ctx.queues.len();
        ActiveQueues {
            mem: ctx.mem,
            queues: ctx.queues,
            features: ctx.acked_features,
            irq: ctx.interrupt,
            used: vec![false; n],
            name,
        }
    }

    /// Whether the driver accepted `feature`.
    pub fn has_feature(&self, feature: u64) -> bool {
        self.features & feature != 0
    }

    /// Returns chain `head` to queue `q` with `len` bytes written. False when it cannot be
    /// (no such queue, or the used ring is outside guest memory).
    pub fn add_used(&mut self, q: u16, head: u16, len: u32) -> bool {
        let Some(queue) = self.queues.get_mut(q as usize) else {
            return false;
        };
        match queue.add_used(&self.mem, head, len) {
            Ok(()) => {
                self.used[q as usize] = true;
                true
            }
            Err(e) => {
                log::warn!("{}: queue {q}: cannot return chain {head}: {e}", self.name);
                false
            }
        }
    }

    /// Raises the interrupts owed: one per queue that returned chains since the last call and
    /// whose driver wants to hear of it.
    pub fn signal(&mut self) {
        for q in 0..self.used.len() {
            if !std::mem::take(&mut self.used[q]) {
                continue;
            }
            let notify = self.queues[q].needs_notification(&self.mem).unwrap_or(true);
            if notify {
                self.irq.signal_queue(q as u16);
            }
        }
    }

    /// How many chains one pass over queue `q` may take: its size. A guest that plays by the
    /// rules never has more available at once (chains it adds meanwhile come with a new
    /// notification, which starts another pass); one that lays its used ring over its
    /// available ring, so that every chain returned makes another available, must not keep
    /// the device busy for ever (found by fuzzing: a restored snapshot looped in the
    /// console's transmit path).
    pub fn chain_budget(&self, q: u16) -> usize {
        self.queues
            .get(q as usize)
            .map_or(0, |queue| usize::from(queue.size()))
    }

    /// Returns every chain queue `q` has available, unread (used length 0). Returns whether
    /// there was any.
    pub fn discard_available(&mut self, q: u16) -> bool {
        let mut any = false;
        let mut budget = self.chain_budget(q);
        while let Some(chain) = pop_chain(&mut self.queues, &self.mem, q, &mut budget) {
            let head = chain.head_index();
            self.add_used(q, head, 0);
            any = true;
        }
        any
    }

    /// A device's saved state: the queues of `active` with their positions (none before
    /// activation) and the device's own `blob`.
    pub fn save(active: Option<&ActiveQueues>, blob: Vec<u8>) -> DeviceState {
        DeviceState {
            queues: active
                .map(|a| a.queues.iter().map(|q| q.state()).collect())
                .unwrap_or_default(),
            blob,
        }
    }
}

/// Pops the next chain of queue `q` while `budget` lasts (none while the queue is not ready).
/// A free function so the chain borrows only the memory, not the queues it must later be
/// returned to.
pub(crate) fn pop_chain<'m>(
    queues: &mut [Queue],
    mem: &'m GuestMemoryMmap,
    q: u16,
    budget: &mut usize,
) -> Option<DescriptorChain<&'m GuestMemoryMmap>> {
    let queue = queues.get_mut(q as usize)?;
    if !queue.ready() || *budget == 0 {
        return None;
    }
    *budget -= 1;
    queue.pop_descriptor_chain(mem)
}

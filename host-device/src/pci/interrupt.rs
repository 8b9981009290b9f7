//! Interrupt state shared between the transport and the device: the ISR, the INTx line, the
//! MSI-X table and the virtio vector registers.
//!
//! The device raises interrupts from whatever thread processes its queues, through the
//! [`VirtioInterrupt`] it got in [`crate::virtio::ActivateContext`], while the vCPU thread
//! programs the MSI-X table and reads the ISR through the transport. Everything that decides
//! where an interrupt goes therefore sits behind one mutex, and the [`InterruptSink`] is called
//! with that mutex held so the sink sees INTx level changes and messages in the order the
//! state changed. (The sink must not call back into the transport.)

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

#[cfg(test)]
use super::msix::MsixEntry;
use super::msix::{MsixTable, NO_VECTOR};
use crate::virtio::{InterruptSink, VirtioInterrupt};

/// ISR bit 0: a queue interrupt.
pub(super) const ISR_QUEUE: u8 = 1;
/// ISR bit 1: a configuration change.
pub(super) const ISR_CONFIG: u8 = 2;

/// Everything an interrupt's destination depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IrqState {
    /// The MSI-X table and PBA.
    pub msix: MsixTable,
    /// MSI-X enable (message control bit 15).
    pub msix_enabled: bool,
    /// MSI-X function mask (message control bit 14).
    pub function_masked: bool,
    /// Interrupt disable in the PCI command register.
    pub intx_disabled: bool,
    /// The virtio ISR status.
    pub isr: u8,
    /// What the sink was last told about INTx.
    pub intx_level: bool,
    /// The vector of configuration change interrupts.
    pub config_vector: u16,
    /// The vector of each queue.
    pub queue_vectors: Vec<u16>,
    /// The virtio `config_generation` register.
    pub config_generation: u8,
}

impl IrqState {
    /// The state after power-on: every vector unmapped, nothing pending.
    pub fn new(msix_vectors: u16, num_queues: u16) -> Self {
        IrqState {
            msix: MsixTable::new(msix_vectors),
            msix_enabled: false,
            function_masked: false,
            intx_disabled: false,
            isr: 0,
            intx_level: false,
            config_vector: NO_VECTOR,
            queue_vectors: vec![NO_VECTOR; usize::from(num_queues)],
            config_generation: 0,
        }
    }

    /// A vector register value as it reads back: `vector` if the table has it, else NO_VECTOR.
    fn checked_vector(&self, vector: u16) -> u16 {
        if vector < self.msix.len() {
            vector
        } else {
            NO_VECTOR
        }
    }

    /// The INTx "interrupt status" (PCI status bit 3): the ISR is set and INTx is in use.
    fn intx_status(&self) -> bool {
        !self.msix_enabled && self.isr != 0
    }
}

/// The transport's side of interrupt delivery; implements [`VirtioInterrupt`] for the device.
pub(super) struct Interrupts {
    sink: Arc<dyn InterruptSink>,
    state: Mutex<IrqState>,
}

impl Interrupts {
    /// Interrupts delivered to `sink`, starting from `state`.
    pub fn new(sink: Arc<dyn InterruptSink>, state: IrqState) -> Self {
        Interrupts {
            sink,
            state: Mutex::new(state),
        }
    }

    /// Locks the state. A panic elsewhere while holding the lock leaves the state consistent
    /// (every update is a plain field store), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, IrqState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the whole state (for snapshots).
    pub fn state(&self) -> IrqState {
        self.lock().clone()
    }

    /// Raises or lowers INTx to match the state, telling the sink only about changes.
    fn update_intx(&self, s: &mut IrqState) {
        let level = s.intx_status() && !s.intx_disabled;
        if level != s.intx_level {
            s.intx_level = level;
            self.sink.set_intx(level);
        }
    }

    /// Sends MSI-X `vector`, or marks it pending if it or the function is masked.
    fn send_msix(&self, s: &mut IrqState, vector: u16) {
        let Some(entry) = s.msix.entry(vector) else {
            return; // NO_VECTOR or beyond the table: nothing to send.
        };
        if s.function_masked || entry.masked {
            s.msix.set_pending(vector, true);
        } else {
            self.sink.msi(entry.addr, entry.data);
        }
    }

    /// Delivers the messages of pending vectors that may now be sent.
    fn flush_pending(&self, s: &mut IrqState) {
        if s.msix_enabled && !s.function_masked {
            s.msix
                .take_unmasked_pending(|addr, data| self.sink.msi(addr, data));
        }
    }

    /// Re-asserts INTx after a restore if the restored state says it is asserted (the sink is a
    /// fresh one and knows nothing of the old level).
    pub fn resync_intx(&self) {
        let mut s = self.lock();
        s.intx_level = false;
        self.update_intx(&mut s);
    }

    /// Applies the interrupt-related bits of configuration space: MSI-X enable and function
    /// mask, and the command register's interrupt disable.
    pub fn set_pci_control(&self, msix_enabled: bool, function_masked: bool, intx_disabled: bool) {
        let mut s = self.lock();
        s.msix_enabled = msix_enabled;
        s.function_masked = function_masked;
        s.intx_disabled = intx_disabled;
        self.flush_pending(&mut s);
        self.update_intx(&mut s);
    }

    /// Reads and clears the ISR, lowering INTx.
    pub fn take_isr(&self) -> u8 {
        let mut s = self.lock();
        let isr = s.isr;
        s.isr = 0;
        self.update_intx(&mut s);
        isr
    }

    /// The ISR without clearing it.
    pub fn isr(&self) -> u8 {
        self.lock().isr
    }

    /// PCI status bit 3 (interrupt status).
    pub fn intx_status(&self) -> bool {
        self.lock().intx_status()
    }

    /// The `config_generation` register.
    pub fn config_generation(&self) -> u8 {
        self.lock().config_generation
    }

    /// Notes a change of the device configuration.
    pub fn bump_generation(&self) {
        let mut s = self.lock();
        s.config_generation = s.config_generation.wrapping_add(1);
    }

    /// The `config_msix_vector` register.
    pub fn config_vector(&self) -> u16 {
        self.lock().config_vector
    }

    /// Writes `config_msix_vector`; a vector the table lacks reads back as NO_VECTOR.
    pub fn set_config_vector(&self, vector: u16) {
        let mut s = self.lock();
        s.config_vector = s.checked_vector(vector);
    }

    /// The `queue_msix_vector` of `queue` (NO_VECTOR for a queue that does not exist).
    pub fn queue_vector(&self, queue: u16) -> u16 {
        self.lock()
            .queue_vectors
            .get(usize::from(queue))
            .copied()
            .unwrap_or(NO_VECTOR)
    }

    /// Writes `queue_msix_vector`; a vector the table lacks reads back as NO_VECTOR.
    pub fn set_queue_vector(&self, queue: u16, vector: u16) {
        let mut s = self.lock();
        let v = s.checked_vector(vector);
        if let Some(q) = s.queue_vectors.get_mut(usize::from(queue)) {
            *q = v;
        }
    }

    /// A virtio reset: ISR cleared (INTx lowered), vectors unmapped, nothing pending. The
    /// MSI-X table itself belongs to PCI and survives.
    pub fn reset(&self) {
        let mut s = self.lock();
        s.isr = 0;
        s.config_vector = NO_VECTOR;
        s.queue_vectors.iter_mut().for_each(|v| *v = NO_VECTOR);
        s.msix.clear_pending();
        self.update_intx(&mut s);
    }

    /// Reads the MSI-X table at `offset` within it.
    pub fn read_msix_table(&self, offset: u64, data: &mut [u8]) {
        self.lock().msix.read_table(offset, data);
    }

    /// Writes the MSI-X table at `offset` within it, sending what an unmask released.
    pub fn write_msix_table(&self, offset: u64, data: &[u8]) {
        let mut s = self.lock();
        s.msix.write_table(offset, data);
        self.flush_pending(&mut s);
    }

    /// Reads the PBA at `offset` within it.
    pub fn read_pba(&self, offset: u64, data: &mut [u8]) {
        self.lock().msix.read_pba(offset, data);
    }

    /// The number of MSI-X table entries.
    pub fn msix_len(&self) -> u16 {
        self.lock().msix.len()
    }

    /// MSI-X table entry `vector` (tests).
    #[cfg(test)]
    pub fn msix_entry(&self, vector: u16) -> Option<MsixEntry> {
        self.lock().msix.entry(vector)
    }
}

impl VirtioInterrupt for Interrupts {
    fn signal_queue(&self, queue: u16) {
        let mut s = self.lock();
        if s.msix_enabled {
            let Some(&vector) = s.queue_vectors.get(usize::from(queue)) else {
                return;
            };
            self.send_msix(&mut s, vector);
        } else {
            s.isr |= ISR_QUEUE;
            self.update_intx(&mut s);
        }
    }

    fn signal_config(&self) {
        let mut s = self.lock();
        s.config_generation = s.config_generation.wrapping_add(1);
        // The configuration bit is set whichever way the interrupt goes (virtio 1.x 4.1.4.5).
        s.isr |= ISR_CONFIG;
        if s.msix_enabled {
            let vector = s.config_vector;
            self.send_msix(&mut s, vector);
        } else {
            self.update_intx(&mut s);
        }
    }
}

//! The console as a [`VirtioDevice`]: features, queues, configuration space, activation,
//! reset, notifications, snapshots, and its socket backends for the event loop.

use std::os::fd::RawFd;

use virtio_console_wire::{
    CONTROL_QUEUE_SIZE, CONTROL_RX, CONTROL_TX, ConsoleConfig as ConfigLayout, DEVICE_ID,
    QueueRole, config_offset, queue_role,
};
use zerocopy::IntoBytes;

use super::{Console, F_EMERG_WRITE, F_MULTIPORT, F_SIZE, Interest};
use crate::active::ActiveQueues;
use crate::virtio::{
    ActivateContext, ActivateError, DeviceState, VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC,
    VirtioDevice, read_config_bytes,
};

impl VirtioDevice for Console {
    fn device_type(&self) -> u32 {
        DEVICE_ID
    }

    fn device_features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | F_MULTIPORT | F_EMERG_WRITE | F_SIZE
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        let n = 2 * (self.config.max_nr_ports as usize + 1);
        (0..n)
            .map(|q| {
                if q == CONTROL_RX as usize || q == CONTROL_TX as usize {
                    CONTROL_QUEUE_SIZE
                } else {
                    self.config.queue_size
                }
            })
            .collect()
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let layout = ConfigLayout {
            cols: self.config.cols.into(),
            rows: self.config.rows.into(),
            max_nr_ports: self.config.max_nr_ports.into(),
            emerg_wr: 0.into(),
        };
        let cfg = layout.as_bytes();
        read_config_bytes(cfg, offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        // Only emerg_wr is writable: one character for port 0, sent whatever the connection
        // state, as QEMU does.
        if offset == config_offset::EMERG_WR as u64 && !data.is_empty() {
            if let Some(port) = self.ports.get_mut(&0) {
                let n = port.send(&data[..1]).taken;
                port.stats.to_host += n as u64;
            }
            self.finish();
        }
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        ActiveQueues::check(&ctx)?;
        let multiport = ctx.acked_features & F_MULTIPORT != 0;
        self.active = Some(ActiveQueues::new(ctx, "virtio-console"));
        self.control.driver_ready = false;
        if !multiport {
            // A single-port driver: port 0 is always open on the guest side.
            if let Some(p) = self.ports.get_mut(&0) {
                p.ready = true;
                p.guest_connected = true;
            }
        }
        self.finish();
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
        self.control.driver_ready = false;
        self.control.out.clear();
        for p in self.ports.values_mut() {
            p.ready = false;
            if p.guest_connected {
                p.guest_connected = false;
                p.guest_open_changed();
            }
            if let Some(f) = p.inflight.take() {
                p.stats.dropped_to_host += (f.data.len() - f.offset) as u64;
            }
        }
    }

    fn queue_notify(&mut self, queue: u16) {
        if self.active.is_none() {
            return;
        }
        match queue_role(queue) {
            QueueRole::ControlRx => {}
            QueueRole::ControlTx => self.process_ctrl_tx(),
            QueueRole::Transmit(id) => {
                self.process_tx(id);
            }
            QueueRole::Receive(id) => self.flush_to_guest(id),
        }
        self.finish();
    }

    fn save(&self) -> DeviceState {
        ActiveQueues::save(self.active.as_ref(), self.save_blob())
    }

    fn restore(&mut self, blob: &[u8], ctx: Option<ActivateContext>) -> Result<(), ActivateError> {
        self.restore_blob(blob)
            .map_err(|e| ActivateError::BadState(e.to_string()))?;
        self.active = None;
        if let Some(ctx) = ctx {
            let n = ctx.queues.len();
            if n != self.queue_max_sizes().len() {
                return Err(ActivateError::BadState(format!(
                    "{n} queues saved, the device has {}",
                    self.queue_max_sizes().len()
                )));
            }
            self.active = Some(ActiveQueues::new(ctx, "virtio-console"));
            // Carry on where the source stopped: held data may move now.
            let ids: Vec<u32> = self.ports.keys().copied().collect();
            for id in ids {
                self.flush_to_guest(id);
                self.process_tx(id);
            }
        }
        self.finish();
        Ok(())
    }

    fn has_backends(&self) -> bool {
        true
    }

    fn backend_fds(&self, fds: &mut Vec<(RawFd, Interest)>) {
        self.socket_fds(fds);
    }

    fn poll_backends(&mut self) -> bool {
        Console::poll_backends(self)
    }
}

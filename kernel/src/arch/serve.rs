//! The service loop: drives the console device and the agents, and halts when nothing moves.
//!
//! Everything runs on one CPU with interrupts off; the loop polls the device and the agents
//! until neither makes progress, then `sti; hlt` atomically waits for the next MSI-X message
//! (an interrupt that arrived while polling is pending and wakes the `hlt` at once). An idle
//! guest therefore costs the host nothing.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::virtio::{Console, VECTOR};
use super::{apic, interrupts, serial};
use crate::agents::{self, Supervisor};
use crate::disk::BlockDevice;

static INTERRUPTS: AtomicU64 = AtomicU64::new(0);

/// Device interrupts taken since boot.
pub fn interrupts() -> u64 {
    INTERRUPTS.load(Ordering::Relaxed)
}

fn on_interrupt(_vector: u8) {
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    apic::eoi();
}

/// Serves the console's ports forever, the appliance answering about `disks`. With `poll_when_idle` (`idle=poll`, as in Linux) the
/// CPU spins instead of halting: lower latency, one host core burned.
pub fn run(mut console: Console, disks: Vec<Rc<dyn BlockDevice>>, poll_when_idle: bool) -> ! {
    interrupts::set_handler(VECTOR, on_interrupt);
    serial::start_mirror();
    let mut supervisor = Supervisor::new(agents::builtin(disks));
    let mut log: Vec<u8> = Vec::new();
    loop {
        x86_64::instructions::interrupts::disable();
        loop {
            let mut progress = console.poll();
            progress |= supervisor.poll(console.ports());
            log.clear();
            log.extend(serial::take_mirror());
            if !log.is_empty() {
                console.ports().console_write(&log);
                progress = true;
            }
            if !progress {
                break;
            }
        }
        if poll_when_idle {
            x86_64::instructions::interrupts::enable();
            core::hint::spin_loop();
        } else {
            x86_64::instructions::interrupts::enable_and_hlt();
        }
    }
}

//! The service loop: drives the console device and the agents, and halts when nothing moves.
//!
//! Everything runs on one CPU with interrupts masked (in ring 3, the software mask of
//! `ring3`); the loop polls the device and the agents until neither makes progress, then
//! unmasks and waits for the next MSI-X message in one step (`sti; hlt`, through the core in
//! ring 3): an interrupt that arrived while polling is pending and ends the wait at once. An
//! idle guest therefore costs the host nothing.
//!
//! Power actions the agents request (the guest agent's `guest-shutdown`) are taken from the
//! shared [`PowerRequests`] cell once a round of polling is over. The loop then keeps the
//! device moving until every port's output has reached the host (bounded by [`DRAIN_NS`]),
//! and powers off, halts or resets.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::virtio::{Console, VECTOR};
use super::{apic, boot, clock, interrupts, power, ring3, rtc, serial};
use crate::agents::{self, Supervisor, guest_agent};
use crate::cmdline::Cmdline;
use crate::power::{PowerAction, PowerRequests};
use vmchannel_inspect::disk::BlockDevice;

static INTERRUPTS: AtomicU64 = AtomicU64::new(0);

/// Longest wait for queued output to reach the host before a power action.
pub const DRAIN_NS: u64 = 500_000_000;
/// Polls while draining, in case the clock is not running.
const DRAIN_POLLS: u32 = 5_000_000;

/// Device interrupts taken since boot.
pub fn interrupts() -> u64 {
    INTERRUPTS.load(Ordering::Relaxed)
}

fn on_interrupt(_vector: u8) {
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    apic::eoi();
}

/// One round: the device, the agents and the log mirror, until nothing moves. True when
/// anything moved.
fn poll_all(console: &mut Console, supervisor: &mut Supervisor, log: &mut Vec<u8>) -> bool {
    let mut any = false;
    loop {
        let mut progress = console.poll();
        progress |= supervisor.poll(console.ports());
        log.clear();
        log.extend(serial::take_mirror());
        if !log.is_empty() {
            console.ports().console_write(log);
            progress = true;
        }
        if !progress {
            return any;
        }
        any = true;
    }
}

/// How long the loop keeps polling before it halts, by default: under KVM, waking a halted
/// vCPU with an interrupt takes milliseconds on a nested host (3.5 ms measured on kvm-pvm,
/// docs/BENCHMARKS.md), far more than the host takes to send the next request, and polling
/// in ring 3 runs natively; under TCG a halt is cheap and polling costs emulated cycles.
const HALT_POLL_KVM_US: u64 = 2000;

/// The halt-polling window: `haltpoll=US` on the command line, else the default above.
fn halt_poll_ns() -> u64 {
    let cmdline = Cmdline::new(&boot::facts().cmdline);
    let us = match cmdline.get("haltpoll").and_then(|v| v.parse::<u64>().ok()) {
        Some(us) => us,
        None if crate::arch::under_kvm() => HALT_POLL_KVM_US,
        None => 0,
    };
    us.saturating_mul(1000)
}

/// Lets queued output drain (bounded), then performs `action`.
fn perform(
    action: PowerAction,
    console: &mut Console,
    supervisor: &mut Supervisor,
    log: &mut Vec<u8>,
) -> ! {
    match action {
        PowerAction::PowerOff => log::info!("powering off (guest agent request)"),
        PowerAction::Halt => {
            log::info!("halting (guest agent request): the machine stops, powering off")
        }
        PowerAction::Reboot => log::info!("rebooting (guest agent request)"),
    }
    let deadline = clock::now_ns().saturating_add(DRAIN_NS);
    for _ in 0..DRAIN_POLLS {
        poll_all(console, supervisor, log);
        if console.tx_idle() || clock::now_ns() > deadline {
            break;
        }
        core::hint::spin_loop();
    }
    if !console.tx_idle() {
        log::warn!("output still queued after the drain wait; going ahead");
    }
    match action {
        PowerAction::PowerOff | PowerAction::Halt => power::power_off(),
        PowerAction::Reboot => power::reboot(),
    }
}

/// The start-up milestones the service loop sees: the first control message from the host,
/// the first data in and out; printed (debug level) when the loop first goes idle after data
/// went out.
#[derive(Default)]
struct StartUp {
    control: bool,
    rx: bool,
    tx: bool,
    logged: bool,
}

impl StartUp {
    fn note(&mut self, console: &Console) {
        if self.logged {
            return;
        }
        let stats = console.stats();
        for (seen, now, name) in [
            (
                &mut self.control,
                stats.control_in > 0,
                "first control message",
            ),
            (&mut self.rx, stats.rx_bytes > 0, "first data in"),
            (&mut self.tx, stats.tx_bytes > 0, "first data out"),
        ] {
            if now && !*seen {
                *seen = true;
                boot::milestone(name);
            }
        }
    }

    fn idle(&mut self) {
        if self.tx && !self.logged {
            self.logged = true;
            boot::log_milestones();
        }
    }
}

/// Serves the console's ports until an agent asks for a power action, the appliance
/// answering about `disks`. With `poll_when_idle` (`idle=poll`, as in Linux) the CPU spins
/// instead of halting: lower latency, one host core burned. Otherwise it polls for the
/// halt-polling window (`haltpoll=US`) before each halt.
pub fn run(mut console: Console, disks: Vec<Rc<dyn BlockDevice>>, poll_when_idle: bool) -> ! {
    interrupts::set_handler(VECTOR, on_interrupt);
    serial::start_mirror();
    let power_requests = PowerRequests::new();
    let guest_agent = guest_agent::Config {
        host_name: guest_agent::host_name(&Cmdline::new(&boot::facts().cmdline)),
        clock: Rc::new(rtc::wall_clock()),
        power: power_requests.clone(),
    };
    let mut supervisor = Supervisor::new(agents::builtin(disks, guest_agent));
    let mut log: Vec<u8> = Vec::new();
    let halt_poll_ns = halt_poll_ns();
    let mut start_up = StartUp::default();
    loop {
        ring3::mask();
        poll_all(&mut console, &mut supervisor, &mut log);
        start_up.note(&console);
        if let Some(action) = power_requests.take() {
            perform(action, &mut console, &mut supervisor, &mut log);
        }
        if poll_when_idle {
            ring3::unmask();
            core::hint::spin_loop();
            continue;
        }
        // Halt polling (as Linux's haltpoll): keep polling for a while before halting,
        // since the next request usually comes sooner than a halted vCPU wakes.
        let deadline = clock::now_ns().saturating_add(halt_poll_ns);
        let mut woke = false;
        while halt_poll_ns > 0 && clock::now_ns() < deadline {
            if poll_all(&mut console, &mut supervisor, &mut log)
                || power_requests.pending().is_some()
            {
                woke = true;
                break;
            }
            core::hint::spin_loop();
        }
        if !woke {
            start_up.idle();
            ring3::unmask_and_wait();
        }
    }
}

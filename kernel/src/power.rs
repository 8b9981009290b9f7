//! Power actions an agent asks for (the guest agent's `guest-shutdown`), performed later by
//! whoever runs the agents.
//!
//! An agent must not power the machine off from inside its `poll`: replies it queued, other
//! ports' output and the log would be lost. It records the action in a [`PowerRequests`]
//! cell instead; the serve loop (`arch::serve` in the kernel, the in-process harness in the
//! tests) takes it once its poll returns, lets the queued output drain, and acts on it. Host
//! tests observe the request without anything being powered off.

use alloc::rc::Rc;
use core::cell::Cell;

/// What to do with the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Power off (ACPI S5): the VM ends.
    PowerOff,
    /// Stop the machine. Under QEMU and the bundled VMM that means the VM ends, as for a
    /// power-off.
    Halt,
    /// Reset the machine (the FADT's reset register, else port 0xCF9, else the keyboard
    /// controller).
    Reboot,
}

impl PowerAction {
    /// The action's name in the guest agent protocol (`powerdown`, `halt`, `reboot`).
    pub fn mode(self) -> &'static str {
        match self {
            PowerAction::PowerOff => "powerdown",
            PowerAction::Halt => "halt",
            PowerAction::Reboot => "reboot",
        }
    }
}

/// A shared cell holding the power action requested, if any. Clones share the cell.
#[derive(Debug, Clone, Default)]
pub struct PowerRequests(Rc<Cell<Option<PowerAction>>>);

impl PowerRequests {
    /// An empty cell.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for `action`. The first request stands: a machine already going down is not
    /// sent another way.
    pub fn request(&self, action: PowerAction) {
        if self.0.get().is_none() {
            self.0.set(Some(action));
        }
    }

    /// The action requested, left in place.
    pub fn pending(&self) -> Option<PowerAction> {
        self.0.get()
    }

    /// Takes the action requested, leaving the cell empty.
    pub fn take(&self) -> Option<PowerAction> {
        self.0.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_stands_and_clones_share_the_cell() {
        let a = PowerRequests::new();
        let b = a.clone();
        assert_eq!(a.pending(), None);
        b.request(PowerAction::Reboot);
        b.request(PowerAction::PowerOff);
        assert_eq!(a.pending(), Some(PowerAction::Reboot));
        assert_eq!(a.take(), Some(PowerAction::Reboot));
        assert_eq!(b.pending(), None);
        b.request(PowerAction::Halt);
        assert_eq!(a.take(), Some(PowerAction::Halt));
        assert_eq!(PowerAction::PowerOff.mode(), "powerdown");
    }
}

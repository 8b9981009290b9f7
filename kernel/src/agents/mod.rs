//! Agents: the services that answer on named ports.
//!
//! The [`Supervisor`] watches port events. When a port gets a name that an agent serves, it
//! opens the port and starts that agent on it; when the port is unplugged the agent goes.
//! Ports nobody serves are logged once and left closed. Agents are cooperative: each `poll`
//! does what it can without waiting and says whether it did anything, so one busy or stalled
//! port never holds up the others.

pub mod appliance;
pub mod bulk;
pub mod echo;
pub mod guest_agent;
pub mod guestfsd;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::virtio_console::ports::{Multiport, PortError, PortEvent, PortHandle};

/// An agent serving one open port.
pub trait PortAgent {
    /// Called for each event on the agent's port (connect, disconnect, readable ...).
    fn event(&mut self, _event: &PortEvent) {}
    /// Moves what can move without waiting. Returns true if anything happened.
    fn poll(&mut self, ports: &mut Multiport, port: PortHandle) -> bool;
}

/// Whether the host side of a session agent's port is connected, as the agent last saw it.
/// A session begins when it becomes connected and ends on a disconnect event or when the
/// port is seen disconnected, whichever comes first.
#[derive(Debug, Default)]
pub struct HostLink {
    connected: bool,
}

impl HostLink {
    /// Takes note of `event`: true when it ended the session (the agent resets).
    pub fn on_event(&mut self, event: &PortEvent) -> bool {
        let ended = matches!(event, PortEvent::HostDisconnected(_));
        if ended {
            self.connected = false;
        }
        ended
    }

    /// Compares with the port's state: `Some(connected)` when it changed since last time
    /// (the agent resets, and greets the host when it is now connected).
    pub fn sync(&mut self, ports: &Multiport, port: PortHandle) -> Option<bool> {
        let now = ports.host_connected(port.id);
        (now != self.connected).then(|| {
            self.connected = now;
            now
        })
    }

    /// Whether a session is open.
    pub fn connected(&self) -> bool {
        self.connected
    }
}

/// Starts an agent for a port, given the port's name.
pub type Starter = Box<dyn Fn(&str) -> Box<dyn PortAgent>>;

/// Which ports an agent serves, and how to start it.
pub struct AgentKind {
    /// Short name for logs.
    pub name: &'static str,
    /// Serves ports whose name is exactly this, or starts with it when it ends in '.'.
    pub pattern: &'static str,
    /// Starts the agent for a newly opened port (given the port's name).
    pub start: Starter,
}

impl AgentKind {
    /// True if this agent serves `port_name`.
    pub fn serves(&self, port_name: &str) -> bool {
        if self.pattern.ends_with('.') {
            port_name.starts_with(self.pattern) && port_name.len() > self.pattern.len()
        } else {
            port_name == self.pattern
        }
    }
}

struct Running {
    kind: &'static str,
    name: String,
    handle: PortHandle,
    agent: Box<dyn PortAgent>,
}

/// Starts and stops agents as ports come and go.
pub struct Supervisor {
    kinds: Vec<AgentKind>,
    running: BTreeMap<u32, Running>,
}

impl Supervisor {
    /// A supervisor that starts these kinds of agents.
    pub fn new(kinds: Vec<AgentKind>) -> Self {
        Self {
            kinds,
            running: BTreeMap::new(),
        }
    }

    /// Ports with a running agent: (port id, agent kind, port name).
    pub fn running(&self) -> impl Iterator<Item = (u32, &'static str, &str)> {
        self.running
            .iter()
            .map(|(id, r)| (*id, r.kind, r.name.as_str()))
    }

    /// Handles pending port events, then polls every agent once. Returns true if anything
    /// happened.
    pub fn poll(&mut self, ports: &mut Multiport) -> bool {
        let mut progress = false;
        while let Some(event) = ports.next_event() {
            progress = true;
            self.handle(ports, event);
        }
        let mut gone = Vec::new();
        for (id, r) in self.running.iter_mut() {
            progress |= r.agent.poll(ports, r.handle);
            if ports.readiness(r.handle) == Err(PortError::NoDevice) {
                gone.push(*id);
            }
        }
        for id in gone {
            if let Some(r) = self.running.remove(&id) {
                log::info!(
                    "agent {} on port {id} ({}) stopped: port gone",
                    r.kind,
                    r.name
                );
            }
        }
        progress
    }

    fn handle(&mut self, ports: &mut Multiport, event: PortEvent) {
        match &event {
            PortEvent::Named(id, name) => {
                let Some(kind) = self.kinds.iter().find(|k| k.serves(name)) else {
                    log::info!("port {id} \"{name}\": no agent serves it; left closed");
                    return;
                };
                match ports.open(*id) {
                    Ok(handle) => {
                        log::info!("port {id} \"{name}\": {} agent started", kind.name);
                        let agent = (kind.start)(name);
                        self.running.insert(
                            *id,
                            Running {
                                kind: kind.name,
                                name: name.clone(),
                                handle,
                                agent,
                            },
                        );
                    }
                    Err(e) => log::warn!("port {id} \"{name}\": cannot open: {e}"),
                }
            }
            PortEvent::Removed(id) => {
                if let Some(r) = self.running.remove(id) {
                    log::info!(
                        "agent {} on port {id} ({}) stopped: unplugged",
                        r.kind,
                        r.name
                    );
                }
            }
            PortEvent::HostConnected(id) | PortEvent::HostDisconnected(id) => {
                log::debug!("port {id}: {event:?}");
                if let Some(r) = self.running.get_mut(id) {
                    r.agent.event(&event);
                }
            }
            PortEvent::Readable(id) | PortEvent::Resized(id, ..) => {
                if let Some(r) = self.running.get_mut(id) {
                    r.agent.event(&event);
                }
            }
            PortEvent::Added(_) => {}
        }
    }
}

/// The agents this kernel brings; the appliance serves `disks` (`/dev/sda` ... in order),
/// the guest agent answers with `guest_agent`'s host name and clock and records power
/// actions in its cell.
pub fn builtin(
    disks: Vec<alloc::rc::Rc<dyn vmchannel_inspect::disk::BlockDevice>>,
    guest_agent: guest_agent::Config,
) -> Vec<AgentKind> {
    let guestfsd = alloc::rc::Rc::new(core::cell::RefCell::new(
        vmchannel_inspect::guestfs::Daemon::new(disks.clone()),
    ));
    let appliance = alloc::rc::Rc::new(core::cell::RefCell::new(
        vmchannel_inspect::appliance::Appliance::new(disks),
    ));
    alloc::vec![
        echo::kind(),
        bulk::sink(),
        bulk::source(),
        appliance::kind(appliance),
        guestfsd::kind(guestfsd, guest_agent.clock.clone()),
        guest_agent::kind(alloc::rc::Rc::new(guest_agent)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio_console::control::{HostMessage, encode_host};

    fn host(mp: &mut Multiport, msg: HostMessage) {
        mp.handle_control(&encode_host(&msg)).unwrap();
    }

    fn plug(mp: &mut Multiport, id: u32, name: &str) {
        host(mp, HostMessage::PortAdd(id));
        mp.port_set_up(id, true);
        host(mp, HostMessage::PortName(id, name.into()));
    }

    struct NoClock;

    impl crate::rtc::WallTime for NoClock {
        fn unix_ns(&self) -> Result<i64, crate::rtc::RtcError> {
            Err(crate::rtc::RtcError::Absent)
        }
    }

    fn test_guest_agent() -> guest_agent::Config {
        guest_agent::Config {
            host_name: "test".into(),
            clock: alloc::rc::Rc::new(NoClock),
            power: crate::power::PowerRequests::new(),
        }
    }

    #[test]
    fn patterns() {
        let k = echo::kind();
        assert!(k.serves("org.vmchannel.echo.0"));
        assert!(!k.serves("org.vmchannel.echo."));
        assert!(!k.serves("org.vmchannel.echoes"));
        let exact = AgentKind {
            name: "x",
            pattern: "org.qemu.guest_agent.0",
            start: Box::new(echo::start),
        };
        assert!(exact.serves("org.qemu.guest_agent.0"));
        assert!(!exact.serves("org.qemu.guest_agent.01"));
    }

    #[test]
    fn starts_by_name_leaves_others_closed_and_stops_on_unplug() {
        let mut mp = Multiport::new(4);
        mp.device_ready(true);
        let mut sup = Supervisor::new(builtin(Vec::new(), test_guest_agent()));
        plug(&mut mp, 1, "org.vmchannel.echo.a");
        plug(&mut mp, 2, "com.example.unserved");
        plug(&mut mp, 3, guest_agent::PORT_NAME);
        sup.poll(&mut mp);
        assert_eq!(
            sup.running().collect::<Vec<_>>(),
            vec![
                (1, "echo", "org.vmchannel.echo.a"),
                (3, "guest-agent", guest_agent::PORT_NAME)
            ]
        );
        // The served ports were opened (PORT_OPEN 1 sent), the other not.
        let opens: Vec<_> = core::iter::from_fn(|| mp.next_control())
            .filter(|m| m.event == crate::virtio_console::control::event::PORT_OPEN)
            .map(|m| (m.id, m.value))
            .collect();
        assert_eq!(opens, vec![(1, 1), (3, 1)]);
        assert_eq!(mp.open(2).map(|_| ()), Ok(()));
        host(&mut mp, HostMessage::PortRemove(1));
        host(&mut mp, HostMessage::PortRemove(3));
        sup.poll(&mut mp);
        assert_eq!(sup.running().count(), 0);
    }
}

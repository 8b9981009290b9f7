//! Interrupt delivery: MSI-X messages from the virtio transports become KVM irqfds.
//!
//! Each distinct MSI message (address, data) the guest programs gets a GSI with an MSI route
//! and an eventfd registered as its irqfd, so raising it is one `write(2)`. KVM's routing
//! table replaces the default one when set, so it is always rebuilt with the IOAPIC's 24 pins
//! first. A guest that keeps reprogramming its table cannot grow the routes without bound:
//! past [`MAX_MSI_ROUTES`], messages go through `KVM_SIGNAL_MSI` instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use host_device::virtio::InterruptSink;
use kvm_bindings::{
    KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI, KVM_IRQCHIP_IOAPIC, KvmIrqRouting,
    kvm_irq_routing_entry, kvm_irq_routing_entry__bindgen_ty_1, kvm_irq_routing_irqchip,
    kvm_irq_routing_msi, kvm_msi,
};
use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

/// IOAPIC pins, routed to themselves.
const IOAPIC_PINS: u32 = 24;
/// MSI routes kept before falling back to `KVM_SIGNAL_MSI`.
pub const MAX_MSI_ROUTES: usize = 256;

struct Routes {
    /// (address, data) → (gsi, irqfd).
    msi: HashMap<(u64, u32), (u32, EventFd)>,
    order: Vec<(u64, u32)>,
}

/// The VMM's [`InterruptSink`]: MSI through irqfds, INTx ignored (the devices have MSI-X and the
/// guest uses it; a guest without MSI-X gets no interrupts and must poll).
pub struct MsiRouter {
    vm: Arc<VmFd>,
    routes: Mutex<Routes>,
}

fn irqchip_entry(pin: u32) -> kvm_irq_routing_entry {
    kvm_irq_routing_entry {
        gsi: pin,
        type_: KVM_IRQ_ROUTING_IRQCHIP,
        flags: 0,
        pad: 0,
        u: kvm_irq_routing_entry__bindgen_ty_1 {
            irqchip: kvm_irq_routing_irqchip {
                irqchip: KVM_IRQCHIP_IOAPIC,
                pin,
            },
        },
    }
}

fn msi_entry(gsi: u32, address: u64, data: u32) -> kvm_irq_routing_entry {
    let mut u = kvm_irq_routing_entry__bindgen_ty_1 { pad: [0; 8] };
    u.msi = kvm_irq_routing_msi {
        address_lo: address as u32,
        address_hi: (address >> 32) as u32,
        data,
        ..Default::default()
    };
    kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_MSI,
        flags: 0,
        pad: 0,
        u,
    }
}

impl MsiRouter {
    /// A router for `vm` with only the IOAPIC routes.
    pub fn new(vm: Arc<VmFd>) -> Self {
        MsiRouter {
            vm,
            routes: Mutex::new(Routes {
                msi: HashMap::new(),
                order: Vec::new(),
            }),
        }
    }

    fn set_routing(&self, routes: &Routes) -> Result<(), String> {
        let mut entries: Vec<_> = (0..IOAPIC_PINS).map(irqchip_entry).collect();
        for key in &routes.order {
            if let Some((gsi, _)) = routes.msi.get(key) {
                entries.push(msi_entry(*gsi, key.0, key.1));
            }
        }
        let table = KvmIrqRouting::from_entries(&entries).map_err(|e| format!("{e:?}"))?;
        self.vm.set_gsi_routing(&table).map_err(|e| e.to_string())
    }

    /// Creates the route and irqfd for a new message; `None` when over the cap or on failure.
    fn add_route(&self, routes: &mut Routes, address: u64, data: u32) -> Option<()> {
        if routes.order.len() >= MAX_MSI_ROUTES {
            return None;
        }
        let gsi = IOAPIC_PINS + routes.order.len() as u32;
        let fd = EventFd::new(EFD_NONBLOCK).ok()?;
        routes.msi.insert((address, data), (gsi, fd));
        routes.order.push((address, data));
        let registered = self.set_routing(routes).and_then(|()| {
            let (_, fd) = &routes.msi[&(address, data)];
            self.vm.register_irqfd(fd, gsi).map_err(|e| e.to_string())
        });
        if let Err(e) = registered {
            log::warn!("MSI route {address:#x}/{data:#x}: {e}; using KVM_SIGNAL_MSI");
            routes.msi.remove(&(address, data));
            routes.order.pop();
            return None;
        }
        Some(())
    }

    fn signal_msi(&self, address: u64, data: u32) {
        let msi = kvm_msi {
            address_lo: address as u32,
            address_hi: (address >> 32) as u32,
            data,
            ..Default::default()
        };
        if let Err(e) = self.vm.signal_msi(msi) {
            log::warn!("KVM_SIGNAL_MSI {address:#x}/{data:#x}: {e}");
        }
    }
}

impl InterruptSink for MsiRouter {
    fn msi(&self, address: u64, data: u32) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if !routes.msi.contains_key(&(address, data))
            && self.add_route(&mut routes, address, data).is_none()
        {
            drop(routes);
            return self.signal_msi(address, data);
        }
        if let Some((_, fd)) = routes.msi.get(&(address, data))
            && let Err(e) = fd.write(1)
        {
            log::warn!("irqfd write: {e}");
        }
    }

    fn set_intx(&self, _level: bool) {}
}

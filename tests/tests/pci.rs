//! The kernel's PCI enumeration against QEMU's real devices (`lspci` on the command line).

use vmchannel_tests::hosts::require_qemu;
use vmchannel_tests::kernel_image;
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};

fn lspci(machine: Machine, device: &str) -> String {
    let o = QemuBoot::new(kernel_image(), machine, Accel::Tcg, "lspci")
        .with_args(["-device", device])
        .run()
        .expect("QEMU runs");
    if let Err(f) = o.expect_powered_off() {
        panic!("{f}");
    }
    o.serial
}

#[test]
fn finds_virtio_serial_and_its_capabilities_on_pc_and_q35() {
    if !require_qemu("finds_virtio_serial_and_its_capabilities_on_pc_and_q35") {
        return;
    }
    for machine in [Machine::Pc, Machine::Q35] {
        for (device, id) in [
            ("virtio-serial-pci", "1af4:1003"),
            ("virtio-serial-pci,disable-legacy=on", "1af4:1043"),
        ] {
            let log = lspci(machine, device);
            let line = log
                .lines()
                .find(|l| l.contains(id))
                .unwrap_or_else(|| panic!("{machine:?} {device}: no {id} in\n{log}"));
            assert!(line.ends_with("class 07.80.00 virtio-console"), "{line}");
            for kind in ["common", "notify", "isr", "device"] {
                assert!(
                    log.contains(&format!("lspci:   virtio {kind} in BAR")),
                    "{machine:?} {device}: no virtio {kind} capability in\n{log}"
                );
            }
        }
    }
}

#[test]
fn machine_without_pci_lists_nothing() {
    if require_qemu("machine_without_pci_lists_nothing") {
        let o = QemuBoot::new(kernel_image(), Machine::Microvm, Accel::Tcg, "lspci")
            .run()
            .expect("QEMU runs");
        assert!(
            o.serial.contains("lspci: 0 functions"),
            "{}",
            o.failure("microvm has no PCI bus")
        );
        if let Err(f) = o.expect_powered_off() {
            panic!("{f}");
        }
    }
}

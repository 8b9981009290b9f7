//! The appliance booted under QEMU (TCG): the test disks attached as read-only
//! `virtio-blk-pci` drives (and as `scsi-hd` on `virtio-scsi-pci`, as libguestfs attaches
//! them), queried over `org.vmchannel.appliance.0` on a unix socket.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use vmchannel_proto::client::Client;
use vmchannel_tests::appliance::{self, PORT, TIMEOUT};
use vmchannel_tests::hosts::require_qemu;
use vmchannel_tests::images::DiskSet;
use vmchannel_tests::kernel_image;
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};
use vmchannel_tests::vm::SerialVm;

fn disks() -> &'static DiskSet {
    vmchannel_tests::images::shared()
}

/// QEMU arguments attaching `images` read-only as modern virtio-blk devices, in order.
fn drives(images: &[PathBuf]) -> Vec<String> {
    let mut args = Vec::new();
    for (i, p) in images.iter().enumerate() {
        args.push("-drive".into());
        args.push(format!(
            "file={},if=none,id=d{i},format=raw,readonly=on",
            p.display()
        ));
        args.push("-device".into());
        args.push(format!("virtio-blk-pci,drive=d{i},disable-legacy=on"));
    }
    args
}

/// QEMU arguments attaching `images` read-only as `scsi-hd` disks on one virtio-scsi adapter,
/// as libguestfs attaches them (targets 0, 1, ... in order).
fn scsi_drives(images: &[PathBuf]) -> Vec<String> {
    let mut args = vec!["-device".into(), "virtio-scsi-pci,id=scsi0".into()];
    for (i, p) in images.iter().enumerate() {
        args.push("-drive".into());
        args.push(format!(
            "file={},if=none,id=s{i},format=raw,readonly=on",
            p.display()
        ));
        args.push("-device".into());
        args.push(format!("scsi-hd,drive=s{i},bus=scsi0.0"));
    }
    args
}

fn boot(images: &[PathBuf]) -> (SerialVm, Client<UnixStream>) {
    boot_with(drives(images))
}

fn boot_with(drive_args: Vec<String>) -> (SerialVm, Client<UnixStream>) {
    let mut boot = QemuBoot::new(kernel_image(), Machine::Q35, Accel::Tcg, "loglevel=info");
    boot.extra_args = drive_args;
    boot.memory_mib = 128;
    let vm = SerialVm::start(&boot, "disable-legacy=on", &[PORT], false).expect("QEMU starts");
    vm.wait_for_log("appliance agent started", 1, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", vm.serial_log()));
    let stream = vm.connect(PORT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let client =
        Client::connect(stream).unwrap_or_else(|e| panic!("handshake: {e}\n{}", vm.serial_log()));
    (vm, client)
}

#[test]
fn qemu_inspects_and_reads_a_debian_disk() {
    if !require_qemu("qemu_inspects_and_reads_a_debian_disk") {
        return;
    }
    let (vm, mut c) = boot(std::slice::from_ref(&disks().debian));
    appliance::inspect_debian(&mut c);
    appliance::files_debian(&mut c);
    appliance::protocol_recovery(&mut c);
    assert!(!vm.serial_log().contains("PANIC"));
}

#[test]
fn qemu_reads_disks_behind_virtio_scsi() {
    if !require_qemu("qemu_reads_disks_behind_virtio_scsi") {
        return;
    }
    let d = disks();
    let (vm, mut c) = boot_with(scsi_drives(std::slice::from_ref(&d.debian)));
    appliance::inspect_debian(&mut c);
    appliance::files_debian(&mut c);
    drop(c);
    assert!(
        vm.serial_log().contains("virtio-scsi at ") && vm.serial_log().contains(" target 0: "),
        "{}",
        vm.serial_log()
    );
    // Several disks: /dev/sda, sdb, sdc in target order.
    let (vm, mut c) = boot_with(scsi_drives(&[
        d.multi.clone(),
        d.xfs.clone(),
        d.btrfs.clone(),
    ]));
    appliance::multi_disk(&mut c);
    assert!(!vm.serial_log().contains("PANIC"), "{}", vm.serial_log());
}

#[test]
fn qemu_multi_disk_and_three_systems() {
    if !require_qemu("qemu_multi_disk_and_three_systems") {
        return;
    }
    let d = disks();
    let (_vm, mut c) = boot(&[d.multi.clone(), d.xfs.clone(), d.btrfs.clone()]);
    appliance::multi_disk(&mut c);
    let (_vm, mut c) = boot(&[d.ubuntu.clone(), d.alpine.clone(), d.usr_split.clone()]);
    appliance::three_systems(&mut c);
}

#[test]
fn qemu_hostile_disks_and_odd_files() {
    if !require_qemu("qemu_hostile_disks_and_odd_files") {
        return;
    }
    let d = disks();
    let (vm, mut c) = boot(&d.hostile);
    appliance::hostile(&mut c);
    drop(c);
    assert!(!vm.serial_log().contains("PANIC"), "{}", vm.serial_log());
    let (vm, mut c) = boot(std::slice::from_ref(&d.odd));
    appliance::odd_files(&mut c);
    assert!(!vm.serial_log().contains("PANIC"));
}

#[test]
fn qemu_cut_sessions_leave_the_next_one_clean() {
    if !require_qemu("qemu_cut_sessions_leave_the_next_one_clean") {
        return;
    }
    let (vm, c) = boot(std::slice::from_ref(&disks().debian));
    drop(c);
    appliance::cut_sessions(
        || vm.connect(PORT).expect("connect"),
        // Every other hang-up, give QEMU and the guest time to see it before reconnecting.
        |round| {
            if round % 2 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        },
        false,
    );
    assert!(!vm.serial_log().contains("PANIC"), "{}", vm.serial_log());
}

//! The appliance booted under the bundled VMM (`vmch run --disk`): the test disks attached
//! read-only, queried over `org.vmchannel.appliance.0` on a unix socket.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use vmchannel_proto::Target;
use vmchannel_proto::client::Client;
use vmchannel_tests::appliance::{self, PORT, TIMEOUT};
use vmchannel_tests::hosts::require_kvm;
use vmchannel_tests::images::DiskSet;
use vmchannel_tests::vmch::{VmchOptions, VmchVm};

fn vmch() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vmch"))
}

fn disks() -> &'static DiskSet {
    vmchannel_tests::images::shared()
}

fn boot(images: &[PathBuf]) -> (VmchVm, Client<UnixStream>) {
    let options = VmchOptions {
        cmdline: "loglevel=info".into(),
        disks: images.to_vec(),
        ..VmchOptions::default()
    };
    let vm = VmchVm::start(vmch(), &[PORT], &options).expect("vmch run starts");
    vm.wait_for_log("appliance agent started", 1, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let stream = vm.connect(PORT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let client =
        Client::connect(stream).unwrap_or_else(|e| panic!("handshake: {e}\n{}", vm.serial_log()));
    (vm, client)
}

#[test]
fn vmm_inspects_and_reads_a_debian_disk() {
    if !require_kvm("vmm_inspects_and_reads_a_debian_disk") {
        return;
    }
    let (vm, mut c) = boot(std::slice::from_ref(&disks().debian));
    appliance::inspect_debian(&mut c);
    let os = Target::Os("/dev/sda2".into());
    assert_eq!(c.read_file(&os, "/etc/hostname").unwrap(), b"debhost\n");
    let boot = c.read_dir(&os, "/boot").unwrap();
    assert!(boot.iter().any(|e| e.name == "vmlinuz-6.1.0-18-amd64"));
    let mut got = Vec::new();
    let (size, _) = c
        .download(
            &os,
            "/boot/vmlinuz-6.1.0-18-amd64",
            &mut got,
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(size, 100_000);
    assert!(got.iter().all(|&b| b == 0x4d));
    assert!(!vm.serial_log().contains("PANIC"));
}

#[test]
fn vmm_multi_disk_and_three_systems() {
    if !require_kvm("vmm_multi_disk_and_three_systems") {
        return;
    }
    let d = disks();
    let (_vm, mut c) = boot(&[d.multi.clone(), d.xfs.clone(), d.btrfs.clone()]);
    appliance::multi_disk(&mut c);
    let (_vm, mut c) = boot(&[d.ubuntu.clone(), d.alpine.clone(), d.usr_split.clone()]);
    appliance::three_systems(&mut c);
}

#[test]
fn vmm_hostile_disks() {
    if !require_kvm("vmm_hostile_disks") {
        return;
    }
    let (vm, mut c) = boot(&disks().hostile);
    appliance::hostile(&mut c);
    assert!(!vm.serial_log().contains("PANIC"));
}

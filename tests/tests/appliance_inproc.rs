//! Kernel-less appliance tests: the kernel's appliance agent, partition and filesystem code
//! and inspection run on the host against disk images the tests build (`images::DiskSet`),
//! spoken to through the real virtio-console device model and a unix socket, exactly as a
//! host client speaks to a booted appliance.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use host_device::console::{Backend, ConsoleConfig, PortConfig, SocketBackend};
use vmchannel_proto::client::Client;
use vmchannel_tests::appliance::{self, PORT, TIMEOUT};
use vmchannel_tests::images::DiskSet;
use vmchannel_tests::inproc::InProcVm;

fn disks() -> &'static DiskSet {
    vmchannel_tests::images::shared()
}

/// Boots the in-process appliance over `images` and connects a client.
fn appliance(images: Vec<PathBuf>) -> (InProcVm, Client<UnixStream>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("appliance.sock");
    let ports = vec![(
        PortConfig::new(PORT),
        Backend::Socket(SocketBackend::server(&sock).unwrap()),
    )];
    let vm = InProcVm::start_with_disks(ConsoleConfig::default(), ports, images).unwrap();
    let stream = UnixStream::connect(&sock).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let client = Client::connect(stream).expect("handshake");
    (vm, client, dir)
}

#[test]
fn inspects_a_debian_disk() {
    let (_vm, mut c, _d) = appliance(vec![disks().debian.clone()]);
    appliance::inspect_debian(&mut c);
}

#[test]
fn file_queries_on_a_debian_disk() {
    let (_vm, mut c, _d) = appliance(vec![disks().debian.clone()]);
    appliance::files_debian(&mut c);
}

#[test]
fn protocol_recovers_from_garbage_cancel_and_oversize() {
    let (_vm, mut c, _d) = appliance(vec![disks().debian.clone()]);
    appliance::protocol_recovery(&mut c);
}

#[test]
fn every_volume_type_and_two_systems_on_one_disk() {
    let d = disks();
    let (_vm, mut c, _d) = appliance(vec![d.multi.clone(), d.xfs.clone(), d.btrfs.clone()]);
    appliance::multi_disk(&mut c);
}

#[test]
fn gpt_whole_disk_and_separate_usr() {
    let d = disks();
    let (_vm, mut c, _d) = appliance(vec![
        d.ubuntu.clone(),
        d.alpine.clone(),
        d.usr_split.clone(),
    ]);
    appliance::three_systems(&mut c);
}

#[test]
fn reconnecting_starts_a_fresh_session() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("appliance.sock");
    let ports = vec![(
        PortConfig::new(PORT),
        Backend::Socket(SocketBackend::server(&sock).unwrap()),
    )];
    let _vm = InProcVm::start_with_disks(
        ConsoleConfig::default(),
        ports,
        vec![disks().debian.clone()],
    )
    .unwrap();
    for _ in 0..3 {
        let stream = UnixStream::connect(&sock).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut c = Client::connect(stream).expect("handshake");
        assert_eq!(c.list_devices().unwrap().len(), 4);
        // Leave a download unfinished: the next session must not see its chunks.
        let (id_target, path) = (
            vmchannel_proto::Target::Device("/dev/sda1".into()),
            "/initrd.img-6.1.0-18-amd64",
        );
        c.send_raw(
            &vmchannel_proto::frame::encode(&vmchannel_proto::ClientMessage::Request {
                id: 99,
                request: vmchannel_proto::Request::Download {
                    target: id_target,
                    path: path.into(),
                },
            })
            .unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn hostile_disks_give_errors_not_panics() {
    let (_vm, mut c, _d) = appliance(disks().hostile.clone());
    appliance::hostile(&mut c);
    // The truncated Debian disk still has its partition table; the looping chain keeps the
    // logicals found before the loop; the dead GPT has no partitions; the corrupt ext4 is
    // recognised but not readable.
    let fs = c.list_filesystems().unwrap();
    let names: Vec<&str> = fs.iter().map(|f| f.device.as_str()).collect();
    assert!(names.contains(&"/dev/sdb5"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("/dev/sdc")) || names.contains(&"/dev/sdc"),
        "{names:?}"
    );
    let corrupt = fs
        .iter()
        .find(|f| f.device == "/dev/sdd")
        .expect("sdd listed");
    assert_eq!(corrupt.fstype, "ext4");
    let err = c.read_dir(&vmchannel_proto::Target::Device("/dev/sdd".into()), "/");
    assert!(
        matches!(err, Err(vmchannel_proto::client::ClientError::Remote(_))),
        "{err:?}"
    );
}

#[test]
fn loops_and_absurd_sizes_inside_a_filesystem() {
    let (_vm, mut c, _d) = appliance(vec![disks().odd.clone()]);
    appliance::odd_files(&mut c);
}

#[test]
fn a_long_checksum_does_not_stall_another_port() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("appliance.sock");
    let echo_sock = dir.path().join("echo.sock");
    let ports = vec![
        (
            PortConfig::new(PORT),
            Backend::Socket(SocketBackend::server(&sock).unwrap()),
        ),
        (
            PortConfig::new("org.vmchannel.echo.0"),
            Backend::Socket(SocketBackend::server(&echo_sock).unwrap()),
        ),
    ];
    let _vm =
        InProcVm::start_with_disks(ConsoleConfig::default(), ports, vec![disks().odd.clone()])
            .unwrap();
    let stream = UnixStream::connect(&sock).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut c = Client::connect(stream).unwrap();
    // Hashing 1 TiB of holes would take hours: it runs while the echo port answers.
    let id = c
        .send_request(vmchannel_proto::Request::Checksum {
            target: vmchannel_proto::Target::Os("/dev/sda".into()),
            path: "/etc/motd".into(),
        })
        .unwrap();
    let echo = UnixStream::connect(&echo_sock).unwrap();
    let data = vmchannel_tests::echo::Rng::new(5).bytes(64 * 1024);
    let back =
        vmchannel_tests::echo::echo(&echo, &data, std::time::Duration::from_secs(20)).unwrap();
    assert!(back == data);
    c.cancel(id).unwrap();
    assert!(matches!(
        c.wait(id),
        Err(vmchannel_proto::client::ClientError::Remote(e)) if e.kind == vmchannel_proto::ErrorKind::Cancelled
    ));
}

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

/// Boots the in-process appliance over `images`, its port on a socket (in the returned
/// directory) that clients connect to.
fn serve(images: Vec<PathBuf>) -> (InProcVm, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("appliance.sock");
    let ports = vec![(
        PortConfig::new(PORT),
        Backend::Socket(SocketBackend::server(&sock).unwrap()),
    )];
    let vm = InProcVm::start_with_disks(ConsoleConfig::default(), ports, images).unwrap();
    (vm, sock, dir)
}

/// Boots the in-process appliance over `images` and connects a client.
fn appliance(images: Vec<PathBuf>) -> (InProcVm, Client<UnixStream>, tempfile::TempDir) {
    let (vm, sock, dir) = serve(images);
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

/// A connection spoken to in raw frames (no Sync, which would hide a server that kept an
/// old session's state).
struct Raw {
    stream: UnixStream,
    decoder: vmchannel_proto::frame::ServerDecoder,
}

impl Raw {
    fn connect(sock: &std::path::Path) -> Self {
        let stream = UnixStream::connect(sock).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        // Until the session is established, frames are decoded under the handshake limit
        // (docs/PROTOCOL.md, section 1), as the reference client does.
        Raw {
            stream,
            decoder: vmchannel_proto::frame::ServerDecoder::with_max_frame(
                vmchannel_proto::frame::HANDSHAKE_MAX_FRAME,
            ),
        }
    }

    fn send(&mut self, msg: &vmchannel_proto::ClientMessage) {
        use std::io::Write;
        self.stream
            .write_all(&vmchannel_proto::frame::encode(msg).unwrap())
            .unwrap();
    }

    /// The session preamble, which a client sends before its Hello.
    fn send_preamble(&mut self) {
        use std::io::Write;
        self.stream
            .write_all(&vmchannel_proto::frame::PREAMBLE)
            .unwrap();
    }

    /// The next message, or the reason for a run of undecodable bytes.
    fn event(&mut self) -> Result<vmchannel_proto::ServerMessage, String> {
        use std::io::Read;
        use vmchannel_proto::frame::Decoded;
        let mut buf = [0u8; 4096];
        loop {
            match self.decoder.next() {
                Some(Decoded::Message(m)) => return Ok(m),
                Some(Decoded::Garbage { reason, .. }) => return Err(reason.to_string()),
                None => {}
            }
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "the appliance closed the connection");
            self.decoder.push(&buf[..n]);
        }
    }

    /// A fresh session's greeting: the preamble (one run of garbage of exactly its length),
    /// then the Hello; afterwards frames are decoded under the protocol's limit.
    fn greeting(&mut self) -> vmchannel_proto::Hello {
        use vmchannel_proto::frame::{Decoded, PREAMBLE_LEN};
        let hello = loop {
            match self.decoder.next() {
                Some(Decoded::Message(vmchannel_proto::ServerMessage::Hello(h))) => break h,
                Some(Decoded::Garbage { skipped, .. }) => {
                    assert_eq!(
                        skipped, PREAMBLE_LEN as u64,
                        "only the preamble before Hello"
                    )
                }
                Some(Decoded::Message(other)) => panic!("{other:?} before the Hello"),
                None => {
                    use std::io::Read;
                    let mut buf = [0u8; 4096];
                    let n = self.stream.read(&mut buf).unwrap();
                    assert!(n > 0, "the appliance closed the connection");
                    self.decoder.push(&buf[..n]);
                }
            }
        };
        self.decoder
            .set_max_frame(vmchannel_proto::frame::MAX_FRAME);
        hello
    }

    /// The next message; undecodable bytes fail the test.
    fn next(&mut self) -> vmchannel_proto::ServerMessage {
        self.event()
            .unwrap_or_else(|reason| panic!("garbage from the appliance: {reason}"))
    }

    fn request(&mut self, id: u32, request: vmchannel_proto::Request) {
        self.send(&vmchannel_proto::ClientMessage::Request { id, request });
    }
}

fn hello(version: u16) -> vmchannel_proto::ClientMessage {
    vmchannel_proto::ClientMessage::Hello(vmchannel_proto::Hello {
        version,
        capabilities: 0,
        max_frame: 1 << 20,
        software: "test".into(),
    })
}

#[test]
fn reconnecting_starts_a_fresh_session() {
    let (_vm, sock, _dir) = serve(vec![disks().debian.clone()]);
    for _ in 0..3 {
        let stream = UnixStream::connect(&sock).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut c = Client::connect(stream).expect("handshake");
        // Leftovers of the old connection are passed over by the handshake (its Sync also
        // drops the old download); after it, nothing of the old session may arrive.
        let leftovers = c.passed_over();
        assert_eq!(c.list_devices().unwrap().len(), 4);
        let boot = vmchannel_proto::Target::Device("/dev/sda1".into());
        assert_eq!(
            c.read_file(&boot, "/grub/grub.cfg").unwrap(),
            b"set default=0\n"
        );
        assert_eq!(
            c.passed_over(),
            leftovers,
            "the old session's chunks reached the new one"
        );
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

/// When the host hangs up in the middle of a download and reconnects after the device has
/// seen the hang-up, bytes of the old session (the guest's queued chunks, one of them cut
/// where the old socket lost its tail) can reach the new connection ahead of the new
/// greeting. The session preamble and the handshake limit (docs/PROTOCOL.md, section 1) make
/// sure they end before it: the greeting is always found, and nothing of the old session
/// comes after it.
#[test]
fn reconnecting_after_a_cut_download_greets_the_new_session() {
    use vmchannel_proto::{PROTOCOL_VERSION, Reply, Request, ServerMessage, Target};
    let (vm, sock, _dir) = serve(vec![disks().debian.clone()]);
    for round in 0..3 {
        let mut raw = Raw::connect(&sock);
        // Bytes the guest had queued before it learnt of the hang-up may still come (chunks,
        // and the tail of one cut at the disconnect). They should come before the new
        // session's greeting, never after it; today a cut frame swallows the greeting.
        while !matches!(raw.event(), Ok(ServerMessage::Hello(_))) {}
        raw.decoder.set_max_frame(vmchannel_proto::frame::MAX_FRAME);
        raw.send_preamble();
        raw.send(&hello(PROTOCOL_VERSION));
        raw.request(1, Request::ListDevices);
        // Only the Hello answer and our reply: no chunk of the last round's download.
        loop {
            match raw.next() {
                ServerMessage::Hello(_) => {}
                ServerMessage::Response {
                    id: 1,
                    result: Ok(Reply::Devices(d)),
                } => {
                    assert_eq!(d.len(), 4);
                    break;
                }
                other => {
                    panic!("round {round}: the old session leaked into the new one: {other:?}")
                }
            }
        }
        // Leave a download unfinished, with its first chunk seen, and hang up.
        raw.request(
            99,
            Request::Download {
                target: Target::Device("/dev/sda1".into()),
                path: "/initrd.img-6.1.0-18-amd64".into(),
            },
        );
        assert!(matches!(raw.next(), ServerMessage::Chunk { id: 99, .. }));
        drop(raw);
        vm.wait_host(TIMEOUT, "the host side to close", |c| {
            c.ports().iter().all(|p| !p.host_connected)
        });
    }
}

#[test]
fn cuts_at_every_point_of_every_request_leave_the_next_session_clean() {
    let (vm, sock, _dir) = serve(vec![disks().debian.clone()]);
    appliance::cut_sessions(
        || UnixStream::connect(&sock).unwrap(),
        // Every other hang-up, reconnect only once the device has seen it.
        |round| {
            if round % 2 == 0 {
                vm.wait_host(TIMEOUT, "the host side to close", |c| {
                    c.ports().iter().all(|p| !p.host_connected)
                });
            }
        },
        true,
    );
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
    // No trustworthy GPT: no partitions, the disk is probed whole.
    assert!(names.contains(&"/dev/sdc"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("/dev/sdc") && n.len() > 8),
        "{names:?}"
    );
    let devices = c.list_devices().unwrap();
    let sdc = devices.iter().find(|d| d.name == "/dev/sdc").unwrap();
    assert_eq!(sdc.table, None);
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

#[test]
fn requests_before_hello_are_refused() {
    use vmchannel_proto::{ErrorKind, PROTOCOL_VERSION, Reply, Request, ServerMessage};
    let (_vm, sock, _dir) = serve(vec![disks().alpine.clone()]);
    let mut raw = Raw::connect(&sock);
    // The appliance greets as soon as the host connects.
    assert_eq!(raw.greeting().version, PROTOCOL_VERSION);
    raw.request(1, Request::ListDevices);
    match raw.next() {
        ServerMessage::Response {
            id: 1,
            result: Err(e),
        } => assert_eq!(e.kind, ErrorKind::BadRequest),
        other => panic!("{other:?}"),
    }
    // Another protocol version: greeted, then every request refused as unsupported.
    raw.send(&hello(99));
    assert!(matches!(raw.next(), ServerMessage::Hello(_)));
    raw.request(2, Request::ListDevices);
    match raw.next() {
        ServerMessage::Response {
            id: 2,
            result: Err(e),
        } => assert_eq!(e.kind, ErrorKind::Unsupported),
        other => panic!("{other:?}"),
    }
    // The right version: answered.
    raw.send(&hello(PROTOCOL_VERSION));
    assert!(matches!(raw.next(), ServerMessage::Hello(_)));
    raw.request(3, Request::ListDevices);
    match raw.next() {
        ServerMessage::Response {
            id: 3,
            result: Ok(Reply::Devices(d)),
        } => assert_eq!(d[0].name, "/dev/sda"),
        other => panic!("{other:?}"),
    }
}

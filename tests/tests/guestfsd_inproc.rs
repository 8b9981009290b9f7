//! libguestfs's daemon agent (`kernel::agents::guestfsd`) in process, over the real
//! virtio-console device model and a unix socket, fed what a hostile or broken host might
//! send: every bad frame gets libguestfs's error reply or resets the session (never a panic,
//! never a hang), and the next session works.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use guestfs_proto::call::encode_call;
use guestfs_proto::frame::{self, Event, FrameDecoder, Header, Role};
use guestfs_proto::procs::Call;
use guestfs_proto::procs_types::ProcInfo;
use guestfs_proto::reply::{Ret, decode_reply};
use guestfs_proto::xdr::Bytes;
use host_device::console::{Backend, ConsoleConfig, PortConfig, SocketBackend};
use vmchannel_tests::inproc::InProcVm;

const PORT: &str = "org.libguestfs.channel.0";
const T: Duration = Duration::from_secs(30);

struct Host {
    s: UnixStream,
    dec: FrameDecoder,
}

impl Host {
    /// Connects and waits for the launch flag.
    fn connect(path: &std::path::Path) -> Host {
        let s = vmchannel_tests::hosts::connect_unix(path, T).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut h = Host {
            s,
            dec: FrameDecoder::new(Role::Host),
        };
        match h.event() {
            Event::Launch => {}
            other => panic!("expected the launch flag first, got {other:?}"),
        }
        h
    }

    fn event(&mut self) -> Event {
        let mut buf = [0u8; 65536];
        loop {
            if let Some(e) = self.dec.next_event() {
                return e.expect("a well-formed stream from the appliance");
            }
            let n = self
                .s
                .read(&mut buf)
                .expect("the appliance answers in time");
            assert!(n > 0, "the appliance closed the stream");
            self.dec.push(&buf[..n]);
        }
    }

    fn reply(&mut self, proc_nr: u32) -> Result<Ret, (String, String)> {
        let info = ProcInfo::lookup(proc_nr).unwrap();
        loop {
            if let Event::Frame(msg) = self.event() {
                let r = decode_reply(info, &msg).expect("a decodable reply");
                return r.result.map_err(|e| {
                    (
                        String::from_utf8_lossy(&e.errno.0).into_owned(),
                        String::from_utf8_lossy(&e.message.0).into_owned(),
                    )
                });
            }
        }
    }

    fn call(&mut self, call: &Call) -> Result<Ret, (String, String)> {
        self.s.write_all(&encode_call(call, 7)).unwrap();
        self.reply(call.proc_nr())
    }
}

fn devices(h: &mut Host) -> Vec<String> {
    match h.call(&Call::ListDevices).unwrap() {
        Ret::StringList(v) => v
            .into_iter()
            .map(|b| String::from_utf8(b.0).unwrap())
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_frames_get_errors_or_a_reset_and_the_next_session_works() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("guestfsd.sock");
    let ports = vec![(
        PortConfig::new(PORT),
        Backend::Socket(SocketBackend::server(&sock).unwrap()),
    )];
    let disks = vec![vmchannel_tests::images::shared().debian.clone()];
    let _vm = InProcVm::start_with_disks(ConsoleConfig::default(), ports, disks).unwrap();

    let mut h = Host::connect(&sock);
    assert_eq!(devices(&mut h), ["/dev/sda"]);

    // blkid: a hashtable, DEVNAME first and the partition entry's keys; a device that is
    // not there gets the daemon stub's error.
    let blkid = |device: &str| Call::Blkid {
        device: Bytes::from(device),
    };
    match h.call(&blkid("/dev/sda2")).unwrap() {
        Ret::Hashtable(kv) => {
            assert_eq!(kv[0], (Bytes::from("DEVNAME"), Bytes::from("/dev/sda2")));
            assert!(
                kv.contains(&(Bytes::from("PART_ENTRY_NUMBER"), Bytes::from("2"))),
                "{kv:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let e = h.call(&blkid("/dev/sdz")).unwrap_err();
    assert_eq!(
        e,
        (
            "ENOENT".into(),
            "blkid_stub: /dev/sdz: No such file or directory".into()
        )
    );

    // An unknown procedure number: the daemon's own error.
    let header = Header::call(9999, 1, 0);
    h.s.write_all(&frame::encode_call(&header, &[])).unwrap();
    let (errno, msg) = h.reply(ProcInfo::lookup(7).unwrap().nr).unwrap_err();
    assert_eq!(errno, "");
    assert!(msg.contains("unknown procedure number 9999"), "{msg}");

    // Optional-argument bits a procedure does not have.
    let header = Header::call(7, 2, 1);
    h.s.write_all(&frame::encode_call(&header, &[])).unwrap();
    let (_, msg) = h.reply(7).unwrap_err();
    assert!(msg.contains("optargs_bitmask"), "{msg}");

    // A string longer than its bound, and truncated arguments.
    let mut args = Vec::new();
    args.extend_from_slice(&u32::MAX.to_be_bytes());
    args.extend_from_slice(b"/dev/sda");
    h.s.write_all(&frame::encode_call(&Header::call(198, 3, 0), &args))
        .unwrap();
    let (_, msg) = h.reply(198).unwrap_err();
    assert!(msg.contains("decode"), "{msg}");

    // A relative path, a write-side procedure, a path before anything is mounted.
    let e = h
        .call(&Call::IsFile {
            path: Bytes::from("etc"),
            followsymlinks: None,
        })
        .unwrap_err();
    assert!(e.1.contains("path must start with a / character"), "{e:?}");
    // `touch` (3): the appliance is read-only.
    let mut args = 2u32.to_be_bytes().to_vec();
    args.extend_from_slice(b"/x\0\0");
    h.s.write_all(&frame::encode_call(&Header::call(3, 4, 0), &args))
        .unwrap();
    let e = h.reply(3).unwrap_err();
    assert_eq!(e.0, "EROFS", "{e:?}");
    let e = h
        .call(&Call::Filesize {
            file: Bytes::from("/etc/hostname"),
        })
        .unwrap_err();
    assert!(e.1.contains("mount"), "{e:?}");

    // The session still works.
    assert_eq!(devices(&mut h), ["/dev/sda"]);

    // A length word over the 4 MiB limit: the session is reset (the daemon would exit); the
    // host reconnects and gets a fresh daemon, nothing mounted.
    h.s.write_all(&(frame::MESSAGE_MAX + 1).to_be_bytes())
        .unwrap();
    h.s.write_all(&[0u8; 64]).unwrap();
    drop(h);
    let mut h = Host::connect(&sock);
    assert_eq!(devices(&mut h), ["/dev/sda"]);
    h.call(&Call::MountRo {
        mountable: Bytes::from("/dev/sda2"),
        mountpoint: Bytes::from("/"),
    })
    .unwrap();
    assert_eq!(
        h.call(&Call::IsFile {
            path: Bytes::from("/etc/hostname"),
            followsymlinks: None
        })
        .unwrap(),
        Ret::Bool(true)
    );

    // A download cut by the host's cancel flag: the stream ends early with a cancel chunk,
    // well before the 3 MiB file is through, and the session goes on.
    h.call(&Call::UmountAll).unwrap();
    h.call(&Call::MountRo {
        mountable: Bytes::from("/dev/sda1"),
        mountpoint: Bytes::from("/"),
    })
    .unwrap();
    let initrd = "/initrd.img-6.1.0-18-amd64";
    let size = match h
        .call(&Call::Filesize {
            file: Bytes::from(initrd),
        })
        .unwrap()
    {
        Ret::Int64(n) => n as usize,
        other => panic!("{other:?}"),
    };
    assert!(size > 3 << 20, "{size}");
    h.s.write_all(&encode_call(
        &Call::Download {
            remotefilename: Bytes::from(initrd),
        },
        9,
    ))
    .unwrap();
    h.reply(67)
        .expect("download's OK reply comes before its chunks");
    // The cancel goes once data flows, so the agent must read it while it streams.
    let mut received = 0;
    while received == 0 {
        if let Event::Frame(msg) = h.event() {
            let chunk = frame::Chunk::decode(&msg).expect("a chunk");
            assert!(!chunk.cancel && !chunk.is_end(), "the stream ended at once");
            received += chunk.data.len();
        }
    }
    h.s.write_all(&frame::CANCEL_FLAG.to_be_bytes()).unwrap();
    let cancelled = loop {
        let Event::Frame(msg) = h.event() else {
            continue;
        };
        let chunk = frame::Chunk::decode(&msg).expect("a chunk");
        received += chunk.data.len();
        if chunk.cancel || chunk.is_end() {
            break chunk.cancel;
        }
    };
    assert!(cancelled, "the stream ended without its cancel chunk");
    assert!(
        received < size,
        "all {size} bytes came before the cancel took effect"
    );
    assert_eq!(devices(&mut h), ["/dev/sda"]);
}

//! Golden vectors: pin the wire format byte for byte.
//!
//! Each case is a message and the exact frame `encode` must produce for it, as hex. Decoding
//! those bytes must give the message back. A change here is a wire-format change: it needs a
//! new `PROTOCOL_VERSION` and an update of docs/PROTOCOL.md, which quotes some of these.

use vmchannel_proto::frame::{ClientDecoder, Decoded, ServerDecoder, encode};
use vmchannel_proto::*;

fn s(x: &str) -> String {
    x.to_string()
}

fn target() -> Target {
    Target::Os(s("/dev/sda1"))
}

fn client_cases() -> Vec<(&'static str, ClientMessage, &'static str)> {
    vec![
        (
            "hello",
            ClientMessage::Hello(Hello {
                version: PROTOCOL_VERSION,
                capabilities: caps::ALL,
                max_frame: 65536,
                software: s("vmch 0.1.0"),
            }),
            "564d43481100000000033f8080040a766d636820302e312e30",
        ),
        (
            "list-devices",
            req(1, Request::ListDevices),
            "564d434803000000010100",
        ),
        (
            "list-filesystems",
            req(2, Request::ListFilesystems),
            "564d434803000000010201",
        ),
        (
            "inspect",
            req(3, Request::Inspect { applications: true }),
            "564d43480400000001030201",
        ),
        (
            "read-dir",
            req(
                4,
                Request::ReadDir {
                    target: Target::Device(s("/dev/sdb")),
                    path: s("/"),
                },
            ),
            "564d43480f00000001040300082f6465762f736462012f",
        ),
        (
            "stat",
            req(
                5,
                Request::Stat {
                    target: target(),
                    path: s("/etc"),
                    follow: false,
                },
            ),
            "564d43481400000001050401092f6465762f73646131042f65746300",
        ),
        (
            "read",
            req(
                200,
                Request::Read {
                    target: target(),
                    path: s("/etc/os-release"),
                    offset: 4096,
                    len: 512,
                },
            ),
            concat!(
                "564d43482300000001c8010501092f6465762f736461310f2f6574632f6f732d",
                "72656c6561736580208004",
            ),
        ),
        (
            "download",
            req(
                7,
                Request::Download {
                    target: target(),
                    path: s("/bin/sh"),
                },
            ),
            "564d43481600000001070601092f6465762f73646131072f62696e2f7368",
        ),
        (
            "checksum",
            req(
                8,
                Request::Checksum {
                    target: target(),
                    path: s("/bin/sh"),
                },
            ),
            "564d43481600000001080701092f6465762f73646131072f62696e2f7368",
        ),
        (
            "usage",
            req(
                9,
                Request::Usage {
                    target: target(),
                    path: s("/"),
                },
            ),
            "564d43481000000001090801092f6465762f73646131012f",
        ),
        (
            "cancel",
            ClientMessage::Cancel { id: 7 },
            "564d4348020000000207",
        ),
        (
            "sync",
            ClientMessage::Sync {
                nonce: 0x0123_4567_89ab_cdef,
            },
            "564d43480a00000003ef9bafcdf8acd19101",
        ),
    ]
}

fn req(id: u32, request: Request) -> ClientMessage {
    ClientMessage::Request { id, request }
}

fn server_cases() -> Vec<(&'static str, ServerMessage, &'static str)> {
    let os = OsInfo {
        root: s("/dev/sda1"),
        os_type: s("linux"),
        distro: Some(s("debian")),
        product_name: Some(s("Debian 12")),
        major_version: 12,
        minor_version: 5,
        arch: Some(s("x86_64")),
        hostname: Some(s("vm")),
        package_format: Some(s("deb")),
        package_management: Some(s("apt")),
        osinfo: Some(s("debian12")),
        mountpoints: vec![(s("/dev/sda1"), s("/"))],
        filesystems: vec![FilesystemInfo {
            device: s("/dev/sda1"),
            fstype: s("ext4"),
            label: None,
            uuid: Some(s("0a1b")),
        }],
        applications: vec![Application {
            name: s("bash"),
            epoch: 0,
            version: s("5.2.15"),
            release: s("2"),
            arch: s("amd64"),
            summary: s("shell"),
            description: s(""),
            url: s(""),
            source_package: s("bash"),
            display_name: s(""),
            install_path: s(""),
            publisher: s(""),
        }],
        product_variant: None,
        windows_systemroot: None,
        windows_current_control_set: None,
        drive_mappings: vec![],
    };
    let windows = OsInfo {
        root: s("/dev/sda2"),
        os_type: s("windows"),
        distro: Some(s("windows")),
        product_name: Some(s("Windows Server 2022 Datacenter")),
        major_version: 10,
        minor_version: 0,
        arch: Some(s("x86_64")),
        hostname: Some(s("WIN")),
        package_format: None,
        package_management: None,
        osinfo: Some(s("win2k22")),
        mountpoints: vec![(s("/dev/sda2"), s("/"))],
        filesystems: vec![],
        applications: vec![Application {
            name: s("7-Zip"),
            display_name: s("7-Zip 23.01 (x64)"),
            version: s("23.01"),
            install_path: s("C:\\Program Files\\7-Zip\\"),
            publisher: s("Igor Pavlov"),
            ..Application::default()
        }],
        product_variant: Some(s("Server")),
        windows_systemroot: Some(s("/Windows")),
        windows_current_control_set: Some(s("ControlSet001")),
        drive_mappings: vec![(s("C"), s("/dev/sda2"))],
    };
    vec![
        (
            "hello",
            ServerMessage::Hello(Hello {
                version: PROTOCOL_VERSION,
                capabilities: caps::ALL,
                max_frame: frame::MAX_FRAME,
                software: s("vmchannel 0.1.0"),
            }),
            "564d43481700000000033f808080020f766d6368616e6e656c20302e312e30",
        ),
        (
            "inspection",
            ServerMessage::Response {
                id: 3,
                result: Ok(Reply::Inspection(vec![os])),
            },
            concat!(
                "564d4348980000000103000201092f6465762f73646131056c696e7578010664",
                "656269616e010944656269616e2031320c0501067838365f36340102766d0103",
                "6465620103617074010864656269616e313201092f6465762f73646131012f01",
                "092f6465762f736461310465787434000104306131620104626173680006352e",
                "322e3135013205616d643634057368656c6c0000046261736800000000000000",
            ),
        ),
        (
            "inspection-windows",
            ServerMessage::Response {
                id: 4,
                result: Ok(Reply::Inspection(vec![windows])),
            },
            concat!(
                "564d4348e00000000104000201092f6465762f736461320777696e646f777301",
                "0777696e646f7773011e57696e646f7773205365727665722032303232204461",
                "746163656e7465720a0001067838365f3634010357494e0000010777696e326b",
                "323201092f6465762f73646132012f000105372d5a6970000532332e30310000",
                "0000000011372d5a69702032332e303120287836342917433a5c50726f677261",
                "6d2046696c65735c372d5a69705c0b49676f72205061766c6f76010653657276",
                "657201082f57696e646f7773010d436f6e74726f6c536574303031010143092f",
                "6465762f73646132",
            ),
        ),
        (
            "stat",
            ServerMessage::Response {
                id: 5,
                result: Ok(Reply::Stat(Stat {
                    kind: FileKind::Directory,
                    size: 4096,
                    mode: 0o40755,
                    uid: 0,
                    gid: 0,
                    mtime: -1,
                    link_target: None,
                })),
            },
            "564d43480e00000001050004018020ed830100000100",
        ),
        (
            "downloaded",
            ServerMessage::Response {
                id: 7,
                result: Ok(Reply::Downloaded {
                    size: 5,
                    sha256: [0xaa; 32],
                }),
            },
            concat!(
                "564d4348250000000107000605aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "aaaaaaaaaaaaaaaaaaaaaaaaaa",
            ),
        ),
        (
            "error",
            ServerMessage::Response {
                id: 9,
                result: Err(Error {
                    kind: ErrorKind::NotFound,
                    message: s("no such file"),
                }),
            },
            "564d434811000000010901000c6e6f20737563682066696c65",
        ),
        (
            "chunk",
            ServerMessage::Chunk {
                id: 7,
                offset: 65536,
                data: b"hello".to_vec(),
            },
            "564d43480b00000002078080040568656c6c6f",
        ),
        (
            "progress",
            ServerMessage::Progress {
                id: 7,
                done: 300,
                total: 1_000_000,
            },
            "564d4348070000000307ac02c0843d",
        ),
        (
            "synced",
            ServerMessage::Synced {
                nonce: 0x0123_4567_89ab_cdef,
            },
            "564d43480a00000004ef9bafcdf8acd19101",
        ),
        (
            "garbage",
            ServerMessage::Garbage {
                skipped: 17,
                message: s("bad magic"),
            },
            "564d43480c000000051109626164206d61676963",
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

#[test]
fn client_messages_encode_to_the_golden_bytes() {
    for (name, msg, golden) in client_cases() {
        assert_eq!(hex(&encode(&msg).unwrap()), golden, "client {name}");
    }
}

#[test]
fn server_messages_encode_to_the_golden_bytes() {
    for (name, msg, golden) in server_cases() {
        assert_eq!(hex(&encode(&msg).unwrap()), golden, "server {name}");
    }
}

#[test]
fn golden_bytes_decode_to_the_messages() {
    for (name, msg, golden) in client_cases() {
        let mut dec = ClientDecoder::new();
        dec.push(&unhex(golden));
        assert_eq!(dec.next(), Some(Decoded::Message(msg)), "client {name}");
        assert_eq!(dec.next(), None, "client {name}");
        assert_eq!(dec.buffered(), 0, "client {name}");
    }
    for (name, msg, golden) in server_cases() {
        let mut dec = ServerDecoder::new();
        dec.push(&unhex(golden));
        assert_eq!(dec.next(), Some(Decoded::Message(msg)), "server {name}");
        assert_eq!(dec.next(), None, "server {name}");
        assert_eq!(dec.buffered(), 0, "server {name}");
    }
}

#[test]
fn all_golden_frames_in_one_stream() {
    let mut bytes = Vec::new();
    for (_, _, golden) in client_cases() {
        bytes.extend(unhex(golden));
    }
    let mut dec = ClientDecoder::new();
    dec.push(&bytes);
    let got: Vec<_> = dec.collect();
    let want: Vec<_> = client_cases()
        .into_iter()
        .map(|(_, m, _)| Decoded::Message(m))
        .collect();
    assert_eq!(got, want);
}

/// The constants the wire format depends on.
#[test]
fn constants() {
    assert_eq!(frame::MAGIC, *b"VMCH");
    assert_eq!(frame::HEADER_LEN, 8);
    assert_eq!(frame::MAX_FRAME, 4 * 1024 * 1024);
    assert_eq!(PROTOCOL_VERSION, 3);
    assert_eq!(caps::ALL, 0x3f);
    assert_eq!(MAX_READ, 1 << 20);
}

/// The session preamble and the handshake limit are part of the wire protocol
/// (docs/PROTOCOL.md, section 5, step 0).
#[test]
fn session_preamble_is_pinned() {
    assert_eq!(vmchannel_proto::frame::HANDSHAKE_MAX_FRAME, 1024);
    assert_eq!(vmchannel_proto::frame::PREAMBLE.len(), 1032);
    assert!(vmchannel_proto::frame::PREAMBLE.iter().all(|&b| b == 0));
}

//! Golden vectors recorded from the real libguestfs 1.48 (guestfish, virt-inspector, virt-ls,
//! virt-cat, virt-df) through `tools/fake-hv.py`: `tests/data/calls/NAME.call` is a call frame
//! the library sent, `NAME.reply` the reply (and chunks) this crate encoded and the tool accepted
//! (`tests/data/outputs/` holds what the tools printed). Regenerate with
//! `tools/record-golden.sh`.

use std::path::PathBuf;

use guestfs_proto::call::{
    CallError, DecodeError, decode_call, encode_call, read_only_error, unknown_procedure_error,
};
use guestfs_proto::frame::{
    Chunk, Event, FrameDecoder, Header, MessageError, Role, STATUS_ERROR, STATUS_OK, split_message,
};
use guestfs_proto::procs::{Call, PROCEDURES, StructList, StructValue};
use guestfs_proto::procs_types::ProcInfo;
use guestfs_proto::reply::{Ret, decode_reply, encode_reply};
use guestfs_proto::xdr::{Bytes, Decoder, Encoder};

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data().join("calls").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn b(s: &str) -> Bytes {
    Bytes::from(s)
}

/// The payload of a one-frame file, checking its length word.
fn payload(raw: &[u8]) -> &[u8] {
    let len = u32::from_be_bytes(raw[..4].try_into().unwrap()) as usize;
    assert_eq!(len + 4, raw.len(), "length word");
    &raw[4..]
}

fn call(name: &str) -> Call {
    decode_call(payload(&read(&format!("{name}.call"))))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .call
}

#[test]
fn every_recorded_call_decodes_to_its_procedure_and_reencodes_identically() {
    let mut n = 0;
    for entry in std::fs::read_dir(data().join("calls")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("call") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        if stem.ends_with("-rejected") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let msg = decode_call(payload(&raw)).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let info = ProcInfo::lookup(msg.header.proc_nr).unwrap();
        assert_eq!(info.name, stem);
        assert_eq!(msg.call.proc_nr(), info.nr);
        // The library zeroes unset optional arguments: our encoding of the decoded call is
        // byte for byte the library's.
        assert_eq!(encode_call(&msg.call, msg.header.serial), raw, "{stem}");
        n += 1;
    }
    assert!(n >= 45, "only {n} golden calls");
}

#[test]
fn recorded_calls_decode_to_the_expected_typed_calls() {
    let cases = [
        ("list_partitions", Call::ListPartitions),
        ("list_devices", Call::ListDevices),
        ("list_filesystems", Call::ListFilesystems),
        ("lvs", Call::Lvs),
        ("inspect_os", Call::InspectOs),
        ("inspect_get_roots", Call::InspectGetRoots),
        ("internal_autosync", Call::InternalAutosync),
        ("umount_all", Call::UmountAll),
        (
            "vfs_type",
            Call::VfsType {
                mountable: b("/dev/sda1"),
            },
        ),
        (
            "vfs_label",
            Call::VfsLabel {
                mountable: b("/dev/sda1"),
            },
        ),
        (
            "vfs_uuid",
            Call::VfsUuid {
                mountable: b("/dev/sda1"),
            },
        ),
        (
            "blkid",
            Call::Blkid {
                device: b("/dev/sda1"),
            },
        ),
        (
            "mount_ro",
            Call::MountRo {
                mountable: b("/dev/sda1"),
                mountpoint: b("/"),
            },
        ),
        (
            "inspect_get_type",
            Call::InspectGetType {
                root: b("/dev/sda1"),
            },
        ),
        (
            "inspect_get_mountpoints",
            Call::InspectGetMountpoints {
                root: b("/dev/sda1"),
            },
        ),
        (
            "inspect_get_windows_systemroot",
            Call::InspectGetWindowsSystemroot {
                root: b("/dev/sda1"),
            },
        ),
        (
            "is_file",
            Call::IsFile {
                path: b("/etc/hostname"),
                followsymlinks: Some(true),
            },
        ),
        (
            "is_dir",
            Call::IsDir {
                path: b("/etc"),
                followsymlinks: None,
            },
        ),
        ("exists", Call::Exists { path: b("/nope") }),
        (
            "statns",
            Call::Statns {
                path: b("/etc/hostname"),
            },
        ),
        ("lstatns", Call::Lstatns { path: b("/bin/sh") }),
        ("statvfs", Call::Statvfs { path: b("/") }),
        ("realpath", Call::Realpath { path: b("/bin/sh") }),
        (
            "file",
            Call::File {
                path: b("/usr/bin/ls"),
            },
        ),
        (
            "filesize",
            Call::Filesize {
                file: b("/etc/os-release"),
            },
        ),
        ("readdir", Call::Readdir { dir: b("/etc") }),
        (
            "ll",
            Call::Ll {
                directory: b("/etc"),
            },
        ),
        ("ls0", Call::Ls0 { dir: b("/") }),
        ("find0", Call::Find0 { directory: b("/") }),
        ("lgetxattrs", Call::Lgetxattrs { path: b("/etc") }),
        (
            "internal_lstatnslist",
            Call::InternalLstatnslist {
                path: b("/etc"),
                names: ["debian_version", "fstab", "hostname", "os-release"]
                    .map(b)
                    .to_vec(),
            },
        ),
        (
            "hivex_open",
            Call::HivexOpen {
                filename: b("/Windows/System32/config/SOFTWARE"),
                verbose: Some(false),
                debug: None,
                write: None,
                r#unsafe: Some(true),
            },
        ),
        ("hivex_root", Call::HivexRoot),
        ("hivex_close", Call::HivexClose),
        (
            "hivex_node_get_child",
            Call::HivexNodeGetChild {
                nodeh: 1,
                name: b("Microsoft"),
            },
        ),
        ("hivex_node_children", Call::HivexNodeChildren { nodeh: 5 }),
        ("hivex_node_name", Call::HivexNodeName { nodeh: 6 }),
        (
            "hivex_node_get_value",
            Call::HivexNodeGetValue {
                nodeh: 6,
                key: b("DisplayName"),
            },
        ),
        ("hivex_value_string", Call::HivexValueString { valueh: 100 }),
        (
            "inspect_get_windows_software_hive",
            Call::InspectGetWindowsSoftwareHive {
                root: b("/dev/sda1"),
            },
        ),
    ];
    for (name, want) in cases {
        assert_eq!(call(name), want, "{name}");
    }
    // download: the FileOut argument is not on the wire; the path is recorded per tool.
    assert!(matches!(call("download"), Call::Download { .. }));
    // Write-side procedures decode generically and are marked for refusal.
    for name in ["touch", "mkdir"] {
        let Call::Other { proc_info, args } = call(name) else {
            panic!("{name}")
        };
        assert_eq!(proc_info.name, name);
        assert!(proc_info.write_side && !proc_info.served);
        assert!(
            matches!(&args[0], Some(guestfs_proto::procs_types::Value::Str(p)) if p.0.starts_with(b"/"))
        );
    }
}

#[test]
fn recorded_rejection_matches_the_daemon() {
    let raw = read("statns-rejected.call");
    let err = decode_call(payload(&raw)).unwrap_err();
    let DecodeError::Call { header, error } = &err else {
        panic!("{err}")
    };
    assert!(matches!(error, CallError::NotAbsolute { .. }));
    assert_eq!(
        error.to_string(),
        "statns_stub: path must start with a / character"
    );
    assert_eq!(err.reply().unwrap(), read("statns-rejected.reply"));
    let reply = read("statns-rejected.reply");
    let (h, body) = split_message(payload(&reply)).unwrap();
    assert_eq!((h.serial, h.status), (header.serial, STATUS_ERROR));
    let me = MessageError::decode(&mut Decoder::new(body)).unwrap();
    assert_eq!(me.errno, b(""));
}

/// Every recorded reply decodes as its procedure's return type and re-encodes identically;
/// FileOut replies are followed by a well-formed chunk stream.
#[test]
fn recorded_replies_round_trip() {
    let mut n = 0;
    for entry in std::fs::read_dir(data().join("calls")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("reply") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let info = ProcInfo::by_name(stem.trim_end_matches("-rejected")).unwrap();
        let raw = std::fs::read(&path).unwrap();
        let mut d = FrameDecoder::new(Role::Host);
        d.push(&raw);
        let Some(Ok(Event::Frame(first))) = d.next_event() else {
            panic!("{stem}: no reply frame")
        };
        let reply = decode_reply(info, &first).unwrap_or_else(|e| panic!("{stem}: {e}"));
        match &reply.result {
            Ok(ret) => {
                assert_eq!(reply.header.status, STATUS_OK);
                let re = encode_reply(info, reply.header.serial, ret).unwrap();
                assert_eq!(&re[4..], &first[..], "{stem}");
            }
            Err(e) => {
                assert_eq!(reply.header.status, STATUS_ERROR);
                let re = guestfs_proto::frame::encode_error(info.nr, reply.header.serial, e);
                assert_eq!(&re[4..], &first[..], "{stem}");
            }
        }
        let mut chunks = 0;
        let mut ended = false;
        while let Some(ev) = d.next_event() {
            let Event::Frame(f) = ev.unwrap() else {
                panic!("{stem}")
            };
            let c = Chunk::decode(&f).unwrap();
            chunks += 1;
            if c.is_end() {
                ended = true;
            }
        }
        assert_eq!(
            info.has_file_out() && reply.result.is_ok(),
            chunks > 0,
            "{stem}"
        );
        assert_eq!(chunks > 0, ended, "{stem}");
        n += 1;
    }
    assert!(n >= 45);
}

#[test]
fn replies_the_tools_printed() {
    let out = |n: &str| std::fs::read_to_string(data().join("outputs").join(n)).unwrap();
    let insp = out("inspector.txt");
    for want in [
        "<hostname>fakehost</hostname>",
        "<product_name>Debian GNU/Linux 12 (bookworm)</product_name>",
        "<major_version>12</major_version>",
        "<mountpoint dev=\"/dev/sda1\">/</mountpoint>",
        "<uuid>0f2b6a3c-1d2e-4f50-8a9b-0c1d2e3f4a5b</uuid>",
        "<name>bash</name>",
    ] {
        assert!(insp.contains(want), "virt-inspector output lacks {want}");
    }
    let gf = out("guestfish.txt");
    assert!(gf.contains("st_size: 9\n"));
    assert!(gf.contains("touch: read-only appliance: Read-only file system"));
    assert!(out("df.txt").contains("disk.img:/dev/sda1"));
    assert!(out("cat.txt").contains("ID=debian"));
    let win = out("inspector-win.txt");
    for want in [
        "<windows_current_control_set>ControlSet001</windows_current_control_set>",
        "<drive_mapping name=\"C\">/dev/sda1</drive_mapping>",
        "<display_name>7-Zip 23.01 (x64)</display_name>",
        "<publisher>Igor Pavlov</publisher>",
    ] {
        assert!(
            win.contains(want),
            "Windows virt-inspector output lacks {want}"
        );
    }
}

#[test]
fn reply_values_of_each_shape() {
    let info = |n| ProcInfo::by_name(n).unwrap();
    let cases: Vec<(&str, Ret)> = vec![
        ("umount_all", Ret::Unit),
        ("exists", Ret::Bool(true)),
        ("inspect_get_major_version", Ret::Int(12)),
        ("filesize", Ret::Int64(1 << 40)),
        ("vfs_type", Ret::String(b("ext4"))),
        ("list_devices", Ret::StringList(vec![b("/dev/sda")])),
        ("blkid", Ret::Hashtable(vec![(b("TYPE"), b("ext4"))])),
        (
            "statvfs",
            Ret::Struct(StructValue::Statvfs(Default::default())),
        ),
        (
            "readdir",
            Ret::StructList(StructList::Dirent(vec![Default::default()])),
        ),
        (
            "hivex_node_children",
            Ret::StructList(StructList::HivexNode(vec![Default::default()])),
        ),
        (
            "lvs_full",
            Ret::StructList(StructList::LvmLv(vec![Default::default()])),
        ),
        (
            "internal_list_rpm_applications",
            Ret::StructList(StructList::Application2(vec![Default::default()])),
        ),
        ("hivex_value_value", Ret::BufferOut(vec![1, 2, 3])),
    ];
    for (name, ret) in cases {
        let p = info(name);
        let f = encode_reply(p, 7, &ret).unwrap();
        let back = decode_reply(p, &f[4..]).unwrap();
        assert_eq!(back.result, Ok(ret), "{name}");
    }
    // A value of the wrong type is refused.
    assert!(encode_reply(info("exists"), 1, &Ret::Int(1)).is_err());
    assert!(
        encode_reply(
            info("readdir"),
            1,
            &Ret::StructList(StructList::Statns(vec![]))
        )
        .is_err()
    );
}

fn header(proc_nr: u32, bitmask: u64) -> Header {
    Header::call(proc_nr, 42, bitmask)
}

fn raw_call(h: &Header, args: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    h.encode(&mut e);
    let mut v = e.into_vec();
    v.extend_from_slice(args);
    v
}

#[test]
fn daemon_error_messages() {
    // Unknown procedure: a typed Unknown, answered with the daemon's message.
    let m = decode_call(&raw_call(&header(9999, 0), &[])).unwrap();
    assert_eq!(m.call, Call::Unknown(9999));
    assert_eq!(
        unknown_procedure_error(9999).message,
        b(
            "dispatch_incoming_message: unknown procedure number 9999, set LIBGUESTFS_PATH to point to the matching libguestfs appliance directory"
        )
    );
    assert_eq!(unknown_procedure_error(9999).errno, b(""));
    // Numbers libguestfs 1.48 skipped (4, 6, 15, ...) are unknown too.
    assert_eq!(
        decode_call(&raw_call(&header(4, 0), &[])).unwrap().call,
        Call::Unknown(4)
    );

    let err = |h: Header, args: &[u8]| match decode_call(&raw_call(&h, args)) {
        Err(DecodeError::Call { error, .. }) => error.to_string(),
        other => panic!("{other:?}"),
    };
    // Optional-argument bits: is_file has one optional argument (bit 0).
    let mut path = Encoder::new();
    path.string(b"/x").bool(false);
    assert_eq!(
        err(header(37, 2), path.as_slice()),
        "unknown option in optional arguments bitmask (this can happen if a program is compiled against a newer version of libguestfs, then run against an older version of the daemon)"
    );
    assert_eq!(
        err(header(7, 1), &[]),
        "header optargs_bitmask field must be passed as 0 for calls that don't take optional arguments"
    );
    // Arguments that do not decode (a string cut short).
    assert_eq!(
        err(header(37, 1), &path.as_slice()[..6]),
        "daemon failed to decode procedure arguments"
    );
    // The bitmask is checked before the arguments are decoded.
    assert!(err(header(37, 1 << 63), &[]).starts_with("unknown option"));
    // Header checks.
    let mut h = header(7, 0);
    h.prog = 1;
    assert_eq!(err(h, &[]), "wrong program (1)");
    let mut h = header(7, 0);
    h.vers = 3;
    assert_eq!(err(h, &[]), "wrong protocol version (3)");
    let mut h = header(7, 0);
    h.direction = 1;
    assert_eq!(err(h, &[]), "unexpected message direction (1)");
    let mut h = header(7, 0);
    h.status = 1;
    assert_eq!(err(h, &[]), "unexpected message status (1)");
    // No errno on any of these; EROFS for the read-only refusal.
    assert_eq!(read_only_error().errno, b("EROFS"));
    // A message shorter than a header is a stream error (the daemon exits).
    assert!(matches!(decode_call(&[0; 39]), Err(DecodeError::Frame(_))));
}

/// Every procedure of the table: a call built from its signature decodes back to the same
/// procedure (typed or generic) and re-encodes identically, with and without optional
/// arguments.
#[test]
fn every_procedure_round_trips() {
    use guestfs_proto::procs_types::{ArgKind, OptArgKind};
    assert_eq!(PROCEDURES.len(), 492);
    assert!(PROCEDURES.windows(2).all(|w| w[0].nr < w[1].nr));
    for p in PROCEDURES {
        for all_opts in [false, true] {
            let mut e = Encoder::new();
            for a in p.wire_args() {
                match a.kind {
                    ArgKind::String(_) => e.string(b"/dev/sda1"),
                    ArgKind::OptString => e.optional(Some(b"x"), |e, s| {
                        e.string(s);
                    }),
                    ArgKind::StringList(_) => e.string_list(&["a", "bc"]),
                    ArgKind::Bool => e.bool(true),
                    ArgKind::Int => e.i32(-5),
                    ArgKind::Int64 => e.i64(1 << 40),
                    ArgKind::BufferIn => e.opaque(b"buf"),
                };
            }
            for o in p.optargs {
                match (o.kind, all_opts) {
                    (OptArgKind::Bool, true) => e.bool(true),
                    (OptArgKind::Int, true) => e.i32(3),
                    (OptArgKind::Int64, true) => e.i64(-9),
                    (OptArgKind::String, true) => e.string(b"opt"),
                    (OptArgKind::StringList, true) => e.string_list(&["o"]),
                    (OptArgKind::Int64, false) => e.i64(0),
                    (OptArgKind::StringList, false) => e.u32(0),
                    (_, false) => e.u32(0),
                };
            }
            let mask = if all_opts { p.optargs_mask() } else { 0 };
            let raw = guestfs_proto::frame::encode_call(&Header::call(p.nr, 1, mask), e.as_slice());
            let m = decode_call(&raw[4..]).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(m.call.proc_nr(), p.nr, "{}", p.name);
            assert_eq!(m.call.optargs_bitmask(), mask, "{}", p.name);
            assert_eq!(
                matches!(m.call, Call::Other { .. }),
                !p.served,
                "{}",
                p.name
            );
            assert_eq!(encode_call(&m.call, 1), raw, "{}", p.name);
        }
    }
}

#[test]
fn table_facts() {
    let p = |n| ProcInfo::by_name(n).unwrap_or_else(|| panic!("no procedure {n}"));
    for (name, nr) in [
        ("ll", 5),
        ("list_devices", 7),
        ("list_partitions", 8),
        ("lvs", 11),
        ("is_file", 37),
        ("umount_all", 47),
        ("file", 49),
        ("statvfs", 54),
        ("download", 67),
        ("mount_ro", 73),
        ("readdir", 138),
        ("realpath", 163),
        ("vfs_type", 198),
        ("filesize", 218),
        ("vfs_label", 253),
        ("vfs_uuid", 254),
        ("internal_autosync", 282),
        ("blkid", 303),
        ("ls0", 347),
        ("hivex_open", 350),
        ("hivex_node_get_value", 358),
        ("statns", 421),
        ("list_filesystems", 476),
        ("hivex_value_string", 479),
        ("inspect_os", 480),
        ("inspect_get_roots", 481),
        ("inspect_get_windows_systemroot", 493),
        ("inspect_get_windows_software_hive", 494),
        ("inspect_get_windows_current_control_set", 496),
        ("inspect_get_mountpoints", 500),
        ("inspect_get_filesystems", 501),
        ("inspect_get_drive_mappings", 502),
        ("internal_list_rpm_applications", 510),
    ] {
        assert_eq!(p(name).nr, nr, "{name}");
        assert!(p(name).served, "{name}");
        assert!(!p(name).write_side, "{name}");
    }
    assert!(p("download").has_file_out() && p("ls0").has_file_out());
    assert!(p("upload").has_file_in() && p("upload").write_side);
    assert_eq!(p("lvs").optgroup, Some("lvm2"));
    assert_eq!(p("hivex_open").optgroup, Some("hivex"));
    for w in [
        "touch",
        "mkdir",
        "internal_write",
        "rm_rf",
        "mkfs",
        "part_init",
        "upload",
        "tar_in",
        "hivex_commit",
    ] {
        assert!(p(w).write_side, "{w}");
    }
}

//! A fake libguestfs daemon built on guestfs-proto, for recording what real libguestfs tools
//! send and checking that they accept what this crate encodes. `tools/fake-hv.py` (the
//! `LIBGUESTFS_HV` program) runs it in place of the appliance with the path of libguestfs's
//! channel socket:
//!
//! ```text
//! fake_guestfsd SOCKET LOGDIR
//! ```
//!
//! It connects to SOCKET, sends the launch flag and answers every call from a small fake
//! Debian 12 guest (one disk `/dev/sda`, one ext4 partition `/dev/sda1`, a handful of files).
//! With FAKE_GUESTFSD_GUEST=windows the guest is a Windows 10 one instead (ntfs, a SOFTWARE
//! hive with one installed program, answered through the hivex_* calls).
//! Every call frame is written raw to `LOGDIR/NNN-NAME.call` and every reply (with its chunk
//! stream, for FileOut) to `LOGDIR/NNN-NAME.reply`; `LOGDIR/calls.txt` gets one line per call
//! with the decoded call and the answer.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use guestfs_proto::call::{
    CallMessage, DecodeError, decode_call, need_root_error, read_only_error,
    unknown_procedure_error,
};
use guestfs_proto::frame::{self, Event, FrameDecoder, LAUNCH_FLAG, MessageError, Role};
use guestfs_proto::procs::{
    Call, Dirent, HivexNode, HivexValue, Statns, Statvfs, StructList, StructValue, Xattr,
};
use guestfs_proto::procs_types::ProcInfo;
use guestfs_proto::reply::{Ret, encode_file_out, encode_reply};
use guestfs_proto::xdr::Bytes;

/// A node of the fake guest's filesystem.
enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(&'static str),
}

struct Fake {
    fs: BTreeMap<&'static str, Node>,
    mounted: bool,
    /// FAKE_GUESTFSD_GUEST=windows: a Windows 10 guest with a tiny SOFTWARE hive.
    windows: bool,
    hive_open: bool,
}

/// The fake SOFTWARE hive: node handle -> (name, parent, children, values); value handle ->
/// (key, string).
const HIVE_NODES: &[(i64, &str, i64)] = &[
    (1, "ROOT", 0),
    (2, "Microsoft", 1),
    (3, "Windows", 2),
    (4, "CurrentVersion", 3),
    (5, "Uninstall", 4),
    (6, "7-Zip", 5),
];
const HIVE_VALUES: &[(i64, i64, &str, &str)] = &[
    (100, 6, "DisplayName", "7-Zip 23.01 (x64)"),
    (101, 6, "DisplayVersion", "23.01"),
    (102, 6, "Publisher", "Igor Pavlov"),
    (103, 6, "InstallLocation", "C:\\Program Files\\7-Zip\\"),
];

const DPKG_STATUS: &str = "Package: base-files
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: bash
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7163
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell

";

impl Fake {
    fn new() -> Self {
        let mut fs = BTreeMap::new();
        for d in [
            "/",
            "/etc",
            "/bin",
            "/usr",
            "/usr/bin",
            "/var",
            "/var/lib",
            "/var/lib/dpkg",
            "/root",
            "/home",
            "/tmp",
        ] {
            fs.insert(d, Node::Dir);
        }
        let files: &[(&'static str, &str)] = &[
            ("/etc/hostname", "fakehost\n"),
            ("/etc/debian_version", "12.5\n"),
            (
                "/etc/os-release",
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n",
            ),
            ("/etc/fstab", "/dev/sda1 / ext4 defaults 0 1\n"),
            ("/var/lib/dpkg/status", DPKG_STATUS),
            ("/usr/bin/ls", "\x7fELF fake"),
            ("/root/hello.txt", "hello from the fake guest\n"),
        ];
        for (p, c) in files {
            fs.insert(*p, Node::File(c.as_bytes().to_vec()));
        }
        fs.insert("/bin/sh", Node::Symlink("/usr/bin/ls"));
        let windows = std::env::var("FAKE_GUESTFSD_GUEST").is_ok_and(|g| g == "windows");
        if windows {
            for d in ["/Windows", "/Windows/System32", "/Windows/System32/config"] {
                fs.insert(d, Node::Dir);
            }
            for f in [
                "/Windows/System32/config/SOFTWARE",
                "/Windows/System32/config/SYSTEM",
            ] {
                fs.insert(f, Node::File(b"regf".to_vec()));
            }
        }
        Fake {
            fs,
            mounted: false,
            windows,
            hive_open: false,
        }
    }

    fn get(&self, p: &Bytes) -> Option<(&'static str, &Node)> {
        let s = p.to_str()?;
        let s = if s.len() > 1 {
            s.trim_end_matches('/')
        } else {
            s
        };
        self.fs.get_key_value(s).map(|(k, v)| (*k, v))
    }

    fn children(&self, dir: &str) -> Vec<&'static str> {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        self.fs
            .keys()
            .filter(|k| {
                k.len() > prefix.len() && k.starts_with(&prefix) && !k[prefix.len()..].contains('/')
            })
            .map(|k| &k[prefix.len()..])
            .collect()
    }

    fn stat(&self, path: &'static str, node: &Node) -> Statns {
        let (mode, size) = match node {
            Node::Dir => (0o040755, 4096),
            Node::File(c) => (0o100644, c.len() as i64),
            Node::Symlink(t) => (0o120777, t.len() as i64),
        };
        Statns {
            st_dev: 2049,
            st_ino: 1000 + self.fs.keys().position(|k| *k == path).unwrap_or(0) as i64,
            st_mode: mode,
            st_nlink: 1,
            st_blksize: 4096,
            st_size: size,
            st_blocks: (size + 511) / 512,
            st_atime_sec: 1_700_000_000,
            st_mtime_sec: 1_700_000_000,
            st_ctime_sec: 1_700_000_000,
            ..Default::default()
        }
    }
}

/// What to send back.
#[allow(clippy::large_enum_variant)] // one per call, short-lived
enum Answer {
    Ret(Ret),
    Err(MessageError),
    FileOut(Vec<u8>),
}

fn s(v: &str) -> Bytes {
    Bytes::from(v)
}

fn list(v: &[&str]) -> Ret {
    Ret::StringList(v.iter().map(|x| s(x)).collect())
}

fn enoent(what: &Bytes) -> Answer {
    Answer::Err(MessageError::new(
        "ENOENT",
        format!("{}: No such file or directory", what.0.escape_ascii()),
    ))
}

/// The Windows guest's answers where they differ from the Debian one.
fn answer_windows(fake: &mut Fake, call: &Call) -> Option<Answer> {
    use Answer::Ret as R;
    let st = |v: &str| Some(R(Ret::String(s(v))));
    let no_hive = || {
        Some(Answer::Err(MessageError::new(
            "",
            "hivex: no hive handle open: call hivex_open first",
        )))
    };
    match call {
        Call::VfsType { .. } => st("ntfs"),
        Call::Blkid { .. } => Some(R(Ret::Hashtable(vec![(s("TYPE"), s("ntfs"))]))),
        Call::ListFilesystems => Some(R(Ret::Hashtable(vec![(s("/dev/sda1"), s("ntfs"))]))),
        Call::InspectGetType { .. } | Call::InspectGetDistro { .. } => st("windows"),
        Call::InspectGetProductName { .. } => st("Windows 10 Pro"),
        Call::InspectGetProductVariant { .. } => st("Client"),
        Call::InspectGetMajorVersion { .. } => Some(R(Ret::Int(10))),
        Call::InspectGetMinorVersion { .. } => Some(R(Ret::Int(0))),
        Call::InspectGetHostname { .. } => st("WIN10"),
        Call::InspectGetPackageFormat { .. } | Call::InspectGetPackageManagement { .. } => {
            st("unknown")
        }
        Call::InspectGetWindowsSystemroot { .. } => st("/Windows"),
        Call::InspectGetWindowsCurrentControlSet { .. } => st("ControlSet001"),
        Call::InspectGetWindowsSoftwareHive { .. } => st("/Windows/System32/config/SOFTWARE"),
        Call::InspectGetWindowsSystemHive { .. } => st("/Windows/System32/config/SYSTEM"),
        Call::InspectGetDriveMappings { .. } => {
            Some(R(Ret::Hashtable(vec![(s("C"), s("/dev/sda1"))])))
        }
        Call::HivexOpen { filename, .. } => {
            if fake.get(filename).is_none() {
                return Some(enoent(filename));
            }
            fake.hive_open = true;
            Some(R(Ret::Unit))
        }
        Call::HivexClose => {
            fake.hive_open = false;
            Some(R(Ret::Unit))
        }
        _ if !fake.hive_open
            && ProcInfo::lookup(call.proc_nr()).is_some_and(|p| p.name.starts_with("hivex_")) =>
        {
            no_hive()
        }
        Call::HivexRoot => Some(R(Ret::Int64(1))),
        Call::HivexNodeName { nodeh } => HIVE_NODES
            .iter()
            .find(|n| n.0 == *nodeh)
            .map(|n| R(Ret::String(s(n.1)))),
        Call::HivexNodeParent { nodeh } => HIVE_NODES
            .iter()
            .find(|n| n.0 == *nodeh)
            .map(|n| R(Ret::Int64(n.2))),
        Call::HivexNodeGetChild { nodeh, name } => Some(R(Ret::Int64(
            HIVE_NODES
                .iter()
                .find(|n| n.2 == *nodeh && n.1.as_bytes().eq_ignore_ascii_case(&name.0))
                .map_or(0, |n| n.0),
        ))),
        Call::HivexNodeChildren { nodeh } => Some(R(Ret::StructList(StructList::HivexNode(
            HIVE_NODES
                .iter()
                .filter(|n| n.2 == *nodeh)
                .map(|n| HivexNode { hivex_node_h: n.0 })
                .collect(),
        )))),
        Call::HivexNodeValues { nodeh } => Some(R(Ret::StructList(StructList::HivexValue(
            HIVE_VALUES
                .iter()
                .filter(|v| v.1 == *nodeh)
                .map(|v| HivexValue { hivex_value_h: v.0 })
                .collect(),
        )))),
        Call::HivexNodeGetValue { nodeh, key } => Some(R(Ret::Int64(
            HIVE_VALUES
                .iter()
                .find(|v| v.1 == *nodeh && v.2.as_bytes().eq_ignore_ascii_case(&key.0))
                .map_or(0, |v| v.0),
        ))),
        Call::HivexValueKey { valueh } => HIVE_VALUES
            .iter()
            .find(|v| v.0 == *valueh)
            .map(|v| R(Ret::String(s(v.2)))),
        Call::HivexValueType { .. } => Some(R(Ret::Int64(1))), // REG_SZ
        Call::HivexValueString { valueh } | Call::HivexValueUtf8 { valueh } => HIVE_VALUES
            .iter()
            .find(|v| v.0 == *valueh)
            .map(|v| R(Ret::String(s(v.3)))),
        Call::HivexValueValue { valueh } => HIVE_VALUES.iter().find(|v| v.0 == *valueh).map(|v| {
            // REG_SZ: UTF-16LE with a terminating NUL.
            let mut b: Vec<u8> = v.3.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
            b.extend_from_slice(&[0, 0]);
            R(Ret::BufferOut(b))
        }),
        _ => None,
    }
}

fn answer(fake: &mut Fake, call: &Call) -> Answer {
    use Answer::Ret as R;
    let root = "/dev/sda1";
    let not_windows = |what: &str| {
        Answer::Err(MessageError::new(
            "",
            format!("not a Windows guest, or {what}"),
        ))
    };
    if fake.windows
        && let Some(a) = answer_windows(fake, call)
    {
        return a;
    }
    if let Some(info) = ProcInfo::lookup(call.proc_nr())
        && info.needs_root()
        && !fake.mounted
    {
        return Answer::Err(need_root_error(info));
    }
    match call {
        Call::ListDevices => R(list(&["/dev/sda"])),
        Call::ListPartitions => R(list(&[root])),
        Call::Lvs | Call::Vgs | Call::Pvs | Call::ListMdDevices | Call::ListDmDevices => {
            R(list(&[]))
        }
        Call::ListLdmVolumes | Call::ListLdmPartitions => R(list(&[])),
        Call::ListFilesystems => R(Ret::Hashtable(vec![(s(root), s("ext4"))])),
        Call::VfsType { .. } => R(Ret::String(s("ext4"))),
        Call::VfsLabel { .. } => R(Ret::String(s("rootfs"))),
        Call::VfsUuid { .. } => R(Ret::String(s("0f2b6a3c-1d2e-4f50-8a9b-0c1d2e3f4a5b"))),
        Call::Blkid { .. } => R(Ret::Hashtable(vec![
            (s("TYPE"), s("ext4")),
            (s("UUID"), s("0f2b6a3c-1d2e-4f50-8a9b-0c1d2e3f4a5b")),
        ])),
        Call::InternalFeatureAvailable { .. } => R(Ret::Int(0)),
        Call::InspectOs | Call::InspectGetRoots => R(list(&[root])),
        Call::InspectGetFormat { .. } => R(Ret::String(s("installed"))),
        Call::InspectGetType { .. } => R(Ret::String(s("linux"))),
        Call::InspectGetDistro { .. } => R(Ret::String(s("debian"))),
        Call::InspectGetPackageFormat { .. } => R(Ret::String(s("deb"))),
        Call::InspectGetPackageManagement { .. } => R(Ret::String(s("apt"))),
        Call::InspectGetProductName { .. } => R(Ret::String(s("Debian GNU/Linux 12 (bookworm)"))),
        Call::InspectGetProductVariant { .. } => R(Ret::String(s("unknown"))),
        Call::InspectGetMajorVersion { .. } => R(Ret::Int(12)),
        Call::InspectGetMinorVersion { .. } => R(Ret::Int(5)),
        Call::InspectGetArch { .. } => R(Ret::String(s("x86_64"))),
        Call::InspectGetHostname { .. } => R(Ret::String(s("fakehost"))),
        Call::InspectGetWindowsSystemroot { .. } => {
            not_windows("systemroot could not be determined")
        }
        Call::InspectGetWindowsSystemHive { .. } => not_windows("system hive not found"),
        Call::InspectGetWindowsSoftwareHive { .. } => not_windows("software hive not found"),
        Call::InspectGetWindowsCurrentControlSet { .. } => {
            not_windows("CurrentControlSet could not be determined")
        }
        Call::InspectIsLive { .. }
        | Call::InspectIsNetinst { .. }
        | Call::InspectIsMultipart { .. } => R(Ret::Bool(false)),
        Call::InspectGetMountpoints { .. } => R(Ret::Hashtable(vec![(s("/"), s(root))])),
        Call::InspectGetFilesystems { .. } => R(list(&[root])),
        Call::InspectGetDriveMappings { .. } => R(Ret::Hashtable(vec![])),
        Call::MountRo { .. } | Call::Mount { .. } | Call::MountOptions { .. } => {
            fake.mounted = true;
            R(Ret::Unit)
        }
        Call::UmountAll => {
            fake.mounted = false;
            R(Ret::Unit)
        }
        Call::InternalAutosync | Call::Sync | Call::PingDaemon => R(Ret::Unit),
        Call::Exists { path } => R(Ret::Bool(fake.get(path).is_some())),
        Call::IsFile { path, .. } => R(Ret::Bool(matches!(
            fake.get(path),
            Some((_, Node::File(_)))
        ))),
        Call::IsDir { path, .. } => R(Ret::Bool(matches!(fake.get(path), Some((_, Node::Dir))))),
        Call::IsSymlink { path } => R(Ret::Bool(matches!(
            fake.get(path),
            Some((_, Node::Symlink(_)))
        ))),
        Call::Realpath { path } => match fake.get(path) {
            Some((_, Node::Symlink(t))) => R(Ret::String(s(t))),
            Some((p, _)) => R(Ret::String(s(p))),
            None => enoent(path),
        },
        Call::Readlink { path } => match fake.get(path) {
            Some((_, Node::Symlink(t))) => R(Ret::String(s(t))),
            _ => Answer::Err(MessageError::new("EINVAL", "readlink: Invalid argument")),
        },
        Call::Filesize { file } => match fake.get(file) {
            Some((_, Node::File(c))) => R(Ret::Int64(c.len() as i64)),
            Some(_) => R(Ret::Int64(4096)),
            None => enoent(file),
        },
        Call::Statns { path } | Call::Lstatns { path } => match fake.get(path) {
            Some((p, n)) => R(Ret::Struct(StructValue::Statns(fake.stat(p, n)))),
            None => enoent(path),
        },
        Call::InternalLstatnslist { path, names } => {
            let mut v = Vec::new();
            for n in names {
                let full = if path.0 == b"/" {
                    format!("/{}", n.0.escape_ascii())
                } else {
                    format!("{}/{}", path.0.escape_ascii(), n.0.escape_ascii())
                };
                v.push(match fake.get(&s(&full)) {
                    Some((p, node)) => fake.stat(p, node),
                    None => Statns {
                        st_ino: -1,
                        ..Default::default()
                    },
                });
            }
            R(Ret::StructList(StructList::Statns(v)))
        }
        Call::InternalReadlinklist { names, .. } => {
            R(Ret::StringList(names.iter().map(|_| s("")).collect()))
        }
        // One header entry per name: empty attrname, attrval = how many entries follow.
        Call::InternalLxattrlist { names, .. } => R(Ret::StructList(StructList::Xattr(
            names
                .iter()
                .map(|_| Xattr {
                    attrname: s(""),
                    attrval: b"0".to_vec(),
                })
                .collect(),
        ))),
        Call::Lgetxattrs { .. } | Call::Getxattrs { .. } => {
            R(Ret::StructList(StructList::Xattr(vec![])))
        }
        Call::Statvfs { .. } => R(Ret::Struct(StructValue::Statvfs(Statvfs {
            bsize: 4096,
            frsize: 4096,
            blocks: 2560,
            bfree: 1000,
            bavail: 900,
            files: 640,
            ffree: 600,
            favail: 600,
            fsid: 1234,
            flag: 1,
            namemax: 255,
        }))),
        Call::File { path } => match fake.get(path) {
            Some((_, Node::Dir)) => R(Ret::String(s("directory"))),
            Some((_, Node::Symlink(t))) => R(Ret::String(s(&format!("symbolic link to {t}")))),
            Some((_, Node::File(c))) if c.starts_with(b"\x7fELF") => R(Ret::String(s(
                "ELF 64-bit LSB pie executable, x86-64, version 1 (SYSV), dynamically linked",
            ))),
            Some(_) => R(Ret::String(s("ASCII text"))),
            None => enoent(path),
        },
        Call::Download { remotefilename } => match fake.get(remotefilename) {
            Some((_, Node::File(c))) => Answer::FileOut(c.clone()),
            _ => enoent(remotefilename),
        },
        Call::Readdir { dir } => match fake.get(dir) {
            Some((p, Node::Dir)) => {
                let mut v = vec![
                    Dirent {
                        ino: 2,
                        ftyp: b'd',
                        name: s("."),
                    },
                    Dirent {
                        ino: 2,
                        ftyp: b'd',
                        name: s(".."),
                    },
                ];
                for c in fake.children(p) {
                    let full = if p == "/" {
                        format!("/{c}")
                    } else {
                        format!("{p}/{c}")
                    };
                    let ftyp = match fake.fs.get(full.as_str()) {
                        Some(Node::Dir) => b'd',
                        Some(Node::Symlink(_)) => b'l',
                        _ => b'r',
                    };
                    v.push(Dirent {
                        ino: 100,
                        ftyp,
                        name: s(c),
                    });
                }
                R(Ret::StructList(StructList::Dirent(v)))
            }
            _ => enoent(dir),
        },
        Call::Ls0 { dir } => match fake.get(dir) {
            Some((p, Node::Dir)) => {
                let mut out = Vec::new();
                for c in fake.children(p) {
                    out.extend_from_slice(c.as_bytes());
                    out.push(0);
                }
                Answer::FileOut(out)
            }
            _ => enoent(dir),
        },
        Call::Find0 { directory } => match fake.get(directory) {
            Some((p, Node::Dir)) => {
                let mut out = Vec::new();
                let prefix = if p == "/" {
                    "/".to_string()
                } else {
                    format!("{p}/")
                };
                for k in fake
                    .fs
                    .keys()
                    .filter(|k| k.len() > prefix.len() && k.starts_with(&prefix))
                {
                    out.extend_from_slice(&k.as_bytes()[prefix.len()..]);
                    out.push(0);
                }
                Answer::FileOut(out)
            }
            _ => enoent(directory),
        },
        Call::Ll { directory } => match fake.get(directory) {
            Some((p, Node::Dir)) => {
                let mut out = String::from("total 8\n");
                for c in fake.children(p) {
                    out.push_str(&format!("-rw-r--r-- 1 root root 10 Nov 14  2023 {c}\n"));
                }
                R(Ret::String(s(&out)))
            }
            _ => enoent(directory),
        },
        Call::CaseSensitivePath { path } => R(Ret::String(path.clone())),
        Call::Other { proc_info, .. } if proc_info.write_side => Answer::Err(read_only_error()),
        Call::Other { proc_info, .. } => Answer::Err(MessageError::new(
            "ENOTSUP",
            format!("{}: not supported by the fake daemon", proc_info.name),
        )),
        Call::Unknown(nr) => Answer::Err(unknown_procedure_error(*nr)),
        _ => Answer::Err(MessageError::new(
            "ENOTSUP",
            "not answered by the fake daemon".to_string(),
        )),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: fake_guestfsd SOCKET LOGDIR");
        std::process::exit(2);
    }
    let logdir = PathBuf::from(&args[2]);
    std::fs::create_dir_all(&logdir).expect("log dir");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logdir.join("calls.txt"))
        .expect("calls.txt");
    let mut sock = UnixStream::connect(&args[1]).expect("connect to libguestfs's socket");
    sock.write_all(&LAUNCH_FLAG.to_be_bytes())
        .expect("launch flag");
    let mut fake = Fake::new();
    let mut dec = FrameDecoder::new(Role::Appliance);
    let mut buf = vec![0u8; 65536];
    let mut n_call = 0u32;
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        dec.push(&buf[..n]);
        while let Some(ev) = dec.next_event() {
            let msg = match ev {
                Ok(Event::Frame(m)) => m,
                Ok(Event::Cancel) => continue,
                Ok(other) => {
                    writeln!(log, "unexpected event {other:?}").ok();
                    continue;
                }
                Err(e) => {
                    writeln!(log, "stream error {e}: giving up").ok();
                    return;
                }
            };
            n_call += 1;
            let (reply, name, line) = match decode_call(&msg) {
                Ok(CallMessage { header, call }) => {
                    let info = ProcInfo::lookup(header.proc_nr);
                    let name = info.map_or("unknown", |i| i.name);
                    let ans = match info {
                        Some(_) => answer(&mut fake, &call),
                        None => Answer::Err(unknown_procedure_error(header.proc_nr)),
                    };
                    let (reply, what) = match (ans, info) {
                        (Answer::Ret(r), Some(info)) => {
                            let what = format!("{r:?}");
                            (
                                encode_reply(info, header.serial, &r).expect("reply type"),
                                what,
                            )
                        }
                        (Answer::FileOut(d), Some(info)) => (
                            encode_file_out(info, header.serial, &d),
                            format!("FileOut {} bytes", d.len()),
                        ),
                        (Answer::Err(e), _) => (
                            frame::encode_error(header.proc_nr, header.serial, &e),
                            format!("ERROR {:?} {:?}", e.errno, e.message),
                        ),
                        (_, None) => unreachable!("unknown procedures get an error"),
                    };
                    (
                        reply,
                        name,
                        format!("{n_call:03} serial={} {call:?} => {what}", header.serial),
                    )
                }
                Err(e @ DecodeError::Call { .. }) => (
                    e.reply().expect("error reply"),
                    match &e {
                        DecodeError::Call { header, .. } => {
                            ProcInfo::lookup(header.proc_nr).map_or("unknown", |i| i.name)
                        }
                        _ => "unknown",
                    },
                    format!("{n_call:03} rejected: {e}"),
                ),
                Err(e) => {
                    writeln!(log, "{n_call:03} undecodable message: {e}: giving up").ok();
                    return;
                }
            };
            let mut raw = (msg.len() as u32).to_be_bytes().to_vec();
            raw.extend_from_slice(&msg);
            let rejected = if line.contains(" rejected: ") {
                "-rejected"
            } else {
                ""
            };
            std::fs::write(
                logdir.join(format!("{n_call:03}-{name}{rejected}.call")),
                &raw,
            )
            .ok();
            std::fs::write(
                logdir.join(format!("{n_call:03}-{name}{rejected}.reply")),
                &reply,
            )
            .ok();
            writeln!(log, "{line}").ok();
            log.flush().ok();
            if sock.write_all(&reply).is_err() {
                return;
            }
        }
    }
}

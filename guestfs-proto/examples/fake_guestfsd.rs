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
use guestfs_proto::procs::{Call, Dirent, Statns, Statvfs, StructList, StructValue, Xattr};
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
}

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
        Fake { fs, mounted: false }
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

fn answer(fake: &mut Fake, call: &Call) -> Answer {
    use Answer::Ret as R;
    let root = "/dev/sda1";
    let not_windows = |what: &str| {
        Answer::Err(MessageError::new(
            "",
            format!("not a Windows guest, or {what}"),
        ))
    };
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
            Some((p, n)) => R(Ret::Struct(Box::new(StructValue::Statns(fake.stat(p, n))))),
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
        Call::Statvfs { .. } => R(Ret::Struct(Box::new(StructValue::Statvfs(Statvfs {
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
        })))),
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

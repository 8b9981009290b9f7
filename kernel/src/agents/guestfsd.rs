//! libguestfs's daemon on `org.libguestfs.channel.0`: the agent that lets unmodified
//! libguestfs programs (virt-inspector, virt-cat, virt-df, guestfish ...) drive this kernel as
//! their appliance (`vmch libguestfs-appliance`).
//!
//! The wire format is `guestfs-proto` (libguestfs 1.48's XDR protocol); the answers come from
//! `vmchannel_inspect::guestfs::Daemon`, the same scan and inspection the vmchannel protocol
//! uses. When the host connects, the agent sends the launch flag; then each call frame gets
//! its reply. A `download` replies, then streams its chunks a few at a time (so other ports
//! keep moving, and the host's cancel flag stops it). Write-side procedures are refused with
//! a read-only error, procedures this appliance does not implement with a clear error, and
//! unknown procedure numbers with the daemon's own. A frame that cannot be decoded at all
//! resets the session, as libguestfs's daemon exits on one.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use guestfs_proto::call::{
    CallMessage, DecodeError, decode_call, need_root_error, read_only_error,
    unknown_procedure_error,
};
use guestfs_proto::frame::{
    self, Event, FrameDecoder, LAUNCH_FLAG, MAX_CHUNK_SIZE, MessageError, Role,
};
use guestfs_proto::procs::{
    Application2, Call, Dirent, HivexNode, HivexValue, Statns, Statvfs, StructList, StructValue,
    Xattr,
};
use guestfs_proto::procs_types::ProcInfo;
use guestfs_proto::reply::{Ret, encode_reply};
use guestfs_proto::xdr::Bytes;

use super::{AgentKind, HostLink, PortAgent};
use crate::rtc::WallTime;
use crate::virtio_console::ports::{Multiport, PortEvent, PortHandle};
use vmchannel_inspect::fs::FileSystem;
use vmchannel_inspect::fs::{FullStat, Time};
use vmchannel_inspect::guestfs::{Daemon, DaemonError};

/// libguestfs's channel.
pub const PORT_NAME: &str = "org.libguestfs.channel.0";
/// Stop reading calls while more than this much output waits for the host.
const OUT_HIGH: usize = 256 * 1024;
/// Bytes read from the port per step.
const READ_STEP: usize = 16 * 1024;
/// Download chunks produced per poll.
const CHUNKS_PER_POLL: usize = 32;
/// Produce download chunks only while less output than this waits (well under
/// [`OUT_HIGH`], so a streaming download never stops the agent reading the host's cancel).
const OUT_LOW: usize = 64 * 1024;

/// The agent's registration: one daemon (one disk scan) shared by successive connections,
/// each of which starts with nothing mounted.
pub fn kind(daemon: Rc<RefCell<Daemon>>, clock: Rc<dyn WallTime>) -> AgentKind {
    AgentKind {
        name: "guestfsd",
        pattern: PORT_NAME,
        start: Box::new(move |_| Box::new(Server::new(daemon.clone(), clock.clone()))),
    }
}

/// What a FileOut procedure sends: a file of the guest, or bytes made here (`ls0`, `find0`).
enum Source {
    File {
        fs: Rc<dyn FileSystem>,
        path: String,
    },
    Bytes(Vec<u8>),
}

/// A FileOut stream in progress: its source, where the next chunk starts, its size.
struct Download {
    source: Source,
    offset: u64,
    size: u64,
}

impl Download {
    fn bytes(data: Vec<u8>) -> Self {
        Self {
            size: data.len() as u64,
            source: Source::Bytes(data),
            offset: 0,
        }
    }

    /// Fills `buf` from the current offset; how many bytes.
    fn read(&self, buf: &mut [u8]) -> Result<usize, String> {
        match &self.source {
            Source::File { fs, path } => fs
                .read_at(path, self.offset, buf)
                .map_err(|e| format!("{path}: {e}")),
            Source::Bytes(data) => {
                let start = self.offset as usize;
                let n = buf.len().min(data.len().saturating_sub(start));
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
        }
    }
}

/// One connection's state.
pub struct Server {
    daemon: Rc<RefCell<Daemon>>,
    /// The wall clock (`ll` prints recent times differently from old ones).
    clock: Rc<dyn WallTime>,
    decoder: FrameDecoder,
    out: Vec<u8>,
    out_pos: usize,
    link: HostLink,
    download: Option<Download>,
    inbuf: Box<[u8]>,
}

/// What a procedure answers.
enum Answer {
    Ret(Box<Ret>),
    Err(MessageError),
    /// A FileOut procedure: the OK reply, then this file's chunks.
    Stream(Download),
}

fn text(b: &Bytes) -> Result<&str, MessageError> {
    core::str::from_utf8(&b.0)
        .map_err(|_| MessageError::new("EINVAL", "path or device name is not UTF-8"))
}

fn s(v: impl Into<String>) -> Bytes {
    Bytes(v.into().into_bytes())
}

fn strings(v: Vec<String>) -> Ret {
    Ret::StringList(v.into_iter().map(s).collect())
}

fn daemon_error(e: DaemonError) -> MessageError {
    MessageError::new(e.errno, e.message)
}

/// Optional groups whose read-side procedures this appliance answers (`lvs`, the hivex
/// calls); callers such as guestfish's `-i` ask before using them.
const AVAILABLE_GROUPS: [&str; 2] = ["lvm2", "hivex"];

/// `internal_feature_available`, as the daemon answers it: 0 for a group this appliance
/// serves, 1 for a group libguestfs knows that it does not, 2 for a name no procedure has.
fn feature_available(group: &str) -> i32 {
    if AVAILABLE_GROUPS.contains(&group) {
        0
    } else if guestfs_proto::procs::PROCEDURES
        .iter()
        .any(|p| p.optgroup == Some(group))
    {
        1
    } else {
        2
    }
}

/// (name, value) pairs as libguestfs's xattr list.
fn xattrs(list: Vec<(String, Vec<u8>)>) -> Answer {
    ok(Ret::StructList(StructList::Xattr(
        list.into_iter()
            .map(|(k, v)| Xattr {
                attrname: s(k),
                attrval: v,
            })
            .collect(),
    )))
}

/// stat(2) as libguestfs's `statns` struct.
fn statns(dev: u64, st: &FullStat) -> Statns {
    Statns {
        st_dev: dev as i64,
        st_ino: st.ino as i64,
        st_mode: st.mode as i64,
        st_nlink: st.nlink as i64,
        st_uid: st.uid as i64,
        st_gid: st.gid as i64,
        st_rdev: st.rdev as i64,
        st_size: st.size as i64,
        st_blksize: st.blksize as i64,
        st_blocks: st.blocks as i64,
        st_atime_sec: st.atime.sec,
        st_atime_nsec: st.atime.nsec as i64,
        st_mtime_sec: st.mtime.sec,
        st_mtime_nsec: st.mtime.nsec as i64,
        st_ctime_sec: st.ctime.sec,
        st_ctime_nsec: st.ctime.nsec as i64,
        ..Statns::default()
    }
}

/// libguestfs's answer for an inspection field that is not known.
fn or_unknown(v: &Option<String>) -> Ret {
    Ret::String(s(v.clone().unwrap_or_else(|| String::from("unknown"))))
}

impl Server {
    /// A server with no host connected yet.
    pub fn new(daemon: Rc<RefCell<Daemon>>, clock: Rc<dyn WallTime>) -> Self {
        Self {
            daemon,
            clock,
            decoder: FrameDecoder::new(Role::Appliance),
            out: Vec::new(),
            out_pos: 0,
            link: HostLink::default(),
            download: None,
            inbuf: vec![0u8; READ_STEP].into_boxed_slice(),
        }
    }

    fn reset(&mut self) {
        self.decoder.reset();
        self.out.clear();
        self.out_pos = 0;
        self.download = None;
        self.daemon.borrow_mut().umount_all();
    }

    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Answers one call message.
    fn call(&mut self, msg: &[u8]) -> Result<(), ()> {
        let CallMessage { header, call } = match decode_call(msg) {
            Ok(m) => m,
            Err(e @ DecodeError::Call { .. }) => {
                if let Some(reply) = e.reply() {
                    self.out.extend_from_slice(&reply);
                }
                return Ok(());
            }
            Err(DecodeError::Frame(e)) => {
                log::warn!("guestfsd: undecodable message ({e}): resetting the session");
                return Err(());
            }
        };
        let Some(info) = ProcInfo::lookup(header.proc_nr) else {
            let e = unknown_procedure_error(header.proc_nr);
            self.out
                .extend_from_slice(&frame::encode_error(header.proc_nr, header.serial, &e));
            return Ok(());
        };
        let answer = if info.write_side {
            Answer::Err(read_only_error())
        } else if info.needs_root() && self.daemon.borrow().mounts().is_empty() {
            Answer::Err(need_root_error(info))
        } else {
            answer(&mut self.daemon.borrow_mut(), info, &call, &*self.clock)
        };
        let bytes = match answer {
            Answer::Ret(ret) => encode_reply(info, header.serial, &ret).unwrap_or_else(|e| {
                let e = MessageError::new("EIO", format!("{}: {e}", info.name));
                frame::encode_error(header.proc_nr, header.serial, &e)
            }),
            Answer::Stream(d) => {
                self.download = Some(d);
                frame::encode_reply(header.proc_nr, header.serial, &[])
            }
            Answer::Err(e) => frame::encode_error(header.proc_nr, header.serial, &e),
        };
        self.out.extend_from_slice(&bytes);
        Ok(())
    }

    /// Produces the next chunks of a download; the end chunk when done, or a cancel chunk
    /// after an error (the host then reports the transfer failed).
    fn stream(&mut self) {
        let Some(d) = self.download.as_mut() else {
            return;
        };
        let mut buf = vec![0u8; MAX_CHUNK_SIZE as usize];
        for _ in 0..CHUNKS_PER_POLL {
            // Keep the output short, so that input is still read each poll and a cancel from
            // the host stops the stream early.
            if self.out.len() - self.out_pos >= OUT_LOW {
                return;
            }
            if d.offset >= d.size {
                self.out.extend_from_slice(&frame::encode_chunk(false, &[]));
                self.download = None;
                return;
            }
            let want = ((d.size - d.offset) as usize).min(buf.len());
            match d.read(&mut buf[..want]) {
                Ok(0) => {
                    // The file shrank under us (it cannot on a read-only disk, but the reader
                    // may stop early on a corrupt one): end here.
                    d.size = d.offset;
                }
                Ok(n) => {
                    self.out
                        .extend_from_slice(&frame::encode_chunk(false, &buf[..n]));
                    d.offset += n as u64;
                }
                Err(e) => {
                    log::warn!("guestfsd: download of {e}");
                    self.out.extend_from_slice(&frame::encode_chunk(true, &[]));
                    self.download = None;
                    return;
                }
            }
        }
    }
}

/// The daemon's answer to `call`.
fn answer(d: &mut Daemon, info: &ProcInfo, call: &Call, clock: &dyn WallTime) -> Answer {
    match try_answer(d, call, clock) {
        Ok(Some(a)) => a,
        Ok(None) => Answer::Err(MessageError::new(
            "ENOTSUP",
            format!("{}: not supported by the vmchannel appliance", info.name),
        )),
        Err(e) => Answer::Err(e),
    }
}

/// A value answer.
fn ok(r: Ret) -> Answer {
    Answer::Ret(Box::new(r))
}

fn try_answer(
    d: &mut Daemon,
    call: &Call,
    clock: &dyn WallTime,
) -> Result<Option<Answer>, MessageError> {
    let de = daemon_error;
    Ok(Some(match call {
        Call::ListDevices => ok(strings(d.list_devices())),
        Call::ListPartitions => ok(strings(d.list_partitions())),
        Call::Lvs => ok(strings(d.lvs())),
        Call::ListFilesystems => ok(Ret::Hashtable(
            d.list_filesystems()
                .into_iter()
                .map(|(dev, t)| (s(dev), s(t)))
                .collect(),
        )),
        Call::Blkid { device } => ok(Ret::Hashtable(
            d.blkid(text(device)?)
                .map_err(de)?
                .into_iter()
                .map(|(k, v)| (s(k), s(v)))
                .collect(),
        )),
        Call::VfsType { mountable } => {
            ok(Ret::String(s(d.vfs_type(text(mountable)?).map_err(de)?)))
        }
        Call::VfsLabel { mountable } => {
            ok(Ret::String(s(d.vfs_label(text(mountable)?).map_err(de)?)))
        }
        Call::VfsUuid { mountable } => {
            ok(Ret::String(s(d.vfs_uuid(text(mountable)?).map_err(de)?)))
        }
        Call::InspectOs => ok(strings(d.inspect_os())),
        Call::InspectGetRoots => ok(strings(d.inspect_get_roots())),
        Call::InspectGetType { root } => ok(Ret::String(s(d
            .os(text(root)?)
            .map_err(de)?
            .os_type
            .clone()))),
        Call::InspectGetDistro { root } => ok(or_unknown(&d.os(text(root)?).map_err(de)?.distro)),
        Call::InspectGetProductName { root } => {
            ok(or_unknown(&d.os(text(root)?).map_err(de)?.product_name))
        }
        Call::InspectGetProductVariant { root } => {
            ok(or_unknown(&d.os(text(root)?).map_err(de)?.product_variant))
        }
        Call::InspectGetArch { root } => ok(or_unknown(&d.os(text(root)?).map_err(de)?.arch)),
        Call::InspectGetHostname { root } => {
            ok(or_unknown(&d.os(text(root)?).map_err(de)?.hostname))
        }
        Call::InspectGetPackageFormat { root } => {
            ok(or_unknown(&d.os(text(root)?).map_err(de)?.package_format))
        }
        Call::InspectGetPackageManagement { root } => ok(or_unknown(
            &d.os(text(root)?).map_err(de)?.package_management,
        )),
        Call::InspectGetMajorVersion { root } => ok(Ret::Int(
            d.os(text(root)?).map_err(de)?.major_version as i32,
        )),
        Call::InspectGetMinorVersion { root } => ok(Ret::Int(
            d.os(text(root)?).map_err(de)?.minor_version as i32,
        )),
        Call::InspectGetFormat { root } => {
            d.os(text(root)?).map_err(de)?;
            ok(Ret::String(s("installed")))
        }
        Call::InspectIsLive { root }
        | Call::InspectIsNetinst { root }
        | Call::InspectIsMultipart { root } => {
            d.os(text(root)?).map_err(de)?;
            ok(Ret::Bool(false))
        }
        Call::InspectGetMountpoints { root } => ok(Ret::Hashtable(
            d.os(text(root)?)
                .map_err(de)?
                .mountpoints
                .iter()
                .map(|(dev, mp)| (s(mp.clone()), s(dev.clone())))
                .collect(),
        )),
        Call::InspectGetFilesystems { root } => ok(Ret::StringList(
            d.os(text(root)?)
                .map_err(de)?
                .filesystems
                .iter()
                .map(|f| s(f.device.clone()))
                .collect(),
        )),
        Call::InspectGetDriveMappings { root } => ok(Ret::Hashtable(
            d.os(text(root)?)
                .map_err(de)?
                .drive_mappings
                .iter()
                .map(|(letter, dev)| (s(letter.clone()), s(dev.clone())))
                .collect(),
        )),
        Call::InspectGetWindowsSystemroot { root } => {
            match d.os(text(root)?).map_err(de)?.windows_systemroot.clone() {
                Some(r) => ok(Ret::String(s(r))),
                None => return Err(not_windows("systemroot could not be determined")),
            }
        }
        Call::InspectGetWindowsCurrentControlSet { root } => {
            match d
                .os(text(root)?)
                .map_err(de)?
                .windows_current_control_set
                .clone()
            {
                Some(r) => ok(Ret::String(s(r))),
                None => return Err(not_windows("CurrentControlSet could not be determined")),
            }
        }
        Call::MountRo {
            mountable,
            mountpoint,
        } => {
            d.mount_ro(text(mountable)?, text(mountpoint)?)
                .map_err(de)?;
            ok(Ret::Unit)
        }
        Call::UmountAll => {
            d.umount_all();
            ok(Ret::Unit)
        }
        Call::InternalAutosync => ok(Ret::Unit),
        Call::IsFile {
            path,
            followsymlinks,
        } => ok(Ret::Bool(
            d.is_file(text(path)?, followsymlinks.unwrap_or(false))
                .map_err(de)?,
        )),
        Call::IsDir {
            path,
            followsymlinks,
        } => ok(Ret::Bool(
            d.is_dir(text(path)?, followsymlinks.unwrap_or(false))
                .map_err(de)?,
        )),
        Call::IsSymlink { path } => ok(Ret::Bool(d.is_symlink(text(path)?).map_err(de)?)),
        Call::Readlink { path } => ok(Ret::String(s(d.readlink(text(path)?).map_err(de)?))),
        Call::Exists { path } => ok(Ret::Bool(d.exists(text(path)?).map_err(de)?)),
        Call::Filesize { file } => ok(Ret::Int64(d.filesize(text(file)?).map_err(de)?)),
        Call::Realpath { path } => ok(Ret::String(s(d.realpath(text(path)?).map_err(de)?))),
        Call::File { path } => ok(Ret::String(s(d.file(text(path)?).map_err(de)?))),
        Call::Statvfs { path } => {
            let u = d.statvfs(text(path)?).map_err(de)?;
            let fsid = d.fsid(text(path)?).map_err(de)?;
            ok(Ret::Struct(StructValue::Statvfs(Statvfs {
                bsize: u.block_size as i64,
                frsize: u.block_size as i64,
                blocks: u.blocks as i64,
                bfree: u.blocks_free as i64,
                bavail: u.blocks_available as i64,
                files: u.inodes as i64,
                ffree: u.inodes_free as i64,
                favail: u.inodes_free as i64,
                fsid: fsid as i64,
                // ST_RDONLY | ST_RELATIME, what Linux gives for the stock daemon's `mount -o
                // ro`.
                flag: 4097,
                namemax: 255,
            })))
        }
        Call::Statns { path } => {
            let (dev, st) = d.statns(text(path)?, true).map_err(de)?;
            ok(Ret::Struct(StructValue::Statns(statns(dev, &st))))
        }
        Call::Lstatns { path } => {
            let (dev, st) = d.statns(text(path)?, false).map_err(de)?;
            ok(Ret::Struct(StructValue::Statns(statns(dev, &st))))
        }
        Call::InternalLstatnslist { path, names } => {
            let names = names.iter().map(text).collect::<Result<Vec<_>, _>>()?;
            let list = d.lstatnslist(text(path)?, &names).map_err(de)?;
            ok(Ret::StructList(StructList::Statns(
                list.into_iter()
                    .map(|e| match e {
                        Some((dev, st)) => statns(dev, &st),
                        None => Statns {
                            st_ino: -1,
                            ..Statns::default()
                        },
                    })
                    .collect(),
            )))
        }
        Call::InternalLxattrlist { path, names } => {
            let names = names.iter().map(text).collect::<Result<Vec<_>, _>>()?;
            xattrs(d.lxattrlist(text(path)?, &names).map_err(de)?)
        }
        Call::Lgetxattrs { path } | Call::Getxattrs { path } => {
            let follow = matches!(call, Call::Getxattrs { .. });
            xattrs(d.getxattrs(text(path)?, follow).map_err(de)?)
        }
        Call::InternalFeatureAvailable { group } => ok(Ret::Int(feature_available(text(group)?))),
        Call::Ll { directory } => {
            // Without a clock every time is printed as an old one (with its year).
            let now = clock.unix_ns().map_or(
                Time {
                    sec: i64::MIN / 2,
                    nsec: 0,
                },
                |ns| Time {
                    sec: ns.div_euclid(1_000_000_000),
                    nsec: ns.rem_euclid(1_000_000_000) as u32,
                },
            );
            ok(Ret::String(s(d.ll(text(directory)?, now).map_err(de)?)))
        }
        Call::Readdir { dir } => ok(Ret::StructList(StructList::Dirent(
            d.readdir(text(dir)?)
                .map_err(de)?
                .into_iter()
                .map(|e| Dirent {
                    ino: e.ino,
                    ftyp: e.ftyp,
                    name: s(e.name),
                })
                .collect(),
        ))),
        Call::Download { remotefilename } => {
            let (fs, path, size) = d.open(text(remotefilename)?).map_err(de)?;
            Answer::Stream(Download {
                source: Source::File { fs, path },
                offset: 0,
                size,
            })
        }
        Call::InternalListRpmApplications => ok(Ret::StructList(StructList::Application2(
            d.rpm_applications()
                .map_err(de)?
                .into_iter()
                .map(|a| Application2 {
                    app2_name: s(a.name),
                    app2_display_name: s(a.display_name),
                    app2_epoch: a.epoch as i32,
                    app2_version: s(a.version),
                    app2_release: s(a.release),
                    app2_arch: s(a.arch),
                    app2_install_path: s(a.install_path),
                    app2_trans_path: s(""),
                    app2_publisher: s(a.publisher),
                    app2_url: s(a.url),
                    app2_source_package: s(a.source_package),
                    app2_summary: s(a.summary),
                    app2_description: s(a.description),
                    app2_spare1: s(""),
                    app2_spare2: s(""),
                    app2_spare3: s(""),
                    app2_spare4: s(""),
                })
                .collect(),
        ))),
        Call::InspectGetWindowsSoftwareHive { root } => ok(Ret::String(s(d
            .windows_hive(text(root)?, "SOFTWARE")
            .map_err(de)?))),
        Call::InspectGetWindowsSystemHive { root } => ok(Ret::String(s(d
            .windows_hive(text(root)?, "SYSTEM")
            .map_err(de)?))),
        Call::HivexOpen { filename, .. } => {
            d.hivex_open(text(filename)?).map_err(de)?;
            ok(Ret::Unit)
        }
        Call::HivexClose => {
            d.hivex_close().map_err(de)?;
            ok(Ret::Unit)
        }
        Call::HivexRoot => ok(Ret::Int64(d.hivex_root().map_err(de)?)),
        Call::HivexNodeName { nodeh } => {
            ok(Ret::String(s(d.hivex_node_name(*nodeh).map_err(de)?)))
        }
        Call::HivexNodeChildren { nodeh } => ok(Ret::StructList(StructList::HivexNode(
            d.hivex_node_children(*nodeh)
                .map_err(de)?
                .into_iter()
                .map(|h| HivexNode { hivex_node_h: h })
                .collect(),
        ))),
        Call::HivexNodeGetChild { nodeh, name } => ok(Ret::Int64(
            d.hivex_node_get_child(*nodeh, text(name)?).map_err(de)?,
        )),
        Call::HivexNodeParent { nodeh } => ok(Ret::Int64(d.hivex_node_parent(*nodeh).map_err(de)?)),
        Call::HivexNodeValues { nodeh } => ok(Ret::StructList(StructList::HivexValue(
            d.hivex_node_values(*nodeh)
                .map_err(de)?
                .into_iter()
                .map(|h| HivexValue { hivex_value_h: h })
                .collect(),
        ))),
        Call::HivexNodeGetValue { nodeh, key } => ok(Ret::Int64(
            d.hivex_node_get_value(*nodeh, text(key)?).map_err(de)?,
        )),
        Call::HivexValueKey { valueh } => {
            ok(Ret::String(s(d.hivex_value_key(*valueh).map_err(de)?)))
        }
        Call::HivexValueType { valueh } => ok(Ret::Int64(d.hivex_value_type(*valueh).map_err(de)?)),
        Call::HivexValueValue { valueh } => {
            ok(Ret::BufferOut(d.hivex_value_value(*valueh).map_err(de)?))
        }
        Call::HivexValueString { valueh } | Call::HivexValueUtf8 { valueh } => {
            ok(Ret::String(s(d.hivex_value_string(*valueh).map_err(de)?)))
        }
        Call::Ls0 { dir } => Answer::Stream(Download::bytes(d.ls0(text(dir)?).map_err(de)?)),
        Call::Find0 { directory } => {
            Answer::Stream(Download::bytes(d.find0(text(directory)?).map_err(de)?))
        }
        _ => return Ok(None),
    }))
}

/// libguestfs's error for a Windows-only getter on another OS.
fn not_windows(what: &str) -> MessageError {
    MessageError::new("", format!("not a Windows guest, or {what}"))
}

impl PortAgent for Server {
    fn event(&mut self, event: &PortEvent) {
        if self.link.on_event(event) {
            self.reset();
        }
    }

    fn poll(&mut self, ports: &mut Multiport, port: PortHandle) -> bool {
        let mut progress = false;
        if let Some(connected) = self.link.sync(ports, port) {
            self.reset();
            if connected {
                // libguestfs waits for this before its first call.
                self.out.extend_from_slice(&LAUNCH_FLAG.to_be_bytes());
            }
            progress = true;
        }
        if !self.link.connected() {
            return progress;
        }
        // Output first: the host reads replies before it sends more calls.
        if self.pending() > 0 {
            match ports.write(port, &self.out[self.out_pos..]) {
                Ok(n) if n > 0 => {
                    self.out_pos += n;
                    progress = true;
                    if self.out_pos == self.out.len() {
                        self.out.clear();
                        self.out_pos = 0;
                    }
                }
                _ => {}
            }
        }
        if self.download.is_some() && self.pending() < OUT_HIGH {
            self.stream();
            progress = true;
        }
        if self.pending() >= OUT_HIGH {
            return progress;
        }
        let n = ports.read(port, &mut self.inbuf).unwrap_or_default();
        if n > 0 {
            progress = true;
            let bytes = self.inbuf[..n].to_vec();
            self.decoder.push(&bytes);
        }
        while self.pending() < OUT_HIGH {
            let Some(event) = self.decoder.next_event() else {
                break;
            };
            progress = true;
            match event {
                Ok(Event::Frame(msg)) => {
                    if self.download.is_some() {
                        // A call while a download streams: libguestfs never does this; finish
                        // the stream first by stopping it.
                        self.download = None;
                        self.out.extend_from_slice(&frame::encode_chunk(true, &[]));
                    }
                    if self.call(&msg).is_err() {
                        self.reset();
                        break;
                    }
                }
                Ok(Event::Cancel) => {
                    if self.download.take().is_some() {
                        self.out.extend_from_slice(&frame::encode_chunk(true, &[]));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    log::warn!("guestfsd: {e}: resetting the session");
                    self.reset();
                    break;
                }
            }
        }
        progress
    }
}

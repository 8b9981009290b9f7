//! libguestfs's daemon procedures, answered from the same scan and inspection the appliance
//! protocol uses: the portable half of the libguestfs drop-in (issue 19). The wire format
//! (XDR, frames, FileOut chunks) is a separate layer; this one takes typed arguments and
//! returns typed values or a [`DaemonError`] carrying libguestfs's errno name.
//!
//! State, as in libguestfs's daemon: the disks (scanned on first use), the inspection (run
//! by `inspect_os`), and a mount table built by `mount_ro` and cleared by `umount_all`.
//! Paths name files in the mounted tree, `/` being what was mounted on `/`.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use vmchannel_proto::{FileKind, OsInfo, Stat};

use crate::appliance::DiskSet;
use crate::disk::BlockDevice;
use crate::fs::{FileSystem, FsError, FullStat, Time, join_path, makedev};
use crate::inspect::{self, OsTree};

pub mod blkid;
pub mod ls;

/// A procedure's failure, as libguestfs's daemon reports it: an errno name and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DaemonError {
    /// The errno name (`ENOENT`, `EINVAL` ...), or empty where the daemon sends none.
    pub errno: &'static str,
    /// The message.
    pub message: String,
}

fn err(errno: &'static str, message: impl Into<String>) -> DaemonError {
    DaemonError {
        errno,
        message: message.into(),
    }
}

/// What libguestfs's daemon says when `path` fails with `e` in procedure `proc`: the C
/// library's strerror text, as the daemon's reply_with_perror gives it.
fn fs_error(proc: &str, path: &str, e: &FsError) -> DaemonError {
    let (errno, text) = match e {
        FsError::NotFound(_) => ("ENOENT", "No such file or directory"),
        FsError::NotADirectory(_) => ("ENOTDIR", "Not a directory"),
        FsError::IsADirectory(_) => ("EISDIR", "Is a directory"),
        FsError::SymlinkLoop(_) => ("ELOOP", "Too many levels of symbolic links"),
        FsError::BadPath(_) => ("EINVAL", "Invalid argument"),
        FsError::TooLarge(_) => ("EFBIG", "File too large"),
        FsError::NotAFile(_) | FsError::Unsupported(_) => ("EINVAL", "Invalid argument"),
        FsError::Corrupt(_) | FsError::Io(_) => ("EIO", "Input/output error"),
    };
    err(errno, format!("{proc}: {path}: {text}"))
}

/// The daemon's check that a path argument is absolute.
fn absolute(proc: &str, path: &str) -> Result<(), DaemonError> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(err(
            "EINVAL",
            format!("{proc}: path must start with a / character"),
        ))
    }
}

/// file(1)'s description of a PNG from its first 29 bytes (signature and IHDR).
fn png_description(head: &[u8]) -> Option<String> {
    if head.len() < 29 || !head.starts_with(b"\x89PNG\r\n\x1a\n") || &head[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let (w, h, depth, color, interlace) = (be(16), be(20), head[24], head[25], head[28]);
    let color = match color {
        0 => format!("{depth}-bit grayscale"),
        2 => format!("{depth}-bit/color RGB"),
        3 => format!("{depth}-bit colormap"),
        4 => format!("{depth}-bit gray+alpha"),
        6 => format!("{depth}-bit/color RGBA"),
        _ => String::from("unknown color type"),
    };
    let interlace = if interlace == 0 {
        "non-interlaced"
    } else {
        "interlaced"
    };
    Some(format!("PNG image data, {w} x {h}, {color}, {interlace}"))
}

/// file(1)'s description of plain ASCII text (`whole`: `head` is the whole file).
fn ascii_description(head: &[u8], whole: bool) -> Option<String> {
    let text = |b: &u8| matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x20..=0x7e);
    if !head.iter().all(text) {
        return None;
    }
    Some(if whole && !head.ends_with(b"\n") {
        "ASCII text, with no line terminators".into()
    } else {
        "ASCII text".into()
    })
}

/// Most bytes a `find0` listing may take.
pub const FIND_MAX: usize = 64 << 20;
/// Deepest directory nesting `find0` descends.
pub const FIND_DEPTH: usize = 256;

/// The daemon's error for a `hivex_*` call with no hive open.
/// (disk index, partition number or 0) of an sd device name (`/dev/sdb3` is (1, 3)).
fn sd_index(device: &str) -> Option<(u64, u64)> {
    let rest = device.strip_prefix("/dev/sd")?;
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    if letters == 0 || letters > 3 {
        return None;
    }
    let mut disk = 0u64;
    for b in rest[..letters].bytes() {
        disk = disk * 26 + (b - b'a' + 1) as u64;
    }
    let digits = &rest[letters..];
    let part = if digits.is_empty() {
        0
    } else {
        digits.parse().ok().filter(|&p| p > 0)?
    };
    Some((disk - 1, part))
}

/// The block major of sd disk `disk` (0 is sda): 8 for sda to sdp, then 65 to 71 and 128
/// to 135, sixteen disks each (Linux's SCSI disk majors).
fn sd_major(disk: u64) -> Option<u64> {
    const MAJORS: [u64; 16] = [
        8, 65, 66, 67, 68, 69, 70, 71, 128, 129, 130, 131, 132, 133, 134, 135,
    ];
    MAJORS.get((disk / 16) as usize).copied()
}

fn no_hive() -> DaemonError {
    err("", "hivex function called without first calling hivex_open")
}

fn hive_error(e: crate::hive::HiveError) -> DaemonError {
    err("EINVAL", format!("hivex: {e}"))
}

/// Keeps `v` and returns its handle (an earlier copy of the same cell keeps its handle).
fn remember(values: &mut Vec<crate::hive::Value>, v: crate::hive::Value) -> i64 {
    let i = match values.iter().position(|x| x.offset() == v.offset()) {
        Some(i) => i,
        None => {
            values.push(v);
            values.len() - 1
        }
    };
    i as i64 + 1
}

/// One `readdir` entry (libguestfs's `guestfs_dirent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirent {
    /// Inode number (0 when the filesystem reader does not give one).
    pub ino: i64,
    /// `b` block, `c` char, `d` directory, `f` FIFO, `l` symlink, `r` regular, `s` socket,
    /// `u` unknown.
    pub ftyp: u8,
    /// The name.
    pub name: String,
}

/// The daemon's state over a set of disks.
pub struct Daemon {
    disks: Vec<Rc<dyn BlockDevice>>,
    scanned: Option<DiskSet>,
    inspected: Option<Vec<OsInfo>>,
    mounts: Option<OsTree>,
    hive: Option<HiveSession>,
}

/// The hive `hivex_open` opened: its bytes, and the values handed out so far (a value's
/// handle is its index here plus one; a node's is its cell offset).
struct HiveSession {
    data: Vec<u8>,
    values: Vec<crate::hive::Value>,
}

/// Largest hive file `hivex_open` takes (read whole into memory).
pub const HIVE_MAX: u64 = 256 << 20;

impl Daemon {
    /// A daemon over `disks` (`/dev/sda`, `/dev/sdb` ... in order).
    pub fn new(disks: Vec<Rc<dyn BlockDevice>>) -> Self {
        Self {
            disks,
            scanned: None,
            inspected: None,
            mounts: None,
            hive: None,
        }
    }

    fn scan(&mut self) -> &DiskSet {
        if self.scanned.is_none() {
            self.scanned = Some(DiskSet::scan(&self.disks));
        }
        self.scanned.as_ref().expect("scanned just above")
    }

    /// `list_devices`: the disks, `/dev/sda` ...
    pub fn list_devices(&mut self) -> Vec<String> {
        self.scan()
            .devices
            .iter()
            .filter(|d| d.partition.is_none())
            .map(|d| d.name.clone())
            .collect()
    }

    /// `list_partitions`: every partition of every disk, in order (extended ones included,
    /// as libguestfs lists what the kernel shows).
    pub fn list_partitions(&mut self) -> Vec<String> {
        self.scan()
            .devices
            .iter()
            .filter(|d| d.partition.is_some())
            .map(|d| d.name.clone())
            .collect()
    }

    /// `lvs`: the logical volumes, `/dev/VG/LV`.
    pub fn lvs(&mut self) -> Vec<String> {
        self.scan().logical_volumes.clone()
    }

    /// `list_filesystems`: (device, type) for every volume, `unknown` where nothing was
    /// recognised; LVM physical volumes are left out, as libguestfs leaves them.
    pub fn list_filesystems(&mut self) -> Vec<(String, String)> {
        self.scan()
            .volumes
            .iter()
            .filter(|v| v.info.fstype != "LVM2_member")
            .map(|v| (v.info.device.clone(), v.info.fstype.clone()))
            .collect()
    }

    fn volume_info(
        &mut self,
        device: &str,
    ) -> Result<vmchannel_proto::FilesystemInfo, DaemonError> {
        self.scan()
            .volume(device)
            .map(|v| v.info.clone())
            .ok_or_else(|| err("ENOENT", format!("{device}: No such file or directory")))
    }

    /// `vfs_type`: what blkid calls the filesystem on `device` (empty when nothing).
    pub fn vfs_type(&mut self, device: &str) -> Result<String, DaemonError> {
        let info = self.volume_info(device)?;
        Ok(if info.fstype == "unknown" {
            String::new()
        } else {
            info.fstype
        })
    }

    /// `vfs_label`: the label, empty when none.
    pub fn vfs_label(&mut self, device: &str) -> Result<String, DaemonError> {
        Ok(self.volume_info(device)?.label.unwrap_or_default())
    }

    /// `vfs_uuid`: the UUID, empty when none.
    pub fn vfs_uuid(&mut self, device: &str) -> Result<String, DaemonError> {
        Ok(self.volume_info(device)?.uuid.unwrap_or_default())
    }

    /// `inspect_os`: the roots found, in device order.
    pub fn inspect_os(&mut self) -> Vec<String> {
        let scan = self.scan();
        let found = inspect::inspect_disks(&scan.volumes, &scan.devices, false);
        let roots = found.iter().map(|o| o.root.clone()).collect();
        self.inspected = Some(found);
        roots
    }

    /// `inspect_get_roots`: the roots of the last `inspect_os`.
    pub fn inspect_get_roots(&self) -> Vec<String> {
        self.inspected
            .iter()
            .flatten()
            .map(|o| o.root.clone())
            .collect()
    }

    /// The inspection of `root`, for the `inspect_get_*` getters.
    pub fn os(&self, root: &str) -> Result<&OsInfo, DaemonError> {
        self.inspected
            .iter()
            .flatten()
            .find(|o| o.root == root)
            .ok_or_else(|| {
                err(
                    "EINVAL",
                    format!(
                        "{root}: root device not found: only call this function with a root \
                         device previously returned by guestfs_inspect_os"
                    ),
                )
            })
    }

    /// The installed applications of `root` (for the listing procedures).
    pub fn applications(
        &mut self,
        root: &str,
    ) -> Result<Vec<vmchannel_proto::Application>, DaemonError> {
        self.os(root)?;
        let scan = self.scan();
        let all = inspect::inspect_disks(&scan.volumes, &scan.devices, true);
        Ok(all
            .into_iter()
            .find(|o| o.root == root)
            .map(|o| o.applications)
            .unwrap_or_default())
    }

    /// `mount_ro`: mounts `device` read-only on `mountpoint`. `/` must be mounted first, and
    /// any other mountpoint must be a directory of the tree mounted so far.
    pub fn mount_ro(&mut self, device: &str, mountpoint: &str) -> Result<(), DaemonError> {
        let fail = |why: &str| {
            err(
                "EINVAL",
                format!("mount_ro: {device} on {mountpoint} (options: 'ro'): mount: {why}"),
            )
        };
        let fs = {
            let scan = self.scan();
            let volume = scan
                .volume(device)
                .ok_or_else(|| fail(&format!("{device}: special device does not exist.")))?;
            if let Some(e) = scan.open_error(device) {
                return Err(fail(&e.to_string()));
            }
            volume
                .fs
                .clone()
                .ok_or_else(|| fail("wrong fs type, bad option, bad superblock"))?
        };
        match (&mut self.mounts, mountpoint) {
            (None, "/") => {
                self.mounts = Some(OsTree::new(device, fs));
                Ok(())
            }
            (None, _) => Err(fail(&format!("{mountpoint}: mount point does not exist."))),
            (Some(tree), _) => {
                match tree.stat(mountpoint) {
                    Ok(st) if st.kind == FileKind::Directory => {}
                    _ => return Err(fail(&format!("{mountpoint}: mount point does not exist."))),
                }
                tree.add_mount(device, mountpoint, fs)
                    .map_err(|e| fail(&e.to_string()))
            }
        }
    }

    /// `umount_all`.
    pub fn umount_all(&mut self) {
        self.mounts = None;
        self.hive = None;
    }

    /// `mounts`: the mounted devices, in mount order.
    pub fn mounts(&self) -> Vec<String> {
        self.mounts
            .iter()
            .flat_map(|t| t.mounts().iter().map(|(d, _)| d.clone()))
            .collect()
    }

    fn tree(&self, proc: &str, path: &str) -> Result<&OsTree, DaemonError> {
        absolute(proc, path)?;
        self.mounts
            .as_ref()
            .ok_or_else(|| fs_error(proc, path, &FsError::NotFound(path.to_string())))
    }

    fn stat_of(&self, proc: &str, path: &str, follow: bool) -> Result<Stat, DaemonError> {
        let tree = self.tree(proc, path)?;
        let r = if follow {
            tree.stat(path)
        } else {
            tree.lstat(path)
        };
        r.map_err(|e| fs_error(proc, path, &e))
    }

    /// `is_file` (following links when `follow`).
    pub fn is_file(&self, path: &str, follow: bool) -> Result<bool, DaemonError> {
        absolute("is_file", path)?;
        Ok(self
            .stat_of("is_file", path, follow)
            .is_ok_and(|s| s.kind == FileKind::File))
    }

    /// `is_dir` (following links when `follow`).
    pub fn is_dir(&self, path: &str, follow: bool) -> Result<bool, DaemonError> {
        absolute("is_dir", path)?;
        Ok(self
            .stat_of("is_dir", path, follow)
            .is_ok_and(|s| s.kind == FileKind::Directory))
    }

    /// `is_symlink`.
    pub fn is_symlink(&self, path: &str) -> Result<bool, DaemonError> {
        absolute("is_symlink", path)?;
        Ok(self
            .stat_of("is_symlink", path, false)
            .is_ok_and(|s| s.kind == FileKind::Symlink))
    }

    /// `readlink`: a symlink's target as stored.
    pub fn readlink(&self, path: &str) -> Result<String, DaemonError> {
        let tree = self.tree("readlink", path)?;
        let st = tree
            .lstat(path)
            .map_err(|e| fs_error("readlink", path, &e))?;
        if st.kind != FileKind::Symlink {
            return Err(err("EINVAL", format!("readlink: {path}: Invalid argument")));
        }
        match st.link_target {
            Some(t) => Ok(t),
            None => tree
                .read_link(path)
                .map_err(|e| fs_error("readlink", path, &e)),
        }
    }

    /// `exists`.
    pub fn exists(&self, path: &str) -> Result<bool, DaemonError> {
        absolute("exists", path)?;
        Ok(self.stat_of("exists", path, true).is_ok())
    }

    /// `filesize`.
    pub fn filesize(&self, path: &str) -> Result<i64, DaemonError> {
        let st = self.stat_of("filesize", path, true)?;
        Ok(st.size as i64)
    }

    /// `realpath`: `path` with every symlink resolved.
    pub fn realpath(&self, path: &str) -> Result<String, DaemonError> {
        let tree = self.tree("realpath", path)?;
        tree.realpath(path)
            .map_err(|e| fs_error("realpath", path, &e))
    }

    /// `st_dev` of mounted device `device` as the stock appliance's kernel numbers it: sd
    /// disks on majors 8, 65-71 and 128-135 (16 disks each, 16 minors per disk), partitions
    /// past the 15th on the extended major 259 in the order the kernel adds them (the stock
    /// kernel itself does not always agree with that: its partitions are rescanned, and a
    /// minor from the first scan is not always free again, so /dev/sda16 was 259:0 in one
    /// recording and 259:1 in the next). 0 for
    /// other devices: LVs are device-mapper nodes on a dynamic major, btrfs subvolumes get
    /// anonymous numbers, which are not reproduced.
    pub fn st_dev(&self, device: &str) -> u64 {
        let Some((disk, part)) = sd_index(device) else {
            return 0;
        };
        let fstype = self
            .scanned
            .as_ref()
            .and_then(|s| s.volume(device))
            .map(|v| v.info.fstype.as_str());
        if fstype == Some("btrfs") {
            // Every btrfs subvolume has an anonymous device number of its own.
            return 0;
        }
        if part >= 16 {
            // Extended minors, handed out disk by disk, partition by partition.
            let mut minor = 0;
            for d in self.scanned.iter().flat_map(|s| s.devices.iter()) {
                match sd_index(&d.name) {
                    Some(x) if x == (disk, part) => return makedev(259, minor),
                    Some((_, p)) if p >= 16 => minor += 1,
                    _ => {}
                }
            }
            return 0;
        }
        match sd_major(disk) {
            Some(major) => makedev(major, (disk % 16) * 16 + part),
            None => 0,
        }
    }

    /// `statns` (`follow`) and `lstatns`: stat(2) of `path`.
    pub fn statns(&self, path: &str, follow: bool) -> Result<(u64, FullStat), DaemonError> {
        let proc = if follow { "statns" } else { "lstatns" };
        let tree = self.tree(proc, path)?;
        let (dev, st) = tree
            .full_stat_at(path, follow)
            .map_err(|e| fs_error(proc, path, &e))?;
        Ok((self.st_dev(dev), st))
    }

    /// `internal_lstatnslist`: lstat(2) of each of `names` in directory `dir`; `None` for a
    /// name that cannot be stat'ed (the daemon sends `st_ino` -1 for it).
    pub fn lstatnslist(
        &self,
        dir: &str,
        names: &[&str],
    ) -> Result<Vec<Option<(u64, FullStat)>>, DaemonError> {
        let tree = self.tree("internal_lstatnslist", dir)?;
        let st = tree
            .stat(dir)
            .map_err(|e| fs_error("internal_lstatnslist", dir, &e))?;
        if st.kind != FileKind::Directory {
            return Err(fs_error(
                "internal_lstatnslist",
                dir,
                &FsError::NotADirectory(dir.into()),
            ));
        }
        Ok(names
            .iter()
            .map(|n| {
                tree.full_stat_at(&join_path(dir, n), false)
                    .ok()
                    .map(|(dev, st)| (self.st_dev(dev), st))
            })
            .collect())
    }

    /// `internal_lxattrlist`: for each of `names` in `dir`, an entry named "" whose value is
    /// the count of its attributes as a NUL-terminated decimal (empty when they cannot be
    /// listed), then its attributes sorted by name (`user.WofCompressedData` left out, as
    /// the daemon hides it).
    pub fn lxattrlist(
        &self,
        dir: &str,
        names: &[&str],
    ) -> Result<Vec<(String, Vec<u8>)>, DaemonError> {
        let tree = self.tree("internal_lxattrlist", dir)?;
        let mut out = Vec::new();
        for n in names {
            let Ok(mut attrs) = tree.xattrs(&join_path(dir, n)) else {
                out.push((String::new(), Vec::new()));
                continue;
            };
            attrs.retain(|(k, _)| k != "user.WofCompressedData");
            attrs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let mut count = format!("{}", attrs.len()).into_bytes();
            count.push(0);
            out.push((String::new(), count));
            out.extend(attrs);
        }
        Ok(out)
    }

    /// `lgetxattrs` (`follow` false) and `getxattrs`: the extended attributes of `path`, in
    /// the order listxattr(2) gives them (`user.WofCompressedData` left out, as the daemon
    /// hides it).
    pub fn getxattrs(
        &self,
        path: &str,
        follow: bool,
    ) -> Result<Vec<(String, Vec<u8>)>, DaemonError> {
        let proc = if follow { "getxattrs" } else { "lgetxattrs" };
        let tree = self.tree(proc, path)?;
        let target = if follow {
            tree.realpath(path).map_err(|e| fs_error(proc, path, &e))?
        } else {
            String::from(path)
        };
        let mut attrs = tree.xattrs(&target).map_err(|e| fs_error(proc, path, &e))?;
        attrs.retain(|(k, _)| k != "user.WofCompressedData");
        Ok(attrs)
    }

    /// `ll`: `ls -la` of `path` as the stock daemon prints it at time `now` (see [`ls`]).
    /// A directory's `..` at the root of the tree is the appliance's own root there, which
    /// is not reproduced: the tree's root stands in for it.
    pub fn ll(&self, path: &str, now: Time) -> Result<String, DaemonError> {
        let tree = self.tree("ll", path)?;
        let real = tree.realpath(path).map_err(|e| fs_error("ll", path, &e))?;
        let ls_err = |e: FsError| err("", format!("ls: cannot access '/sysroot{real}': {e}"));
        let entry = |name: String, p: &str| -> Result<ls::Entry, DaemonError> {
            let (_, st) = tree.full_stat_at(p, false).map_err(ls_err)?;
            let link = if st.mode & 0o170000 == 0o120000 {
                tree.read_link(p).ok()
            } else {
                None
            };
            let attrs = tree.xattrs(p).unwrap_or_default();
            let has = |n: &str| attrs.iter().any(|(k, _)| k == n);
            let acl = st.mode & 0o170000 != 0o120000
                && (has("system.posix_acl_access") || has("system.posix_acl_default"));
            let context = attrs.iter().any(|(k, v)| {
                k == "security.selinux"
                    && v.as_slice() != b"unlabeled\0"
                    && v.as_slice() != b"unlabeled"
            });
            let indicator = if acl {
                Some('+')
            } else if context {
                Some('.')
            } else {
                None
            };
            Ok(ls::Entry {
                name,
                stat: st,
                link,
                indicator,
            })
        };
        let (_, st) = tree.full_stat_at(&real, false).map_err(ls_err)?;
        if st.mode & 0o170000 != 0o040000 {
            let e = entry(format!("/sysroot{real}"), &real)?;
            return Ok(ls::ls_la(alloc::vec![e], false, now));
        }
        let parent = match real.rfind('/') {
            Some(0) | None => String::from("/"),
            Some(i) => String::from(&real[..i]),
        };
        let mut entries = alloc::vec![entry(".".into(), &real)?, entry("..".into(), &parent)?];
        for e in tree.read_dir(&real).map_err(ls_err)? {
            let p = join_path(&real, &e.name);
            entries.push(entry(e.name, &p)?);
        }
        Ok(ls::ls_la(entries, true, now))
    }

    /// `readdir`: the entries of `dir`, `.` and `..` included, as readdir(3) gives them.
    pub fn readdir(&self, dir: &str) -> Result<Vec<Dirent>, DaemonError> {
        let tree = self.tree("readdir", dir)?;
        let st = tree.stat(dir).map_err(|e| fs_error("opendir", dir, &e))?;
        if st.kind != FileKind::Directory {
            return Err(fs_error(
                "opendir",
                dir,
                &FsError::NotADirectory(dir.into()),
            ));
        }
        let ftyp = |k: FileKind| match k {
            FileKind::File => b'r',
            FileKind::Directory => b'd',
            FileKind::Symlink => b'l',
            FileKind::CharDevice => b'c',
            FileKind::BlockDevice => b'b',
            FileKind::Fifo => b'f',
            FileKind::Socket => b's',
            FileKind::Unknown => b'u',
        };
        // Where the reader knows readdir's own order and inode numbers (ext2/3/4, XFS,
        // btrfs, NTFS), those.
        match tree.readdir_raw(dir) {
            Ok(entries) => {
                return Ok(entries
                    .into_iter()
                    .map(|e| Dirent {
                        ino: e.ino as i64,
                        ftyp: ftyp(e.kind),
                        name: e.name,
                    })
                    .collect());
            }
            Err(FsError::Unsupported(_)) => {}
            Err(e) => return Err(fs_error("readdir", dir, &e)),
        }
        // Elsewhere (vfat): on-disk order, `.` and `..` first, inode numbers 0.
        let entries = tree
            .read_dir(dir)
            .map_err(|e| fs_error("readdir", dir, &e))?;
        let mut out = Vec::with_capacity(entries.len() + 2);
        for name in [".", ".."] {
            out.push(Dirent {
                ino: 0,
                ftyp: b'd',
                name: name.into(),
            });
        }
        out.extend(entries.into_iter().map(|e| Dirent {
            ino: 0,
            ftyp: ftyp(e.stat.kind),
            name: e.name,
        }));
        Ok(out)
    }

    /// `ls0`: the names in `dir` (not `.` and `..`), each followed by a NUL, in readdir order.
    pub fn ls0(&self, dir: &str) -> Result<Vec<u8>, DaemonError> {
        let mut out = Vec::new();
        for e in self.readdir(dir)? {
            if e.name == "." || e.name == ".." {
                continue;
            }
            out.extend_from_slice(e.name.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    /// `find0`: every path below `dir`, relative to it with a leading `/` (as the daemon cuts
    /// `dir` off find(1)'s output), each followed by a NUL, in the order
    /// find(1) visits them (each directory's contents right after it, readdir order,
    /// symlinks not followed). At most [`FIND_MAX`] bytes, and [`FIND_DEPTH`] levels.
    pub fn find0(&self, dir: &str) -> Result<Vec<u8>, DaemonError> {
        let tree = self.tree("find0", dir)?;
        let st = tree.stat(dir).map_err(|e| fs_error("find0", dir, &e))?;
        if st.kind != FileKind::Directory {
            return Err(fs_error("find0", dir, &FsError::NotADirectory(dir.into())));
        }
        let base = dir.trim_end_matches('/');
        let mut out = Vec::new();
        // Per open directory: its path relative to `dir` and its entries, the next one last.
        let list = |rel: &str| -> Result<Vec<vmchannel_proto::DirEntry>, DaemonError> {
            let abs = format!("{base}{rel}");
            let mut entries = tree
                .read_dir(&abs)
                .map_err(|e| fs_error("find0", &abs, &e))?;
            entries.reverse();
            Ok(entries)
        };
        let mut stack: Vec<(String, Vec<vmchannel_proto::DirEntry>)> =
            alloc::vec![(String::new(), list("/")?)];
        while let Some((rel, entries)) = stack.last_mut() {
            let Some(e) = entries.pop() else {
                stack.pop();
                continue;
            };
            let child = format!("{rel}/{}", e.name);
            out.extend_from_slice(child.as_bytes());
            out.push(0);
            if out.len() > FIND_MAX {
                return Err(err("EFBIG", format!("find0: {dir}: listing too large")));
            }
            if e.stat.kind == FileKind::Directory && stack.len() < FIND_DEPTH {
                let entries = list(&child)?;
                stack.push((child, entries));
            }
        }
        Ok(out)
    }

    /// `inspect_get_windows_software_hive` / `..._system_hive`: the hive file's path in the
    /// OS's root filesystem, in its on-disk case.
    pub fn windows_hive(&self, root: &str, name: &str) -> Result<String, DaemonError> {
        let os = self.os(root)?;
        let systemroot = os.windows_systemroot.clone().ok_or_else(|| {
            err(
                "",
                format!(
                    "not a Windows guest, or {} hive not found",
                    name.to_ascii_lowercase()
                ),
            )
        })?;
        let volume = self
            .scanned
            .as_ref()
            .and_then(|s| s.volume(root))
            .and_then(|v| v.fs.clone())
            .ok_or_else(|| err("", format!("{root}: cannot read the root filesystem")))?;
        inspect::case_sensitive_path(&*volume, &format!("{systemroot}/system32/config/{name}"))
            .map_err(|_| {
                err(
                    "",
                    format!(
                        "not a Windows guest, or {} hive not found",
                        name.to_ascii_lowercase()
                    ),
                )
            })
    }

    /// `hivex_open`: opens the hive file `path` of the mounted tree (read whole, at most
    /// [`HIVE_MAX`] bytes), leniently as libguestfs's inspection asks (`unsafe`).
    pub fn hivex_open(&mut self, path: &str) -> Result<(), DaemonError> {
        let tree = self.tree("hivex_open", path)?;
        let data = tree
            .read_file(path, HIVE_MAX)
            .map_err(|e| fs_error("hivex_open", path, &e))?;
        crate::hive::Hive::open_lenient(&crate::store::Bytes(&data))
            .map_err(|e| err("EINVAL", format!("hivex_open: {path}: {e}")))?;
        self.hive = Some(HiveSession {
            data,
            values: Vec::new(),
        });
        Ok(())
    }

    /// `hivex_close`.
    pub fn hivex_close(&mut self) -> Result<(), DaemonError> {
        self.hive.take().map(|_| ()).ok_or_else(no_hive)
    }

    /// Runs `f` on the open hive.
    fn with_hive<T>(
        &mut self,
        f: impl FnOnce(
            &crate::hive::Hive<'_>,
            &mut Vec<crate::hive::Value>,
        ) -> Result<T, crate::hive::HiveError>,
    ) -> Result<T, DaemonError> {
        let session = self.hive.as_mut().ok_or_else(no_hive)?;
        let store = crate::store::Bytes(&session.data);
        let hive = crate::hive::Hive::open_lenient(&store).map_err(hive_error)?;
        f(&hive, &mut session.values).map_err(hive_error)
    }

    /// `hivex_root`.
    pub fn hivex_root(&mut self) -> Result<i64, DaemonError> {
        self.with_hive(|h, _| Ok(i64::from(h.root()?.offset())))
    }

    fn key(
        h: &crate::hive::Hive<'_>,
        node: i64,
    ) -> Result<crate::hive::Key, crate::hive::HiveError> {
        let offset = u32::try_from(node)
            .map_err(|_| crate::hive::HiveError::Corrupt(format!("node handle {node}")))?;
        h.key_at(offset)
    }

    /// `hivex_node_name`.
    pub fn hivex_node_name(&mut self, node: i64) -> Result<String, DaemonError> {
        self.with_hive(|h, _| h.key_name(&Self::key(h, node)?))
    }

    /// `hivex_node_children`.
    pub fn hivex_node_children(&mut self, node: i64) -> Result<Vec<i64>, DaemonError> {
        self.with_hive(|h, _| {
            Ok(h.children(&Self::key(h, node)?)?
                .iter()
                .map(|k| i64::from(k.offset()))
                .collect())
        })
    }

    /// `hivex_node_get_child`: the child's handle, 0 when there is none (names compare
    /// case-insensitively).
    pub fn hivex_node_get_child(&mut self, node: i64, name: &str) -> Result<i64, DaemonError> {
        self.with_hive(|h, _| {
            Ok(h.child(&Self::key(h, node)?, name)?
                .map_or(0, |k| i64::from(k.offset())))
        })
    }

    /// `hivex_node_parent`.
    pub fn hivex_node_parent(&mut self, node: i64) -> Result<i64, DaemonError> {
        self.with_hive(|h, _| Ok(i64::from(Self::key(h, node)?.parent_offset())))
    }

    /// `hivex_node_values`.
    pub fn hivex_node_values(&mut self, node: i64) -> Result<Vec<i64>, DaemonError> {
        self.with_hive(|h, values| {
            let found = h.values(&Self::key(h, node)?)?;
            Ok(found.into_iter().map(|v| remember(values, v)).collect())
        })
    }

    /// `hivex_node_get_value`: the value's handle, 0 when there is none.
    pub fn hivex_node_get_value(&mut self, node: i64, key: &str) -> Result<i64, DaemonError> {
        self.with_hive(|h, values| {
            Ok(h.value(&Self::key(h, node)?, key)?
                .map_or(0, |v| remember(values, v)))
        })
    }

    fn value(
        values: &[crate::hive::Value],
        handle: i64,
    ) -> Result<crate::hive::Value, crate::hive::HiveError> {
        usize::try_from(handle)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| values.get(i))
            .cloned()
            .ok_or_else(|| crate::hive::HiveError::Corrupt(format!("value handle {handle}")))
    }

    /// `hivex_value_key`: the value's name.
    pub fn hivex_value_key(&mut self, value: i64) -> Result<String, DaemonError> {
        self.with_hive(|_, values| Ok(Self::value(values, value)?.name))
    }

    /// `hivex_value_type`.
    pub fn hivex_value_type(&mut self, value: i64) -> Result<i64, DaemonError> {
        self.with_hive(|_, values| Ok(i64::from(Self::value(values, value)?.kind)))
    }

    /// `hivex_value_value`: the raw data.
    pub fn hivex_value_value(&mut self, value: i64) -> Result<Vec<u8>, DaemonError> {
        self.with_hive(|h, values| h.value_data(&Self::value(values, value)?))
    }

    /// `hivex_value_string` (and `hivex_value_utf8`): a string value as UTF-8.
    pub fn hivex_value_string(&mut self, value: i64) -> Result<String, DaemonError> {
        self.with_hive(|h, values| h.value_string(&Self::value(values, value)?))
    }

    /// `internal_list_rpm_applications`: the packages in the rpm database of what is mounted.
    pub fn rpm_applications(&self) -> Result<Vec<vmchannel_proto::Application>, DaemonError> {
        let tree = self.tree("internal_list_rpm_applications", "/")?;
        Ok(inspect::rpm_applications(tree))
    }

    /// `statvfs` of the filesystem holding `path`: (block size, blocks, free, available,
    /// inodes, free inodes).
    pub fn statvfs(&self, path: &str) -> Result<vmchannel_proto::Usage, DaemonError> {
        let tree = self.tree("statvfs", path)?;
        tree.usage_at(path)
            .map_err(|e| fs_error("statvfs", path, &e))
    }

    /// The `fsid` statvfs(3) gives for the filesystem holding `path`: the filesystem's own
    /// (ext4's, from its UUID), else the device number Linux uses for XFS and vfat, else 0.
    pub fn fsid(&self, path: &str) -> Result<u64, DaemonError> {
        let tree = self.tree("statvfs", path)?;
        let (dev, own) = tree
            .device_of(path)
            .map_err(|e| fs_error("statvfs", path, &e))?;
        Ok(own.unwrap_or_else(|| {
            let fstype = self
                .scanned
                .as_ref()
                .and_then(|s| s.volume(dev))
                .map(|v| v.info.fstype.as_str());
            if matches!(fstype, Some("xfs" | "vfat")) {
                self.st_dev(dev)
            } else {
                0
            }
        }))
    }

    /// `file`: what file(1) says `path` is, for the kinds libguestfs callers look at:
    /// special files by kind, empty files, and PNG images with their geometry (libguestfs's
    /// icon finder parses `PNG image data, W x H`); other contents are `data`.
    pub fn file(&self, path: &str) -> Result<String, DaemonError> {
        let st = self.stat_of("file", path, false)?;
        Ok(match st.kind {
            FileKind::Directory => "directory".into(),
            FileKind::Symlink => "symbolic link".into(),
            FileKind::CharDevice => "character special".into(),
            FileKind::BlockDevice => "block special".into(),
            FileKind::Fifo => "fifo (named pipe)".into(),
            FileKind::Socket => "socket".into(),
            FileKind::Unknown => "unknown".into(),
            FileKind::File if st.size == 0 => "empty".into(),
            FileKind::File => {
                let (fs, inner, _) = self.open(path)?;
                let mut head = alloc::vec![0u8; 4096];
                let n = fs
                    .read_at(&inner, 0, &mut head)
                    .map_err(|e| fs_error("file", path, &e))?;
                let head = &head[..n];
                png_description(head)
                    .or_else(|| ascii_description(head, n as u64 == st.size))
                    .unwrap_or_else(|| "data".into())
            }
        })
    }

    /// Opens `path` for `download`: the filesystem holding it, the path inside, its size.
    pub fn open(&self, path: &str) -> Result<(Rc<dyn FileSystem>, String, u64), DaemonError> {
        let tree = self.tree("download", path)?;
        let (fs, inner) = tree.locate(path).map_err(|e| fs_error("open", path, &e))?;
        let st = fs.stat(&inner).map_err(|e| fs_error("open", path, &e))?;
        match st.kind {
            FileKind::File => Ok((fs, inner, st.size)),
            FileKind::Directory => Err(fs_error("read", path, &FsError::IsADirectory(path.into()))),
            _ => Err(fs_error("open", path, &FsError::NotAFile(path.into()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG signature and IHDR chunk: `w` x `h`, bit depth, colour type, interlace.
    fn png(w: u32, h: u32, depth: u8, color: u8, interlace: u8) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[depth, color, 0, 0, interlace]);
        v
    }

    #[test]
    fn png_descriptions_as_file_gives_them() {
        assert_eq!(
            png_description(&png(48, 48, 8, 6, 0)).as_deref(),
            Some("PNG image data, 48 x 48, 8-bit/color RGBA, non-interlaced")
        );
        assert_eq!(
            png_description(&png(300, 200, 16, 2, 1)).as_deref(),
            Some("PNG image data, 300 x 200, 16-bit/color RGB, interlaced")
        );
        assert_eq!(
            png_description(&png(16, 16, 4, 3, 0)).as_deref(),
            Some("PNG image data, 16 x 16, 4-bit colormap, non-interlaced")
        );
        let mut short = png(48, 48, 8, 6, 0);
        short.truncate(28);
        assert_eq!(png_description(&short), None);
        let mut not_ihdr = png(48, 48, 8, 6, 0);
        not_ihdr[12] = b'X';
        assert_eq!(png_description(&not_ihdr), None);
    }

    #[test]
    fn ascii_text_and_its_line_terminators() {
        assert_eq!(
            ascii_description(b"host\n", true).as_deref(),
            Some("ASCII text")
        );
        assert_eq!(
            ascii_description(b"host", true).as_deref(),
            Some("ASCII text, with no line terminators")
        );
        // Only the head was read: its missing newline says nothing.
        assert_eq!(
            ascii_description(b"host", false).as_deref(),
            Some("ASCII text")
        );
        assert_eq!(ascii_description(b"\x7fELF", true), None);
        assert_eq!(ascii_description("h\u{e9}".as_bytes(), true), None);
    }
}

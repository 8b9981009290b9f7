//! /etc/fstab: parsing the lines and resolving each entry's device to one of the volumes
//! the appliance found, as libguestfs's `check_fstab` does.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::disk::lvm::mapper_of_path;
use crate::fs::{FileSystem, Volume};

use super::util::{self, disk_of, shell_unquote};

/// Most fstab lines looked at; the rest is ignored (hostile images).
pub(crate) const MAX_LINES: usize = 1000;
/// Longest fstab line considered; longer ones are skipped.
pub(crate) const MAX_LINE: usize = 4096;

/// One fstab line, with `\NNN` octal escapes decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub spec: String,
    pub file: String,
    pub vfstype: String,
    pub options: String,
}

/// What an entry's spec names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Device {
    /// One of the volumes (index into the slice given to [`resolve`]).
    Volume(usize),
    /// A `/dev/...` name that matches no volume: reported as written, not mountable.
    Unresolved(String),
}

/// An fstab entry that refers to a device, with that device resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub device: Device,
    /// The mount path, canonical (`//usr/` -> `/usr`), or as written when not absolute
    /// (`none`, `swap`).
    pub mountpoint: String,
    pub vfstype: String,
    pub options: String,
    /// The name libguestfs reports for this entry's mountable when it is not the volume's:
    /// a btrfs `subvol=/PATH` keeps its `/` (`btrfsvol:/dev/sda2//@/var`).
    pub name: Option<String>,
}

impl Resolved {
    /// The device name to report: the volume's, or the spec as written.
    pub fn device_name<'a>(&'a self, volumes: &'a [Volume]) -> &'a str {
        if let Some(n) = &self.name {
            return n;
        }
        match &self.device {
            Device::Volume(i) => volumes.get(*i).map_or("", |v| v.info.device.as_str()),
            Device::Unresolved(s) => s,
        }
    }

    /// Whether this is a swap entry.
    pub fn is_swap(&self) -> bool {
        self.vfstype == "swap"
    }

    /// Whether the entry names a mount path libguestfs reports as a mountpoint: absolute and
    /// not a pseudo filesystem tree or removable media.
    pub fn is_mountpoint(&self) -> bool {
        self.mountpoint.starts_with('/') && !self.is_swap()
    }

    /// Whether the entry can be mounted into the OS tree: a real filesystem (not swap, not a
    /// bind mount) on an absolute path. A btrfs entry's `subvol=`/`subvolid=` was resolved
    /// to its subvolume's volume by [`resolve`].
    pub fn is_mountable(&self) -> bool {
        let opts = || self.options.split(',');
        self.is_mountpoint()
            && self.mountpoint != "/"
            && !opts().any(|o| o == "bind" || o == "rbind")
    }
}

/// The entries of fstab text `data`: comments, blank and over-long lines skipped, lines with
/// fewer than three fields skipped, at most [`MAX_LINES`] lines looked at.
pub(crate) fn parse(data: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        if n >= MAX_LINES {
            log::warn!("inspect: /etc/fstab: more than {MAX_LINES} lines, rest ignored");
            break;
        }
        if line.len() > MAX_LINE {
            continue;
        }
        let mut fields = line
            .split(|&b| b == b' ' || b == b'\t' || b == b'\r')
            .filter(|f| !f.is_empty());
        let Some(spec) = fields.next() else { continue };
        if spec.starts_with(b"#") {
            continue;
        }
        let (Some(file), Some(vfstype)) = (fields.next(), fields.next()) else {
            continue;
        };
        let options = fields.next().unwrap_or(b"defaults");
        out.push(Entry {
            spec: unescape(spec),
            file: unescape(file),
            vfstype: unescape(vfstype),
            options: unescape(options),
        });
    }
    out
}

/// Reads and parses /etc/fstab of `fs`; empty when missing or unreadable.
pub(crate) fn read(fs: &dyn FileSystem) -> Vec<Entry> {
    util::read_small(fs, "/etc/fstab").map_or_else(Vec::new, |d| parse(&d))
}

/// Decodes getmntent's `\NNN` octal escapes (`\040` is a space), then converts lossily.
fn unescape(field: &[u8]) -> String {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b == b'\\'
            && let Some(d) = field.get(i + 1..i + 4)
            && d.iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v =
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resolves `entries` against `volumes` for the root on `volumes[root]`. Entries for
/// pseudo filesystems, removable media, /dev, /proc, /sys, /selinux and /media, and tags
/// (`UUID=`...) that match no volume are dropped, as libguestfs drops them.
pub(crate) fn resolve(entries: &[Entry], volumes: &[Volume], root: usize) -> Vec<Resolved> {
    entries
        .iter()
        .filter_map(|e| {
            if ignored_spec(&e.spec) {
                return None;
            }
            let mountpoint = canonical_path(&e.file);
            if ignored_mountpoint(&mountpoint) {
                return None;
            }
            let mut device = resolve_spec(&e.spec, volumes, root)?;
            let mut name = None;
            if e.vfstype == "btrfs" {
                (device, name) = btrfs_subvolume(device, &e.options, volumes);
            }
            Some(Resolved {
                device,
                mountpoint,
                vfstype: e.vfstype.clone(),
                options: e.options.clone(),
                name,
            })
        })
        .collect()
}

/// Floppies and CD-ROMs (RHBZ#642929).
fn ignored_spec(spec: &str) -> bool {
    let numbered = |p: &str| {
        spec.strip_prefix(p)
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    };
    numbered("/dev/fd")
        || numbered("/dev/cd")
        || spec == "/dev/floppy"
        || spec == "/dev/cdrom"
        || spec.starts_with("/dev/iso9660/")
}

fn ignored_mountpoint(mp: &str) -> bool {
    ["/dev", "/proc", "/selinux", "/sys"]
        .iter()
        .any(|p| mp == *p || mp.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
        || mp.starts_with("/media/")
}

/// libguestfs's `unix_canonical_path`: repeated and trailing slashes removed.
fn canonical_path(p: &str) -> String {
    let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
    let joined = parts.join("/");
    if p.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The device `spec` names; `None` to drop the entry.
fn resolve_spec(spec: &str, volumes: &[Volume], root: usize) -> Option<Device> {
    let tag = |prefix: &str| spec.strip_prefix(prefix).map(shell_unquote);
    if let Some(uuid) = tag("UUID=") {
        return find(volumes, root, |v| eq_id(v.info.uuid.as_deref(), &uuid)).map(Device::Volume);
    }
    if let Some(label) = tag("LABEL=") {
        return find(volumes, root, |v| {
            v.info.label.as_deref() == Some(label.as_str())
        })
        .map(Device::Volume);
    }
    if let Some(uuid) = tag("PARTUUID=") {
        return find(volumes, root, |v| eq_id(v.partuuid.as_deref(), &uuid)).map(Device::Volume);
    }
    if let Some(label) = tag("PARTLABEL=") {
        return find(volumes, root, |v| {
            v.partlabel.as_deref() == Some(label.as_str())
        })
        .map(Device::Volume);
    }
    if !spec.starts_with("/dev/") {
        // tmpfs, proc, none, bind sources, network filesystems, Pardus's /.swap ...
        return None;
    }
    let unresolved = || Some(Device::Unresolved(String::from(spec)));
    if spec == "/dev/root" {
        return volumes.get(root).map(|_| Device::Volume(root));
    }
    let by = |kind: &str| spec.strip_prefix(kind).map(udev_unescape);
    let found = if let Some(uuid) = by("/dev/disk/by-uuid/") {
        find(volumes, root, |v| eq_id(v.info.uuid.as_deref(), &uuid))
    } else if let Some(label) = by("/dev/disk/by-label/") {
        find(volumes, root, |v| {
            v.info.label.as_deref() == Some(label.as_str())
        })
    } else if let Some(uuid) = by("/dev/disk/by-partuuid/") {
        find(volumes, root, |v| eq_id(v.partuuid.as_deref(), &uuid))
    } else if let Some(label) = by("/dev/disk/by-partlabel/") {
        find(volumes, root, |v| {
            v.partlabel.as_deref() == Some(label.as_str())
        })
    } else if spec.starts_with("/dev/mapper/") {
        // Device-mapper's name of an LV, `/dev/mapper/VG-LV` with dashes doubled; libguestfs
        // asks LVM for the LV (`lv_canonical`), we compare with each LV's mapper name.
        volumes
            .iter()
            .position(|v| mapper_of_path(&v.info.device).as_deref() == Some(spec))
    } else {
        let name = appliance_name(spec);
        let name = name.as_deref().unwrap_or(spec);
        volumes.iter().position(|v| v.info.device == name)
    };
    found.map(Device::Volume).or_else(unresolved)
}

/// The volume matching `pred`: the root itself if it matches, else one on the root's disk,
/// else the first (cloned disks share UUIDs and labels). Tags name devices, so btrfs
/// subvolume volumes (which share their device's UUID and label) never match here.
fn find(volumes: &[Volume], root: usize, pred: impl Fn(&Volume) -> bool) -> Option<usize> {
    let pred = |v: &Volume| !v.is_subvolume() && pred(v);
    if volumes.get(root).is_some_and(pred) {
        return Some(root);
    }
    let root_disk = volumes.get(root).map(|v| disk_of(v.device()));
    let matching = || volumes.iter().enumerate().filter(|(_, v)| pred(v));
    matching()
        .find(|(_, v)| Some(disk_of(v.device())) == root_disk)
        .or_else(|| matching().next())
        .map(|(i, _)| i)
}

/// A btrfs entry's subvolume: the first `subvol=PATH` (with or without a leading `/`, as
/// Linux takes it from the top level) or `subvolid=N` of `options` picks the subvolume
/// volume on the same device; without either, the device (its default subvolume), as
/// libguestfs's `get_btrfs_mountable` does. A `subvol=` naming no subvolume the scan found
/// is reported as libguestfs names it, `btrfsvol:DEVICE/PATH`, and not mounted.
///
/// The second value is the name to report when libguestfs's differs from the volume's: it
/// writes `btrfsvol:DEVICE/` and the option's value, so `subvol=/@/var` is
/// `btrfsvol:/dev/sda2//@/var`. libguestfs ignores `subvolid=`; here it selects the
/// subvolume too.
fn btrfs_subvolume(device: Device, options: &str, volumes: &[Volume]) -> (Device, Option<String>) {
    let Device::Volume(i) = device else {
        return (device, None);
    };
    let Some(dev) = volumes.get(i).map(|v| v.device()) else {
        return (device, None);
    };
    let on_dev = |want: &dyn Fn(&crate::fs::Subvolume) -> bool| {
        volumes.iter().position(|v| {
            v.subvolume
                .as_ref()
                .is_some_and(|s| s.device == dev && want(s))
        })
    };
    for o in options.split(',') {
        if let Some(p) = o.strip_prefix("subvol=") {
            let written = format!("btrfsvol:{dev}/{p}");
            let path = canonical_path(p);
            let path = path.trim_start_matches('/');
            return match on_dev(&|s| s.path == path) {
                Some(j) => {
                    let differs = volumes.get(j).is_some_and(|v| v.info.device != written);
                    (Device::Volume(j), differs.then_some(written))
                }
                None => (Device::Unresolved(written), None),
            };
        }
        if let Some(id) = o
            .strip_prefix("subvolid=")
            .and_then(|n| n.parse::<u64>().ok())
            && let Some(j) = on_dev(&|s| s.id == id)
        {
            return (Device::Volume(j), None);
        }
    }
    (device, None)
}

/// UUIDs compare without regard to case (`blkid` prints lower case, FAT ids upper case).
fn eq_id(have: Option<&str>, want: &str) -> bool {
    have.is_some_and(|h| !h.is_empty() && h.eq_ignore_ascii_case(want))
}

/// Decodes udev's `\xNN` escapes in /dev/disk/by-* names.
fn udev_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(h) = b.get(i + 2..i + 4)
            && let Ok(h) = core::str::from_utf8(h)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A guest disk name (`/dev/vda1`, `/dev/xvdb`, `/dev/hda2`, `/dev/sdc3`) as the appliance
/// names the same disk (`/dev/sda1` ...), assuming the disks were added in the guest's order
/// (libguestfs's `resolve_xdev`).
fn appliance_name(spec: &str) -> Option<String> {
    let rest = spec.strip_prefix("/dev/")?;
    let rest = ["xvd", "hd", "sd", "vd"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))?;
    let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    let part = &rest[letters.len()..];
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    Some(format!("/dev/sd{letters}{part}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;

    fn vols() -> Vec<Volume> {
        let mut v = alloc::vec![
            TestFs::new().volume("/dev/sda1", Some("aaaa-1111"), Some("root")),
            TestFs::new().volume("/dev/sda2", Some("BBBB-2222"), Some("my boot")),
            TestFs::new().volume("/dev/sdb1", Some("cccc"), None),
            TestFs::new().volume("/dev/sdb2", Some("aaaa-1111"), Some("root")),
            TestFs::new().volume("/dev/rhel/root", Some("dddd"), Some("lvroot")),
            TestFs::new().volume("/dev/my-vg/a-b", None, None),
        ];
        v[2].partuuid = Some(String::from("0a0b0c0d-01"));
        v[2].partlabel = Some(String::from("data"));
        v[3].fs = None;
        v[3].info.fstype = String::from("swap");
        v
    }

    #[test]
    fn parses_lines() {
        let e = parse(
            b"# comment\n\n  UUID=x / ext4 errors=remount-ro 0 1\n\
              LABEL=a\\040b\t/mnt/my\\040disk ext4\n\
              onlytwo /x\n\
              /dev/sda1 /y\n\
              \xff\xfe /z ext4 defaults\r\n   # indented comment\n",
        );
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].spec, "UUID=x");
        assert_eq!(e[0].options, "errors=remount-ro");
        assert_eq!(e[1].spec, "LABEL=a b");
        assert_eq!(e[1].file, "/mnt/my disk");
        assert_eq!(e[1].options, "defaults");
        assert_eq!(e[2].spec, "\u{fffd}\u{fffd}");
        assert_eq!(unescape(b"\\777\\0"), "\\777\\0");
    }

    #[test]
    fn limits_lines() {
        let mut text = Vec::new();
        for i in 0..(MAX_LINES + 50) {
            text.extend_from_slice(format!("/dev/sda{i} /m{i} ext4 defaults\n").as_bytes());
        }
        assert_eq!(parse(&text).len(), MAX_LINES);
        let mut long = alloc::vec![b'x'; MAX_LINE + 1];
        long.extend_from_slice(b" / ext4\n/dev/sda1 / ext4\n");
        assert_eq!(parse(&long).len(), 1);
    }

    #[test]
    fn resolves_specs() {
        let v = vols();
        let r = |spec: &str| resolve_spec(spec, &v, 0);
        assert_eq!(r("UUID=AAAA-1111"), Some(Device::Volume(0)));
        assert_eq!(r("UUID=\"bbbb-2222\""), Some(Device::Volume(1)));
        assert_eq!(r("UUID=nope"), None);
        assert_eq!(r("LABEL=my\\ boot"), Some(Device::Volume(1)));
        assert_eq!(r("LABEL=\"my boot\""), Some(Device::Volume(1)));
        assert_eq!(r("PARTUUID=0A0B0C0D-01"), Some(Device::Volume(2)));
        assert_eq!(r("PARTLABEL=data"), Some(Device::Volume(2)));
        assert_eq!(r("PARTLABEL=none"), None);
        assert_eq!(r("/dev/disk/by-uuid/cccc"), Some(Device::Volume(2)));
        assert_eq!(r("/dev/disk/by-label/my\\x20boot"), Some(Device::Volume(1)));
        assert_eq!(
            r("/dev/disk/by-partuuid/0a0b0c0d-01"),
            Some(Device::Volume(2))
        );
        assert_eq!(
            r("/dev/disk/by-uuid/gone"),
            Some(Device::Unresolved(String::from("/dev/disk/by-uuid/gone")))
        );
        assert_eq!(r("/dev/vda2"), Some(Device::Volume(1)));
        assert_eq!(r("/dev/xvdb1"), Some(Device::Volume(2)));
        assert_eq!(r("/dev/hda1"), Some(Device::Volume(0)));
        assert_eq!(r("/dev/sdb2"), Some(Device::Volume(3)));
        assert_eq!(r("/dev/root"), Some(Device::Volume(0)));
        assert_eq!(
            r("/dev/vdz9"),
            Some(Device::Unresolved(String::from("/dev/vdz9")))
        );
        assert_eq!(
            r("/dev/mapper/vg-lv"),
            Some(Device::Unresolved(String::from("/dev/mapper/vg-lv")))
        );
        // An LV by each of the names fstab gives it.
        assert_eq!(r("/dev/mapper/rhel-root"), Some(Device::Volume(4)));
        assert_eq!(r("/dev/rhel/root"), Some(Device::Volume(4)));
        assert_eq!(r("UUID=DDDD"), Some(Device::Volume(4)));
        assert_eq!(r("LABEL=lvroot"), Some(Device::Volume(4)));
        assert_eq!(r("/dev/disk/by-uuid/dddd"), Some(Device::Volume(4)));
        assert_eq!(r("/dev/mapper/my--vg-a--b"), Some(Device::Volume(5)));
        assert_eq!(r("/dev/my-vg/a-b"), Some(Device::Volume(5)));
        assert_eq!(
            r("/dev/mapper/my-vg-a-b"),
            Some(Device::Unresolved(String::from("/dev/mapper/my-vg-a-b")))
        );
        assert_eq!(r("tmpfs"), None);
        assert_eq!(r("proc"), None);
        assert_eq!(r("none"), None);
        assert_eq!(r("server:/export"), None);
        assert_eq!(r("UUID="), None);
        // Duplicate UUID: the root itself, else the one on the root's disk.
        assert_eq!(
            resolve_spec("UUID=aaaa-1111", &v, 3),
            Some(Device::Volume(3))
        );
        assert_eq!(resolve_spec("LABEL=root", &v, 2), Some(Device::Volume(3)));
    }

    #[test]
    fn resolves_entries() {
        let v = vols();
        let e = parse(
            b"UUID=aaaa-1111 / ext4 defaults 0 1\n\
              LABEL=my\\040boot //boot// ext4 defaults 0 2\n\
              /dev/sdb2 none swap sw 0 0\n\
              proc /proc proc defaults 0 0\n\
              tmpfs /tmp tmpfs defaults 0 0\n\
              /dev/cdrom /media/cdrom udf,iso9660 user,noauto 0 0\n\
              /dev/fd0 /mnt/floppy auto noauto 0 0\n\
              /dev/sda1 /sys/x ext4 defaults 0 0\n\
              /dev/sdb1 /srv ext4 defaults 0 0\n\
              /srv /export none bind 0 0\n\
              /dev/sdb1 /data btrfs subvol=@data 0 0\n\
              UUID=missing /home ext4 defaults 0 2\n\
              /dev/vdq1 /opt ext4 defaults 0 2\n",
        );
        let r = resolve(&e, &v, 0);
        let got: Vec<(&str, &str, bool)> = r
            .iter()
            .map(|r| (r.device_name(&v), r.mountpoint.as_str(), r.is_mountable()))
            .collect();
        assert_eq!(
            got,
            [
                ("/dev/sda1", "/", false),
                ("/dev/sda2", "/boot", true),
                ("/dev/sdb2", "none", false),
                ("/dev/sdb1", "/srv", true),
                ("btrfsvol:/dev/sdb1/@data", "/data", true),
                ("/dev/vdq1", "/opt", true),
            ]
        );
        assert!(r[2].is_swap() && !r[2].is_mountpoint());
    }

    #[test]
    fn btrfs_subvolumes_resolve_by_subvol_and_subvolid() {
        let sub = |device: &str, id: u64, path: &str| {
            let mut v = TestFs::new().volume(device, None, None);
            v.subvolume = Some(crate::fs::Subvolume {
                device: String::from("/dev/sda2"),
                id,
                path: String::from(path),
            });
            v
        };
        let mut v = alloc::vec![
            TestFs::new().volume("/dev/sda1", Some("efi"), None),
            sub("/dev/sda2", 5, ""),
            sub("btrfsvol:/dev/sda2/root", 256, "root"),
            sub("btrfsvol:/dev/sda2/@/var", 257, "@/var"),
        ];
        for x in &mut v[1..] {
            x.info.uuid = Some(String::from("b7f5"));
            x.info.fstype = String::from("btrfs");
        }
        let e = parse(
            b"UUID=b7f5 / btrfs subvol=root,compress=zstd:1 0 0\n\
              UUID=b7f5 /var btrfs subvol=/@/var 0 0\n\
              UUID=b7f5 /var2 btrfs compress=zstd,subvolid=257 0 0\n\
              UUID=b7f5 /top btrfs defaults 0 0\n\
              UUID=b7f5 /gone btrfs subvol=nope 0 0\n\
              /dev/sda2 /dev-spec btrfs subvol=root 0 0\n",
        );
        let r = resolve(&e, &v, 2);
        let got: Vec<(&str, &str, Option<usize>)> = r
            .iter()
            .map(|r| {
                let i = match r.device {
                    Device::Volume(i) => Some(i),
                    Device::Unresolved(_) => None,
                };
                (r.device_name(&v), r.mountpoint.as_str(), i)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("btrfsvol:/dev/sda2/root", "/", Some(2)),
                ("btrfsvol:/dev/sda2//@/var", "/var", Some(3)),
                ("btrfsvol:/dev/sda2/@/var", "/var2", Some(3)),
                ("/dev/sda2", "/top", Some(1)),
                ("btrfsvol:/dev/sda2/nope", "/gone", None),
                ("btrfsvol:/dev/sda2/root", "/dev-spec", Some(2)),
            ]
        );
    }
}

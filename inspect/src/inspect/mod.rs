//! Operating system inspection, after libguestfs's `inspect_os` and virt-inspector.
//!
//! [`inspect`] finds the Linux root filesystems among the volumes ([`root`]), mounts each
//! one's /etc/fstab filesystems around it into an [`OsTree`] ([`fstab`], [`vfs`]), and reads
//! from that tree the distribution and version ([`release`], [`distro`]), architecture
//! ([`arch`]), host name ([`hostname`]) and, on request, the installed packages ([`apps`]:
//! [`dpkg`], [`apk`], [`rpm`] over the stores of [`crate::pkgdb`], [`pacman`]). [`os_tree`]
//! gives the same tree to file requests that address an operating system.
//!
//! Everything read from the disks is untrusted: files are read with size limits, parsers
//! accept any bytes, and a probe that fails leaves its field unknown rather than failing
//! the inspection.

mod apk;
mod apps;
mod arch;
mod distro;
mod dpkg;
mod fstab;
mod hostname;
mod pacman;
mod release;
mod root;
mod rpm;
#[cfg(test)]
pub(crate) mod testfs;
mod util;
mod vfs;
mod windows;

use alloc::string::String;
use alloc::vec::Vec;

use vmchannel_proto::{FilesystemInfo, OsInfo};

use crate::fs::{FsError, Volume};

pub use root::is_linux_root;
pub use vfs::{MAX_PATH, OsTree};
pub use windows::{case_sensitive_path, systemroot as windows_systemroot};

/// Most operating systems reported from one set of disks; further roots are ignored.
pub const MAX_ROOTS: usize = 32;

/// The packages in the rpm database of the OS tree `fs`, in libguestfs's order (what
/// libguestfs's daemon lists for `internal_list_rpm_applications`).
pub fn rpm_applications(fs: &dyn crate::fs::FileSystem) -> Vec<vmchannel_proto::Application> {
    let mut apps = rpm::list(fs);
    apps::sort(&mut apps);
    apps
}

/// Inspects `volumes` for Linux and Windows installations, without the disks' partition
/// details (so no Windows drive letters): [`inspect_disks`] with no devices.
pub fn inspect(volumes: &[Volume], applications: bool) -> Vec<OsInfo> {
    inspect_disks(volumes, &[], applications)
}

/// What kind of root a volume is.
enum Root {
    Linux,
    /// Windows, with its `%SYSTEMROOT%`.
    Windows(String),
}

/// The kind of operating system root on `fs`, checked in libguestfs's order (Linux's
/// tests first).
fn root_kind(fs: &dyn crate::fs::FileSystem) -> Option<Root> {
    if is_linux_root(fs) {
        return Some(Root::Linux);
    }
    windows::systemroot(fs).map(Root::Windows)
}

/// Inspects `volumes` for Linux and Windows installations: one [`OsInfo`] per root
/// filesystem, sorted by root device. `devices` (the disks and partitions of the scan)
/// map Windows drive letters to partitions. With `applications`, each lists its installed
/// packages (dpkg, apk, rpm and pacman databases, the Windows registry's Uninstall keys;
/// other formats give an empty list).
pub fn inspect_disks(
    volumes: &[Volume],
    devices: &[vmchannel_proto::DeviceInfo],
    applications: bool,
) -> Vec<OsInfo> {
    let mut roots: Vec<(usize, Root)> = volumes
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((i, root_kind(v.fs.as_deref()?)?)))
        .collect();
    roots.sort_by(|a, b| util::device_cmp(&volumes[a.0].info.device, &volumes[b.0].info.device));
    roots.dedup_by(|a, b| volumes[a.0].info.device == volumes[b.0].info.device);
    if roots.len() > MAX_ROOTS {
        log::warn!(
            "inspect: {} root filesystems, only the first {MAX_ROOTS} inspected",
            roots.len()
        );
        roots.truncate(MAX_ROOTS);
    }
    let found: Vec<OsInfo> = roots
        .into_iter()
        .filter_map(|(i, kind)| match kind {
            Root::Linux => inspect_root(volumes, i, applications),
            Root::Windows(sysroot) => {
                windows::inspect_root(volumes, devices, i, sysroot, applications)
            }
        })
        .collect();
    drop_btrfs_snapshots_of_roots(volumes, found)
}

/// libguestfs's `check_for_duplicated_btrfs_snapshots_of_root`: a root on a btrfs
/// subvolume (`btrfsvol:`) that looks like the root on its device's default subvolume (same
/// type, distribution, product and version) is a snapshot of it, as snapper keeps them on
/// SUSE, and is not reported. (libguestfs 1.48 still reports them; later versions do not.)
fn drop_btrfs_snapshots_of_roots(volumes: &[Volume], oses: Vec<OsInfo>) -> Vec<OsInfo> {
    let similar = |a: &OsInfo, b: &OsInfo| {
        a.os_type == b.os_type
            && a.distro == b.distro
            && a.product_name == b.product_name
            && (a.major_version, a.minor_version) == (b.major_version, b.minor_version)
    };
    let device_of = |root: &str| {
        volumes
            .iter()
            .find(|v| v.info.device == root && v.is_subvolume())
            .map(|v| v.device())
    };
    let keep: Vec<bool> = oses
        .iter()
        .map(|os| match device_of(&os.root) {
            Some(dev) => !oses.iter().any(|o| o.root == dev && similar(o, os)),
            None => true,
        })
        .collect();
    oses.into_iter()
        .zip(keep)
        .filter_map(|(os, k)| k.then_some(os))
        .collect()
}

/// The mount namespace of the operating system whose root filesystem is on `root_device`:
/// that filesystem at `/` and the filesystems its /etc/fstab names (and that the appliance
/// can read) at their mountpoints. A root with no usable /etc/fstab gives a tree of just
/// the root. A filesystem that is not an OS root (see [`is_linux_root`]) is `NotFound`.
pub fn os_tree(volumes: &[Volume], root_device: &str) -> Result<OsTree, FsError> {
    let idx = volumes
        .iter()
        .position(|v| v.info.device == root_device && v.fs.is_some())
        .ok_or_else(|| FsError::NotFound(String::from(root_device)))?;
    let Some(kind) = volumes[idx].fs.as_deref().and_then(root_kind) else {
        return Err(FsError::NotFound(alloc::format!(
            "{root_device}: not the root filesystem of an operating system"
        )));
    };
    if let Root::Windows(_) = kind {
        // Windows has no fstab: its tree is the root volume alone (drive letters are
        // volumes of their own), and its names are found case-insensitively.
        let root_fs = volumes[idx]
            .fs
            .clone()
            .ok_or_else(|| FsError::NotFound(String::from(root_device)))?;
        return Ok(OsTree::new(
            root_device,
            alloc::rc::Rc::new(windows::NoCase(root_fs)),
        ));
    }
    let (tree, _) =
        build_tree(volumes, idx).ok_or_else(|| FsError::NotFound(String::from(root_device)))?;
    Ok(tree)
}

/// The OS tree of the root on `volumes[root]`, with its resolved fstab entries.
fn build_tree(volumes: &[Volume], root: usize) -> Option<(OsTree, Vec<fstab::Resolved>)> {
    let vol = volumes.get(root)?;
    let root_fs = vol.fs.clone()?;
    let entries = fstab::resolve(&fstab::read(&*root_fs), volumes, root);
    let mut tree = OsTree::new(&vol.info.device, root_fs);
    for e in entries.iter().filter(|e| e.is_mountable()) {
        let fstab::Device::Volume(i) = e.device else {
            continue;
        };
        let Some(v) = volumes.get(i) else { continue };
        let Some(fs) = v.fs.clone() else { continue };
        if let Err(err) = tree.add_mount(&v.info.device, &e.mountpoint, fs) {
            log::debug!("inspect: {}: {}: {err}", v.info.device, e.mountpoint);
        }
    }
    Some((tree, entries))
}

/// Everything about the root on `volumes[root]`.
fn inspect_root(volumes: &[Volume], root: usize, applications: bool) -> Option<OsInfo> {
    let (tree, entries) = build_tree(volumes, root)?;
    let root_device = String::from(tree.root_device());
    let rel = release::detect(&tree);
    let (major, minor) = rel.version.unwrap_or((0, 0));
    let package_format = rel.distro.and_then(|d| d.package_format());
    let package_management = rel
        .distro
        .and_then(|d| d.package_management(major, || util::is_file(&tree, "/usr/bin/dnf")));
    let mut info = OsInfo {
        root: root_device.clone(),
        os_type: String::from("linux"),
        distro: rel.distro.map(|d| String::from(d.name())),
        product_name: rel.product_name,
        major_version: major,
        minor_version: minor,
        arch: arch::detect(&tree).map(String::from),
        hostname: hostname::detect(&tree),
        package_format: package_format.map(String::from),
        package_management: package_management.map(String::from),
        osinfo: rel.distro.and_then(|d| d.osinfo(major, minor)),
        mountpoints: mountpoints(&entries, volumes, &root_device),
        filesystems: filesystems(&entries, volumes, root),
        ..OsInfo::default()
    };
    if applications {
        info.applications = apps::list(&tree, package_format);
    }
    Some(info)
}

/// (device, mount path) of every fstab entry with an absolute mount path, the root always
/// on its own device; sorted as virt-inspector sorts them (shorter paths first, then by
/// path).
fn mountpoints(
    entries: &[fstab::Resolved],
    volumes: &[Volume],
    root_device: &str,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        alloc::vec![(String::from(root_device), String::from("/"))];
    for e in entries
        .iter()
        .filter(|e| e.is_mountpoint() && e.mountpoint != "/")
    {
        let pair = (String::from(e.device_name(volumes)), e.mountpoint.clone());
        if !out.contains(&pair) {
            out.push(pair);
        }
    }
    out.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| a.1.cmp(&b.1)));
    out
}

/// The root's filesystem and every volume its fstab names (swap included), by device name
/// (as the entry names it: see [`fstab::Resolved::device_name`]). An fstab entry for `/` is
/// the root, whatever device it names.
fn filesystems(
    entries: &[fstab::Resolved],
    volumes: &[Volume],
    root: usize,
) -> Vec<FilesystemInfo> {
    let mut found: Vec<FilesystemInfo> = entries
        .iter()
        .filter(|e| e.mountpoint != "/")
        .filter_map(|e| match e.device {
            fstab::Device::Volume(i) => volumes.get(i).map(|v| FilesystemInfo {
                device: String::from(e.device_name(volumes)),
                ..v.info.clone()
            }),
            fstab::Device::Unresolved(_) => None,
        })
        .chain(volumes.get(root).map(|v| v.info.clone()))
        .collect();
    found.sort_by(|a, b| a.device.cmp(&b.device));
    found.dedup_by(|a, b| a.device == b.device);
    found
}

#[cfg(test)]
mod tests;

//! Windows, after libguestfs 1.48 (daemon/inspect_fs_windows.ml, lib/inspect-osinfo.c,
//! lib/inspect-apps.c).
//!
//! A filesystem is a Windows root when one of `/windows`, `/winnt`, `/win32`, `/win`,
//! `/reactos` (found case-insensitively, as libguestfs's `case_sensitive_path` finds names on
//! ntfs-3g) holds `system32/` and `system32/config/` directories and a `system32/cmd.exe`
//! file; failing those, a `boot.ini` naming a system root on the same volume. Then:
//! - the architecture comes from cmd.exe's PE header, as file(1) names it for libguestfs:
//!   PE32 is `i386`, PE32+ is `x86_64` (whatever the machine field says);
//! - with both `system32/config/software` and `system32/config/system` present, the SOFTWARE
//!   hive's `Microsoft\Windows NT\CurrentVersion` gives the product name (`ProductName`),
//!   the version (`CurrentMajorVersionNumber` and `CurrentMinorVersionNumber` when both are
//!   there, else `CurrentVersion` such as "6.3") and the product variant
//!   (`InstallationType`); value names there are compared exactly, as libguestfs does;
//! - the SYSTEM hive gives the drive letters (`MountedDevices`: `\DosDevices\X:` values of
//!   12 bytes, an MBR disk signature and a partition's byte offset, or `DMIO:ID:` and a GPT
//!   partition GUID), the current control set (`Select\Current`, as `ControlSetNNN`) and
//!   the host name (its `Services\Tcpip\Parameters\Hostname`);
//! - the osinfo id follows from the version, variant and product name;
//! - applications are the subkeys of `Microsoft\Windows\CurrentVersion\Uninstall` and of
//!   `WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall` that have a `DisplayName`.
//!
//! Keys are looked up case-insensitively (hivex's `node_get_child`). A hive that cannot be
//! read leaves its fields unknown, as a failed probe does elsewhere.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use vmchannel_proto::{Application, DeviceInfo, FileKind, OsInfo};

use crate::fs::{FileSystem, FsError, Volume};
use crate::hive::{Hive, Key};
use crate::store::FileStore;

use super::util::version_from_major_minor;

/// Where libguestfs looks for `%SYSTEMROOT%`, in order.
const SYSTEMROOT_PATHS: [&str; 5] = ["/windows", "/winnt", "/win32", "/win", "/reactos"];

/// Largest hive read (pages are read on demand; this bounds the work).
const MAX_HIVE: u64 = 1 << 30;

/// Largest boot.ini read.
const MAX_BOOT_INI: u64 = 64 * 1024;

/// Most path components resolved by [`case_sensitive_path`].
const MAX_COMPONENTS: usize = 64;

/// libguestfs's `case_sensitive_path`: `path` (absolute) with each component replaced by
/// the first entry of its directory, in directory order, whose name is the same but for
/// ASCII case. The last component may be missing (it is kept as given); a missing or
/// non-directory middle component, or a `.` or `..`, is an error. Empty components (`//`)
/// are skipped.
pub fn case_sensitive_path(fs: &dyn FileSystem, path: &str) -> Result<String, FsError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(FsError::BadPath(String::from(path)));
    };
    let comps: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
    if comps.len() > MAX_COMPONENTS {
        return Err(FsError::BadPath(format!("{path}: too many components")));
    }
    let mut out = String::new();
    for (i, comp) in comps.iter().enumerate() {
        if *comp == "." || *comp == ".." {
            return Err(FsError::BadPath(format!(
                "{path}: path contains \".\" or \"..\" elements"
            )));
        }
        let dir = if out.is_empty() { "/" } else { out.as_str() };
        let last = i + 1 == comps.len();
        let found = match fs.read_dir(dir) {
            Ok(entries) => entries
                .into_iter()
                .find(|e| e.name.eq_ignore_ascii_case(comp))
                .map(|e| e.name),
            Err(e) if last => return Err(e),
            Err(e) => return Err(e),
        };
        let name = match found {
            Some(n) => n,
            None if last => String::from(*comp),
            None => return Err(FsError::NotFound(format!("{comp}: not found"))),
        };
        out.push('/');
        out.push_str(&name);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Whether `path`, found case-insensitively, is a directory (not following a final link).
fn is_dir_nocase(fs: &dyn FileSystem, path: &str) -> bool {
    case_sensitive_path(fs, path)
        .and_then(|p| fs.lstat(&p))
        .is_ok_and(|st| st.kind == FileKind::Directory)
}

/// Whether `path`, found case-insensitively, is a regular file (not following a final
/// link).
fn is_file_nocase(fs: &dyn FileSystem, path: &str) -> bool {
    case_sensitive_path(fs, path)
        .and_then(|p| fs.lstat(&p))
        .is_ok_and(|st| st.kind == FileKind::File)
}

/// libguestfs's `is_systemroot`.
fn is_systemroot(fs: &dyn FileSystem, root: &str) -> bool {
    is_dir_nocase(fs, &format!("{root}/system32"))
        && is_dir_nocase(fs, &format!("{root}/system32/config"))
        && is_file_nocase(fs, &format!("{root}/system32/cmd.exe"))
}

/// `%SYSTEMROOT%` of the Windows installation on `fs`, in its on-disk case (`/Windows`),
/// or `None` when `fs` is not a Windows root.
pub fn systemroot(fs: &dyn FileSystem) -> Option<String> {
    for p in SYSTEMROOT_PATHS {
        if let Ok(path) = case_sensitive_path(fs, p)
            && is_systemroot(fs, &path)
        {
            return Some(path);
        }
    }
    let boot_ini = case_sensitive_path(fs, "/boot.ini").ok()?;
    let data = fs.read_file(&boot_ini, MAX_BOOT_INI).ok()?;
    boot_ini_systemroots(&data)
        .into_iter()
        .find(|p| is_systemroot(fs, p))
}

/// The system roots a boot.ini names: the `multi(N)disk(N)rdisk(N)partition(N)PATH=` or
/// `scsi(...)` lines right after `[operating systems]`, PATH with its backslashes turned
/// into slashes (the disk and partition are ignored: libguestfs assumes this volume).
fn boot_ini_systemroots(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    if !lines.any(|l| l.starts_with("[operating systems]")) {
        return Vec::new();
    }
    lines
        .take_while(|l| l.starts_with("multi(") || l.starts_with("scsi("))
        .filter_map(boot_ini_path)
        .collect()
}

/// The PATH of one `multi(0)disk(0)rdisk(0)partition(1)\WINDOWS="..."` line.
fn boot_ini_path(line: &str) -> Option<String> {
    let rest = line
        .strip_prefix("multi(")
        .or_else(|| line.strip_prefix("scsi("))?;
    let mut rest = number_close(rest)?;
    for key in ["disk(", "rdisk(", "partition("] {
        rest = number_close(rest.strip_prefix(key)?)?;
    }
    let (path, _) = rest.split_once('=')?;
    (!path.is_empty()).then(|| path.replace('\\', "/"))
}

/// After `\d+\)`, the rest.
fn number_close(s: &str) -> Option<&str> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0).then_some(())?;
    s[digits..].strip_prefix(')')
}

/// The architecture of a PE executable as libguestfs names it from file(1)'s output: PE32
/// is `i386`, PE32+ is `x86_64`.
pub(crate) fn pe_arch(head: &[u8]) -> Option<&'static str> {
    let le16 = |at: usize| Some(u16::from_le_bytes(head.get(at..at + 2)?.try_into().ok()?));
    let le32 = |at: usize| Some(u32::from_le_bytes(head.get(at..at + 4)?.try_into().ok()?));
    if head.get(..2)? != b"MZ" {
        return None;
    }
    let pe = usize::try_from(le32(0x3c)?).ok()?;
    if head.get(pe..pe.checked_add(4)?)? != b"PE\0\0" {
        return None;
    }
    // The optional header follows the 20-byte COFF header.
    match le16(pe.checked_add(24)?)? {
        0x10b => Some("i386"),
        0x20b => Some("x86_64"),
        _ => None,
    }
}

/// What the SOFTWARE hive says.
#[derive(Default)]
struct Software {
    product_name: Option<String>,
    version: Option<(u32, u32)>,
    variant: Option<String>,
}

/// What the SYSTEM hive says.
#[derive(Default)]
struct System {
    drive_mappings: Vec<(String, String)>,
    control_set: Option<String>,
    hostname: Option<String>,
}

/// Opens the hive at `path` (found case-insensitively) and runs `f` over it; `None` when
/// it is missing or unreadable (logged).
fn with_hive<R>(
    fs: &dyn FileSystem,
    path: &str,
    f: impl FnOnce(&Hive<'_>) -> Result<R, crate::hive::HiveError>,
) -> Option<R> {
    let real = case_sensitive_path(fs, path).ok()?;
    let store = FileStore::open(fs, &real, MAX_HIVE).ok()?;
    // libguestfs opens hives with HIVEX_OPEN_UNSAFE: damage is stepped over where it can be.
    let result = Hive::open_lenient(&store).and_then(|h| f(&h));
    match result {
        Ok(r) => Some(r),
        Err(e) => {
            log::warn!("inspect: {real}: {e}");
            None
        }
    }
}

/// The value named exactly `name` among `key`'s values (libguestfs's `List.assoc` over
/// `hivex_value_key`).
fn exact_value(
    h: &Hive<'_>,
    key: &Key,
    name: &str,
) -> Result<Option<crate::hive::Value>, crate::hive::HiveError> {
    Ok(h.values(key)?.into_iter().find(|v| v.name == name))
}

fn read_software(h: &Hive<'_>) -> Result<Software, crate::hive::HiveError> {
    let mut out = Software::default();
    let root = h.root()?;
    let Some(cv) = h.path(&root, &["Microsoft", "Windows NT", "CurrentVersion"])? else {
        return Ok(out);
    };
    if let Some(v) = exact_value(h, &cv, "ProductName")? {
        out.product_name = h.value_string(&v).ok();
    }
    let major = exact_value(h, &cv, "CurrentMajorVersionNumber")?;
    let minor = exact_value(h, &cv, "CurrentMinorVersionNumber")?;
    out.version = match (major, minor) {
        (Some(ma), Some(mi)) => match (h.value_dword(&ma), h.value_dword(&mi)) {
            (Ok(a), Ok(b)) => Some((a, b)),
            _ => None,
        },
        _ => exact_value(h, &cv, "CurrentVersion")?
            .and_then(|v| h.value_string(&v).ok())
            .and_then(|s| version_from_major_minor(&s)),
    };
    if let Some(v) = exact_value(h, &cv, "InstallationType")? {
        out.variant = h.value_string(&v).ok();
    }
    Ok(out)
}

fn read_system(h: &Hive<'_>, devices: &[DeviceInfo]) -> Result<System, crate::hive::HiveError> {
    let mut out = System::default();
    let root = h.root()?;
    if let Some(md) = h.child(&root, "MountedDevices")? {
        for v in h.values(&md)? {
            let Some(letter) = drive_letter(&v.name) else {
                continue;
            };
            if v.kind != crate::hive::REG_BINARY {
                continue;
            }
            let Ok(blob) = h.value_data(&v) else { continue };
            if let Some(dev) = map_blob(&blob, devices) {
                out.drive_mappings.push((letter, dev));
            }
        }
    }
    // virt-inspector sorts them by letter, case-insensitively.
    out.drive_mappings.sort_by_key(|m| m.0.to_ascii_lowercase());
    let current = match h.child(&root, "Select")? {
        Some(sel) => match h.value(&sel, "Current")? {
            Some(v) => h.value_dword(&v).ok(),
            None => None,
        },
        None => None,
    };
    let Some(current) = current else {
        return Ok(out);
    };
    let ccs = format!("ControlSet{:03}", current as i32);
    if let Some(params) = h.path(&root, &[&ccs, "Services", "Tcpip", "Parameters"])?
        && let Some(v) = exact_value(h, &params, "Hostname")?
    {
        out.hostname = h.value_string(&v).ok();
    }
    out.control_set = Some(ccs);
    Ok(out)
}

/// The letter of a `\DosDevices\X:` value name (the prefix in any case).
fn drive_letter(name: &str) -> Option<String> {
    let b = name.as_bytes();
    if b.len() < 14 || !b[..12].eq_ignore_ascii_case(b"\\dosdevices\\") {
        return None;
    }
    (b[12].is_ascii_alphabetic() && b[13] == b':').then(|| String::from(&name[12..13]))
}

/// The partition a `MountedDevices` blob names: `DMIO:ID:` and a GPT partition GUID (24
/// bytes or more), or an MBR disk signature and a partition's byte offset (12 bytes).
fn map_blob(blob: &[u8], devices: &[DeviceInfo]) -> Option<String> {
    if blob.len() >= 24 && blob.starts_with(b"DMIO:ID:") {
        let guid = registry_guid(&blob[8..24]);
        return devices
            .iter()
            .find(|d| {
                d.partition.as_ref().is_some_and(|p| {
                    p.partuuid
                        .as_deref()
                        .is_some_and(|u| u.eq_ignore_ascii_case(&guid))
                        && disk_table(devices, &d.name) == Some("gpt")
                })
            })
            .map(|d| d.name.clone());
    }
    if blob.len() != 12 {
        return None;
    }
    let signature = format!("{:08x}", u32::from_le_bytes(blob[..4].try_into().ok()?));
    let offset = u64::from_le_bytes(blob[4..12].try_into().ok()?);
    // The first MBR disk with that signature (its partitions' PARTUUIDs carry it), then
    // its partition starting at that byte.
    let disk = devices.iter().find(|d| {
        d.table.as_deref() == Some("mbr")
            && devices.iter().any(|p| {
                super::util::disk_of(&p.name) == d.name
                    && p.partition.as_ref().is_some_and(|pi| {
                        pi.partuuid
                            .as_deref()
                            .is_some_and(|u| u.starts_with(&signature) && u.len() > 8)
                    })
            })
    })?;
    devices
        .iter()
        .find(|p| {
            p.name != disk.name
                && super::util::disk_of(&p.name) == disk.name
                && p.partition.as_ref().is_some_and(|pi| pi.start == offset)
        })
        .map(|p| p.name.clone())
}

/// The partition table of the disk holding partition `name`.
fn disk_table<'a>(devices: &'a [DeviceInfo], name: &str) -> Option<&'a str> {
    let disk = super::util::disk_of(name);
    devices
        .iter()
        .find(|d| d.name == disk)
        .and_then(|d| d.table.as_deref())
}

/// A GUID stored as Windows stores it (little-endian first three fields, then eight bytes
/// as they are), as lower-case text.
fn registry_guid(b: &[u8]) -> String {
    let le32 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let le16a = u16::from_le_bytes([b[4], b[5]]);
    let le16b = u16::from_le_bytes([b[6], b[7]]);
    format!(
        "{le32:08x}-{le16a:04x}-{le16b:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// libguestfs's osinfo id for Windows (lib/inspect-osinfo.c).
fn osinfo(major: u32, minor: u32, product_name: &str, variant: &str) -> Option<String> {
    let server = variant.contains("Server");
    let id = match (major, minor) {
        (5, 1) => "winxp",
        (5, 2) if product_name.contains("XP") => "winxp",
        (5, 2) if product_name.contains("R2") => "win2k3r2",
        (5, 2) => "win2k3",
        (6, 0) if server => "win2k8",
        (6, 0) => "winvista",
        (6, 1) if server => "win2k8r2",
        (6, 1) => "win7",
        (6, 2) if server => "win2k12",
        (6, 2) => "win8",
        (6, 3) if server => "win2k12r2",
        (6, 3) => "win8.1",
        (10, 0) if server && product_name.contains("2022") => "win2k22",
        (10, 0) if server && product_name.contains("2019") => "win2k19",
        (10, 0) if server => "win2k16",
        (10, 0) => "win10",
        _ => return None,
    };
    Some(String::from(id))
}

/// The applications of the SOFTWARE hive: each subkey of the two Uninstall keys with a
/// `DisplayName` (libguestfs's `list_applications_windows`).
fn applications(h: &Hive<'_>) -> Result<Vec<Application>, crate::hive::HiveError> {
    let mut out = Vec::new();
    let root = h.root()?;
    let paths: [&[&str]; 2] = [
        &["Microsoft", "Windows", "CurrentVersion", "Uninstall"],
        &[
            "WOW6432node",
            "Microsoft",
            "Windows",
            "CurrentVersion",
            "Uninstall",
        ],
    ];
    for path in paths {
        let Some(uninstall) = h.path(&root, path)? else {
            continue;
        };
        for child in h.children(&uninstall)? {
            if out.len() >= super::apps::MAX_PACKAGES {
                log::warn!(
                    "inspect: more than {} applications",
                    super::apps::MAX_PACKAGES
                );
                return Ok(out);
            }
            let Ok(name) = h.key_name(&child) else {
                continue;
            };
            let string = |value: &str| -> String {
                h.value(&child, value)
                    .ok()
                    .flatten()
                    .and_then(|v| h.value_string(&v).ok())
                    .unwrap_or_default()
            };
            // A subkey whose values cannot be read is skipped, as one without a name is.
            let Some(display_name) = h
                .value(&child, "DisplayName")
                .ok()
                .flatten()
                .and_then(|v| h.value_string(&v).ok())
            else {
                continue;
            };
            out.push(Application {
                name,
                display_name,
                version: string("DisplayVersion"),
                install_path: string("InstallLocation"),
                publisher: string("Publisher"),
                url: string("URLInfoAbout"),
                description: string("Comments"),
                ..Application::default()
            });
        }
    }
    Ok(out)
}

/// Everything about the Windows root on `volumes[root]`, whose system root is `sysroot`.
pub(crate) fn inspect_root(
    volumes: &[Volume],
    devices: &[DeviceInfo],
    root: usize,
    sysroot: String,
    with_applications: bool,
) -> Option<OsInfo> {
    let vol = volumes.get(root)?;
    let fs = vol.fs.as_deref()?;
    let arch = case_sensitive_path(fs, &format!("{sysroot}/system32/cmd.exe"))
        .ok()
        .and_then(|p| {
            let mut head = [0u8; 4096];
            let n = fs.read_at(&p, 0, &mut head).ok()?;
            pe_arch(&head[..n])
        });
    let software_path = format!("{sysroot}/system32/config/software");
    let system_path = format!("{sysroot}/system32/config/system");
    let hive_there = |p: &str| is_file_nocase(fs, p);
    let (software, system) = if hive_there(&software_path) && hive_there(&system_path) {
        (
            with_hive(fs, &software_path, read_software).unwrap_or_default(),
            with_hive(fs, &system_path, |h| read_system(h, devices)).unwrap_or_default(),
        )
    } else {
        (Software::default(), System::default())
    };
    let (major, minor) = software.version.unwrap_or((0, 0));
    let osinfo = osinfo(
        major,
        minor,
        software.product_name.as_deref().unwrap_or("unknown"),
        software.variant.as_deref().unwrap_or("unknown"),
    );
    let mut info = OsInfo {
        root: vol.info.device.clone(),
        os_type: String::from("windows"),
        distro: Some(String::from("windows")),
        product_name: software.product_name,
        major_version: major,
        minor_version: minor,
        arch: arch.map(ToString::to_string),
        hostname: system.hostname,
        osinfo,
        mountpoints: alloc::vec![(vol.info.device.clone(), String::from("/"))],
        filesystems: alloc::vec![vol.info.clone()],
        product_variant: software.variant,
        windows_systemroot: Some(sysroot),
        windows_current_control_set: system.control_set,
        drive_mappings: system.drive_mappings,
        ..OsInfo::default()
    };
    if with_applications && hive_there(&software_path) {
        let mut apps = with_hive(fs, &software_path, applications).unwrap_or_default();
        super::apps::sort(&mut apps);
        info.applications = apps;
    }
    Some(info)
}

/// A Windows volume as a Windows program sees it: every path is found case-insensitively
/// ([`case_sensitive_path`]) before the filesystem is asked, as libguestfs's tools do
/// (virt-ls, virt-cat ... call `case_sensitive_path` on Windows guests).
pub(crate) struct NoCase(pub alloc::rc::Rc<dyn FileSystem>);

impl NoCase {
    fn real(&self, path: &str) -> Result<String, FsError> {
        case_sensitive_path(&*self.0, path)
    }
}

impl FileSystem for NoCase {
    fn lstat(&self, path: &str) -> Result<vmchannel_proto::Stat, FsError> {
        self.0.lstat(&self.real(path)?)
    }

    fn stat(&self, path: &str) -> Result<vmchannel_proto::Stat, FsError> {
        self.0.stat(&self.real(path)?)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<vmchannel_proto::DirEntry>, FsError> {
        self.0.read_dir(&self.real(path)?)
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        self.0.read_link(&self.real(path)?)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        self.0.read_at(&self.real(path)?, offset, buf)
    }

    fn usage(&self) -> Result<vmchannel_proto::Usage, FsError> {
        self.0.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::testfs::TestFs;
    use vmchannel_proto::PartitionInfo;

    #[test]
    fn paths_found_as_libguestfs_finds_them() {
        let fs = TestFs::new()
            .file("/Windows/System32/cmd.exe", b"MZ")
            .dir("/Windows/System32/config")
            .file("/Windows/System32/drivers/etc/hosts", b"")
            .dir("/windows.old");
        let c = |p| case_sensitive_path(&fs, p);
        assert_eq!(
            c("/windows/system32/CMD.EXE").unwrap(),
            "/Windows/System32/cmd.exe"
        );
        assert_eq!(c("/WINDOWS//system32/").unwrap(), "/Windows/System32");
        // The last component may be missing; a middle one may not.
        assert_eq!(
            c("/windows/system32/new.txt").unwrap(),
            "/Windows/System32/new.txt"
        );
        assert!(matches!(c("/nowhere/x"), Err(FsError::NotFound(_))));
        assert!(matches!(c("/windows/../x"), Err(FsError::BadPath(_))));
        assert!(matches!(c("relative"), Err(FsError::BadPath(_))));
        assert_eq!(c("/").unwrap(), "/");
        assert!(is_file_nocase(&fs, "/WINDOWS/system32/Cmd.Exe"));
        assert!(is_dir_nocase(&fs, "/windows/SYSTEM32/CONFIG"));
        assert!(!is_dir_nocase(&fs, "/windows/system32/cmd.exe"));
        assert_eq!(systemroot(&fs).as_deref(), Some("/Windows"));
    }

    #[test]
    fn systemroots_in_order_and_from_boot_ini() {
        // /windows is not a system root here (no cmd.exe); /WINNT is.
        let fs = TestFs::new()
            .dir("/windows/system32/config")
            .file("/WINNT/System32/cmd.exe", b"")
            .dir("/WINNT/System32/config");
        assert_eq!(systemroot(&fs).as_deref(), Some("/WINNT"));
        let ini = b"[boot loader]\r\ntimeout=30\r\n[operating systems]\r\n\
            multi(0)disk(0)rdisk(0)partition(1)\\NT\\Sys=\"Windows\" /fastdetect\r\n\
            C:\\CMDCONS\\BOOTSECT.DAT=\"Recovery Console\"\r\n";
        assert_eq!(boot_ini_systemroots(ini), ["/NT/Sys"]);
        let fs = TestFs::new()
            .file("/Boot.ini", ini)
            .file("/NT/Sys/system32/cmd.exe", b"")
            .dir("/NT/Sys/system32/config");
        assert_eq!(systemroot(&fs).as_deref(), Some("/NT/Sys"));
        assert!(boot_ini_systemroots(b"multi(0)disk(0)rdisk(0)partition(1)\\W=x").is_empty());
        assert_eq!(
            boot_ini_path("scsi(1)disk(2)rdisk(3)partition(4)\\A\\B=x"),
            Some("/A/B".into())
        );
        assert_eq!(
            boot_ini_path("multi()disk(0)rdisk(0)partition(1)\\A=x"),
            None
        );
        assert_eq!(systemroot(&TestFs::new().dir("/Program Files")), None);
    }

    #[test]
    fn pe_architectures() {
        let pe = |magic: u16| {
            let mut v = alloc::vec![0u8; 512];
            v[..2].copy_from_slice(b"MZ");
            v[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
            v[0x80..0x84].copy_from_slice(b"PE\0\0");
            v[0x98..0x9a].copy_from_slice(&magic.to_le_bytes());
            v
        };
        assert_eq!(pe_arch(&pe(0x20b)), Some("x86_64"));
        assert_eq!(pe_arch(&pe(0x10b)), Some("i386"));
        assert_eq!(pe_arch(&pe(0x107)), None);
        assert_eq!(pe_arch(b"MZ"), None);
        let mut far = pe(0x20b);
        far[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(pe_arch(&far), None);
        assert_eq!(pe_arch(b"\x7fELF"), None);
    }

    #[test]
    fn osinfo_ids_of_libguestfs_1_48() {
        let o = |ma, mi, name, var| osinfo(ma, mi, name, var);
        assert_eq!(
            o(10, 0, "Windows Server 2022 Datacenter", "Server").as_deref(),
            Some("win2k22")
        );
        assert_eq!(
            o(10, 0, "Windows Server 2019 Standard", "Server").as_deref(),
            Some("win2k19")
        );
        assert_eq!(
            o(10, 0, "Windows Server 2025 Standard", "Server").as_deref(),
            Some("win2k16")
        );
        // Windows 11 still calls itself "Windows 10 Pro"; 1.48 does not look at the build.
        assert_eq!(
            o(10, 0, "Windows 10 Pro", "Client").as_deref(),
            Some("win10")
        );
        assert_eq!(
            o(6, 1, "Windows 7 Ultimate", "Client").as_deref(),
            Some("win7")
        );
        assert_eq!(
            o(6, 3, "Windows Server 2012 R2", "Server").as_deref(),
            Some("win2k12r2")
        );
        assert_eq!(
            o(5, 2, "Windows XP Professional x64", "unknown").as_deref(),
            Some("winxp")
        );
        assert_eq!(
            o(5, 2, "Windows Server 2003 R2", "unknown").as_deref(),
            Some("win2k3r2")
        );
        assert_eq!(o(0, 0, "unknown", "unknown"), None);
    }

    fn part(name: &str, number: u32, start: u64, partuuid: &str) -> DeviceInfo {
        DeviceInfo {
            name: name.into(),
            size: 1 << 20,
            partition: Some(PartitionInfo {
                number,
                start,
                type_id: String::new(),
                partuuid: Some(partuuid.into()),
                partlabel: None,
            }),
            table: None,
        }
    }

    fn disk(name: &str, table: &str) -> DeviceInfo {
        DeviceInfo {
            name: name.into(),
            size: 1 << 30,
            partition: None,
            table: Some(table.into()),
        }
    }

    #[test]
    fn mounted_devices_blobs() {
        let devices = [
            disk("/dev/sda", "mbr"),
            part("/dev/sda1", 1, 1 << 20, "0c1e2022-01"),
            part("/dev/sda2", 2, 51 << 20, "0c1e2022-02"),
            disk("/dev/sdb", "gpt"),
            part(
                "/dev/sdb3",
                3,
                2 << 20,
                "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
            ),
        ];
        let mut mbr = 0x0c1e_2022u32.to_le_bytes().to_vec();
        mbr.extend((51u64 << 20).to_le_bytes());
        assert_eq!(map_blob(&mbr, &devices).as_deref(), Some("/dev/sda2"));
        mbr[4..].copy_from_slice(&(7u64 << 20).to_le_bytes());
        assert_eq!(
            map_blob(&mbr, &devices),
            None,
            "no partition at that offset"
        );
        // The GUID as Windows stores it: three little-endian fields, then bytes as they are.
        let mut gpt = b"DMIO:ID:".to_vec();
        gpt.extend([0x4e, 0x3d, 0x2c, 0x1b, 0x60, 0x5f, 0x18, 0x47]);
        gpt.extend([0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8, 0xf9]);
        assert_eq!(
            registry_guid(&gpt[8..24]),
            "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
        );
        assert_eq!(map_blob(&gpt, &devices).as_deref(), Some("/dev/sdb3"));
        assert_eq!(map_blob(b"\\??\\Volume{0}", &devices), None);
        assert_eq!(map_blob(&gpt[..20], &devices), None);
        assert_eq!(drive_letter("\\DosDevices\\C:").as_deref(), Some("C"));
        assert_eq!(drive_letter("\\dosdevices\\d:").as_deref(), Some("d"));
        assert_eq!(drive_letter("\\DosDevices\\1:"), None);
        assert_eq!(drive_letter("\\??\\Volume{x}"), None);
        assert_eq!(drive_letter("\\DosDevices\\Ä:"), None);
    }
}

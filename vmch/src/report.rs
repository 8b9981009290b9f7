//! Inspection results in the shape `virt-inspector` gives them, for JSON output.
//!
//! Field names and omissions follow virt-inspector's XML (see [`crate::xml`]): values that are
//! unknown are left out rather than written as "unknown", an epoch of 0 and empty strings are
//! left out, and versions are numbers.

use serde::Serialize;
use vmchannel_proto::{Application, OsInfo};

/// One operating system, as virt-inspector describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatingSystem {
    /// The root filesystem's device (`/dev/sda2`).
    pub root: String,
    /// The OS type (`linux`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The architecture (`x86_64`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The distribution (`debian`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
    /// The product name (`Debian GNU/Linux 12 (bookworm)`, or `12.5` for Debian).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// Windows: the product variant (`Server`, `Client`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_variant: Option<String>,
    /// The major version.
    pub major_version: u32,
    /// The minor version.
    pub minor_version: u32,
    /// The package format (`deb`, `rpm`, `apk`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_format: Option<String>,
    /// The package manager (`apt`, `dnf`, `apk`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_management: Option<String>,
    /// Windows: `%SYSTEMROOT%` (`/Windows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_systemroot: Option<String>,
    /// Windows: the current control set (`ControlSet001`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_current_control_set: Option<String>,
    /// The hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The libosinfo short id (`debian12`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub osinfo: Option<String>,
    /// Mount points, in virt-inspector's order.
    pub mountpoints: Vec<Mountpoint>,
    /// Filesystems that belong to this OS.
    pub filesystems: Vec<Filesystem>,
    /// Windows: drive letters and their devices, by letter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drive_mappings: Vec<DriveMapping>,
    /// Installed applications (absent when not asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<App>>,
    /// The OS's logo, a PNG in base64 (see [`icon_candidates`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
}

/// Where libguestfs 1.48 (1.48.6, lib/inspect-icon.c) looks for an OS's logo when
/// virt-inspector asks (favicons off): the paths tried in order for the distribution, each
/// with the largest file taken there (`None`: four bytes per pixel of the image's own
/// geometry). Distributions not listed (Arch, Alpine, AlmaLinux ...) have none.
pub fn icon_candidates(distro: Option<&str>, major: u32) -> &'static [(&'static str, Option<u64>)] {
    const RHEL_FAMILY: [&str; 6] = [
        "rhel",
        "redhat-based",
        "centos",
        "rocky",
        "scientificlinux",
        "oraclelinux",
    ];
    let distro = distro.unwrap_or("");
    if RHEL_FAMILY.contains(&distro) {
        return if major < 7 {
            &[(
                "/usr/share/pixmaps/redhat/shadowman-transparent.png",
                Some(102_400),
            )]
        } else {
            &[(
                "/usr/share/icons/hicolor/96x96/apps/system-logo-icon.png",
                Some(102_400),
            )]
        };
    }
    match distro {
        "fedora" => &[(
            "/usr/share/icons/hicolor/96x96/apps/fedora-logo-icon.png",
            None,
        )],
        "debian" => &[("/usr/share/pixmaps/debian-logo.png", Some(2048))],
        "ubuntu" => &[
            (
                "/usr/share/icons/gnome/24x24/places/ubuntu-logo.png",
                Some(2048),
            ),
            (
                "/usr/share/help/C/ubuntu-help/figures/ubuntu-logo.png",
                Some(2048),
            ),
        ],
        "mageia" => &[("/usr/share/icons/mageia.png", Some(10_240))],
        "opensuse" | "suse-based" | "sles" => &[
            (
                "/usr/share/icons/hicolor/48x48/apps/distributor.png",
                Some(10_240),
            ),
            (
                "/usr/share/icons/hicolor/24x24/apps/distributor.png",
                Some(10_240),
            ),
        ],
        "voidlinux" => &[("/usr/share/void-artwork/void-logo.png", Some(20_480))],
        "altlinux" => &[(
            "/usr/share/icons/hicolor/48x48/apps/altlinux.png",
            Some(20_480),
        )],
        "gentoo" => &[("/usr/share/icons/gentoo/48x48/gentoo.png", Some(10_240))],
        "openmandriva" => &[
            ("/usr/share/icons/large/mandriva.png", Some(10_240)),
            ("/usr/share/icons/mandriva.png", Some(10_240)),
        ],
        _ => &[],
    }
}

/// A PNG's width and height from its IHDR chunk, when `head` (its first 24 bytes or more)
/// starts as a PNG does; what file(1) reads, which libguestfs checks.
pub fn png_geometry(head: &[u8]) -> Option<(u32, u32)> {
    if !head.starts_with(b"\x89PNG\r\n\x1a\n") || head.get(12..16)? != b"IHDR" {
        return None;
    }
    let be = |at: usize| Some(u32::from_be_bytes(head.get(at..at + 4)?.try_into().ok()?));
    Some((be(16)?, be(20)?))
}

/// Whether libguestfs takes a PNG of `size` bytes and geometry `(w, h)` with limit `max`:
/// each side 16 to 1024 pixels, and the file at most `max` (or 4 bytes per pixel).
pub fn icon_acceptable(size: u64, (w, h): (u32, u32), max: Option<u64>) -> bool {
    let sides = (16..=1024).contains(&w) && (16..=1024).contains(&h);
    sides && size <= max.unwrap_or(4 * u64::from(w) * u64::from(h))
}

/// Reads the OS's icon through the appliance as virt-inspector does (see
/// [`icon_candidates`]), in base64. Absent (not an error) when there is none.
pub fn fetch_icon<S: std::io::Read + std::io::Write>(
    client: &mut vmchannel_proto::client::Client<S>,
    os: &OperatingSystem,
) -> Result<Option<String>, vmchannel_proto::client::ClientError> {
    use base64::Engine as _;
    use vmchannel_proto::client::ClientError;
    use vmchannel_proto::{FileKind, Target};
    let target = Target::Os(os.root.clone());
    for &(path, max) in icon_candidates(os.distro.as_deref(), os.major_version) {
        let stat = match client.stat(&target, path, true) {
            Ok(s) => s,
            Err(ClientError::Remote(_)) => continue,
            Err(e) => return Err(e),
        };
        // The largest limit of any distribution; past it nothing is taken, and nothing
        // larger is ever transferred.
        if stat.kind != FileKind::File || stat.size > 4 * 1024 * 1024 {
            continue;
        }
        let bytes = match client.read_file(&target, path) {
            Ok(b) => b,
            Err(ClientError::Remote(_)) => continue,
            Err(e) => return Err(e),
        };
        let Some(geometry) = png_geometry(&bytes) else {
            continue;
        };
        if icon_acceptable(bytes.len() as u64, geometry, max) {
            return Ok(Some(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ));
        }
    }
    Ok(None)
}

/// A mount point: the device and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mountpoint {
    /// The device (`/dev/sda1`).
    pub dev: String,
    /// The mount point (`/boot`).
    pub path: String,
}

/// A Windows drive letter and the device it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriveMapping {
    /// The letter (`C`).
    pub name: String,
    /// The device (`/dev/sda2`).
    pub dev: String,
}

/// A filesystem of the OS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    /// The device.
    pub dev: String,
    /// The filesystem type (`ext4`, `swap`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    /// The label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// An installed application (package).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    /// The package name (Windows: the Uninstall subkey's name).
    pub name: String,
    /// The name shown to people (Windows: `DisplayName`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The epoch, when not 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    /// The version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The architecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Where it is installed (Windows: `InstallLocation`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_path: Option<String>,
    /// Who publishes it (Windows: `Publisher`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// The project's home page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The source package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_package: Option<String>,
    /// A one-line summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The value, unless it is empty or libguestfs's "unknown".
fn known(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty() && *s != "unknown")
        .map(str::to_owned)
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl OperatingSystem {
    /// Converts the appliance's answer. `with_applications` says whether applications were
    /// asked for (an OS without any then gets an empty list, not none).
    pub fn from_info(os: &OsInfo, with_applications: bool) -> Self {
        OperatingSystem {
            root: os.root.clone(),
            name: known(Some(&os.os_type)),
            arch: known(os.arch.as_deref()),
            distro: known(os.distro.as_deref()),
            product_name: known(os.product_name.as_deref()),
            product_variant: known(os.product_variant.as_deref()),
            major_version: os.major_version,
            minor_version: os.minor_version,
            package_format: known(os.package_format.as_deref()),
            package_management: known(os.package_management.as_deref()),
            windows_systemroot: os.windows_systemroot.clone(),
            windows_current_control_set: os.windows_current_control_set.clone(),
            hostname: known(os.hostname.as_deref()),
            osinfo: known(os.osinfo.as_deref()),
            mountpoints: os
                .mountpoints
                .iter()
                .map(|(dev, path)| Mountpoint {
                    dev: dev.clone(),
                    path: path.clone(),
                })
                .collect(),
            filesystems: os
                .filesystems
                .iter()
                .map(|f| Filesystem {
                    dev: f.device.clone(),
                    fstype: nonempty(&f.fstype).filter(|t| t != "unknown"),
                    label: known(f.label.as_deref()),
                    uuid: known(f.uuid.as_deref()),
                })
                .collect(),
            drive_mappings: os
                .drive_mappings
                .iter()
                .map(|(name, dev)| DriveMapping {
                    name: name.clone(),
                    dev: dev.clone(),
                })
                .collect(),
            applications: with_applications
                .then(|| os.applications.iter().map(App::from_info).collect()),
            icon: None,
        }
    }
}

impl App {
    /// Converts one application.
    pub fn from_info(a: &Application) -> Self {
        App {
            name: a.name.clone(),
            display_name: nonempty(&a.display_name),
            epoch: (a.epoch != 0).then_some(a.epoch),
            version: nonempty(&a.version),
            release: nonempty(&a.release),
            arch: nonempty(&a.arch),
            install_path: nonempty(&a.install_path),
            publisher: nonempty(&a.publisher),
            url: nonempty(&a.url),
            source_package: nonempty(&a.source_package),
            summary: nonempty(&a.summary),
            description: nonempty(&a.description),
        }
    }
}

/// The whole inspection: what `vmch inspect --format json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// What ran the appliance (`vmm`, `qemu-kvm`, `qemu-tcg`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Every operating system found.
    pub operatingsystems: Vec<OperatingSystem>,
}

impl Inspection {
    /// Converts the appliance's answer.
    pub fn from_infos(oses: &[OsInfo], with_applications: bool) -> Self {
        Inspection {
            backend: None,
            operatingsystems: oses
                .iter()
                .map(|os| OperatingSystem::from_info(os, with_applications))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_head(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        v.extend(w.to_be_bytes());
        v.extend(h.to_be_bytes());
        v
    }

    #[test]
    fn icon_rules_are_libguestfs_1_48s() {
        let first = |d: &str, major| icon_candidates(Some(d), major).first().copied();
        assert_eq!(
            first("fedora", 40),
            Some((
                "/usr/share/icons/hicolor/96x96/apps/fedora-logo-icon.png",
                None
            ))
        );
        for rhel in ["rhel", "centos", "rocky", "oraclelinux"] {
            assert_eq!(
                first(rhel, 7),
                Some((
                    "/usr/share/icons/hicolor/96x96/apps/system-logo-icon.png",
                    Some(102_400)
                ))
            );
        }
        assert_eq!(
            first("rhel", 6),
            Some((
                "/usr/share/pixmaps/redhat/shadowman-transparent.png",
                Some(102_400)
            ))
        );
        assert_eq!(icon_candidates(Some("ubuntu"), 24).len(), 2);
        assert_eq!(
            icon_candidates(Some("opensuse"), 15)
                .iter()
                .map(|c| c.0)
                .collect::<Vec<_>>(),
            [
                "/usr/share/icons/hicolor/48x48/apps/distributor.png",
                "/usr/share/icons/hicolor/24x24/apps/distributor.png"
            ]
        );
        for none in ["archlinux", "alpinelinux", "almalinux", ""] {
            assert!(icon_candidates(Some(none), 9).is_empty(), "{none}");
        }
        assert!(icon_candidates(None, 0).is_empty());
    }

    #[test]
    fn png_checks() {
        assert_eq!(png_geometry(&png_head(96, 48)), Some((96, 48)));
        assert_eq!(png_geometry(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(
            png_geometry(b"GIF89a................................"),
            None
        );
        assert!(icon_acceptable(2048, (24, 24), Some(2048)));
        assert!(!icon_acceptable(2049, (24, 24), Some(2048)));
        assert!(!icon_acceptable(100, (15, 24), Some(2048)));
        assert!(!icon_acceptable(100, (24, 1025), Some(2048)));
        assert!(icon_acceptable(96 * 96 * 4, (96, 96), None));
        assert!(!icon_acceptable(96 * 96 * 4 + 1, (96, 96), None));
    }
}

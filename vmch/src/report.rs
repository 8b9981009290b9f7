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
    /// Installed applications (absent when not asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<App>>,
    /// The OS's logo, a PNG in base64 (see [`icon_path`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
}

/// Largest icon taken, in bytes.
pub const MAX_ICON_BYTES: u64 = 2048;

/// Where the OS keeps the logo virt-inspector shows, for the distributions whose path is known
/// here (libguestfs's `inspect-icon.c` knows more; only Debian's is checked against it).
pub fn icon_path(distro: Option<&str>) -> Option<&'static str> {
    match distro? {
        "debian" => Some("/usr/share/pixmaps/debian-logo.png"),
        _ => None,
    }
}

/// Reads the OS's icon through the appliance: a PNG of at most [`MAX_ICON_BYTES`] at
/// [`icon_path`], in base64. Absent (not an error) when there is none.
pub fn fetch_icon<S: std::io::Read + std::io::Write>(
    client: &mut vmchannel_proto::client::Client<S>,
    os: &OperatingSystem,
) -> Result<Option<String>, vmchannel_proto::client::ClientError> {
    use base64::Engine as _;
    use vmchannel_proto::client::ClientError;
    use vmchannel_proto::{FileKind, Target};
    let Some(path) = icon_path(os.distro.as_deref()) else {
        return Ok(None);
    };
    let target = Target::Os(os.root.clone());
    let stat = match client.stat(&target, path, true) {
        Ok(s) => s,
        Err(ClientError::Remote(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if stat.kind != FileKind::File || stat.size == 0 || stat.size > MAX_ICON_BYTES {
        return Ok(None);
    }
    let bytes = match client.read_file(&target, path) {
        Ok(b) => b,
        Err(ClientError::Remote(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(None);
    }
    Ok(Some(
        base64::engine::general_purpose::STANDARD.encode(bytes),
    ))
}

/// A mount point: the device and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mountpoint {
    /// The device (`/dev/sda1`).
    pub dev: String,
    /// The mount point (`/boot`).
    pub path: String,
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
    /// The package name.
    pub name: String,
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
            major_version: os.major_version,
            minor_version: os.minor_version,
            package_format: known(os.package_format.as_deref()),
            package_management: known(os.package_management.as_deref()),
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
            epoch: (a.epoch != 0).then_some(a.epoch),
            version: nonempty(&a.version),
            release: nonempty(&a.release),
            arch: nonempty(&a.arch),
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
    /// Every operating system found.
    pub operatingsystems: Vec<OperatingSystem>,
}

impl Inspection {
    /// Converts the appliance's answer.
    pub fn from_infos(oses: &[OsInfo], with_applications: bool) -> Self {
        Inspection {
            operatingsystems: oses
                .iter()
                .map(|os| OperatingSystem::from_info(os, with_applications))
                .collect(),
        }
    }
}

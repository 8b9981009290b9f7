//! The values the appliance reports: disks, filesystems, operating systems, files.
//!
//! These are the wire types (see docs/PROTOCOL.md); the guest builds them and the host client
//! receives them unchanged. Optional fields are `None` where libguestfs would say "unknown".

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A block device or partition the appliance sees, named as libguestfs names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// `/dev/sda`, `/dev/sda1`, `/dev/sdb5` ...
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// For a partition: its details; `None` for a whole disk.
    pub partition: Option<PartitionInfo>,
    /// For a whole disk: the partition table type, "mbr" or "gpt", if any.
    pub table: Option<String>,
}

/// One partition of a disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// Partition number as Linux numbers them (MBR logical partitions from 5).
    pub number: u32,
    /// Offset from the start of the disk, in bytes.
    pub start: u64,
    /// MBR type byte as two hex digits ("83"), or the GPT type GUID.
    pub type_id: String,
    /// GPT partition GUID, or the MBR `disk-signature-NN` form Linux uses for PARTUUID.
    pub partuuid: Option<String>,
    /// GPT partition name.
    pub partlabel: Option<String>,
}

/// A filesystem (or other recognised content) on a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemInfo {
    /// The device it lives on (`/dev/sda1`).
    pub device: String,
    /// `ext2`, `ext3`, `ext4`, `vfat`, `xfs`, `btrfs`, `ntfs`, `swap`, `LVM2_member`,
    /// `crypto_LUKS`, `BitLocker`, or `unknown`.
    pub fstype: String,
    /// Volume label, if the superblock has one.
    pub label: Option<String>,
    /// Volume UUID (or FAT volume id) as blkid prints it.
    pub uuid: Option<String>,
}

/// One installed package.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Package name.
    pub name: String,
    /// Epoch, 0 when none.
    pub epoch: u32,
    /// Upstream version.
    pub version: String,
    /// Distribution release (the Debian revision, the apk `-rN`), empty when none.
    pub release: String,
    /// Architecture.
    pub arch: String,
    /// One-line summary.
    pub summary: String,
    /// Long description.
    pub description: String,
    /// The project's home page (dpkg `Homepage`), empty when none.
    pub url: String,
    /// The source package (dpkg `Source`, without its version), empty when none.
    pub source_package: String,
    /// The name shown to people where it differs from `name` (Windows: `DisplayName`; the
    /// Uninstall subkey is the `name`), empty when none.
    pub display_name: String,
    /// Where it is installed (Windows: `InstallLocation`), empty when none.
    pub install_path: String,
    /// Who publishes it (Windows: `Publisher`), empty when none.
    pub publisher: String,
}

/// One operating system found on the disks: libguestfs's `inspect_get_*` for one root.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// The root filesystem's device.
    pub root: String,
    /// `linux` or `windows` (libguestfs's `type`).
    pub os_type: String,
    /// `debian`, `ubuntu`, `alpinelinux`, ...
    pub distro: Option<String>,
    /// Product name (`PRETTY_NAME` and friends).
    pub product_name: Option<String>,
    /// Major version.
    pub major_version: u32,
    /// Minor version.
    pub minor_version: u32,
    /// `x86_64`, `i386`, `aarch64`, ...
    pub arch: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// `deb`, `apk`, `rpm`, `pacman`.
    pub package_format: Option<String>,
    /// `apt`, `apk`, `dnf`, `yum`, `pacman`.
    pub package_management: Option<String>,
    /// libosinfo short id (`debian12`, `ubuntu22.04`, `alpinelinux3.19`).
    pub osinfo: Option<String>,
    /// Mount points from /etc/fstab: (device, mount path), sorted as libguestfs sorts them.
    pub mountpoints: Vec<(String, String)>,
    /// Filesystems that belong to this OS.
    pub filesystems: Vec<FilesystemInfo>,
    /// Installed packages (empty when not asked for).
    pub applications: Vec<Application>,
    /// Windows: the product variant (`InstallationType`: `Server`, `Client`).
    pub product_variant: Option<String>,
    /// Windows: `%SYSTEMROOT%` in the root filesystem, in its on-disk case (`/Windows`).
    pub windows_systemroot: Option<String>,
    /// Windows: the control set `Select\Current` names (`ControlSet001`).
    pub windows_current_control_set: Option<String>,
    /// Windows: drive letters and the devices they are (`C`, `/dev/sda2`), from the SYSTEM
    /// hive's `MountedDevices`, sorted by letter.
    pub drive_mappings: Vec<(String, String)>,
}

/// What a directory entry or a stat names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// FIFO.
    Fifo,
    /// Socket.
    Socket,
    /// Anything else.
    Unknown,
}

/// File metadata (`lstat` semantics unless the request asked to follow links).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// Kind of file.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits and type, as in `st_mode`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Symlink target, for symlinks.
    pub link_target: Option<String>,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// File name (not a path).
    pub name: String,
    /// Its metadata (not following links).
    pub stat: Stat,
}

/// Filesystem usage, as `statvfs` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Block size in bytes.
    pub block_size: u64,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Free blocks available to unprivileged users.
    pub blocks_available: u64,
    /// Total inodes.
    pub inodes: u64,
    /// Free inodes.
    pub inodes_free: u64,
}

/// Which filesystem tree a file request addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// One filesystem by device name (`/dev/sda1`), on its own.
    Device(String),
    /// An operating system by its root device, with its /etc/fstab mounts (separate /boot,
    /// /usr ...) in place, as `guestfish -i` mounts it.
    Os(String),
}

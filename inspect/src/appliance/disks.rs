//! The disks the appliance was given, scanned once: partition tables, device names, what
//! each device holds, and the filesystems that can be read.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use vmchannel_proto::{DeviceInfo, FilesystemInfo, PartitionInfo};

use crate::disk::cache::CachedDevice;
use crate::disk::lvm;
use crate::disk::names::{disk_name, partition_name};
use crate::disk::partition::read_table;
use crate::disk::{BlockDevice, Slice};
use crate::fs::btrfs::Btrfs;
use crate::fs::detect::detect;
use crate::fs::ext4::Ext4Fs;
use crate::fs::ntfs::NtfsFs;
use crate::fs::vfat::VfatFs;
use crate::fs::xfs::XfsFs;
use crate::fs::{FileSystem, FsError, Subvolume, Volume};

/// 4 KiB blocks of metadata cached per disk (4 MiB).
pub const CACHE_BLOCKS: usize = 1024;

/// Everything the scan found.
pub struct DiskSet {
    /// Disks and partitions, in name order.
    pub devices: Vec<DeviceInfo>,
    /// One per device that could hold a filesystem (partitions, or disks without a table),
    /// with what was recognised on it.
    pub volumes: Vec<Volume>,
    /// Problems met on the way (a corrupt table, a filesystem that would not open).
    pub warnings: Vec<String>,
    /// Why a recognised filesystem could not be opened, or an LV cannot be read, by device.
    pub open_errors: Vec<(String, FsError)>,
    /// The LVM logical volumes, `/dev/VG/LV`, as libguestfs's `lvs` lists them (sorted by
    /// VG, then LV). Each is also in [`volumes`](Self::volumes), after the partitions, and
    /// not in [`devices`](Self::devices): libguestfs's `list_devices` and
    /// `list_partitions` give disks and partitions only, and LVs come from `lvs`.
    pub logical_volumes: Vec<String>,
}

impl DiskSet {
    /// Scans `disks`, named `/dev/sda`, `/dev/sdb` ... in order.
    pub fn scan(disks: &[Rc<dyn BlockDevice>]) -> Self {
        let mut set = DiskSet {
            devices: Vec::new(),
            volumes: Vec::new(),
            warnings: Vec::new(),
            open_errors: Vec::new(),
            logical_volumes: Vec::new(),
        };
        // Devices that carry an LVM2 label, for the volume groups.
        let mut pvs: Vec<(String, Rc<dyn BlockDevice>)> = Vec::new();
        for (i, raw) in disks.iter().enumerate() {
            let name = disk_name(i);
            let dev: Rc<dyn BlockDevice> = Rc::new(CachedDevice::new(raw.clone(), CACHE_BLOCKS));
            let table = match read_table(&*dev) {
                Ok(t) => t,
                Err(e) => {
                    set.warnings.push(format!("{name}: {e}"));
                    None
                }
            };
            set.devices.push(DeviceInfo {
                name: name.clone(),
                size: dev.size(),
                partition: None,
                table: table.as_ref().map(|t| t.kind.name().to_string()),
            });
            let Some(table) = table else {
                if set.probe(&name, dev.clone(), None, None) == Some("LVM2_member") {
                    pvs.push((name.clone(), dev.clone()));
                }
                continue;
            };
            set.warnings
                .extend(table.warnings.iter().map(|w| format!("{name}: {w}")));
            for p in &table.partitions {
                let pname = partition_name(&name, p.number);
                set.devices.push(DeviceInfo {
                    name: pname.clone(),
                    size: p.size,
                    partition: Some(PartitionInfo {
                        number: p.number,
                        start: p.start,
                        type_id: p.type_id.clone(),
                        partuuid: p.partuuid.clone(),
                        partlabel: p.partlabel.clone(),
                    }),
                    table: None,
                });
                if p.extended {
                    continue;
                }
                if is_ldm(&p.type_id) {
                    set.ldm_partition(&pname, p.partuuid.clone(), p.partlabel.clone());
                    continue;
                }
                let slice: Rc<dyn BlockDevice> = Rc::new(Slice::new(dev.clone(), p.start, p.size));
                let found = set.probe(
                    &pname,
                    slice.clone(),
                    p.partuuid.clone(),
                    p.partlabel.clone(),
                );
                if found == Some("LVM2_member") {
                    pvs.push((pname, slice));
                }
            }
        }
        set.scan_lvm(&pvs);
        set
    }

    /// Assembles the volume groups on `pvs` and probes each LV as a volume of its own; an
    /// LV that cannot be read is listed as `unknown` with its error. LVs are not scanned
    /// for PVs again (no LVM on LVM).
    fn scan_lvm(&mut self, pvs: &[(String, Rc<dyn BlockDevice>)]) {
        if pvs.is_empty() {
            return;
        }
        let found = lvm::scan(pvs);
        self.warnings.extend(found.warnings);
        for lv in found.lvs {
            let name = lv.path();
            self.logical_volumes.push(name.clone());
            match lv.device {
                Ok(dev) => {
                    self.probe(&name, dev, None, None);
                }
                Err(e) => {
                    self.warnings.push(format!("{name}: {e}"));
                    self.open_errors.push((name.clone(), e));
                    self.volumes.push(Volume {
                        info: FilesystemInfo {
                            device: name,
                            fstype: String::from("unknown"),
                            label: None,
                            uuid: None,
                        },
                        partuuid: None,
                        partlabel: None,
                        fs: None,
                        subvolume: None,
                    });
                }
            }
        }
    }

    /// A partition of a Windows dynamic disk (LDM): recognised and reported, never read.
    /// Its volumes are described by the LDM database and may span partitions and disks;
    /// the partition is listed as `unknown` and a file request on it answers why.
    fn ldm_partition(&mut self, name: &str, partuuid: Option<String>, partlabel: Option<String>) {
        let e = FsError::Unsupported(format!(
            "{name}: a Windows dynamic disk (LDM) partition: its volumes are not read"
        ));
        self.warnings.push(e.to_string());
        self.open_errors.push((name.to_string(), e));
        self.volumes.push(Volume {
            info: FilesystemInfo {
                device: name.to_string(),
                fstype: String::from("unknown"),
                label: None,
                uuid: None,
            },
            partuuid,
            partlabel,
            fs: None,
            subvolume: None,
        });
    }

    /// Probes `dev` and records a volume for it; gives the detected type.
    fn probe(
        &mut self,
        name: &str,
        dev: Rc<dyn BlockDevice>,
        partuuid: Option<String>,
        partlabel: Option<String>,
    ) -> Option<&'static str> {
        let detected = match detect(&*dev) {
            Ok(d) => d,
            Err(e) => {
                self.warnings.push(format!("{name}: {e}"));
                None
            }
        };
        let mut info = FilesystemInfo {
            device: name.to_string(),
            fstype: String::from("unknown"),
            label: None,
            uuid: None,
        };
        let mut fs: Option<Rc<dyn FileSystem>> = None;
        let fstype = detected.as_ref().map(|d| d.fstype);
        if let Some(d) = detected {
            info.fstype = d.fstype.to_string();
            info.label = d.label;
            info.uuid = d.uuid;
            if d.fstype == "btrfs" {
                self.probe_btrfs(name, dev, info, partuuid, partlabel);
                return Some("btrfs");
            }
            let opened: Option<Result<Rc<dyn FileSystem>, FsError>> = match d.fstype {
                "ext2" | "ext3" | "ext4" => {
                    Some(Ext4Fs::open(dev).map(|e| Rc::new(e) as Rc<dyn FileSystem>))
                }
                "vfat" => Some(VfatFs::open(dev).map(|v| Rc::new(v) as Rc<dyn FileSystem>)),
                "ntfs" => Some(NtfsFs::open(dev).map(|n| Rc::new(n) as Rc<dyn FileSystem>)),
                "xfs" => Some(XfsFs::open(dev).map(|e| Rc::new(e) as Rc<dyn FileSystem>)),
                _ => None,
            };
            match opened {
                Some(Ok(f)) => fs = Some(f),
                Some(Err(e)) => {
                    self.warnings.push(format!("{name}: {e}"));
                    self.open_errors.push((name.to_string(), e));
                }
                None => {}
            }
        }
        self.volumes.push(Volume {
            info,
            partuuid,
            partlabel,
            fs,
            subvolume: None,
        });
        fstype
    }

    /// A btrfs filesystem: the device's volume is its default subvolume, and every other
    /// subvolume is a volume `btrfsvol:DEVICE/PATH` after it, by id, as libguestfs's
    /// `list_filesystems` gives them (the default one is left out: it is the device).
    fn probe_btrfs(
        &mut self,
        name: &str,
        dev: Rc<dyn BlockDevice>,
        info: FilesystemInfo,
        partuuid: Option<String>,
        partlabel: Option<String>,
    ) {
        let fail = |set: &mut Self, e: FsError| {
            set.warnings.push(format!("{name}: {e}"));
            set.open_errors.push((name.to_string(), e));
        };
        let mut device = Volume {
            info: info.clone(),
            partuuid,
            partlabel,
            fs: None,
            subvolume: None,
        };
        let opened = Btrfs::open(dev).and_then(|b| {
            let default = b.default_subvolume()?;
            Ok((b, default))
        });
        let (btrfs, default) = match opened {
            Ok(o) => o,
            Err(e) => {
                fail(self, e);
                self.volumes.push(device);
                return;
            }
        };
        let subvols = btrfs.subvolumes().unwrap_or_else(|e| {
            self.warnings.push(format!("{name}: subvolumes: {e}"));
            Vec::new()
        });
        let default_path = subvols
            .iter()
            .find(|s| s.id == default)
            .map_or_else(String::new, |s| s.path.clone());
        match btrfs.subvolume(default) {
            Ok(f) => device.fs = Some(Rc::new(f)),
            Err(e) => fail(self, e),
        }
        device.subvolume = Some(Subvolume {
            device: name.to_string(),
            id: default,
            path: default_path,
        });
        self.volumes.push(device);
        for s in subvols.into_iter().filter(|s| s.id != default) {
            let vname = format!("btrfsvol:{name}/{}", s.path);
            let fs: Option<Rc<dyn FileSystem>> = match btrfs.subvolume(s.id) {
                Ok(f) => Some(Rc::new(f)),
                Err(e) => {
                    self.warnings.push(format!("{vname}: {e}"));
                    self.open_errors.push((vname.clone(), e));
                    None
                }
            };
            self.volumes.push(Volume {
                info: FilesystemInfo {
                    device: vname,
                    ..info.clone()
                },
                partuuid: None,
                partlabel: None,
                fs,
                subvolume: Some(Subvolume {
                    device: name.to_string(),
                    id: s.id,
                    path: s.path,
                }),
            });
        }
    }

    /// Why the filesystem on `name` could not be opened, if it could not.
    pub fn open_error(&self, name: &str) -> Option<&FsError> {
        let name = self.canonical(name);
        self.open_errors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e)
    }

    /// The volume on device `name` (an LV also by its `/dev/mapper/VG-LV` name).
    pub fn volume(&self, name: &str) -> Option<&Volume> {
        let name = self.canonical(name);
        self.volumes
            .iter()
            .find(|v| v.info.device == name)
            .or_else(|| {
                // `btrfsvol:/dev/sda2//@/var`, as libguestfs names a `subvol=/@/var` mount.
                let rest = name.strip_prefix("btrfsvol:")?;
                self.volumes.iter().find(|v| {
                    v.is_subvolume()
                        && v.subvolume.as_ref().is_some_and(|s| {
                            rest.strip_prefix(s.device.as_str()).is_some_and(|p| {
                                p.starts_with('/') && p.trim_start_matches('/') == s.path
                            })
                        })
                })
            })
    }

    /// `name`, or the `/dev/VG/LV` path of the LV whose device-mapper name it is (as
    /// libguestfs accepts either for an LV).
    fn canonical<'a>(&'a self, name: &'a str) -> &'a str {
        if name.starts_with("/dev/mapper/")
            && let Some(lv) = self
                .logical_volumes
                .iter()
                .find(|p| lvm::mapper_of_path(p).as_deref() == Some(name))
        {
            return lv;
        }
        name
    }
}

/// Whether a partition type is one of a Windows dynamic disk's (LDM): MBR type 0x42, or the
/// GPT "LDM metadata" and "LDM data" types.
fn is_ldm(type_id: &str) -> bool {
    type_id.eq_ignore_ascii_case("42")
        || type_id.eq_ignore_ascii_case("5808C8AA-7E8F-42E0-85D2-E1E90434CFB3")
        || type_id.eq_ignore_ascii_case("AF9B60A0-1431-4F62-BC68-3311714A69AD")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 MiB MBR disk: partition 1 of type `kind` at 1 MiB, 2 MiB long, starting with
    /// an NTFS boot sector's OEM id.
    fn disk(kind: u8) -> Vec<u8> {
        let mut d = alloc::vec![0u8; 4 << 20];
        d[446 + 4] = kind;
        d[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        d[446 + 12..446 + 16].copy_from_slice(&4096u32.to_le_bytes());
        d[510..512].copy_from_slice(&[0x55, 0xAA]);
        d[(1 << 20) + 3..(1 << 20) + 11].copy_from_slice(b"NTFS    ");
        d
    }

    #[test]
    fn ldm_partitions_are_reported_not_read() {
        assert!(is_ldm("42"));
        assert!(is_ldm("af9b60a0-1431-4f62-bc68-3311714a69ad"));
        assert!(is_ldm("5808C8AA-7E8F-42E0-85D2-E1E90434CFB3"));
        assert!(!is_ldm("07"));
        assert!(!is_ldm("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"));
        let set = DiskSet::scan(&[Rc::new(disk(0x42)) as Rc<dyn BlockDevice>]);
        let v = set.volume("/dev/sda1").expect("the partition is listed");
        assert_eq!(v.info.fstype, "unknown");
        assert!(v.fs.is_none(), "never probed nor opened");
        let e = set.open_error("/dev/sda1").expect("a reason");
        assert!(
            matches!(e, FsError::Unsupported(m) if m.contains("dynamic disk (LDM)")),
            "{e:?}"
        );
        assert!(set.warnings.iter().any(|w| w.contains("LDM")));
        // The same partition as an ordinary NTFS type is probed.
        let set = DiskSet::scan(&[Rc::new(disk(0x07)) as Rc<dyn BlockDevice>]);
        assert!(
            set.open_error("/dev/sda1")
                .is_none_or(|e| !e.to_string().contains("LDM"))
        );
    }
}

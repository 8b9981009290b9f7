//! LVM2, read-only: physical volumes, volume groups and logical volumes.
//!
//! LVM is a volume layer, not a filesystem: a logical volume is a block device made of
//! extents of other block devices (the physical volumes). [`scan`] takes the devices that
//! carry an LVM2 label and gives the volume groups' logical volumes as block devices, on
//! which the disk scan then probes filesystems as it does on partitions.
//!
//! What is read:
//! - the PV label ([`label`]: `LABELONE` in one of the first four sectors, its checksum, the
//!   PV UUID, data and metadata areas);
//! - each metadata area ([`mda`]: header checksum, the committed `raw_locn`, the circular
//!   buffer's wrap-around, the text's checksum);
//! - the metadata text ([`text`], a small parser with bounded depth, lengths and counts) and
//!   the VG it describes ([`vg`]: id, seqno, extent size, PVs, LVs and their segments);
//! - VGs are assembled from all the PVs found, by VG UUID; the copy with the highest seqno
//!   is current, and PVs without a metadata area join through the VG's PV list;
//! - LVs made of `striped` segments (linear is striped with one stripe) are readable
//!   ([`device`]).
//!
//! What is not: thin LVs, RAID, mirrors, old-style snapshots (the
//! copy-on-write store LV), cache and writecache, VDO, LVs mapped onto other LVs (pvmove),
//! and LVs with an extent on a missing PV. Those are listed with an `Unsupported` error
//! and never become readable devices; their data is never misread as a filesystem. Pools
//! (thin, cache, VDO) are private to LVM2 (`lv_role`), which libguestfs's `lvs` does not
//! list: they are named in a warning, not listed. LVs
//! of a VG with a missing PV that lie wholly on the PVs present are readable, as LVM2's
//! default (`degraded`) activation mode activates them. Hidden sub-LVs (`pool_tmeta`,
//! `lv_rimage_0`, `lvol0_pmspare`...) and LVs skipped at activation are not listed, as
//! libguestfs's `lvs` does not list them. An LV holding a PV (LVM on LVM) is not scanned
//! again.
//!
//! Names are libguestfs's: `/dev/VG/LV`; fstab's `/dev/mapper/VG-LV` (dashes in either
//! name doubled) is matched by [`LogicalVolume::mapper_name`].
//!
//! Why not the `lamlvm` crate (0.1.3, MIT): it reads linear LVs on one PV only (no striped
//! LVs, no VG over several PVs, which RHEL installs on two disks have), and it pulls nom,
//! serde, snafu and tracing for a grammar of a few dozen lines. The formats here follow
//! LVM2's on-disk layout (lib/format_text/layout.h, lib/label/label.h) and the text that
//! `vgcfgbackup` writes; lamlvm was read for the checksum's seed and the ring's wrap.

pub mod crc;
pub mod device;
pub mod label;
pub mod mda;
pub mod text;
pub mod vg;

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use crate::fs::FsError;
use device::{LvDevice, PvDev};
use vg::VgMeta;

/// Most metadata areas read per PV (LVM2 writes one or two).
const MAX_MDAS: usize = 2;
/// Most metadata text read over all PVs (hostile disks with many PVs and huge texts).
const MAX_TOTAL_TEXT: usize = 32 << 20;

/// A logical volume found on the disks.
pub struct LogicalVolume {
    /// Its VG's name.
    pub vg: String,
    /// Its name.
    pub name: String,
    /// Its UUID as LVM2 writes it (with dashes).
    pub uuid: String,
    /// The LV as a device, or why it cannot be read.
    pub device: Result<Rc<dyn crate::disk::BlockDevice>, FsError>,
}

impl LogicalVolume {
    /// `/dev/VG/LV`, as libguestfs names it.
    pub fn path(&self) -> String {
        format!("/dev/{}/{}", self.vg, self.name)
    }

    /// `/dev/mapper/VG-LV`, device-mapper's name, with each `-` in either name doubled.
    pub fn mapper_name(&self) -> String {
        mapper_name(&self.vg, &self.name)
    }
}

/// `/dev/mapper/VG-LV` for VG `vg` and LV `lv`, with each `-` in either name doubled.
pub fn mapper_name(vg: &str, lv: &str) -> String {
    format!(
        "/dev/mapper/{}-{}",
        vg.replace('-', "--"),
        lv.replace('-', "--")
    )
}

/// The device-mapper name (`/dev/mapper/VG-LV`) of LV path `/dev/VG/LV`; `None` when
/// `path` is not of that form.
pub fn mapper_of_path(path: &str) -> Option<String> {
    let (vg, lv) = path.strip_prefix("/dev/")?.split_once('/')?;
    (vg::valid_name(vg) && vg::valid_name(lv)).then(|| mapper_name(vg, lv))
}

/// What [`scan`] found.
#[derive(Default)]
pub struct Scan {
    /// The visible LVs, sorted by VG name and LV name (as `lvs` sorts them).
    pub lvs: Vec<LogicalVolume>,
    /// Problems met (bad labels, areas or metadata, duplicate PVs or VG names).
    pub warnings: Vec<String>,
}

struct Pv {
    name: String,
    dev: Rc<dyn crate::disk::BlockDevice>,
    uuid: String,
}

/// Assembles the VGs on `pvs` (device name, device: the devices detected as
/// `LVM2_member`) and lists their LVs.
pub fn scan(pvs: &[(String, Rc<dyn crate::disk::BlockDevice>)]) -> Scan {
    let mut out = Scan::default();
    let mut found: Vec<Pv> = Vec::new();
    // The current metadata of each VG: the highest seqno among its copies.
    let mut vgs: Vec<VgMeta> = Vec::new();
    let mut text_read = 0usize;
    for (name, dev) in pvs {
        let label = match label::read(&**dev) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(e) => {
                out.warnings.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Some(first) = found.iter().find(|p| p.uuid == label.uuid) {
            out.warnings.push(format!(
                "{name}: PV {} is also on {}; using {}",
                label.uuid, first.name, first.name
            ));
            continue;
        }
        for &(start, size) in label.metadata_areas.iter().take(MAX_MDAS) {
            if text_read >= MAX_TOTAL_TEXT {
                out.warnings.push(format!(
                    "{name}: more than {MAX_TOTAL_TEXT} bytes of LVM metadata on the disks; the rest is not read"
                ));
                break;
            }
            let meta = mda::read_text(&**dev, start, size).and_then(|t| match t {
                None => Ok(None),
                Some(t) => {
                    text_read += t.len();
                    text::parse(&t)
                        .and_then(|top| vg::from_text(&top))
                        .map(Some)
                        .map_err(FsError::Corrupt)
                }
            });
            match meta {
                Ok(Some(m)) => match vgs.iter_mut().find(|v| v.uuid == m.uuid) {
                    Some(v) if v.seqno < m.seqno => *v = m,
                    Some(_) => {}
                    None => vgs.push(m),
                },
                Ok(None) => {}
                Err(e) => out.warnings.push(format!("{name}: {e}")),
            }
        }
        found.push(Pv {
            name: name.clone(),
            dev: dev.clone(),
            uuid: label.uuid,
        });
    }
    vgs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut names: Vec<&str> = Vec::new();
    for vg in &vgs {
        if names.contains(&vg.name.as_str()) {
            out.warnings.push(format!(
                "VG {}: another VG has the same name; its LVs are not listed",
                vg.name
            ));
            continue;
        }
        names.push(&vg.name);
        let pv_devs: Vec<PvDev<'_>> = vg
            .pvs
            .iter()
            .map(|meta| PvDev {
                meta,
                dev: if meta.missing {
                    None
                } else {
                    found
                        .iter()
                        .find(|p| p.uuid == meta.uuid)
                        .map(|p| p.dev.clone())
                },
            })
            .collect();
        for pv in pv_devs.iter().filter(|p| p.dev.is_none()) {
            out.warnings.push(format!(
                "VG {}: PV {} ({}) is missing",
                vg.name, pv.meta.uuid, pv.meta.key
            ));
        }
        for lv in vg.lvs.iter().filter(|lv| lv.visible && is_pool(lv)) {
            let why = LvDevice::build(vg, lv, &pv_devs)
                .err()
                .map_or_else(String::new, |e| format!(": {e}"));
            out.warnings.push(format!(
                "/dev/{}/{}: a pool, private to LVM2, not listed{why}",
                vg.name, lv.name
            ));
        }
        let mut lvs: Vec<LogicalVolume> = vg
            .lvs
            .iter()
            .filter(|lv| lv.visible && !is_pool(lv))
            .map(|lv| LogicalVolume {
                vg: vg.name.clone(),
                name: lv.name.clone(),
                uuid: lv.id.clone(),
                device: LvDevice::build(vg, lv, &pv_devs)
                    .map(|d| Rc::new(d) as Rc<dyn crate::disk::BlockDevice>),
            })
            .collect();
        lvs.sort_by(|a, b| a.name.cmp(&b.name));
        out.lvs.extend(lvs);
    }
    out
}

/// Whether `lv` is a pool (thin, cache or VDO): visible in the metadata but private in
/// LVM2's `lv_role`, so not among the LVs libguestfs lists (`lvs -S lv_role=public`).
fn is_pool(lv: &vg::LvMeta) -> bool {
    lv.segments.as_ref().is_ok_and(|segs| {
        segs.iter().any(|s| {
            matches!(&s.kind, vg::SegKind::Other(t)
                if matches!(t.as_str(), "thin-pool" | "cache-pool" | "vdo-pool"))
        })
    })
}

#[cfg(test)]
mod tests;

//! A logical volume as a [`BlockDevice`]: its segments mapped onto the PVs' devices, each
//! read split at segment and stripe boundaries.
//!
//! Everything is checked when the LV is built ([`LvDevice::build`]): the segments follow
//! one another from extent 0 without gap or overlap, every stripe lies inside its PV's
//! extents and inside the device the PV was found on, so a read never leaves the areas
//! LVM2 allocated to the LV. The arithmetic in [`LvDevice::read_at`] cannot overflow after
//! those checks, and is checked anyway.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use super::vg::{LvMeta, PvMeta, SegKind, VgMeta};
use crate::disk::{BlockDevice, DiskError, SECTOR, check_range};
use crate::fs::FsError;

/// Largest LV size accepted, in bytes (8 EiB, the most a `u64` byte offset reaches safely).
const MAX_SIZE: u64 = 1 << 63;

/// One segment: `len` bytes of the LV from `start`, over its stripes.
struct Segment {
    start: u64,
    len: u64,
    /// Chunk size in bytes (the whole segment for one stripe).
    chunk: u64,
    /// (device, byte offset of the stripe's first extent on it).
    stripes: Vec<(Rc<dyn BlockDevice>, u64)>,
}

/// A readable LV.
pub struct LvDevice {
    size: u64,
    segments: Vec<Segment>,
}

/// A PV of the VG and the device it was found on, if it was.
pub struct PvDev<'a> {
    /// What the VG says of it.
    pub meta: &'a PvMeta,
    /// The device (`None`: missing).
    pub dev: Option<Rc<dyn BlockDevice>>,
}

fn corrupt(lv: &str, what: impl core::fmt::Display) -> FsError {
    FsError::Corrupt(format!("LV {lv}: {what}"))
}

impl LvDevice {
    /// Builds LV `lv` of `vg` over `pvs` (one per PV of the VG). Segment types other than
    /// striped are [`FsError::Unsupported`], and so is an LV on a missing PV; bad geometry
    /// is [`FsError::Corrupt`].
    pub fn build(vg: &VgMeta, lv: &LvMeta, pvs: &[PvDev<'_>]) -> Result<Self, FsError> {
        let name = format!("{}/{}", vg.name, lv.name);
        if let Some(origin) = &lv.snapshot_of {
            return Err(FsError::Unsupported(format!(
                "LV {name}: a snapshot of {origin} (copy-on-write store), not read"
            )));
        }
        let segs = lv.segments.as_ref().map_err(|e| corrupt(&name, e))?;
        if segs.is_empty() {
            return Err(corrupt(&name, "no segments"));
        }
        if let Some(other) = segs.iter().find_map(|s| match &s.kind {
            SegKind::Other(t) => Some(t),
            SegKind::Striped { .. } => None,
        }) {
            let what = match other.as_str() {
                "thin-pool" => "a thin pool",
                "thin" => "a thin LV",
                "mirror" => "a mirror",
                "snapshot" => "a snapshot",
                "cache" | "cache-pool" | "writecache" => "a cached LV",
                t if t.starts_with("raid") => "a RAID LV",
                _ => "an LV",
            };
            return Err(FsError::Unsupported(format!(
                "LV {name}: {what} (segment type {other:?}), which is not read"
            )));
        }
        let ext = vg
            .extent_size
            .checked_mul(SECTOR)
            .ok_or_else(|| corrupt(&name, "extent size overflows"))?;
        let mut out = Self {
            size: 0,
            segments: Vec::new(),
        };
        let mut next = 0u64;
        for (i, seg) in segs.iter().enumerate() {
            let SegKind::Striped {
                stripe_size,
                stripes,
            } = &seg.kind
            else {
                continue; // refused above
            };
            let n = i + 1;
            if seg.start_extent != next {
                return Err(corrupt(
                    &name,
                    format!(
                        "segment {n} starts at extent {}, expected {next} (a gap or an overlap)",
                        seg.start_extent
                    ),
                ));
            }
            let count = stripes.len() as u64;
            if seg.extent_count == 0 || seg.extent_count % count != 0 {
                return Err(corrupt(
                    &name,
                    format!(
                        "segment {n}: {} extents over {count} stripes",
                        seg.extent_count
                    ),
                ));
            }
            let per_stripe = seg.extent_count / count;
            let len = seg
                .extent_count
                .checked_mul(ext)
                .filter(|l| {
                    next.checked_mul(ext)
                        .and_then(|s| s.checked_add(*l))
                        .is_some_and(|e| e <= MAX_SIZE)
                })
                .ok_or_else(|| corrupt(&name, format!("segment {n} is too large")))?;
            let area_bytes = per_stripe * ext; // <= len
            let chunk = if count == 1 {
                area_bytes
            } else {
                stripe_size
                    .checked_mul(SECTOR)
                    .filter(|&c| c > 0 && area_bytes.is_multiple_of(c))
                    .ok_or_else(|| {
                        corrupt(
                            &name,
                            format!(
                                "segment {n}: stripe size {stripe_size} sectors does not divide its {per_stripe} extents"
                            ),
                        )
                    })?
            };
            let mut devs = Vec::new();
            for (key, first) in stripes {
                let Some(pv) = pvs.iter().find(|p| &p.meta.key == key) else {
                    return Err(FsError::Unsupported(format!(
                        "LV {name}: segment {n} maps onto {key:?}, which is not a PV of the VG (a pvmove or a stacked LV), not read"
                    )));
                };
                let Some(dev) = pv.dev.clone() else {
                    return Err(FsError::Unsupported(format!(
                        "LV {name}: PV {} ({key}) of VG {} is missing",
                        pv.meta.uuid, vg.name
                    )));
                };
                let end = first
                    .checked_add(per_stripe)
                    .filter(|&e| e <= pv.meta.pe_count)
                    .ok_or_else(|| {
                        corrupt(
                            &name,
                            format!(
                                "segment {n}: extents {first}+{per_stripe} past the {} extents of {key}",
                                pv.meta.pe_count
                            ),
                        )
                    })?;
                let base = pv
                    .meta
                    .pe_start
                    .checked_mul(SECTOR)
                    .and_then(|s| s.checked_add(first.checked_mul(ext)?))
                    .ok_or_else(|| corrupt(&name, format!("segment {n}: offset overflows")))?;
                let fits = base
                    .checked_add(area_bytes)
                    .is_some_and(|e| e <= dev.size());
                if !fits {
                    return Err(corrupt(
                        &name,
                        format!(
                            "segment {n}: extents {first}..{end} of {key} are past the end of its device ({} bytes)",
                            dev.size()
                        ),
                    ));
                }
                devs.push((dev, base));
            }
            out.segments.push(Segment {
                start: out.size,
                len,
                chunk,
                stripes: devs,
            });
            out.size += len;
            next += seg.extent_count;
        }
        Ok(out)
    }
}

impl BlockDevice for LvDevice {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size)?;
        let oops = || DiskError::Device(String::from("LV mapping arithmetic overflowed"));
        let mut pos = offset;
        let mut done = 0usize;
        while done < buf.len() {
            // The segment holding `pos`: the last that starts at or before it.
            let i = self.segments.partition_point(|s| s.start <= pos);
            let seg = i
                .checked_sub(1)
                .and_then(|i| self.segments.get(i))
                .ok_or_else(oops)?;
            let within = pos - seg.start;
            if within >= seg.len {
                return Err(oops());
            }
            let count = seg.stripes.len() as u64;
            let chunk_no = within / seg.chunk;
            let in_chunk = within % seg.chunk;
            let (dev, base) = seg
                .stripes
                .get((chunk_no % count) as usize)
                .ok_or_else(oops)?;
            let at = (chunk_no / count)
                .checked_mul(seg.chunk)
                .and_then(|r| r.checked_add(*base))
                .and_then(|r| r.checked_add(in_chunk))
                .ok_or_else(oops)?;
            let left = (buf.len() - done) as u64;
            let n = left.min(seg.chunk - in_chunk) as usize;
            dev.read_at(at, &mut buf[done..done + n])?;
            done += n;
            pos += n as u64;
        }
        Ok(())
    }
}

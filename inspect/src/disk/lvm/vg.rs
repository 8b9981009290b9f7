//! A volume group as its metadata text describes it: its PVs, its LVs and their segments.
//!
//! Only what reading needs is taken; anything else is ignored. A malformed VG (no id,
//! seqno or extent size, a bad name) is refused as a whole; a malformed LV is kept with the
//! reason, so it can be listed with an error.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::text::{Section, Value};

/// Most PVs in one VG.
pub const MAX_PVS: usize = 1024;
/// Most LVs in one VG (visible and hidden).
pub const MAX_LVS: usize = 4096;
/// Most segments in one LV.
pub const MAX_SEGMENTS: usize = 4096;
/// Most stripes in one segment (LVM2's own limit is 128).
pub const MAX_STRIPES: usize = 128;

/// One PV of the VG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvMeta {
    /// Its key in the VG (`pv0`), which segments name.
    pub key: String,
    /// Its UUID without dashes.
    pub uuid: String,
    /// First sector of its first extent.
    pub pe_start: u64,
    /// Extents on it.
    pub pe_count: u64,
    /// Whether LVM2 marked it missing.
    pub missing: bool,
}

/// What a segment maps its extents to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegKind {
    /// `type = "striped"`: linear with one stripe. `stripe_size` in sectors (0 for one
    /// stripe); `stripes` as (PV key, first extent on that PV).
    Striped {
        /// Chunk size in sectors.
        stripe_size: u64,
        /// (PV key, first extent).
        stripes: Vec<(String, u64)>,
    },
    /// Any other type (`thin-pool`, `thin`, `raid1`, `mirror`, `snapshot`, `cache` ...).
    Other(String),
}

/// One segment of an LV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegMeta {
    /// First LV extent it maps.
    pub start_extent: u64,
    /// Extents it maps (over all its stripes).
    pub extent_count: u64,
    /// Its mapping.
    pub kind: SegKind,
}

/// One LV of the VG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvMeta {
    /// Its name.
    pub name: String,
    /// Its UUID as LVM2 writes it (with dashes).
    pub id: String,
    /// Whether it is visible (not a sub-LV such as `pool_tmeta` or `lv_rimage_0`) and
    /// not skipped at activation.
    pub visible: bool,
    /// Its segments, in extent order, or why they could not be read.
    pub segments: Result<Vec<SegMeta>, String>,
    /// The LV whose snapshot this LV is the copy-on-write store of, if it is one.
    pub snapshot_of: Option<String>,
}

/// A VG's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VgMeta {
    /// Its name.
    pub name: String,
    /// Its UUID without dashes.
    pub uuid: String,
    /// Metadata sequence number: the highest copy is current.
    pub seqno: u64,
    /// Extent size in sectors.
    pub extent_size: u64,
    /// Its PVs.
    pub pvs: Vec<PvMeta>,
    /// Its LVs.
    pub lvs: Vec<LvMeta>,
}

/// Whether `name` is a name LVM2 accepts for a VG or LV (so that `/dev/VG/LV` is a path
/// of exactly three components).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'_' | b'.' | b'-'))
}

/// A UUID without its dashes.
pub fn bare_uuid(id: &str) -> String {
    id.chars().filter(|&c| c != '-').collect()
}

fn uint(sec: &Section, key: &str, what: &str) -> Result<u64, String> {
    let v = sec
        .int(key)
        .ok_or_else(|| format!("{what}: no integer {key}"))?;
    u64::try_from(v).map_err(|_| format!("{what}: negative {key} {v}"))
}

/// The VG described by metadata text `top` (the parsed text of one metadata area).
pub fn from_text(top: &Section) -> Result<VgMeta, String> {
    // The VG is the one section at the top level; the rest is key = value.
    let mut vgs = top.sections();
    let Some((name, vg)) = vgs.next() else {
        return Err(String::from("metadata text names no volume group"));
    };
    if vgs.next().is_some() {
        return Err(String::from(
            "metadata text holds more than one volume group",
        ));
    }
    if !valid_name(name) {
        return Err(format!("bad VG name {name:?}"));
    }
    let what = format!("VG {name}");
    let id = vg.str("id").ok_or_else(|| format!("{what}: no id"))?;
    let seqno = uint(vg, "seqno", &what)?;
    let extent_size = uint(vg, "extent_size", &what)?;
    if extent_size == 0 || extent_size > 1 << 32 {
        return Err(format!("{what}: extent size {extent_size} sectors"));
    }
    let mut out = VgMeta {
        name: name.to_string(),
        uuid: bare_uuid(id),
        seqno,
        extent_size,
        pvs: Vec::new(),
        lvs: Vec::new(),
    };
    if let Some(pvs) = vg.section("physical_volumes") {
        for (key, pv) in pvs.sections() {
            if out.pvs.len() >= MAX_PVS {
                return Err(format!("{what}: more than {MAX_PVS} PVs"));
            }
            let pwhat = format!("{what}: PV {key}");
            let id = pv.str("id").ok_or_else(|| format!("{pwhat}: no id"))?;
            out.pvs.push(PvMeta {
                key: key.to_string(),
                uuid: bare_uuid(id),
                pe_start: uint(pv, "pe_start", &pwhat)?,
                pe_count: uint(pv, "pe_count", &pwhat)?,
                missing: pv.has_flag("flags", "MISSING") || pv.has_flag("status", "MISSING"),
            });
        }
    }
    if let Some(lvs) = vg.section("logical_volumes") {
        for (lv_name, lv) in lvs.sections() {
            if out.lvs.len() >= MAX_LVS {
                return Err(format!("{what}: more than {MAX_LVS} LVs"));
            }
            if !valid_name(lv_name) {
                return Err(format!("{what}: bad LV name {lv_name:?}"));
            }
            out.lvs.push(LvMeta {
                name: lv_name.to_string(),
                id: lv.str("id").unwrap_or("").to_string(),
                visible: lv.has_flag("status", "VISIBLE") && !skipped(lv),
                segments: segments(lv),
                snapshot_of: None,
            });
        }
    }
    // Old-style snapshots: a hidden LV with a "snapshot" segment names the visible LV that
    // holds the copy-on-write data (`cow_store`) and the origin.
    let mut cows = Vec::new();
    if let Some(lvs) = vg.section("logical_volumes") {
        for (_, lv) in lvs.sections() {
            for (_, seg) in lv.sections() {
                if seg.str("type") == Some("snapshot")
                    && let (Some(cow), Some(origin)) = (seg.str("cow_store"), seg.str("origin"))
                {
                    cows.push((cow.to_string(), origin.to_string()));
                }
            }
        }
    }
    // LVM2 writes the store hidden but lists it under its own name (lv_role public,
    // snapshot), as libguestfs does: it is listed, and refused when read.
    for (cow, origin) in cows {
        if let Some((lv, sec)) = out
            .lvs
            .iter_mut()
            .zip(lvs_sections(vg))
            .find(|(l, _)| l.name == cow)
        {
            lv.visible = !skipped(sec);
            lv.snapshot_of = Some(origin);
        }
    }
    Ok(out)
}

/// The LV sections of `vg`, in the order [`from_text`] takes them.
fn lvs_sections(vg: &Section) -> impl Iterator<Item = &Section> {
    vg.section("logical_volumes")
        .into_iter()
        .flat_map(|l| l.sections().map(|(_, s)| s))
}

/// Whether LV section `lv` is skipped at activation (thin snapshots by default), which
/// libguestfs's `lvs` leaves out.
fn skipped(lv: &Section) -> bool {
    lv.has_flag("status", "ACTIVATION_SKIP") || lv.has_flag("flags", "ACTIVATION_SKIP")
}

/// The segments of `lv` (sections named `segment1`, `segment2` ...), sorted by extent.
fn segments(lv: &Section) -> Result<Vec<SegMeta>, String> {
    let declared = lv
        .int("segment_count")
        .ok_or_else(|| String::from("no segment_count"))?;
    let mut segs = Vec::new();
    for (name, seg) in lv.sections() {
        if !name.starts_with("segment") {
            continue;
        }
        if segs.len() >= MAX_SEGMENTS {
            return Err(format!("more than {MAX_SEGMENTS} segments"));
        }
        let what = name;
        let start_extent = uint(seg, "start_extent", what)?;
        let extent_count = uint(seg, "extent_count", what)?;
        let ty = seg.str("type").ok_or_else(|| format!("{what}: no type"))?;
        let kind = if ty == "striped" {
            let count = uint(seg, "stripe_count", what)?;
            let list = seg
                .array("stripes")
                .ok_or_else(|| format!("{what}: no stripes"))?;
            if count == 0 || count > MAX_STRIPES as u64 || list.len() as u64 != count * 2 {
                return Err(format!(
                    "{what}: stripe_count {count} with {} stripe values",
                    list.len()
                ));
            }
            let mut stripes = Vec::new();
            for pair in list.chunks_exact(2) {
                match pair {
                    [Value::Str(pv), Value::Int(start)] if *start >= 0 => {
                        stripes.push((pv.clone(), *start as u64));
                    }
                    _ => return Err(format!("{what}: a stripe is not (\"pvN\", extent)")),
                }
            }
            let stripe_size = if count > 1 {
                uint(seg, "stripe_size", what)?
            } else {
                0
            };
            SegKind::Striped {
                stripe_size,
                stripes,
            }
        } else {
            SegKind::Other(ty.to_string())
        };
        segs.push(SegMeta {
            start_extent,
            extent_count,
            kind,
        });
    }
    if declared < 0 || declared as u64 != segs.len() as u64 {
        return Err(format!(
            "segment_count {declared}, but {} segments",
            segs.len()
        ));
    }
    segs.sort_by_key(|s| s.start_extent);
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::super::text::parse;
    use super::*;

    const VG: &str = r#"rhel {
id = "qksrir-c9WG-6cLt-udCx-ydd1-lVBb-xxAu1d"
seqno = 4
extent_size = 8192
physical_volumes {
pv0 { id = "3Njl3M-7lxJ-uaRR-9uwU-NaLW-Acjr-ccBRKn" pe_start = 2048 pe_count = 15 }
pv1 { id = "x" flags = ["MISSING"] pe_start = 2048 pe_count = 15 }
}
logical_volumes {
root { id = "r" status = ["READ", "VISIBLE"] segment_count = 2
  segment2 { start_extent = 2 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 3] }
  segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv0", 0] }
}
data { id = "d" status = ["VISIBLE"] segment_count = 1
  segment1 { start_extent = 0 extent_count = 4 type = "striped" stripe_count = 2 stripe_size = 128
    stripes = ["pv0", 4, "pv1", 0] }
}
pool_tmeta { id = "t" status = ["READ"] segment_count = 1
  segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 9] }
}
pool { id = "p" status = ["VISIBLE"] segment_count = 1
  segment1 { start_extent = 0 extent_count = 1 type = "thin-pool" metadata = "pool_tmeta" }
}
snap { id = "s" status = ["READ"] segment_count = 1
  segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 10] }
}
snapshot0 { id = "s0" status = ["READ"] segment_count = 1
  segment1 { start_extent = 0 extent_count = 1 type = "snapshot" cow_store = "snap" origin = "root" }
}
bad { status = ["VISIBLE"] segment_count = 3 }
}
}
contents = "Text Format Volume Group"
"#;

    #[test]
    fn reads_a_vg() {
        let vg = from_text(&parse(VG.as_bytes()).unwrap()).unwrap();
        assert_eq!(vg.name, "rhel");
        assert_eq!(vg.uuid, "qksrirc9WG6cLtudCxydd1lVBbxxAu1d");
        assert_eq!((vg.seqno, vg.extent_size), (4, 8192));
        assert_eq!(vg.pvs[0].uuid, "3Njl3M7lxJuaRR9uwUNaLWAcjrccBRKn");
        assert!(!vg.pvs[0].missing && vg.pvs[1].missing);
        let lv = |n: &str| vg.lvs.iter().find(|l| l.name == n).unwrap();
        let root = lv("root").segments.as_ref().unwrap();
        assert_eq!(root[0].start_extent, 0);
        assert_eq!(
            root[1].kind,
            SegKind::Striped {
                stripe_size: 0,
                stripes: alloc::vec![(String::from("pv0"), 3)]
            }
        );
        assert!(matches!(&lv("data").segments.as_ref().unwrap()[0].kind,
            SegKind::Striped { stripe_size: 128, stripes } if stripes.len() == 2));
        assert!(!lv("pool_tmeta").visible && lv("pool").visible);
        assert_eq!(
            lv("pool").segments.as_ref().unwrap()[0].kind,
            SegKind::Other(String::from("thin-pool"))
        );
        assert_eq!(lv("snap").snapshot_of.as_deref(), Some("root"));
        assert!(lv("snap").visible && !lv("snapshot0").visible);
        assert!(
            lv("bad")
                .segments
                .as_ref()
                .unwrap_err()
                .contains("segment_count 3")
        );
    }

    #[test]
    fn refuses_bad_vgs() {
        let vg = |t: &str| from_text(&parse(t.as_bytes()).unwrap()).unwrap_err();
        assert!(vg("contents = \"x\"").contains("no volume group"));
        assert!(vg("a { } b { }").contains("more than one"));
        assert!(vg("-a { id = \"x\" seqno = 1 extent_size = 1 }").contains("bad VG name"));
        assert!(vg("a { seqno = 1 extent_size = 8 }").contains("no id"));
        assert!(vg("a { id = \"x\" seqno = -1 extent_size = 8 }").contains("negative"));
        assert!(vg("a { id = \"x\" seqno = 1 extent_size = 0 }").contains("extent size"));
        assert!(
            vg("a { id = \"x\" seqno = 1 extent_size = 8 logical_volumes { .. { } } }")
                .contains("bad LV name")
        );
        let seg = |s: &str| {
            let t = format!(
                "a {{ id = \"x\" seqno = 1 extent_size = 8 logical_volumes {{ l {{ segment_count = 1 segment1 {{ {s} }} }} }} }}"
            );
            from_text(&parse(t.as_bytes()).unwrap()).unwrap().lvs[0]
                .segments
                .clone()
                .unwrap_err()
        };
        assert!(seg("start_extent = 0 extent_count = 1 type = \"striped\" stripe_count = 2 stripes = [\"pv0\", 0]").contains("stripe_count 2"));
        assert!(seg("start_extent = 0 extent_count = 1 type = \"striped\" stripe_count = 1 stripes = [0, \"pv0\"]").contains("not"));
        assert!(seg("start_extent = 0 extent_count = 1 type = \"striped\" stripe_count = 1 stripes = [\"pv0\", -1]").contains("not"));
        assert!(seg("start_extent = 0 extent_count = 2 type = \"striped\" stripe_count = 2 stripes = [\"pv0\", 0, \"pv0\", 1]").contains("stripe_size"));
        assert!(seg("start_extent = 0 extent_count = 1 type = \"striped\" stripe_count = 1000000 stripes = []").contains("stripe_count"));
        assert!(seg("extent_count = 1 type = \"linear\"").contains("start_extent"));
        assert!(seg("start_extent = 0 extent_count = 1").contains("no type"));
    }
}

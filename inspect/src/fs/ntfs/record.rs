//! MFT records and index records: the update sequence (fixups), attribute headers and run
//! lists, each checked against the record it is in and the volume it describes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::corrupt;
use crate::disk::{le16, le32, le64};
use crate::fs::FsError;

/// The stride of the update sequence: the last two bytes of every 512 are moved into the
/// update sequence array when a record is written.
pub const FIXUP_STRIDE: usize = 512;

/// Attribute types this reader uses.
pub const AT_STANDARD_INFORMATION: u32 = 0x10;
/// `$ATTRIBUTE_LIST`.
pub const AT_ATTRIBUTE_LIST: u32 = 0x20;
/// `$FILE_NAME`.
pub const AT_FILE_NAME: u32 = 0x30;
/// `$VOLUME_NAME`.
pub const AT_VOLUME_NAME: u32 = 0x60;
/// `$DATA`.
pub const AT_DATA: u32 = 0x80;
/// `$INDEX_ROOT`.
pub const AT_INDEX_ROOT: u32 = 0x90;
/// `$INDEX_ALLOCATION`.
pub const AT_INDEX_ALLOCATION: u32 = 0xA0;
/// `$BITMAP`.
pub const AT_BITMAP: u32 = 0xB0;
/// `$REPARSE_POINT`.
pub const AT_REPARSE_POINT: u32 = 0xC0;
/// The end marker of a record's attributes.
const AT_END: u32 = 0xFFFF_FFFF;

/// Record flag: the record is in use.
pub const RECORD_IN_USE: u16 = 0x1;
/// Record flag: the record is a directory (has a `$I30` index).
pub const RECORD_IS_DIRECTORY: u16 = 0x2;

/// Attribute flags: compressed (any of the low byte), encrypted, sparse.
pub const ATTR_COMPRESSED: u16 = 0x00FF;
/// Encrypted (EFS).
pub const ATTR_ENCRYPTED: u16 = 0x4000;
/// Sparse.
pub const ATTR_SPARSE: u16 = 0x8000;

/// Applies the update sequence of the record in `buf` (`magic`: `FILE` or `INDX`): checks
/// the array fits and covers exactly the record's 512-byte strides, and that each stride
/// ends with the update sequence number, then puts the saved bytes back.
pub fn apply_fixups(buf: &mut [u8], magic: &[u8; 4]) -> Result<(), FsError> {
    if buf.len() < 48 || &buf[0..4] != magic {
        return Err(corrupt(format!(
            "no {} signature",
            String::from_utf8_lossy(magic)
        )));
    }
    let usa = le16(buf, 4) as usize;
    let count = le16(buf, 6) as usize;
    let strides = buf.len() / FIXUP_STRIDE;
    if !buf.len().is_multiple_of(FIXUP_STRIDE) || count != strides + 1 {
        return Err(corrupt(format!(
            "update sequence of {count} entries for a {}-byte record",
            buf.len()
        )));
    }
    if usa < 0x28 || !usa.is_multiple_of(2) || usa + 2 * count > FIXUP_STRIDE - 2 {
        return Err(corrupt(format!("update sequence array at {usa}")));
    }
    let usn = [buf[usa], buf[usa + 1]];
    for i in 0..strides {
        let end = (i + 1) * FIXUP_STRIDE - 2;
        if buf[end..end + 2] != usn {
            return Err(corrupt(format!(
                "fixup mismatch in stride {i}: {:02x}{:02x}, update sequence number {:02x}{:02x}",
                buf[end + 1],
                buf[end],
                usn[1],
                usn[0]
            )));
        }
        let saved = usa + 2 * (i + 1);
        buf[end] = buf[saved];
        buf[end + 1] = buf[saved + 1];
    }
    Ok(())
}

/// A run of clusters: `len` clusters from `vcn` in the attribute, at `lcn` on the volume
/// or sparse (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First cluster in the attribute.
    pub vcn: u64,
    /// Clusters.
    pub len: u64,
    /// First cluster on the volume; `None` for a hole.
    pub lcn: Option<u64>,
}

/// Decodes a run list starting at `start_vcn` that must end at `last_vcn` (inclusive;
/// `u64::MAX` for an empty attribute), every run inside the volume's `clusters`.
pub fn decode_runs(
    data: &[u8],
    start_vcn: u64,
    last_vcn: u64,
    clusters: u64,
) -> Result<Vec<Run>, FsError> {
    let mut runs = Vec::new();
    let mut pos = 0usize;
    let mut vcn = start_vcn;
    let mut lcn: i64 = 0;
    loop {
        let Some(&head) = data.get(pos) else {
            return Err(corrupt("run list without its end"));
        };
        if head == 0 {
            break;
        }
        let (lb, ob) = ((head & 0x0f) as usize, (head >> 4) as usize);
        if lb == 0 || lb > 8 || ob > 8 {
            return Err(corrupt(format!("run header {head:#04x} at {pos}")));
        }
        let Some(field) = data.get(pos + 1..pos + 1 + lb + ob) else {
            return Err(corrupt(format!("run at {pos} runs past its attribute")));
        };
        let mut len = 0u64;
        for (i, &b) in field[..lb].iter().enumerate() {
            len |= (b as u64) << (8 * i);
        }
        if len == 0 || len > i64::MAX as u64 {
            return Err(corrupt(format!("run at {pos} of {len} clusters")));
        }
        let end = vcn
            .checked_add(len)
            .ok_or_else(|| corrupt(format!("run at {pos} overflows the VCNs")))?;
        let at = if ob == 0 {
            None
        } else {
            let mut delta = 0u64;
            for (i, &b) in field[lb..].iter().enumerate() {
                delta |= (b as u64) << (8 * i);
            }
            // Sign-extend from the field's top byte.
            let bits = 8 * ob as u32;
            let delta = if bits < 64 && delta >> (bits - 1) & 1 == 1 {
                (delta | (!0u64 << bits)) as i64
            } else {
                delta as i64
            };
            lcn = lcn
                .checked_add(delta)
                .filter(|&l| l >= 0)
                .ok_or_else(|| corrupt(format!("run at {pos} points before the volume")))?;
            let first = lcn as u64;
            if first.checked_add(len).is_none_or(|e| e > clusters) {
                return Err(corrupt(format!(
                    "run at {pos} ({len} clusters at {first}) points off the disk ({clusters} clusters)"
                )));
            }
            Some(first)
        };
        runs.push(Run { vcn, len, lcn: at });
        vcn = end;
        pos += 1 + lb + ob;
    }
    if vcn != last_vcn.wrapping_add(1) {
        return Err(corrupt(format!(
            "run list maps VCNs {start_vcn}..{vcn}, header says up to {last_vcn}"
        )));
    }
    Ok(runs)
}

/// An attribute's value: in the record, or a run list.
#[derive(Clone, Debug)]
pub enum Body {
    /// The value itself.
    Resident(Vec<u8>),
    /// A piece of a non-resident value.
    NonResident(NonResident),
}

/// A non-resident attribute (one piece of it, when an attribute list splits it).
#[derive(Clone, Debug)]
pub struct NonResident {
    /// First VCN this piece maps.
    pub start_vcn: u64,
    /// The runs of this piece.
    pub runs: Vec<Run>,
    /// Allocated bytes (valid in the piece at VCN 0).
    pub alloc_size: u64,
    /// Value bytes (valid in the piece at VCN 0).
    pub data_size: u64,
    /// Initialized bytes: past this, reads give zeros.
    pub init_size: u64,
    /// log2 of the clusters in a compression unit (0: not compressed).
    pub comp_unit: u8,
    /// Bytes actually allocated, for a compressed or sparse attribute (else `alloc_size`).
    pub compressed_size: u64,
}

/// One attribute of a record.
#[derive(Clone, Debug)]
pub struct Attr {
    /// Its type (`AT_*`).
    pub ty: u32,
    /// Its name, UTF-16.
    pub name: Vec<u16>,
    /// Attribute flags (`ATTR_*`).
    pub flags: u16,
    /// Its value.
    pub body: Body,
}

/// An MFT record, fixed up and parsed.
#[derive(Clone, Debug)]
pub struct Record {
    /// Record flags (`RECORD_*`).
    pub flags: u16,
    /// Hard link count.
    pub links: u16,
    /// The base record this extends (0: it is a base record, or extends `$MFT`).
    pub base: u64,
    /// The whole base reference, its sequence number included: 0 only in a base record
    /// (an extension record of `$MFT` has base record 0 and sequence number 1).
    pub base_ref: u64,
    /// Its attributes, in record order.
    pub attrs: Vec<Attr>,
}

/// Parses the fixed-up record `buf` of a volume with `clusters` clusters.
pub fn parse_record(buf: &[u8], clusters: u64) -> Result<Record, FsError> {
    let flags = le16(buf, 22);
    let links = le16(buf, 18);
    let base_ref = le64(buf, 32);
    let base = base_ref & 0x0000_FFFF_FFFF_FFFF;
    let used = (le32(buf, 24) as usize).min(buf.len());
    let mut off = le16(buf, 20) as usize;
    if off < 0x30 || !off.is_multiple_of(8) {
        return Err(corrupt(format!("first attribute at {off}")));
    }
    let mut attrs = Vec::new();
    loop {
        if off + 4 > used {
            return Err(corrupt(format!(
                "attributes run past the record ({used} bytes)"
            )));
        }
        let ty = le32(buf, off);
        if ty == AT_END {
            break;
        }
        let len = le32(buf, off + 4) as usize;
        if len < 24 || !len.is_multiple_of(8) || len > used - off {
            return Err(corrupt(format!(
                "attribute {ty:#x} at {off}: length {len} in a record of {used} bytes"
            )));
        }
        attrs.push(
            parse_attr(&buf[off..off + len], clusters).map_err(|e| match e {
                FsError::Corrupt(m) => corrupt(format!("attribute {ty:#x} at {off}: {m}")),
                other => other,
            })?,
        );
        off += len;
    }
    Ok(Record {
        flags,
        links,
        base,
        base_ref,
        attrs,
    })
}

/// Parses one attribute record `a` (exactly its length).
fn parse_attr(a: &[u8], clusters: u64) -> Result<Attr, FsError> {
    let ty = le32(a, 0);
    let non_resident = a[8] != 0;
    let name_len = a[9] as usize;
    let name_off = le16(a, 10) as usize;
    let flags = le16(a, 12);
    let name = if name_len == 0 {
        Vec::new()
    } else {
        let raw = a
            .get(name_off..name_off + 2 * name_len)
            .ok_or_else(|| corrupt("name runs past the attribute"))?;
        raw.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    };
    let body = if !non_resident {
        let vlen = le32(a, 16) as usize;
        let voff = le16(a, 20) as usize;
        let value = voff
            .checked_add(vlen)
            .and_then(|end| a.get(voff..end))
            .ok_or_else(|| corrupt(format!("value of {vlen} bytes at {voff} runs past it")))?;
        Body::Resident(value.to_vec())
    } else {
        if a.len() < 64 {
            return Err(corrupt("non-resident header cut short"));
        }
        let start_vcn = le64(a, 16);
        let last_vcn = le64(a, 24);
        let runs_off = le16(a, 32) as usize;
        let comp_unit = le16(a, 34);
        let alloc_size = le64(a, 40);
        let data_size = le64(a, 48);
        let init_size = le64(a, 56);
        if comp_unit > 16 {
            return Err(corrupt(format!(
                "compression unit of 2^{comp_unit} clusters"
            )));
        }
        if runs_off < 64 || runs_off > a.len() {
            return Err(corrupt(format!("run list at {runs_off}")));
        }
        let runs = decode_runs(&a[runs_off..], start_vcn, last_vcn, clusters)?;
        // The header has a compressed size (at 0x40) when the attribute is compressed or
        // sparse.
        let compressed_size = if flags & (ATTR_COMPRESSED | ATTR_SPARSE) != 0 && a.len() >= 72 {
            le64(a, 64)
        } else {
            alloc_size
        };
        Body::NonResident(NonResident {
            start_vcn,
            runs,
            alloc_size,
            data_size,
            init_size,
            comp_unit: comp_unit as u8,
            compressed_size,
        })
    };
    Ok(Attr {
        ty,
        name,
        flags,
        body,
    })
}

/// One entry of an `$ATTRIBUTE_LIST`: which record holds (a piece of) which attribute.
#[derive(Clone, Debug)]
pub struct ListEntry {
    /// Attribute type.
    pub ty: u32,
    /// The record holding it.
    pub record: u64,
}

/// Parses an attribute list value.
pub fn parse_attr_list(v: &[u8]) -> Result<Vec<ListEntry>, FsError> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + 26 <= v.len() {
        let ty = le32(v, off);
        let len = le16(v, off + 4) as usize;
        if ty == AT_END || len == 0 && ty == 0 {
            break;
        }
        if len < 26 || !len.is_multiple_of(8) || len > v.len() - off {
            return Err(corrupt(format!(
                "attribute list entry at {off} of {len} bytes"
            )));
        }
        let name_len = v[off + 6] as usize;
        let name_off = v[off + 7] as usize;
        if name_len > 0 && name_off + 2 * name_len > len {
            return Err(corrupt(format!(
                "attribute list entry at {off}: name past it"
            )));
        }
        out.push(ListEntry {
            ty,
            record: le64(v, off + 16) & 0x0000_FFFF_FFFF_FFFF,
        });
        off += len;
    }
    Ok(out)
}

/// UTF-16 to UTF-8, unpaired surrogates replaced by U+FFFD.
pub fn utf16(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

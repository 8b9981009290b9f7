//! NTFS, read-only, behind [`FileSystem`], answering what ntfs-3g answers when mounted with
//! its default options (as the libguestfs appliance mounts it).
//!
//! Written here rather than over the `ntfs` crate (0.4): that crate reads through
//! `Read + Seek` with a `&mut` reader on every call, pulls in binrw, derive_more and
//! strum's proc macros, does not decompress LZNT1, does not interpret reparse points or
//! Interix files, and does not count free clusters; what it does do (records with fixups,
//! attributes, run lists, attribute lists, index B-trees, upcase) is the small part, and
//! checking its bounds for hostile input would have meant reading and fuzzing as much
//! code as this is.
//!
//! What is read: the boot sector, the MFT (its own run list, through its attribute list if
//! it has one), records with their fixups ([`record`]), attribute lists, resident and
//! non-resident values with sparse runs and compressed units ([`lznt1`]), directories
//! through `$INDEX_ROOT` and `$INDEX_ALLOCATION` ([`index`]), `$UpCase` for
//! case-insensitive lookups, reparse points and Interix files ([`reparse`]), `$Bitmap` and
//! the MFT's bitmap for [`usage`](FileSystem::usage). What is not: named streams,
//! encrypted files (an Unsupported error), `$LogFile` (no replay), security descriptors.
//!
//! As ntfs-3g shows it with default options (uid and gid of the mounting root, no umask):
//! - modes are 0777 with the type: directories `040777`, files `0100777`, links
//!   `0120777` (the READONLY attribute changes nothing);
//! - a directory's size is its `$I30` `$INDEX_ALLOCATION`'s data size, 0 without one; a
//!   file's is its unnamed `$DATA`'s; a link's is its target's length;
//! - mtime is `$STANDARD_INFORMATION`'s last data change, in whole seconds;
//! - listings are in ntfs-3g's order (the root node's entries, then each index block's),
//!   without the DOS names of files that have a
//!   Win32 name, without the metadata files (records below 16 other than the root);
//! - lookups try the exact name, and failing that the name case-insensitively through the
//!   volume's `$UpCase` table (ntfs-3g is case-sensitive; libguestfs resolves case itself);
//! - names are UTF-16 turned into UTF-8, an unpaired surrogate replaced by U+FFFD (ntfs-3g
//!   refuses such a name); names holding `/` or NUL cannot be addressed and are left out;
//! - `usage`: clusters, free clusters counted in `$Bitmap`; inodes as ntfs-3g's `statfs`
//!   gives them, the MFT bitmap's capacity plus the records the free space could hold.
//!
//! Bounds, whatever the disk claims: every run lies inside the volume and the pieces of a
//! split attribute follow each other exactly; the MFT lies inside the volume; a file has at
//! most [`MAX_EXTENSIONS`] extension records, each naming the file as its base (`$MFT`'s:
//! record 0 with a sequence number), none of which may hold an attribute list, and an
//! attribute list may not list an attribute list (itself); index entries lie inside
//! their node, a listing reads each index block the `$I30` bitmap marks in use once (as
//! ntfs-3g lists them: the root node, then the blocks in VCN order), a lookup descends at
//! most [`MAX_DEPTH`] levels and never visits a node twice; a listing has at most [`MAX_ENTRIES`] entries; compression units
//! are at most [`MAX_UNIT`] bytes; values read whole (attribute lists, reparse points,
//! `$UpCase`) have fixed limits; the MFT's bitmap is counted only over the MFT's records. Errors name the record or path and what was wrong.

pub mod index;
pub mod lznt1;
pub mod record;
pub mod reparse;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::cmp::Ordering;

use vmchannel_proto::{DirEntry, FileKind, Stat, Usage};

use self::index::Entry;
use self::record::{
    AT_ATTRIBUTE_LIST, AT_BITMAP, AT_DATA, AT_INDEX_ALLOCATION, AT_INDEX_ROOT, AT_REPARSE_POINT,
    AT_STANDARD_INFORMATION, ATTR_COMPRESSED, ATTR_ENCRYPTED, Attr, Body, NonResident,
    RECORD_IN_USE, RECORD_IS_DIRECTORY, Record, Run,
};
use self::reparse::Special;
use super::{FileSystem, FsError, FullStat, MAX_SYMLINKS, RawDirEntry, Time};
use crate::disk::{BlockDevice, le16, le32, le64};

/// Most extension records one file may have.
pub const MAX_EXTENSIONS: usize = 1024;
/// Deepest index tree.
pub const MAX_DEPTH: usize = 32;
/// Most entries in one listing.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Largest compression unit.
pub const MAX_UNIT: u64 = 1 << 20;
/// Largest directory index bitmap read (8 Mi index blocks).
const MAX_INDEX_BITMAP: u64 = 1 << 20;
/// Largest attribute list read.
const MAX_ATTR_LIST: u64 = 256 << 10;
/// Largest reparse point value (Windows' limit is 16 KiB).
const MAX_REPARSE: u64 = 16 << 10;
/// Most path components (links included) walked for one path.
const MAX_STEPS: usize = 4096;

/// The root directory's record.
const ROOT: u64 = 5;
/// `$Bitmap`'s record.
const BITMAP: u64 = 6;
/// `$UpCase`'s record.
const UPCASE: u64 = 10;
/// The first record of an ordinary file.
const FIRST_USER: u64 = 16;

/// `$STANDARD_INFORMATION` file attributes.
const FA_HIDDEN: u32 = 0x2;
const FA_SYSTEM: u32 = 0x4;
const FA_REPARSE_POINT: u32 = 0x400;

/// `$I30`, the name of directory indexes.
const I30: [u16; 4] = [b'$' as u16, b'I' as u16, b'3' as u16, b'0' as u16];

/// 100-ns intervals between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF: i64 = 116_444_736_000_000_000;

pub(crate) fn corrupt(msg: impl Into<String>) -> FsError {
    FsError::Corrupt(msg.into())
}

fn io(msg: impl Into<String>) -> FsError {
    FsError::Io(msg.into())
}

/// Prefixes an error's message with `what`.
fn at(what: &str, e: FsError) -> FsError {
    match e {
        FsError::Corrupt(m) => FsError::Corrupt(format!("{what}: {m}")),
        FsError::Io(m) => FsError::Io(format!("{what}: {m}")),
        FsError::Unsupported(m) => FsError::Unsupported(format!("{what}: {m}")),
        other => other,
    }
}

/// A cluster-per-record style size field (`clusters_per_mft_record`,
/// `clusters_per_index_record`): clusters when positive, `2^-n` bytes when negative.
fn record_size(field: u8, cluster: u64) -> Option<u64> {
    let n = field as i8;
    let size = if n > 0 {
        (n as u64).checked_mul(cluster)?
    } else {
        1u64.checked_shl(n.unsigned_abs() as u32)?
    };
    (size.is_power_of_two() && (512..=65536).contains(&size)).then_some(size)
}

/// What the boot sector says.
#[derive(Clone, Debug)]
pub struct Geometry {
    /// Bytes per cluster.
    pub cluster_size: u64,
    /// Clusters in the volume.
    pub clusters: u64,
    /// The MFT's first cluster.
    pub mft_lcn: u64,
    /// Bytes per MFT record.
    pub record_size: u64,
    /// The volume serial number.
    pub serial: u64,
}

impl Geometry {
    /// Parses and checks an NTFS boot sector against a device of `dev_size` bytes.
    pub fn parse(b: &[u8], dev_size: u64) -> Result<Geometry, FsError> {
        if b.len() < 512 || &b[3..11] != b"NTFS    " {
            return Err(corrupt("boot sector: no NTFS signature"));
        }
        let sector = le16(b, 11) as u64;
        if !sector.is_power_of_two() || !(256..=4096).contains(&sector) {
            return Err(corrupt(format!("boot sector: {sector}-byte sectors")));
        }
        let spc = match b[13] {
            n @ 1..=0x80 => n as u64,
            n @ 0xF4..=0xFF => 1u64 << (256 - n as u32),
            n => return Err(corrupt(format!("boot sector: sectors per cluster {n:#x}"))),
        };
        if !spc.is_power_of_two() {
            return Err(corrupt(format!("boot sector: {spc} sectors per cluster")));
        }
        let cluster_size = sector * spc;
        if cluster_size > 2 << 20 {
            return Err(corrupt(format!(
                "boot sector: {cluster_size}-byte clusters"
            )));
        }
        let total = le64(b, 40);
        let clusters = total / spc;
        if clusters == 0
            || clusters
                .checked_mul(cluster_size)
                .is_none_or(|v| v > dev_size)
        {
            return Err(corrupt(format!(
                "boot sector: {clusters} clusters of {cluster_size} bytes on a device of {dev_size} bytes"
            )));
        }
        let mft_lcn = le64(b, 48);
        if mft_lcn >= clusters {
            return Err(corrupt(format!("boot sector: MFT at cluster {mft_lcn}")));
        }
        let record_size = record_size(b[64], cluster_size)
            .ok_or_else(|| corrupt(format!("boot sector: MFT record size field {:#x}", b[64])))?;
        Ok(Geometry {
            cluster_size,
            clusters,
            mft_lcn,
            record_size,
            serial: le64(b, 72),
        })
    }
}

/// An attribute's value, its pieces put together.
#[derive(Clone, Debug)]
enum Stream {
    Resident(Vec<u8>),
    NonResident {
        runs: Vec<Run>,
        size: u64,
        init: u64,
        comp_unit: u8,
        flags: u16,
    },
}

impl Stream {
    fn size(&self) -> u64 {
        match self {
            Stream::Resident(v) => v.len() as u64,
            Stream::NonResident { size, .. } => *size,
        }
    }
}

/// The pieces of one non-resident attribute, in VCN order, as one run list: the first
/// piece must start at VCN 0 and each next one where the last ended.
fn merge(mut pieces: Vec<&NonResident>) -> Result<(Vec<Run>, &NonResident), FsError> {
    pieces.sort_by_key(|p| p.start_vcn);
    let Some(&first) = pieces.first() else {
        return Err(corrupt("no attribute pieces"));
    };
    if first.start_vcn != 0 {
        return Err(corrupt(format!(
            "attribute starts at VCN {}",
            first.start_vcn
        )));
    }
    let mut runs = Vec::new();
    let mut next = 0u64;
    for p in pieces {
        if p.start_vcn != next {
            return Err(corrupt(format!(
                "attribute piece at VCN {} where VCN {next} was due (overlap or gap)",
                p.start_vcn
            )));
        }
        for r in &p.runs {
            next = r.vcn + r.len;
        }
        runs.extend_from_slice(&p.runs);
    }
    if first.init_size > first.data_size || first.data_size > first.alloc_size {
        return Err(corrupt(format!(
            "sizes: initialized {}, data {}, allocated {}",
            first.init_size, first.data_size, first.alloc_size
        )));
    }
    Ok((runs, first))
}

/// The value of the attribute `ty` named `name` among `attrs`, if there is one.
fn stream(attrs: &[Attr], ty: u32, name: &[u16]) -> Result<Option<Stream>, FsError> {
    let mine: Vec<&Attr> = attrs
        .iter()
        .filter(|a| a.ty == ty && a.name == name)
        .collect();
    let Some(first) = mine.first() else {
        return Ok(None);
    };
    if let Body::Resident(v) = &first.body {
        if mine.len() > 1 {
            return Err(corrupt(format!("attribute {ty:#x}: resident and repeated")));
        }
        return Ok(Some(Stream::Resident(v.clone())));
    }
    let mut pieces = Vec::new();
    for a in &mine {
        match &a.body {
            Body::NonResident(n) => pieces.push(n),
            Body::Resident(_) => {
                return Err(corrupt(format!(
                    "attribute {ty:#x}: resident and non-resident pieces"
                )));
            }
        }
    }
    let (runs, first_piece) = merge(pieces).map_err(|e| at(&format!("attribute {ty:#x}"), e))?;
    Ok(Some(Stream::NonResident {
        runs,
        size: first_piece.data_size,
        init: first_piece.init_size,
        comp_unit: first_piece.comp_unit,
        flags: first.flags,
    }))
}

/// A file: its base record's flags and the attributes of all its records.
#[derive(Clone, Debug)]
struct Inode {
    number: u64,
    flags: u16,
    /// The base record's hard link count.
    links: u16,
    attrs: Vec<Attr>,
}

impl Inode {
    fn attr(&self, ty: u32, name: &[u16]) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.ty == ty && a.name == name)
    }
}

/// What a stat says about a file, before it becomes a [`Stat`].
#[derive(Clone, Debug)]
struct Desc {
    kind: FileKind,
    size: u64,
    mtime: i64,
    target: Option<String>,
}

/// The mode ntfs-3g gives each kind with its default options.
fn mode_of(kind: FileKind) -> u32 {
    0o777
        | match kind {
            FileKind::Directory => 0o040000,
            FileKind::Symlink => 0o120000,
            FileKind::Fifo => 0o010000,
            FileKind::Socket => 0o140000,
            FileKind::CharDevice => 0o020000,
            FileKind::BlockDevice => 0o060000,
            _ => 0o100000,
        }
}

/// A decompressed compression unit: the file's record, the unit's index, its bytes.
type CachedUnit = (u64, u64, Rc<Vec<u8>>);

/// A directory's `$INDEX_ALLOCATION`: the stream, the block size, the VCN unit.
type Alloc = Option<(Stream, u64, u64)>;

/// An NTFS volume.
pub struct NtfsFs {
    dev: Rc<dyn BlockDevice>,
    geo: Geometry,
    /// The MFT's run list and size.
    mft_runs: Vec<Run>,
    mft_size: u64,
    /// `$UpCase`: 65536 entries.
    upcase: Vec<u16>,
    /// The last decompressed compression unit: (record, unit, bytes).
    unit: RefCell<Option<CachedUnit>>,
    /// Usage, once counted.
    usage: RefCell<Option<Usage>>,
}

impl NtfsFs {
    /// Opens the NTFS volume on `dev`: the boot sector, the MFT's run list (through its
    /// attribute list if it has one), `$UpCase`, and the root directory.
    pub fn open(dev: Rc<dyn BlockDevice>) -> Result<Self, FsError> {
        let mut boot = vec![0u8; 512];
        dev.read_at(0, &mut boot)
            .map_err(|e| io(format!("boot sector: {e}")))?;
        let geo = Geometry::parse(&boot, dev.size())?;
        let mut fs = NtfsFs {
            dev,
            geo,
            mft_runs: Vec::new(),
            mft_size: 0,
            upcase: Vec::new(),
            unit: RefCell::new(None),
            usage: RefCell::new(None),
        };
        fs.load_mft().map_err(|e| at("$MFT", e))?;
        fs.load_upcase().map_err(|e| at("$UpCase", e))?;
        let root = fs.inode(ROOT).map_err(|e| at("root directory", e))?;
        if root.flags & RECORD_IS_DIRECTORY == 0 {
            return Err(corrupt("root directory: not a directory"));
        }
        Ok(fs)
    }

    /// The volume serial number (blkid's UUID for NTFS, as 16 hex digits).
    pub fn serial(&self) -> u64 {
        self.geo.serial
    }

    /// The boot sector's figures.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    fn load_mft(&mut self) -> Result<(), FsError> {
        let rs = self.geo.record_size;
        let mut buf = vec![0u8; rs as usize];
        self.dev
            .read_at(self.geo.mft_lcn * self.geo.cluster_size, &mut buf)
            .map_err(|e| io(format!("record 0: {e}")))?;
        record::apply_fixups(&mut buf, b"FILE").map_err(|e| at("record 0", e))?;
        let rec0 = record::parse_record(&buf, self.geo.clusters).map_err(|e| at("record 0", e))?;
        let data_pieces = |r: &Record| -> Vec<NonResident> {
            r.attrs
                .iter()
                .filter(|a| a.ty == AT_DATA && a.name.is_empty())
                .filter_map(|a| match &a.body {
                    Body::NonResident(n) => Some(n.clone()),
                    Body::Resident(_) => None,
                })
                .collect()
        };
        let mut pieces = data_pieces(&rec0);
        {
            let (runs, first) = merge(pieces.iter().collect())?;
            self.mft_runs = runs;
            self.mft_size = first.data_size;
        }
        if rec0.attrs.iter().any(|a| a.ty == AT_ATTRIBUTE_LIST) {
            // Extension records are found through what is mapped so far.
            let list = self.attr_list(&rec0.attrs)?;
            let mut seen = BTreeSet::new();
            for e in list.iter().filter(|e| e.ty == AT_DATA && e.record != 0) {
                if !seen.insert(e.record) {
                    continue;
                }
                if seen.len() > MAX_EXTENSIONS {
                    return Err(corrupt("too many extension records"));
                }
                let ext = self.record(e.record)?;
                // $MFT's extension records name record 0 as their base, so only the
                // sequence number tells them from base records.
                if ext.flags & RECORD_IN_USE == 0 || ext.base != 0 || ext.base_ref == 0 {
                    return Err(corrupt(format!(
                        "extension record {} is not one of its own",
                        e.record
                    )));
                }
                pieces.extend(data_pieces(&ext));
            }
            let (runs, first) = merge(pieces.iter().collect())?;
            self.mft_runs = runs;
            self.mft_size = first.data_size;
        }
        if self.mft_size < 16 * rs || self.mft_size > self.geo.clusters * self.geo.cluster_size {
            return Err(corrupt(format!("{} bytes", self.mft_size)));
        }
        Ok(())
    }

    fn load_upcase(&mut self) -> Result<(), FsError> {
        let ino = self.inode(UPCASE)?;
        let s = stream(&ino.attrs, AT_DATA, &[])?.ok_or_else(|| corrupt("no $DATA"))?;
        if s.size() != 131072 {
            return Err(corrupt(format!("{} bytes, not 131072", s.size())));
        }
        let mut raw = vec![0u8; 131072];
        self.read_stream(&s, UPCASE, 0, &mut raw)?;
        self.upcase = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(())
    }

    fn up(&self, c: u16) -> u16 {
        self.upcase.get(c as usize).copied().unwrap_or(c)
    }

    /// NTFS's file name collation: the names upper-cased through `$UpCase`, unit by unit.
    fn collate(&self, a: &[u16], b: &[u16]) -> Ordering {
        for (x, y) in a.iter().zip(b) {
            match self.up(*x).cmp(&self.up(*y)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        a.len().cmp(&b.len())
    }

    /// Reads `buf.len()` bytes at byte `offset` of a run list (past `init`: zeros).
    fn read_runs(
        &self,
        runs: &[Run],
        init: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), FsError> {
        let cs = self.geo.cluster_size;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            if pos >= init {
                buf[done..].fill(0);
                break;
            }
            let vcn = pos / cs;
            let i = runs.partition_point(|r| r.vcn + r.len <= vcn);
            let Some(r) = runs.get(i).filter(|r| r.vcn <= vcn) else {
                return Err(corrupt(format!("no run maps VCN {vcn}")));
            };
            // A hole may be longer than the volume: its end in bytes saturates.
            let end = (r.vcn + r.len).saturating_mul(cs);
            let avail = (end - pos).min(init - pos);
            let within = pos - r.vcn * cs;
            let n = avail.min((buf.len() - done) as u64) as usize;
            match r.lcn {
                None => buf[done..done + n].fill(0),
                Some(lcn) => self
                    .dev
                    .read_at(lcn * cs + within, &mut buf[done..done + n])
                    .map_err(|e| io(format!("cluster {lcn}: {e}")))?,
            }
            done += n;
        }
        Ok(())
    }

    /// Reads from a stream at `offset`; returns the bytes read (fewer only at its end).
    /// `key` names the file, for the decompression cache.
    fn read_stream(
        &self,
        s: &Stream,
        key: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, FsError> {
        let size = s.size();
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = (size - offset).min(buf.len() as u64) as usize;
        let buf = &mut buf[..n];
        match s {
            Stream::Resident(v) => buf.copy_from_slice(&v[offset as usize..offset as usize + n]),
            Stream::NonResident {
                runs,
                init,
                comp_unit,
                flags,
                ..
            } => {
                if flags & ATTR_ENCRYPTED != 0 {
                    return Err(FsError::Unsupported(String::from("encrypted file")));
                }
                if flags & ATTR_COMPRESSED != 0 && *comp_unit != 0 {
                    self.read_compressed(runs, *init, *comp_unit, key, offset, buf)?;
                } else {
                    self.read_runs(runs, *init, offset, buf)?;
                }
            }
        }
        Ok(n)
    }

    /// Reads a compressed stream: unit by unit, each stored whole, sparse, or LZNT1 in its
    /// first clusters and sparse after them.
    fn read_compressed(
        &self,
        runs: &[Run],
        init: u64,
        comp_unit: u8,
        key: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), FsError> {
        let cs = self.geo.cluster_size;
        let uc = 1u64 << comp_unit;
        let ub = uc * cs;
        if ub > MAX_UNIT {
            return Err(FsError::Unsupported(format!("{ub}-byte compression units")));
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let u = pos / ub;
            let within = (pos % ub) as usize;
            let n = (ub as usize - within).min(buf.len() - done);
            if pos >= init {
                buf[done..].fill(0);
                break;
            }
            let data = self.unit(runs, uc, key, u)?;
            buf[done..done + n].copy_from_slice(&data[within..within + n]);
            done += n;
        }
        Ok(())
    }

    /// Compression unit `u` of `uc` clusters, decompressed (cached, the last one).
    fn unit(&self, runs: &[Run], uc: u64, key: u64, u: u64) -> Result<Rc<Vec<u8>>, FsError> {
        if let Some((k, i, d)) = &*self.unit.borrow()
            && *k == key
            && *i == u
        {
            return Ok(d.clone());
        }
        let cs = self.geo.cluster_size;
        let vcn0 = u
            .checked_mul(uc)
            .ok_or_else(|| corrupt(format!("compression unit {u}")))?;
        // The unit's clusters, in order: how many are allocated before the first hole.
        let mut lcns: Vec<Option<u64>> = Vec::with_capacity(uc as usize);
        for v in vcn0..vcn0 + uc {
            let i = runs.partition_point(|r| r.vcn + r.len <= v);
            match runs.get(i).filter(|r| r.vcn <= v) {
                Some(r) => lcns.push(r.lcn.map(|l| l + (v - r.vcn))),
                None => return Err(corrupt(format!("no run maps VCN {v}"))),
            }
        }
        let allocated = lcns.iter().take_while(|l| l.is_some()).count();
        let mut out = vec![0u8; (uc * cs) as usize];
        if allocated == lcns.len() {
            for (j, l) in lcns.iter().enumerate() {
                if let Some(l) = l {
                    let at = j * cs as usize;
                    self.dev
                        .read_at(l * cs, &mut out[at..at + cs as usize])
                        .map_err(|e| io(format!("cluster {l}: {e}")))?;
                }
            }
        } else if allocated > 0 {
            let mut packed = vec![0u8; allocated * cs as usize];
            for (j, l) in lcns.iter().take(allocated).enumerate() {
                if let Some(l) = l {
                    let at = j * cs as usize;
                    self.dev
                        .read_at(l * cs, &mut packed[at..at + cs as usize])
                        .map_err(|e| io(format!("cluster {l}: {e}")))?;
                }
            }
            lznt1::decompress(&packed, &mut out)
                .map_err(|e| corrupt(format!("compression unit {u}: {e}")))?;
        }
        let out = Rc::new(out);
        *self.unit.borrow_mut() = Some((key, u, out.clone()));
        Ok(out)
    }

    /// MFT record `n`, fixed up and parsed.
    fn record(&self, n: u64) -> Result<Record, FsError> {
        let rs = self.geo.record_size;
        let off = n
            .checked_mul(rs)
            .filter(|o| o.checked_add(rs).is_some_and(|e| e <= self.mft_size))
            .ok_or_else(|| {
                corrupt(format!(
                    "record {n} is past the MFT ({} bytes)",
                    self.mft_size
                ))
            })?;
        let mut buf = vec![0u8; rs as usize];
        self.read_runs(&self.mft_runs, self.mft_size, off, &mut buf)
            .map_err(|e| at(&format!("record {n}"), e))?;
        record::apply_fixups(&mut buf, b"FILE").map_err(|e| at(&format!("record {n}"), e))?;
        record::parse_record(&buf, self.geo.clusters).map_err(|e| at(&format!("record {n}"), e))
    }

    /// The entries of the attribute list among `attrs`.
    fn attr_list(&self, attrs: &[Attr]) -> Result<Vec<record::ListEntry>, FsError> {
        let s =
            stream(attrs, AT_ATTRIBUTE_LIST, &[])?.ok_or_else(|| corrupt("no attribute list"))?;
        if s.size() > MAX_ATTR_LIST {
            return Err(corrupt(format!("attribute list of {} bytes", s.size())));
        }
        let mut v = vec![0u8; s.size() as usize];
        self.read_stream(&s, u64::MAX, 0, &mut v)?;
        let list = record::parse_attr_list(&v).map_err(|e| at("attribute list", e))?;
        if list.iter().any(|e| e.ty == AT_ATTRIBUTE_LIST) {
            return Err(corrupt(
                "the attribute list lists an attribute list (itself)",
            ));
        }
        Ok(list)
    }

    /// File `n`: its base record and, through its attribute list, its extension records.
    fn inode(&self, n: u64) -> Result<Inode, FsError> {
        let rec = self.record(n)?;
        if rec.flags & RECORD_IN_USE == 0 {
            return Err(corrupt(format!("record {n} is not in use")));
        }
        if rec.base_ref != 0 {
            return Err(corrupt(format!("record {n} extends record {}", rec.base)));
        }
        let mut attrs = rec.attrs;
        if attrs.iter().any(|a| a.ty == AT_ATTRIBUTE_LIST) {
            let list = self
                .attr_list(&attrs)
                .map_err(|e| at(&format!("record {n}"), e))?;
            let mut seen = BTreeSet::new();
            for e in list.iter().filter(|e| e.record != n) {
                if !seen.insert(e.record) {
                    continue;
                }
                if seen.len() > MAX_EXTENSIONS {
                    return Err(corrupt(format!("record {n}: too many extension records")));
                }
                let ext = self.record(e.record)?;
                if ext.flags & RECORD_IN_USE == 0 || ext.base != n {
                    return Err(corrupt(format!(
                        "record {n}: extension record {} is not one of its own",
                        e.record
                    )));
                }
                if ext.attrs.iter().any(|a| a.ty == AT_ATTRIBUTE_LIST) {
                    return Err(corrupt(format!(
                        "record {n}: extension record {} has an attribute list",
                        e.record
                    )));
                }
                attrs.extend(ext.attrs);
            }
        }
        Ok(Inode {
            number: n,
            flags: rec.flags,
            links: rec.links,
            attrs,
        })
    }

    /// What `ino` is, as ntfs-3g shows it.
    fn describe(&self, ino: &Inode) -> Result<Desc, FsError> {
        let si = match ino.attr(AT_STANDARD_INFORMATION, &[]).map(|a| &a.body) {
            Some(Body::Resident(v)) if v.len() >= 36 => v,
            _ => {
                return Err(corrupt(format!(
                    "record {}: no $STANDARD_INFORMATION",
                    ino.number
                )));
            }
        };
        let mtime = (le64(si, 8) as i64)
            .wrapping_sub(EPOCH_DIFF)
            .div_euclid(10_000_000);
        let fa = le32(si, 32);
        let mut d = Desc {
            kind: FileKind::File,
            size: 0,
            mtime,
            target: None,
        };
        if fa & FA_REPARSE_POINT != 0
            && let Some(s) = stream(&ino.attrs, AT_REPARSE_POINT, &[])?
        {
            if s.size() > MAX_REPARSE {
                return Err(corrupt(format!(
                    "record {}: reparse point of {} bytes",
                    ino.number,
                    s.size()
                )));
            }
            let mut v = vec![0u8; s.size() as usize];
            self.read_stream(&s, u64::MAX, 0, &mut v)?;
            let mut sp = reparse::reparse(&v);
            if let Some(t) = &sp.target
                && let Some(rest) = t.strip_prefix("/.NTFS-3G/").and_then(|r| r.get(3..))
                && let Some(found) = self.on_volume(rest)
            {
                sp.target = Some(found);
            }
            return Ok(self.special(d, sp, ino));
        }
        if ino.flags & RECORD_IS_DIRECTORY != 0 {
            d.kind = FileKind::Directory;
            d.size = stream(&ino.attrs, AT_INDEX_ALLOCATION, &I30)?.map_or(0, |s| s.size());
            return Ok(d);
        }
        let data = stream(&ino.attrs, AT_DATA, &[])?;
        d.size = data.as_ref().map_or(0, Stream::size);
        if fa & FA_SYSTEM != 0 && fa & FA_HIDDEN == 0 {
            let special = reparse::interix(d.size, || {
                let s = data.as_ref()?;
                let mut v = vec![0u8; s.size() as usize];
                self.read_stream(s, ino.number, 0, &mut v).ok()?;
                Some(v)
            });
            if let Some(sp) = special {
                return Ok(self.special(d, sp, ino));
            }
        }
        Ok(d)
    }

    /// `/a/b` with the names as the volume spells them, if `a/b` (names looked up as
    /// [`lookup`](Self::lookup) does, no links followed) is on this volume.
    fn on_volume(&self, rest: &str) -> Option<String> {
        let mut cur = self.inode(ROOT).ok()?;
        let mut out = String::new();
        for comp in rest.split('/').filter(|c| !c.is_empty()) {
            if cur.flags & RECORD_IS_DIRECTORY == 0 {
                return None;
            }
            let name: Vec<u16> = comp.encode_utf16().collect();
            let (n, spelt) = self.lookup_name(&cur, &name).ok()??;
            out.push('/');
            out.push_str(&record::utf16(&spelt));
            cur = self.inode(n).ok()?;
        }
        (!out.is_empty()).then_some(out)
    }

    fn special(&self, mut d: Desc, sp: Special, ino: &Inode) -> Desc {
        d.kind = sp.kind;
        match sp.target {
            Some(t) => {
                d.size = t.len() as u64;
                d.target = Some(t);
            }
            None => {
                d.size = stream(&ino.attrs, AT_DATA, &[])
                    .ok()
                    .flatten()
                    .map_or(0, |s| s.size());
            }
        }
        d
    }

    /// Everything stat(2) says of `ino` (described as `d`) through ntfs-3g with its default
    /// options: the MFT record number as inode number; the record's link count (1 for a
    /// directory); `$STANDARD_INFORMATION`'s last access, data change and record change
    /// times (100 ns units); blocks from the allocated size (a resident value's length
    /// rounded to 8, a sparse or compressed stream's compressed size, a directory's index
    /// allocation); an Interix device's numbers.
    fn full_of(&self, ino: &Inode, d: &Desc) -> Result<FullStat, FsError> {
        let si = match ino.attr(AT_STANDARD_INFORMATION, &[]).map(|a| &a.body) {
            Some(Body::Resident(v)) if v.len() >= 36 => v.clone(),
            _ => {
                return Err(corrupt(format!(
                    "record {}: no $STANDARD_INFORMATION",
                    ino.number
                )));
            }
        };
        let time = |at: usize| {
            let t = (le64(&si, at) as i64).wrapping_sub(EPOCH_DIFF);
            Time {
                sec: t.div_euclid(10_000_000),
                nsec: (t.rem_euclid(10_000_000) * 100) as u32,
            }
        };
        let is_dir = d.kind == FileKind::Directory && ino.flags & RECORD_IS_DIRECTORY != 0;
        let allocated = |ty: u32, name: &[u16]| -> u64 {
            let first = ino.attrs.iter().find(|a| {
                a.ty == ty
                    && a.name == name
                    && match &a.body {
                        Body::NonResident(n) => n.start_vcn == 0,
                        Body::Resident(_) => true,
                    }
            });
            match first.map(|a| &a.body) {
                Some(Body::Resident(v)) if !is_dir => (v.len() as u64 + 7) & !7,
                Some(Body::NonResident(n)) => n.compressed_size,
                _ => 0,
            }
        };
        let bytes = if is_dir {
            allocated(AT_INDEX_ALLOCATION, &I30)
        } else {
            allocated(AT_DATA, &[])
        };
        let rdev = if matches!(d.kind, FileKind::CharDevice | FileKind::BlockDevice) {
            match stream(&ino.attrs, AT_DATA, &[])? {
                Some(s) if s.size() >= 24 && s.size() <= 64 => {
                    let mut v = vec![0u8; s.size() as usize];
                    self.read_stream(&s, ino.number, 0, &mut v)?;
                    crate::fs::makedev(le64(&v, 8), le64(&v, 16))
                }
                _ => 0,
            }
        } else {
            0
        };
        Ok(FullStat {
            ino: ino.number,
            mode: mode_of(d.kind),
            nlink: if is_dir { 1 } else { ino.links as u64 },
            uid: 0,
            gid: 0,
            rdev,
            size: d.size,
            blksize: 4096,
            blocks: bytes.div_ceil(512),
            atime: time(24),
            mtime: time(8),
            ctime: time(16),
        })
    }

    /// The directory holding `ino`, from its first `$FILE_NAME` (the root's is itself).
    fn parent_of(ino: &Inode) -> u64 {
        match ino.attr(record::AT_FILE_NAME, &[]).map(|a| &a.body) {
            Some(Body::Resident(v)) if v.len() >= 8 => le64(v, 0) & 0x0000_FFFF_FFFF_FFFF,
            _ => ino.number,
        }
    }

    fn stat_of(d: &Desc) -> Stat {
        Stat {
            kind: d.kind,
            size: d.size,
            mode: mode_of(d.kind),
            uid: 0,
            gid: 0,
            mtime: d.mtime,
            link_target: d.target.clone(),
        }
    }

    /// A directory's index: the root node's entries, and `$INDEX_ALLOCATION` with its
    /// block size and VCN unit.
    fn index_of(&self, dir: &Inode) -> Result<(Vec<Entry>, Alloc), FsError> {
        let root = match dir.attr(AT_INDEX_ROOT, &I30).map(|a| &a.body) {
            Some(Body::Resident(v)) => v,
            _ => return Err(corrupt("directory without a resident $INDEX_ROOT")),
        };
        let block = le32(root, 8) as u64;
        let entries = index::parse_node(root, 16).map_err(|e| at("$INDEX_ROOT", e))?;
        let alloc = stream(&dir.attrs, AT_INDEX_ALLOCATION, &I30)?;
        let alloc = match alloc {
            None => None,
            Some(s) => {
                if !block.is_power_of_two() || !(512..=65536).contains(&block) {
                    return Err(corrupt(format!("index blocks of {block} bytes")));
                }
                let unit = if block >= self.geo.cluster_size {
                    self.geo.cluster_size
                } else {
                    512
                };
                Some((s, block, unit))
            }
        };
        Ok((entries, alloc))
    }

    /// The index node at `vcn` of `alloc`, visited at most once per walk.
    fn node(
        &self,
        dir: u64,
        alloc: &Alloc,
        vcn: u64,
        visited: &mut BTreeSet<u64>,
    ) -> Result<Vec<Entry>, FsError> {
        let Some((s, block, unit)) = alloc else {
            return Err(corrupt(format!("sub-node {vcn} without $INDEX_ALLOCATION")));
        };
        if !visited.insert(vcn) {
            return Err(corrupt(format!("index node {vcn} reached twice (a loop)")));
        }
        let off = vcn
            .checked_mul(*unit)
            .filter(|o| o.checked_add(*block).is_some_and(|e| e <= s.size()))
            .ok_or_else(|| corrupt(format!("index node {vcn} past $INDEX_ALLOCATION")))?;
        let mut buf = vec![0u8; *block as usize];
        self.read_stream(s, dir, off, &mut buf)?;
        let what = format!("index node {vcn}");
        record::apply_fixups(&mut buf, b"INDX").map_err(|e| at(&what, e))?;
        if le64(&buf, 16) != vcn {
            return Err(corrupt(format!(
                "{what}: says it is node {}",
                le64(&buf, 16)
            )));
        }
        index::parse_node(&buf, 0x18).map_err(|e| at(&what, e))
    }

    /// Every entry of directory `dir`, in the order ntfs-3g's readdir gives them: the
    /// root node's, then each index block's in VCN order, those the `$I30` bitmap marks
    /// in use.
    fn entries(&self, dir: &Inode) -> Result<Vec<Entry>, FsError> {
        let (root, alloc) = self.index_of(dir)?;
        let mut out: Vec<Entry> = root.into_iter().filter(|e| !e.last).collect();
        let Some((s, block, unit)) = &alloc else {
            return Ok(out);
        };
        let bitmap = stream(&dir.attrs, AT_BITMAP, &I30)?
            .ok_or_else(|| corrupt("$INDEX_ALLOCATION without its $BITMAP"))?;
        let blocks = s.size() / block;
        let bytes = bitmap.size().min(blocks.div_ceil(8));
        if bytes > MAX_INDEX_BITMAP {
            return Err(corrupt(format!("index bitmap of {bytes} bytes")));
        }
        let mut bits = vec![0u8; bytes as usize];
        self.read_stream(&bitmap, u64::MAX, 0, &mut bits)
            .map_err(|e| at("index bitmap", e))?;
        let mut visited = BTreeSet::new();
        for b in 0..blocks.min(bytes * 8) {
            if bits[(b / 8) as usize] & (1 << (b % 8)) == 0 {
                continue;
            }
            let vcn = b * (block / unit);
            for e in self.node(dir.number, &alloc, vcn, &mut visited)? {
                if e.last {
                    continue;
                }
                if out.len() >= MAX_ENTRIES {
                    return Err(FsError::TooLarge(format!(
                        "directory of more than {MAX_ENTRIES} entries"
                    )));
                }
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The record named `name` in directory `dir`: the exact name if the search meets it,
    /// else the first name equal to it case-insensitively.
    fn lookup(&self, dir: &Inode, name: &[u16]) -> Result<Option<u64>, FsError> {
        Ok(self.lookup_name(dir, name)?.map(|(n, _)| n))
    }

    /// [`lookup`](Self::lookup), with the name as the index spells it.
    fn lookup_name(&self, dir: &Inode, name: &[u16]) -> Result<Option<(u64, Vec<u16>)>, FsError> {
        let (mut entries, alloc) = self.index_of(dir)?;
        let mut visited = BTreeSet::new();
        let mut found = None;
        for _ in 0..=MAX_DEPTH {
            let mut next = None;
            for e in &entries {
                if e.last {
                    next = e.sub;
                    break;
                }
                match self.collate(name, &e.name) {
                    Ordering::Equal => {
                        if e.name == name {
                            return Ok(Some((e.record, e.name.clone())));
                        }
                        found.get_or_insert((e.record, e.name.clone()));
                    }
                    Ordering::Less => {
                        next = e.sub;
                        break;
                    }
                    Ordering::Greater => {}
                }
            }
            match next {
                None => return Ok(found),
                Some(v) => entries = self.node(dir.number, &alloc, v, &mut visited)?,
            }
        }
        Err(corrupt("index tree too deep"))
    }

    /// The directory at `path` (links followed), refused if it is not one.
    fn listable(&self, path: &str) -> Result<(Inode, Desc), FsError> {
        let (dir, d) = self.resolve(path, true)?;
        if !self.is_dir(&dir, &d) {
            return Err(FsError::NotADirectory(String::from(path)));
        }
        Ok((dir, d))
    }

    /// The names of directory `dir` (at `path`) as ntfs-3g lists them, in index order, with
    /// their record numbers and what they are: DOS names, metadata files and names that
    /// cannot be paths left out. A file that cannot be read is listed as unknown (one bad
    /// file does not hide the rest).
    fn listing(&self, dir: &Inode, path: &str) -> Result<Vec<(String, u64, Stat)>, FsError> {
        let entries = self.entries(dir).map_err(|e| at(path, e))?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            if e.namespace == index::NS_DOS || (e.record < FIRST_USER && e.record != ROOT) {
                continue;
            }
            let name = record::utf16(&e.name);
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                continue;
            }
            let stat = match self.inode(e.record).and_then(|i| self.describe(&i)) {
                Ok(d) => Self::stat_of(&d),
                Err(err) => {
                    log::debug!("ntfs: {path}/{name}: {err}");
                    Stat {
                        kind: FileKind::Unknown,
                        size: 0,
                        mode: 0,
                        uid: 0,
                        gid: 0,
                        mtime: 0,
                        link_target: None,
                    }
                }
            };
            out.push((name, e.record, stat));
        }
        Ok(out)
    }

    fn is_dir(&self, ino: &Inode, d: &Desc) -> bool {
        ino.flags & RECORD_IS_DIRECTORY != 0 && d.kind == FileKind::Directory
    }

    /// The file at absolute `path`, following symlinks inside the volume (a final one only
    /// if `follow`); with what it is.
    fn resolve(&self, path: &str, follow: bool) -> Result<(Inode, Desc), FsError> {
        let p = || String::from(path);
        if !path.starts_with('/') {
            return Err(FsError::BadPath(format!("{path}: not absolute")));
        }
        let mut todo: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(String::from)
            .collect();
        let root = self.inode(ROOT).map_err(|e| at(path, e))?;
        let root_desc = self.describe(&root).map_err(|e| at(path, e))?;
        let mut stack: Vec<(Inode, Desc)> = vec![(root.clone(), root_desc.clone())];
        let (mut links, mut steps) = (0u32, 0usize);
        while let Some(comp) = todo.pop() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(FsError::BadPath(format!("{path}: too many components")));
            }
            let (cur, cur_desc) = stack
                .last()
                .cloned()
                .unwrap_or((root.clone(), root_desc.clone()));
            if !self.is_dir(&cur, &cur_desc) {
                return Err(FsError::NotADirectory(p()));
            }
            if comp == "." {
                continue;
            }
            if comp == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let name: Vec<u16> = comp.encode_utf16().collect();
            if name.len() > 255 {
                return Err(FsError::BadPath(format!("{path}: name too long")));
            }
            let n = self
                .lookup(&cur, &name)
                .map_err(|e| at(path, e))?
                .ok_or_else(|| FsError::NotFound(p()))?;
            let next = self.inode(n).map_err(|e| at(path, e))?;
            let d = self.describe(&next).map_err(|e| at(path, e))?;
            if d.kind == FileKind::Symlink && (follow || !todo.is_empty()) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FsError::SymlinkLoop(p()));
                }
                let target = d.target.clone().unwrap_or_default();
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                todo.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(String::from),
                );
                continue;
            }
            stack.push((next, d));
        }
        Ok(stack.pop().unwrap_or((root, root_desc)))
    }

    /// Counts free clusters in `$Bitmap` and records in use in the MFT's bitmap.
    fn count_usage(&self) -> Result<Usage, FsError> {
        let clusters = self.geo.clusters;
        let ino = self.inode(BITMAP).map_err(|e| at("$Bitmap", e))?;
        let s = stream(&ino.attrs, AT_DATA, &[])?.ok_or_else(|| corrupt("$Bitmap: no $DATA"))?;
        let need = clusters.div_ceil(8);
        if s.size() < need {
            return Err(corrupt(format!(
                "$Bitmap: {} bytes for {clusters} clusters",
                s.size()
            )));
        }
        let mut used = 0u64;
        let mut chunk = vec![0u8; 65536];
        let mut off = 0u64;
        while off < need {
            let n = (need - off).min(chunk.len() as u64) as usize;
            self.read_stream(&s, BITMAP, off, &mut chunk[..n])
                .map_err(|e| at("$Bitmap", e))?;
            for (i, &b) in chunk[..n].iter().enumerate() {
                let first = (off + i as u64) * 8;
                let bits = if first + 8 > clusters {
                    b & ((1u16 << (clusters - first)) - 1) as u8
                } else {
                    b
                };
                used += bits.count_ones() as u64;
            }
            off += n as u64;
        }
        let free = clusters - used;
        // The MFT's bitmap: its capacity in records, and the records in use.
        let mft = self.inode(0).map_err(|e| at("$MFT", e))?;
        let bm = stream(&mft.attrs, AT_BITMAP, &[])?.ok_or_else(|| corrupt("$MFT: no $BITMAP"))?;
        let (capacity, bytes) = match mft.attr(AT_BITMAP, &[]).map(|a| &a.body) {
            Some(Body::NonResident(n)) => (n.alloc_size, bm.size()),
            _ => (bm.size(), bm.size()),
        };
        // Bits past the MFT's records (which fit in the volume) are never set on a sound
        // volume: whatever the bitmap's size claims, no more is read than covers them.
        let bytes = bytes.min(
            (self.mft_size / self.geo.record_size)
                .div_ceil(8)
                .next_multiple_of(8),
        );
        let mut in_use = 0u64;
        let mut off = 0u64;
        while off < bytes {
            let n = (bytes - off).min(chunk.len() as u64) as usize;
            self.read_stream(&bm, 0, off, &mut chunk[..n])
                .map_err(|e| at("$MFT bitmap", e))?;
            in_use += chunk[..n]
                .iter()
                .map(|b| b.count_ones() as u64)
                .sum::<u64>();
            off += n as u64;
        }
        let records = capacity.saturating_mul(8);
        let rs = self.geo.record_size;
        let cs = self.geo.cluster_size;
        let more = if cs >= rs {
            free.saturating_mul(cs / rs)
        } else {
            free / (rs / cs)
        };
        Ok(Usage {
            block_size: cs,
            blocks: clusters,
            blocks_free: free,
            blocks_available: free,
            inodes: records.saturating_add(more),
            inodes_free: records.saturating_sub(in_use).saturating_add(more),
        })
    }
}

impl FileSystem for NtfsFs {
    fn lstat(&self, path: &str) -> Result<Stat, FsError> {
        let (_, d) = self.resolve(path, false)?;
        Ok(Self::stat_of(&d))
    }

    fn stat(&self, path: &str) -> Result<Stat, FsError> {
        let (_, d) = self.resolve(path, true)?;
        Ok(Self::stat_of(&d))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let (dir, _) = self.listable(path)?;
        Ok(self
            .listing(&dir, path)?
            .into_iter()
            .map(|(name, _, stat)| DirEntry { name, stat })
            .collect())
    }

    fn full_stat(&self, path: &str, follow: bool) -> Result<FullStat, FsError> {
        let (ino, d) = self.resolve(path, follow)?;
        self.full_of(&ino, &d).map_err(|e| at(path, e))
    }

    fn readdir_raw(&self, path: &str) -> Result<Vec<RawDirEntry>, FsError> {
        let (dir, _) = self.listable(path)?;
        let dot = |name: &str, ino| RawDirEntry {
            name: name.into(),
            ino,
            kind: FileKind::Directory,
        };
        let mut out = vec![dot(".", dir.number), dot("..", Self::parent_of(&dir))];
        out.extend(
            self.listing(&dir, path)?
                .into_iter()
                .map(|(name, ino, stat)| RawDirEntry {
                    name,
                    ino,
                    kind: stat.kind,
                }),
        );
        Ok(out)
    }

    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let (_, d) = self.resolve(path, false)?;
        d.target
            .ok_or_else(|| FsError::BadPath(format!("{path}: not a symbolic link")))
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let (ino, d) = self.resolve(path, true)?;
        match d.kind {
            FileKind::File => {}
            FileKind::Directory => return Err(FsError::IsADirectory(String::from(path))),
            _ => return Err(FsError::NotAFile(String::from(path))),
        }
        let Some(s) = stream(&ino.attrs, AT_DATA, &[]).map_err(|e| at(path, e))? else {
            return Ok(0);
        };
        self.read_stream(&s, ino.number, offset, buf)
            .map_err(|e| at(path, e))
    }

    fn usage(&self) -> Result<Usage, FsError> {
        if let Some(u) = self.usage.borrow().clone() {
            return Ok(u);
        }
        let u = self.count_usage()?;
        *self.usage.borrow_mut() = Some(u.clone());
        Ok(u)
    }
}

impl core::fmt::Debug for NtfsFs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NtfsFs").field("geo", &self.geo).finish()
    }
}

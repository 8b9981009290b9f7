//! The rpm header blob, and the tags libguestfs lists for an installed rpm package.
//!
//! Every rpm database backend ([`super::sqlite`], [`super::bdb`], [`super::ndb`]) stores one
//! *header* per installed package. Its layout (rpm's `lib/header.c`, `lib/header_internal.h`
//! and the public "RPM file format" descriptions), all integers big-endian:
//!
//! ```text
//! [8e ad e8 01 + 4 reserved bytes]   only in .rpm files (accepted, the reserved bytes ignored)
//! be32 il                            index entry count, at most 0xffff
//! be32 dl                            data store length, at most 0x0fffffff (256 MiB)
//! il x { be32 tag, be32 type, be32 offset, be32 count }   the index
//! dl bytes                           the data store; offsets are into it
//! ```
//!
//! Types: NULL 0, CHAR 1, INT8 2, INT16 3, INT32 4, INT64 5, STRING 6, BIN 7,
//! STRING_ARRAY 8, I18NSTRING 9. Numbers are big-endian and aligned to their size inside the
//! store (INT16 2, INT32 4, INT64 8); strings are NUL-terminated, a STRING has count 1,
//! STRING_ARRAY and I18NSTRING hold `count` consecutive strings.
//!
//! **Regions.** A header written by rpm >= 4 starts with a region entry (tag 61
//! HEADER_IMAGE, 62 HEADER_SIGNATURES or 63 HEADER_IMMUTABLE; type BIN, count 16) whose
//! offset points at a 16-byte *trailer* in the store: the same tag, type and count, and a
//! negated offset `-(16 * ril)` saying that the first `ril` index entries are the immutable
//! part signed at build time. The entries after those (*dribbles*) were added later, at
//! install time (INSTALLTIME, INSTALLTID, the signature tags...). When a tag appears both in
//! the region and in the dribbles, rpm's `hdrblobImport` deletes the region's copy: the
//! dribble wins. Since dribbles come after the region in the index, [`Header`] resolves a
//! tag to its *last* index entry, which gives the same answer (and a deterministic one for
//! a tag duplicated inside one part, where rpm's binary search picks any). The region is
//! otherwise only checked, as rpm does (`hdrblobVerifyRegion`); a header without one (an
//! old v3 "legacy" header) is accepted.
//!
//! **I18N strings.** SUMMARY, DESCRIPTION and GROUP are I18NSTRING: one string per locale
//! of the HEADERI18NTABLE (tag 100, a STRING_ARRAY whose first locale is always "C", as
//! rpm's `headerAddI18NString` builds it). librpm's `copyI18NEntry` returns the first string
//! unless `LANGUAGE`/`LC_ALL`/`LC_MESSAGES`/`LANG` names a locale found in the table; under
//! the C locale (libguestfs's appliance) that is the table's exact "C" entry. [`Header`]
//! does the same: the string at the position of "C" in the table, else the first one.
//!
//! **What libguestfs reports** (daemon/rpm-c.c): `headerFormat(h, "%{NAME}")` and the
//! like for VERSION, RELEASE, ARCH, URL, SUMMARY, DESCRIPTION, which print `(none)` for an
//! absent tag, and `headerGetNumber(h, RPMTAG_EPOCH)`, 0 when absent (`rpm -q --qf
//! '%{EPOCH}'` itself prints `(none)`). [`package`] returns exactly that.
//!
//! **Checks** (as rpm's `hdrblobInit`, `hdrblobVerifyRegion` and `hdrblobVerifyInfo`): the
//! limits on `il` and `dl`, `8 + 16 * il + dl` inside the blob (trailing bytes, e.g. an .rpm
//! file's payload, are ignored), the region entry and its trailer, and for every other
//! entry: tag >= 100, a known type, an aligned offset, its data inside the store (strings
//! with their NUL), non-zero length, and no overlap with the previous entry's data. Each
//! check costs at most one pass over the store, so a hostile header costs O(il + dl).
//! Not checked: rpm's final accounting that the entries' data plus padding add up to
//! exactly `dl` (harmless for reading), the signature region's smaller limits, and the
//! reserved bytes after the magic.
//!
//! Strings are bytes to rpm; [`Header::string`] decodes them as UTF-8, replacing invalid
//! sequences with U+FFFD (virt-inspector prints them as they are; the protocol carries
//! UTF-8). [`Header::bytes`] gives the raw bytes.
//!
//! Hand-written because no `no_std` crate parses rpm headers.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::{String, ToString};

/// Why a header could not be parsed, or a tag could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The blob breaks the header format; the message says what and where.
    #[error("corrupt rpm header: {0}")]
    Corrupt(String),
    /// The tag is present but holds another type than the one asked for.
    #[error("rpm header tag {tag} has type {found}, not {wanted}")]
    WrongType {
        /// The tag asked for.
        tag: u32,
        /// Its type in the header.
        found: u32,
        /// What the caller wanted.
        wanted: &'static str,
    },
}

/// Tag numbers (rpm's `include/rpm/rpmtag.h`).
pub mod tag {
    /// Region tag of a legacy header image.
    pub const HEADER_IMAGE: u32 = 61;
    /// Region tag of a signature header.
    pub const HEADER_SIGNATURES: u32 = 62;
    /// Region tag of the immutable (signed) part of a package header.
    pub const HEADER_IMMUTABLE: u32 = 63;
    /// The locales of the I18NSTRING tags (STRING_ARRAY).
    pub const HEADER_I18NTABLE: u32 = 100;
    /// Package name (STRING).
    pub const NAME: u32 = 1000;
    /// Version (STRING).
    pub const VERSION: u32 = 1001;
    /// Release (STRING).
    pub const RELEASE: u32 = 1002;
    /// Epoch (INT32).
    pub const EPOCH: u32 = 1003;
    /// One-line summary (I18NSTRING).
    pub const SUMMARY: u32 = 1004;
    /// Description (I18NSTRING).
    pub const DESCRIPTION: u32 = 1005;
    /// Upstream URL (STRING).
    pub const URL: u32 = 1020;
    /// Architecture (STRING).
    pub const ARCH: u32 = 1022;
}

/// Entry data types (rpm's `rpmTagType`).
mod ty {
    pub const NULL: u32 = 0;
    pub const CHAR: u32 = 1;
    pub const INT8: u32 = 2;
    pub const INT16: u32 = 3;
    pub const INT32: u32 = 4;
    pub const INT64: u32 = 5;
    pub const STRING: u32 = 6;
    pub const BIN: u32 = 7;
    pub const STRING_ARRAY: u32 = 8;
    pub const I18NSTRING: u32 = 9;
}

/// The magic of a header inside an .rpm file (followed by 4 reserved bytes).
const MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
/// rpm's `HEADER_TAGS_MAX` (hdrchkTags).
const MAX_TAGS: u32 = 0xffff;
/// rpm's `HEADER_DATA_MAX` (hdrchkData).
const MAX_DATA: u32 = 0x0fff_ffff;
/// Size of an index entry, and of a region trailer, and the count of a region entry.
const ENTRY_LEN: usize = 16;

/// One index entry, decoded.
#[derive(Clone, Copy, Debug)]
struct Entry {
    tag: u32,
    ty: u32,
    offset: u32,
    count: u32,
}

impl Entry {
    /// Decodes 16 bytes `{tag, type, offset, count}`.
    fn decode(b: &[u8]) -> Option<Entry> {
        Some(Entry {
            tag: be32(b, 0)?,
            ty: be32(b, 4)?,
            offset: be32(b, 8)?,
            count: be32(b, 12)?,
        })
    }

    fn describe(&self, i: usize) -> String {
        format!(
            "index entry {i} (tag {}, type {}, offset {}, count {})",
            self.tag, self.ty, self.offset, self.count
        )
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn corrupt(msg: impl Into<String>) -> HeaderError {
    HeaderError::Corrupt(msg.into())
}

/// Size and alignment of one item of a fixed-size type; None for the string types and
/// for unknown types.
fn fixed_size(ty: u32) -> Option<(u64, u32)> {
    match ty {
        ty::NULL => Some((0, 1)),
        ty::CHAR | ty::INT8 | ty::BIN => Some((1, 1)),
        ty::INT16 => Some((2, 2)),
        ty::INT32 => Some((4, 4)),
        ty::INT64 => Some((8, 8)),
        _ => None,
    }
}

/// Length of `count` consecutive NUL-terminated strings at the start of `rest`, NULs
/// included; None when one has no NUL before the end. Every string takes at least one
/// byte, so a count larger than `rest` fails at once and the scan is one pass at most.
fn strings_len(rest: &[u8], count: u32) -> Option<usize> {
    if count == 0 || u64::from(count) > rest.len() as u64 {
        return None;
    }
    let mut at = 0usize;
    for _ in 0..count {
        let nul = rest.get(at..)?.iter().position(|&b| b == 0)?;
        at = at.checked_add(nul)?.checked_add(1)?;
    }
    Some(at)
}

/// The `n`th of the NUL-terminated strings at the start of `data` (without its NUL).
fn nth_string(data: &[u8], n: u32) -> Option<&[u8]> {
    let mut rest = data;
    for _ in 0..n {
        let nul = rest.iter().position(|&b| b == 0)?;
        rest = rest.get(nul.checked_add(1)?..)?;
    }
    let nul = rest.iter().position(|&b| b == 0)?;
    rest.get(..nul)
}

/// Length of an entry's data in the store (rpm's `dataLength` on disk), None when it is
/// not wholly inside the store or is empty.
fn data_len(store: &[u8], e: &Entry) -> Option<usize> {
    let rest = store.get(usize::try_from(e.offset).ok()?..)?;
    let len = match e.ty {
        ty::STRING if e.count == 1 => strings_len(rest, 1)?,
        ty::STRING => return None,
        ty::STRING_ARRAY | ty::I18NSTRING => strings_len(rest, e.count)?,
        _ => {
            let (size, _) = fixed_size(e.ty)?;
            let len = size.checked_mul(u64::from(e.count))?;
            if len > rest.len() as u64 {
                return None;
            }
            usize::try_from(len).ok()?
        }
    };
    (len > 0).then_some(len)
}

/// A parsed header: its index and data store, borrowed from the blob.
#[derive(Clone, Copy, Debug)]
pub struct Header<'a> {
    /// `il` entries of 16 bytes.
    index: &'a [u8],
    /// The `dl`-byte data store.
    store: &'a [u8],
}

impl<'a> Header<'a> {
    /// Checks the blob's framing (il, dl, every index entry's offset, count and type against
    /// the store) and returns the header. A leading .rpm-file magic is skipped.
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        let blob = if blob.get(..4) == Some(&MAGIC[..]) {
            blob.get(8..)
                .ok_or_else(|| corrupt("header magic without its 4 reserved bytes"))?
        } else {
            blob
        };
        let (Some(il), Some(dl)) = (be32(blob, 0), be32(blob, 4)) else {
            return Err(corrupt(format!(
                "{} bytes, too short for the il and dl fields",
                blob.len()
            )));
        };
        if il == 0 || il > MAX_TAGS {
            return Err(corrupt(format!("index entry count il = {il} (1 to 65535)")));
        }
        if dl > MAX_DATA {
            return Err(corrupt(format!(
                "data store length dl = {dl} (over 256 MiB)"
            )));
        }
        // il <= 0xffff and dl < 2^28: these fit in usize and cannot overflow.
        let index_end = 8 + ENTRY_LEN * il as usize;
        let end = index_end + dl as usize;
        let (Some(index), Some(store)) = (blob.get(8..index_end), blob.get(index_end..end)) else {
            return Err(corrupt(format!(
                "il = {il} and dl = {dl} need {end} bytes, the blob has {}",
                blob.len()
            )));
        };
        let header = Header { index, store };
        let first = header.verify_region()?;
        header.verify_entries(first)?;
        Ok(header)
    }

    /// The index entries, in index order.
    fn entries(&self) -> impl DoubleEndedIterator<Item = Entry> + 'a {
        self.index.chunks_exact(ENTRY_LEN).filter_map(Entry::decode)
    }

    /// rpm's `hdrblobVerifyRegion`: when the first entry is a region tag, it and its
    /// trailer must be well formed. Returns how many leading entries it covered (the
    /// region entry itself, whose data is the trailer, is not checked as a normal entry).
    fn verify_region(&self) -> Result<usize, HeaderError> {
        let Some(first) = self.entries().next() else {
            return Err(corrupt("no index entries"));
        };
        if !matches!(
            first.tag,
            tag::HEADER_IMAGE | tag::HEADER_SIGNATURES | tag::HEADER_IMMUTABLE
        ) {
            return Ok(0); // a legacy header, without region
        }
        let what = first.describe(0);
        if first.ty != ty::BIN || first.count as usize != ENTRY_LEN {
            return Err(corrupt(format!("region {what}: not type 7, count 16")));
        }
        let trailer = usize::try_from(first.offset)
            .ok()
            .and_then(|at| self.store.get(at..at.checked_add(ENTRY_LEN)?))
            .and_then(Entry::decode)
            .ok_or_else(|| corrupt(format!("region {what}: trailer not inside the store")))?;
        if trailer.tag != first.tag || trailer.ty != ty::BIN || trailer.count != first.count {
            return Err(corrupt(format!(
                "region {what}: trailer (tag {}, type {}, count {}) does not match",
                trailer.tag, trailer.ty, trailer.count
            )));
        }
        // The trailer's offset is minus the size of the region's index part.
        let region_bytes = (trailer.offset as i32).checked_neg().unwrap_or(0);
        let entries = self.index.len() / ENTRY_LEN;
        let ok = region_bytes > 0
            && (region_bytes as usize).is_multiple_of(ENTRY_LEN)
            && region_bytes as usize / ENTRY_LEN <= entries;
        if !ok {
            return Err(corrupt(format!(
                "region {what}: trailer offset {} is not -16 times 1 to {entries} entries",
                trailer.offset as i32
            )));
        }
        Ok(1)
    }

    /// rpm's `hdrblobVerifyInfo` on the entries from `first` on: tag, type, alignment,
    /// data inside the store, and data in increasing order without overlap (which also
    /// keeps the total scanning work to one pass over the store).
    fn verify_entries(&self, first: usize) -> Result<(), HeaderError> {
        let dl = self.store.len();
        let mut prev_end = 0u64;
        for (i, e) in self.entries().enumerate().skip(first) {
            let bad = |why: &str| corrupt(format!("{}: {why}", e.describe(i)));
            if u64::from(e.offset) < prev_end {
                return Err(bad("overlaps the previous entry's data"));
            }
            if e.tag < tag::HEADER_I18NTABLE {
                return Err(bad("tag below 100"));
            }
            if e.ty > ty::I18NSTRING {
                return Err(bad("unknown type"));
            }
            let align = fixed_size(e.ty).map_or(1, |(_, align)| align);
            if !e.offset.is_multiple_of(align) {
                return Err(bad("offset not aligned for its type"));
            }
            let Some(len) = data_len(self.store, &e) else {
                return Err(bad(&format!(
                    "data empty or not inside the {dl}-byte store (or a string without NUL)"
                )));
            };
            prev_end = u64::from(e.offset) + len as u64;
        }
        Ok(())
    }

    /// The entry that rpm resolves `tag` to: the last one in the index, so that a dribble
    /// overrides the region's copy (see the module doc).
    fn find(&self, tag: u32) -> Option<Entry> {
        self.entries().rev().find(|e| e.tag == tag)
    }

    /// The store from an entry's offset on.
    fn data(&self, e: &Entry) -> Result<&'a [u8], HeaderError> {
        usize::try_from(e.offset)
            .ok()
            .and_then(|at| self.store.get(at..))
            .ok_or_else(|| corrupt(format!("tag {}: offset {} past the store", e.tag, e.offset)))
    }

    /// Which of an I18NSTRING's `count` strings librpm picks under the C locale: the one
    /// at the position of "C" in HEADERI18NTABLE, else the first.
    fn c_locale_index(&self, count: u32) -> u32 {
        let table = self
            .entries()
            .rev()
            .find(|e| e.tag == tag::HEADER_I18NTABLE && e.ty == ty::STRING_ARRAY);
        let Some(table) = table else { return 0 };
        let Ok(mut rest) = self.data(&table) else {
            return 0;
        };
        for i in 0..table.count.min(count) {
            let Some(nul) = rest.iter().position(|&b| b == 0) else {
                return 0;
            };
            if rest.get(..nul) == Some(&b"C"[..]) {
                return i;
            }
            rest = rest.get(nul + 1..).unwrap_or_default();
        }
        0
    }

    /// The raw bytes (without NUL) of a STRING tag, of the C-locale entry of an
    /// I18NSTRING, or of the first string of a STRING_ARRAY; None when absent.
    pub fn bytes(&self, tag: u32) -> Result<Option<&'a [u8]>, HeaderError> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        let n = match e.ty {
            ty::STRING | ty::STRING_ARRAY => 0,
            ty::I18NSTRING => self.c_locale_index(e.count),
            found => {
                return Err(HeaderError::WrongType {
                    tag,
                    found,
                    wanted: "a string",
                });
            }
        };
        nth_string(self.data(&e)?, n)
            .map(Some)
            .ok_or_else(|| corrupt(format!("tag {tag}: string {n} has no NUL in the store")))
    }

    /// A STRING tag (or the C-locale entry of an I18NSTRING, or the first of a
    /// STRING_ARRAY, as `headerFormat` prints them), None when absent. Invalid UTF-8 is
    /// replaced with U+FFFD.
    pub fn string(&self, tag: u32) -> Result<Option<Cow<'a, str>>, HeaderError> {
        Ok(self.bytes(tag)?.map(String::from_utf8_lossy))
    }

    /// An INT32 tag's first value, None when absent.
    pub fn int32(&self, tag: u32) -> Result<Option<u32>, HeaderError> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        if e.ty != ty::INT32 {
            return Err(HeaderError::WrongType {
                tag,
                found: e.ty,
                wanted: "INT32",
            });
        }
        be32(self.data(&e)?, 0)
            .map(Some)
            .ok_or_else(|| corrupt(format!("tag {tag}: INT32 past the store")))
    }
}

/// What libguestfs lists for one rpm package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// NAME.
    pub name: String,
    /// EPOCH, 0 when absent.
    pub epoch: u32,
    /// VERSION.
    pub version: String,
    /// RELEASE.
    pub release: String,
    /// ARCH (`(none)` for gpg-pubkey).
    pub arch: String,
    /// URL.
    pub url: String,
    /// SUMMARY (C locale).
    pub summary: String,
    /// DESCRIPTION (C locale).
    pub description: String,
}

/// Reads a Package from a header blob, with headerFormat's "(none)" for absent string tags
/// and epoch 0 when absent.
pub fn package(blob: &[u8]) -> Result<Package, HeaderError> {
    let h = Header::parse(blob)?;
    let s = |tag| -> Result<String, HeaderError> {
        Ok(h.string(tag)?
            .map_or_else(|| "(none)".to_string(), Cow::into_owned))
    };
    Ok(Package {
        name: s(tag::NAME)?,
        epoch: h.int32(tag::EPOCH)?.unwrap_or(0),
        version: s(tag::VERSION)?,
        release: s(tag::RELEASE)?,
        arch: s(tag::ARCH)?,
        url: s(tag::URL)?,
        summary: s(tag::SUMMARY)?,
        description: s(tag::DESCRIPTION)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The fixtures of testdata/rpmheader (see its make.sh and README).
    const FIXTURES: &[(&str, &[u8])] = &[
        (
            "gpg-pubkey.bin",
            include_bytes!("testdata/rpmheader/gpg-pubkey.bin"),
        ),
        (
            "vmc-epoch.bin",
            include_bytes!("testdata/rpmheader/vmc-epoch.bin"),
        ),
        (
            "vmc-i18n.bin",
            include_bytes!("testdata/rpmheader/vmc-i18n.bin"),
        ),
        (
            "vmc-noarch.bin",
            include_bytes!("testdata/rpmheader/vmc-noarch.bin"),
        ),
        (
            "vmc-nourl.bin",
            include_bytes!("testdata/rpmheader/vmc-nourl.bin"),
        ),
    ];
    const NOARCH_FILE: &[u8] = include_bytes!("testdata/rpmheader/noarch-file.hdr");
    const EXPECTED: &[u8] = include_bytes!("testdata/rpmheader/expected.txt");

    fn fixture(name: &str) -> &'static [u8] {
        FIXTURES.iter().find(|(n, _)| *n == name).unwrap().1
    }

    /// expected.txt: per blob, what `rpm -qa --qf` printed: file, NAME, EPOCH, VERSION,
    /// RELEASE, ARCH, URL, SUMMARY, DESCRIPTION, split by 0x1f, records ended by 0x1e.
    fn expected() -> Vec<(String, Package)> {
        let text = core::str::from_utf8(EXPECTED).unwrap();
        let mut out = Vec::new();
        for rec in text.split('\x1e') {
            let rec = rec.trim_start_matches('\n');
            if rec.is_empty() {
                continue;
            }
            let f: Vec<&str> = rec.split('\x1f').collect();
            assert_eq!(f.len(), 9, "{rec:?}");
            // rpm prints "(none)" for an absent EPOCH; headerGetNumber gives 0.
            let epoch = if f[2] == "(none)" {
                0
            } else {
                f[2].parse().unwrap()
            };
            let p = Package {
                name: f[1].into(),
                epoch,
                version: f[3].into(),
                release: f[4].into(),
                arch: f[5].into(),
                url: f[6].into(),
                summary: f[7].into(),
                description: f[8].into(),
            };
            out.push((f[0].to_string(), p));
        }
        out
    }

    #[test]
    fn fixtures_match_rpm() {
        let exp = expected();
        assert_eq!(exp.len(), FIXTURES.len());
        for (file, want) in &exp {
            assert_eq!(&package(fixture(file)).unwrap(), want, "{file}");
        }
    }

    #[test]
    fn fixtures_exact_values() {
        let p = package(fixture("vmc-epoch.bin")).unwrap();
        assert_eq!(
            (
                p.name.as_str(),
                p.epoch,
                p.version.as_str(),
                p.release.as_str()
            ),
            ("vmc-epoch", 2, "1.2.3", "4")
        );
        assert_eq!(p.url, "https://example.org/vmc-epoch");
        assert_eq!(p.description, "A package with Epoch: 2.");

        let p = package(fixture("vmc-nourl.bin")).unwrap();
        assert_eq!((p.url.as_str(), p.epoch), ("(none)", 0));

        let p = package(fixture("vmc-noarch.bin")).unwrap();
        assert_eq!(p.arch, "noarch");

        // The C-locale strings, not the German ones, though the table has both.
        let p = package(fixture("vmc-i18n.bin")).unwrap();
        assert_eq!(p.summary, "Package with a translated summary");
        assert_eq!(
            p.description,
            "First line of the description.\nSecond line, after a line break.\n\n\
             A paragraph after a blank line."
        );
        let h = Header::parse(fixture("vmc-i18n.bin")).unwrap();
        assert_eq!(h.string(tag::HEADER_I18NTABLE).unwrap().unwrap(), "C");
        assert_eq!(h.int32(tag::EPOCH).unwrap(), None);
        assert!(matches!(
            h.int32(tag::NAME),
            Err(HeaderError::WrongType {
                tag: 1000,
                found: 6,
                ..
            })
        ));

        // The gpg-pubkey pseudo-package: no ARCH, no URL, no epoch.
        let p = package(fixture("gpg-pubkey.bin")).unwrap();
        assert_eq!(p.name, "gpg-pubkey");
        assert_eq!(
            (p.arch.as_str(), p.url.as_str(), p.epoch),
            ("(none)", "(none)", 0)
        );
        assert_eq!(
            p.summary,
            "vmchannel test key <test@example.org> public key"
        );
        assert_eq!(p.version.len(), 8);
        assert!(
            p.description
                .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
        );
    }

    #[test]
    fn rpm_file_header_with_magic() {
        assert_eq!(&NOARCH_FILE[..4], &MAGIC);
        assert_eq!(
            package(NOARCH_FILE).unwrap(),
            package(fixture("vmc-noarch.bin")).unwrap()
        );
        assert!(Header::parse(&NOARCH_FILE[..6]).is_err());
        // The blob may go on (an .rpm file's payload), but not stop short.
        let mut longer = NOARCH_FILE.to_vec();
        longer.extend_from_slice(&[0xff; 100]);
        assert!(package(&longer).is_ok());
        assert!(package(&NOARCH_FILE[..NOARCH_FILE.len() - 1]).is_err());
    }

    /// Builds headers by hand: a region (or none) around `region` entries, then `dribbles`.
    #[derive(Default)]
    struct Builder {
        index: Vec<[u32; 4]>,
        store: Vec<u8>,
    }

    impl Builder {
        fn add(&mut self, tag: u32, ty: u32, count: u32, data: &[u8]) -> &mut Self {
            let align = fixed_size(ty).map_or(1, |(_, a)| a as usize);
            while !self.store.len().is_multiple_of(align) {
                self.store.push(0);
            }
            self.index.push([tag, ty, self.store.len() as u32, count]);
            self.store.extend_from_slice(data);
            self
        }

        fn string(&mut self, tag: u32, s: &str) -> &mut Self {
            self.add(tag, ty::STRING, 1, &[s.as_bytes(), b"\0"].concat())
        }

        /// Makes the entries so far a HEADER_IMMUTABLE region.
        fn seal(&mut self) -> &mut Self {
            let ril = self.index.len() as u32 + 1;
            let at = self.store.len() as u32;
            self.index
                .insert(0, [tag::HEADER_IMMUTABLE, ty::BIN, at, 16]);
            let trailer = [
                tag::HEADER_IMMUTABLE,
                ty::BIN,
                (ril * 16).wrapping_neg(),
                16,
            ];
            for w in trailer {
                self.store.extend_from_slice(&w.to_be_bytes());
            }
            self
        }

        fn blob(&self) -> Vec<u8> {
            let mut b = Vec::new();
            b.extend_from_slice(&(self.index.len() as u32).to_be_bytes());
            b.extend_from_slice(&(self.store.len() as u32).to_be_bytes());
            for e in &self.index {
                for w in e {
                    b.extend_from_slice(&w.to_be_bytes());
                }
            }
            b.extend_from_slice(&self.store);
            b
        }
    }

    fn minimal() -> Builder {
        let mut b = Builder::default();
        b.string(tag::NAME, "n").string(tag::VERSION, "1");
        b
    }

    fn err(blob: &[u8]) -> String {
        match package(blob) {
            Err(HeaderError::Corrupt(msg)) => msg,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn dribble_overrides_region() {
        let mut b = minimal();
        b.add(tag::EPOCH, ty::INT32, 1, &1u32.to_be_bytes()).seal();
        b.string(tag::NAME, "dribbled")
            .add(tag::EPOCH, ty::INT32, 1, &7u32.to_be_bytes());
        let p = package(&b.blob()).unwrap();
        assert_eq!(
            (p.name.as_str(), p.epoch, p.version.as_str()),
            ("dribbled", 7, "1")
        );
        assert_eq!(
            (p.release.as_str(), p.summary.as_str()),
            ("(none)", "(none)")
        );
    }

    #[test]
    fn legacy_header_without_region() {
        let p = package(&minimal().blob()).unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.epoch),
            ("n", "1", 0)
        );
    }

    #[test]
    fn i18n_and_arrays() {
        // "C" second in the table: the C locale picks the second string.
        let mut b = minimal();
        b.add(tag::HEADER_I18NTABLE, ty::STRING_ARRAY, 2, b"de\0C\0")
            .add(tag::SUMMARY, ty::I18NSTRING, 2, b"Deutsch\0English\0")
            .add(tag::DESCRIPTION, ty::I18NSTRING, 1, b"only\0")
            .add(tag::URL, ty::STRING_ARRAY, 2, b"first\0second\0")
            .add(tag::ARCH, ty::STRING, 1, b"x\xff\0");
        let p = package(&b.seal().blob()).unwrap();
        assert_eq!(p.summary, "English");
        assert_eq!(p.description, "only"); // fewer strings than locales
        assert_eq!(p.url, "first");
        assert_eq!(p.arch, "x\u{fffd}");
        let blob = b.blob();
        let h = Header::parse(&blob).unwrap();
        assert_eq!(h.bytes(tag::ARCH).unwrap(), Some(&b"x\xff"[..]));

        // No table: the first string.
        let mut b = minimal();
        b.add(tag::SUMMARY, ty::I18NSTRING, 2, b"one\0two\0");
        assert_eq!(package(&b.blob()).unwrap().summary, "one");
    }

    #[test]
    fn hostile() {
        // il = 0xffffffff, il = 0, dl past the blob, dl over the limit.
        let good = minimal().blob();
        let mut b = good.clone();
        b[..4].copy_from_slice(&[0xff; 4]);
        assert!(err(&b).contains("il = 4294967295"));
        b[..4].copy_from_slice(&[0; 4]);
        assert!(err(&b).contains("il = 0"));
        let mut b = good.clone();
        b[7] += 1;
        assert!(err(&b).contains("the blob has"));
        b[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
        assert!(err(&b).contains("256 MiB"));
        assert!(err(&[0, 0, 0]).contains("too short"));

        // An offset past the store; a string without NUL.
        let mut b = minimal();
        b.index[1][2] = 100;
        assert!(err(&b.blob()).contains("not inside"));
        let mut b = Builder::default();
        b.add(tag::NAME, ty::STRING, 1, b"no nul");
        assert!(err(&b.blob()).contains("without NUL"));

        // A STRING_ARRAY of 2^31 strings; a STRING of count 2.
        let mut b = minimal();
        b.add(tag::URL, ty::STRING_ARRAY, 1 << 31, b"a\0b\0");
        assert!(err(&b.blob()).contains("not inside"));
        let mut b = Builder::default();
        b.add(tag::NAME, ty::STRING, 2, b"a\0b\0");
        assert!(err(&b.blob()).contains("index entry 0"));

        // NAME of a non-string type.
        let mut b = Builder::default();
        b.add(tag::NAME, ty::INT32, 1, &[0, 0, 0, 1]);
        assert_eq!(
            package(&b.blob()),
            Err(HeaderError::WrongType {
                tag: 1000,
                found: 4,
                wanted: "a string"
            })
        );
        // EPOCH of a non-INT32 type.
        let mut b = minimal();
        b.string(tag::EPOCH, "2");
        assert!(matches!(
            package(&b.blob()),
            Err(HeaderError::WrongType { tag: 1003, .. })
        ));

        // INT32 count 2^30 (4 GiB), misaligned INT32, NULL, unknown type, tag < 100.
        for (ty, count, offset_delta, tag, why) in [
            (ty::INT32, 1 << 30, 0, tag::EPOCH, "not inside"),
            (ty::INT32, 1, 1, tag::EPOCH, "aligned"),
            (ty::NULL, 1, 0, tag::EPOCH, "empty"),
            (10, 1, 0, tag::EPOCH, "unknown type"),
            (ty::INT32, 1, 0, 99, "below 100"),
        ] {
            let mut b = minimal();
            b.add(tag, ty, count, &[0; 8]);
            b.index[2][2] += offset_delta;
            assert!(err(&b.blob()).contains(why), "{why}");
        }

        // Entries whose data overlap.
        let mut b = minimal();
        b.index[1][2] = 0;
        assert!(err(&b.blob()).contains("overlaps"));

        // A bad region entry or trailer.
        let sealed = minimal().seal().blob();
        assert!(package(&sealed).is_ok());
        let trailer = sealed.len() - 16;
        for (at, value, why) in [
            (8 + 4, 6, "not type 7"),                    // region entry type
            (8 + 8, 9999, "trailer not inside"),         // region entry offset
            (trailer, 62, "does not match"),             // trailer tag
            (trailer + 8, (-64i32) as u32, "-16 times"), // ril 4 > il 3
            (trailer + 8, 0, "-16 times"),
            (trailer + 8, (-40i32) as u32, "-16 times"),
            (trailer + 8, 0x8000_0000, "-16 times"),
        ] {
            let mut b = sealed.clone();
            b[at..at + 4].copy_from_slice(&u32::to_be_bytes(value));
            assert!(err(&b).contains(why), "{why}: {}", err(&b));
        }
    }

    /// xorshift64.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn fuzz_mutations_never_panic() {
        let mut seeds: Vec<Vec<u8>> = FIXTURES.iter().map(|(_, b)| b.to_vec()).collect();
        seeds.push(NOARCH_FILE.to_vec());
        let mut rng = Rng(0x5eed_1234_abcd_0042);
        let (mut ok, mut failed) = (0, 0);
        for round in 0..6000 {
            let mut b = seeds[round % seeds.len()].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(4) {
                    0 => {
                        let at = rng.below(b.len());
                        b[at] ^= 1 << rng.below(8);
                    }
                    1 => b.truncate(rng.below(b.len() + 1)),
                    _ => {
                        // Overwrite a word, mostly in the index, with an extreme value.
                        let limit = if rng.below(2) == 0 {
                            8 + 16 * 40
                        } else {
                            b.len()
                        };
                        let at = rng.below(limit.min(b.len()).saturating_sub(3)) & !3;
                        let values = [
                            0,
                            1,
                            0xffff_ffff,
                            0x7fff_ffff,
                            0x8000_0000,
                            16,
                            b.len() as u32,
                        ];
                        let v = values[rng.below(values.len())];
                        if let Some(w) = b.get_mut(at..at + 4) {
                            w.copy_from_slice(&v.to_be_bytes());
                        }
                    }
                }
            }
            if let Ok(h) = Header::parse(&b) {
                let mut out = 0;
                for tag in [100, 1000, 1001, 1002, 1003, 1004, 1005, 1020, 1022, 1047] {
                    if let Ok(Some(s)) = h.bytes(tag) {
                        out += s.len();
                    }
                    let _ = h.string(tag);
                    let _ = h.int32(tag);
                }
                assert!(out <= b.len());
            }
            match package(&b) {
                Ok(p) => {
                    ok += 1;
                    let total = p.name.len()
                        + p.version.len()
                        + p.release.len()
                        + p.arch.len()
                        + p.url.len()
                        + p.summary.len()
                        + p.description.len();
                    assert!(total <= 3 * b.len() + 7 * 6);
                }
                Err(_) => failed += 1,
            }
        }
        // The mutations reach both outcomes.
        assert!(ok > 100 && failed > 100, "ok {ok}, failed {failed}");
    }
}

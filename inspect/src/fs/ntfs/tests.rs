//! Unit tests: LZNT1, run lists, fixups, index nodes, reparse points, the boot sector; and
//! the reader over small volumes built in memory for hostile cases (an attribute list that
//! lists itself, a loop in an index tree, holes longer than the volume, a huge MFT bitmap)
//! and `$MFT`'s extension records. The reader as a whole is tested against ntfs-3g in
//! `inspect/tests/ntfs.rs`.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;

use super::index::parse_node;
use super::lznt1::decompress;
use super::record::{Run, apply_fixups, decode_runs, parse_attr_list};
use super::reparse::{TAG_MOUNT_POINT, reparse};
use super::{Geometry, NtfsFs, corrupt};
use crate::disk::BlockDevice;
use crate::fs::{FileSystem, FsError};

fn is_corrupt<T: core::fmt::Debug>(r: Result<T, FsError>) -> bool {
    matches!(r, Err(FsError::Corrupt(_)))
}

#[test]
fn lznt1_literals_and_back_references() {
    // "abcabcabcabc": three literals, then a back-reference of 9 at distance 3.
    // At output position 3 the displacement takes 4 bits: token = (3-1) << 12 | (9-3).
    let token: u16 = (2 << 12) | 6;
    let mut chunk = vec![0b0000_1000u8, b'a', b'b', b'c'];
    chunk.extend_from_slice(&token.to_le_bytes());
    let header: u16 = 0x8000 | 0x3000 | (chunk.len() as u16 + 2 - 3);
    let mut input = header.to_le_bytes().to_vec();
    input.extend_from_slice(&chunk);
    input.extend_from_slice(&[0, 0]);
    let mut out = [0u8; 32];
    assert_eq!(decompress(&input, &mut out), Ok(12));
    assert_eq!(&out[..12], b"abcabcabcabc");
}

#[test]
fn lznt1_stored_chunk_and_bounds() {
    let mut input = (0x3000u16 | (4096 - 1)).to_le_bytes().to_vec();
    input.extend((0..4096).map(|i| i as u8));
    let mut out = vec![0u8; 5000];
    assert_eq!(decompress(&input, &mut out), Ok(4096));
    assert_eq!(out[4095], 255);
    // The output buffer bounds what is written.
    let mut small = [0u8; 10];
    assert_eq!(decompress(&input, &mut small), Ok(10));
    // A chunk longer than its input, a reference before the start: errors.
    assert!(decompress(&[0xff, 0xbf, 1, 2], &mut out).is_err());
    let bad = [0x03, 0xb0, 0x01, 0x00, 0x10];
    assert!(decompress(&bad, &mut out).is_err());
}

#[test]
fn runs_decode_sparse_and_negative() {
    // 4 clusters at 100, 2 sparse, 3 at 100 - 10 = 90.
    let data = [0x11, 4, 100, 0x01, 2, 0x11, 3, 0xF6, 0];
    let runs = decode_runs(&data, 0, 8, 1000).unwrap();
    assert_eq!(
        runs,
        vec![
            Run {
                vcn: 0,
                len: 4,
                lcn: Some(100)
            },
            Run {
                vcn: 4,
                len: 2,
                lcn: None
            },
            Run {
                vcn: 6,
                len: 3,
                lcn: Some(90)
            },
        ]
    );
}

#[test]
fn runs_hostile() {
    // Off the disk.
    assert!(is_corrupt(decode_runs(&[0x11, 4, 100, 0], 0, 3, 50)));
    // Before the volume.
    assert!(is_corrupt(decode_runs(&[0x11, 4, 0xF0, 0], 0, 3, 50)));
    // No end, a zero length, a bad header, a VCN count that disagrees.
    assert!(is_corrupt(decode_runs(&[0x11, 4, 1], 0, 3, 50)));
    assert!(is_corrupt(decode_runs(&[0x11, 0, 1, 0], 0, 3, 50)));
    assert!(is_corrupt(decode_runs(&[0x19, 0, 1, 0], 0, 3, 50)));
    assert!(is_corrupt(decode_runs(&[0x11, 4, 1, 0], 0, 7, 50)));
    // Lengths that overflow the VCNs.
    let huge = [
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0x7f, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0,
    ];
    assert!(is_corrupt(decode_runs(&huge, 0, 3, 50)));
}

fn record(size: usize) -> Vec<u8> {
    let mut r = vec![0u8; size];
    r[0..4].copy_from_slice(b"FILE");
    r[4..6].copy_from_slice(&0x30u16.to_le_bytes());
    let count = size / 512 + 1;
    r[6..8].copy_from_slice(&(count as u16).to_le_bytes());
    r[0x30..0x32].copy_from_slice(&[0x07, 0x00]);
    for i in 0..size / 512 {
        let end = (i + 1) * 512 - 2;
        r[0x32 + 2 * i..0x34 + 2 * i].copy_from_slice(&[0xAA, i as u8]);
        r[end..end + 2].copy_from_slice(&[0x07, 0x00]);
    }
    r
}

#[test]
fn fixups_restore_and_refuse() {
    let mut r = record(1024);
    apply_fixups(&mut r, b"FILE").unwrap();
    assert_eq!(&r[510..512], &[0xAA, 0]);
    assert_eq!(&r[1022..1024], &[0xAA, 1]);
    // A stride that does not end with the update sequence number.
    let mut r = record(1024);
    r[1022] = 0x08;
    assert!(is_corrupt(apply_fixups(&mut r, b"FILE")));
    // An array of the wrong size, or past the first stride.
    let mut r = record(1024);
    r[6] = 5;
    assert!(is_corrupt(apply_fixups(&mut r, b"FILE")));
    let mut r = record(1024);
    r[4..6].copy_from_slice(&600u16.to_le_bytes());
    assert!(is_corrupt(apply_fixups(&mut r, b"FILE")));
    let mut r = record(1024);
    assert!(is_corrupt(apply_fixups(&mut r, b"INDX")));
}

/// An index node header at 0 with the given entries after it.
fn node(entries: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = entries.concat();
    let mut n = vec![0u8; 16];
    n[0..4].copy_from_slice(&16u32.to_le_bytes());
    n[4..8].copy_from_slice(&(16 + body.len() as u32).to_le_bytes());
    n[8..12].copy_from_slice(&(16 + body.len() as u32).to_le_bytes());
    n.extend(body);
    n
}

fn entry(record: u64, name: &str, sub: Option<u64>) -> Vec<u8> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let key_len = 66 + 2 * units.len();
    let mut len = (16 + key_len).div_ceil(8) * 8;
    if sub.is_some() {
        len += 8;
    }
    let mut e = vec![0u8; len];
    e[0..8].copy_from_slice(&record.to_le_bytes());
    e[8..10].copy_from_slice(&(len as u16).to_le_bytes());
    e[10..12].copy_from_slice(&(key_len as u16).to_le_bytes());
    e[12..14].copy_from_slice(&(if sub.is_some() { 1u16 } else { 0 }).to_le_bytes());
    e[16 + 64] = units.len() as u8;
    e[16 + 65] = 1;
    for (i, u) in units.iter().enumerate() {
        e[16 + 66 + 2 * i..16 + 68 + 2 * i].copy_from_slice(&u.to_le_bytes());
    }
    if let Some(v) = sub {
        e[len - 8..].copy_from_slice(&v.to_le_bytes());
    }
    e
}

fn last(sub: Option<u64>) -> Vec<u8> {
    let mut e = vec![0u8; if sub.is_some() { 24 } else { 16 }];
    let len = e.len() as u16;
    e[8..10].copy_from_slice(&len.to_le_bytes());
    e[12..14].copy_from_slice(&(2u16 | if sub.is_some() { 1 } else { 0 }).to_le_bytes());
    if let Some(v) = sub {
        e[16..24].copy_from_slice(&v.to_le_bytes());
    }
    e
}

#[test]
fn index_nodes() {
    let n = node(&[
        entry(64, "a", None),
        entry(65, "bé", Some(3)),
        last(Some(7)),
    ]);
    let es = parse_node(&n, 0).unwrap();
    assert_eq!(es.len(), 3);
    assert_eq!(es[0].record, 64);
    assert_eq!(es[1].name, "bé".encode_utf16().collect::<Vec<_>>());
    assert_eq!(es[1].sub, Some(3));
    assert!(es[2].last && es[2].sub == Some(7));
}

#[test]
fn index_nodes_hostile() {
    // An entry longer than its node.
    let mut n = node(&[entry(64, "a", None), last(None)]);
    n[16 + 8..16 + 10].copy_from_slice(&0x400u16.to_le_bytes());
    assert!(is_corrupt(parse_node(&n, 0)));
    // A node with no last entry, a node larger than its buffer, a key larger than its entry.
    let n = node(&[entry(64, "a", None)]);
    assert!(is_corrupt(parse_node(&n, 0)));
    let mut n = node(&[last(None)]);
    n[4..8].copy_from_slice(&4096u32.to_le_bytes());
    assert!(is_corrupt(parse_node(&n, 0)));
    let mut n = node(&[entry(64, "a", None), last(None)]);
    n[16 + 10..16 + 12].copy_from_slice(&200u16.to_le_bytes());
    assert!(is_corrupt(parse_node(&n, 0)));
    // A name longer than its key.
    let mut n = node(&[entry(64, "a", None), last(None)]);
    n[16 + 16 + 64] = 200;
    assert!(is_corrupt(parse_node(&n, 0)));
}

#[test]
fn attribute_list_bounds() {
    let mut v = vec![0u8; 32];
    v[0..4].copy_from_slice(&0x80u32.to_le_bytes());
    v[4..6].copy_from_slice(&64u16.to_le_bytes());
    assert!(is_corrupt(parse_attr_list(&v)));
    v[4..6].copy_from_slice(&32u16.to_le_bytes());
    v[16..24].copy_from_slice(&0x0001_0000_0000_0042u64.to_le_bytes());
    let l = parse_attr_list(&v).unwrap();
    assert_eq!((l[0].ty, l[0].record), (0x80, 0x42));
}

fn reparse_value(tag: u32, data: &[u8]) -> Vec<u8> {
    let mut v = tag.to_le_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_le_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(data);
    v
}

#[test]
fn reparse_points() {
    let sub: Vec<u8> = "\\??\\c:\\Users\\x"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut d = Vec::new();
    for v in [0u16, sub.len() as u16, sub.len() as u16 + 2, 0] {
        d.extend_from_slice(&v.to_le_bytes());
    }
    d.extend_from_slice(&sub);
    let sp = reparse(&reparse_value(TAG_MOUNT_POINT, &d));
    assert_eq!(sp.target.as_deref(), Some("/.NTFS-3G/C:/Users/x"));
    // Lengths past the value; an unknown tag.
    d[2] = 0xff;
    let sp = reparse(&reparse_value(TAG_MOUNT_POINT, &d));
    assert_eq!(
        sp.target.as_deref(),
        Some("unsupported reparse tag 0xa0000003")
    );
    let sp = reparse(&reparse_value(0x8000_0017, &[1, 2, 3]));
    assert_eq!(
        sp.target.as_deref(),
        Some("unsupported reparse tag 0x80000017")
    );
    assert_eq!(
        reparse(&[1, 2]).target.as_deref(),
        Some("unsupported reparse tag 0x00000000")
    );
}

#[test]
fn boot_sector_checks() {
    let mut b = vec![0u8; 512];
    b[3..11].copy_from_slice(b"NTFS    ");
    b[11..13].copy_from_slice(&512u16.to_le_bytes());
    b[13] = 8;
    b[40..48].copy_from_slice(&(8192u64 - 1).to_le_bytes());
    b[48..56].copy_from_slice(&4u64.to_le_bytes());
    b[64] = 0xF6; // 2^10: 1 KiB records
    let g = Geometry::parse(&b, 4 << 20).unwrap();
    assert_eq!(
        (g.cluster_size, g.clusters, g.record_size),
        (4096, 1023, 1024)
    );
    // A volume larger than its device, an MFT past it, odd sizes.
    assert!(is_corrupt(Geometry::parse(&b, 1 << 20)));
    let mut c = b.clone();
    c[48..56].copy_from_slice(&5000u64.to_le_bytes());
    assert!(is_corrupt(Geometry::parse(&c, 4 << 20)));
    let mut c = b.clone();
    c[64] = 0x80;
    assert!(is_corrupt(Geometry::parse(&c, 4 << 20)));
    let mut c = b.clone();
    c[13] = 3;
    assert!(is_corrupt(Geometry::parse(&c, 4 << 20)));
    let _ = corrupt("x");
}

// A whole volume built in memory, for the hostile cases that need the reader around
// their structures: 512-byte sectors and clusters, 1 KiB records, 1 MiB, the MFT's 64
// records at cluster 16, `$UpCase` sparse, free space from cluster 200.

const CS: usize = 512;
const RS: usize = 1024;
const MFT_LCN: usize = 16;

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A resident attribute.
fn resident(ty: u32, name: &str, value: &[u8]) -> Vec<u8> {
    let name = utf16le(name);
    let voff = (24 + name.len()).next_multiple_of(8);
    let mut a = vec![0u8; (voff + value.len()).next_multiple_of(8)];
    let len = a.len() as u32;
    a[0..4].copy_from_slice(&ty.to_le_bytes());
    a[4..8].copy_from_slice(&len.to_le_bytes());
    a[9] = (name.len() / 2) as u8;
    a[10..12].copy_from_slice(&24u16.to_le_bytes());
    a[16..20].copy_from_slice(&(value.len() as u32).to_le_bytes());
    a[20..22].copy_from_slice(&(voff as u16).to_le_bytes());
    a[24..24 + name.len()].copy_from_slice(&name);
    a[voff..voff + value.len()].copy_from_slice(value);
    a
}

/// A non-resident attribute (piece) mapping VCNs `vcns` with run list `runs`, of `size`
/// bytes.
fn non_resident(ty: u32, name: &str, vcns: (u64, u64), runs: &[u8], size: u64) -> Vec<u8> {
    let name = utf16le(name);
    let roff = (64 + name.len()).next_multiple_of(8);
    let mut a = vec![0u8; (roff + runs.len() + 1).next_multiple_of(8)];
    let len = a.len() as u32;
    a[0..4].copy_from_slice(&ty.to_le_bytes());
    a[4..8].copy_from_slice(&len.to_le_bytes());
    a[8] = 1;
    a[9] = (name.len() / 2) as u8;
    a[10..12].copy_from_slice(&64u16.to_le_bytes());
    a[16..24].copy_from_slice(&vcns.0.to_le_bytes());
    a[24..32].copy_from_slice(&vcns.1.to_le_bytes());
    a[32..34].copy_from_slice(&(roff as u16).to_le_bytes());
    let alloc = (vcns.1.wrapping_add(1).saturating_mul(CS as u64)).max(size);
    for (at, v) in [(40, alloc), (48, size), (56, size)] {
        a[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    a[64..64 + name.len()].copy_from_slice(&name);
    a[roff..roff + runs.len()].copy_from_slice(runs);
    a
}

/// `$STANDARD_INFORMATION`.
fn std_info() -> Vec<u8> {
    resident(0x10, "", &[0u8; 48])
}

/// Puts the update sequence (at 0x28 or 0x30, number 0x0007) into a record or index
/// block.
fn protect(r: &mut [u8], usa: usize) {
    let strides = r.len() / 512;
    r[4..6].copy_from_slice(&(usa as u16).to_le_bytes());
    r[6..8].copy_from_slice(&(strides as u16 + 1).to_le_bytes());
    r[usa..usa + 2].copy_from_slice(&[0x07, 0x00]);
    for i in 0..strides {
        let end = (i + 1) * 512 - 2;
        r.copy_within(end..end + 2, usa + 2 + 2 * i);
        r[end..end + 2].copy_from_slice(&[0x07, 0x00]);
    }
}

/// An MFT record: in use (and a directory if `dir`), extending `base_ref` unless 0.
fn file_record(dir: bool, base_ref: u64, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut r = vec![0u8; RS];
    r[0..4].copy_from_slice(b"FILE");
    r[16..18].copy_from_slice(&1u16.to_le_bytes());
    r[20..22].copy_from_slice(&0x38u16.to_le_bytes());
    r[22..24].copy_from_slice(&(if dir { 3u16 } else { 1 }).to_le_bytes());
    r[28..32].copy_from_slice(&(RS as u32).to_le_bytes());
    r[32..40].copy_from_slice(&base_ref.to_le_bytes());
    let mut off = 0x38;
    for a in attrs {
        r[off..off + a.len()].copy_from_slice(a);
        off += a.len();
    }
    r[off..off + 4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    r[24..28].copy_from_slice(&(off as u32 + 8).to_le_bytes());
    protect(&mut r, 0x30);
    r
}

/// An `$INDEX_ROOT` value over the given entries.
fn index_root(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![0u8; 16];
    v[0..4].copy_from_slice(&0x30u32.to_le_bytes());
    v[4..8].copy_from_slice(&1u32.to_le_bytes());
    v[8..12].copy_from_slice(&4096u32.to_le_bytes());
    v[12] = 8;
    v.extend(node(entries));
    v
}

/// A 4 KiB `INDX` block at `vcn` holding the given entries.
fn indx(vcn: u64, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    b[0..4].copy_from_slice(b"INDX");
    b[16..24].copy_from_slice(&vcn.to_le_bytes());
    let body: Vec<u8> = entries.concat();
    b[0x18..0x1C].copy_from_slice(&0x28u32.to_le_bytes());
    b[0x1C..0x20].copy_from_slice(&(0x28 + body.len() as u32).to_le_bytes());
    b[0x20..0x24].copy_from_slice(&(4096u32 - 0x18).to_le_bytes());
    b[0x40..0x40 + body.len()].copy_from_slice(&body);
    protect(&mut b, 0x28);
    b
}

/// An attribute list entry: attribute `ty` (unnamed, from VCN 0) in `record`.
fn list_entry(ty: u32, record: u64) -> Vec<u8> {
    let mut e = vec![0u8; 32];
    e[0..4].copy_from_slice(&ty.to_le_bytes());
    e[4..6].copy_from_slice(&32u16.to_le_bytes());
    e[7] = 26;
    e[16..24].copy_from_slice(&(record | 1 << 48).to_le_bytes());
    e
}

/// A volume: `records` (number, record) over the default system records, and `blocks`
/// (byte offset, bytes).
fn volume(records: &[(usize, Vec<u8>)], blocks: &[(usize, Vec<u8>)]) -> Rc<dyn BlockDevice> {
    let mut img = vec![0u8; 1 << 20];
    img[3..11].copy_from_slice(b"NTFS    ");
    img[11..13].copy_from_slice(&512u16.to_le_bytes());
    img[13] = 1;
    img[40..48].copy_from_slice(&2047u64.to_le_bytes());
    img[48..56].copy_from_slice(&(MFT_LCN as u64).to_le_bytes());
    img[64] = 0xF6;
    let mut all: Vec<(usize, Vec<u8>)> = vec![
        (
            0,
            file_record(
                false,
                0,
                &[
                    non_resident(0x80, "", (0, 127), &[0x21, 128, MFT_LCN as u8, 0], 65536),
                    resident(0xB0, "", &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
                ],
            ),
        ),
        (
            5,
            file_record(
                true,
                0,
                &[
                    std_info(),
                    resident(0x90, "$I30", &index_root(&[last(None)])),
                ],
            ),
        ),
        (
            6,
            file_record(false, 0, &[std_info(), resident(0x80, "", &[0xFF; 256])]),
        ),
        (
            10,
            file_record(
                false,
                0,
                &[
                    std_info(),
                    non_resident(0x80, "", (0, 255), &[0x02, 0, 1, 0], 131072),
                ],
            ),
        ),
    ];
    all.extend(records.iter().cloned());
    for (n, r) in all {
        let at = MFT_LCN * CS + n * RS;
        img[at..at + RS].copy_from_slice(&r);
    }
    for (at, b) in blocks {
        img[*at..*at + b.len()].copy_from_slice(b);
    }
    Rc::new(img)
}

/// A file record 16 named "f" in the root.
fn root_with_f() -> (usize, Vec<u8>) {
    let root = index_root(&[entry(16, "f", None), last(None)]);
    (
        5,
        file_record(true, 0, &[std_info(), resident(0x90, "$I30", &root)]),
    )
}

#[test]
fn synthetic_volume_opens() {
    let file = file_record(false, 0, &[std_info(), resident(0x80, "", b"data")]);
    let fs = NtfsFs::open(volume(&[root_with_f(), (16, file)], &[])).unwrap();
    assert_eq!(fs.read_file("/f", 100).unwrap(), b"data");
    assert_eq!(fs.read_file("/F", 100).unwrap(), b"data");
    let names: Vec<_> = fs
        .read_dir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["f"]);
    assert!(fs.usage().is_ok());
}

#[test]
fn attribute_list_that_lists_itself() {
    // The list names the list (in the file's own record): Corrupt, not followed.
    let list: Vec<u8> = [
        list_entry(0x10, 16),
        list_entry(0x20, 16),
        list_entry(0x80, 16),
    ]
    .concat();
    let file = file_record(
        false,
        0,
        &[
            std_info(),
            resident(0x20, "", &list),
            resident(0x80, "", b"data"),
        ],
    );
    let fs = NtfsFs::open(volume(&[root_with_f(), (16, file)], &[])).unwrap();
    assert!(is_corrupt(fs.stat("/f")), "{:?}", fs.stat("/f"));
    assert!(is_corrupt(fs.read_file("/f", 100)));
    // The listing still shows the name.
    assert_eq!(fs.read_dir("/").unwrap().len(), 1);
    // The list names an extension record of the file that holds an attribute list back to
    // the file: Corrupt.
    let list: Vec<u8> = [list_entry(0x10, 16), list_entry(0x80, 17)].concat();
    let file = file_record(false, 0, &[std_info(), resident(0x20, "", &list)]);
    let ext = file_record(
        false,
        16 | 1 << 48,
        &[resident(0x20, "", &list), resident(0x80, "", b"data")],
    );
    let fs = NtfsFs::open(volume(&[root_with_f(), (16, file), (17, ext)], &[])).unwrap();
    assert!(is_corrupt(fs.stat("/f")));
    // A list naming the file's own record only is sound.
    let list: Vec<u8> = [list_entry(0x10, 16), list_entry(0x80, 16)].concat();
    let file = file_record(
        false,
        0,
        &[
            std_info(),
            resident(0x20, "", &list),
            resident(0x80, "", b"data"),
        ],
    );
    let fs = NtfsFs::open(volume(&[root_with_f(), (16, file)], &[])).unwrap();
    assert_eq!(fs.read_file("/f", 100).unwrap(), b"data");
}

#[test]
fn index_tree_loop() {
    // The root's end entry leads to node 0, whose end entry leads to node 8, whose end
    // entry leads back to node 0.
    let root = index_root(&[last(Some(0))]);
    let alloc = non_resident(0xA0, "$I30", (0, 15), &[0x21, 16, 200, 0], 8192);
    let bitmap = resident(0xB0, "$I30", &[3, 0, 0, 0, 0, 0, 0, 0]);
    let dir = file_record(
        true,
        0,
        &[std_info(), resident(0x90, "$I30", &root), alloc, bitmap],
    );
    let n0 = indx(0, &[entry(16, "m", None), last(Some(8))]);
    let n8 = indx(8, &[last(Some(0))]);
    let file = file_record(false, 0, &[std_info(), resident(0x80, "", b"data")]);
    let dev = volume(&[(5, dir), (16, file)], &[(200 * CS, n0), (208 * CS, n8)]);
    let fs = NtfsFs::open(dev).unwrap();
    // Names after "m" descend 0, 8, 0: Corrupt, at once.
    let r = fs.stat("/z");
    assert!(is_corrupt(r.clone()), "{r:?}");
    // "m" is met on the way down; the listing reads each block once.
    assert_eq!(fs.read_file("/m", 10).unwrap(), b"data");
    let names: Vec<_> = fs
        .read_dir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["m"]);
    // A node that leads to itself.
    let root = index_root(&[last(Some(0))]);
    let alloc = non_resident(0xA0, "$I30", (0, 7), &[0x21, 8, 200, 0], 4096);
    let bitmap = resident(0xB0, "$I30", &[1, 0, 0, 0, 0, 0, 0, 0]);
    let dir = file_record(
        true,
        0,
        &[std_info(), resident(0x90, "$I30", &root), alloc, bitmap],
    );
    let n0 = indx(0, &[last(Some(0))]);
    let fs = NtfsFs::open(volume(&[(5, dir)], &[(200 * CS, n0)])).unwrap();
    assert!(is_corrupt(fs.stat("/a")));
}

#[test]
fn mft_extension_records() {
    // $MFT's $DATA in two pieces, the second in extension record 15 (base: record 0,
    // sequence number 1), through an attribute list.
    let list: Vec<u8> = [list_entry(0x80, 0), list_entry(0x80, 15)].concat();
    let mut first = non_resident(0x80, "", (0, 63), &[0x21, 64, MFT_LCN as u8, 0], 65536);
    first[24..32].copy_from_slice(&63u64.to_le_bytes());
    let rec0 = file_record(
        false,
        0,
        &[
            resident(0x20, "", &list),
            first,
            resident(0xB0, "", &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
        ],
    );
    let second = non_resident(0x80, "", (64, 127), &[0x21, 64, MFT_LCN as u8 + 64, 0], 0);
    let ext = file_record(false, 1 << 48, &[second]);
    let file = file_record(false, 0, &[std_info(), resident(0x80, "", b"far")]);
    let root = index_root(&[entry(40, "far", None), last(None)]);
    let root = file_record(true, 0, &[std_info(), resident(0x90, "$I30", &root)]);
    let recs = [
        (0, rec0.clone()),
        (5, root.clone()),
        (15, ext),
        (40, file.clone()),
    ];
    let fs = NtfsFs::open(volume(&recs, &[])).unwrap();
    assert_eq!(fs.read_file("/far", 10).unwrap(), b"far");
    // The same extension record as a base record (no sequence number): refused.
    let second = non_resident(0x80, "", (64, 127), &[0x21, 64, MFT_LCN as u8 + 64, 0], 0);
    let not_ext = file_record(false, 0, &[second]);
    let recs = [(0, rec0), (5, root), (15, not_ext), (40, file)];
    assert!(is_corrupt(NtfsFs::open(volume(&recs, &[]))));
}

#[test]
fn holes_longer_than_the_volume() {
    // A sparse file of 2^62 clusters: reads near its end give zeros (its byte end
    // overflowed).
    let mut runs = vec![0x08];
    runs.extend_from_slice(&(1u64 << 62).to_le_bytes());
    let data = non_resident(0x80, "", (0, (1 << 62) - 1), &runs, u64::MAX >> 1);
    let file = file_record(false, 0, &[std_info(), data]);
    let fs = NtfsFs::open(volume(&[root_with_f(), (16, file)], &[])).unwrap();
    let mut buf = [1u8; 100];
    assert_eq!(fs.read_at("/f", (u64::MAX >> 1) - 40, &mut buf), Ok(40));
    assert!(buf[..40].iter().all(|&b| b == 0));
}

#[test]
fn usage_with_a_huge_mft_bitmap() {
    // $MFT's $BITMAP claims 2^50 bytes (all a hole): only the bytes covering the MFT's
    // records are counted, at once.
    let mut runs = vec![0x07];
    runs.extend_from_slice(&(1u64 << 41).to_le_bytes()[..7]);
    let rec0 = file_record(
        false,
        0,
        &[
            non_resident(0x80, "", (0, 127), &[0x21, 128, MFT_LCN as u8, 0], 65536),
            non_resident(0xB0, "", (0, (1 << 41) - 1), &runs, 1 << 50),
        ],
    );
    let fs = NtfsFs::open(volume(&[(0, rec0)], &[])).unwrap();
    let u = fs.usage().unwrap();
    assert_eq!(u.inodes - u.inodes_free, 0);
    // An MFT larger than the volume: Corrupt.
    let rec0 = file_record(
        false,
        0,
        &[non_resident(
            0x80,
            "",
            (0, 127),
            &[0x21, 128, MFT_LCN as u8, 0],
            2 << 20,
        )],
    );
    assert!(is_corrupt(NtfsFs::open(volume(&[(0, rec0)], &[]))));
}

//! Unit tests: LZNT1, run lists, fixups, index nodes, reparse points, the boot sector.
//! The reader as a whole is tested against ntfs-3g in `inspect/tests/ntfs.rs`.

use alloc::vec;
use alloc::vec::Vec;

use super::index::parse_node;
use super::lznt1::decompress;
use super::record::{Run, apply_fixups, decode_runs, parse_attr_list};
use super::reparse::{TAG_MOUNT_POINT, reparse};
use super::{Geometry, corrupt};
use crate::fs::FsError;

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

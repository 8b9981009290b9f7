//! Tests of the Berkeley DB hash reader, on databases made by the real tools
//! (`../testdata/bdb/make.sh`) and on damaged copies of them.

use super::*;
use crate::pkgdb::Bytes;

const REAL_LE: &[u8] = include_bytes!("../testdata/bdb/real-le-4096.db");
const REAL_BE: &[u8] = include_bytes!("../testdata/bdb/real-be-512.db");
const MANY_LE: &[u8] = include_bytes!("../testdata/bdb/many-le-512.db");
const MANY_BE: &[u8] = include_bytes!("../testdata/bdb/many-be-4096.db");
const DELETED: &[u8] = include_bytes!("../testdata/bdb/deleted-le-512.db");
const BTREE: &[u8] = include_bytes!("../testdata/bdb/btree-le-512.db");
const CHKSUM: &[u8] = include_bytes!("../testdata/bdb/chksum-le-512.db");

/// Each hash fixture with what db5.3_dump returned for it.
const FIXTURES: [(&str, &[u8], &[u8]); 5] = [
    (
        "real-le-4096",
        REAL_LE,
        include_bytes!("../testdata/bdb/real-le-4096.db.expect"),
    ),
    (
        "real-be-512",
        REAL_BE,
        include_bytes!("../testdata/bdb/real-be-512.db.expect"),
    ),
    (
        "many-le-512",
        MANY_LE,
        include_bytes!("../testdata/bdb/many-le-512.db.expect"),
    ),
    (
        "many-be-4096",
        MANY_BE,
        include_bytes!("../testdata/bdb/many-be-4096.db.expect"),
    ),
    (
        "deleted-le-512",
        DELETED,
        include_bytes!("../testdata/bdb/deleted-le-512.db.expect"),
    ),
];

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A `.expect` file: records of u32 LE key length, key, u32 LE value length, value.
fn expected(mut raw: &[u8]) -> Pairs {
    fn take(raw: &mut &[u8]) -> Vec<u8> {
        let (len, rest) = raw.split_at(4);
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        let (item, rest) = rest.split_at(len);
        *raw = rest;
        item.to_vec()
    }
    let mut out = Vec::new();
    while !raw.is_empty() {
        let k = take(&mut raw);
        out.push((k, take(&mut raw)));
    }
    out
}

fn pairs(db: &[u8]) -> (Pairs, Res<()>) {
    let mut got = Vec::new();
    let r = for_each_pair(&Bytes(db), &mut |k, v| got.push((k.to_vec(), v.to_vec())));
    (got, r)
}

fn blobs(db: &[u8]) -> (Vec<Vec<u8>>, Res<()>) {
    let mut got = Vec::new();
    let r = packages(&Bytes(db), &mut |b| got.push(b.to_vec()));
    (got, r)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes(b[at..at + 2].try_into().unwrap()))
}

fn set32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn set16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn value(i: u32) -> Vec<u8> {
    (0..100u32).map(|j| ((i * 7 + j) & 0xff) as u8).collect()
}

fn big_value(i: u32) -> Vec<u8> {
    (0..20480u32).map(|j| ((i + j * 13) % 251) as u8).collect()
}

#[test]
fn every_fixture_reads_as_db_dump_does() {
    for (name, db, expect) in FIXTURES {
        let (got, r) = pairs(db);
        assert_eq!(r, Ok(()), "{name}");
        assert_eq!(got, expected(expect), "{name}");
    }
}

#[test]
fn real_rpm_headers_both_byte_orders() {
    for db in [REAL_LE, REAL_BE] {
        let (got, r) = blobs(db);
        assert_eq!(r, Ok(()));
        let all: Vec<_> = expected(FIXTURES[0].2)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        // Key 0 (rpm's next-instance counter, 4) is not a header.
        assert_eq!(all[0], [4, 0, 0, 0]);
        assert_eq!(got, all[1..]);
        let names: Vec<&str> = got
            .iter()
            .map(|b| {
                // A header blob: index count and data length (big-endian), 16-byte entries,
                // data.
                let il = u32::from_be_bytes(b[0..4].try_into().unwrap()) as usize;
                let dl = u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize;
                assert_eq!(b.len(), 8 + 16 * il + dl);
                ["alpha", "beta", "gamma"]
                    .into_iter()
                    .find(|n| b.windows(n.len()).any(|w| w == n.as_bytes()))
                    .unwrap()
            })
            .collect();
        assert_eq!(names, ["beta", "gamma", "alpha"]);
    }
}

#[test]
fn split_tables_and_overflow_both_byte_orders() {
    for (db, big) in [(MANY_LE, false), (MANY_BE, true)] {
        let key = |i: u32| {
            if big {
                i.to_be_bytes()
            } else {
                i.to_le_bytes()
            }
        };
        let (mut got, r) = pairs(db);
        assert_eq!(r, Ok(()));
        assert_eq!(got.len(), 303);
        got.sort();
        let mut want: Pairs = (1..=300).map(|i| (key(i).to_vec(), value(i))).collect();
        want.push((key(0).to_vec(), key(1303).to_vec()));
        want.extend([1301, 1302].map(|i| (key(i).to_vec(), big_value(i))));
        want.sort();
        assert_eq!(got, want);
        let (blobs, r) = blobs(db);
        assert_eq!(r, Ok(()));
        assert_eq!(blobs.len(), 302);
    }
}

#[test]
fn deleted_entries_and_reused_pages() {
    // perl DB_File: 1..=300 stored, the even ones, multiples of 25 (3000-byte overflow
    // values) and those over 200 deleted, then 301..=330 stored.
    let (mut got, r) = pairs(DELETED);
    assert_eq!(r, Ok(()));
    got.sort();
    let val = |i: u32| {
        let n = if i.is_multiple_of(25) {
            3000
        } else {
            60 + i % 40
        };
        (0..n)
            .map(|j| ((i * 31 + j) & 0xff) as u8)
            .collect::<Vec<u8>>()
    };
    let mut want: Pairs = (1..=330u32)
        .filter(|i| *i > 300 || (i % 2 == 1 && !i.is_multiple_of(25) && *i <= 200))
        .map(|i| (i.to_le_bytes().to_vec(), val(i)))
        .collect();
    want.sort();
    assert_eq!(got, want);
    // The file does have freed pages (its free list is not empty).
    assert_ne!(le32(DELETED, 28), 0);
}

#[test]
fn unsupported_and_foreign_files() {
    let unsupported = |db: &[u8], what: &str| match pairs(db) {
        (got, Err(BdbError::Unsupported(m))) if got.is_empty() => {
            assert!(m.contains(what), "{m}")
        }
        other => panic!("{what}: {other:?}"),
    };
    unsupported(BTREE, "btree");
    unsupported(CHKSUM, "checksums");
    let mut enc = MANY_LE.to_vec();
    enc[24] = 1;
    unsupported(&enc, "encrypted");
    let mut subdb = MANY_LE.to_vec();
    subdb[48] = 2;
    unsupported(&subdb, "sub-databases");
    let mut v = MANY_LE.to_vec();
    set32(&mut v, 16, 6);
    unsupported(&v, "version 6");

    let corrupt = |db: &[u8], what: &str| match pairs(db) {
        (got, Err(BdbError::Corrupt(m))) if got.is_empty() => assert!(m.contains(what), "{m}"),
        other => panic!("{what}: {other:?}"),
    };
    let mut magic = MANY_LE.to_vec();
    magic[12] ^= 0xff;
    corrupt(&magic, "no hash magic");
    corrupt(&MANY_LE[..300], "shorter than a metadata page");
    corrupt(&[], "shorter than a metadata page");
    let mut ps = MANY_LE.to_vec();
    set32(&mut ps, 20, 1000);
    corrupt(&ps, "page size 1000");
    let mut buckets = MANY_LE.to_vec();
    set32(&mut buckets, 72, u32::MAX);
    corrupt(&buckets, "4294967296 buckets");
}

/// The hash pages of a little-endian 512-byte-page fixture, in bucket order.
fn bucket_chains(db: &[u8]) -> Vec<Vec<usize>> {
    let max_bucket = le32(db, 72);
    (0..=max_bucket)
        .map(|b| {
            let doubling = 32 - b.leading_zeros() as usize;
            let mut p = (b + le32(db, 96 + 4 * doubling)) as usize;
            let mut chain = vec![p];
            while le32(db, p * 512 + 16) != 0 {
                p = le32(db, p * 512 + 16) as usize;
                chain.push(p);
            }
            chain
        })
        .collect()
}

/// The first overflow item of MANY_LE: (hash page, offset of the H_OFFPAGE item in the
/// file, its key).
fn first_overflow_item(db: &[u8]) -> (usize, usize, Vec<u8>) {
    for p in bucket_chains(db).concat() {
        let page = &db[p * 512..][..512];
        let n = le16(page, 20);
        for i in (1..n).step_by(2) {
            let at = le16(page, 26 + 2 * i);
            if page[at] == H_OFFPAGE {
                let k = le16(page, 26 + 2 * (i - 1));
                let key_end = if i == 1 {
                    512
                } else {
                    le16(page, 26 + 2 * (i - 2))
                };
                return (p, p * 512 + at, page[k + 1..key_end].to_vec());
            }
        }
    }
    panic!("no overflow item");
}

/// Runs the reader on a damaged copy: the error must be Corrupt and mention `what`, and
/// what was delivered must be exactly the first `before` pairs db_dump returns.
fn damaged(db: &[u8], expect: &Pairs, before: usize, what: &str) {
    let (got, r) = pairs(db);
    match r {
        Err(BdbError::Corrupt(m)) => assert!(m.contains(what), "{what}: {m}"),
        other => panic!("{what}: {other:?}"),
    }
    assert_eq!(got.len(), before, "{what}");
    assert_eq!(got[..], expect[..before], "{what}");
}

#[test]
fn hostile_chains_offsets_and_lengths() {
    let expect = expected(FIXTURES[2].2);
    let (hash_page, item, key) = first_overflow_item(MANY_LE);
    // The pairs before the one whose value is the overflow item.
    let before = expect.iter().position(|(k, _)| *k == key).unwrap();
    assert_eq!(expect[before].1.len(), 20480);
    let first_ovf = le32(MANY_LE, item + 4) as usize;
    let second_ovf = le32(MANY_LE, first_ovf * 512 + 16) as usize;

    // The last bucket's chain loops back to its first page: everything is delivered once,
    // then the loop is reported.
    let chains = bucket_chains(MANY_LE);
    let last = chains.last().unwrap();
    let mut db = MANY_LE.to_vec();
    set32(&mut db, last.last().unwrap() * 512 + 16, last[0] as u32);
    damaged(&db, &expect, expect.len(), "second time");

    // A bucket chain that runs into another bucket's page.
    let mut db = MANY_LE.to_vec();
    let first_with_chain = chains.iter().position(|c| c.len() > 1).unwrap();
    set32(
        &mut db,
        chains[first_with_chain][0] * 512 + 16,
        chains[0][0] as u32,
    );
    let (got, r) = pairs(&db);
    assert!(matches!(r, Err(BdbError::Corrupt(m)) if m.contains("second time")));
    assert_eq!(got[..], expect[..got.len()]);

    // A bucket page that is not a hash page.
    let mut db = MANY_LE.to_vec();
    db[last[0] * 512 + 25] = P_OVERFLOW;
    let (got, r) = pairs(&db);
    assert!(matches!(r, Err(BdbError::Corrupt(m)) if m.contains("not a hash page")));
    assert_eq!(got[..], expect[..got.len()]);
    assert!(got.len() > 250);

    // An overflow chain that loops.
    let mut db = MANY_LE.to_vec();
    set32(&mut db, second_ovf * 512 + 16, first_ovf as u32);
    damaged(&db, &expect, before, "second time");

    // An overflow chain that runs past the last page, or to the metadata page.
    let mut db = MANY_LE.to_vec();
    set32(&mut db, first_ovf * 512 + 16, 10_000);
    damaged(&db, &expect, before, "outside the database");
    let mut db = MANY_LE.to_vec();
    set32(&mut db, item + 4, 0);
    damaged(&db, &expect, before, "overflow page 0 is outside");

    // An overflow chain that ends at a page that is not an overflow page.
    let mut db = MANY_LE.to_vec();
    set32(&mut db, first_ovf * 512 + 16, last[0] as u32);
    damaged(&db, &expect, before, "has type 13");

    // Total lengths: in gigabytes, over the file, one byte more or less than the chain.
    let mut db = MANY_LE.to_vec();
    set32(&mut db, item + 8, 0xC000_0000);
    damaged(&db, &expect, before, "the blob size cap");
    set32(&mut db, item + 8, 10 << 20);
    damaged(&db, &expect, before, "the file holds");
    set32(&mut db, item + 8, 20481);
    damaged(&db, &expect, before, "ends after 20480 of the 20481 bytes");
    set32(&mut db, item + 8, 20479);
    damaged(&db, &expect, before, "holds more than the 20479 bytes");

    // An overflow page claiming more bytes than a page holds.
    let mut db = MANY_LE.to_vec();
    set16(&mut db, first_ovf * 512 + 22, 600);
    damaged(&db, &expect, before, "claims 600 bytes");

    // Item offsets past the page, or out of order.
    let pairs_before_page: usize = chains
        .concat()
        .iter()
        .take_while(|p| **p != hash_page)
        .map(|p| le16(MANY_LE, p * 512 + 20) / 2)
        .sum();
    let mut db = MANY_LE.to_vec();
    set16(&mut db, hash_page * 512 + 26, 600);
    damaged(&db, &expect, pairs_before_page, "item 0 of hash page");
    let mut db = MANY_LE.to_vec();
    set16(&mut db, hash_page * 512 + 28, 511);
    damaged(&db, &expect, pairs_before_page, "item 1 of hash page");
    let mut db = MANY_LE.to_vec();
    set16(&mut db, hash_page * 512 + 20, 255);
    damaged(&db, &expect, pairs_before_page, "odd number of items");
    set16(&mut db, hash_page * 512 + 20, 254);
    damaged(&db, &expect, pairs_before_page, "more than fit in a page");

    // A file cut short: what is before the cut is delivered.
    let (got, r) = pairs(&MANY_LE[..MANY_LE.len() / 2]);
    assert!(matches!(r, Err(BdbError::Corrupt(_))));
    assert_eq!(got[..], expect[..got.len()]);
}

#[test]
fn hostile_big_endian() {
    // The same checks read the fields in the database's byte order.
    let expect = expected(FIXTURES[3].2);
    let mut db = MANY_BE.to_vec();
    // Bucket 0's page (spares[0] + 0) points back at itself.
    let p = u32::from_be_bytes(db[96..100].try_into().unwrap()) as usize;
    db[p * 4096 + 16..p * 4096 + 20].copy_from_slice(&(p as u32).to_be_bytes());
    let (got, r) = pairs(&db);
    assert!(matches!(r, Err(BdbError::Corrupt(m)) if m.contains("second time")));
    assert_eq!(got[..], expect[..got.len()]);
    assert!(!got.is_empty());
}

/// xorshift64: deterministic pseudo-random numbers for the mutations.
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
fn fuzz_mutated_fixtures() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let all = [REAL_LE, REAL_BE, MANY_LE, MANY_BE, DELETED, BTREE, CHKSUM];
    let mut reached = 0;
    for round in 0..6000 {
        let base = all[round % all.len()];
        let mut db = base.to_vec();
        let page_size = if base == MANY_BE || base == REAL_LE {
            4096
        } else {
            512
        };
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 => {
                    let at = rng.below(db.len());
                    let bit = 1 << rng.below(8);
                    if let Some(b) = db.get_mut(at) {
                        *b ^= bit;
                    }
                }
                1 => db.truncate(rng.below(db.len() + 1)),
                _ => {
                    // A 4-byte word in a page header or item index (or the metadata):
                    // zero, huge, a page number, or random.
                    let page = rng.below(db.len() / page_size + 1);
                    let at = page * page_size + [8, 12, 16, 20, 22, 26, 28, 72, 96][rng.below(9)];
                    let words = [
                        0,
                        u32::MAX,
                        0x7fff_ffff,
                        rng.below(db.len() / page_size + 2) as u32,
                        rng.next() as u32,
                    ];
                    let w = words[rng.below(words.len())];
                    if let Some(s) = db.get_mut(at..at + 4) {
                        s.copy_from_slice(&w.to_le_bytes());
                    }
                }
            }
        }
        let mut handed = 0usize;
        let _ = for_each_pair(&Bytes(&db), &mut |k, v| handed += k.len() + v.len());
        // Every page is read at most once, so no more than the file is handed out.
        assert!(handed <= db.len(), "round {round}: {handed} bytes");
        let mut blobs = 0usize;
        let _ = packages(&Bytes(&db), &mut |b| blobs += b.len());
        assert!(blobs <= db.len(), "round {round}");
        reached += usize::from(handed > 0);
    }
    // The mutations are not all stopped at the metadata page.
    assert!(reached > 2000, "{reached}");
}

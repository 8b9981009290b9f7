//! Databases written by real SQLite and rpm (`src/pkgdb/testdata/sqlite/make-fixtures.py`,
//! committed zlib-compressed beside it, and made again by the live test), each read here and compared
//! with what SQLite itself read from it; then hostile forgeries made from them, each a clean
//! error after the rows before the damage, never a panic.

extern crate std;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use std::path::{Path, PathBuf};

use super::*;
use crate::pkgdb::Bytes;

/// A value as the rows files hold it.
#[derive(Clone, Debug, PartialEq)]
enum Owned {
    Null,
    Int(i64),
    /// The bits, so that NaN compares.
    Real(u64),
    Text(String),
    Blob(Vec<u8>),
}

type Row = (i64, Vec<Owned>);

/// A rows file: the table, the columns asked for, every row in rowid order.
struct Expected {
    table: String,
    columns: Vec<String>,
    rows: Vec<Row>,
}

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pkgdb/testdata/sqlite")
}

fn unzz(path: &Path) -> Vec<u8> {
    let z = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    miniz_oxide::inflate::decompress_to_vec_zlib(&z)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

fn load(dir: &Path, file: &str) -> Vec<u8> {
    unzz(&dir.join(format!("{file}.zz")))
}

fn load_opt(dir: &Path, file: &str) -> Option<Vec<u8>> {
    let path = dir.join(format!("{file}.zz"));
    path.exists().then(|| unzz(&path))
}

struct Reader<'a>(&'a [u8], usize);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.0[self.1..self.1 + n];
        self.1 += n;
        s
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    fn bytes(&mut self) -> Vec<u8> {
        let n = self.u32() as usize;
        self.take(n).to_vec()
    }
    fn string(&mut self) -> String {
        String::from_utf8(self.bytes()).unwrap()
    }
}

fn parse_rows(data: &[u8]) -> Expected {
    let mut r = Reader(data, 0);
    assert_eq!(r.take(4), b"ROWS");
    let table = r.string();
    let columns: Vec<String> = (0..r.u32()).map(|_| r.string()).collect();
    let mut rows = Vec::new();
    while r.1 < data.len() {
        assert_eq!(r.take(1), b"R");
        let rowid = r.u64() as i64;
        let values = (0..columns.len())
            .map(|_| match r.take(1)[0] {
                0 => Owned::Null,
                1 => Owned::Int(r.u64() as i64),
                2 => Owned::Real(r.u64()),
                3 => Owned::Text(r.string()),
                4 => Owned::Blob(r.bytes()),
                k => panic!("kind {k}"),
            })
            .collect();
        rows.push((rowid, values));
    }
    Expected {
        table,
        columns,
        rows,
    }
}

/// The rows files of case `name`, in order.
fn expectations(dir: &Path, name: &str) -> Vec<Expected> {
    (0..)
        .map_while(|i| load_opt(dir, &format!("{name}.{i}.rows")))
        .map(|d| parse_rows(&d))
        .collect()
}

fn owned(db: &Database<'_>, v: Value<'_>) -> Owned {
    match v {
        Value::Null => Owned::Null,
        Value::Integer(i) => Owned::Int(i),
        Value::Real(f) => Owned::Real(f.to_bits()),
        Value::Text(t) => Owned::Text(db.decode_text(t)),
        Value::Blob(b) => Owned::Blob(b.to_vec()),
    }
}

/// The named columns of every row of `table`, through the generic layer; the rows read
/// before an error come back with it.
fn read_table(
    db: &[u8],
    wal: Option<&[u8]>,
    table: &str,
    columns: &[String],
) -> (Vec<Row>, Result<(), SqliteError>) {
    let mut rows = Vec::new();
    let (db, wal) = (Bytes(db), wal.map(Bytes));
    let result = (|| {
        let d = Database::open(&db, wal.as_ref().map(|w| w as &dyn Store))?;
        let t = d
            .table(table)?
            .ok_or_else(|| SqliteError::NoTable(table.into()))?;
        let idx: Vec<usize> = columns
            .iter()
            .map(|c| {
                t.column(c)
                    .unwrap_or_else(|| panic!("no column {c} in {t:?}"))
            })
            .collect();
        d.for_each_row(t.root, &mut |rowid, rec| {
            let values = idx
                .iter()
                .map(|&i| Ok(owned(&d, t.value(rec, rowid, i)?)))
                .collect::<Result<_, SqliteError>>()?;
            rows.push((rowid, values));
            Ok(())
        })
    })();
    (rows, result)
}

/// What [`packages`] gives, and how it ended.
fn read_packages(db: &[u8], wal: Option<&[u8]>) -> (Vec<Vec<u8>>, Result<(), SqliteError>) {
    let mut blobs = Vec::new();
    let wal = wal.map(Bytes);
    let result = packages(
        &Bytes(db),
        wal.as_ref().map(|w| w as &dyn Store),
        &mut |b| blobs.push(b.to_vec()),
    );
    (blobs, result)
}

/// The blobs of a Packages rows file (its second column), in order.
fn blobs_of(e: &Expected) -> Vec<Vec<u8>> {
    assert_eq!(e.columns, ["hnum", "blob"]);
    e.rows
        .iter()
        .filter_map(|(_, v)| match &v[1] {
            Owned::Blob(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// Case `name`: `db` (and `wal`) read through the generic layer and [`packages`] give what
/// SQLite read.
fn check_case(dir: &Path, name: &str, db: &str, wal: Option<&str>) {
    let data = load(dir, &format!("{db}.sqlite"));
    let wal = wal.and_then(|w| load_opt(dir, &format!("{w}.sqlite-wal")));
    let expected = expectations(dir, name);
    assert!(
        !expected.is_empty(),
        "{name}: no rows files in {}",
        dir.display()
    );
    for e in &expected {
        let (rows, result) = read_table(&data, wal.as_deref(), &e.table, &e.columns);
        result.unwrap_or_else(|err| panic!("{name}: table {:?}: {err}", e.table));
        assert_eq!(rows.len(), e.rows.len(), "{name}: {} rows", e.table);
        for (got, want) in rows.iter().zip(&e.rows) {
            assert_eq!(got, want, "{name}: table {:?}", e.table);
        }
        if e.table == "Packages" {
            let (blobs, result) = read_packages(&data, wal.as_deref());
            result.unwrap_or_else(|err| panic!("{name}: packages: {err}"));
            assert_eq!(blobs, blobs_of(e), "{name}: packages()");
        }
    }
}

/// Every case the fixture script makes, from `dir`.
fn check_all(dir: &Path) {
    check_case(dir, "small", "small", None);
    check_case(dir, "overflow", "overflow", None);
    check_case(dir, "reserved", "reserved", None);
    check_case(dir, "deep", "deep", None);
    check_case(dir, "page64k", "page64k", None);
    check_case(dir, "utf16", "utf16", None);
    check_case(dir, "wal", "wal", Some("wal"));
    check_case(dir, "wal-main", "wal", None);
    check_case(dir, "wal-badsum", "wal", Some("wal-badsum"));
    check_case(dir, "rpm", "rpm", Some("rpm"));
}

#[test]
fn small_rows_every_serial_type_and_odd_schemas() {
    check_case(&committed_dir(), "small", "small", None);
    let db = load(&committed_dir(), "small.sqlite");
    let bytes = Bytes(&db);
    let d = Database::open(&bytes, None).unwrap();
    assert_eq!((d.page_size(), d.usable_size()), (4096, 4096));
    assert_eq!(d.page_count() as usize, db.len() / 4096);
    let odd = d.table("odd \"name\"").unwrap().unwrap();
    let names: Vec<_> = odd.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["first col", "x", "y", "z", "s", "w"]);
    let alias: Vec<_> = odd.columns.iter().map(|c| c.rowid_alias).collect();
    assert_eq!(alias, [false, true, false, false, false, false]);
    let stored: Vec<_> = odd.columns.iter().map(|c| c.stored).collect();
    assert_eq!(stored, [true, true, true, false, true, true]);
    // The NULL, the text and the integer where blobs belong are skipped by packages().
    let (blobs, result) = read_packages(&db, None);
    result.unwrap();
    let e = &expectations(&committed_dir(), "small")[0];
    assert_eq!(blobs.len(), e.rows.len() - 3);
    assert!(d.table("nope").unwrap().is_none());
    let schema = d.table("sqlite_schema").unwrap().unwrap();
    assert_eq!(schema.root, 1);
}

#[test]
fn overflow_pages() {
    check_case(&committed_dir(), "overflow", "overflow", None);
}

#[test]
fn reserved_bytes_per_page() {
    check_case(&committed_dir(), "reserved", "reserved", None);
    let db = load(&committed_dir(), "reserved.sqlite");
    let bytes = Bytes(&db);
    assert_eq!(Database::open(&bytes, None).unwrap().usable_size(), 924);
}

#[test]
fn interior_pages_several_levels() {
    check_case(&committed_dir(), "deep", "deep", None);
    let db = load(&committed_dir(), "deep.sqlite");
    let root = root_of(&db, "Packages");
    assert_eq!(db[page_at(root, 512)], 0x05, "root is interior");
    let child = children(&db, 512, root)[0];
    assert_eq!(db[page_at(child, 512)], 0x05, "its first child is interior");
}

#[test]
fn page_size_65536() {
    check_case(&committed_dir(), "page64k", "page64k", None);
    let db = load(&committed_dir(), "page64k.sqlite");
    assert_eq!(&db[16..18], &[0, 1]);
    let bytes = Bytes(&db);
    assert_eq!(Database::open(&bytes, None).unwrap().page_size(), 65536);
}

#[test]
fn utf16_text() {
    check_case(&committed_dir(), "utf16", "utf16", None);
    let db = load(&committed_dir(), "utf16.sqlite");
    let bytes = Bytes(&db);
    let d = Database::open(&bytes, None).unwrap();
    assert_eq!(d.encoding(), TextEncoding::Utf16Be);
    assert!(d.table("N\u{e4}me").unwrap().is_some());
}

#[test]
fn wal_committed_frames_apply_uncommitted_do_not() {
    let dir = committed_dir();
    check_case(&dir, "wal", "wal", Some("wal"));
    check_case(&dir, "wal-main", "wal", None);
    let db = load(&dir, "wal.sqlite");
    let wal = load(&dir, "wal.sqlite-wal");
    // The WAL has frames after its last commit (the generator checks that); they are not
    // read: the expectations are SQLite's own reading, and the checks above match them.
    let frames: Vec<u32> = (0..(wal.len() - 32) / (24 + 1024))
        .map(|i| rd32(&wal, 32 + i * (24 + 1024) + 4))
        .collect();
    let last_commit = frames.iter().rposition(|&c| c != 0).unwrap();
    assert!(
        last_commit + 1 < frames.len(),
        "frames after the last commit"
    );
    // The open transaction set row 2's blob to x'00' and added 40 rows of 900 bytes.
    let (blobs, result) = read_packages(&db, Some(&wal));
    result.unwrap();
    assert!(!blobs.iter().any(|b| b == &[0]) && !blobs.iter().any(|b| b.len() == 900));
    let (db_b, wal_b) = (Bytes(&db), Bytes(&wal));
    let d = Database::open(&db_b, Some(&wal_b)).unwrap();
    assert!(d.has_wal());
    assert!(
        d.page_count() as usize > db.len() / 1024,
        "the WAL grew the database"
    );
}

#[test]
fn wal_bad_checksum_stops_at_the_frame() {
    check_case(&committed_dir(), "wal-badsum", "wal", Some("wal-badsum"));
}

#[test]
fn wal_invalid_headers_are_ignored() {
    let dir = committed_dir();
    let db = load(&dir, "wal.sqlite");
    let wal = load(&dir, "wal.sqlite-wal");
    let main_only = blobs_of(&expectations(&dir, "wal-main")[0]);
    let mut forged: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut w = wal.clone();
    w[3] ^= 0x10;
    forged.push(("magic", w));
    let mut w = wal.clone();
    w[7] ^= 1;
    forged.push(("version", w));
    let mut w = wal.clone();
    w[8..12].copy_from_slice(&1000u32.to_be_bytes());
    forged.push(("page size", w));
    let mut w = wal.clone();
    w[26] ^= 1;
    forged.push(("header checksum", w));
    let mut w = wal.clone();
    w[16] ^= 1;
    forged.push(("salt (header checksum no longer matches)", w));
    forged.push(("cut inside the header", wal[..20].to_vec()));
    forged.push(("empty", Vec::new()));
    // A valid header, but the first frame's salt differs: no valid commit.
    let mut w = wal.clone();
    w[32 + 8] ^= 1;
    forged.push(("first frame's salt", w));
    // A WAL for another page size (header re-checksummed so that it is valid).
    let mut w = wal[..32].to_vec();
    w[8..12].copy_from_slice(&4096u32.to_be_bytes());
    let s = super::wal::tests_checksum(w[3] & 1 == 1, &w[..24]);
    w[24..28].copy_from_slice(&s.0.to_be_bytes());
    w[28..32].copy_from_slice(&s.1.to_be_bytes());
    forged.push(("another page size", w));
    for (what, w) in forged {
        let (blobs, result) = read_packages(&db, Some(&w));
        result.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(blobs, main_only, "{what}: the WAL is ignored");
    }
}

#[test]
fn real_rpmdb() {
    check_case(&committed_dir(), "rpm", "rpm", Some("rpm"));
    let e = &expectations(&committed_dir(), "rpm")[0];
    assert_eq!(e.rows.len(), 3);
}

/// The fixtures made again by real SQLite and rpm on this machine, and read: needs python3
/// with its sqlite3 module, rpmbuild and rpm. Missing tools skip loudly, and fail under
/// CI=true.
#[test]
fn live_fixtures_from_sqlite_and_rpm() {
    let ci = std::env::var_os("CI").is_some_and(|v| v == "true");
    let tools: [(&str, &[&str]); 3] = [
        ("python3", &["-c", "import sqlite3"]),
        ("rpmbuild", &["--version"]),
        ("rpm", &["--version"]),
    ];
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(tool, args)| {
            !std::process::Command::new(tool)
                .args(*args)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(tool, _)| *tool)
        .collect();
    if !missing.is_empty() {
        assert!(
            !ci,
            "CI=true and {missing:?} missing: the live sqlite fixtures cannot be made"
        );
        std::eprintln!("SKIPPED live sqlite fixtures: {missing:?} missing");
        return;
    }
    let out = std::env::temp_dir().join(format!("sqlite-fixtures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = std::process::Command::new("python3")
        .arg(committed_dir().join("make-fixtures.py"))
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "make-fixtures.py failed");
    check_all(&out);
    std::fs::remove_dir_all(&out).unwrap();
}

// ---- Forgeries ----

fn page_at(n: u32, page_size: usize) -> usize {
    (n as usize - 1) * page_size + if n == 1 { 100 } else { 0 }
}

fn rd16(d: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([d[at], d[at + 1]]))
}

fn rd32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(d[at..at + 4].try_into().unwrap())
}

/// Absolute offsets of page `n`'s cell pointers.
fn pointers(d: &[u8], ps: usize, n: u32) -> Vec<usize> {
    let h = page_at(n, ps);
    let base = h + if d[h] == 0x05 { 12 } else { 8 };
    (0..rd16(d, h + 3)).map(|i| base + 2 * i).collect()
}

/// Absolute offsets of page `n`'s cells.
fn cells(d: &[u8], ps: usize, n: u32) -> Vec<usize> {
    let start = (n as usize - 1) * ps;
    pointers(d, ps, n)
        .into_iter()
        .map(|p| start + rd16(d, p))
        .collect()
}

/// An interior page's children, left to right.
fn children(d: &[u8], ps: usize, n: u32) -> Vec<u32> {
    let mut c: Vec<u32> = cells(d, ps, n).into_iter().map(|at| rd32(d, at)).collect();
    c.push(rd32(d, page_at(n, ps) + 8));
    c
}

fn root_of(db: &[u8], table: &str) -> u32 {
    let bytes = Bytes(db);
    Database::open(&bytes, None)
        .unwrap()
        .table(table)
        .unwrap()
        .unwrap()
        .root
}

/// `blobs` are a strict, non-empty prefix of `all`, and the result a corrupt error whose
/// message holds `says`.
fn assert_prefix_then(
    what: &str,
    (blobs, result): (Vec<Vec<u8>>, Result<(), SqliteError>),
    all: &[Vec<u8>],
    says: &str,
) {
    match result {
        Err(SqliteError::Corrupt(m)) => assert!(m.contains(says), "{what}: {m:?} lacks {says:?}"),
        other => panic!("{what}: {other:?}, not a corrupt error"),
    }
    assert!(!blobs.is_empty(), "{what}: no row before the damage");
    assert!(blobs.len() < all.len(), "{what}: every row read");
    assert_eq!(
        blobs[..],
        all[..blobs.len()],
        "{what}: the rows before the damage"
    );
}

fn fixture(name: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
    let dir = committed_dir();
    (
        load(&dir, &format!("{name}.sqlite")),
        blobs_of(&expectations(&dir, name)[0]),
    )
}

#[test]
fn page_number_out_of_range() {
    let (mut db, all) = fixture("deep");
    let root = root_of(&db, "Packages");
    let mid = children(&db, 512, root)[0];
    let cell = cells(&db, 512, mid)[3];
    db[cell..cell + 4].copy_from_slice(&100_000u32.to_be_bytes());
    assert_prefix_then(
        "child",
        read_packages(&db, None),
        &all,
        "page 100000 is out of range",
    );
}

#[test]
fn truncated_file() {
    // Cut page by page from the end: every cut is an error after a prefix of the rows (no
    // rows when an interior page is gone), and some cut leaves rows before the damage.
    let (db, all) = fixture("deep");
    let mut some = false;
    for pages in (db.len() / 512 - 20..db.len() / 512).rev() {
        let (blobs, result) = read_packages(&db[..pages * 512], None);
        assert!(
            matches!(&result, Err(SqliteError::Corrupt(m)) if m.contains("out of range")),
            "{pages} pages: {result:?}"
        );
        assert_eq!(blobs[..], all[..blobs.len()]);
        some |= !blobs.is_empty();
    }
    assert!(some);
}

#[test]
fn btree_that_points_to_itself() {
    let (db, all) = fixture("deep");
    let root = root_of(&db, "Packages");
    let mid = children(&db, 512, root)[0];
    let mut to_self = db.clone();
    let cell = cells(&to_self, 512, mid)[5];
    to_self[cell..cell + 4].copy_from_slice(&mid.to_be_bytes());
    assert_prefix_then(
        "to itself",
        read_packages(&to_self, None),
        &all,
        "second time",
    );
    // To the root, from its last child's last child pointer.
    let mut to_root = db.clone();
    let last = *children(&db, 512, root).last().unwrap();
    let right = page_at(last, 512) + 8;
    to_root[right..right + 4].copy_from_slice(&root.to_be_bytes());
    assert_prefix_then(
        "to the root",
        read_packages(&to_root, None),
        &all,
        "second time",
    );
    // Two children naming the same leaf.
    let mut twice = db.clone();
    let c = cells(&twice, 512, mid);
    let leaf = rd32(&twice, c[2]);
    twice[c[3]..c[3] + 4].copy_from_slice(&leaf.to_be_bytes());
    assert_prefix_then(
        "shared leaf",
        read_packages(&twice, None),
        &all,
        "second time",
    );
}

#[test]
fn btree_deeper_than_the_bound() {
    // 70 interior pages, each with no cells and its right-most pointer to the next, then a
    // leaf: appended to a valid database and walked from the first.
    let (mut db, _) = fixture("small");
    let ps = 4096;
    let first = (db.len() / ps) as u32 + 1;
    for i in 0..70u32 {
        let mut p = vec![0u8; ps];
        p[0] = 0x05;
        p[5..7].copy_from_slice(&(ps as u16).to_be_bytes());
        p[8..12].copy_from_slice(&(first + i + 1).to_be_bytes());
        db.extend_from_slice(&p);
    }
    let mut leaf = vec![0u8; ps];
    leaf[0] = 0x0d;
    db.extend_from_slice(&leaf);
    let count = (db.len() / ps) as u32;
    db[28..32].copy_from_slice(&count.to_be_bytes());
    let bytes = Bytes(&db);
    let d = Database::open(&bytes, None).unwrap();
    let err = d.for_each_row(first, &mut |_, _| Ok(())).unwrap_err();
    assert!(format!("{err}").contains("levels deep"), "{err}");
    // 60 levels are fine.
    d.for_each_row(first + 10, &mut |_, _| Ok(())).unwrap();
}

/// The leaf cell (absolute offset) of the row whose payload is the largest, its page, and
/// that payload's size.
fn largest_row(db: &[u8], ps: usize) -> (usize, u32, u64) {
    let root = root_of(db, "Packages");
    let mut leaves = vec![root];
    while db[page_at(leaves[0], ps)] == 0x05 {
        leaves = leaves.iter().flat_map(|&p| children(db, ps, p)).collect();
    }
    let mut best = (0, 0, 0);
    for leaf in leaves {
        for at in cells(db, ps, leaf) {
            let (size, _) = record::varint(db, at).unwrap();
            if size > best.2 {
                best = (at, leaf, size);
            }
        }
    }
    best
}

/// The overflow pages of the cell at `at` (a 1 KiB-page database without reserved bytes).
fn overflow_chain(db: &[u8], at: usize) -> Vec<u32> {
    let (size, n1) = record::varint(db, at).unwrap();
    let (_, n2) = record::varint(db, at + n1).unwrap();
    let local = btree::local_size(size, 1024) as usize;
    let mut next = rd32(db, at + n1 + n2 + local);
    let mut chain = Vec::new();
    while next != 0 {
        chain.push(next);
        next = rd32(db, (next as usize - 1) * 1024);
    }
    chain
}

#[test]
fn overflow_chain_that_loops() {
    let (db, all) = fixture("overflow");
    let (cell, _, size) = largest_row(&db, 1024);
    // The record header: its size, NULL for hnum, a 3-byte serial type.
    assert_eq!(size, 100 * 1024 + 5, "the 100 KiB row");
    let chain = overflow_chain(&db, cell);
    // Local: K = 103 + (102405 - 103) % 1020 = 405; then 102000 bytes, 100 pages.
    assert_eq!(chain.len(), 100);
    let mut looped = db.clone();
    let at = (chain[10] as usize - 1) * 1024;
    looped[at..at + 4].copy_from_slice(&chain[3].to_be_bytes());
    assert_prefix_then("loop", read_packages(&looped, None), &all, "second time");
    // To itself.
    let mut itself = db.clone();
    itself[at..at + 4].copy_from_slice(&chain[10].to_be_bytes());
    assert_prefix_then(
        "to itself",
        read_packages(&itself, None),
        &all,
        "second time",
    );
    // Out of range.
    let mut out = db.clone();
    out[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_prefix_then(
        "out of range",
        read_packages(&out, None),
        &all,
        "out of range",
    );
    // Ending early.
    let mut early = db.clone();
    early[at..at + 4].fill(0);
    assert_prefix_then("early end", read_packages(&early, None), &all, "ends");
    // Into a b-tree page: the table's own leaf.
    let (_, leaf, _) = largest_row(&db, 1024);
    let mut cross = db.clone();
    cross[at..at + 4].copy_from_slice(&leaf.to_be_bytes());
    assert_prefix_then(
        "into the leaf",
        read_packages(&cross, None),
        &all,
        "second time",
    );
}

#[test]
fn payload_larger_than_the_file() {
    let (mut db, all) = fixture("overflow");
    let (cell, _, _) = largest_row(&db, 1024);
    // A 4-byte varint of 200 MiB in place of the 3-byte size: rewrite the cell's first
    // bytes keeping the length (0x8f 0x80 0x80 0x00 would be 4 bytes; the size varint here
    // is 3 bytes), so use the largest 3-byte varint: 2^21 - 1, more than 1024-byte pages
    // of this file can hold.
    assert!(db[cell] & 0x80 != 0 && db[cell + 1] & 0x80 != 0 && db[cell + 2] & 0x80 == 0);
    db[cell..cell + 3].copy_from_slice(&[0xff, 0xff, 0x7f]);
    assert_prefix_then(
        "huge payload",
        read_packages(&db, None),
        &all,
        "overflow pages",
    );
}

#[test]
fn cell_pointer_past_the_page() {
    let (db, all) = fixture("small");
    let root = root_of(&db, "Packages");
    assert_eq!(db[page_at(root, 4096)], 0x0d);
    for bad in [0xfff0u16, 4094, 0, 5] {
        let mut forged = db.clone();
        let p = pointers(&forged, 4096, root)[3];
        forged[p..p + 2].copy_from_slice(&bad.to_be_bytes());
        let got = read_packages(&forged, None);
        assert_eq!(got.0.len(), 3, "{bad}: the three rows before");
        assert_prefix_then(&format!("{bad}"), got, &all, "outside the cell area");
    }
    // More cells than the page has room for pointers.
    let mut forged = db.clone();
    let h = page_at(root, 4096);
    forged[h + 3..h + 5].copy_from_slice(&3000u16.to_be_bytes());
    let (blobs, result) = read_packages(&forged, None);
    assert!(blobs.is_empty());
    assert!(matches!(result, Err(SqliteError::Corrupt(m)) if m.contains("do not fit")));
}

#[test]
fn record_header_longer_than_its_payload() {
    let (db, all) = fixture("small");
    let root = root_of(&db, "Packages");
    let mut forged = db.clone();
    let cell = cells(&forged, 4096, root)[2];
    let (size, n1) = record::varint(&forged, cell).unwrap();
    let (_, n2) = record::varint(&forged, cell + n1).unwrap();
    assert!(size < 0x7f);
    forged[cell + n1 + n2] = 0x7f;
    let got = read_packages(&forged, None);
    assert_eq!(got.0.len(), 2);
    assert_prefix_then("header", got, &all, "longer than its");
    // A body longer than the payload: the blob's serial type grown.
    let mut forged = db.clone();
    let rec = cell + n1 + n2;
    assert_eq!(forged[rec], 3, "header: its size, NULL, the blob's type");
    forged[rec + 2] = 0x7e;
    assert_prefix_then("body", read_packages(&forged, None), &all, "body");
    // A reserved serial type.
    let mut forged = db.clone();
    forged[rec + 2] = 10;
    assert_prefix_then(
        "type 10",
        read_packages(&forged, None),
        &all,
        "reserved serial type",
    );
}

#[test]
fn rowids_out_of_order() {
    let (mut db, all) = fixture("small");
    let root = root_of(&db, "Packages");
    let c = cells(&db, 4096, root);
    // Swap the third and fourth cell pointers.
    let p = pointers(&db, 4096, root);
    let (a, b) = (rd16(&db, p[2]), rd16(&db, p[3]));
    db[p[2]..p[2] + 2].copy_from_slice(&(b as u16).to_be_bytes());
    db[p[3]..p[3] + 2].copy_from_slice(&(a as u16).to_be_bytes());
    assert!(c.len() > 4);
    let (blobs, result) = read_packages(&db, None);
    assert!(matches!(result, Err(SqliteError::Corrupt(m)) if m.contains("comes after")));
    assert_eq!(blobs, [all[0].clone(), all[1].clone(), all[3].clone()]);
}

#[test]
fn bad_headers() {
    let (db, _) = fixture("small");
    for (what, at, bytes, says) in [
        ("page size 1000", 16, vec![0x03, 0xe8], "power of two"),
        ("page size 0", 16, vec![0, 0], "power of two"),
        ("page size 256", 16, vec![1, 0], "power of two"),
        ("page size 65535", 16, vec![0xff, 0xff], "power of two"),
        ("read version 3", 19, vec![3], "read version"),
        ("fractions", 21, vec![65], "fractions"),
        ("encoding 4", 56, vec![0, 0, 0, 4], "encoding"),
        ("magic", 0, vec![b's'], "not an SQLite"),
    ] {
        let mut forged = db.clone();
        forged[at..at + bytes.len()].copy_from_slice(&bytes);
        let (blobs, result) = read_packages(&forged, None);
        assert!(blobs.is_empty(), "{what}");
        let err = result.unwrap_err();
        assert!(format!("{err}").contains(says), "{what}: {err}");
    }
    // Reserved bytes leaving less than 480 usable in a 512-byte page.
    let (deep, _) = fixture("deep");
    let mut forged = deep.clone();
    forged[20] = 40;
    let err = read_packages(&forged, None).1.unwrap_err();
    assert!(format!("{err}").contains("480 usable"), "{err}");
    for short in [0, 50, 99] {
        assert_eq!(
            read_packages(&db[..short], None).1,
            Err(SqliteError::NotSqlite)
        );
    }
    // A header and no whole page.
    assert!(matches!(
        read_packages(&db[..200], None).1,
        Err(SqliteError::Corrupt(_))
    ));
    // A page size of 65536 (1) in a file of 4 KiB pages: page 1 is past the end.
    let mut forged = db.clone();
    forged[16..18].copy_from_slice(&[0, 1]);
    assert!(read_packages(&forged, None).1.is_err());
}

#[test]
fn missing_table_and_column() {
    let (db, _) = fixture("small");
    let mut forged = db.clone();
    // Rename the table in the schema's page (name, tbl_name and sql).
    let page1 = &mut forged[..4096];
    let mut renamed = 0;
    for i in 0..page1.len() - 8 {
        if &page1[i..i + 8] == b"Packages" {
            page1[i + 7] = b'X';
            renamed += 1;
        }
    }
    assert!(renamed >= 2);
    let err = read_packages(&forged, None).1.unwrap_err();
    assert_eq!(err, SqliteError::NoTable("Packages".into()));
    assert_eq!(
        err.to_string(),
        "no table \"Packages\" in the SQLite database"
    );
    let mut forged = db.clone();
    let page1 = &mut forged[..4096];
    for i in 0..page1.len() - 6 {
        if &page1[i..i + 6] == b", blob" {
            page1[i + 5] = b'x';
        }
    }
    assert!(matches!(
        read_packages(&forged, None).1,
        Err(SqliteError::NoColumn { .. })
    ));
}

#[test]
fn create_table_parse() {
    let cols = |sql: &str| schema::parse_create_table(sql);
    let rpm =
        cols("CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)")
            .unwrap();
    assert_eq!(rpm.len(), 2);
    assert_eq!((rpm[0].name.as_str(), rpm[0].rowid_alias), ("hnum", true));
    assert_eq!((rpm[1].name.as_str(), rpm[1].rowid_alias), ("blob", false));
    let desc = cols("CREATE TABLE t (a INTEGER PRIMARY KEY DESC, b)").unwrap();
    assert!(
        !desc[0].rowid_alias,
        "INTEGER PRIMARY KEY DESC is not the rowid"
    );
    let int = cols("CREATE TABLE t (a INT PRIMARY KEY, b)").unwrap();
    assert!(!int[0].rowid_alias, "only INTEGER is");
    let table_pk = cols("CREATE TABLE t (a, b integer, PRIMARY KEY (b DESC))").unwrap();
    assert!(table_pk[1].rowid_alias);
    let two = cols("CREATE TABLE t (a INTEGER, b, PRIMARY KEY (a, b))").unwrap();
    assert!(!two[0].rowid_alias);
    let quoted = cols("CREATE TABLE \"a(b\" (\"c,d\" TEXT, [e)f], `g``h`, 'i''j')").unwrap();
    let names: Vec<_> = quoted.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["c,d", "e)f", "g`h", "i'j"]);
    assert!(matches!(
        cols("CREATE TABLE t (a PRIMARY KEY, b) WITHOUT ROWID"),
        Err(SqliteError::Unsupported(_))
    ));
    assert!(matches!(
        cols("CREATE VIRTUAL TABLE t USING fts5(a, b)"),
        Err(SqliteError::Unsupported(_))
    ));
    for bad in [
        "CREATE TABLE t",
        "CREATE TABLE t (a, b",
        "CREATE TABLE t ()",
        "CREATE TABLE t ('a",
    ] {
        assert!(matches!(cols(bad), Err(SqliteError::Corrupt(_))), "{bad}");
    }
}

#[test]
fn varints() {
    let v = |b: &[u8]| record::varint(b, 0);
    assert_eq!(v(&[0x00]), Some((0, 1)));
    assert_eq!(v(&[0x7f]), Some((127, 1)));
    assert_eq!(v(&[0x81, 0x00]), Some((128, 2)));
    assert_eq!(v(&[0xff; 9]), Some((u64::MAX, 9)));
    assert_eq!(
        v(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
        Some((1 << 57, 9))
    );
    assert_eq!(v(&[0x81]), None);
    assert_eq!(v(&[]), None);
    assert_eq!(record::varint(&[0x05], usize::MAX), None);
}

#[test]
fn local_sizes() {
    // Page 1024: X = 989, M = ((1012 * 32) / 255) - 23 = 103.
    assert_eq!(btree::local_size(989, 1024), 989);
    // 990: K = 103 + 887 = 990 > X, so M.
    assert_eq!(btree::local_size(990, 1024), 103);
    assert_eq!(btree::local_size(103 + 1020 + 500, 1024), 603);
    assert_eq!(btree::local_size(103 + 1020 + 990, 1024), 103);
}

/// A tiny xorshift, for the mutation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_mutations_never_panic() {
    let dir = committed_dir();
    let cases = [
        ("small", None),
        ("overflow", None),
        ("reserved", None),
        ("utf16", None),
        ("wal", Some("wal")),
    ];
    // SQLITE_MUTATION_ROUNDS asks for a longer run.
    let rounds: usize = std::env::var("SQLITE_MUTATION_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (name, wal) in cases {
        let db = load(&dir, &format!("{name}.sqlite"));
        let wal = wal.map(|w| load(&dir, &format!("{w}.sqlite-wal")));
        for round in 0..rounds {
            let mut d = db.clone();
            let mut w = wal.clone();
            for _ in 0..1 + rng.next() % 8 {
                let target = match &mut w {
                    Some(w) if rng.next().is_multiple_of(2) => w,
                    _ => &mut d,
                };
                // Mostly the structures: headers and the first page's bytes.
                let len = target.len();
                let at = match rng.next() % 3 {
                    0 => (rng.next() % 128) as usize,
                    _ => (rng.next() as usize) % len,
                };
                target[at.min(len - 1)] = rng.next() as u8;
            }
            let mut rows = 0;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = packages(
                    &Bytes(&d),
                    w.as_ref()
                        .map(|w| Bytes(w))
                        .as_ref()
                        .map(|w| w as &dyn Store),
                    &mut |_| rows += 1,
                );
            }));
            assert!(result.is_ok(), "{name} round {round} panicked");
        }
    }
}

#[test]
fn error_messages() {
    assert_eq!(
        SqliteError::Corrupt("x".to_string()).to_string(),
        "corrupt SQLite database: x"
    );
    let e: SqliteError = StoreError::Io("gone".into()).into();
    assert_eq!(
        e.to_string(),
        "reading the SQLite database: I/O error: gone"
    );
}

//! cargo-fuzz target: the SQLite reader (`vmchannel_inspect::pkgdb::sqlite`, rpm's
//! `rpmdb.sqlite` and its `-wal` since rpm 4.16): header, schema, table b-trees, overflow
//! chains, records and WAL recovery.
//!
//! Input: a flags byte, a 4-byte little-endian length N, then N bytes of database file and
//! the rest as its WAL. Flag bit 0: there is a WAL (else the rest is ignored); bit 1: the
//! harness first rewrites the WAL's header and frame checksums (as chained, for its header's
//! byte order) so that mutated frames are applied instead of stopping recovery. Checks that
//! the reader returns, and never hands out more blob bytes than the files hold (a walk reads
//! each page at most once).
//!
//! Run on stable, from `kernel/fuzz` (seeds from the committed fixtures:
//! `seeds/make-sqlite-seeds.py`):
//! `cargo fuzz run sqlite --sanitizer none -a corpus/sqlite seeds/sqlite -- -max_len=300000 -timeout=10 -rss_limit_mb=2048`
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::pkgdb::{Bytes, Store, sqlite};

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn checksum(big_endian: bool, data: &[u8], s: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = s;
    for pair in data.chunks_exact(8) {
        let word = |b: &[u8]| {
            let b: [u8; 4] = b[..4].try_into().unwrap();
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

/// Makes the WAL header's checksum and every whole frame's chained checksum match, the
/// frames' salts the header's.
fn fix_wal(wal: &mut [u8]) {
    if wal.len() < 32 {
        return;
    }
    let big_endian = wal[3] & 1 == 1;
    let page = be32(wal, 8) as usize;
    if !(512..=65536).contains(&page) {
        return;
    }
    let mut s = checksum(big_endian, &wal[..24], (0, 0));
    wal[24..28].copy_from_slice(&s.0.to_be_bytes());
    wal[28..32].copy_from_slice(&s.1.to_be_bytes());
    let salts: [u8; 8] = wal[16..24].try_into().unwrap();
    let mut at = 32;
    while at + 24 + page <= wal.len() {
        wal[at + 8..at + 16].copy_from_slice(&salts);
        s = checksum(big_endian, &wal[at..at + 8], s);
        s = checksum(big_endian, &wal[at + 24..at + 24 + page], s);
        wal[at + 16..at + 20].copy_from_slice(&s.0.to_be_bytes());
        wal[at + 20..at + 24].copy_from_slice(&s.1.to_be_bytes());
        at += 24 + page;
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let flags = data[0];
    let n = (u32::from_le_bytes(data[1..5].try_into().unwrap()) as usize).min(data.len() - 5);
    let db = &data[5..5 + n];
    let mut wal = data[5 + n..].to_vec();
    if flags & 2 != 0 {
        fix_wal(&mut wal);
    }
    let (db_store, wal_store) = (Bytes(db), Bytes(&wal));
    let wal: Option<&dyn Store> = (flags & 1 != 0).then_some(&wal_store as &dyn Store);
    let mut handed = 0usize;
    let _ = sqlite::packages(&db_store, wal, &mut |b| handed += b.len());
    assert!(
        handed <= db.len() + wal_store.0.len(),
        "{handed} blob bytes from {} + {} bytes",
        db.len(),
        wal_store.0.len()
    );
    // The generic layer on every table of the schema.
    if let Ok(database) = sqlite::Database::open(&db_store, wal) {
        if let Ok(Some(schema)) = database.table("sqlite_schema") {
            let mut names = Vec::new();
            let _ = database.for_each_row(schema.root, &mut |_, r| {
                if let (Ok(sqlite::Value::Text(t)), true) = (r.column(1), names.len() < 8) {
                    names.push(database.decode_text(t));
                }
                Ok(())
            });
            for name in names {
                if let Ok(Some(t)) = database.table(&name) {
                    let _ = database.for_each_row(t.root, &mut |rowid, r| {
                        for i in 0..t.columns.len() {
                            let _ = t.value(r, rowid, i);
                        }
                        Ok(())
                    });
                }
            }
        }
    }
});

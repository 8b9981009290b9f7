//! cargo-fuzz target: rpm's ndb package store (`vmchannel_inspect::pkgdb::ndb`): the file
//! header, the slot table and every blob's head, trailer and adler32.
//!
//! Input: one flags byte, then a `Packages.db`. Flag bit 0: the harness first rewrites the
//! adler32 of every blob that page 0's slots point at inside the file (so that mutations
//! reach the trailer and length checks instead of stopping at the checksum).
//!
//! Run on stable, from `kernel/fuzz`, seeded with the test fixture (flags 0x01 in front):
//! `mkdir -p seeds/ndb && (printf '\001'; cat ../../inspect/src/pkgdb/testdata/ndb/Packages.db) > seeds/ndb/fixture`
//! `cargo fuzz run ndb --sanitizer none corpus/ndb seeds/ndb -- -max_len=100000`
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::pkgdb::{Bytes, ndb};

fn le32(b: &[u8], at: usize) -> usize {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()) as usize)
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// Rewrites the adler32 in the trailer of each blob page 0's slots point at.
fn fix_checksums(db: &mut [u8]) {
    for slot in (32..4096).step_by(16) {
        let (off, cnt) = (le32(db, slot + 8), le32(db, slot + 12));
        let (Some(at), Some(len)) = (off.checked_mul(16), cnt.checked_mul(16)) else {
            continue;
        };
        if off == 0 || len < 28 || at.checked_add(len).is_none_or(|end| end > db.len()) {
            continue;
        }
        let end = at + len - 12;
        let sum = adler32(&db[at..end]);
        db[end..end + 4].copy_from_slice(&sum.to_le_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut db = rest.to_vec();
    if flags & 1 != 0 {
        fix_checksums(&mut db);
    }
    // Blobs never overlap, so together they are never larger than the file.
    let mut handed = 0usize;
    let _ = ndb::packages(&Bytes(&db), &mut |blob| handed += blob.len());
    assert!(
        handed <= db.len(),
        "{handed} bytes handed out of a {}-byte file",
        db.len()
    );
});

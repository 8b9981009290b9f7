//! cargo-fuzz target: Berkeley DB hash databases (`vmchannel_inspect::pkgdb::bdb`, rpm's
//! `Packages` before rpm 4.16): every key/value pair, then the package header blobs.
//!
//! Input: the database file. Checks that the reader returns, and that it never hands out
//! more bytes than the file holds (every page is read at most once).
//!
//! Run on stable, from `kernel/fuzz` (the fixtures make good seeds):
//! `mkdir -p corpus/bdb seeds/bdb && cp ../../inspect/src/pkgdb/testdata/bdb/*.db seeds/bdb`
//! `cargo fuzz run bdb --sanitizer none -a corpus/bdb seeds/bdb -- -max_len=200000`
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::pkgdb::{Bytes, bdb};

fuzz_target!(|data: &[u8]| {
    let db = Bytes(data);
    let mut handed = 0usize;
    let pairs = bdb::for_each_pair(&db, &mut |k, v| handed += k.len() + v.len());
    assert!(
        handed <= data.len(),
        "{handed} bytes from a file of {}",
        data.len()
    );
    let mut blobs = 0usize;
    let packages = bdb::packages(&db, &mut |b| blobs += b.len());
    assert!(blobs <= handed);
    // packages() is for_each_pair() filtered: the same outcome.
    assert_eq!(pairs, packages);
});

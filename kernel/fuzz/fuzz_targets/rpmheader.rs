//! cargo-fuzz target: the rpm header blob parser (`vmchannel_inspect::pkgdb::rpmheader`):
//! parse one arbitrary blob, read every tag inspection uses (and the I18N table) as bytes,
//! strings and INT32, then the whole `package`. Errors are fine; panics, hangs and
//! unbounded allocations are not, and every string handed out must lie inside the blob.
//!
//! Start from the fixtures in `inspect/src/pkgdb/testdata/rpmheader/` (the `*.bin` blobs
//! and `noarch-file.hdr`). Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run rpmheader --sanitizer none corpus/rpmheader ../../inspect/src/pkgdb/testdata/rpmheader -- -max_len=65536`
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::pkgdb::rpmheader::{self, Header, tag};

const TAGS: [u32; 9] = [
    tag::HEADER_I18NTABLE,
    tag::NAME,
    tag::VERSION,
    tag::RELEASE,
    tag::EPOCH,
    tag::SUMMARY,
    tag::DESCRIPTION,
    tag::URL,
    tag::ARCH,
];

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::parse(data) {
        let mut out = 0;
        for t in TAGS {
            if let Ok(Some(b)) = h.bytes(t) {
                out += b.len();
            }
            if let Ok(Some(s)) = h.string(t) {
                assert!(s.len() <= 3 * data.len());
            }
            let _ = h.int32(t);
        }
        // Distinct tags' data do not overlap, so their strings fit in the blob together.
        assert!(out <= data.len());
    }
    if let Ok(p) = rpmheader::package(data) {
        let total = [
            &p.name,
            &p.version,
            &p.release,
            &p.arch,
            &p.url,
            &p.summary,
            &p.description,
        ]
        .iter()
        .map(|s| s.len())
        .sum::<usize>();
        assert!(total <= 3 * data.len() + 7 * "(none)".len());
    }
});

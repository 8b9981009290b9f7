//! cargo-fuzz target: superblock detection (`vmchannel_inspect::fs::detect`) on a small arbitrary
//! device; cheap, so it runs at a high rate. Inputs up to 68 KiB reach every probe (btrfs
//! reads 4 KiB at 64 KiB).
//!
//! Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run detect --sanitizer none corpus/detect seeds/detect -- -max_len=69632`
#![no_main]

use vmchannel_inspect::fs::detect::detect;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dev = data.to_vec();
    if let Ok(Some(d)) = detect(&dev) {
        assert!(!d.fstype.is_empty());
    }
});

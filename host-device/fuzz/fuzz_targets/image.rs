//! cargo-fuzz target: a hostile image file opened on the host, as `vmch` opens what a user
//! names: the format probe, the qcow2 header and backing-chain checks, and imago's reads.
//!
//! The input is written as the top image in a private directory that also holds a copy of it
//! (`self.qcow2`, so a header naming it makes a chain of two) and a small raw `base.raw`, so
//! backing names that resolve beside the image reach real files.
//!
//! Run on stable with: `cargo fuzz run image --sanitizer none` from `host-device/`.
#![no_main]

use std::path::PathBuf;

use host_device::block::image::{self, BackingPolicy};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("host-device-fuzz-image-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("fuzz directory");
        std::fs::write(d.join("base.raw"), vec![0xa5u8; 64 * 1024]).expect("base.raw");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let d = dir();
    let top = d.join("top.qcow2");
    std::fs::write(&top, data).expect("write the image");
    std::fs::write(d.join("self.qcow2"), data).expect("write its copy");
    for policy in [BackingPolicy::Beside, BackingPolicy::Any] {
        let Ok(opened) = image::open_with(&top, policy) else {
            continue;
        };
        let len = opened.backend.len();
        let mut buf = vec![0u8; 4096];
        for offset in [0, len / 2, len.saturating_sub(4096)] {
            let n = usize::try_from(len.saturating_sub(offset)).unwrap_or(4096).min(4096);
            let _ = opened.backend.read_at(&mut buf[..n], offset);
        }
    }
});

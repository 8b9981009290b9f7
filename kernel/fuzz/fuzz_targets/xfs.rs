//! cargo-fuzz target: the XFS reader (`vmchannel_inspect::fs::xfs`) on an arbitrary image.
//!
//! The input is the start of a device that reads as zeros past it, up to 64 MiB, so seeds
//! cut from real images (`seeds/xfs/`, the first 256 KiB of small mkfs.xfs images, v4 and
//! v5) still open. The `fuzzing` feature of vmchannel-inspect turns XFS's CRC checks off,
//! so mutations of v5 metadata reach the parsers. It opens the filesystem, asks for usage,
//! and walks the tree (bounded): readdir, stat and lstat, readlink, reads at the start and
//! near the end of every file. Errors are fine; panics, hangs and huge allocations are not.
//!
//! Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run xfs --sanitizer none corpus/xfs seeds/xfs -- -max_len=262144 -timeout=10 -rss_limit_mb=2048`
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::disk::{BlockDevice, DiskError, check_range};
use vmchannel_inspect::fs::FileSystem;
use vmchannel_inspect::fs::xfs::XfsFs;

/// The input, then zeros.
struct Padded(Vec<u8>);

const SIZE: u64 = 64 << 20;

impl BlockDevice for Padded {
    fn size(&self) -> u64 {
        SIZE
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), SIZE)?;
        buf.fill(0);
        let start = offset as usize;
        if start < self.0.len() {
            let n = (self.0.len() - start).min(buf.len());
            buf[..n].copy_from_slice(&self.0[start..start + n]);
        }
        Ok(())
    }
}

fn walk(fs: &XfsFs, dir: &str, depth: u32, budget: &mut u32) {
    let Ok(entries) = fs.read_dir_raw(dir) else {
        return;
    };
    for e in entries {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let name = String::from_utf8_lossy(&e.name);
        let path = if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") };
        let _ = fs.lstat(&path);
        let _ = fs.stat_full(&path, false);
        let _ = fs.read_link(&path);
        if let Ok(st) = fs.stat(&path) {
            let mut buf = [0u8; 8192];
            let _ = fs.read_at(&path, 0, &mut buf);
            let _ = fs.read_at(&path, st.size.saturating_sub(100), &mut buf);
            if st.kind == vmchannel_proto::FileKind::Directory && depth < 4 {
                walk(fs, &path, depth + 1, budget);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(fs) = XfsFs::open(Rc::new(Padded(data.to_vec()))) else {
        return;
    };
    let _ = fs.usage();
    let _ = fs.read_dir("/");
    let mut budget = 300;
    walk(&fs, "/", 0, &mut budget);
});

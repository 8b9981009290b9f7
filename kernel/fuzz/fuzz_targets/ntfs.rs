//! cargo-fuzz target: the NTFS reader (`vmchannel_inspect::fs::ntfs`) and superblock
//! detection on an arbitrary image.
//!
//! The input is the start of a device that reads as zeros past it, up to 16 MiB, so seeds
//! that are whole small images (`seeds/ntfs/`: 1 MiB mkntfs images with 512-byte clusters,
//! filled through ntfs-3g with a tree, a directory of a few hundred files, compressed,
//! sparse and fragmented files, hard links and links) open. It runs detection, opens the
//! filesystem, asks for usage, and walks the tree (bounded): readdir, stat and lstat,
//! readlink, reads at the start and near the end of every file. Errors are fine; panics,
//! hangs and huge allocations are not.
//!
//! Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run ntfs --sanitizer none corpus/ntfs seeds/ntfs -- -max_len=1048576 -timeout=10 -rss_limit_mb=2048`
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::disk::{BlockDevice, DiskError, check_range};
use vmchannel_inspect::fs::FileSystem;
use vmchannel_inspect::fs::detect::detect;
use vmchannel_inspect::fs::ntfs::NtfsFs;
use vmchannel_proto::FileKind;

/// The input, then zeros.
struct Padded(Vec<u8>);

const SIZE: u64 = 16 << 20;

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

fn walk(fs: &NtfsFs, dir: &str, depth: u32, budget: &mut u32) {
    let Ok(entries) = fs.read_dir(dir) else {
        return;
    };
    for e in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let path = if dir == "/" {
            format!("/{}", e.name)
        } else {
            format!("{dir}/{}", e.name)
        };
        let _ = fs.lstat(&path);
        let _ = fs.read_link(&path);
        if let Ok(st) = fs.stat(&path) {
            let mut buf = [0u8; 8192];
            let _ = fs.read_at(&path, 0, &mut buf);
            let _ = fs.read_at(&path, st.size.saturating_sub(5000), &mut buf);
        }
        if e.stat.kind == FileKind::Directory && depth < 8 {
            walk(fs, &path, depth + 1, budget);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let dev: Rc<dyn BlockDevice> = Rc::new(Padded(data.to_vec()));
    let _ = detect(&*dev);
    let Ok(fs) = NtfsFs::open(dev) else {
        return;
    };
    let _ = fs.usage();
    let _ = fs.stat("/WINDOWS/system32/CONFIG/software");
    let mut budget = 300;
    walk(&fs, "/", 0, &mut budget);
});

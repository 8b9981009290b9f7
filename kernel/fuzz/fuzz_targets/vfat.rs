//! cargo-fuzz target: the vfat reader (`vmchannel_inspect::fs::vfat`) on one arbitrary
//! volume: open it, walk its tree (bounded: depth, entries), stat and read every file in
//! pieces, look names up in other cases, and ask for its usage; `detect` on it too.
//! Errors are fine; panics, hangs and unbounded allocations are not.
//!
//! Start from the seed volumes in `seeds/vfat/` (small FAT12, FAT16 and FAT32 volumes from
//! mkfs.vfat and mtools, some truncated). Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run vfat --sanitizer none corpus/vfat seeds/vfat -- -max_len=300000 -timeout=10 -rss_limit_mb=2048`
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::disk::BlockDevice;
use vmchannel_inspect::fs::FileSystem;
use vmchannel_inspect::fs::detect::detect;
use vmchannel_inspect::fs::vfat::VfatFs;
use vmchannel_proto::FileKind;

const MAX_DISK: usize = 4 << 20;
const MAX_DEPTH: usize = 6;
const MAX_ENTRIES: usize = 400;
const MAX_READ: u64 = 256 << 10;

fn walk(fs: &VfatFs, path: &str, depth: usize, seen: &mut usize) {
    let Ok(entries) = fs.read_dir(path) else {
        return;
    };
    for e in entries {
        *seen += 1;
        if *seen > MAX_ENTRIES {
            return;
        }
        let child = if path == "/" {
            format!("/{}", e.name)
        } else {
            format!("{path}/{}", e.name)
        };
        // (Names may repeat: a lookup finds the first, so its stat may differ.)
        let _ = fs.stat(&child);
        let _ = fs.stat(&child.to_uppercase());
        match e.stat.kind {
            FileKind::Directory if depth < MAX_DEPTH => walk(fs, &child, depth + 1, seen),
            FileKind::File => {
                let _ = fs.read_file(&child, MAX_READ);
                let mut buf = [0u8; 1000];
                let _ = fs.read_at(&child, 777, &mut buf);
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let dev: Rc<dyn BlockDevice> = Rc::new(data[..data.len().min(MAX_DISK)].to_vec());
    let _ = detect(&*dev);
    let Ok(fs) = VfatFs::open(dev) else {
        return;
    };
    let _ = fs.stat("/");
    let mut seen = 0;
    walk(&fs, "/", 0, &mut seen);
    let _ = fs.usage();
    let _ = fs.stat("/EFI/BOOT/BOOTX64.EFI");
    let _ = fs.read_link("/x");
});

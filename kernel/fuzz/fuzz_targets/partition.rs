//! cargo-fuzz target: partition tables (MBR + EBR chain, GPT with backup) and superblock
//! detection on an arbitrary disk image.
//!
//! The input is the disk, zero-padded to at least 1 KiB and cut at 4 MiB. Every partition
//! `read_table` reports must lie inside the disk, carry a unique number, and be readable
//! through a `Slice` (first and last sector, same bytes as the disk). The table read
//! through a small `CachedDevice` must be the table read directly. `detect` runs on the
//! disk and on every partition. Errors are fine; panics are not.
//!
//! Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run partition --sanitizer none corpus/partition seeds/partition -- -max_len=262144`
#![no_main]

use std::collections::BTreeSet;
use std::rc::Rc;

use vmchannel_inspect::disk::cache::CachedDevice;
use vmchannel_inspect::disk::partition::read_table;
use vmchannel_inspect::disk::{BlockDevice, SECTOR, Slice};
use vmchannel_inspect::fs::detect::detect;
use libfuzzer_sys::fuzz_target;

const MIN_DISK: usize = 1024;
const MAX_DISK: usize = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let mut disk = data[..data.len().min(MAX_DISK)].to_vec();
    if disk.len() < MIN_DISK {
        disk.resize(MIN_DISK, 0);
    }
    let disk_size = disk.len() as u64;
    let raw: Rc<Vec<u8>> = Rc::new(disk);
    let dev: Rc<dyn BlockDevice> = raw.clone();

    let table = read_table(&*dev);
    // A tiny cache (two blocks) so that eviction is exercised; it must be transparent.
    let cached = CachedDevice::new(dev.clone(), 2);
    assert_eq!(read_table(&cached), table, "the cache changed the table");

    let _ = detect(&*dev);
    let Ok(Some(table)) = table else {
        return;
    };

    let mut numbers = BTreeSet::new();
    for p in &table.partitions {
        assert!(p.number >= 1, "partition number 0: {p:?}");
        assert!(numbers.insert(p.number), "duplicate number: {table:?}");
        let end = p.start.checked_add(p.size);
        assert!(
            end.is_some_and(|e| e <= disk_size),
            "partition past the end of a {disk_size}-byte disk: {p:?}"
        );
        let slice = Slice::new(dev.clone(), p.start, p.size);
        assert_eq!(slice.size(), p.size, "the slice was clipped: {p:?}");

        let n = (SECTOR.min(p.size)) as usize;
        let mut buf = vec![0u8; n];
        for off in [0, p.size - n as u64] {
            slice
                .read_at(off, &mut buf)
                .unwrap_or_else(|e| panic!("{p:?}: read at {off}: {e}"));
            let at = (p.start + off) as usize;
            assert_eq!(&buf[..], &raw[at..at + n], "{p:?}: wrong bytes at {off}");
        }
        // One past the end is refused, not wrapped or clipped.
        assert!(slice.read_at(p.size, &mut [0u8; 1]).is_err());

        let _ = detect(&slice);
    }
});

//! Choosing the heap from the physical memory map.
//!
//! The heap is the largest piece of RAM that the identity map reaches, above the first MiB
//! (BIOS areas and loader structures live there), and clear of everything the kernel must not
//! overwrite: its own image, the start info, boot modules.

use core::ops::Range;

use bootloader::{MemoryRegion, MemoryRegionKind};

/// Lowest address the heap may use.
pub const HEAP_FLOOR: u64 = 1 << 20;
/// Alignment of the heap's start and end.
pub const HEAP_ALIGN: u64 = 4096;

/// The largest usable range of RAM below `limit` that avoids every range in `reserved`.
pub fn heap_region(
    regions: impl Iterator<Item = MemoryRegion>,
    reserved: &[Range<u64>],
    limit: u64,
) -> Option<Range<u64>> {
    let mut best: Option<Range<u64>> = None;
    for region in regions.filter(|r| r.kind == MemoryRegionKind::Ram) {
        let start = region.start.max(HEAP_FLOOR);
        let end = region.end().min(limit);
        if start >= end {
            continue;
        }
        // Candidate starts: the region's start and the end of every reservation inside it.
        let starts = core::iter::once(start).chain(
            reserved
                .iter()
                .map(|r| r.end)
                .filter(|&e| e > start && e < end),
        );
        for s in starts {
            if reserved.iter().any(|r| r.start <= s && s < r.end) {
                continue;
            }
            // The piece runs to the next reservation that starts after s, or the region end.
            let e = reserved
                .iter()
                .map(|r| r.start)
                .filter(|&rs| rs > s && rs < end)
                .min()
                .unwrap_or(end);
            let s = s.next_multiple_of(HEAP_ALIGN);
            let e = e & !(HEAP_ALIGN - 1);
            if e > s && best.as_ref().is_none_or(|b| e - s > b.end - b.start) {
                best = Some(s..e);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram(start: u64, len: u64) -> MemoryRegion {
        MemoryRegion {
            start,
            len,
            kind: MemoryRegionKind::Ram,
        }
    }

    #[test]
    fn takes_the_largest_piece_around_the_kernel() {
        // QEMU pc with 128 MiB: low RAM, reserved BIOS, RAM from 1 MiB.
        let map = [
            ram(0, 0x9fc00),
            MemoryRegion {
                start: 0xf0000,
                len: 0x10000,
                kind: MemoryRegionKind::Reserved,
            },
            ram(0x10_0000, 0x7ee_0000),
        ];
        let kernel = 0x10_0000..0x15_2000;
        let heap = heap_region(map.iter().copied(), &[kernel], 1 << 32).unwrap();
        assert_eq!(heap, 0x15_2000..0x7fe_0000);
    }

    #[test]
    fn avoids_modules_and_prefers_the_bigger_side() {
        let map = [ram(0x10_0000, 0x1000_0000)];
        let reserved = [
            0x10_0000..0x20_0000,
            0x300_0000..0x400_0000,
            0x800_0123..0x800_0fff,
        ];
        let heap = heap_region(map.iter().copied(), &reserved, 1 << 32).unwrap();
        assert_eq!(heap, 0x800_1000..0x1010_0000);
    }

    #[test]
    fn respects_the_identity_map_limit_and_floor() {
        let map = [ram(0, 0x8_0000), ram(0xf000_0000, 0x2_0000_0000)];
        let heap = heap_region(map.iter().copied(), &[], 1 << 32).unwrap();
        assert_eq!(heap, 0xf000_0000..0x1_0000_0000);
        assert_eq!(
            heap_region([ram(0, 0x8_0000)].into_iter(), &[], 1 << 32),
            None
        );
    }

    #[test]
    fn overlapping_reservations_and_no_room() {
        let map = [ram(0x10_0000, 0x10_0000)];
        let reserved = [0x10_0000..0x18_0000, 0x17_0000..0x20_0000];
        assert_eq!(heap_region(map.iter().copied(), &reserved, 1 << 32), None);
        // Overflowing region lengths saturate instead of wrapping.
        let huge = [ram(0x10_0000, u64::MAX)];
        assert_eq!(
            heap_region(huge.iter().copied(), &[], 1 << 32),
            Some(0x10_0000..1 << 32)
        );
    }
}

//! The global allocator over the region `memory::heap_region` chose from the memory map.

use core::ops::Range;

use linked_list_allocator::LockedHeap;

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Hands `region` to the allocator. Call once, before the first allocation.
pub fn init(region: Range<u64>) {
    let len = (region.end - region.start) as usize;
    // SAFETY: `region` is free RAM from the memory map, inside the identity map and clear of
    // the kernel image and boot data; it is given to the allocator exactly once.
    unsafe { ALLOCATOR.lock().init(region.start as *mut u8, len) };
}

/// Heap size and bytes in use.
pub fn usage() -> (usize, usize) {
    let heap = ALLOCATOR.lock();
    (heap.size(), heap.used())
}

/// The heap's address range.
pub fn range() -> Range<u64> {
    let heap = ALLOCATOR.lock();
    let start = heap.bottom() as u64;
    start..start + heap.size() as u64
}

//! Early page tables: the identity map of the low 4 GiB, built from 2 MiB pages.
//!
//! The page directories are computed at compile time ([`identity_directory`]), and the PML4 and
//! PDPT that link them are resolved by the linker, so the 32-bit trampoline only loads CR3. [`translate`] walks a live
//! hierarchy through a physical-memory reader, which lets the kernel check its own mapping and
//! lets host tests check the tables without hardware.

/// Entries in one page table at every level.
pub const ENTRIES: usize = 512;
/// The entry maps something.
pub const PRESENT: u64 = 1 << 0;
/// Writes are allowed.
pub const WRITABLE: u64 = 1 << 1;
/// Ring 3 may use the mapping (the kernel runs its work at CPL3 in the same address space).
pub const USER: u64 = 1 << 2;
/// In a PDPT or page directory entry: the entry maps a 1 GiB or 2 MiB page.
pub const HUGE_PAGE: u64 = 1 << 7;
/// Bits 12..52 of an entry hold a physical address.
pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Size of a page mapped by a page-directory entry.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// How many GiB the early identity map covers (one page directory each).
pub const IDENTITY_GIB: usize = 4;

/// One 4 KiB page table (any level).
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C, align(4096))]
pub struct PageTable(pub [u64; ENTRIES]);

/// The page directory that identity-maps the `gib`-th GiB of physical memory with 2 MiB pages.
pub const fn identity_directory(gib: u64) -> PageTable {
    let mut entries = [0u64; ENTRIES];
    let mut i = 0;
    while i < ENTRIES {
        let phys = (gib << 30) + (i as u64) * LARGE_PAGE_SIZE;
        entries[i] = phys | PRESENT | WRITABLE | USER | HUGE_PAGE;
        i += 1;
    }
    PageTable(entries)
}

/// The entry that links a table at physical address `table` into its parent.
pub const fn table_entry(table: u64) -> u64 {
    (table & ADDRESS_MASK) | PRESENT | WRITABLE | USER
}

/// Translates a virtual address through the 4-level hierarchy rooted at `cr3`.
///
/// `read` returns the 8-byte little-endian value at a physical address. Returns `None` when the
/// address is not canonical or any level is not present. Handles 1 GiB and 2 MiB pages.
pub fn translate(cr3: u64, vaddr: u64, read: impl Fn(u64) -> u64) -> Option<u64> {
    // Canonical: bits 63..47 all equal.
    let top = vaddr >> 47;
    if top != 0 && top != 0x1_ffff {
        return None;
    }
    let index = |level: u32| (vaddr >> (12 + 9 * level)) & 0x1ff;
    let mut table = cr3 & ADDRESS_MASK;
    for level in (0..4u32).rev() {
        let entry = read(table + index(level) * 8);
        if entry & PRESENT == 0 {
            return None;
        }
        let is_leaf = level == 0 || ((level == 1 || level == 2) && entry & HUGE_PAGE != 0);
        if is_leaf {
            let page_bits = 12 + 9 * level;
            let page_mask = (1u64 << page_bits) - 1;
            let base = entry & ADDRESS_MASK & !page_mask;
            return Some(base | (vaddr & page_mask));
        }
        table = entry & ADDRESS_MASK;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A sparse physical memory holding page tables at chosen addresses.
    struct Memory(HashMap<u64, u64>);

    impl Memory {
        fn with_identity_map() -> (Self, u64) {
            let mut mem = HashMap::new();
            let (pml4, pdpt) = (0x1000u64, 0x2000u64);
            mem.insert(pml4, table_entry(pdpt));
            for gib in 0..IDENTITY_GIB as u64 {
                let pd = 0x10_000 + gib * 0x1000;
                mem.insert(pdpt + gib * 8, table_entry(pd));
                for (i, e) in identity_directory(gib).0.iter().enumerate() {
                    mem.insert(pd + i as u64 * 8, *e);
                }
            }
            (Self(mem), pml4)
        }
        fn read(&self, addr: u64) -> u64 {
            self.0.get(&addr).copied().unwrap_or(0)
        }
    }

    #[test]
    fn directory_entries_are_present_writable_huge_and_contiguous() {
        let pd = identity_directory(3);
        for (i, e) in pd.0.iter().enumerate() {
            assert_eq!(e & ADDRESS_MASK, (3 << 30) + i as u64 * LARGE_PAGE_SIZE);
            assert_eq!(e & 0xfff, PRESENT | WRITABLE | USER | HUGE_PAGE);
        }
    }

    #[test]
    fn identity_map_covers_the_low_four_gib_exactly() {
        let (mem, cr3) = Memory::with_identity_map();
        for addr in [
            0u64,
            0x1000,
            0x10_0000,
            0x1234_5678,
            0xb000_0000,
            0xfee0_0000,
            0xffff_ffff,
        ] {
            assert_eq!(
                translate(cr3, addr, |a| mem.read(a)),
                Some(addr),
                "{addr:#x}"
            );
        }
        assert_eq!(translate(cr3, 1 << 32, |a| mem.read(a)), None);
        assert_eq!(translate(cr3, 0x7fff_ffff_f000, |a| mem.read(a)), None);
    }

    #[test]
    fn non_canonical_addresses_do_not_translate() {
        let (mem, cr3) = Memory::with_identity_map();
        assert_eq!(translate(cr3, 0x0000_8000_0000_0000, |a| mem.read(a)), None);
        assert_eq!(translate(cr3, 0xdead_0000_0000_0000, |a| mem.read(a)), None);
    }

    #[test]
    fn four_kib_and_one_gib_pages_translate() {
        let mut mem = HashMap::new();
        // PML4 0x1000 -> PDPT 0x2000; PDPT[1] is a 1 GiB page at 5 GiB; PDPT[0] -> PD 0x3000
        // -> PT 0x4000, whose entry 7 maps virtual 0x7000 to 0x9_9000.
        mem.insert(0x1000, table_entry(0x2000));
        mem.insert(0x2000 + 8, (5 << 30) | PRESENT | HUGE_PAGE);
        mem.insert(0x2000, table_entry(0x3000));
        mem.insert(0x3000, table_entry(0x4000));
        mem.insert(0x4000 + 7 * 8, 0x9_9000 | PRESENT);
        let read = |a| mem.get(&a).copied().unwrap_or(0);
        assert_eq!(
            translate(0x1000, 0x4000_0123, read),
            Some((5 << 30) + 0x123)
        );
        assert_eq!(translate(0x1000, 0x7abc, read), Some(0x9_9abc));
        assert_eq!(translate(0x1000, 0x8000, read), None);
    }
}

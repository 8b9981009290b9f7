//! Loading the kernel for the PVH boot protocol: guest RAM, the ELF through linux-loader, and
//! `hvm_start_info` with its memory map and command line.

use std::fs::File;
use std::path::{Path, PathBuf};

use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::elf::start_info::{hvm_memmap_table_entry, hvm_start_info};
use linux_loader::loader::{Elf, KernelLoader, PvhBootCapability};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::layout::*;

/// `hvm_start_info.magic`.
const XEN_HVM_START_MAGIC: u32 = 0x336e_c578;
/// E820 memory types.
const E820_RAM: u32 = 1;
const E820_RESERVED: u32 = 2;

/// Why the kernel could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// Guest RAM could not be mapped.
    #[error("allocating {0} MiB of guest RAM: {1}")]
    Memory(u64, String),
    /// The RAM size is outside the supported range.
    #[error("--mem {0} MiB is outside {min}..={max} MiB", min = MEM_MIB_RANGE.start(), max = MEM_MIB_RANGE.end())]
    MemorySize(u64),
    /// The kernel file could not be opened.
    #[error("opening kernel {path}: {source}")]
    Open {
        /// The kernel path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// linux-loader refused the ELF.
    #[error("loading kernel {path}: {reason}")]
    Load {
        /// The kernel path.
        path: PathBuf,
        /// linux-loader's error.
        reason: String,
    },
    /// The ELF has no PVH entry note.
    #[error("kernel {0} has no PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY)")]
    NoPvhEntry(PathBuf),
    /// The command line is too long or contains a NUL.
    #[error("the kernel command line is too long or contains NUL")]
    Cmdline,
    /// Writing boot structures into guest memory failed.
    #[error("writing boot structures: {0}")]
    Write(String),
}

/// Maps `mib` MiB of guest RAM at address 0.
pub fn guest_memory(mib: u64) -> Result<GuestMemoryMmap, BootError> {
    if !MEM_MIB_RANGE.contains(&mib) {
        return Err(BootError::MemorySize(mib));
    }
    let bytes = (mib << 20) as usize;
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), bytes)])
        .map_err(|e| BootError::Memory(mib, e.to_string()))
}

/// Loads `kernel` and returns its 32-bit PVH entry point.
pub fn load_kernel(mem: &GuestMemoryMmap, kernel: &Path) -> Result<u64, BootError> {
    let mut file = File::open(kernel).map_err(|source| BootError::Open {
        path: kernel.to_path_buf(),
        source,
    })?;
    let loaded =
        Elf::load(mem, None, &mut file, Some(GuestAddress(HIGH_RAM_START))).map_err(|e| {
            BootError::Load {
                path: kernel.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
    match loaded.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(entry) => Ok(entry.0),
        _ => Err(BootError::NoPvhEntry(kernel.to_path_buf())),
    }
}

/// The memory map the guest is given: low RAM, the reserved legacy hole (which holds the ACPI
/// tables), and RAM from 1 MiB to the end.
pub fn memory_map(mem_bytes: u64) -> Vec<hvm_memmap_table_entry> {
    let entry = |addr: u64, end: u64, type_: u32| hvm_memmap_table_entry {
        addr,
        size: end - addr,
        type_,
        reserved: 0,
    };
    vec![
        entry(0, EBDA_START, E820_RAM),
        entry(EBDA_START, HIGH_RAM_START, E820_RESERVED),
        entry(HIGH_RAM_START, mem_bytes, E820_RAM),
    ]
}

/// Writes the command line, the memory map and `hvm_start_info` (pointing at the ACPI RSDP).
pub fn write_start_info(
    mem: &GuestMemoryMmap,
    mem_bytes: u64,
    cmdline: &str,
    rsdp: u64,
) -> Result<(), BootError> {
    if cmdline.len() > CMDLINE_MAX || cmdline.contains('\0') {
        return Err(BootError::Cmdline);
    }
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    mem.write_slice(&bytes, GuestAddress(CMDLINE_ADDR))
        .map_err(|e| BootError::Write(e.to_string()))?;
    let map = memory_map(mem_bytes);
    let start_info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC,
        version: 1,
        cmdline_paddr: CMDLINE_ADDR,
        rsdp_paddr: rsdp,
        memmap_paddr: MEMMAP_ADDR,
        memmap_entries: map.len() as u32,
        ..Default::default()
    };
    let mut params = BootParams::new(&start_info, GuestAddress(START_INFO_ADDR));
    params.set_sections(&map, GuestAddress(MEMMAP_ADDR));
    PvhBootConfigurator::write_bootparams(&params, mem).map_err(|e| BootError::Write(e.to_string()))
}

/// The boot GDT: null, flat 32-bit code (0x08), flat data (0x10), TSS (0x18), as Firecracker.
pub const GDT: [u64; 4] = [
    0,
    gdt_entry(0xc09b, 0, 0xfffff),
    gdt_entry(0xc093, 0, 0xfffff),
    gdt_entry(0x008b, 0, 0xfffff),
];

/// Encodes a GDT descriptor from its flags (access byte and granularity nibble), base and limit.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((flags as u64 & 0xf0ff) << 40)
}

/// Writes [`GDT`] at [`GDT_ADDR`].
pub fn write_gdt(mem: &GuestMemoryMmap) -> Result<(), BootError> {
    for (i, entry) in GDT.iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(GDT_ADDR + 8 * i as u64))
            .map_err(|e| BootError::Write(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_entries_match_the_flat_segments() {
        assert_eq!(GDT[1], 0x00cf_9b00_0000_ffff);
        assert_eq!(GDT[2], 0x00cf_9300_0000_ffff);
        assert_eq!(GDT[3], 0x000f_8b00_0000_ffff);
    }

    #[test]
    fn memory_map_covers_ram_and_reserves_the_legacy_hole() {
        let map = memory_map(64 << 20);
        assert_eq!(map.len(), 3);
        assert_eq!((map[1].addr, map[1].type_), (EBDA_START, E820_RESERVED));
        assert!(map[1].addr <= ACPI_ADDR && ACPI_ADDR < map[1].addr + map[1].size);
        assert_eq!(map[2].addr + map[2].size, 64 << 20);
    }

    #[test]
    fn bad_sizes_and_command_lines_are_refused() {
        assert!(matches!(guest_memory(1), Err(BootError::MemorySize(1))));
        let mem = guest_memory(8).unwrap();
        assert!(matches!(
            write_start_info(&mem, 8 << 20, "a\0b", 0),
            Err(BootError::Cmdline)
        ));
        assert!(matches!(
            write_start_info(&mem, 8 << 20, &"x".repeat(CMDLINE_MAX + 1), 0),
            Err(BootError::Cmdline)
        ));
        write_start_info(&mem, 8 << 20, "selftest", ACPI_ADDR).unwrap();
        let magic: u32 = mem.read_obj(GuestAddress(START_INFO_ADDR)).unwrap();
        assert_eq!(magic, XEN_HVM_START_MAGIC);
    }

    #[test]
    fn a_file_that_is_not_an_elf_is_refused() {
        let mem = guest_memory(8).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"not an elf at all, just some bytes........").unwrap();
        assert!(matches!(
            load_kernel(&mem, &path),
            Err(BootError::Load { .. })
        ));
        assert!(matches!(
            load_kernel(&mem, &dir.path().join("missing")),
            Err(BootError::Open { .. })
        ));
    }
}

//! Reads what the loader hands over in `hvm_start_info`: command line, memory map, modules, RSDP.
//!
//! The raw layout and the pointer chasing come from the `pvh` crate; this module adds the
//! checks a kernel wants before trusting the data (magic, UTF-8 command line of bounded length,
//! a memory map that exists) and plain types the rest of the kernel can use without knowing PVH.

use core::ffi::CStr;

use pvh::start_info::MemmapType;
pub use pvh::start_info::reader::MemMap;
use pvh::start_info::reader::{IdentityMap, StartInfoReader};

/// Longest command line accepted, in bytes (Linux's x86 COMMAND_LINE_SIZE).
pub const MAX_CMDLINE: usize = 2048;

/// Why the start info could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BootInfoError {
    /// EBX held 0, or the address was not mapped.
    #[error("no hvm_start_info at physical address {0:#x}")]
    NoStartInfo(u32),
    /// The structure did not start with `XEN_HVM_START_MAGIC_VALUE`.
    #[error("hvm_start_info at {0:#x} has a bad magic value")]
    BadMagic(u32),
    /// The command line is not UTF-8.
    #[error("the command line is not valid UTF-8")]
    CmdlineNotUtf8,
    /// The command line is longer than [`MAX_CMDLINE`].
    #[error("the command line is longer than {MAX_CMDLINE} bytes")]
    CmdlineTooLong,
    /// Version 0 of the structure, or an empty map: the kernel cannot size its memory.
    #[error("the loader passed no memory map")]
    NoMemoryMap,
}

/// What a region of the physical memory map holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryRegionKind {
    /// Free RAM.
    Ram,
    /// Reserved by firmware or devices.
    Reserved,
    /// ACPI tables (reclaimable after they are read).
    AcpiReclaimable,
    /// ACPI non-volatile storage.
    AcpiNvs,
    /// Anything else (unusable, disabled, persistent memory, unknown types).
    Other(u32),
}

/// One entry of the physical memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First physical address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the region holds.
    pub kind: MemoryRegionKind,
}

impl MemoryRegion {
    /// One past the last address, saturating at the top of the address space.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// A boot module (an initrd, for instance) the loader placed in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module<'a> {
    /// Physical address of the module's first byte.
    pub paddr: u64,
    /// The module's bytes.
    pub data: &'a [u8],
    /// The module's own command line, if the loader gave one.
    pub cmdline: Option<&'a str>,
}

/// Checked access to `hvm_start_info`.
pub struct BootInfo<'a, M: MemMap> {
    reader: StartInfoReader<'a, M>,
    paddr: u32,
    cmdline: &'a str,
}

impl BootInfo<'static, IdentityMap> {
    /// Reads the start info in an identity-mapped address space (as the trampoline leaves it).
    ///
    /// # Safety
    /// `paddr` must be the value the loader passed in EBX, every physical address it refers to
    /// must be identity-mapped and readable, and the memory must stay untouched for `'static`.
    pub unsafe fn from_identity_mapped(paddr: u32) -> Result<Self, BootInfoError> {
        // SAFETY: forwarded from the caller; identity mapping is exactly what IdentityMap models.
        unsafe { Self::new(paddr, IdentityMap) }
    }
}

impl<'a, M: MemMap> BootInfo<'a, M> {
    /// Reads the start info at physical address `paddr` through `mem_map`.
    ///
    /// # Safety
    /// As for `pvh`'s `StartInfoReader::from_paddr`: the memory `mem_map` returns for `paddr`
    /// and for every address the structure names must be valid for reads for `'a`.
    pub unsafe fn new(paddr: u32, mem_map: M) -> Result<Self, BootInfoError> {
        if paddr == 0 {
            return Err(BootInfoError::NoStartInfo(paddr));
        }
        let layout = core::alloc::Layout::new::<u32>();
        let magic_ptr = mem_map.ptr(paddr as usize, layout);
        if magic_ptr.is_null() {
            return Err(BootInfoError::NoStartInfo(paddr));
        }
        // SAFETY: forwarded from the caller.
        let reader = unsafe { StartInfoReader::from_paddr(paddr, mem_map) }
            .ok_or(BootInfoError::BadMagic(paddr))?;
        let cmdline = match reader.cmdline() {
            None => "",
            Some(c) => checked_cmdline(c)?,
        };
        let info = Self {
            reader,
            paddr,
            cmdline,
        };
        if info.reader.memmap().is_empty() {
            return Err(BootInfoError::NoMemoryMap);
        }
        Ok(info)
    }

    /// Physical address of the structure itself.
    pub fn paddr(&self) -> u32 {
        self.paddr
    }

    /// Version of the structure (1 carries the memory map).
    pub fn version(&self) -> u32 {
        self.reader.raw().version
    }

    /// The kernel command line ("" when the loader passed none).
    pub fn cmdline(&self) -> &'a str {
        self.cmdline
    }

    /// Physical address of the ACPI RSDP, when the loader passed one.
    pub fn rsdp_paddr(&self) -> Option<u64> {
        match self.reader.raw().rsdp_paddr {
            0 => None,
            p => Some(p),
        }
    }

    /// The physical memory map, in the loader's order.
    pub fn memory_regions(&self) -> impl Iterator<Item = MemoryRegion> + 'a {
        self.reader.memmap().iter().map(|e| MemoryRegion {
            start: e.addr,
            len: e.size,
            kind: match e.ty() {
                MemmapType::Ram => MemoryRegionKind::Ram,
                MemmapType::Reserved => MemoryRegionKind::Reserved,
                MemmapType::Acpi => MemoryRegionKind::AcpiReclaimable,
                MemmapType::Nvs => MemoryRegionKind::AcpiNvs,
                _ => MemoryRegionKind::Other(e.ty),
            },
        })
    }

    /// The boot modules. A module whose command line is not UTF-8 is reported without one.
    pub fn modules(&self) -> impl Iterator<Item = Module<'a>> + '_ {
        self.reader.modlist().map(|m| Module {
            paddr: m.raw().paddr,
            data: m.as_slice(),
            cmdline: if m.raw().cmdline_paddr == 0 {
                None
            } else {
                m.cmdline().and_then(|c| checked_cmdline(c).ok())
            },
        })
    }
}

fn checked_cmdline(c: &CStr) -> Result<&str, BootInfoError> {
    let bytes = c.to_bytes();
    if bytes.len() > MAX_CMDLINE {
        return Err(BootInfoError::CmdlineTooLong);
    }
    core::str::from_utf8(bytes).map_err(|_| BootInfoError::CmdlineNotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::alloc::Layout;

    /// Guest "physical memory" for tests: a buffer whose index is the physical address.
    struct Phys(Vec<u8>);

    impl MemMap for &Phys {
        fn ptr(&self, paddr: usize, layout: Layout) -> *const u8 {
            match paddr.checked_add(layout.size()) {
                Some(end) if end <= self.0.len() => self.0[paddr..].as_ptr(),
                _ => core::ptr::null(),
            }
        }
    }

    /// Reads a start info from test memory.
    fn parse(paddr: u32, mem: &Phys) -> Result<BootInfo<'_, &Phys>, BootInfoError> {
        // SAFETY: `Phys::ptr` returns null for anything outside its buffer, and the buffer
        // outlives the reader; the images below hold NUL-terminated command lines.
        unsafe { BootInfo::new(paddr, mem) }
    }

    fn put(mem: &mut [u8], at: usize, bytes: &[u8]) {
        mem[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Lays out a start info the way Firecracker and Cloud Hypervisor do (0x6000, 0x7000, ...).
    fn image(cmdline: &[u8], memmap: &[(u64, u64, u32)], version: u32) -> Phys {
        let mut m = vec![0u8; 0x30000];
        // The buffer must be 8-aligned for the reader's alignment checks.
        assert_eq!(m.as_ptr() as usize % 8, 0);
        let si = 0x6000;
        put(&mut m, si, &0x336e_c578u32.to_le_bytes());
        put(&mut m, si + 4, &version.to_le_bytes());
        put(&mut m, si + 12, &1u32.to_le_bytes()); // one module
        put(&mut m, si + 16, &0x6040u64.to_le_bytes());
        put(&mut m, si + 24, &0x20000u64.to_le_bytes());
        put(&mut m, si + 32, &0xf_5a20u64.to_le_bytes());
        put(&mut m, si + 40, &0x7000u64.to_le_bytes());
        put(&mut m, si + 48, &(memmap.len() as u32).to_le_bytes());
        put(&mut m, 0x6040, &0x8000u64.to_le_bytes());
        put(&mut m, 0x6048, &3u64.to_le_bytes());
        put(&mut m, 0x8000, b"abc");
        for (i, (addr, size, ty)) in memmap.iter().enumerate() {
            let e = 0x7000 + i * 24;
            put(&mut m, e, &addr.to_le_bytes());
            put(&mut m, e + 8, &size.to_le_bytes());
            put(&mut m, e + 16, &ty.to_le_bytes());
        }
        put(&mut m, 0x20000, cmdline);
        Phys(m)
    }

    const MAP: &[(u64, u64, u32)] = &[
        (0, 0x9fc00, 1),
        (0xf0000, 0x10000, 2),
        (0x10_0000, 0x7f0_0000, 1),
    ];

    #[test]
    fn reads_cmdline_memory_map_modules_and_rsdp() {
        let mem = image(b"selftest loglevel=debug\0", MAP, 1);
        let info = parse(0x6000, &mem).unwrap();
        assert_eq!(info.version(), 1);
        assert_eq!(info.cmdline(), "selftest loglevel=debug");
        assert_eq!(info.rsdp_paddr(), Some(0xf_5a20));
        let regions: Vec<_> = info.memory_regions().collect();
        assert_eq!(regions.len(), 3);
        assert_eq!(regions[1].kind, MemoryRegionKind::Reserved);
        assert_eq!(
            regions[2],
            MemoryRegion {
                start: 0x10_0000,
                len: 0x7f0_0000,
                kind: MemoryRegionKind::Ram
            }
        );
        assert_eq!(regions[2].end(), 0x800_0000);
        let modules: Vec<_> = info.modules().collect();
        assert_eq!(modules.len(), 1);
        assert_eq!(modules[0].data, b"abc");
        assert_eq!(modules[0].cmdline, None);
    }

    #[test]
    fn rejects_bad_magic_and_null() {
        let mut mem = image(b"\0", MAP, 1);
        assert_eq!(parse(0, &mem).err(), Some(BootInfoError::NoStartInfo(0)));
        mem.0[0x6000] ^= 0xff;
        assert_eq!(
            parse(0x6000, &mem).err(),
            Some(BootInfoError::BadMagic(0x6000))
        );
        assert_eq!(
            parse(0x100_0000, &mem).err(),
            Some(BootInfoError::NoStartInfo(0x100_0000))
        );
    }

    #[test]
    fn rejects_missing_memory_map_and_bad_cmdline() {
        let v0 = image(b"x\0", MAP, 0);
        assert_eq!(parse(0x6000, &v0).err(), Some(BootInfoError::NoMemoryMap));
        let bad = image(b"\xff\xfe\0", MAP, 1);
        assert_eq!(
            parse(0x6000, &bad).err(),
            Some(BootInfoError::CmdlineNotUtf8)
        );
        let mut long = vec![b'a'; MAX_CMDLINE + 1];
        long.push(0);
        let long = image(&long, MAP, 1);
        assert_eq!(
            parse(0x6000, &long).err(),
            Some(BootInfoError::CmdlineTooLong)
        );
    }

    #[test]
    fn missing_cmdline_reads_as_empty() {
        let mut mem = image(b"\0", MAP, 1);
        put(&mut mem.0, 0x6000 + 24, &0u64.to_le_bytes());
        assert_eq!(parse(0x6000, &mem).unwrap().cmdline(), "");
    }
}

//! Where things live in guest-physical memory and port space. The low-memory addresses follow
//! Firecracker and Cloud Hypervisor, which boot PVH kernels the same way.

/// The boot GDT (null, 32-bit code, data, TSS).
pub const GDT_ADDR: u64 = 0x500;
/// `hvm_start_info`.
pub const START_INFO_ADDR: u64 = 0x6000;
/// The E820-style memory map that `hvm_start_info` points at.
pub const MEMMAP_ADDR: u64 = 0x7000;
/// The NUL-terminated kernel command line.
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// Longest command line accepted (bytes, without the NUL).
pub const CMDLINE_MAX: usize = 4096;
/// End of conventional low memory; `[EBDA_START, HIGH_RAM_START)` is reserved.
pub const EBDA_START: u64 = 0x9_fc00;
/// The ACPI tables (RSDP first), in the BIOS area where a kernel may also search for them.
pub const ACPI_ADDR: u64 = 0xe_0000;
/// Start of RAM above the legacy hole; the kernel is loaded here.
pub const HIGH_RAM_START: u64 = 0x10_0000;
/// Guest RAM must end below the 32-bit PCI hole.
pub const PCI_HOLE_START: u64 = 0xc000_0000;
/// BARs are assigned upwards from here.
pub const BAR_BASE: u64 = PCI_HOLE_START;
/// Top of the BAR window (ECAM, then the IOAPIC and local APIC, live above).
pub const BAR_END: u64 = ECAM_BASE;
/// PCI Express enhanced configuration (ECAM, "MMCONFIG") for bus 0: 32 devices x 8
/// functions x 4 KiB, announced by the ACPI MCFG table. A guest's configuration accesses
/// there are plain MMIO exits, where 0xCF8/0xCFC take two port exits (and, for the kernel in
/// ring 3 on kvm-pvm, a trip through its CPL0 core).
pub const ECAM_BASE: u64 = 0xfe00_0000;
/// Size of the ECAM window (bus 0 only).
pub const ECAM_SIZE: u64 = 1 << 20;
/// KVM's TSS (three pages) on Intel, just below the IOAPIC as in QEMU.
pub const KVM_TSS_ADDR: usize = 0xfffb_d000;

/// Smallest and largest guest RAM, in MiB.
pub const MEM_MIB_RANGE: std::ops::RangeInclusive<u64> = 8..=3072;

/// Port I/O devices.
pub mod ports {
    /// COM1 (8 registers).
    pub const COM1: u16 = 0x3f8;
    /// QEMU's isa-debug-exit (`iobase=0xf4,iosize=4`).
    pub const DEBUG_EXIT: u16 = 0xf4;
    /// Firecracker's boot-complete signal: the guest writes [`BOOT_STAMP_VALUE`] here.
    pub const BOOT_STAMP: u16 = 0x3f0;
    /// The value of a boot-complete write.
    pub const BOOT_STAMP_VALUE: u8 = 123;
    /// The ACPI sleep control register (hardware-reduced ACPI).
    pub const ACPI_SLEEP_CONTROL: u16 = 0x3c0;
    /// The ACPI sleep status register.
    pub const ACPI_SLEEP_STATUS: u16 = 0x3c1;
    /// The ACPI reset register.
    pub const ACPI_RESET: u16 = 0x3c2;
    /// The value the FADT tells the guest to write to [`ACPI_RESET`].
    pub const ACPI_RESET_VALUE: u8 = 0x4;
    /// PCI configuration address (CONFIG_ADDRESS).
    pub const PCI_CONFIG_ADDRESS: u16 = 0xcf8;
    /// PCI configuration data (CONFIG_DATA, four bytes).
    pub const PCI_CONFIG_DATA: u16 = 0xcfc;
}

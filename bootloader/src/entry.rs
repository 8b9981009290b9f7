//! The PVH entry: ELF note, 32-bit trampoline, boot stack, GDT and early page tables.
//!
//! The loader jumps to [`pvh_start32`] in 32-bit protected mode, paging off, flat segments,
//! EBX = physical address of `hvm_start_info`. The trampoline stamps the TSC, loads the page
//! tables (built and linked at compile and link time), enables PAE, long mode and paging,
//! loads a 64-bit GDT, switches to the boot stack and calls the kernel's
//! `vmchannel_kernel_entry`.
//! Everything here is linked below 4 GiB with `relocation-model=static` (see
//! `.cargo/config.toml`), so 32-bit absolute references are valid.

use core::arch::{global_asm, naked_asm};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::page_table::{ENTRIES, IDENTITY_GIB, PageTable, identity_directory};

pvh::xen_elfnote_phys32_entry!(pvh_start32);

/// Size of the boot stack the kernel runs on.
pub const STACK_SIZE: usize = 256 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

/// The boot stack. Lives in .bss; the loaders hand over zeroed memory, and untouched stack
/// pages are never faulted in (each first touch costs tens of microseconds under nested KVM).
static mut STACK: Stack = Stack([0; STACK_SIZE]);

// The PML4 and the PDPT, in .data with their links resolved by the linker: PML4[0] -> PDPT,
// PDPT[0..4] -> the four identity page directories (present, writable, user: the kernel runs
// its work at CPL3, see the kernel's arch/ring3.rs). Filling them at run time meant clearing
// 8 KiB at CPL0, instruction by instruction, which took about 1 ms under kvm-pvm, and trusting
// nothing of .bss.
global_asm!(
    ".pushsection .data.vmch_boot_tables,\"aw\"",
    ".balign 4096",
    ".globl vmch_boot_pml4",
    "vmch_boot_pml4:",
    ".quad vmch_boot_pdpt + 7",
    ".fill 511, 8, 0",
    ".globl vmch_boot_pdpt",
    "vmch_boot_pdpt:",
    ".quad {dirs} + 7",
    ".quad {dirs} + 0x1007",
    ".quad {dirs} + 0x2007",
    ".quad {dirs} + 0x3007",
    ".fill 508, 8, 0",
    ".popsection",
    dirs = sym DIRECTORIES,
);

unsafe extern "C" {
    /// The PML4 above.
    static vmch_boot_pml4: PageTable;
}

const _: () = assert!(
    IDENTITY_GIB == 4 && ENTRIES == 512,
    "the tables above link four"
);

/// The page directories mapping the low 4 GiB, computed at compile time.
static mut DIRECTORIES: [PageTable; IDENTITY_GIB] = [
    identity_directory(0),
    identity_directory(1),
    identity_directory(2),
    identity_directory(3),
];

/// Null, 64-bit code (selector 0x08), data (selector 0x10).
#[repr(C, align(8))]
struct Gdt([u64; 3]);
static GDT: Gdt = Gdt([0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff]);

#[repr(C, packed)]
struct GdtPointer {
    limit: u16,
    base: &'static Gdt,
}
static GDT_POINTER: GdtPointer = GdtPointer {
    limit: 23,
    base: &GDT,
};

/// The TSC the trampoline read first thing, before any other work.
static ENTRY_TSC: AtomicU64 = AtomicU64::new(0);

/// The TSC value at the PVH entry point, for boot-time accounting.
pub fn entry_tsc() -> u64 {
    ENTRY_TSC.load(Ordering::Relaxed)
}

/// Physical address of the PML4 the trampoline loaded into CR3.
pub fn boot_pml4() -> u64 {
    (&raw const vmch_boot_pml4) as u64
}

/// The 32-bit PVH entry point named by the ELF note.
///
/// # Safety
/// Only a PVH loader may jump here, in the machine state the ABI describes.
#[unsafe(no_mangle)]
#[unsafe(naked)]
unsafe extern "C" fn pvh_start32() -> ! {
    naked_asm!(
        ".code32",
        "cli",
        "cld",
        // EBX holds the start info; keep it in ESI across the setup.
        "mov esi, ebx",
        // The PVH ABI leaves ESP undefined (QEMU happens to leave a usable one; a VMM that
        // starts with ESP = 0 does not), and the far return below pushes: take the boot stack.
        "mov esp, offset {stack} + {size}",
        "rdtsc",
        "mov dword ptr [{tsc}], eax",
        "mov dword ptr [{tsc} + 4], edx",
        "mov eax, offset {pml4}",
        "mov cr3, eax",
        // CR4.PAE
        "mov eax, cr4",
        "or eax, 1 << 5",
        "mov cr4, eax",
        // EFER.LME
        "mov ecx, 0xC0000080",
        "rdmsr",
        "or eax, 1 << 8",
        "wrmsr",
        // CR0.PG | CR0.PE: now in compatibility mode. Also clear CD and NW: the PVH boot
        // protocol does not promise caching is on (after SeaBIOS it is not), and under nested
        // KVM a cache-disabled guest runs every memory access uncached.
        "mov eax, cr0",
        "and eax, 0x9fffffff",
        "or eax, 0x80000001",
        "mov cr0, eax",
        "lgdt [{gdtr}]",
        // Far return into the 64-bit code segment (LLVM's Intel syntax has no absolute ljmp).
        "push 0x08",
        "mov eax, offset {long_mode}",
        "push eax",
        "retf",
        ".code64",
        tsc = sym ENTRY_TSC,
        pml4 = sym vmch_boot_pml4,
        gdtr = sym GDT_POINTER,
        long_mode = sym long_mode_start,
        stack = sym STACK,
        size = const STACK_SIZE,
    )
}

/// First 64-bit code: data segments, the boot stack, then the kernel with EDI = start info.
///
/// # Safety
/// Reached only from [`pvh_start32`] with ESI holding the start info address.
#[unsafe(naked)]
unsafe extern "C" fn long_mode_start() -> ! {
    naked_asm!(
        "mov ax, 0x10",
        "mov ds, ax",
        "mov es, ax",
        "mov ss, ax",
        "xor eax, eax",
        "mov fs, ax",
        "mov gs, ax",
        "lea rsp, [rip + {stack} + {size}]",
        "xor ebp, ebp",
        "mov edi, esi",
        "call {kernel}",
        "2:",
        "cli",
        "hlt",
        "jmp 2b",
        stack = sym STACK,
        size = const STACK_SIZE,
        kernel = sym vmchannel_kernel_entry,
    )
}

unsafe extern "C" {
    /// Defined by the kernel through [`crate::entry_point!`].
    fn vmchannel_kernel_entry(start_info_paddr: u32) -> !;
}

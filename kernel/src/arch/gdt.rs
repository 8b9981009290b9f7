//! The kernel's GDT and TSS: ring-0 and ring-3 segments, and a TSS whose RSP0 is the core's
//! stack, where the CPU switches on an interrupt or exception taken in ring 3 (core calls
//! included: they are `ud2` traps, see ring3.rs).
//!
//! The bootloader's GDT has only ring-0 segments; this one replaces it early in boot, keeping
//! the same kernel selectors (0x08 code, 0x10 data) so the IDT's gates stay valid.

use core::arch::asm;

/// Kernel code, 64-bit (the bootloader's selector).
pub const KERNEL_CODE: u16 = 0x08;
/// Kernel data.
pub const KERNEL_DATA: u16 = 0x10;
/// User data, RPL 3.
pub const USER_DATA: u16 = 0x18 | 3;
/// User code, 64-bit, RPL 3.
pub const USER_CODE: u16 = 0x20 | 3;
/// The TSS (a 16-byte system descriptor).
const TSS_SELECTOR: u16 = 0x28;

/// Size of the core's stack: interrupt and exception entry from ring 3, core calls included.
pub const CORE_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct CoreStack([u8; CORE_STACK_SIZE]);

/// The core's stack. In .bss: pages never touched are never faulted in.
static mut CORE_STACK: CoreStack = CoreStack([0; CORE_STACK_SIZE]);

/// The 64-bit TSS (Intel SDM vol. 3, 8.7): only RSP0 is used; no I/O bitmap (the map base
/// points past the limit): ring 3's port I/O goes through the core (see ring3.rs).
#[repr(C, packed(4))]
struct Tss {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

static mut TSS: Tss = Tss {
    reserved0: 0,
    rsp: [0; 3],
    reserved1: 0,
    ist: [0; 7],
    reserved2: 0,
    reserved3: 0,
    iomap_base: core::mem::size_of::<Tss>() as u16,
};

/// Null, kernel code, kernel data, user data, user code, TSS (two slots).
#[repr(C, align(16))]
struct Gdt([u64; 7]);

static mut GDT: Gdt = Gdt([
    0,
    0x00af_9a00_0000_ffff, // 0x08: present, DPL 0, code, long mode
    0x00cf_9200_0000_ffff, // 0x10: present, DPL 0, data, writable
    0x00cf_f200_0000_ffff, // 0x18: present, DPL 3, data, writable
    0x00af_fa00_0000_ffff, // 0x20: present, DPL 3, code, long mode
    0,
    0,
]);

#[repr(C, packed)]
struct Pointer {
    limit: u16,
    base: u64,
}

/// The top of the core's stack (16-byte aligned).
pub fn core_stack_top() -> u64 {
    (&raw const CORE_STACK) as u64 + CORE_STACK_SIZE as u64
}

/// The two descriptor words of an available 64-bit TSS at `base`, `limit` bytes - 1.
const fn tss_descriptor(base: u64, limit: u64) -> [u64; 2] {
    let low = (limit & 0xffff)
        | ((base & 0x00ff_ffff) << 16)
        | (0x89 << 40) // present, DPL 0, type 9 (64-bit TSS, available)
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    [low, base >> 32]
}

/// Loads the GDT and the TSS. Call once, at CPL0, before anything enters ring 3.
pub fn init() {
    let tss = (&raw mut TSS) as u64;
    let [low, high] = tss_descriptor(tss, core::mem::size_of::<Tss>() as u64 - 1);
    let gdt = (&raw mut GDT).cast::<u64>();
    // SAFETY: boot is single-threaded and nothing has loaded this GDT or TSS yet, so these
    // writes race with nothing; the indices are inside the 7-entry table.
    unsafe {
        (&raw mut TSS.rsp[0]).write_unaligned(core_stack_top());
        gdt.add(5).write(low);
        gdt.add(6).write(high);
    }
    let pointer = Pointer {
        limit: (core::mem::size_of::<Gdt>() - 1) as u16,
        base: gdt as u64,
    };
    // SAFETY: the table is static and complete; the kernel selectors keep their values, so
    // CS (reloaded through a far return), the data segments and the IDT's gates stay valid;
    // the TSS descriptor is available (not busy) and points at a static TSS.
    unsafe {
        asm!(
            "lgdt [{pointer}]",
            "push {code}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov {tmp:e}, {data}",
            "mov ds, {tmp:e}",
            "mov es, {tmp:e}",
            "mov ss, {tmp:e}",
            "ltr {tss:x}",
            pointer = in(reg) &raw const pointer,
            code = const KERNEL_CODE as u64,
            data = const KERNEL_DATA as u32,
            tss = in(reg) TSS_SELECTOR,
            tmp = out(reg) _,
        );
    }
}

//! Ring 3: where the kernel does its work, over a small ring-0 core.
//!
//! Why: on hosts without hardware virtualization, KVM's paravirtual flavour (kvm-pvm, see
//! FIELD-NOTES) emulates every instruction a guest runs at CPL0, about a microsecond each, but
//! runs CPL3 code natively. So the kernel boots at CPL0, sets up what needs privilege (GDT,
//! TSS, IDT, the local APIC, the clock), then [`enter`]s ring 3 in place: the same code,
//! stack and address space (the boot page tables map everything with the user bit), now at
//! CPL3. Device MMIO is reached directly from ring 3 and exits straight to the VMM.
//!
//! What stays at CPL0 is the core: interrupt and exception entry (interrupts.rs) and the
//! calls below. A call is a `ud2` at one known address ([`core_trap`]), taken by the
//! invalid-opcode handler: `syscall` does not work here, since kvm-pvm enters LSTAR still at
//! hardware CPL3 (CS 0x33) where `sysret`, `hlt` and port I/O fault. Each entry costs tens of
//! microseconds under kvm-pvm (docs/BENCHMARKS.md, `ring3probe`), so the calls are only what
//! ring 3 cannot do: port I/O (IOPL 3 is not passed on by kvm-pvm), a whole COM1 message at
//! once, waiting for an interrupt (`hlt`), halting for good, reading CR3, breaking the IDT on
//! purpose (`crash=triple`).
//!
//! Masking interrupts is a software flag in ring 3 ([`mask`]), not `cli`: an external
//! interrupt that arrives while the flag is set is recorded by the core, left in service at
//! the local APIC (no EOI, so it cannot repeat), and its handler runs when ring 3 unmasks
//! ([`unmask`]) or waits ([`unmask_and_wait`]). This is what `cli; ...; sti; hlt` did, with
//! the same guarantee: an interrupt that arrives while masked is never lost and wakes the wait.
//!
//! `ring0` on the command line keeps the kernel at CPL0 (for comparisons); the functions here
//! then fall back to `cli`, `sti; hlt` and direct register access.
//!
//! This is not a protection boundary: ring 3 can write every page, the core's included. The
//! isolation vmchannel relies on is the VM's; ring 3 is for speed.

use core::arch::{asm, naked_asm};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::gdt;
use super::interrupts;

/// RFLAGS in ring 3: reserved bit 1, IF. (IOPL 3 would let ring 3 use `in`/`out` on
/// hardware, but kvm-pvm does not pass it on, so port I/O goes through the core.)
const USER_RFLAGS: u64 = 0x2 | (1 << 9);

/// The core's calls, passed in RAX (see [`call2`]).
#[repr(u64)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Does nothing (measures an entry).
    Nop = 0,
    /// Unmasks; runs the handlers of interrupts deferred while masked, or, when there are
    /// none, halts until the next interrupt and runs its handler.
    UnmaskAndWait = 1,
    /// Unmasks and runs the handlers of deferred interrupts, without waiting.
    Unmask = 2,
    /// Halts with interrupts off, forever.
    HaltForever = 3,
    /// Returns CR3.
    ReadCr3 = 4,
    /// Loads an empty IDT, so that the next exception shuts the machine down.
    LoadEmptyIdt = 5,
    /// One port access: argument 0 = port | width in bytes << 16 | write << 24, argument 1
    /// = the value written; returns the value read. (IOPL 3 does not reach the hardware
    /// under kvm-pvm, so ring 3's `in`/`out` fault; see [`super::io`].)
    PortIo = 6,
    /// Writes argument 1 bytes at address argument 0 to COM1.
    SerialWrite = 7,
    /// Reads PCI configuration space: argument 0 is the CONFIG_ADDRESS value (mechanism
    /// #1); returns the dword. Served by the entry stub itself (interrupts.rs).
    PciRead = 8,
    /// Writes argument 1 to PCI configuration space at CONFIG_ADDRESS argument 0 (as
    /// [`Call::PciRead`]).
    PciWrite = 9,
}

/// Ring 3's interrupt mask: set, external interrupts are deferred.
pub(super) static MASKED: AtomicBool = AtomicBool::new(false);
/// Vectors deferred while masked, one bit each for 0x40..=0x7f (the vectors this kernel uses).
pub(super) static DEFERRED: AtomicU64 = AtomicU64::new(0);
/// The lowest vector [`DEFERRED`] can hold.
pub(super) const DEFERRED_BASE: u8 = 0x40;

/// True when the code calling runs in ring 3 (the core, and the kernel under `ring0`, run at
/// CPL0).
pub fn active() -> bool {
    let cs: u16;
    // SAFETY: reads the code segment selector; no memory access.
    unsafe { asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
    cs & 3 == 3
}

/// Writes `bytes` to COM1 through the core.
pub fn serial_write(bytes: &[u8]) {
    call2(Call::SerialWrite, bytes.as_ptr() as u64, bytes.len() as u64);
}

/// Drops the running code to ring 3 in place: returns to the caller at CPL3, on the same
/// stack, with interrupts enabled in RFLAGS and masked by the software flag. Call once, at
/// CPL0, after [`gdt::init`] and the IDT, with every page the kernel will touch mapped
/// user-accessible (the bootloader's tables are).
pub fn enter() {
    // As at CPL0 after boot (IF clear), interrupts stay masked until the first unmask.
    MASKED.store(true, Ordering::SeqCst);
    // SAFETY: `drop_privilege` returns to its caller with an `iretq` that only changes CS,
    // SS and RFLAGS (user selectors from our GDT); the stack and every register the ABI says
    // survive a call are kept.
    unsafe { drop_privilege() };
}

/// Returns to the caller at CPL3 (see [`enter`]).
#[unsafe(naked)]
unsafe extern "C" fn drop_privilege() {
    naked_asm!(
        "pop rax",          // the return address
        "mov rcx, rsp",     // the caller's stack after the return
        "push {ss}",
        "push rcx",
        "push {rflags}",
        "push {cs}",
        "push rax",
        "iretq",
        ss = const gdt::USER_DATA as u64,
        cs = const gdt::USER_CODE as u64,
        rflags = const USER_RFLAGS,
    )
}

/// Runs `call` at CPL0, from the invalid-opcode handler (interrupts off unless the call
/// enables them).
pub(super) fn core_call(call: u64, arg0: u64, arg1: u64) -> u64 {
    match call {
        c if c == Call::Nop as u64 => 0,
        c if c == Call::UnmaskAndWait as u64 => {
            MASKED.store(false, Ordering::SeqCst);
            if run_deferred() == 0 {
                // `sti; hlt` is atomic: an interrupt pending now wakes the halt at once. Its
                // handler runs (unmasked) inside the halt; interrupts go off again after.
                x86_64::instructions::interrupts::enable_and_hlt();
                x86_64::instructions::interrupts::disable();
            }
            0
        }
        c if c == Call::Unmask as u64 => {
            MASKED.store(false, Ordering::SeqCst);
            run_deferred()
        }
        c if c == Call::HaltForever as u64 => loop {
            x86_64::instructions::hlt();
        },
        c if c == Call::ReadCr3 as u64 => x86_64::registers::control::Cr3::read_raw()
            .0
            .start_address()
            .as_u64(),
        c if c == Call::LoadEmptyIdt as u64 => {
            interrupts::load_empty_idt();
            0
        }
        c if c == Call::PortIo as u64 => {
            let port = arg0 as u16;
            let width = (arg0 >> 16) as u8;
            if arg0 & (1 << 24) != 0 {
                super::io::cpl0_out(port, width, arg1 as u32);
                0
            } else {
                u64::from(super::io::cpl0_in(port, width))
            }
        }
        c if c == Call::SerialWrite as u64 => {
            // SAFETY: ring 3 passes a live byte slice's address and length (`serial_write`),
            // and the core shares its address space.
            let bytes = unsafe { core::slice::from_raw_parts(arg0 as *const u8, arg1 as usize) };
            super::serial::cpl0_send(bytes);
            0
        }
        other => {
            log::error!("unknown core call {other}");
            u64::MAX
        }
    }
}

/// Runs the handlers of deferred vectors; returns how many ran.
fn run_deferred() -> u64 {
    let bits = DEFERRED.swap(0, Ordering::SeqCst);
    let mut rest = bits;
    while rest != 0 {
        let bit = rest.trailing_zeros() as u8;
        rest &= rest - 1;
        interrupts::run_handler(DEFERRED_BASE + bit);
    }
    u64::from(bits.count_ones())
}

/// The way into the core from ring 3: a `ud2` at this one address is a core call (RAX =
/// call, RDI and RSI = arguments, result in RAX), any other `ud2` a bug. Not `syscall`:
/// under kvm-pvm it enters LSTAR still at CPL3 (CS 0x33), where the core's instructions
/// fault; exceptions do reach CPL0.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn core_trap() {
    naked_asm!("ud2", "ret")
}

/// True when an invalid-opcode exception at `rip` is a core call.
pub fn is_core_call(rip: u64) -> bool {
    rip == core_trap as *const () as usize as u64
}

/// Makes a core call, from ring 3.
pub fn call(call: Call, arg: u64) -> u64 {
    call2(call, arg, 0)
}

/// Makes a core call with two arguments, from ring 3.
pub fn call2(call: Call, arg0: u64, arg1: u64) -> u64 {
    let result: u64;
    // SAFETY: `core_trap`'s `ud2` enters the invalid-opcode stub, which saves and restores
    // every register but RAX (the result) and returns past the `ud2` to `core_trap`'s `ret`;
    // the C ABI's caller-saved registers are declared clobbered all the same. Only ring 3
    // calls this (every caller checks `active()`): from CPL0 the `ud2` is reported as a crash.
    unsafe {
        asm!(
            "call {trap}",
            trap = sym core_trap,
            inlateout("rax") call as u64 => result,
            in("rdi") arg0,
            in("rsi") arg1,
            clobber_abi("C"),
        );
    }
    result
}

/// Masks interrupts: `cli` at CPL0, the software flag in ring 3.
pub fn mask() {
    if active() {
        MASKED.store(true, Ordering::SeqCst);
    } else {
        x86_64::instructions::interrupts::disable();
    }
}

/// Unmasks interrupts, running what arrived while masked.
pub fn unmask() {
    if active() {
        MASKED.store(false, Ordering::SeqCst);
        if DEFERRED.load(Ordering::SeqCst) != 0 {
            call(Call::Unmask, 0);
        }
    } else {
        x86_64::instructions::interrupts::enable();
    }
}

/// Unmasks and waits for an interrupt, unless one arrived while masked (`sti; hlt`).
pub fn unmask_and_wait() {
    if active() {
        call(Call::UnmaskAndWait, 0);
    } else {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

/// Halts for good, interrupts off.
pub fn halt_forever() -> ! {
    if active() {
        call(Call::HaltForever, 0);
    }
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// CR3, the page-table root.
pub fn cr3() -> u64 {
    if active() {
        call(Call::ReadCr3, 0)
    } else {
        x86_64::registers::control::Cr3::read_raw()
            .0
            .start_address()
            .as_u64()
    }
}

/// Loads an empty IDT (`crash=triple`).
pub fn load_empty_idt() {
    if active() {
        call(Call::LoadEmptyIdt, 0);
    } else {
        interrupts::load_empty_idt();
    }
}

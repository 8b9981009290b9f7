//! The vCPU: its PVH entry state (32-bit protected mode, paging off, flat segments, EBX =
//! `hvm_start_info`), the CPUID KVM supports, and the run loop that dispatches exits.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, Msrs, kvm_fpu, kvm_msr_entry, kvm_segment};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};

use crate::boot::GDT;
use crate::io::{PortBus, PortEvent};
use crate::layout::{GDT_ADDR, START_INFO_ADDR};

const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
const MTRR_ENABLE: u64 = 1 << 11;
const MTRR_TYPE_WRBACK: u64 = 6;

/// Why the vCPU could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    /// A KVM ioctl failed.
    #[error("{what}: {source}")]
    Kvm {
        /// Which step.
        what: &'static str,
        /// The error.
        source: kvm_ioctls::Error,
    },
    /// The MSR list could not be built.
    #[error("building the boot MSR list")]
    Msrs,
}

fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VcpuError {
    move |source| VcpuError::Kvm { what, source }
}

/// Why the vCPU stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcpuStop {
    /// The guest powered off through ACPI.
    PowerOff,
    /// The guest asked for a reset (ACPI reset register or a KVM system event).
    Reset,
    /// The guest wrote this value to the debug-exit port.
    DebugExit(u32),
    /// The guest crashed (triple fault, failed entry, internal error): why, and its registers.
    Crash(String),
    /// The VMM asked it to stop (Ctrl-C, or the event loop failed).
    Stopped,
}

fn segment(selector: u16, type_: u8) -> kvm_segment {
    let entry = GDT[usize::from(selector >> 3)];
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: 0,
        g: ((entry >> 55) & 1) as u8,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Creates vCPU 0 in the PVH entry state at `entry`.
pub fn create(kvm_sys: &Kvm, vm: &VmFd, entry: u64) -> Result<VcpuFd, VcpuError> {
    let vcpu = vm.create_vcpu(0).map_err(kvm("creating the vCPU"))?;
    let cpuid = kvm_sys
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(kvm("KVM_GET_SUPPORTED_CPUID"))?;
    vcpu.set_cpuid2(&cpuid).map_err(kvm("KVM_SET_CPUID2"))?;

    let mut sregs = vcpu.get_sregs().map_err(kvm("KVM_GET_SREGS"))?;
    let code = segment(0x08, 0xb);
    let data = segment(0x10, 0x3);
    let mut tss = segment(0x18, 0xb);
    tss.s = 0;
    sregs.cs = code;
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = tss;
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (GDT.len() * 8 - 1) as u16;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = 0x11; // PE | ET
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    vcpu.set_sregs(&sregs).map_err(kvm("KVM_SET_SREGS"))?;

    let mut regs = vcpu.get_regs().map_err(kvm("KVM_GET_REGS"))?;
    regs.rip = entry;
    regs.rbx = START_INFO_ADDR;
    regs.rflags = 0x2;
    vcpu.set_regs(&regs).map_err(kvm("KVM_SET_REGS"))?;

    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(kvm("KVM_SET_FPU"))?;

    // MTRRs on with write-back as the default type, as Firecracker does. With the reset value
    // (MTRRs off) all memory is uncached, which makes every access slow.
    let msrs = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_MTRR_DEF_TYPE,
        data: MTRR_ENABLE | MTRR_TYPE_WRBACK,
        ..Default::default()
    }])
    .map_err(|_| VcpuError::Msrs)?;
    vcpu.set_msrs(&msrs).map_err(kvm("KVM_SET_MSRS"))?;
    Ok(vcpu)
}

/// The vCPU's registers, for a crash report.
pub fn dump_registers(vcpu: &VcpuFd) -> String {
    let mut s = String::new();
    match vcpu.get_regs() {
        Ok(r) => {
            let _ = writeln!(
                s,
                "RIP={:016x} RSP={:016x} RBP={:016x} RFLAGS={:08x}",
                r.rip, r.rsp, r.rbp, r.rflags
            );
            let _ = writeln!(
                s,
                "RAX={:016x} RBX={:016x} RCX={:016x} RDX={:016x}",
                r.rax, r.rbx, r.rcx, r.rdx
            );
            let _ = writeln!(
                s,
                "RSI={:016x} RDI={:016x} R8 ={:016x} R9 ={:016x}",
                r.rsi, r.rdi, r.r8, r.r9
            );
            let _ = writeln!(
                s,
                "R10={:016x} R11={:016x} R12={:016x} R13={:016x}",
                r.r10, r.r11, r.r12, r.r13
            );
            let _ = writeln!(s, "R14={:016x} R15={:016x}", r.r14, r.r15);
        }
        Err(e) => {
            let _ = writeln!(s, "(registers unavailable: {e})");
        }
    }
    if let Ok(sr) = vcpu.get_sregs() {
        let _ = writeln!(
            s,
            "CR0={:08x} CR2={:016x} CR3={:016x} CR4={:08x} EFER={:x}",
            sr.cr0, sr.cr2, sr.cr3, sr.cr4, sr.efer
        );
        let _ = writeln!(
            s,
            "CS={:04x} (l={} db={}) SS={:04x} GDT={:x}/{:x} IDT={:x}/{:x}",
            sr.cs.selector,
            sr.cs.l,
            sr.cs.db,
            sr.ss.selector,
            sr.gdt.base,
            sr.gdt.limit,
            sr.idt.base,
            sr.idt.limit
        );
    }
    s
}

/// How many exits of each kind the vCPU took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitCounts {
    /// Port I/O exits.
    pub pio: u64,
    /// MMIO exits.
    pub mmio: u64,
    /// Everything else (interrupted runs included).
    pub other: u64,
    /// Port accesses nothing decodes (reads return all-ones, writes are dropped).
    pub unhandled_pio: u64,
}

/// For a `KVM_EXIT_INTERNAL_ERROR`, what KVM's suberror says (empty for other exits). Nested
/// KVM here reports a guest's triple fault this way (suberror 1, emulation failed) rather than as
/// a shutdown.
fn internal_error_detail(vcpu: &mut VcpuFd) -> String {
    let run = vcpu.get_kvm_run();
    if run.exit_reason != kvm_bindings::KVM_EXIT_INTERNAL_ERROR {
        return String::new();
    }
    // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so `internal` is the member KVM
    // filled in; it is plain integers.
    let suberror = unsafe { run.__bindgen_anon_1.internal.suberror };
    let what = match suberror {
        1 => "instruction emulation failed",
        2 => "an exception while delivering an exception (a triple fault)",
        3 => "an exit while delivering an event",
        4 => "an unexpected exit reason",
        _ => "unknown",
    };
    format!(" (suberror {suberror}: {what})")
}

/// Runs the vCPU until the guest stops it or `stop` is set (then kick the thread).
/// `on_event` sees the port events that do not stop the vCPU (the boot-complete stamp).
pub fn run(
    vcpu: &mut VcpuFd,
    ports: &mut PortBus,
    stop: &Arc<AtomicBool>,
    counts: &mut ExitCounts,
    mut on_event: impl FnMut(PortEvent),
) -> VcpuStop {
    loop {
        if stop.load(Ordering::SeqCst) {
            return VcpuStop::Stopped;
        }
        let crash = match vcpu.run() {
            Ok(VcpuExit::IoOut(port, data)) => {
                counts.pio += 1;
                match ports.write(port, data) {
                    Some(PortEvent::DebugExit(v)) => return VcpuStop::DebugExit(v),
                    Some(PortEvent::PowerOff) => return VcpuStop::PowerOff,
                    Some(PortEvent::Reset) => return VcpuStop::Reset,
                    Some(e) => {
                        on_event(e);
                        continue;
                    }
                    None => continue,
                }
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                counts.pio += 1;
                ports.read(port, data);
                continue;
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                counts.mmio += 1;
                if !ports.pci.mmio_read(addr, data) {
                    log::debug!(
                        "MMIO read of {} bytes at {addr:#x}: nothing there",
                        data.len()
                    );
                    data.fill(0xff);
                }
                continue;
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                counts.mmio += 1;
                if !ports.pci.mmio_write(addr, data) {
                    log::debug!(
                        "MMIO write of {} bytes at {addr:#x}: nothing there",
                        data.len()
                    );
                }
                continue;
            }
            Ok(VcpuExit::Hlt) => "the vCPU halted".to_string(),
            Ok(VcpuExit::Shutdown) => "triple fault (KVM_EXIT_SHUTDOWN)".to_string(),
            Ok(VcpuExit::SystemEvent(kind, _)) => match kind {
                kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => return VcpuStop::PowerOff,
                kvm_bindings::KVM_SYSTEM_EVENT_RESET => return VcpuStop::Reset,
                other => format!("system event {other}"),
            },
            Ok(VcpuExit::FailEntry(reason, cpu)) => {
                format!("VM entry failed: hardware reason {reason:#x} on CPU {cpu}")
            }
            Ok(VcpuExit::InternalError) => "KVM internal error".to_string(),

            Ok(VcpuExit::Intr) => {
                counts.other += 1;
                continue;
            }
            Ok(other) => format!("unexpected exit {other:?}"),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
            Err(e) => format!("KVM_RUN failed: {e}"),
        };
        let detail = internal_error_detail(vcpu);
        return VcpuStop::Crash(format!("{crash}{detail}\n{}", dump_registers(vcpu)));
    }
}

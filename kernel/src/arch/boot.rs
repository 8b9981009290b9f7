//! The boot sequence, from the bootloader's call to a ready kernel.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use bootloader::BootInfo;
use spin::Once;

use crate::appliance_root;
use crate::arch::{
    apic, clock, crash, gdt, heap, interrupts, io, pci, power, ring3, ring3probe, selftests,
    serial, serve, virtio,
};
use crate::cmdline::{Cmdline, parse_level};
use crate::klog::Logger;
use crate::memory;

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// The physical range of the kernel image, from the linker script.
pub fn kernel_image() -> Range<u64> {
    ((&raw const __kernel_start) as u64)..((&raw const __kernel_end) as u64)
}

/// What the boot found, kept for the self tests and later subsystems.
#[derive(Debug)]
pub struct BootFacts {
    /// The command line.
    pub cmdline: String,
    /// Physical address of hvm_start_info.
    pub start_info: u32,
    /// RAM regions in the memory map, in bytes.
    pub ram_bytes: u64,
    /// The heap's physical range.
    pub heap: Range<u64>,
    /// Nanoseconds from the PVH entry to ready.
    pub ready_ns: u64,
}

static FACTS: Once<BootFacts> = Once::new();

/// Where the kernel puts BARs firmware left unassigned: below the IOAPIC, above 3 GiB.
const PCI_HOLE: Range<u64> = 0xc000_0000..0xfec0_0000;

/// The facts recorded at boot.
pub fn facts() -> &'static BootFacts {
    FACTS
        .get()
        .expect("boot facts are recorded before anything asks")
}

static LOGGER: Logger = Logger {
    write: serial::write_fmt,
    now_ns: clock::now_ns,
};

fn fatal(args: core::fmt::Arguments<'_>) -> ! {
    serial::emergency_write(format_args!("boot failed: {args}\n"));
    power::exit(false)
}

/// TSC stamps of the boot stages, printed at debug level once the kernel is ready (printing
/// as it goes would measure the serial port instead).
struct Stages {
    marks: [(&'static str, u64); 8],
    len: usize,
}

impl Stages {
    fn new() -> Self {
        Self {
            marks: [("", 0); 8],
            len: 0,
        }
    }

    fn mark(&mut self, name: &'static str) {
        if self.len < self.marks.len() {
            self.marks[self.len] = (name, clock::rdtsc());
            self.len += 1;
        }
    }

    fn log(&self) {
        let mut prev = bootloader::entry::entry_tsc();
        for (name, tsc) in &self.marks[..self.len] {
            log::debug!(
                "boot stage {name}: {} us",
                clock::ticks_to_ns(tsc - prev) / 1000
            );
            prev = *tsc;
        }
    }
}

/// The port a VMM watches for the boot-complete signal (Firecracker's convention).
pub const BOOT_COMPLETE_PORT: u16 = 0x3f0;
/// The boot-complete value.
pub const BOOT_COMPLETE_VALUE: u8 = 123;

/// Brings the kernel up and runs what the command line asks for. Never returns.
pub fn boot(start_info: u32) -> ! {
    let mut stages = Stages::new();
    stages.mark("trampoline");
    serial::init();
    stages.mark("serial");
    interrupts::init();
    gdt::init();
    stages.mark("idt");

    // SAFETY: `start_info` is what the loader passed in EBX, and the bootloader identity-maps
    // the low 4 GiB where loaders place the structure and what it points to.
    let info = match unsafe { BootInfo::from_identity_mapped(start_info) } {
        Ok(info) => info,
        Err(e) => fatal(format_args!("{e}")),
    };
    let cmdline = Cmdline::new(info.cmdline());
    let level = cmdline
        .get("loglevel")
        .and_then(parse_level)
        .unwrap_or(log::LevelFilter::Info);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
    stages.mark("boot_info");
    let tsc = clock::calibrate();
    stages.mark("clock");
    apic::init();
    // What needs CPL0 is done: the rest runs in ring 3 (see ring3.rs), unless `ring0` or
    // `ring3probe` (which measures both rings, below) asks otherwise.
    if !cmdline.has("ring0") && !cmdline.has("ring3probe") {
        ring3::enter();
    }
    interrupts::init_external();
    stages.mark("ring3");

    // Keep the heap off the kernel image, the start info page and every boot module.
    let mut reserved: [Range<u64>; 10] = core::array::from_fn(|_| 0..0);
    reserved[0] = kernel_image();
    let si = u64::from(start_info) & !0xfff;
    reserved[1] = si..si + 0x1000;
    for (slot, m) in reserved[2..].iter_mut().zip(info.modules()) {
        *slot = m.paddr..m.paddr.saturating_add(m.data.len() as u64);
    }
    if info.modules().count() > reserved.len() - 2 {
        fatal(format_args!(
            "more than {} boot modules",
            reserved.len() - 2
        ));
    }
    let Some(heap_range) =
        memory::heap_region(info.memory_regions(), &reserved, io::IDENTITY_LIMIT)
    else {
        fatal(format_args!("no usable RAM for the heap in the memory map"))
    };
    heap::init(heap_range.clone());
    stages.mark("heap");
    if cmdline.has("ring3probe") {
        ring3probe::before_ring3();
        ring3::enter();
        ring3probe::in_ring3();
        power::power_off();
    }

    // ACPI is read when the kernel powers off, not here: finding the RSDP scans the BIOS area.
    power::set_rsdp_hint(info.rsdp_paddr());

    let ram_bytes = info
        .memory_regions()
        .filter(|r| r.kind == bootloader::MemoryRegionKind::Ram)
        .map(|r| r.len)
        .sum();
    let ready_ns = clock::now_ns();
    let facts = FACTS.call_once(|| BootFacts {
        cmdline: String::from(cmdline.as_str()),
        start_info,
        ram_bytes,
        heap: heap_range,
        ready_ns,
    });
    log::info!(
        "vmchannel kernel {}: ready in {} us; {} MiB RAM, heap {} MiB at {:#x}; cmdline \"{}\"",
        env!("CARGO_PKG_VERSION"),
        ready_ns / 1000,
        facts.ram_bytes >> 20,
        (facts.heap.end - facts.heap.start) >> 20,
        facts.heap.start,
        facts.cmdline
    );

    // Firecracker's boot-complete signal, which the bundled VMM also times: one byte to a port
    // nothing else here uses (under QEMU it reaches the floppy controller's read-only status
    // register, or nothing).
    // SAFETY: the boot-complete port is the VMM's; only this line writes it.
    unsafe { io::IoPorts::new(BOOT_COMPLETE_PORT, 1) }.write8(0, BOOT_COMPLETE_VALUE);
    stages.log();
    match tsc {
        Ok((hz, source)) => {
            log::debug!(
                "TSC {}.{:03} MHz ({source})",
                hz / 1_000_000,
                (hz / 1000) % 1000
            )
        }
        Err(e) => log::warn!("clock: {e}; timestamps will read 0"),
    }

    if cmdline.has("lspci") {
        pci::list();
        power::power_off();
    }
    if cmdline.has("selftest") {
        let only = cmdline.get("selftest");
        let summary = selftests::run(only);
        power::exit(summary.success());
    }
    if let Some(mode) = cmdline.get("crash") {
        crash::crash(mode);
    }
    // Unassigned BARs go in the PCI hole, clear of everything in the memory map.
    let reserved: Vec<Range<u64>> = info
        .memory_regions()
        .map(|r| r.start..r.start.saturating_add(r.len))
        .collect();
    match virtio::open_console(PCI_HOLE, reserved.clone()) {
        Ok(console) => {
            // Disks after the console, so their BARs are placed clear of the console's.
            let mut disks = super::blk::open_disks(PCI_HOLE, &reserved);
            disks.extend(super::scsi::open_disks(PCI_HOLE, &reserved));
            // Under libguestfs, its appliance root disk is ours, not the user's.
            if let Some(uuid) = appliance_root::root_uuid(cmdline.as_str()) {
                disks.retain(|d| {
                    let ours = appliance_root::is_appliance_root(d.as_ref(), &uuid);
                    if ours {
                        log::info!("the appliance root disk (root=UUID=) is hidden");
                    }
                    !ours
                });
            }
            serve::run(console, disks, cmdline.get("idle") == Some("poll"))
        }
        Err(virtio::OpenError::NoDevice) => {
            log::info!("no virtio-console: nothing to serve, powering off");
            power::power_off()
        }
        Err(e) => fatal(format_args!("virtio-console: {e}")),
    }
}

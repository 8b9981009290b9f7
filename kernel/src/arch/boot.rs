//! The boot sequence, from the bootloader's call to a ready kernel.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};

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

/// TSC stamps of start-up milestones, from the PVH entry to the first port served: the boot
/// stages up to ready are printed at debug level once the kernel is ready, the later ones
/// (PCI, the console's set-up, its first port) once the service loop first goes idle.
/// Printing as it goes would measure the serial port instead (every byte is a VM exit).
struct Milestones {
    marks: [(&'static str, u64); 24],
    len: usize,
    logged: usize,
}

static MILESTONES: spin::Mutex<Milestones> = spin::Mutex::new(Milestones {
    marks: [("", 0); 24],
    len: 0,
    logged: 0,
});

/// Records that start-up reached `name` now (the first 24 marks are kept).
pub fn milestone(name: &'static str) {
    let tsc = clock::rdtsc();
    let mut m = MILESTONES.lock();
    if m.len < m.marks.len() {
        let at = m.len;
        m.marks[at] = (name, tsc);
        m.len += 1;
    }
}

/// Set by `profile` on the command line: the milestones are printed whatever the log level.
static PROFILE: AtomicBool = AtomicBool::new(false);

/// Prints, at debug level (or with `profile` on the command line at any level), the
/// milestones recorded since the last call: the time each took since the one before, and
/// since the PVH entry.
pub fn log_milestones() {
    let profile = PROFILE.load(Ordering::Relaxed);
    if !profile && !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let mut m = MILESTONES.lock();
    let entry = bootloader::entry::entry_tsc();
    let from = m.logged;
    let mut prev = if from == 0 {
        entry
    } else {
        m.marks[from - 1].1
    };
    for (name, tsc) in &m.marks[from..m.len] {
        let step = clock::ticks_to_ns(tsc.saturating_sub(prev)) / 1000;
        let at = clock::ticks_to_ns(tsc.saturating_sub(entry)) / 1000;
        if profile {
            crate::kprint!("start-up {name}: +{step} us (at {at} us)\n");
        } else {
            log::debug!("start-up {name}: +{step} us (at {at} us)");
        }
        prev = *tsc;
    }
    m.logged = m.len;
}

/// The port a VMM watches for the boot-complete signal (Firecracker's convention).
pub const BOOT_COMPLETE_PORT: u16 = 0x3f0;
/// The boot-complete value.
pub const BOOT_COMPLETE_VALUE: u8 = 123;

/// Brings the kernel up and runs what the command line asks for. Never returns.
pub fn boot(start_info: u32) -> ! {
    milestone("trampoline");
    serial::init();
    milestone("serial");
    interrupts::init();
    gdt::init();
    milestone("idt");

    // SAFETY: `start_info` is what the loader passed in EBX, and the bootloader identity-maps
    // the low 4 GiB where loaders place the structure and what it points to.
    let info = match unsafe { BootInfo::from_identity_mapped(start_info) } {
        Ok(info) => info,
        Err(e) => fatal(format_args!("{e}")),
    };
    milestone("start info");
    let raw_cmdline = info.cmdline();
    // Whether to stay at CPL0 is the one thing read from the command line before the drop:
    // at CPL0 every instruction is emulated under kvm-pvm (parsing the command line and
    // setting up the logger took 1-3 ms there), so the full parse waits for ring 3, and here
    // only a command line that mentions "ring" at all is looked at word by word.
    let stay_at_cpl0 = raw_cmdline.as_bytes().windows(4).any(|w| w == b"ring") && {
        let cmdline = Cmdline::new(raw_cmdline);
        cmdline.has("ring0") || cmdline.has("ring3probe")
    };
    let tsc = clock::calibrate();
    milestone("clock");
    apic::init();
    // What needs CPL0 is done: the rest runs in ring 3 (see ring3.rs), unless `ring0` or
    // `ring3probe` (which measures both rings, below) asks otherwise.
    if !stay_at_cpl0 {
        ring3::enter();
    }
    milestone("ring3");
    let cmdline = Cmdline::new(raw_cmdline);
    let level = cmdline
        .get("loglevel")
        .and_then(parse_level)
        .unwrap_or(log::LevelFilter::Info);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
    PROFILE.store(cmdline.has("profile"), Ordering::Relaxed);
    interrupts::init_external();
    milestone("command line, IDT");

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
    milestone("heap");
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
    milestone("ready");
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
    // With a console to serve, the service loop prints the milestones once the first data
    // has gone out (printing here would delay what follows by a VM exit per byte).
    let serving =
        !cmdline.has("lspci") && !cmdline.has("selftest") && cmdline.get("crash").is_none();
    if !serving {
        log_milestones();
    }
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
            log_milestones();
            log::info!("no virtio-console: nothing to serve, powering off");
            power::power_off()
        }
        Err(e) => fatal(format_args!("virtio-console: {e}")),
    }
}

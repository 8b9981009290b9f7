//! PVH boot support for the vmchannel unikernel.
//!
//! A loader that speaks Xen's x86/HVM direct boot ABI (QEMU `-kernel`, rust-vmm
//! `linux-loader`) finds the `XEN_ELFNOTE_PHYS32_ENTRY` note, enters the kernel in 32-bit
//! protected mode with paging off and puts the physical address of `hvm_start_info` in EBX.
//! This crate owns everything between that moment and the kernel's first Rust function:
//!
//! - [`entry`] (guest only): the ELF note, the 32-bit trampoline, the boot stack and GDT;
//! - [`page_table`]: the identity map of the low 4 GiB with 2 MiB pages, and a table walker;
//! - [`boot_info`]: a safe reader for the command line, memory map, modules and RSDP.
//!
//! The kernel names its Rust entry point with [`entry_point!`].
#![cfg_attr(not(test), no_std)]

pub mod boot_info;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub mod entry;
pub mod page_table;

pub use boot_info::{BootInfo, BootInfoError, MemoryRegion, MemoryRegionKind};

/// Declares the kernel's Rust entry point.
///
/// The function must have the signature `fn(u32) -> !`; it receives the physical address of
/// `hvm_start_info`, which [`BootInfo::from_identity_mapped`] reads. It is called in 64-bit
/// long mode on the boot stack, with the low 4 GiB identity-mapped and interrupts disabled.
#[macro_export]
macro_rules! entry_point {
    ($path:path) => {
        /// The symbol the bootloader's trampoline calls once in long mode.
        #[unsafe(export_name = "vmchannel_kernel_entry")]
        extern "C" fn __vmchannel_kernel_entry(start_info_paddr: u32) -> ! {
            let entry: fn(u32) -> ! = $path;
            entry(start_info_paddr)
        }
    };
}

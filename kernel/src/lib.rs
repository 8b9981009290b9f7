//! The vmchannel guest unikernel, as a library: the runtime, the drivers and the agents. The
//! inspection code it hosts (disks, filesystems, inspection rules, the request handler) is the
//! portable `vmchannel-inspect` crate.
//!
//! Hardware-independent logic (command line, memory map, ACPI tables, self-test runner, log
//! format) is ordinary `no_std + alloc` code that the host's test suite runs. Code that touches
//! the CPU or devices lives in [`arch`], compiled only for the bare-metal target (`cfg(bare)`,
//! set by build.rs for `x86_64-unknown-none`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod acpi;
pub mod agents;
pub mod appliance_root;
#[cfg(bare)]
pub mod arch;
pub mod cmdline;
pub mod klog;
pub mod memory;
pub mod pci;
pub mod power;
pub mod rtc;
pub mod selftest;
pub mod virtio_console;
pub mod virtio_scsi;

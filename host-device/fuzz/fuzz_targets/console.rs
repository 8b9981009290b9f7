//! cargo-fuzz target: the console device behind virtio-pci, driven by arbitrary guest memory,
//! queue contents, register accesses and host calls (see `host_device::fuzz`).
//!
//! Run on stable with: `cargo fuzz run console --sanitizer none` from `host-device/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| host_device::fuzz::run(data));

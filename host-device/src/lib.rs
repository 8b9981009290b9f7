//! The host side of virtio-serial.
//!
//! - [`virtio`]: the contract between a virtio device model and its transport;
//! - [`pci`]: a modern virtio-pci transport (configuration space, capabilities, BAR registers,
//!   MSI-X and INTx) that any [`virtio::VirtioDevice`] plugs into;
//! - [`console`]: the virtio-console device with MULTIPORT: named ports, their properties
//!   (`cache_buffers`, `byte_limit`, `guest_byte_limit`), backends (unix sockets, an in-process
//!   API), flow control, hot-plug and snapshots;
//! - [`block`]: a read-only virtio-blk device over a raw image (or any [`block::BlockBackend`]);
//! - [`snapshot`]: the versioned binary format snapshots are written in;
//! - `test_utils` (feature `test-utils`): a fake interrupt sink and a hand-written guest
//!   driver (split rings, the virtio-pci registers) for tests, benchmarks and fuzzers;
//! - `fuzz` (feature `fuzzing`): the bodies of the cargo-fuzz targets in `host-device/fuzz`.
//!
//! Guest memory and descriptor chains go through rust-vmm's `vm-memory` and `virtio-queue`, which
//! check every address and chain the guest hands us. Nothing here needs KVM: the device runs in
//! any process, and the tests drive it with the guest kernel's own driver.

mod active;
pub mod block;
pub mod console;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod pci;
pub mod snapshot;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
pub mod virtio;

//! What tests, benchmarks and fuzzers use to play the guest and the VMM around a device (behind
//! the `test-utils` feature, and always in this crate's own tests):
//!
//! - [`RecordingSink`]: the VMM's side of interrupts, recording or counting what the transport
//!   delivers;
//! - [`GuestQueue`]: the guest's side of one split virtqueue, written by hand into guest memory
//!   (descriptors, available ring, used ring), so a test can post sane or hostile chains;
//! - [`PciDriver`]: the guest's side of the virtio-pci transport: the capability walk
//!   ([`crate::pci::driver::VirtioLayout`]), the common configuration registers, bring-up.

mod driver;
mod queue;
mod sink;

pub use driver::PciDriver;
pub use queue::{
    Desc, GuestQueue, Seg, UsedEntry, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
    rd, wr, write_desc,
};
pub use sink::RecordingSink;

//! What tests, benchmarks and fuzzers use to play the guest and the VMM around a device (behind
//! the `test-utils` feature, and always in this crate's own tests):
//!
//! - [`RecordingSink`]: the VMM's side of interrupts, recording or counting what the transport
//!   delivers;
//! - [`GuestQueue`]: the guest's side of one split virtqueue, written by hand into guest memory
//!   (descriptors, available ring, used ring), so a test can post sane or hostile chains;
//! - [`PciDriver`]: the guest's side of the virtio-pci transport: the capability walk
//!   ([`crate::pci::driver::VirtioLayout`]), the common configuration registers, bring-up;
//! - [`assert_golden`]: pinned bytes of a format (snapshots), rewritten on request.

mod driver;
mod queue;
mod sink;

pub use driver::PciDriver;
pub use queue::{
    Desc, GuestQueue, Seg, UsedEntry, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
    rd, wr, write_desc,
};
pub use sink::RecordingSink;

/// Checks that `actual` is the pinned `golden` bytes, read from `path` (relative to the
/// crate). With the environment variable `VMCHANNEL_WRITE_GOLDEN` set, `actual` is first
/// written to `path`; the next build pins it. A difference is a format change: bump the
/// version and keep reading the old one.
pub fn assert_golden(actual: &[u8], golden: &[u8], path: &str) {
    if std::env::var_os("VMCHANNEL_WRITE_GOLDEN").is_some() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::write(&file, actual).unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
    }
    assert_eq!(actual, golden, "{path} differs: a format change?");
}

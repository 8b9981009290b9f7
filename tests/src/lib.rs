//! Test support for booting the real vmchannel kernel.
//!
//! - [`kernel_image`]: the guest ELF that this crate's build script built from the tree;
//! - [`echo`]: payloads and the host half of an echo exchange;
//! - [`hosts`]: whether QEMU and KVM are here, with the skip-or-fail policy for CI;
//! - [`qemu`]: boot the kernel under QEMU with a hard timeout and capture the serial log;
//! - [`outcome`]: what a boot produced, and the checks tests make on it;
//! - [`vm`]: a running guest with virtio-serial ports on unix sockets and a QMP monitor;
//! - [`vmch`]: a guest running under the bundled VMM (`vmch run`), ports on unix sockets;
//! - [`scenarios`]: echo scenarios both VMMs must pass.

pub mod appliance;
pub mod distros;
pub mod echo;
pub mod hosts;
pub mod images;
pub mod inproc;
pub mod layouts;
pub mod outcome;
pub mod pkgbench;
pub mod procs;
pub mod qemu;
pub mod scenarios;
pub mod vm;
pub mod vmch;
pub mod windows;

use std::path::Path;

/// The guest kernel ELF built from this tree (`target/guest/x86_64-unknown-none/release/kernel`).
pub fn kernel_image() -> &'static Path {
    Path::new(env!("VMCHANNEL_KERNEL"))
}

//! `vmch`'s exit statuses, one per kind of outcome, so scripts can tell them apart.

/// Success: an operating system was found (inspect), or the command did what was asked.
pub const OK: u8 = 0;
/// The command failed for a reason of its own: a path that does not exist, a checksum
/// mismatch, a file that cannot be written on the host.
pub const FAILED: u8 = 1;
/// The command line was wrong (as clap reports it).
pub const USAGE: u8 = 2;
/// The image was read, but no operating system was found on it.
pub const NO_OS: u8 = 3;
/// An image cannot be read: missing, not permitted, a format vmchannel does not read, a
/// corrupt qcow2, or disk reads failing inside the appliance.
pub const UNREADABLE_IMAGE: u8 = 4;
/// The appliance failed: the VM did not start (no KVM, no QEMU), crashed, timed out or broke
/// the protocol.
pub const APPLIANCE_FAILED: u8 = 5;

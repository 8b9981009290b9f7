//! cargo-fuzz target: bytes from the host (and from the appliance) cut in two at a point given
//! by the first byte, through the frame decoder, the call decoder and the reply decoder; every
//! decoded call and reply must re-encode and decode back to itself (see
//! `guestfs_proto::fuzz::decoder`).
//!
//! Run on stable with: `cargo fuzz run decoder --sanitizer none` from `guestfs-proto/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| guestfs_proto::fuzz::decoder(data));

//! cargo-fuzz target: the frame decoder fed arbitrary bytes, cut in two at a point given by
//! the first byte, as a `ClientDecoder` and as a `ServerDecoder`; every decoded message must
//! re-encode and decode back to itself (see `vmchannel_proto::frame::fuzz::decoder`).
//!
//! Run on stable with: `cargo fuzz run decoder --sanitizer none` from `proto/` (or `proto/fuzz/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vmchannel_proto::frame::fuzz::decoder(data));

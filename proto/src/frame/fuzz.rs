//! The body of the cargo-fuzz target `proto/fuzz` (`fuzz_targets/decoder.rs`), also run over
//! pseudo-random inputs by a unit test so that `cargo test` exercises it.

use alloc::vec::Vec;
use core::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Decoded, Decoder, HEADER_LEN, encode};
use crate::messages::{ClientMessage, ServerMessage};

/// Splits `data[1..]` at a point given by `data[0]`, feeds both halves to a
/// [`super::ClientDecoder`] and a [`super::ServerDecoder`], drains the events, and checks:
/// every decoded message re-encodes and decodes back to itself; the events do not depend
/// on how the stream was cut (one push, two, or one byte at a time); no two garbage
/// events follow each other; every byte is accounted for (in a frame or skipped); the
/// buffer stays within one frame. The low bit of `data[0]` picks a small frame limit.
///
/// Panics when a check fails: that is its purpose.
pub fn decoder(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let cut = usize::from(first) * rest.len() / 255;
    let (a, b) = rest.split_at_checked(cut).unwrap_or((rest, &[]));
    let max = if first & 1 == 1 { 64 } else { super::MAX_FRAME };
    check::<ClientMessage>(a, b, max);
    check::<ServerMessage>(a, b, max);
    handshake::<ClientMessage>(a, b);
    handshake::<ServerMessage>(a, b);
}

/// A session's start: `a` decoded under the handshake limit, then the limit raised (as
/// when the handshake ends) and `b` decoded. The buffer stays within one frame of the
/// limit in force, and whatever `a` left, the preamble followed by a frame yields that
/// frame.
fn handshake<T: DeserializeOwned + Serialize + Debug + PartialEq>(a: &[u8], b: &[u8]) {
    let mut d = Decoder::<T>::with_max_frame(super::HANDSHAKE_MAX_FRAME);
    d.push(a);
    assert!(d.buffered() <= HEADER_LEN + super::HANDSHAKE_MAX_FRAME as usize);
    while d.next().is_some() {}
    // The preamble ends whatever `a` left: a frame after it always decodes.
    let mut e = Decoder::<T>::with_max_frame(super::HANDSHAKE_MAX_FRAME);
    e.push(a);
    e.push(&super::PREAMBLE);
    let sync = encode(&ClientMessage::Sync { nonce: 7 }).expect("encodes");
    let synced = encode(&ServerMessage::Synced { nonce: 7 }).expect("encodes");
    // Whichever of the two is a `T` decodes as one; the other is garbage to skip.
    e.push(&sync);
    e.push(&synced);
    let mut found = false;
    for ev in e {
        if let Decoded::Message(m) = ev {
            let again = encode(&m).expect("re-encodes");
            found |= again == sync || again == synced;
        }
    }
    assert!(found, "a frame after the preamble was swallowed");
    d.set_max_frame(super::MAX_FRAME);
    d.push(b);
    assert!(d.buffered() <= HEADER_LEN + super::MAX_FRAME as usize);
    while d.next().is_some() {}
}

/// Decodes `pieces` in turn, then finishes; returns the events.
fn run<T: DeserializeOwned>(pieces: &[&[u8]], max: u32) -> Vec<Decoded<T>> {
    let mut dec = Decoder::<T>::with_max_frame(max);
    let limit = HEADER_LEN + max as usize;
    let mut events = Vec::new();
    let mut pushed = 0u64;
    for piece in pieces {
        dec.push(piece);
        pushed += piece.len() as u64;
        assert!(dec.buf.capacity() <= limit, "buffer over one frame");
        assert!(dec.buf.len() < limit, "a whole frame left in the buffer");
        events.extend(dec.by_ref());
        assert_eq!(
            skipped(&events)
                + dec.frame_bytes
                + dec.buf.len() as u64
                + dec.run.as_ref().map_or(0, |r| r.0),
            pushed,
            "bytes unaccounted for"
        );
    }
    dec.finish();
    events.extend(dec.by_ref());
    assert_eq!(dec.buffered(), 0);
    assert_eq!(
        skipped(&events) + dec.frame_bytes,
        pushed,
        "bytes unaccounted for"
    );
    events
}

/// Total of the garbage runs reported.
fn skipped<T>(events: &[Decoded<T>]) -> u64 {
    events
        .iter()
        .map(|e| match e {
            Decoded::Garbage { skipped, .. } => *skipped,
            Decoded::Message(_) => 0,
        })
        .sum()
}

fn check<T>(a: &[u8], b: &[u8], max: u32)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let whole: Vec<u8> = a.iter().chain(b).copied().collect();
    let events = run::<T>(&[a, b], max);
    assert_eq!(run::<T>(&[&whole], max), events, "one push and two differ");
    if whole.len() <= 4096 {
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(run::<T>(&bytes, max), events, "byte by byte differs");
    }
    for pair in events.windows(2) {
        let two_garbage = matches!(pair, [Decoded::Garbage { .. }, Decoded::Garbage { .. }]);
        assert!(!two_garbage, "two garbage events in a row");
    }
    for event in events {
        let Decoded::Message(msg) = event else {
            continue;
        };
        let frame = encode(&msg).expect("a decoded message re-encodes");
        let mut dec = Decoder::<T>::new();
        dec.push(&frame);
        assert_eq!(
            dec.next(),
            Some(Decoded::Message(msg)),
            "re-encoded differs"
        );
        assert_eq!(dec.next(), None);
        assert_eq!(dec.buffered(), 0);
    }
}

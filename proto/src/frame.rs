//! Framing: how messages become bytes on the stream, the size limit, and resync after garbage.
//!
//! A frame is the magic [`MAGIC`] (`b"VMCH"`), the payload length as a little-endian `u32`,
//! then the payload: exactly one postcard-encoded [`ClientMessage`] or [`ServerMessage`].
//! Payloads larger than [`MAX_FRAME`] are refused on both sides.
//!
//! [`encode`] builds a whole frame. [`Decoder`] is fed the stream in arbitrary pieces and
//! yields [`Decoded`] events: messages, and one [`Decoded::Garbage`] per run of bytes it had
//! to skip (a bad magic, an oversized length, a payload that does not decode exactly). After
//! garbage it resyncs on the next magic. Its buffer never holds more than one frame
//! ([`HEADER_LEN`] + the frame limit), and its work is linear in the input, however hostile.
//!
//! docs/PROTOCOL.md describes the format for implementers in other languages.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::messages::{ClientMessage, ServerMessage};

/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"VMCH";

/// Bytes before the payload: the magic and the `u32` little-endian payload length.
pub const HEADER_LEN: usize = 8;

/// Largest payload (header not included) either side may send: 4 MiB.
pub const MAX_FRAME: u32 = 4 << 20;

/// Largest payload a receiver accepts until its session is established (the reference client:
/// until its Sync is answered; the appliance: until the client's Hello). Greetings and Syncs
/// are far smaller.
///
/// With [`PREAMBLE`], this is what keeps a new session from inheriting the bytes of the one
/// before it: a byte stream that outlives its connections (a virtio-serial port whose peer
/// reconnects) can still carry the previous session's tail, a frame cut anywhere included. A
/// cut header announces a payload that never comes; with a large limit it would swallow the
/// new greeting and wait forever. Under this limit, the preamble always completes it.
pub const HANDSHAKE_MAX_FRAME: u32 = 1024;

/// Length of [`PREAMBLE`]: a whole header plus [`HANDSHAKE_MAX_FRAME`].
pub const PREAMBLE_LEN: usize = HEADER_LEN + HANDSHAKE_MAX_FRAME as usize;

/// What each side writes at the start of every session, before its first frame: zero bytes,
/// which never contain the magic. Whatever an earlier session left in the stream (a header cut
/// after any of its bytes, announcing up to [`HANDSHAKE_MAX_FRAME`]), the preamble completes
/// it, so a receiver decoding under that limit always finds the frame after the preamble.
pub const PREAMBLE: [u8; PREAMBLE_LEN] = [0; PREAMBLE_LEN];

/// How many bytes [`Decoder::push`] takes into its buffer at a time, so that one huge push
/// never makes the buffer bigger than a frame (nor bigger than needed while skipping garbage).
const CHUNK: usize = 64 << 10;

/// What went wrong with a frame, when encoding or decoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The payload is bigger than the limit. On decode, `size` is the length the header
    /// announced; the decoder reports it at once rather than waiting for the payload.
    #[error("frame payload of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Payload length in bytes.
        size: u64,
        /// The limit in force.
        max: u32,
    },
    /// The bytes where a frame should start are not the magic `VMCH`.
    #[error("no frame starts here: expected the magic \"VMCH\"")]
    BadMagic,
    /// A complete frame whose payload postcard cannot decode as the expected message, or that
    /// has bytes left over after it.
    #[error("malformed frame payload: {0}")]
    Malformed(String),
    /// The stream ended (see [`Decoder::finish`]) inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// The message could not be serialized (only a broken `Serialize` impl does that).
    #[error("message does not encode: {0}")]
    Encode(String),
}

/// Encodes `msg` as a whole frame (header and payload), refusing payloads over [`MAX_FRAME`].
pub fn encode<T: Serialize + ?Sized>(msg: &T) -> Result<Vec<u8>, FrameError> {
    encode_with_max(msg, MAX_FRAME)
}

/// Encodes `msg` as a whole frame, refusing payloads over `max_frame` (clamped to
/// [`MAX_FRAME`]): for a peer that announced a smaller limit in its `Hello`.
///
/// The payload size is computed before anything is allocated, so an oversized message costs
/// no copy.
pub fn encode_with_max<T: Serialize + ?Sized>(
    msg: &T,
    max_frame: u32,
) -> Result<Vec<u8>, FrameError> {
    let max = max_frame.min(MAX_FRAME);
    let size = postcard::serialize_with_flavor::<T, _, _>(msg, Counter(0))
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = match u32::try_from(size) {
        Ok(len) if len <= max => len,
        _ => {
            return Err(FrameError::TooLarge {
                size: u64::try_from(size).unwrap_or(u64::MAX),
                max,
            });
        }
    };
    let total = HEADER_LEN + size;
    let mut frame = Vec::with_capacity(total);
    frame.extend_from_slice(&MAGIC);
    frame.extend_from_slice(&len.to_le_bytes());
    let frame = postcard::to_extend(msg, frame).map_err(|e| FrameError::Encode(e.to_string()))?;
    if frame.len() != total {
        return Err(FrameError::Encode(String::from(
            "the message serialized to two different sizes",
        )));
    }
    Ok(frame)
}

/// A postcard flavor that only counts bytes.
struct Counter(usize);

impl postcard::ser_flavors::Flavor for Counter {
    type Output = usize;

    fn try_push(&mut self, _byte: u8) -> postcard::Result<()> {
        self.0 = self.0.saturating_add(1);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0 = self.0.saturating_add(data.len());
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.0)
    }
}

/// One event from a [`Decoder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A frame that decoded exactly into a message.
    Message(T),
    /// A run of bytes that had to be skipped. Reported once per run, just before the message
    /// that ends it (or by [`Decoder::finish`]).
    Garbage {
        /// Bytes dropped in the run.
        skipped: u64,
        /// Why the run started (the first problem found).
        reason: FrameError,
    },
}

/// Incremental frame decoder: [`push`](Decoder::push) bytes in as they come, in pieces of any
/// size, then take the events out with [`next`](Iterator::next) (a `Decoder` is an
/// [`Iterator`] that may yield more after a later push).
///
/// Resync rules:
/// - Bytes that do not start with the magic are skipped up to the next `VMCH`; a magic split
///   across pushes is kept until the rest arrives.
/// - A header announcing more than the limit is garbage at once (no waiting for the
///   payload): the decoder skips its first byte and scans on.
/// - A complete frame whose payload does not decode exactly is garbage too, and the scan
///   resumes one byte after its magic, so a real frame hidden behind a false header is still
///   found. Inside such a frame, a further frame that fails to decode is skipped whole, which
///   keeps the work linear in the input.
/// - Consecutive skipped bytes form one run, reported as one [`Decoded::Garbage`] just before
///   the next decoded message, or by [`finish`](Decoder::finish) at the end of the stream.
///
/// Memory: the internal buffer never exceeds [`HEADER_LEN`] + the frame limit, whatever is
/// pushed. Decoded events wait in a queue until taken: drain it after each push. A decoded
/// message itself can take several times its payload size (each element of a `Vec` of
/// structs is as big as the struct, however few bytes it took on the wire), so a side that
/// decodes untrusted input with little memory should lower the limit with
/// [`with_max_frame`](Decoder::with_max_frame).
#[derive(Debug)]
pub struct Decoder<T> {
    /// Bytes received and not yet consumed; starts at stream offset `base`.
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Largest payload accepted.
    max_frame: u32,
    /// Size (header included) of the frame at the start of `buf` that waits for its bytes;
    /// 0 when none.
    assembling: usize,
    /// The garbage run in progress: bytes skipped so far, and why it started.
    run: Option<(u64, FrameError)>,
    /// Stream offset where the last frame that failed to decode (from its first byte) ends.
    /// Frames starting before it that also fail are skipped whole.
    suspect_end: u64,
    /// Events not yet taken.
    events: VecDeque<Decoded<T>>,
    /// Total bytes of the frames decoded so far, headers included.
    frame_bytes: u64,
}

/// A decoder for what the guest sends: the host's side.
pub type ServerDecoder = Decoder<ServerMessage>;

/// A decoder for what the host sends: the guest's side.
pub type ClientDecoder = Decoder<ClientMessage>;

/// What the decoder does next with its buffer.
enum Step<T> {
    /// Nothing to do until more bytes come; `Some(total)` when a frame of `total` bytes
    /// (header included) is being assembled at the current position.
    Wait(Option<usize>),
    /// Skip that many bytes, for that reason.
    Skip(usize, FrameError),
    /// A frame of that many bytes (header included) decoded.
    Frame(usize, T),
    /// A complete frame of that many bytes failed to decode.
    Failed(usize, FrameError),
}

impl<T> Default for Decoder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Decoder<T> {
    /// A decoder with the protocol's limit, [`MAX_FRAME`].
    pub fn new() -> Self {
        Self::with_max_frame(MAX_FRAME)
    }

    /// A decoder that refuses payloads over `max_frame` bytes (clamped to [`MAX_FRAME`]). Its
    /// buffer never exceeds [`HEADER_LEN`] + `max_frame` bytes.
    pub fn with_max_frame(max_frame: u32) -> Self {
        Self {
            buf: Vec::new(),
            base: 0,
            max_frame: max_frame.min(MAX_FRAME),
            assembling: 0,
            run: None,
            suspect_end: 0,
            events: VecDeque::new(),
            frame_bytes: 0,
        }
    }

    /// The largest payload this decoder accepts.
    pub fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// Bytes held: an incomplete frame, or the start of a possible magic.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// End of the stream: whatever is buffered (an incomplete frame) joins the garbage run in
    /// progress, the run is reported as one [`Decoded::Garbage`] event (after the events
    /// already waiting), and the decoder is ready for a new stream.
    pub fn finish(&mut self) {
        let left = self.buf.len();
        if left > 0 {
            self.skip(left, FrameError::Truncated);
        }
        self.end_run();
        self.buf = Vec::new();
        self.assembling = 0;
        self.base = 0;
        self.suspect_end = 0;
    }

    /// Drops everything (buffered bytes, the garbage run, events not yet taken) without
    /// reporting it: for a new connection. The limit is kept.
    pub fn reset(&mut self) {
        *self = Self::with_max_frame(self.max_frame);
    }

    /// Most bytes the buffer may hold: one whole frame.
    fn limit(&self) -> usize {
        HEADER_LEN.saturating_add(usize::try_from(self.max_frame).unwrap_or(usize::MAX))
    }

    /// Adds `n` skipped bytes to the garbage run, starting one if none is in progress.
    fn skip(&mut self, n: usize, reason: FrameError) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.run = match self.run.take() {
            Some((skipped, first)) => Some((skipped.saturating_add(n), first)),
            None => Some((n, reason)),
        };
    }

    /// Reports the garbage run in progress, if any.
    fn end_run(&mut self) {
        if let Some((skipped, reason)) = self.run.take() {
            self.events.push_back(Decoded::Garbage { skipped, reason });
        }
    }

    /// Makes room for `additional` more bytes, doubling the capacity but never past the frame
    /// being assembled (or one whole frame): a false header costs no memory until its bytes
    /// come.
    fn grow(&mut self, additional: usize) {
        let len = self.buf.len();
        let needed = len.saturating_add(additional);
        if self.buf.capacity() >= needed {
            return;
        }
        let ceiling = if self.assembling > 0 {
            self.assembling
        } else {
            self.limit()
        };
        let doubled = self.buf.capacity().saturating_mul(2).min(ceiling);
        let target = needed.max(doubled);
        self.buf.reserve_exact(target - len);
    }
}

impl<T: DeserializeOwned> Decoder<T> {
    /// Changes the largest payload accepted (clamped to [`MAX_FRAME`]) from here on, as the
    /// end of a handshake does ([`HANDSHAKE_MAX_FRAME`]). What is buffered is decided again
    /// under the new limit; events already waiting stay as they were decided.
    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.max_frame = max_frame.min(MAX_FRAME);
        self.process();
    }

    /// Feeds bytes from the stream; the events they complete can then be taken with
    /// [`next`](Iterator::next). Any piece size works, from one byte to the whole stream.
    pub fn push(&mut self, mut bytes: &[u8]) {
        let limit = self.limit();
        while !bytes.is_empty() {
            // After `process` the buffer holds less than one frame, so there is room.
            let room = limit.saturating_sub(self.buf.len()).max(1);
            let take = room.min(CHUNK).min(bytes.len());
            let (now, rest) = bytes.split_at_checked(take).unwrap_or((bytes, &[]));
            self.grow(now.len());
            self.buf.extend_from_slice(now);
            bytes = rest;
            self.process();
        }
    }

    /// Consumes what the buffer holds: skips garbage, decodes complete frames, and keeps only
    /// an incomplete frame (or the start of a possible magic).
    fn process(&mut self) {
        let mut pos = 0usize;
        self.assembling = loop {
            match self.step(pos) {
                Step::Wait(total) => break total.unwrap_or(0),
                Step::Skip(n, reason) => {
                    self.skip(n, reason);
                    pos += n;
                }
                Step::Frame(total, msg) => {
                    self.end_run();
                    self.events.push_back(Decoded::Message(msg));
                    self.frame_bytes = self
                        .frame_bytes
                        .saturating_add(u64::try_from(total).unwrap_or(u64::MAX));
                    pos += total;
                }
                Step::Failed(total, reason) => {
                    let at = self.offset(pos);
                    if at < self.suspect_end {
                        // Inside a frame that already failed: skip this one whole.
                        self.skip(total, reason);
                        pos += total;
                    } else {
                        // Maybe a false header: rescan from the byte after its magic's start.
                        let total64 = u64::try_from(total).unwrap_or(u64::MAX);
                        self.suspect_end = at.saturating_add(total64);
                        self.skip(1, reason);
                        pos += 1;
                    }
                }
            }
        };
        let consumed = pos.min(self.buf.len());
        self.buf.drain(..consumed);
        self.base = self.offset(consumed);

        // Give back what a past big frame left.
        let keep = self.assembling.max(self.buf.len()).max(CHUNK + HEADER_LEN);
        if self.buf.capacity() > keep.saturating_mul(2) {
            self.buf.shrink_to(keep);
        }
    }

    /// Stream offset of buffer position `pos`.
    fn offset(&self, pos: usize) -> u64 {
        self.base
            .saturating_add(u64::try_from(pos).unwrap_or(u64::MAX))
    }

    /// Decides what to do with the bytes at buffer position `pos`.
    fn step(&self, pos: usize) -> Step<T> {
        let avail = self.buf.get(pos..).unwrap_or_default();
        if avail.is_empty() {
            return Step::Wait(None);
        }
        let at = find_candidate(avail);
        if at > 0 {
            return Step::Skip(at, FrameError::BadMagic);
        }
        // `avail` starts with the magic, or with the start of it and nothing after.
        let Some(&[_, _, _, _, l0, l1, l2, l3]) = avail.get(..HEADER_LEN) else {
            return Step::Wait(None);
        };
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        if len > self.max_frame {
            let reason = FrameError::TooLarge {
                size: u64::from(len),
                max: self.max_frame,
            };
            return Step::Skip(1, reason);
        }
        let total = HEADER_LEN.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        let Some(payload) = avail.get(HEADER_LEN..total) else {
            return Step::Wait(Some(total));
        };
        match postcard::take_from_bytes::<T>(payload) {
            Ok((msg, [])) => Step::Frame(total, msg),
            Ok((_, rest)) => Step::Failed(
                total,
                FrameError::Malformed(format!("{} trailing bytes after the message", rest.len())),
            ),
            Err(e) => Step::Failed(total, FrameError::Malformed(e.to_string())),
        }
    }
}

/// Index of the first position of `hay` where the magic starts, or where a start of the magic
/// runs to the end of `hay`; `hay.len()` if there is none.
fn find_candidate(hay: &[u8]) -> usize {
    let [first, ..] = MAGIC;
    let mut from = 0;
    while let Some(rest) = hay.get(from..) {
        let Some(off) = rest.iter().position(|&b| b == first) else {
            break;
        };
        let candidate = rest.get(off..).unwrap_or_default();
        let n = candidate.len().min(MAGIC.len());
        if candidate.get(..n) == MAGIC.get(..n) {
            return from + off;
        }
        from += off + 1;
    }
    hay.len()
}

impl<T> Iterator for Decoder<T> {
    type Item = Decoded<T>;

    /// The next event, if the bytes pushed so far complete one.
    fn next(&mut self) -> Option<Decoded<T>> {
        self.events.pop_front()
    }
}

/// The body of the cargo-fuzz target `proto/fuzz` (`fuzz_targets/decoder.rs`), also run over
/// pseudo-random inputs by a unit test so that `cargo test` exercises it.
pub mod fuzz {
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
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;
    use crate::messages::{
        Error, ErrorKind, Hello, MAX_READ, PROTOCOL_VERSION, Reply, Request, caps,
    };
    use crate::types::{
        Application, DeviceInfo, DirEntry, FileKind, FilesystemInfo, OsInfo, PartitionInfo, Stat,
        Target, Usage,
    };

    /// A small xorshift64* generator: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn fill(&mut self, out: &mut [u8]) {
            for chunk in out.chunks_mut(8) {
                let word = self.next().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            let mut v = vec![0; n];
            self.fill(&mut v);
            v
        }
    }

    fn hello() -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            capabilities: caps::ALL,
            max_frame: MAX_FRAME,
            software: "vmchannel-test 0.1".to_string(),
        }
    }

    fn stat() -> Stat {
        Stat {
            kind: FileKind::Symlink,
            size: 11,
            mode: 0o120777,
            uid: 0,
            gid: 1000,
            mtime: -86_400,
            link_target: Some("/usr/bin/x".to_string()),
        }
    }

    fn requests() -> Vec<Request> {
        let t = || Target::Os("/dev/sda2".to_string());
        let p = || "/etc/hostname".to_string();
        vec![
            Request::ListDevices,
            Request::ListFilesystems,
            Request::Inspect { applications: true },
            Request::ReadDir {
                target: Target::Device("/dev/sdb1".to_string()),
                path: p(),
            },
            Request::Stat {
                target: t(),
                path: p(),
                follow: true,
            },
            Request::Read {
                target: t(),
                path: p(),
                offset: u64::MAX,
                len: MAX_READ,
            },
            Request::Download {
                target: t(),
                path: p(),
            },
            Request::Checksum {
                target: t(),
                path: p(),
            },
            Request::Usage {
                target: t(),
                path: "/".to_string(),
            },
        ]
    }

    fn replies() -> Vec<Reply> {
        let fs = FilesystemInfo {
            device: "/dev/sda1".to_string(),
            fstype: "ext4".to_string(),
            label: Some("root".to_string()),
            uuid: None,
        };
        let os = OsInfo {
            root: "/dev/sda1".to_string(),
            os_type: "linux".to_string(),
            distro: Some("debian".to_string()),
            major_version: 12,
            mountpoints: vec![("/dev/sda1".to_string(), "/".to_string())],
            filesystems: vec![fs.clone()],
            applications: vec![Application {
                name: "bash".to_string(),
                epoch: 1,
                version: "5.2".to_string(),
                ..Application::default()
            }],
            ..OsInfo::default()
        };
        vec![
            Reply::Devices(vec![
                DeviceInfo {
                    name: "/dev/sda".to_string(),
                    size: 1 << 30,
                    partition: None,
                    table: Some("gpt".to_string()),
                },
                DeviceInfo {
                    name: "/dev/sda1".to_string(),
                    size: 1 << 29,
                    partition: Some(PartitionInfo {
                        number: 1,
                        start: 1 << 20,
                        type_id: "0FC63DAF-8483-4772-8E79-3D69D8477DE4".to_string(),
                        partuuid: None,
                        partlabel: Some("root".to_string()),
                    }),
                    table: None,
                },
            ]),
            Reply::Filesystems(vec![fs]),
            Reply::Inspection(vec![os]),
            Reply::Entries(vec![DirEntry {
                name: "x".to_string(),
                stat: stat(),
            }]),
            Reply::Stat(stat()),
            Reply::Data((0..=255).collect()),
            Reply::Downloaded {
                size: 300_000,
                sha256: [0xab; 32],
            },
            Reply::Checksum([7; 32]),
            Reply::Usage(Usage {
                block_size: 4096,
                blocks: 1000,
                blocks_free: 10,
                blocks_available: 5,
                inodes: 100,
                inodes_free: 0,
            }),
        ]
    }

    fn error_kinds() -> Vec<ErrorKind> {
        vec![
            ErrorKind::NotFound,
            ErrorKind::NotADirectory,
            ErrorKind::IsADirectory,
            ErrorKind::Corrupt,
            ErrorKind::Unsupported,
            ErrorKind::TooLarge,
            ErrorKind::BadRequest,
            ErrorKind::Cancelled,
            ErrorKind::Io,
        ]
    }

    fn client_samples() -> Vec<ClientMessage> {
        let mut v = vec![ClientMessage::Hello(hello())];
        for (id, request) in (1..).zip(requests()) {
            v.push(ClientMessage::Request { id, request });
        }
        v.push(ClientMessage::Cancel { id: u32::MAX });
        v.push(ClientMessage::Sync {
            nonce: 0x0123_4567_89ab_cdef,
        });
        v
    }

    fn server_samples() -> Vec<ServerMessage> {
        let mut v = vec![ServerMessage::Hello(hello())];
        for (id, reply) in (1..).zip(replies()) {
            v.push(ServerMessage::Response {
                id,
                result: Ok(reply),
            });
        }
        for (id, kind) in (100..).zip(error_kinds()) {
            let message = "it went wrong".to_string();
            v.push(ServerMessage::Response {
                id,
                result: Err(Error { kind, message }),
            });
        }
        v.push(ServerMessage::Chunk {
            id: 3,
            offset: 65536,
            data: vec![1, 2, 3],
        });
        v.push(ServerMessage::Progress {
            id: 3,
            done: 65539,
            total: 1 << 40,
        });
        v.push(ServerMessage::Synced { nonce: 42 });
        v.push(ServerMessage::Garbage {
            skipped: 17,
            message: "bad magic".to_string(),
        });
        v
    }

    fn drain<T>(dec: &mut Decoder<T>) -> Vec<Decoded<T>> {
        dec.by_ref().collect()
    }

    fn messages<T>(msgs: &[T]) -> Vec<Decoded<T>>
    where
        T: Clone,
    {
        msgs.iter().cloned().map(Decoded::Message).collect()
    }

    fn stream<T: Serialize>(msgs: &[T]) -> Vec<u8> {
        msgs.iter().flat_map(|m| encode(m).unwrap()).collect()
    }

    #[test]
    fn frame_layout() {
        let frame = encode(&ClientMessage::Cancel { id: 5 }).unwrap();
        assert_eq!(frame, b"VMCH\x02\x00\x00\x00\x02\x05");
    }

    #[test]
    fn round_trip_every_variant() {
        let clients = client_samples();
        let servers = server_samples();
        assert_eq!(clients.len(), 1 + 9 + 2);
        assert_eq!(servers.len(), 1 + 9 + 9 + 4);
        for msg in &clients {
            let mut dec = ClientDecoder::new();
            dec.push(&encode(msg).unwrap());
            assert_eq!(drain(&mut dec), vec![Decoded::Message(msg.clone())]);
            assert_eq!(dec.buffered(), 0);
        }
        for msg in &servers {
            let mut dec = ServerDecoder::new();
            dec.push(&encode(msg).unwrap());
            assert_eq!(drain(&mut dec), vec![Decoded::Message(msg.clone())]);
        }
        // And all in one stream.
        let mut dec = ServerDecoder::new();
        dec.push(&stream(&servers));
        assert_eq!(drain(&mut dec), messages(&servers));
    }

    #[test]
    fn one_byte_at_a_time() {
        let msgs = server_samples();
        let bytes = stream(&msgs);
        let mut dec = ServerDecoder::new();
        let mut events = Vec::new();
        for b in &bytes {
            dec.push(core::slice::from_ref(b));
            events.extend(dec.by_ref());
        }
        assert_eq!(events, messages(&msgs));
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn random_splits() {
        let msgs = client_samples();
        let bytes = stream(&msgs);
        let mut rng = Rng(0x1234_5678);
        for _ in 0..200 {
            let mut dec = ClientDecoder::new();
            let mut rest = &bytes[..];
            let mut events = Vec::new();
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(40));
                let (piece, r) = rest.split_at(n);
                dec.push(piece);
                events.extend(dec.by_ref());
                rest = r;
            }
            assert_eq!(events, messages(&msgs));
        }
    }

    #[test]
    fn garbage_before_between_after() {
        let a = ClientMessage::Sync { nonce: 1 };
        let b = ClientMessage::Cancel { id: 2 };
        let mut bytes = b"hello there".to_vec(); // 11 bytes before
        bytes.extend(encode(&a).unwrap());
        bytes.extend(b"VM\x00garbage VMC VMCHx"); // 20 bytes between, with false magics
        bytes.extend(encode(&b).unwrap());
        bytes.extend(b"trailing junk"); // 13 bytes after

        for piece in [1, 3, 7, bytes.len()] {
            let mut dec = ClientDecoder::new();
            let mut events = Vec::new();
            for chunk in bytes.chunks(piece) {
                dec.push(chunk);
                events.extend(dec.by_ref());
            }
            assert_eq!(
                events,
                vec![
                    Decoded::Garbage {
                        skipped: 11,
                        reason: FrameError::BadMagic
                    },
                    Decoded::Message(a.clone()),
                    Decoded::Garbage {
                        skipped: 20,
                        reason: FrameError::BadMagic
                    },
                    Decoded::Message(b.clone()),
                ],
                "pieces of {piece}"
            );
            // The trailing run is reported at the end of the stream, once.
            dec.finish();
            assert_eq!(
                drain(&mut dec),
                vec![Decoded::Garbage {
                    skipped: 13,
                    reason: FrameError::BadMagic
                }]
            );
            dec.finish();
            assert_eq!(drain(&mut dec), vec![]);
        }
    }

    #[test]
    fn magic_split_across_pushes() {
        let msg = ClientMessage::Sync { nonce: 7 };
        let frame = encode(&msg).unwrap();
        let mut dec = ClientDecoder::new();
        dec.push(b"xxV");
        dec.push(b"M");
        dec.push(&frame[2..3]);
        assert_eq!(dec.next(), None);
        assert_eq!(dec.buffered(), 3);
        dec.push(&frame[3..]);
        assert_eq!(
            drain(&mut dec),
            vec![
                Decoded::Garbage {
                    skipped: 2,
                    reason: FrameError::BadMagic
                },
                Decoded::Message(msg),
            ]
        );
    }

    #[test]
    fn oversized_length_is_not_waited_for() {
        let msg = ClientMessage::Cancel { id: 9 };
        let mut dec = ClientDecoder::new();
        // A header announcing 4 GiB - 1.
        dec.push(b"VMCH\xff\xff\xff\xff");
        // Decided at once: nothing is held for it but a possible magic start (none here).
        assert_eq!(dec.buffered(), 0);
        assert_eq!(
            dec.run,
            Some((
                8,
                FrameError::TooLarge {
                    size: u64::from(u32::MAX),
                    max: MAX_FRAME
                }
            ))
        );
        dec.push(&encode(&msg).unwrap());
        assert_eq!(
            drain(&mut dec),
            vec![
                Decoded::Garbage {
                    skipped: 8,
                    reason: FrameError::TooLarge {
                        size: 0xffff_ffff,
                        max: MAX_FRAME
                    }
                },
                Decoded::Message(msg.clone()),
            ]
        );
        // Without a following frame, `finish` reports it.
        dec.push(b"VMCH\x01\x00\x40\x00"); // MAX_FRAME + 1
        dec.finish();
        assert_eq!(
            drain(&mut dec),
            vec![Decoded::Garbage {
                skipped: 8,
                reason: FrameError::TooLarge {
                    size: u64::from(MAX_FRAME) + 1,
                    max: MAX_FRAME
                }
            }]
        );
        // Exactly MAX_FRAME is allowed: the decoder waits for it.
        dec.push(b"VMCH\x00\x00\x40\x00");
        assert_eq!(dec.next(), None);
        assert_eq!(dec.run, None);
        // And memory comes with the bytes, not with the announced length.
        dec.push(&[0; 1000]);
        assert_eq!(dec.next(), None);
        assert!(dec.buf.capacity() < 2048, "{}", dec.buf.capacity());
    }

    #[test]
    fn false_magic_with_absurd_length_inside_garbage() {
        let msg = ClientMessage::Sync { nonce: 3 };
        let mut bytes = b"junk VMCH\xff\xff\xff\x7f more junk VMCH\x00\x00\x00\x10!".to_vec();
        let garbage = bytes.len() as u64;
        bytes.extend(encode(&msg).unwrap());
        let mut dec = ClientDecoder::new();
        dec.push(&bytes);
        assert_eq!(
            drain(&mut dec),
            vec![
                Decoded::Garbage {
                    skipped: garbage,
                    reason: FrameError::BadMagic
                },
                Decoded::Message(msg)
            ]
        );
    }

    #[test]
    fn smaller_limit() {
        let mut dec = ServerDecoder::with_max_frame(16);
        assert_eq!(dec.max_frame(), 16);
        let small = ServerMessage::Synced { nonce: 1 };
        let big = ServerMessage::Chunk {
            id: 1,
            offset: 0,
            data: vec![0; 100],
        };
        let big_frame = encode(&big).unwrap();
        dec.push(&big_frame);
        dec.push(&encode(&small).unwrap());
        assert_eq!(
            drain(&mut dec),
            vec![
                Decoded::Garbage {
                    skipped: big_frame.len() as u64,
                    reason: FrameError::TooLarge { size: 104, max: 16 }
                },
                Decoded::Message(small),
            ]
        );
        assert!(dec.buf.capacity() <= HEADER_LEN + 16);
        assert_eq!(
            ServerDecoder::with_max_frame(u32::MAX).max_frame(),
            MAX_FRAME
        );
    }

    #[test]
    fn junk_payload_behind_a_valid_header() {
        let a = ClientMessage::Sync { nonce: 1 };
        let b = ClientMessage::Sync { nonce: 2 };
        let mut junk = b"VMCH\x05\x00\x00\x00".to_vec();
        junk.extend([0xff, 1, 2, 3, 4]); // variant index 0xff... is not a varint end
        let mut bytes = encode(&a).unwrap();
        bytes.extend(&junk);
        bytes.extend(encode(&b).unwrap());
        let mut dec = ClientDecoder::new();
        dec.push(&bytes);
        let events = drain(&mut dec);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0], Decoded::Message(a));
        let Decoded::Garbage {
            skipped,
            reason: FrameError::Malformed(_),
        } = &events[1]
        else {
            panic!("{events:?}")
        };
        assert_eq!(*skipped, junk.len() as u64);
        assert_eq!(events[2], Decoded::Message(b));
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        // Cancel{id: 5} is 2 bytes; announce 3 and add one.
        let mut dec = ClientDecoder::new();
        dec.push(b"VMCH\x03\x00\x00\x00\x02\x05\x00");
        dec.finish();
        assert_eq!(
            drain(&mut dec),
            vec![Decoded::Garbage {
                skipped: 11,
                reason: FrameError::Malformed("1 trailing bytes after the message".to_string())
            }]
        );
        // An empty payload is no message either.
        dec.push(b"VMCH\x00\x00\x00\x00");
        dec.finish();
        assert!(matches!(
            drain(&mut dec)[..],
            [Decoded::Garbage {
                skipped: 8,
                reason: FrameError::Malformed(_)
            }]
        ));
    }

    #[test]
    fn real_frame_hidden_behind_a_false_header() {
        // A false header announcing 30 bytes, and a real frame inside those 30 bytes.
        let msg = ClientMessage::Cancel { id: 77 };
        let frame = encode(&msg).unwrap();
        let mut bytes = b"VMCH\x1e\x00\x00\x00".to_vec();
        bytes.extend(&frame);
        bytes.resize(8 + 30, b'.');
        let mut dec = ClientDecoder::new();
        dec.push(&bytes);
        // Only the false header's 30 bytes complete it: nothing yet after 8 + frame.
        dec.finish();
        let events = drain(&mut dec);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(
            events[0],
            Decoded::Garbage {
                skipped: 8,
                reason: FrameError::Malformed(_)
            }
        ));
        assert_eq!(events[1], Decoded::Message(msg));
        assert!(matches!(events[2], Decoded::Garbage { skipped: 20, .. }));
    }

    #[test]
    fn truncated_stream_waits() {
        let msg = ServerMessage::Chunk {
            id: 1,
            offset: 0,
            data: vec![9; 1000],
        };
        let frame = encode(&msg).unwrap();
        let mut dec = ServerDecoder::new();
        for cut in [1, 4, 7, 8, 9, frame.len() - 1] {
            dec.reset();
            dec.push(&frame[..cut]);
            assert_eq!(dec.next(), None, "cut at {cut}");
            assert_eq!(dec.run, None, "cut at {cut}");
            assert_eq!(dec.buffered(), cut);
        }
        dec.push(&frame[frame.len() - 1..]);
        assert_eq!(drain(&mut dec), vec![Decoded::Message(msg)]);
        // At the end of the stream an incomplete frame is reported as truncated.
        dec.push(&frame[..100]);
        dec.finish();
        assert_eq!(
            drain(&mut dec),
            vec![Decoded::Garbage {
                skipped: 100,
                reason: FrameError::Truncated
            }]
        );
    }

    #[test]
    fn big_frame_in_pieces() {
        let data: Vec<u8> = Rng(5).bytes(MAX_FRAME as usize - 16);
        let msg = ServerMessage::Chunk {
            id: 1,
            offset: 0,
            data,
        };
        let frame = encode(&msg).unwrap();
        assert!(frame.len() <= HEADER_LEN + MAX_FRAME as usize);
        let mut dec = ServerDecoder::new();
        let mut events = Vec::new();
        for piece in frame.chunks(10_000) {
            dec.push(piece);
            assert!(dec.buf.capacity() <= HEADER_LEN + MAX_FRAME as usize);
            events.extend(dec.by_ref());
        }
        assert_eq!(events, vec![Decoded::Message(msg)]);
        // The big buffer is given back.
        dec.push(&encode(&ServerMessage::Synced { nonce: 0 }).unwrap());
        assert!(dec.buf.capacity() <= 2 * (CHUNK + HEADER_LEN));
    }

    #[test]
    fn encode_refuses_too_large() {
        let data = vec![0u8; MAX_FRAME as usize];
        let msg = ServerMessage::Chunk {
            id: 1,
            offset: 0,
            data,
        };
        // 1 (variant) + 1 (id) + 1 (offset) + 4 (length varint) + data.
        let size = u64::from(MAX_FRAME) + 7;
        assert_eq!(
            encode(&msg),
            Err(FrameError::TooLarge {
                size,
                max: MAX_FRAME
            })
        );
        let small = ServerMessage::Chunk {
            id: 1,
            offset: 0,
            data: vec![0; 100],
        };
        assert_eq!(
            encode_with_max(&small, 64),
            Err(FrameError::TooLarge { size: 104, max: 64 })
        );
        assert!(encode_with_max(&small, 104).is_ok());
        assert_eq!(
            FrameError::TooLarge {
                size,
                max: MAX_FRAME
            }
            .to_string(),
            "frame payload of 4194311 bytes exceeds the limit of 4194304 bytes"
        );
    }

    #[test]
    fn random_bytes_keep_memory_bounded() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut dec = ServerDecoder::new();
        let mut block = vec![0u8; 1 << 20];
        let mut events = 0usize;
        let mut peak = 0;
        for i in 0..50 {
            rng.fill(&mut block);
            // Vary the piece sizes: one big push, then many small ones.
            if i % 2 == 0 {
                dec.push(&block);
            } else {
                for piece in block.chunks(1 + rng.below(5000)) {
                    dec.push(piece);
                }
            }
            peak = peak.max(dec.buf.capacity());
            events += dec.by_ref().count();
        }
        assert!(peak <= HEADER_LEN + MAX_FRAME as usize, "peak {peak}");
        dec.finish();
        events += dec.by_ref().count();
        assert!(events >= 1);
    }

    #[test]
    fn random_bytes_with_a_small_limit() {
        // With a small limit, false headers are rarely waited for long and memory stays tiny.
        let mut rng = Rng(77);
        let mut dec = ClientDecoder::with_max_frame(4096);
        let msg = ClientMessage::Sync { nonce: 5 };
        for _ in 0..200 {
            let n = rng.below(20_000);
            let junk = rng.bytes(n);
            dec.push(&junk);
            // A run of 4 KiB + 8 zero-free bytes flushes any false header waiting.
            dec.push(&[b'.'; 4200]);
            dec.push(&encode(&msg).unwrap());
            let events = drain(&mut dec);
            assert!(dec.buf.capacity() <= HEADER_LEN + 4096);
            assert_eq!(
                events.last(),
                Some(&Decoded::Message(msg.clone())),
                "{events:?}"
            );
        }
    }

    #[test]
    fn nested_failures_stay_linear() {
        // A hostile stream: false headers each announcing a long payload that begins like a
        // Chunk and contains the next false header. Decoding each would be quadratic.
        let mut bytes = Vec::new();
        for _ in 0..20_000 {
            bytes.extend(b"VMCH\x01\x00\x04\x00\x02\x01\x00\xfa\xff\x0f");
        }
        bytes.resize(bytes.len() + (300 << 10), b'.');
        let mut dec = ServerDecoder::new();
        dec.push(&bytes);
        dec.finish();
        let events = drain(&mut dec);
        assert!(
            matches!(events[..], [Decoded::Garbage { .. }]),
            "{events:?}"
        );
        assert_eq!(skipped_total(&events), bytes.len() as u64);
    }

    fn skipped_total<T>(events: &[Decoded<T>]) -> u64 {
        events
            .iter()
            .map(|e| {
                if let Decoded::Garbage { skipped, .. } = e {
                    *skipped
                } else {
                    0
                }
            })
            .sum()
    }

    #[test]
    fn reset_drops_everything() {
        let mut dec = ClientDecoder::with_max_frame(100);
        dec.push(b"junk");
        dec.push(&encode(&ClientMessage::Cancel { id: 1 }).unwrap());
        dec.push(b"VMCH\x01");
        dec.reset();
        assert_eq!(dec.next(), None);
        assert_eq!(dec.buffered(), 0);
        assert_eq!(dec.max_frame(), 100);
        dec.finish();
        assert_eq!(dec.next(), None);
    }

    /// Inputs for the fuzz body: valid streams, garbage, and mutations of both.
    fn fuzz_input(rng: &mut Rng, clients: &[Vec<u8>], servers: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![rng.next() as u8];
        for _ in 0..rng.below(8) {
            match rng.below(6) {
                0 => {
                    let n = rng.below(64);
                    out.extend(rng.bytes(n));
                }
                1 | 2 => out.extend(&clients[rng.below(clients.len())]),
                3 | 4 => out.extend(&servers[rng.below(servers.len())]),
                _ => {
                    // A header with a random (often plausible) length.
                    out.extend(MAGIC);
                    out.extend((rng.below(300) as u32).to_le_bytes());
                }
            }
        }
        for _ in 0..rng.below(4) {
            if out.len() > 1 {
                let i = 1 + rng.below(out.len() - 1);
                match rng.below(3) {
                    0 => out[i] ^= 1 << rng.below(8),
                    1 => out[i] = rng.next() as u8,
                    _ => out.truncate(i),
                }
            }
        }
        out
    }

    #[test]
    fn fuzz_body_over_pseudo_random_inputs() {
        let clients: Vec<Vec<u8>> = client_samples()
            .iter()
            .map(|m| encode(m).unwrap())
            .collect();
        let servers: Vec<Vec<u8>> = server_samples()
            .iter()
            .map(|m| encode(m).unwrap())
            .collect();
        let mut rng = Rng(0xdead_beef);
        for _ in 0..4000 {
            let input = fuzz_input(&mut rng, &clients, &servers);
            fuzz::decoder(&input);
        }
        fuzz::decoder(&[]);
        fuzz::decoder(&[0]);
        fuzz::decoder(b"\x01VMCH\xff\xff\xff\xff");
    }

    /// Whatever an earlier session left in the stream (a frame cut after any of its bytes,
    /// whole frames, a forged header announcing up to the handshake limit), a receiver
    /// decoding under [`HANDSHAKE_MAX_FRAME`] finds the frame that follows the preamble.
    #[test]
    fn the_preamble_ends_any_leftover_of_an_earlier_session() {
        let greeting = ServerMessage::Hello(hello());
        let new_session = [&PREAMBLE[..], &encode(&greeting).unwrap()].concat();
        let chunk = encode(&ServerMessage::Chunk {
            id: 7,
            offset: 0,
            data: vec![0x56; 3000],
        })
        .unwrap();
        let small = encode(&ServerMessage::Synced { nonce: 1 }).unwrap();
        let mut rng = Rng(0x1234_5678);
        let mut leftovers: Vec<Vec<u8>> = Vec::new();
        for cut in 0..=chunk.len() {
            leftovers.push([&small[..], &chunk[..cut]].concat());
        }
        for cut in 0..=small.len() {
            leftovers.push(small[..cut].to_vec());
        }
        // Forged headers at the end of random bytes, announcing every size up to the limit,
        // and a header split after each of its bytes.
        for len in (0..=HANDSHAKE_MAX_FRAME).step_by(7) {
            let n = rng.below(50);
            let mut v = rng.bytes(n);
            v.extend_from_slice(&MAGIC);
            v.extend_from_slice(&len.to_le_bytes());
            let keep = v.len() - rng.below(HEADER_LEN);
            v.truncate(keep);
            leftovers.push(v);
        }
        for old in &leftovers {
            let stream = [&old[..], &new_session[..]].concat();
            let mut d = ServerDecoder::with_max_frame(HANDSHAKE_MAX_FRAME);
            d.push(&stream);
            let found = d.any(|e| e == Decoded::Message(greeting.clone()));
            assert!(
                found,
                "the greeting was swallowed after {} leftover bytes",
                old.len()
            );
        }
        // Without the handshake limit, a cut chunk swallows the greeting: the reason for it.
        let stream = [&chunk[..20], &new_session[..]].concat();
        let mut d = ServerDecoder::new();
        d.push(&stream);
        assert!(d.next().is_none());
    }

    #[test]
    fn raising_the_limit_keeps_what_is_buffered() {
        let big = encode(&ServerMessage::Chunk {
            id: 1,
            offset: 0,
            data: vec![1; 5000],
        })
        .unwrap();
        let mut d = ServerDecoder::with_max_frame(HANDSHAKE_MAX_FRAME);
        d.push(&encode(&ServerMessage::Synced { nonce: 9 }).unwrap());
        assert!(matches!(
            d.next(),
            Some(Decoded::Message(ServerMessage::Synced { nonce: 9 }))
        ));
        d.set_max_frame(MAX_FRAME);
        d.push(&big[..100]);
        d.push(&big[100..]);
        assert!(matches!(
            d.next(),
            Some(Decoded::Message(ServerMessage::Chunk { id: 1, .. }))
        ));
        // Lowering it decides a waiting header again.
        d.push(&big[..100]);
        d.set_max_frame(HANDSHAKE_MAX_FRAME);
        assert_eq!(d.buffered(), 0);
    }
}

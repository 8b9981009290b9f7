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

pub mod fuzz;

#[cfg(test)]
mod tests;

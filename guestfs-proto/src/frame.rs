//! Framing: what goes on the `org.libguestfs.channel.0` byte stream.
//!
//! - The appliance's first 4 bytes are [`LAUNCH_FLAG`] (big-endian, no length word).
//! - A message is a 4-byte big-endian length (at most [`MESSAGE_MAX`]) and that many bytes of
//!   XDR: a [`Header`] and then the procedure's arguments (a call), its return value (an OK
//!   reply) or a [`MessageError`] (an error reply).
//! - A FileOut procedure (download, ls0, ...) sends its OK reply, then a stream of framed
//!   [`Chunk`]s ending with an empty one; FileIn (upload) is the same stream from the host,
//!   before the reply.
//! - In place of a length word the host may send [`CANCEL_FLAG`] (during a FileOut: stop
//!   sending); the appliance may send [`CANCEL_FLAG`] (during a FileIn) or [`PROGRESS_FLAG`]
//!   followed by a 24-byte [`Progress`] without a length word.
//!
//! [`FrameDecoder`] turns stream bytes into [`Event`]s incrementally, for either side.
//!
//! A FileOut answer, as the daemon sends it: errors found before any data go out as an
//! ordinary error reply; otherwise the OK reply, then data chunks of at most
//! [`MAX_CHUNK_SIZE`] bytes, then `encode_chunk(false, &[])`. After the OK reply there is no way
//! to report an error: a failure mid-stream ends the stream with `encode_chunk(true, &[])`
//! (the library reports the transfer as cancelled). When the host sends [`CANCEL_FLAG`] during
//! the stream, the daemon's next chunk is that cancel chunk and it stops sending. A
//! [`CANCEL_FLAG`] arriving between calls is ignored.

use alloc::vec::Vec;

use crate::xdr::{Bytes, Decoder, Encoder, XdrError};

/// `GUESTFS_PROGRAM`, the header's `prog`.
pub const PROGRAM: u32 = 0x2000_F5F5;
/// `GUESTFS_PROTOCOL_VERSION`, the header's `vers`.
pub const PROTOCOL_VERSION: u32 = 4;
/// The appliance's first word on the channel: the daemon is up.
pub const LAUNCH_FLAG: u32 = 0xf5f5_5ff5;
/// Sent in place of a length word to cancel a file transfer.
pub const CANCEL_FLAG: u32 = 0xffff_eeee;
/// Sent by the appliance in place of a length word, followed by a [`Progress`].
pub const PROGRESS_FLAG: u32 = 0xffff_5555;
/// `GUESTFS_MESSAGE_MAX`: the largest message (after the length word).
pub const MESSAGE_MAX: u32 = 4 * 1024 * 1024;
/// `GUESTFS_ERROR_LEN`: bound of an error message.
pub const ERROR_LEN: u32 = 64 * 1024;
/// Bound of an error's errno string.
pub const ERRNO_LEN: u32 = 32;
/// `GUESTFS_MAX_CHUNK_SIZE`: bound of a file-transfer chunk's data.
pub const MAX_CHUNK_SIZE: u32 = 8192;
/// Encoded size of a [`Header`].
pub const HEADER_LEN: usize = 40;
/// Encoded size of a [`Progress`] (after its flag word).
pub const PROGRESS_LEN: usize = 24;

/// `direction`: a call, host to appliance.
pub const DIRECTION_CALL: u32 = 0;
/// `direction`: a reply, appliance to host.
pub const DIRECTION_REPLY: u32 = 1;
/// `status`: success.
pub const STATUS_OK: u32 = 0;
/// `status`: an error body follows.
pub const STATUS_ERROR: u32 = 1;

/// What went wrong on the stream. Every variant is fatal for the stream: libguestfs's daemon
/// exits on a bad length or an undecodable header; an appliance should reset the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length word above [`MESSAGE_MAX`] (the daemon: "incoming message is too long").
    #[error("incoming message is too long ({0} bytes)")]
    TooLong(u32),
    /// A message shorter than a header or with a malformed one (the daemon: "could not decode
    /// message header", then exits).
    #[error("could not decode message header: {0}")]
    Header(XdrError),
    /// A file-transfer chunk that does not decode.
    #[error("could not decode file chunk: {0}")]
    Chunk(XdrError),
    /// A chunk whose `cancel` is neither 0 nor 1: the stream is out of sync.
    #[error("chunk cancel field {0} is neither 0 nor 1: lost synchronization")]
    ChunkCancel(i32),
    /// A progress message that does not decode.
    #[error("could not decode progress message: {0}")]
    Progress(XdrError),
    /// The decoder already failed; it needs [`FrameDecoder::reset`].
    #[error("frame decoder failed earlier and was not reset")]
    Poisoned,
}

/// The message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `prog`, [`PROGRAM`].
    pub prog: u32,
    /// `vers`, [`PROTOCOL_VERSION`].
    pub vers: u32,
    /// The procedure number.
    pub proc_nr: u32,
    /// [`DIRECTION_CALL`] or [`DIRECTION_REPLY`].
    pub direction: u32,
    /// The call's serial number, echoed in its reply.
    pub serial: u32,
    /// Upload size hint for progress bars.
    pub progress_hint: u64,
    /// Which optional arguments are meaningful (bit i: the i-th optional argument).
    pub optargs_bitmask: u64,
    /// [`STATUS_OK`] or [`STATUS_ERROR`].
    pub status: u32,
}

impl Header {
    /// A call header.
    pub fn call(proc_nr: u32, serial: u32, optargs_bitmask: u64) -> Self {
        Header {
            prog: PROGRAM,
            vers: PROTOCOL_VERSION,
            proc_nr,
            direction: DIRECTION_CALL,
            serial,
            progress_hint: 0,
            optargs_bitmask,
            status: STATUS_OK,
        }
    }

    /// A reply header (as the daemon sends it: progress hint and bitmask zero).
    pub fn reply(proc_nr: u32, serial: u32, status: u32) -> Self {
        Header {
            prog: PROGRAM,
            vers: PROTOCOL_VERSION,
            proc_nr,
            direction: DIRECTION_REPLY,
            serial,
            progress_hint: 0,
            optargs_bitmask: 0,
            status,
        }
    }

    /// Decodes a header from the start of a message.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(Header {
            prog: d.u32()?,
            vers: d.u32()?,
            proc_nr: d.u32()?,
            direction: d.u32()?,
            serial: d.u32()?,
            progress_hint: d.u64()?,
            optargs_bitmask: d.u64()?,
            status: d.u32()?,
        })
    }

    /// Encodes the header.
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(self.prog)
            .u32(self.vers)
            .u32(self.proc_nr)
            .u32(self.direction)
            .u32(self.serial)
            .u64(self.progress_hint)
            .u64(self.optargs_bitmask)
            .u32(self.status);
    }
}

/// Splits a message (a frame's payload) into its header and body.
pub fn split_message(msg: &[u8]) -> Result<(Header, &[u8]), FrameError> {
    let mut d = Decoder::new(msg);
    let h = Header::decode(&mut d).map_err(FrameError::Header)?;
    Ok((h, d.rest()))
}

/// An error reply's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    /// The errno's name ("ENOENT", ...), or empty when there is none.
    pub errno: Bytes,
    /// The message (the library prefixes it with the procedure's name).
    pub message: Bytes,
}

impl MessageError {
    /// An error; the message is cut to [`ERROR_LEN`] bytes and the errno to [`ERRNO_LEN`] as the
    /// daemon does.
    pub fn new(errno: &str, message: impl Into<Bytes>) -> Self {
        let mut message = message.into();
        message.0.truncate(ERROR_LEN as usize);
        let mut errno = Bytes::from(errno);
        errno.0.truncate(ERRNO_LEN as usize);
        MessageError { errno, message }
    }

    /// Decodes an error body.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(MessageError {
            errno: d.string(ERRNO_LEN)?,
            message: d.string(ERROR_LEN)?,
        })
    }

    /// Encodes the error body.
    pub fn encode(&self, e: &mut Encoder) {
        e.string(&self.errno.0).string(&self.message.0);
    }
}

/// A file-transfer chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The sender cancelled the transfer.
    pub cancel: bool,
    /// The data; empty (with `cancel` false) ends the transfer.
    pub data: Vec<u8>,
}

impl Chunk {
    /// Decodes a chunk from a frame's payload.
    pub fn decode(msg: &[u8]) -> Result<Self, FrameError> {
        let mut d = Decoder::new(msg);
        let cancel = d.i32().map_err(FrameError::Chunk)?;
        let data = d.opaque(MAX_CHUNK_SIZE).map_err(FrameError::Chunk)?;
        match cancel {
            0 => Ok(Chunk {
                cancel: false,
                data,
            }),
            1 => Ok(Chunk { cancel: true, data }),
            c => Err(FrameError::ChunkCancel(c)),
        }
    }

    /// Is this the end of the stream (an empty chunk, or a cancel)?
    pub fn is_end(&self) -> bool {
        self.cancel || self.data.is_empty()
    }
}

/// A progress notification (appliance to host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The procedure in progress.
    pub proc_nr: u32,
    /// Its call's serial.
    pub serial: u32,
    /// How far (0 ..= total).
    pub position: u64,
    /// Of how much.
    pub total: u64,
}

impl Progress {
    /// Decodes the 24 bytes after [`PROGRESS_FLAG`].
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(Progress {
            proc_nr: d.u32()?,
            serial: d.u32()?,
            position: d.u64()?,
            total: d.u64()?,
        })
    }
}

/// Wraps a message in its length word.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(msg.len() + 4);
    v.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    v.extend_from_slice(msg);
    v
}

/// An OK reply frame with `body` (already XDR) after the header. A message over
/// [`MESSAGE_MAX`] becomes the daemon's own error reply for it instead.
pub fn encode_reply(proc_nr: u32, serial: u32, body: &[u8]) -> Vec<u8> {
    if HEADER_LEN + body.len() > MESSAGE_MAX as usize {
        return encode_error(proc_nr, serial, &MessageError::new("", REPLY_TOO_LARGE));
    }
    let mut e = Encoder::with_vec(Vec::with_capacity(4 + HEADER_LEN + body.len()));
    e.u32(0);
    Header::reply(proc_nr, serial, STATUS_OK).encode(&mut e);
    let mut v = e.into_vec();
    v.extend_from_slice(body);
    let len = (v.len() - 4) as u32;
    v[..4].copy_from_slice(&len.to_be_bytes());
    v
}

/// The daemon's error for a reply that does not fit in a message.
pub const REPLY_TOO_LARGE: &str = "guestfsd: failed to encode reply body\n(maybe the reply exceeds the maximum message size in the protocol?)";

/// An error reply frame.
pub fn encode_error(proc_nr: u32, serial: u32, err: &MessageError) -> Vec<u8> {
    let mut e = Encoder::new();
    e.u32(0);
    Header::reply(proc_nr, serial, STATUS_ERROR).encode(&mut e);
    MessageError::new(err.errno.to_str().unwrap_or(""), err.message.0.clone()).encode(&mut e);
    let mut v = e.into_vec();
    let len = (v.len() - 4) as u32;
    v[..4].copy_from_slice(&len.to_be_bytes());
    v
}

/// A call frame (host side; tests and the fake daemon's self-checks).
pub fn encode_call(header: &Header, args: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    header.encode(&mut e);
    let mut v = e.into_vec();
    v.extend_from_slice(args);
    frame(&v)
}

/// A chunk frame. `data` longer than [`MAX_CHUNK_SIZE`] must be split by the caller (see
/// [`encode_chunks`]).
pub fn encode_chunk(cancel: bool, data: &[u8]) -> Vec<u8> {
    let mut e = Encoder::with_vec(Vec::with_capacity(data.len() + 16));
    e.u32(0).i32(cancel as i32).opaque(data);
    let mut v = e.into_vec();
    let len = (v.len() - 4) as u32;
    v[..4].copy_from_slice(&len.to_be_bytes());
    v
}

/// A whole FileOut stream for `data`: chunks of at most [`MAX_CHUNK_SIZE`] and the empty end
/// chunk.
pub fn encode_chunks(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + data.len() / 1024 + 16);
    for c in data.chunks(MAX_CHUNK_SIZE as usize) {
        v.extend_from_slice(&encode_chunk(false, c));
    }
    v.extend_from_slice(&encode_chunk(false, &[]));
    v
}

/// A progress message: the flag word and the 24-byte body (no length word).
pub fn encode_progress(p: &Progress) -> [u8; 28] {
    let mut e = Encoder::new();
    e.u32(PROGRESS_FLAG)
        .u32(p.proc_nr)
        .u32(p.serial)
        .u64(p.position)
        .u64(p.total);
    let mut out = [0; 28];
    out.copy_from_slice(e.as_slice());
    out
}

/// Which end of the channel a [`FrameDecoder`] reads for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The appliance reading the host's bytes: frames and [`CANCEL_FLAG`].
    Appliance,
    /// The host reading the appliance's bytes: [`LAUNCH_FLAG`], frames, [`CANCEL_FLAG`] and
    /// progress messages.
    Host,
}

/// One item off the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message (a frame's payload, without the length word).
    Frame(Vec<u8>),
    /// [`CANCEL_FLAG`].
    Cancel,
    /// [`LAUNCH_FLAG`] (host role only).
    Launch,
    /// A progress message (host role only).
    Progress(Progress),
}

/// An incremental stream decoder: [`push`](Self::push) bytes as they arrive, take events with
/// [`next_event`](Self::next_event). A length word over [`MESSAGE_MAX`] (or a flag the role does
/// not allow) is an error and poisons the decoder until [`reset`](Self::reset): the stream has
/// lost sync and libguestfs's daemon would exit; an appliance resets the channel.
///
/// Memory: the buffer holds only bytes pushed and not yet returned; a frame's length is never
/// used to reserve memory ahead of its bytes.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    role: Role,
    buf: Vec<u8>,
    start: usize,
    poisoned: bool,
}

impl FrameDecoder {
    /// A decoder for `role`.
    pub fn new(role: Role) -> Self {
        FrameDecoder {
            role,
            buf: Vec::new(),
            start: 0,
            poisoned: false,
        }
    }

    /// Appends stream bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Drops buffered bytes and the error state (after the channel was reset).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.poisoned = false;
    }

    /// The next event, `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Option<Result<Event, FrameError>> {
        if self.poisoned {
            return Some(Err(FrameError::Poisoned));
        }
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return None;
        }
        let word = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]);
        let host = self.role == Role::Host;
        let (consumed, ev) = match word {
            CANCEL_FLAG => (4, Event::Cancel),
            LAUNCH_FLAG if host => (4, Event::Launch),
            PROGRESS_FLAG if host => {
                if avail.len() < 4 + PROGRESS_LEN {
                    return None;
                }
                let mut d = Decoder::new(&avail[4..4 + PROGRESS_LEN]);
                match Progress::decode(&mut d) {
                    Ok(p) => (4 + PROGRESS_LEN, Event::Progress(p)),
                    Err(e) => return Some(Err(self.fail(FrameError::Progress(e)))),
                }
            }
            len if len > MESSAGE_MAX => return Some(Err(self.fail(FrameError::TooLong(len)))),
            len => {
                let total = 4 + len as usize;
                if avail.len() < total {
                    return None;
                }
                (total, Event::Frame(avail[4..total].to_vec()))
            }
        };
        self.start += consumed;
        Some(Ok(ev))
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.poisoned = true;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn header_is_40_bytes_and_round_trips() {
        let h = Header::call(198, 0x1234_5678, 5);
        let mut e = Encoder::new();
        h.encode(&mut e);
        assert_eq!(e.len(), HEADER_LEN);
        let (h2, rest) = split_message(e.as_slice()).unwrap();
        assert_eq!(h, h2);
        assert!(rest.is_empty());
        assert!(matches!(
            split_message(&e.as_slice()[..39]),
            Err(FrameError::Header(_))
        ));
    }

    #[test]
    fn decoder_byte_by_byte() {
        let mut stream = vec![];
        stream.extend_from_slice(&LAUNCH_FLAG.to_be_bytes());
        stream.extend_from_slice(&encode_call(&Header::call(8, 1, 0), &[]));
        stream.extend_from_slice(&CANCEL_FLAG.to_be_bytes());
        stream.extend_from_slice(&encode_progress(&Progress {
            proc_nr: 67,
            serial: 2,
            position: 3,
            total: 4,
        }));
        stream.extend_from_slice(&encode_chunks(b"hello"));
        let mut d = FrameDecoder::new(Role::Host);
        let mut evs = vec![];
        for b in &stream {
            d.push(core::slice::from_ref(b));
            while let Some(ev) = d.next_event() {
                evs.push(ev.unwrap());
            }
        }
        assert_eq!(evs.len(), 6);
        assert_eq!(evs[0], Event::Launch);
        assert!(matches!(&evs[1], Event::Frame(f) if f.len() == HEADER_LEN));
        assert_eq!(evs[2], Event::Cancel);
        assert!(matches!(evs[3], Event::Progress(p) if p.total == 4));
        let Event::Frame(c) = &evs[4] else { panic!() };
        assert_eq!(
            Chunk::decode(c).unwrap(),
            Chunk {
                cancel: false,
                data: b"hello".to_vec()
            }
        );
        let Event::Frame(c) = &evs[5] else { panic!() };
        assert!(Chunk::decode(c).unwrap().is_end());
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn too_long_poisons_until_reset() {
        let mut d = FrameDecoder::new(Role::Appliance);
        d.push(&(MESSAGE_MAX + 1).to_be_bytes());
        assert_eq!(
            d.next_event(),
            Some(Err(FrameError::TooLong(MESSAGE_MAX + 1)))
        );
        assert_eq!(d.next_event(), Some(Err(FrameError::Poisoned)));
        d.reset();
        // The appliance role does not accept the appliance's own flags.
        d.push(&LAUNCH_FLAG.to_be_bytes());
        assert_eq!(d.next_event(), Some(Err(FrameError::TooLong(LAUNCH_FLAG))));
        d.reset();
        d.push(&MESSAGE_MAX.to_be_bytes());
        assert_eq!(d.next_event(), None);
    }

    #[test]
    fn chunks_and_errors() {
        let big = vec![7u8; 20000];
        let s = encode_chunks(&big);
        let mut d = FrameDecoder::new(Role::Appliance);
        d.push(&s);
        let mut got = vec![];
        while let Some(ev) = d.next_event() {
            let Event::Frame(f) = ev.unwrap() else {
                panic!()
            };
            let c = Chunk::decode(&f).unwrap();
            if c.is_end() {
                break;
            }
            assert!(c.data.len() <= MAX_CHUNK_SIZE as usize);
            got.extend_from_slice(&c.data);
        }
        assert_eq!(got, big);
        let mut bad = encode_chunk(false, b"x");
        bad[7] = 2;
        assert_eq!(Chunk::decode(&bad[4..]), Err(FrameError::ChunkCancel(2)));
        let err = encode_error(5, 9, &MessageError::new("ENOENT", "no such file"));
        let (h, body) = split_message(&err[4..]).unwrap();
        assert_eq!((h.status, h.serial, h.direction), (STATUS_ERROR, 9, 1));
        let me = MessageError::decode(&mut Decoder::new(body)).unwrap();
        assert_eq!(me.errno, Bytes::from("ENOENT"));
        let huge = vec![0u8; MESSAGE_MAX as usize];
        let r = encode_reply(5, 9, &huge);
        let (h, body) = split_message(&r[4..]).unwrap();
        assert_eq!(h.status, STATUS_ERROR);
        let me = MessageError::decode(&mut Decoder::new(body)).unwrap();
        assert_eq!(me.message, Bytes::from(REPLY_TOO_LARGE));
    }
}

//! Replies: a procedure's return value ([`Ret`]) encoded as its OK reply's body, checked
//! against the procedure's return type; error replies; FileOut streams.

use alloc::vec::Vec;

use crate::frame::{self, Header, MessageError};
use crate::procs::{StructList, StructValue};
use crate::procs_types::{ProcInfo, RetKind};
use crate::xdr::{Bytes, Decoder, Encoder, XdrError};

/// Why a reply could not be built or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplyError {
    /// The value's type is not the procedure's return type.
    #[error("procedure {name} returns {expected:?}, not this value")]
    WrongType {
        /// The procedure.
        name: &'static str,
        /// Its return type.
        expected: RetKind,
    },
    /// A reply body that does not decode (host side).
    #[error("reply body does not decode: {0}")]
    Decode(#[from] XdrError),
    /// A reply header that does not decode (host side).
    #[error("reply header: {0}")]
    Frame(#[from] frame::FrameError),
}

/// A procedure's return value.
///
/// Not boxed although some structs are large (lvm_pv, xfsinfo): a `Ret` lives for one reply,
/// and the kernel's agent builds `Ret::Struct(StructValue::...)` directly.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Ret {
    /// RErr: no value (also the OK reply of a FileOut procedure, before its chunks).
    Unit,
    /// RBool.
    Bool(bool),
    /// RInt.
    Int(i32),
    /// RInt64.
    Int64(i64),
    /// RString.
    String(Bytes),
    /// RStringList.
    StringList(Vec<Bytes>),
    /// RHashtable: key/value pairs, sent as a flat list `k1, v1, k2, v2, ...`.
    Hashtable(Vec<(Bytes, Bytes)>),
    /// RStruct.
    Struct(StructValue),
    /// RStructList.
    StructList(StructList),
    /// RBufferOut.
    BufferOut(Vec<u8>),
}

impl Ret {
    /// Does the value fit the return type?
    pub fn fits(&self, kind: RetKind) -> bool {
        matches!(
            (self, kind),
            (Ret::Unit, RetKind::Err)
                | (Ret::Bool(_), RetKind::Bool)
                | (Ret::Int(_), RetKind::Int)
                | (Ret::Int64(_), RetKind::Int64)
                | (Ret::String(_), RetKind::String(_))
                | (Ret::StringList(_), RetKind::StringList(_))
                | (Ret::Hashtable(_), RetKind::Hashtable(..))
                | (Ret::BufferOut(_), RetKind::BufferOut)
        ) || match (self, kind) {
            (Ret::Struct(s), RetKind::Struct(k)) => s.kind() == k,
            (Ret::StructList(s), RetKind::StructList(k)) => s.kind() == k,
            _ => false,
        }
    }

    /// Encodes the value as a reply body.
    pub fn encode(&self, e: &mut Encoder) {
        match self {
            Ret::Unit => {}
            Ret::Bool(b) => {
                e.bool(*b);
            }
            Ret::Int(i) => {
                e.i32(*i);
            }
            Ret::Int64(i) => {
                e.i64(*i);
            }
            Ret::String(s) => {
                e.string(&s.0);
            }
            Ret::StringList(l) => {
                e.string_list(l);
            }
            Ret::Hashtable(kv) => {
                e.u32((kv.len() * 2) as u32);
                for (k, v) in kv {
                    e.string(&k.0).string(&v.0);
                }
            }
            Ret::Struct(s) => s.encode(e),
            Ret::StructList(l) => l.encode(e),
            Ret::BufferOut(b) => {
                e.opaque(b);
            }
        }
    }

    /// Decodes a reply body of type `kind` (host side).
    pub fn decode(kind: RetKind, d: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(match kind {
            RetKind::Err => Ret::Unit,
            RetKind::Bool => Ret::Bool(d.bool()?),
            RetKind::Int => Ret::Int(d.i32()?),
            RetKind::Int64 => Ret::Int64(d.i64()?),
            RetKind::String(_) => Ret::String(d.string(u32::MAX)?),
            RetKind::StringList(_) => Ret::StringList(d.string_list()?),
            RetKind::Hashtable(..) => {
                let flat = d.string_list()?;
                let mut kv = Vec::with_capacity(flat.len() / 2);
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    kv.push((k, v));
                }
                Ret::Hashtable(kv)
            }
            RetKind::Struct(k) => Ret::Struct(StructValue::decode(k, d)?),
            RetKind::StructList(k) => Ret::StructList(StructList::decode(k, d)?),
            RetKind::BufferOut => Ret::BufferOut(d.opaque(u32::MAX)?),
        })
    }
}

/// An OK reply frame for a call of `proc_info` with serial `serial`. A reply over the message
/// limit becomes the daemon's error for it ([`frame::REPLY_TOO_LARGE`]).
pub fn encode_reply(proc_info: &ProcInfo, serial: u32, ret: &Ret) -> Result<Vec<u8>, ReplyError> {
    if !ret.fits(proc_info.ret) {
        return Err(ReplyError::WrongType {
            name: proc_info.name,
            expected: proc_info.ret,
        });
    }
    let mut e = Encoder::new();
    ret.encode(&mut e);
    Ok(frame::encode_reply(proc_info.nr, serial, e.as_slice()))
}

/// An error reply frame.
pub fn encode_error_reply(proc_nr: u32, serial: u32, err: &MessageError) -> Vec<u8> {
    frame::encode_error(proc_nr, serial, err)
}

/// A FileOut procedure's whole answer: the OK reply and the chunk stream with `data`.
pub fn encode_file_out(proc_info: &ProcInfo, serial: u32, data: &[u8]) -> Vec<u8> {
    let mut v = frame::encode_reply(proc_info.nr, serial, &[]);
    v.extend_from_slice(&frame::encode_chunks(data));
    v
}

/// A decoded reply (host side).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyMessage {
    /// The header.
    pub header: Header,
    /// The value, or the error.
    pub result: Result<Ret, MessageError>,
}

/// Decodes a reply message (a frame's payload) to a call of `proc_info` (host side).
pub fn decode_reply(proc_info: &ProcInfo, msg: &[u8]) -> Result<ReplyMessage, ReplyError> {
    let (header, body) = frame::split_message(msg)?;
    let mut d = Decoder::new(body);
    let result = if header.status == frame::STATUS_OK {
        Ok(Ret::decode(proc_info.ret, &mut d)?)
    } else {
        Err(MessageError::decode(&mut d)?)
    };
    Ok(ReplyMessage { header, result })
}

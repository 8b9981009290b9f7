//! The types that describe a procedure (its arguments, optional arguments and return value),
//! used by the generated table in [`crate::procs`].

use alloc::vec::Vec;

use crate::procs::{PROCEDURES, StructKind};
use crate::xdr::{Bytes, Decoder, Encoder, XdrError};

/// What a string argument names; the daemon checks some before running the procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrKind {
    /// An absolute path in the mounted filesystems (the daemon: "path must start with a /
    /// character"; and a root filesystem must be mounted).
    Pathname,
    /// A device (`/dev/sda1`).
    Device,
    /// A device or a btrfs subvolume (`btrfsvol:/dev/sda2/root`).
    Mountable,
    /// A device or a path.
    DevOrPath,
    /// A mountable or a path.
    MountableOrPath,
    /// Any string.
    PlainString,
    /// A secret.
    Key,
    /// A GUID.
    Guid,
    /// A file name without `/`.
    Filename,
    /// A file the host uploads (a chunk stream; not in the XDR arguments).
    FileIn,
    /// A file the appliance sends back (a chunk stream after the reply; not in the XDR
    /// arguments).
    FileOut,
}

/// A required argument's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// `string<>`.
    String(StrKind),
    /// `guestfs_str *` (optional string).
    OptString,
    /// `guestfs_str<>`.
    StringList(StrKind),
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `hyper`.
    Int64,
    /// `opaque<>`.
    BufferIn,
}

/// A required argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    /// Its name in libguestfs.
    pub name: &'static str,
    /// Its type.
    pub kind: ArgKind,
}

/// An optional argument's type. On the wire an optional argument always takes its place after
/// the required ones; its bit in the header's bitmask says whether it is meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptArgKind {
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `hyper`.
    Int64,
    /// `string<>`.
    String,
    /// `guestfs_str<>`.
    StringList,
}

/// An optional argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptArg {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub kind: OptArgKind,
}

/// What a returned string holds (the daemon translates device names in `Device` and
/// `Mountable` ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RStrKind {
    /// Any string.
    Plain,
    /// A device name.
    Device,
    /// A mountable.
    Mountable,
}

/// A procedure's return type, and the XDR of its OK reply's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetKind {
    /// Nothing (empty body).
    Err,
    /// `int`.
    Int,
    /// `hyper`.
    Int64,
    /// `bool`.
    Bool,
    /// `string<>`.
    String(RStrKind),
    /// `guestfs_str<>`.
    StringList(RStrKind),
    /// `guestfs_str<>` of alternating keys and values.
    Hashtable(RStrKind, RStrKind),
    /// One struct.
    Struct(StructKind),
    /// `struct<>`.
    StructList(StructKind),
    /// `opaque<>`.
    BufferOut,
}

/// One daemon procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    /// Its number (`GUESTFS_PROC_*`).
    pub nr: u32,
    /// Its name.
    pub name: &'static str,
    /// Required arguments, including FileIn/FileOut ones (which are not on the wire).
    pub args: &'static [Arg],
    /// Optional arguments, bit i of the bitmask for `optargs[i]`.
    pub optargs: &'static [OptArg],
    /// Return type.
    pub ret: RetKind,
    /// The option group (feature) it belongs to, if any.
    pub optgroup: Option<&'static str>,
    /// Deprecated in libguestfs.
    pub deprecated: bool,
    /// The appliance serves it: [`crate::Call`] has a typed variant.
    pub served: bool,
    /// It writes (to a disk or the appliance's state): a read-only appliance refuses it.
    pub write_side: bool,
}

impl ProcInfo {
    /// The procedure with number `nr`.
    pub fn lookup(nr: u32) -> Option<&'static ProcInfo> {
        PROCEDURES
            .binary_search_by_key(&nr, |p| p.nr)
            .ok()
            .map(|i| &PROCEDURES[i])
    }

    /// The procedure called `name`.
    pub fn by_name(name: &str) -> Option<&'static ProcInfo> {
        PROCEDURES.iter().find(|p| p.name == name)
    }

    /// The arguments that are in the XDR args struct (all but FileIn/FileOut).
    pub fn wire_args(&self) -> impl Iterator<Item = &'static Arg> + use<> {
        self.args.iter().filter(|a| {
            !matches!(
                a.kind,
                ArgKind::String(StrKind::FileIn) | ArgKind::String(StrKind::FileOut)
            )
        })
    }

    /// A FileOut procedure: the OK reply is followed by a chunk stream.
    pub fn has_file_out(&self) -> bool {
        self.args
            .iter()
            .any(|a| a.kind == ArgKind::String(StrKind::FileOut))
    }

    /// A FileIn procedure: the host sends a chunk stream after the call.
    pub fn has_file_in(&self) -> bool {
        self.args
            .iter()
            .any(|a| a.kind == ArgKind::String(StrKind::FileIn))
    }

    /// It takes a `Pathname`: the daemon requires a mounted root filesystem (NEED_ROOT) and an
    /// absolute path.
    pub fn needs_root(&self) -> bool {
        self.args
            .iter()
            .any(|a| a.kind == ArgKind::String(StrKind::Pathname))
    }

    /// The bits of the optional-arguments bitmask this procedure understands.
    pub fn optargs_mask(&self) -> u64 {
        match self.optargs.len() {
            0 => 0,
            n if n >= 64 => u64::MAX,
            n => (1u64 << n) - 1,
        }
    }
}

/// A generically decoded argument value (for [`crate::Call::Other`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string.
    Str(Bytes),
    /// An optional string.
    OptStr(Option<Bytes>),
    /// A string list.
    StrList(Vec<Bytes>),
    /// A bool.
    Bool(bool),
    /// An int.
    Int(i32),
    /// A hyper.
    Int64(i64),
    /// A buffer.
    Buffer(Vec<u8>),
}

impl Value {
    /// Decodes a required argument.
    pub fn decode_arg(kind: ArgKind, d: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(match kind {
            ArgKind::String(_) => Value::Str(str_arg(d)?),
            ArgKind::OptString => Value::OptStr(opt_str_arg(d)?),
            ArgKind::StringList(_) => Value::StrList(d.string_list()?),
            ArgKind::Bool => Value::Bool(d.bool()?),
            ArgKind::Int => Value::Int(d.i32()?),
            ArgKind::Int64 => Value::Int64(d.i64()?),
            ArgKind::BufferIn => Value::Buffer(d.opaque(u32::MAX)?),
        })
    }

    /// Decodes an optional argument.
    pub fn decode_optarg(kind: OptArgKind, d: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(match kind {
            OptArgKind::Bool => Value::Bool(d.bool()?),
            OptArgKind::Int => Value::Int(d.i32()?),
            OptArgKind::Int64 => Value::Int64(d.i64()?),
            OptArgKind::String => Value::Str(str_arg(d)?),
            OptArgKind::StringList => Value::StrList(d.string_list()?),
        })
    }

    /// Encodes the value.
    pub fn encode(&self, e: &mut Encoder) {
        match self {
            Value::Str(s) => {
                e.string(&s.0);
            }
            Value::OptStr(s) => {
                e.optional(s.as_ref(), |e, s| {
                    e.string(&s.0);
                });
            }
            Value::StrList(l) => {
                e.string_list(l);
            }
            Value::Bool(b) => {
                e.bool(*b);
            }
            Value::Int(i) => {
                e.i32(*i);
            }
            Value::Int64(i) => {
                e.i64(*i);
            }
            Value::Buffer(b) => {
                e.opaque(b);
            }
        }
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Encodes generically decoded arguments (unset optional arguments as zero values).
pub(crate) fn encode_values(info: &ProcInfo, args: &[Option<Value>], e: &mut Encoder) {
    let first = info.wire_args().count();
    for (i, a) in args.iter().enumerate() {
        match a {
            Some(v) => v.encode(e),
            None => match info.optargs.get(i.wrapping_sub(first)).map(|o| o.kind) {
                Some(OptArgKind::Int64) => {
                    e.i64(0);
                }
                _ => {
                    e.u32(0);
                }
            },
        }
    }
}

/// A string argument (unbounded but for the message).
pub(crate) fn str_arg(d: &mut Decoder<'_>) -> Result<Bytes, XdrError> {
    d.string(u32::MAX)
}

/// An optional string argument.
pub(crate) fn opt_str_arg(d: &mut Decoder<'_>) -> Result<Option<Bytes>, XdrError> {
    d.optional(|d| d.string(u32::MAX))
}

/// A 32-byte UUID field.
pub(crate) fn uuid(d: &mut Decoder<'_>) -> Result<[u8; 32], XdrError> {
    let mut u = [0; 32];
    u.copy_from_slice(d.fixed_opaque(32)?);
    Ok(u)
}

/// An XDR struct of libguestfs's.
pub trait XdrStruct: Sized {
    /// Which struct.
    const KIND: StructKind;
    /// Decodes one.
    fn decode(d: &mut Decoder<'_>) -> Result<Self, XdrError>;
    /// Encodes it.
    fn encode(&self, e: &mut Encoder);
}

/// Encodes a struct list.
pub(crate) fn encode_list<T: XdrStruct>(v: &[T], e: &mut Encoder) {
    e.u32(v.len() as u32);
    for s in v {
        s.encode(e);
    }
}

/// Decodes a struct list, its count bounded by the input.
pub(crate) fn decode_list<T: XdrStruct>(d: &mut Decoder<'_>) -> Result<Vec<T>, XdrError> {
    d.array(u32::MAX, T::KIND.min_size(), T::decode)
}

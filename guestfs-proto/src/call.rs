//! Decoding a call message into a [`Call`], with libguestfs's daemon's checks in its order and
//! its exact error messages.
//!
//! The daemon (libguestfs 1.48, `daemon/proto.c` and the generated `stubs.c`) handles a call
//! message like this, and [`decode_call`] does the same:
//!
//! 1. header `prog`, `vers`, `direction`, `status` checked: "wrong program (%u)", "wrong
//!    protocol version (%u)", "unexpected message direction (%d)", "unexpected message status
//!    (%d)" (no errno);
//! 2. an unknown procedure number: "dispatch_incoming_message: unknown procedure number %d, set
//!    LIBGUESTFS_PATH to point to the matching libguestfs appliance directory" (no errno) —
//!    here [`Call::Unknown`], answered with [`unknown_procedure_error`];
//! 3. (the daemon then refuses a procedure of an unavailable option group with ENOTSUP and
//!    [`unavailable_feature_error`]; that is the server's decision);
//! 4. optional-argument bits the procedure does not have: "unknown option in optional arguments
//!    bitmask (...)", or for a procedure without optional arguments "header optargs_bitmask
//!    field must be passed as 0 for calls that don't take optional arguments" (no errno);
//! 5. arguments that do not decode: "daemon failed to decode procedure arguments" (no errno);
//! 6. a `Pathname` argument not starting with `/`: "NAME_stub: path must start with a /
//!    character" (no errno).
//!
//! The error replies all carry the call's procedure number and serial. For a FileIn procedure
//! the daemon first sends [`crate::frame::CANCEL_FLAG`] and drains the host's chunks
//! ([`CallError::needs_cancel_receive`]).

use alloc::format;
use alloc::vec::Vec;

use crate::frame::{self, FrameError, Header, MessageError};
use crate::procs::{Call, decode_typed};
use crate::procs_types::{ArgKind, ProcInfo, StrKind, Value};
use crate::xdr::{Bytes, Decoder, XdrError};

/// Why a call is answered with an error before it runs. Each maps to the daemon's error reply
/// via [`CallError::to_message_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// `prog` is not [`frame::PROGRAM`].
    #[error("wrong program ({0})")]
    WrongProgram(u32),
    /// `vers` is not [`frame::PROTOCOL_VERSION`].
    #[error("wrong protocol version ({0})")]
    WrongVersion(u32),
    /// `direction` is not a call.
    #[error("unexpected message direction ({})", *.0 as i32)]
    WrongDirection(u32),
    /// `status` is not OK.
    #[error("unexpected message status ({})", *.0 as i32)]
    WrongStatus(u32),
    /// Bits set for optional arguments the procedure does not have.
    #[error(
        "unknown option in optional arguments bitmask (this can happen if a program is compiled against a newer version of libguestfs, then run against an older version of the daemon)"
    )]
    UnknownOptargs {
        /// The procedure.
        proc_info: &'static ProcInfo,
        /// The bitmask received.
        bitmask: u64,
    },
    /// A non-zero bitmask for a procedure without optional arguments.
    #[error(
        "header optargs_bitmask field must be passed as 0 for calls that don't take optional arguments"
    )]
    OptargsNotZero {
        /// The procedure.
        proc_info: &'static ProcInfo,
        /// The bitmask received.
        bitmask: u64,
    },
    /// The arguments do not decode.
    #[error("daemon failed to decode procedure arguments")]
    Args {
        /// The procedure.
        proc_info: &'static ProcInfo,
        /// What failed.
        cause: XdrError,
    },
    /// A `Pathname` argument that is not absolute.
    #[error("{}_stub: path must start with a / character", .proc_info.name)]
    NotAbsolute {
        /// The procedure.
        proc_info: &'static ProcInfo,
    },
}

impl CallError {
    /// The error reply's body, as the daemon sends it (none of these carry an errno).
    pub fn to_message_error(&self) -> MessageError {
        MessageError::new("", format!("{self}"))
    }

    /// The procedure, when the error is about one.
    pub fn proc_info(&self) -> Option<&'static ProcInfo> {
        match self {
            CallError::UnknownOptargs { proc_info, .. }
            | CallError::OptargsNotZero { proc_info, .. }
            | CallError::Args { proc_info, .. }
            | CallError::NotAbsolute { proc_info } => Some(proc_info),
            _ => None,
        }
    }

    /// The host will send a FileIn chunk stream after this call: the daemon answers
    /// [`frame::CANCEL_FLAG`] and discards the chunks up to the end one before its error reply.
    pub fn needs_cancel_receive(&self) -> bool {
        self.proc_info().is_some_and(|p| p.has_file_in())
    }
}

/// The daemon's reply to a procedure number it does not know (no errno).
pub fn unknown_procedure_error(proc_nr: u32) -> MessageError {
    MessageError::new(
        "",
        format!(
            "dispatch_incoming_message: unknown procedure number {}, set LIBGUESTFS_PATH to point to the matching libguestfs appliance directory",
            proc_nr as i32
        ),
    )
}

/// The daemon's reply to a procedure whose option group (feature) is not available: ENOTSUP.
pub fn unavailable_feature_error(group: &str) -> MessageError {
    MessageError::new(
        "ENOTSUP",
        format!(
            "feature '{group}' is not available in this\nbuild of libguestfs.  Read 'AVAILABILITY' in the guestfs(3) man page for\nhow to check for the availability of features."
        ),
    )
}

/// The daemon's reply to a `Pathname` procedure while no root filesystem is mounted (no
/// errno).
pub fn need_root_error(proc_info: &ProcInfo) -> MessageError {
    MessageError::new(
        "",
        format!(
            "{}_stub: you must call 'mount' first to mount the root filesystem",
            proc_info.name
        ),
    )
}

/// The strerror text of EROFS.
pub const EROFS_TEXT: &str = "Read-only file system";

/// The read-only appliance's reply to a write-side procedure: EROFS, worded like the daemon's
/// `reply_with_perror` ("WHAT: strerror"). The library prints it as "libguestfs: error: NAME:
/// read-only appliance: Read-only file system".
pub fn read_only_error() -> MessageError {
    MessageError::new("EROFS", format!("read-only appliance: {EROFS_TEXT}"))
}

/// A decoded call message: its header and the typed call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallMessage {
    /// The header (procedure number, serial, progress hint, bitmask).
    pub header: Header,
    /// The call.
    pub call: Call,
}

/// Why a message could not be handled at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message has no decodable header: libguestfs's daemon exits; reset the channel.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The call is answered with an error reply (the header is there for its serial).
    #[error("{error}")]
    Call {
        /// The header.
        header: Header,
        /// The error.
        error: CallError,
    },
}

impl DecodeError {
    /// The error reply frame to send, when there is one (`None`: reset the channel).
    pub fn reply(&self) -> Option<alloc::vec::Vec<u8>> {
        match self {
            DecodeError::Frame(_) => None,
            DecodeError::Call { header, error } => Some(frame::encode_error(
                header.proc_nr,
                header.serial,
                &error.to_message_error(),
            )),
        }
    }
}

/// Decodes a call message (a frame's payload) the way the daemon does (see the module doc).
/// Bytes after the arguments are ignored, as rpcgen's decoder ignores them.
pub fn decode_call(msg: &[u8]) -> Result<CallMessage, DecodeError> {
    let (header, body) = frame::split_message(msg)?;
    let call =
        decode_call_body(&header, body).map_err(|error| DecodeError::Call { header, error })?;
    Ok(CallMessage { header, call })
}

/// Checks a call's header and decodes its arguments.
pub fn decode_call_body(header: &Header, body: &[u8]) -> Result<Call, CallError> {
    if header.prog != frame::PROGRAM {
        return Err(CallError::WrongProgram(header.prog));
    }
    if header.vers != frame::PROTOCOL_VERSION {
        return Err(CallError::WrongVersion(header.vers));
    }
    if header.direction != frame::DIRECTION_CALL {
        return Err(CallError::WrongDirection(header.direction));
    }
    if header.status != frame::STATUS_OK {
        return Err(CallError::WrongStatus(header.status));
    }
    let Some(proc_info) = ProcInfo::lookup(header.proc_nr) else {
        return Ok(Call::Unknown(header.proc_nr));
    };
    let bitmask = header.optargs_bitmask;
    if bitmask & !proc_info.optargs_mask() != 0 {
        return Err(if proc_info.optargs.is_empty() {
            CallError::OptargsNotZero { proc_info, bitmask }
        } else {
            CallError::UnknownOptargs { proc_info, bitmask }
        });
    }
    let mut d = Decoder::new(body);
    let args_err = |cause| CallError::Args { proc_info, cause };
    let call = match decode_typed(proc_info.nr, bitmask, &mut d).map_err(args_err)? {
        Some(c) => c,
        None => {
            let mut args = Vec::new();
            for a in proc_info.wire_args() {
                args.push(Some(Value::decode_arg(a.kind, &mut d).map_err(args_err)?));
            }
            for (i, o) in proc_info.optargs.iter().enumerate() {
                let v = Value::decode_optarg(o.kind, &mut d).map_err(args_err)?;
                args.push((bitmask & (1 << i) != 0).then_some(v));
            }
            Call::Other { proc_info, args }
        }
    };
    check_paths(proc_info, body)?;
    Ok(call)
}

/// The daemon's ABS_PATH check on every `Pathname` argument (done on the raw arguments so it
/// covers typed and generic calls alike).
fn check_paths(proc_info: &'static ProcInfo, body: &[u8]) -> Result<(), CallError> {
    if !proc_info.needs_root() {
        return Ok(());
    }
    let mut d = Decoder::new(body);
    for a in proc_info.wire_args() {
        let v = Value::decode_arg(a.kind, &mut d)
            .map_err(|cause| CallError::Args { proc_info, cause })?;
        if let (ArgKind::String(StrKind::Pathname), Value::Str(Bytes(s))) = (a.kind, &v)
            && s.first() != Some(&b'/')
        {
            return Err(CallError::NotAbsolute { proc_info });
        }
    }
    Ok(())
}

/// Encodes a call frame (host side): header with the call's bitmask, then its arguments.
pub fn encode_call(call: &Call, serial: u32) -> Vec<u8> {
    let mut e = crate::xdr::Encoder::new();
    call.encode_args(&mut e);
    frame::encode_call(
        &Header::call(call.proc_nr(), serial, call.optargs_bitmask()),
        e.as_slice(),
    )
}

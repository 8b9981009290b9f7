//! The messages each side sends, inside frames (see [`crate::frame`]).

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::types::{DeviceInfo, DirEntry, FilesystemInfo, OsInfo, Stat, Target, Usage};

/// Protocol version this crate speaks. Bumped on any incompatible change of the wire format.
pub const PROTOCOL_VERSION: u16 = 3;

/// Capability bits a side announces in its [`Hello`].
pub mod caps {
    /// Inspection of operating systems.
    pub const INSPECT: u64 = 1 << 0;
    /// Installed-package lists in inspection.
    pub const APPLICATIONS: u64 = 1 << 1;
    /// Directory listing, stat, read, readlink.
    pub const FILES: u64 = 1 << 2;
    /// Chunked downloads with progress and cancel.
    pub const DOWNLOAD: u64 = 1 << 3;
    /// sha256 computed in the guest.
    pub const CHECKSUM: u64 = 1 << 4;
    /// Filesystem usage.
    pub const USAGE: u64 = 1 << 5;
    /// Everything this version of the crate defines.
    pub const ALL: u64 = INSPECT | APPLICATIONS | FILES | DOWNLOAD | CHECKSUM | USAGE;
}

/// The greeting each side sends first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u16,
    /// [`caps`] bits the sender supports.
    pub capabilities: u64,
    /// Largest frame payload the sender accepts.
    pub max_frame: u32,
    /// Free text: software name and version.
    pub software: String,
}

/// A request from the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Block devices and partitions.
    ListDevices,
    /// Filesystems found on every device, with type, label and UUID.
    ListFilesystems,
    /// Operating systems on the disks; installed packages too when `applications`.
    Inspect {
        /// Also list installed packages.
        applications: bool,
    },
    /// A directory's entries.
    ReadDir {
        /// Which tree.
        target: Target,
        /// Absolute path.
        path: String,
    },
    /// A file's metadata.
    Stat {
        /// Which tree.
        target: Target,
        /// Absolute path.
        path: String,
        /// Follow a final symlink (`stat`) rather than describe it (`lstat`).
        follow: bool,
    },
    /// Part of a file, at most [`MAX_READ`] bytes.
    Read {
        /// Which tree.
        target: Target,
        /// Absolute path.
        path: String,
        /// First byte.
        offset: u64,
        /// Bytes wanted; fewer come back at end of file.
        len: u32,
    },
    /// A whole file, streamed as [`ServerMessage::Chunk`]s, then [`Reply::Downloaded`].
    Download {
        /// Which tree.
        target: Target,
        /// Absolute path.
        path: String,
    },
    /// sha256 of a file, computed in the guest.
    Checksum {
        /// Which tree.
        target: Target,
        /// Absolute path.
        path: String,
    },
    /// Usage of the filesystem holding `path`.
    Usage {
        /// Which tree.
        target: Target,
        /// Absolute path.
        path: String,
    },
}

/// Largest `len` a [`Request::Read`] may ask for.
pub const MAX_READ: u32 = 1 << 20;

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Answer to [`Request::ListDevices`].
    Devices(Vec<DeviceInfo>),
    /// Answer to [`Request::ListFilesystems`].
    Filesystems(Vec<FilesystemInfo>),
    /// Answer to [`Request::Inspect`].
    Inspection(Vec<OsInfo>),
    /// Answer to [`Request::ReadDir`].
    Entries(Vec<DirEntry>),
    /// Answer to [`Request::Stat`].
    Stat(Stat),
    /// Answer to [`Request::Read`].
    Data(Vec<u8>),
    /// End of a [`Request::Download`]: total size and sha256 of what was sent.
    Downloaded {
        /// Bytes sent.
        size: u64,
        /// sha256 of those bytes.
        sha256: [u8; 32],
    },
    /// Answer to [`Request::Checksum`].
    Checksum([u8; 32]),
    /// Answer to [`Request::Usage`].
    Usage(Usage),
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// No such file, device or OS root.
    NotFound,
    /// A path component is not a directory.
    NotADirectory,
    /// A directory where a file was wanted.
    IsADirectory,
    /// The filesystem or partition table is corrupt.
    Corrupt,
    /// Not supported (filesystem type, feature, request).
    Unsupported,
    /// The answer would exceed a limit.
    TooLarge,
    /// The request was malformed.
    BadRequest,
    /// The request was cancelled.
    Cancelled,
    /// The disk could not be read.
    Io,
}

/// A failed answer: a kind for programs, a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// What went wrong, for programs.
    pub kind: ErrorKind,
    /// What went wrong, for people.
    pub message: String,
}

/// Host to guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// The greeting, answered by the server's own [`Hello`].
    Hello(Hello),
    /// A request; `id` comes back on everything that answers it.
    Request {
        /// Chosen by the client; unique among requests in flight.
        id: u32,
        /// What is asked.
        request: Request,
    },
    /// Stop a download in flight; it ends with [`ErrorKind::Cancelled`].
    Cancel {
        /// The download's request id.
        id: u32,
    },
    /// Drop all state (transfers in flight) and answer [`ServerMessage::Synced`] with the same
    /// nonce: the way back to a known state after garbage or a lost client.
    Sync {
        /// Echoed back.
        nonce: u64,
    },
}

/// Guest to host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The server's greeting.
    Hello(Hello),
    /// The final answer to request `id`.
    Response {
        /// The request's id.
        id: u32,
        /// The answer.
        result: Result<Reply, Error>,
    },
    /// Part of a download.
    Chunk {
        /// The download's request id.
        id: u32,
        /// Offset of `data` in the file.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// How far a long request has come.
    Progress {
        /// The request's id.
        id: u32,
        /// Bytes done.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Answer to [`ClientMessage::Sync`]: everything before it is finished or dropped.
    Synced {
        /// The client's nonce.
        nonce: u64,
    },
    /// The server could not decode what it received and skipped `skipped` bytes to the next
    /// frame boundary. Sent once per run of garbage.
    Garbage {
        /// Bytes dropped.
        skipped: u64,
        /// Why.
        message: String,
    },
}

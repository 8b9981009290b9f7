//! Package databases read from untrusted disks, portable and `no_std + alloc`.
//!
//! The on-disk stores rpm has used for its database, each yielding the rpm header blobs it
//! holds, and the header format itself:
//! - [`sqlite`]: the SQLite file format (rpm >= 4.16, `rpmdb.sqlite`), with its `-wal` file;
//! - [`bdb`]: Berkeley DB hash databases (`Packages`, rpm <= 4.15, RHEL/CentOS <= 8);
//! - [`ndb`]: rpm's own ndb format (`Packages.db`, SUSE since 15.3);
//! - [`rpmheader`]: the rpm header blob (index entries and data store) and the tags
//!   inspection reads.
//!
//! No crate reads these in `no_std` (../shared/FIELD-NOTES.md, "Crates for the readers"), so
//! they are written here, each small and fuzzed (`kernel/fuzz`). Every reader works over a
//! [`Store`], reading pages on demand rather than the whole file, bounds every loop by the
//! size of the file (cycles in page chains are detected, not followed), and hands each blob
//! to a callback as it is found: a corrupt database yields the blobs read before the damage,
//! then an error.

pub mod bdb;
pub mod ndb;
pub mod rpmheader;
pub mod sqlite;

pub use crate::store::{Bytes, Store, StoreError};

/// The largest blob (an rpm header) any reader hands out or allocates for. Real headers are
/// kilobytes to a few megabytes (a kernel's file list); the appliance runs in 128 MiB, so a
/// forged length must not make it allocate anywhere near that.
pub const MAX_BLOB: u64 = 16 << 20;

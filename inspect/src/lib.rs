//! Portable disk inspection, `no_std + alloc`: everything the appliance does with a disk that
//! does not touch hardware.
//!
//! - [`disk`]: the [`disk::BlockDevice`] trait, a metadata cache, MBR/EBR/GPT, device names;
//! - [`fs`]: the [`fs::FileSystem`] trait, superblock detection, the filesystem readers;
//! - [`inspect`]: libguestfs's inspection rules over those filesystems;
//! - [`appliance`]: the disk scan and the protocol's request handler;
//! - [`guestfs`]: libguestfs's daemon procedures over the same scan (the drop-in appliance).
//!
//! The kernel hosts this crate over its virtio-blk driver; host tests, benchmarks and fuzzers
//! use it directly over images in memory or in files.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod appliance;
pub mod disk;
pub mod fs;
pub mod guestfs;
pub mod hive;
pub mod inspect;
pub mod pkgdb;
pub mod store;

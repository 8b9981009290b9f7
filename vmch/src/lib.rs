//! vmchannel's client library (the `vmch` tool is built on it).
//!
//! - [`demo`]: the bundled demo disk.
pub mod demo;

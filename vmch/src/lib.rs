//! vmchannel's client library: inspect disk images and read their files through the
//! unikernel appliance. The `vmch` tool is built on it.
//!
//! - [`launch`]: start the appliance (bundled VMM or QEMU) with images attached read-only,
//!   and get a connected [`vmchannel_proto::client::Client`];
//! - [`session`]: choose what a path refers to (the OS, a root, a device), and map errors to
//!   [`exit`] statuses;
//! - [`report`], [`xml`], [`summary`]: inspection results as JSON, virt-inspector's XML and
//!   text;
//! - [`transfer`]: verified downloads (sha256 on both sides);
//! - [`agent`]: the QEMU guest agent protocol (`org.qemu.guest_agent.0`);
//! - [`demo`]: the bundled demo disk.
//!
//! ```no_run
//! use vmch::launch::{Appliance, LaunchOptions};
//! use vmch::report::Inspection;
//!
//! let mut appliance = Appliance::launch(&["disk.qcow2".into()], &LaunchOptions::default())?;
//! let oses = appliance.client().inspect(true)?;
//! let report = Inspection::from_infos(&oses, true);
//! print!("{}", vmch::xml::render(&report));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod agent;
pub mod cleanup;
pub mod demo;
pub mod exit;
pub mod fixed_appliance;
pub mod launch;
pub mod report;
pub mod session;
pub mod summary;
pub mod transfer;
pub mod xml;

pub use vmchannel_proto as proto;

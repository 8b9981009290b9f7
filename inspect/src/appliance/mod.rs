//! The inspection appliance: answers [`vmchannel_proto::Request`]s about the disks it was
//! given. [`handler`] turns one request into one reply; the agent that speaks the protocol
//! on `org.vmchannel.appliance.0` is `agents::appliance`.

pub mod disks;
pub mod handler;

pub use disks::DiskSet;
pub use handler::Appliance;

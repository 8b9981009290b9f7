//! Working with a started appliance: choosing what a path refers to, and classifying errors
//! into `vmch`'s exit statuses.

use vmchannel_proto::client::{Client, ClientError};
use vmchannel_proto::{ErrorKind, Target};

use crate::exit;
use crate::launch::LaunchError;

/// Which filesystem tree a path names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Select {
    /// The one operating system on the disks (an error if there are none or several).
    #[default]
    Auto,
    /// The operating system with this root device.
    Root(String),
    /// This filesystem, on its own (`/dev/sda1`).
    Device(String),
}

/// Why a target could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// No operating system was found, and no device was named.
    #[error("no operating system was found on the disk (name a filesystem with --device)")]
    NoOs,
    /// Several operating systems were found, and none was named.
    #[error("several operating systems were found ({}): choose one with --root", .0.join(", "))]
    Several(Vec<String>),
    /// The named root is not an operating system's root.
    #[error("{0} is not the root of an operating system (roots: {roots})", roots = .1.join(", "))]
    NotARoot(String, Vec<String>),
    /// Asking the appliance failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Resolves `select` to a protocol target, inspecting (without applications) if needed.
pub fn target<S: std::io::Read + std::io::Write>(
    client: &mut Client<S>,
    select: &Select,
) -> Result<Target, SelectError> {
    if let Select::Device(dev) = select {
        return Ok(Target::Device(dev.clone()));
    }
    let roots: Vec<String> = client
        .inspect(false)?
        .into_iter()
        .map(|os| os.root)
        .collect();
    match select {
        Select::Root(root) if roots.contains(root) => Ok(Target::Os(root.clone())),
        Select::Root(root) => Err(SelectError::NotARoot(root.clone(), roots)),
        _ => match roots.as_slice() {
            [] => Err(SelectError::NoOs),
            [one] => Ok(Target::Os(one.clone())),
            _ => Err(SelectError::Several(roots)),
        },
    }
}

/// The exit status for a failed request: the file's own problems are [`exit::FAILED`], a disk
/// the appliance cannot read is [`exit::UNREADABLE_IMAGE`], anything else is the appliance's
/// failure.
pub fn client_status(e: &ClientError) -> u8 {
    match e {
        ClientError::Remote(err) => match err.kind {
            ErrorKind::NotFound
            | ErrorKind::NotADirectory
            | ErrorKind::IsADirectory
            | ErrorKind::TooLarge
            | ErrorKind::Unsupported => exit::FAILED,
            ErrorKind::Corrupt | ErrorKind::Io => exit::UNREADABLE_IMAGE,
            ErrorKind::BadRequest | ErrorKind::Cancelled => exit::APPLIANCE_FAILED,
        },
        _ => exit::APPLIANCE_FAILED,
    }
}

/// The exit status for a failed start.
pub fn launch_status(e: &LaunchError) -> u8 {
    match e {
        LaunchError::Image(_) => exit::UNREADABLE_IMAGE,
        LaunchError::Protocol(c) => client_status(c),
        _ => exit::APPLIANCE_FAILED,
    }
}

/// The exit status for a failed target choice.
pub fn select_status(e: &SelectError) -> u8 {
    match e {
        SelectError::NoOs => exit::NO_OS,
        SelectError::Several(_) | SelectError::NotARoot(..) => exit::FAILED,
        SelectError::Client(c) => client_status(c),
    }
}

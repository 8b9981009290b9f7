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
    /// A Windows drive letter that the operating system does not map to a device.
    #[error("drive {letter}: is not a drive of this operating system (drives: {drives})", drives = if .drives.is_empty() { "none found".to_string() } else { .drives.join(", ") })]
    NoDrive {
        /// The letter asked for.
        letter: String,
        /// The letters there are.
        drives: Vec<String>,
    },
    /// A drive letter with `--device`: letters belong to an operating system.
    #[error("a drive letter names a drive of an operating system, not of --device {0}")]
    DriveOnDevice(String),
    /// Asking the appliance failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A path as Windows users write it, `C:\Windows\win.ini` or `c:/windows`: its drive
/// letter and the rest as an absolute path with forward slashes (`/Windows/win.ini`), as
/// guestfs-tools' `windows_path` splits it. `None` for any other path.
pub fn windows_path(path: &str) -> Option<(String, String)> {
    let b = path.as_bytes();
    if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b':' {
        return None;
    }
    let rest = path[2..].replace('\\', "/");
    let rest = if rest.starts_with('/') {
        rest
    } else {
        format!("/{rest}")
    };
    Some((path[..1].to_string(), rest))
}

/// libguestfs's `case_sensitive_path` through the protocol: each component of `path`
/// replaced by the first entry of its directory whose name is the same but for ASCII case;
/// a missing last component is kept as given.
pub fn case_sensitive_path<S: std::io::Read + std::io::Write>(
    client: &mut Client<S>,
    target: &Target,
    path: &str,
) -> Result<String, ClientError> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut out = String::new();
    for (i, comp) in comps.iter().enumerate() {
        let dir = if out.is_empty() { "/" } else { out.as_str() };
        let found = client
            .read_dir(target, dir)?
            .into_iter()
            .find(|e| e.name.eq_ignore_ascii_case(comp))
            .map(|e| e.name);
        match found {
            Some(name) => out = format!("{out}/{name}"),
            None if i + 1 == comps.len() => out = format!("{out}/{comp}"),
            None => {
                return Err(ClientError::Remote(vmchannel_proto::Error {
                    kind: ErrorKind::NotFound,
                    message: format!("{path}: {comp}: not found"),
                }));
            }
        }
    }
    Ok(if out.is_empty() { "/".to_string() } else { out })
}

/// What `path` names under `select`: the target and the path in it. A path with a drive
/// letter (`C:\Windows\win.ini`) names a drive of the selected Windows system, as
/// libguestfs's virt-ls and virt-cat read them: the system's own drive is its OS tree
/// (whose names the appliance finds case-insensitively), another drive is its filesystem,
/// whose names are found case-insensitively here.
pub fn resolve<S: std::io::Read + std::io::Write>(
    client: &mut Client<S>,
    select: &Select,
    path: &str,
) -> Result<(Target, String), SelectError> {
    let Some((letter, rest)) = windows_path(path) else {
        return Ok((target(client, select)?, path.to_string()));
    };
    if let Select::Device(dev) = select {
        return Err(SelectError::DriveOnDevice(dev.clone()));
    }
    let Target::Os(root) = target(client, select)? else {
        unreachable!("an operating system was selected");
    };
    let os = client
        .inspect(false)?
        .into_iter()
        .find(|os| os.root == root)
        .ok_or(SelectError::NoOs)?;
    let Some((_, device)) = os
        .drive_mappings
        .iter()
        .find(|(l, _)| l.eq_ignore_ascii_case(&letter))
    else {
        return Err(SelectError::NoDrive {
            letter,
            drives: os.drive_mappings.into_iter().map(|(l, _)| l).collect(),
        });
    };
    if *device == root {
        return Ok((Target::Os(root), rest));
    }
    let t = Target::Device(device.clone());
    let p = case_sensitive_path(client, &t, &rest)?;
    Ok((t, p))
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
        SelectError::Several(_)
        | SelectError::NotARoot(..)
        | SelectError::NoDrive { .. }
        | SelectError::DriveOnDevice(_) => exit::FAILED,
        SelectError::Client(c) => client_status(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_paths_as_guestfs_tools_split_them() {
        let w = |p: &str| windows_path(p);
        assert_eq!(
            w("C:\\Windows\\win.ini"),
            Some(("C".into(), "/Windows/win.ini".into()))
        );
        assert_eq!(w("d:/data"), Some(("d".into(), "/data".into())));
        assert_eq!(w("c:"), Some(("c".into(), "/".into())));
        assert_eq!(w("c:foo"), Some(("c".into(), "/foo".into())));
        assert_eq!(w("/etc/hosts"), None);
        assert_eq!(w("1:/x"), None);
        assert_eq!(w("C"), None);
        assert_eq!(w("é:/x"), None);
    }
}

//! One request in, one reply out. Downloads are streamed by the agent; this module opens
//! the file for it.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;

use vmchannel_proto::{Error, ErrorKind, MAX_READ, Reply, Request, Stat, Target};

use super::DiskSet;
use crate::disk::BlockDevice;
use crate::fs::{FileSystem, FsError};
use crate::inspect;

/// The appliance's state: the disks, scanned on first use.
pub struct Appliance {
    disks: alloc::vec::Vec<Rc<dyn BlockDevice>>,
    scanned: Option<DiskSet>,
}

/// A file opened for streaming.
pub struct OpenFile {
    /// The tree it lives in.
    pub fs: Rc<dyn FileSystem>,
    /// Its path in that tree.
    pub path: String,
    /// Its size when opened.
    pub size: u64,
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error {
        kind,
        message: message.into(),
    }
}

impl From<FsError> for Error {
    fn from(e: FsError) -> Self {
        error(e.kind(), e.to_string())
    }
}

fn check_path(path: &str) -> Result<(), Error> {
    if !path.starts_with('/') {
        return Err(error(
            ErrorKind::BadRequest,
            format!("path must be absolute: {path:?}"),
        ));
    }
    if path.len() > 4096 || path.contains('\0') {
        return Err(error(
            ErrorKind::BadRequest,
            "path too long or has a NUL byte",
        ));
    }
    Ok(())
}

impl Appliance {
    /// An appliance over these disks (`/dev/sda`, `/dev/sdb` ... in order).
    pub fn new(disks: alloc::vec::Vec<Rc<dyn BlockDevice>>) -> Self {
        Self {
            disks,
            scanned: None,
        }
    }

    /// The scan, done now if not yet.
    pub fn disks(&mut self) -> &DiskSet {
        if self.scanned.is_none() {
            let set = DiskSet::scan(&self.disks);
            for w in &set.warnings {
                log::warn!("disks: {w}");
            }
            self.scanned = Some(set);
        }
        self.scanned.as_ref().expect("scanned just above")
    }

    /// The tree a file request addresses.
    pub fn tree(&mut self, target: &Target) -> Result<Rc<dyn FileSystem>, Error> {
        let disks = self.disks();
        match target {
            Target::Device(name) => {
                let v = disks
                    .volume(name)
                    .ok_or_else(|| error(ErrorKind::NotFound, format!("no device {name}")))?;
                if let Some(e) = disks.open_error(name) {
                    return Err(e.clone().into());
                }
                v.fs.clone().ok_or_else(|| {
                    error(
                        ErrorKind::Unsupported,
                        format!("{name}: cannot read files of a {} volume", v.info.fstype),
                    )
                })
            }
            Target::Os(root) => {
                let tree = inspect::os_tree(&disks.volumes, root)?;
                Ok(Rc::new(tree))
            }
        }
    }

    /// Opens `path` for a download.
    pub fn open(&mut self, target: &Target, path: &str) -> Result<OpenFile, Error> {
        check_path(path)?;
        // In an OS tree, resolve the mounts and links once: the stream then reads the
        // filesystem that holds the file directly.
        let (fs, path) = match target {
            Target::Os(root) => {
                let tree = inspect::os_tree(&self.disks().volumes, root)?;
                tree.locate(path)?
            }
            Target::Device(_) => (self.tree(target)?, path.to_string()),
        };
        let st = fs.stat(&path)?;
        check_regular(&path, &st)?;
        Ok(OpenFile {
            fs,
            size: st.size,
            path,
        })
    }

    /// Answers every request but [`Request::Download`] and [`Request::Checksum`] (which the
    /// agent streams).
    pub fn handle(&mut self, request: &Request) -> Result<Reply, Error> {
        match request {
            Request::ListDevices => Ok(Reply::Devices(self.disks().devices.clone())),
            Request::ListFilesystems => Ok(Reply::Filesystems(
                self.disks()
                    .volumes
                    .iter()
                    .map(|v| v.info.clone())
                    .collect(),
            )),
            Request::Inspect { applications } => {
                let disks = self.disks();
                Ok(Reply::Inspection(inspect::inspect_disks(
                    &disks.volumes,
                    &disks.devices,
                    *applications,
                )))
            }
            Request::ReadDir { target, path } => {
                check_path(path)?;
                Ok(Reply::Entries(self.tree(target)?.read_dir(path)?))
            }
            Request::Stat {
                target,
                path,
                follow,
            } => {
                check_path(path)?;
                let fs = self.tree(target)?;
                Ok(Reply::Stat(if *follow {
                    fs.stat(path)?
                } else {
                    fs.lstat(path)?
                }))
            }
            Request::Read {
                target,
                path,
                offset,
                len,
            } => {
                check_path(path)?;
                if *len > MAX_READ {
                    return Err(error(
                        ErrorKind::TooLarge,
                        format!("read of {len} bytes: at most {MAX_READ} per request"),
                    ));
                }
                let fs = self.tree(target)?;
                let st = fs.stat(path)?;
                check_regular(path, &st)?;
                let mut buf =
                    vec![0u8; (*len as u64).min(st.size.saturating_sub(*offset)) as usize];
                let n = fs.read_at(path, *offset, &mut buf)?;
                buf.truncate(n);
                Ok(Reply::Data(buf))
            }
            Request::Download { .. } | Request::Checksum { .. } => Err(error(
                ErrorKind::BadRequest,
                "downloads and checksums are streamed by the protocol agent",
            )),
            Request::Usage { target, path } => {
                check_path(path)?;
                match target {
                    Target::Device(_) => Ok(Reply::Usage(self.tree(target)?.usage()?)),
                    Target::Os(root) => {
                        let tree = inspect::os_tree(&self.disks().volumes, root)?;
                        Ok(Reply::Usage(tree.usage_at(path)?))
                    }
                }
            }
        }
    }
}

fn check_regular(path: &str, st: &Stat) -> Result<(), Error> {
    match st.kind {
        vmchannel_proto::FileKind::File => Ok(()),
        vmchannel_proto::FileKind::Directory => Err(FsError::IsADirectory(path.to_string()).into()),
        _ => Err(FsError::NotAFile(path.to_string()).into()),
    }
}

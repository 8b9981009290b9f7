//! Copying files out of the appliance: every byte is hashed on the host as it arrives and
//! the digest compared with the sha256 the appliance computed over what it read, so a
//! transfer that was cut, reordered or corrupted on the way is an error, never a silent
//! difference. A download goes to a temporary file beside the destination and is renamed
//! into place only when it is complete and verified.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use vmchannel_proto::Target;
use vmchannel_proto::client::{Client, ClientError};

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The appliance refused or the connection failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The bytes received do not hash to what the appliance sent.
    #[error(
        "checksum mismatch: the appliance sent sha256 {guest}, the bytes received hash to {host}"
    )]
    Mismatch {
        /// The appliance's digest (hex).
        guest: String,
        /// Ours (hex).
        host: String,
    },
    /// Writing on the host failed.
    #[error("{what} {path}: {source}", path = path.display())]
    Write {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// Hex of a digest.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes what passes through it.
struct Hashing<'a> {
    inner: &'a mut dyn Write,
    hash: Sha256,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What a verified transfer moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transferred {
    /// Bytes.
    pub size: u64,
    /// Their sha256, agreed by both sides.
    pub sha256: [u8; 32],
}

/// Streams `path` into `sink`, verifying the checksum. `progress(done, total)` is called as
/// the appliance reports progress.
pub fn copy<S: io::Read + io::Write>(
    client: &mut Client<S>,
    target: &Target,
    path: &str,
    sink: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Transferred, TransferError> {
    let mut hashing = Hashing {
        inner: sink,
        hash: Sha256::new(),
    };
    let (size, guest) = client.download(target, path, &mut hashing, progress)?;
    hashing.flush().map_err(ClientError::Io)?;
    let host: [u8; 32] = hashing.hash.finalize().into();
    if host != guest {
        return Err(TransferError::Mismatch {
            guest: hex(&guest),
            host: hex(&host),
        });
    }
    Ok(Transferred { size, sha256: host })
}

/// Where a download of `path` to `dest` lands: inside `dest` when it is a directory.
pub fn destination(dest: &Path, path: &str) -> PathBuf {
    if dest.is_dir() {
        let name = path
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("download");
        dest.join(name)
    } else {
        dest.to_owned()
    }
}

/// Downloads `path` to the file `dest` (see [`destination`]): written to a temporary file in
/// the same directory and renamed into place once verified; nothing is left behind on failure.
pub fn download<S: io::Read + io::Write>(
    client: &mut Client<S>,
    target: &Target,
    path: &str,
    dest: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(PathBuf, Transferred), TransferError> {
    let dest = destination(dest, path);
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let write_err = |what, source| TransferError::Write {
        what,
        path: dest.clone(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".vmch-download-")
        .tempfile_in(&dir)
        .map_err(|e| write_err("creating a temporary file for", e))?;
    // A signal that stops vmch mid-transfer removes the partial file too.
    let registered = crate::cleanup::file(tmp.path())
        .map_err(|e| write_err("creating a temporary file for", io::Error::other(e)))?;
    let done = {
        let mut out = io::BufWriter::new(tmp.as_file_mut());
        let done = copy(client, target, path, &mut out, progress)?;
        out.flush().map_err(|e| write_err("writing", e))?;
        done
    };
    // Renamed into place in one step with respect to a signal (see `cleanup::persist`).
    crate::cleanup::persist(tmp, registered, &dest)
        .map_err(|e| write_err("renaming the download to", e.error))?;
    Ok((dest, done))
}

//! Disk image formats: which format a file holds, and a read-only [`BlockBackend`] for it.
//!
//! Raw images are read as they are. qcow2 (versions 2 and 3, with compressed clusters and
//! backing files) is read through [imago](https://crates.io/crates/imago), the maintained
//! pure-Rust image library, opened read-only: nothing here can write to an image or to its
//! backing chain. Formats we recognise but cannot read (VMDK, VDI, VHDX, dynamic VHD, QED,
//! qcow version 1) are refused with an error that names them, rather than being mistaken for
//! raw disks. Anything else is raw, as QEMU's `format=raw` would read it.
//!
//! The format is decided from the file's first bytes, never from its name.
//!
//! # Backing files
//!
//! A qcow2 header names other files: a backing file (and that one its own, a chain) and an
//! external data file. The image is untrusted, so it must not choose which host files are
//! opened and handed to the guest. This module reads the headers itself and opens every
//! file of the chain, under a [`BackingPolicy`], before imago sees any of them; imago then gets
//! each layer explicitly and is forbidden to open anything on its own
//! ([`imago::DenyImplicitOpenGate`]). Relative names are resolved against the directory of
//! the image naming them, as QEMU does. Whatever the policy, a file is refused when, with
//! symlinks followed, it is not a regular file (a device node, a FIFO, a socket, a directory),
//! when it is already in the chain (by device and inode: a loop, an image naming itself), or
//! when the chain would hold more than [`MAX_BACKING_DEPTH`] backing files. The chain that was
//! checked is returned ([`OpenedImage::chain`]) so another reader (QEMU) can be given exactly
//! those files.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use imago::qcow2::Qcow2;
use imago::raw::Raw;
use imago::{DenyImplicitOpenGate, FormatAccess, FormatDriverBuilder, StorageOpenOptions};

use super::backend::{BlockBackend, FileBackend};

/// The most backing files followed below an image (the chain holds at most this many files
/// besides the image itself). QEMU has no fixed limit; real chains are a few snapshots deep.
pub const MAX_BACKING_DEPTH: usize = 16;

/// The longest backing file name, in bytes (QEMU refuses longer ones, and so does imago).
const MAX_BACKING_NAME: u32 = 1023;
/// qcow2 cluster sizes run from 512 bytes to 2 MiB; header extensions lie in the first cluster.
const CLUSTER_BITS: std::ops::RangeInclusive<u32> = 9..=21;
/// The header extension that names the backing file's format.
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// The header extension that names the external data file.
const EXT_DATA_FILE: u32 = 0x4441_5441;
/// The incompatible feature bit saying the data is in an external data file.
const INCOMPAT_DATA_FILE: u64 = 1 << 2;

/// Bytes read from the start of a file to tell its format.
const PROBE_BYTES: usize = 512;

/// An image format this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// The bytes are the disk.
    Raw,
    /// QEMU copy-on-write, version 2 or 3.
    Qcow2,
}

impl ImageFormat {
    /// The name QEMU uses for the format (`-drive format=`).
    pub fn qemu_name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.qemu_name())
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A format this module reads.
    Readable(ImageFormat),
    /// A container format recognised but not read (its name).
    Unsupported(&'static str),
}

/// Which backing files (and external data files) an image may lead vmchannel to open.
///
/// Loops, chains deeper than [`MAX_BACKING_DEPTH`] and anything but regular files are refused
/// under every policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackingPolicy {
    /// Only files in the directory the top image was named in, with symlinks followed: a
    /// symlink there pointing elsewhere does not count as beside the image.
    #[default]
    Beside,
    /// Any regular file the headers name (`vmch --allow-backing`): for images you trust.
    Any,
}

/// A file a qcow2 header names besides itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The backing file, read where the image has no data of its own.
    BackingFile,
    /// The external data file, which holds the image's data.
    DataFile,
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dependency::BackingFile => "backing file",
            Dependency::DataFile => "external data file",
        })
    }
}

/// One image of a backing chain, as checked and opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The file: for the top image, the path as given; below it, the real path (symlinks
    /// followed) that was checked and opened.
    pub path: PathBuf,
    /// Its format.
    pub format: ImageFormat,
    /// A qcow2 layer's external data file (its real path), if the header requires one.
    pub data_file: Option<PathBuf>,
}

/// Why an image could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}", path = path.display())]
    Io {
        /// The image.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The path names a directory.
    #[error("{path} is a directory, not a disk image", path = path.display())]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// The file is in a format that is recognised but not read.
    #[error("{path} is a {format} image, which vmchannel cannot read (convert it with `qemu-img convert -O qcow2`)", path = path.display())]
    Unsupported {
        /// The image.
        path: PathBuf,
        /// The format's name.
        format: &'static str,
    },
    /// The qcow2 image is corrupt or uses a feature imago does not read (encryption, an
    /// external data file, a missing backing file ...).
    #[error("cannot read qcow2 image {path}: {source}", path = path.display())]
    Qcow2 {
        /// The image.
        path: PathBuf,
        /// imago's explanation.
        #[source]
        source: io::Error,
    },
    /// A qcow2 header is malformed where it names other files (a backing file name too long
    /// or outside the first cluster, an unknown backing format, a data file required but not
    /// named).
    #[error("cannot read qcow2 image {path}: {reason}", path = path.display())]
    Header {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A backing or data file lies outside the top image's directory, and the policy is
    /// [`BackingPolicy::Beside`].
    #[error(
        "{image}{chain} names {name:?} as its {what}, which is {real}, not in the directory of \
         {top}: vmch follows backing files only beside the image; pass --allow-backing if you \
         trust the image",
        image = image.display(), chain = in_chain(top, image), real = real.display(),
        top = top.display()
    )]
    Outside {
        /// The top image.
        top: PathBuf,
        /// The image whose header names the file.
        image: PathBuf,
        /// Which file it is.
        what: Dependency,
        /// The name in the header.
        name: PathBuf,
        /// Where it leads, symlinks followed.
        real: PathBuf,
    },
    /// A backing or data file is already in the chain: a loop (an image naming itself, A
    /// backed by B backed by A), refused under every policy.
    #[error(
        "{image}{chain} names {name:?} as its {what}, which is {real}, already in the backing \
         chain: a loop, refused even with --allow-backing",
        image = image.display(), chain = in_chain(top, image), real = real.display()
    )]
    Loop {
        /// The top image.
        top: PathBuf,
        /// The image whose header names the file.
        image: PathBuf,
        /// Which file it is.
        what: Dependency,
        /// The name in the header.
        name: PathBuf,
        /// Where it leads, symlinks followed.
        real: PathBuf,
    },
    /// The chain holds more than [`MAX_BACKING_DEPTH`] backing files, refused under every
    /// policy.
    #[error(
        "{top}'s backing chain is more than {MAX_BACKING_DEPTH} files deep ({image} names \
         {name:?} below that), refused even with --allow-backing; flatten it with \
         `qemu-img convert`",
        top = top.display(), image = image.display()
    )]
    TooDeep {
        /// The top image.
        top: PathBuf,
        /// The image at the limit, whose header names one more.
        image: PathBuf,
        /// The name in its header.
        name: PathBuf,
    },
    /// A backing or data file is not a regular file once symlinks are followed (a device
    /// node, a FIFO, a socket, a directory), refused under every policy.
    #[error(
        "{image}{chain} names {name:?} as its {what}, which is {kind} ({real}), not a regular \
         file: refused even with --allow-backing",
        image = image.display(), chain = in_chain(top, image), real = real.display()
    )]
    NotRegular {
        /// The top image.
        top: PathBuf,
        /// The image whose header names the file.
        image: PathBuf,
        /// Which file it is.
        what: Dependency,
        /// The name in the header.
        name: PathBuf,
        /// Where it leads, symlinks followed.
        real: PathBuf,
        /// What it is instead ("a character device" ...).
        kind: &'static str,
    },
    /// A backing or data file cannot be found or opened.
    #[error(
        "{image}{chain} names {name:?} as its {what}, which cannot be opened ({resolved}): \
         {source}",
        image = image.display(), chain = in_chain(top, image), resolved = resolved.display()
    )]
    DependencyUnreadable {
        /// The top image.
        top: PathBuf,
        /// The image whose header names the file.
        image: PathBuf,
        /// Which file it is.
        what: Dependency,
        /// The name in the header.
        name: PathBuf,
        /// The name resolved against the image's directory.
        resolved: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}

/// " (in the backing chain of TOP)" when `image` is below the top image.
fn in_chain(top: &Path, image: &Path) -> String {
    if top == image {
        String::new()
    } else {
        format!(" (in the backing chain of {})", top.display())
    }
}

/// Tells the format from a file's first bytes (its first 512, or fewer if the file is short).
pub fn probe_bytes(head: &[u8]) -> Probe {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"QFI\xfb") {
        // The version follows the magic, big-endian.
        return match head.get(4..8) {
            Some([0, 0, 0, 1]) => Probe::Unsupported("qcow (version 1)"),
            _ => Probe::Readable(ImageFormat::Qcow2),
        };
    }
    if at(0, b"KDMV") || at(0, b"COWD") || at(0, b"# Disk DescriptorFile") {
        return Probe::Unsupported("VMDK");
    }
    if at(0x40, &0xbeda_107f_u32.to_le_bytes()) {
        return Probe::Unsupported("VDI");
    }
    if at(0, b"vhdxfile") {
        return Probe::Unsupported("VHDX");
    }
    // A fixed VHD is raw data with a footer at the end, and reads correctly as raw; only the
    // dynamic and differencing kinds carry the cookie at the start.
    if at(0, b"conectix") {
        return Probe::Unsupported("VHD (dynamic)");
    }
    if at(0, b"QED\0") {
        return Probe::Unsupported("QED");
    }
    Probe::Readable(ImageFormat::Raw)
}

/// Tells the format of the image at `path`.
pub fn probe(path: &Path) -> Result<ImageFormat, ImageError> {
    let io_err = |source| ImageError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    if file.metadata().map_err(io_err)?.is_dir() {
        return Err(ImageError::IsDirectory {
            path: path.to_owned(),
        });
    }
    let mut head = Vec::with_capacity(PROBE_BYTES);
    file.take(PROBE_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    match probe_bytes(&head) {
        Probe::Readable(format) => Ok(format),
        Probe::Unsupported(format) => Err(ImageError::Unsupported {
            path: path.to_owned(),
            format,
        }),
    }
}

/// The open files of one [`Layer`]: the very files that were checked, for a reader that must
/// be handed exactly those (QEMU, through inherited descriptors) rather than their names.
#[derive(Debug, Clone)]
pub struct LayerFiles {
    /// The layer's image file, opened read-only.
    pub image: Arc<File>,
    /// Its external data file, opened read-only, if it has one.
    pub data: Option<Arc<File>>,
}

/// An image opened for reading.
pub struct OpenedImage {
    /// Its format.
    pub format: ImageFormat,
    /// The disk's bytes.
    pub backend: Box<dyn BlockBackend>,
    /// The files read, top image first, then each backing file in turn (one layer for a raw
    /// image or a qcow2 without a backing file).
    pub chain: Vec<Layer>,
    /// The same files, open (as many as `chain`, in the same order).
    pub files: Vec<LayerFiles>,
}

impl std::fmt::Debug for OpenedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedImage")
            .field("format", &self.format)
            .field("len", &self.backend.len())
            .field("chain", &self.chain)
            .finish()
    }
}

/// Opens the image at `path` read-only, in whichever format it holds, following backing
/// files only beside it ([`BackingPolicy::Beside`]).
pub fn open(path: &Path) -> Result<OpenedImage, ImageError> {
    open_with(path, BackingPolicy::default())
}

/// Opens the image at `path` read-only, in whichever format it holds, following backing and
/// data files as `policy` allows (see the [module documentation](self)).
pub fn open_with(path: &Path, policy: BackingPolicy) -> Result<OpenedImage, ImageError> {
    let format = probe(path)?;
    let io_err = |source| ImageError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let (backend, chain, files): (Box<dyn BlockBackend>, _, _) = match format {
        ImageFormat::Raw => {
            let layer = Layer {
                path: path.to_owned(),
                format,
                data_file: None,
            };
            let files = LayerFiles {
                image: Arc::new(file.try_clone().map_err(io_err)?),
                data: None,
            };
            (
                Box::new(FileBackend::open(file).map_err(io_err)?),
                vec![layer],
                vec![files],
            )
        }
        ImageFormat::Qcow2 => {
            let open = walk(path, file, policy)?;
            let chain = open.iter().map(|l| l.layer.clone()).collect();
            let files = open
                .iter()
                .map(|l| {
                    let dup = |f: &File| {
                        f.try_clone()
                            .map(Arc::new)
                            .map_err(|source| ImageError::Io {
                                path: l.layer.path.clone(),
                                source,
                            })
                    };
                    Ok(LayerFiles {
                        image: dup(&l.file)?,
                        data: l.data.as_ref().map(dup).transpose()?,
                    })
                })
                .collect::<Result<Vec<_>, ImageError>>()?;
            (Box::new(Qcow2Backend::assemble(open)?), chain, files)
        }
    };
    Ok(OpenedImage {
        format,
        backend,
        chain,
        files,
    })
}

mod chain;
mod qcow2;
#[cfg(test)]
mod tests;

use chain::walk;
pub use qcow2::Qcow2Backend;

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

/// Tells the format from a file's first bytes (fewer than [`PROBE_BYTES`] if the file is short).
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

/// An image opened for reading.
pub struct OpenedImage {
    /// Its format.
    pub format: ImageFormat,
    /// The disk's bytes.
    pub backend: Box<dyn BlockBackend>,
    /// The files read, top image first, then each backing file in turn (one layer for a raw
    /// image or a qcow2 without a backing file).
    pub chain: Vec<Layer>,
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
    let (backend, chain): (Box<dyn BlockBackend>, _) = match format {
        ImageFormat::Raw => {
            let layer = Layer {
                path: path.to_owned(),
                format,
                data_file: None,
            };
            (
                Box::new(FileBackend::open(file).map_err(io_err)?),
                vec![layer],
            )
        }
        ImageFormat::Qcow2 => {
            let open = walk(path, file, policy)?;
            let chain = open.iter().map(|l| l.layer.clone()).collect();
            (Box::new(Qcow2Backend::assemble(open)?), chain)
        }
    };
    Ok(OpenedImage {
        format,
        backend,
        chain,
    })
}

/// What a qcow2 header says about other files.
#[derive(Debug, Default)]
struct Header {
    /// The backing file's name and, if given, its format.
    backing: Option<(OsString, Option<String>)>,
    /// The external data file's name, if the image requires one.
    data_file: Option<OsString>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads up to `buf.len()` bytes at `offset`, fewer at the end of the file.
fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads the parts of a qcow2 header that name other files. Everything read is bounded by
/// the first cluster (at most 2 MiB) and the name by [`MAX_BACKING_NAME`].
fn read_header(file: &File, path: &Path) -> Result<Header, ImageError> {
    let bad = |reason: String| ImageError::Header {
        path: path.to_owned(),
        reason,
    };
    let io_err = |source| ImageError::Qcow2 {
        path: path.to_owned(),
        source,
    };
    let mut fixed = [0u8; 104];
    let n = read_up_to(file, &mut fixed, 0).map_err(io_err)?;
    if n < 72 {
        return Err(bad(format!("the header is cut short ({n} bytes)")));
    }
    let version = be32(&fixed, 4);
    let backing_offset = be64(&fixed, 8);
    let backing_size = be32(&fixed, 16);
    let cluster_bits = be32(&fixed, 20);
    if !CLUSTER_BITS.contains(&cluster_bits) {
        return Err(bad(format!("cluster_bits {cluster_bits} is out of range")));
    }
    let cluster = 1u64 << cluster_bits;
    let (incompatible, header_len) = match version {
        2 => (0, 72),
        3 if n == fixed.len() => (be64(&fixed, 72), u64::from(be32(&fixed, 100))),
        3 => {
            return Err(bad(format!(
                "the version 3 header is cut short ({n} bytes)"
            )));
        }
        v => return Err(bad(format!("version {v} is not 2 or 3"))),
    };
    if header_len < 72 || header_len > cluster {
        return Err(bad(format!("header_length {header_len} is out of range")));
    }
    let mut header = Header::default();
    let mut backing_name = None;
    if backing_offset != 0 && backing_size != 0 {
        if backing_size > MAX_BACKING_NAME {
            return Err(bad(format!(
                "the backing file name is {backing_size} bytes long, more than {MAX_BACKING_NAME}"
            )));
        }
        if backing_offset.saturating_add(u64::from(backing_size)) > cluster {
            return Err(bad(
                "the backing file name lies outside the first cluster".into()
            ));
        }
        let mut name = vec![0u8; backing_size as usize];
        file.read_exact_at(&mut name, backing_offset)
            .map_err(io_err)?;
        backing_name = Some(OsString::from_vec(name));
    }
    // Header extensions run from the end of the header to the backing file name, or to the
    // end of the first cluster.
    let ext_end = if backing_offset != 0 {
        backing_offset.min(cluster)
    } else {
        cluster
    };
    let mut ext = vec![0u8; ext_end.saturating_sub(header_len) as usize];
    let got = read_up_to(file, &mut ext, header_len).map_err(io_err)?;
    ext.truncate(got);
    let mut backing_format = None;
    let mut data_name = None;
    let mut at = 0usize;
    while at + 8 <= ext.len() {
        let (kind, len) = (be32(&ext, at), be32(&ext, at + 4) as usize);
        at += 8;
        if kind == 0 {
            break;
        }
        let Some(data) = ext.get(at..at.saturating_add(len)) else {
            return Err(bad(format!(
                "header extension {kind:#x} runs past the end of the header"
            )));
        };
        match kind {
            EXT_BACKING_FORMAT => backing_format = Some(String::from_utf8_lossy(data).into_owned()),
            EXT_DATA_FILE => data_name = Some(OsStr::from_bytes(data).to_owned()),
            _ => {}
        }
        at = at.saturating_add(len.next_multiple_of(8));
    }
    header.backing = backing_name.map(|n| (n, backing_format));
    if incompatible & INCOMPAT_DATA_FILE != 0 {
        match data_name {
            Some(name) if !name.is_empty() => header.data_file = Some(name),
            _ => {
                return Err(bad(
                    "it requires an external data file but does not name one".into(),
                ));
            }
        }
    }
    Ok(header)
}

/// What a file is, if it is not a regular file.
fn not_regular(kind: fs::FileType) -> Option<&'static str> {
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// One layer of a chain being opened: its checked file, and how it was reached.
struct OpenLayer {
    /// The layer as reported.
    layer: Layer,
    /// The path it was reached by (the top image's path, or a name resolved against the
    /// directory of the image naming it): the base for the relative names in its header.
    reached_as: PathBuf,
    /// The image file, opened read-only.
    file: File,
    /// The external data file, opened read-only.
    data: Option<File>,
}

/// The state of a chain walk: what is allowed, and what has been opened.
struct Walk<'a> {
    top: &'a Path,
    /// The top image's directory, symlinks followed.
    dir: PathBuf,
    policy: BackingPolicy,
    /// Device and inode of every file opened so far.
    seen: Vec<(u64, u64)>,
}

impl Walk<'_> {
    /// Checks and opens the file `image`'s header names as `what`. Returns the file, the name
    /// as resolved (the base for its own relative names) and its real path.
    fn open_dependency(
        &mut self,
        image: &Path,
        name: &OsStr,
        what: Dependency,
    ) -> Result<(File, PathBuf, PathBuf), ImageError> {
        let name = Path::new(name);
        let resolved = if name.is_absolute() {
            name.to_owned()
        } else {
            image.parent().unwrap_or(Path::new("")).join(name)
        };
        let unreadable = |source| ImageError::DependencyUnreadable {
            top: self.top.to_owned(),
            image: image.to_owned(),
            what,
            name: name.to_owned(),
            resolved: resolved.clone(),
            source,
        };
        let real = fs::canonicalize(&resolved).map_err(unreadable)?;
        let meta = fs::metadata(&real).map_err(unreadable)?;
        if let Some(kind) = not_regular(meta.file_type()) {
            return Err(ImageError::NotRegular {
                top: self.top.to_owned(),
                image: image.to_owned(),
                what,
                name: name.to_owned(),
                real,
                kind,
            });
        }
        if self.seen.contains(&(meta.dev(), meta.ino())) {
            return Err(ImageError::Loop {
                top: self.top.to_owned(),
                image: image.to_owned(),
                what,
                name: name.to_owned(),
                real,
            });
        }
        if self.policy == BackingPolicy::Beside && real.parent() != Some(self.dir.as_path()) {
            return Err(ImageError::Outside {
                top: self.top.to_owned(),
                image: image.to_owned(),
                what,
                name: name.to_owned(),
                real,
            });
        }
        // Non-blocking, so a file swapped for a FIFO after the check cannot hang the open;
        // the check is then repeated on what was opened.
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&real)
            .map_err(unreadable)?;
        let opened = file.metadata().map_err(unreadable)?;
        if !opened.is_file() || (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
            return Err(unreadable(io::Error::other(
                "the file changed while it was being opened",
            )));
        }
        self.seen.push((meta.dev(), meta.ino()));
        Ok((file, resolved, real))
    }
}

/// Walks the chain below the qcow2 image `top` (open as `file`) under `policy`, checking and
/// opening every file its headers name; the top image first.
fn walk(top: &Path, file: File, policy: BackingPolicy) -> Result<Vec<OpenLayer>, ImageError> {
    let io_err = |source| ImageError::Io {
        path: top.to_owned(),
        source,
    };
    let parent = top
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let meta = file.metadata().map_err(io_err)?;
    let mut walk = Walk {
        top,
        dir: fs::canonicalize(parent).map_err(io_err)?,
        policy,
        seen: vec![(meta.dev(), meta.ino())],
    };
    let mut chain = Vec::new();
    let mut current = OpenLayer {
        layer: Layer {
            path: top.to_owned(),
            format: ImageFormat::Qcow2,
            data_file: None,
        },
        reached_as: top.to_owned(),
        file,
        data: None,
    };
    loop {
        let header = read_header(&current.file, &current.reached_as)?;
        if let Some(name) = &header.data_file {
            let (file, _, real) =
                walk.open_dependency(&current.reached_as, name, Dependency::DataFile)?;
            current.layer.data_file = Some(real);
            current.data = Some(file);
        }
        let Some((name, format)) = header.backing else {
            chain.push(current);
            return Ok(chain);
        };
        // `chain` holds the layers above `current`, one backing file each.
        if chain.len() >= MAX_BACKING_DEPTH {
            return Err(ImageError::TooDeep {
                top: top.to_owned(),
                image: current.reached_as,
                name: PathBuf::from(name),
            });
        }
        let (file, resolved, real) =
            walk.open_dependency(&current.reached_as, &name, Dependency::BackingFile)?;
        let format = match format.as_deref() {
            Some("qcow2") => ImageFormat::Qcow2,
            Some("raw") | Some("file") => ImageFormat::Raw,
            Some(other) => {
                return Err(ImageError::Header {
                    path: current.reached_as,
                    reason: format!("backing file format {other:?} is not raw or qcow2"),
                });
            }
            // No format in the header: told from the contents, as QEMU and imago do.
            None => {
                let mut head = [0u8; PROBE_BYTES];
                let n = read_up_to(&file, &mut head, 0).map_err(|source| ImageError::Io {
                    path: real.clone(),
                    source,
                })?;
                match probe_bytes(&head[..n]) {
                    Probe::Readable(format) => format,
                    Probe::Unsupported(format) => {
                        return Err(ImageError::Unsupported { path: real, format });
                    }
                }
            }
        };
        chain.push(current);
        current = OpenLayer {
            layer: Layer {
                path: real,
                format,
                data_file: None,
            },
            reached_as: resolved,
            file,
            data: None,
        };
        if format == ImageFormat::Raw {
            chain.push(current);
            return Ok(chain);
        }
    }
}

/// A qcow2 image (and its backing chain) read through imago.
pub struct Qcow2Backend {
    access: FormatAccess<imago::file::File>,
}

/// Hands a checked, opened file to imago (read-only; its name kept for error messages).
fn storage(file: File, path: &Path) -> io::Result<imago::file::File> {
    imago::file::File::from_open_file(file, StorageOpenOptions::new().filename(path).write(false))
}

impl Qcow2Backend {
    /// Opens the qcow2 image at `path` read-only, following backing files only beside it
    /// ([`BackingPolicy::Beside`]). Its backing files are opened read-only too, in the
    /// format the header gives (qcow2 or raw).
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        Self::open_with(path, BackingPolicy::default())
    }

    /// Opens the qcow2 image at `path` read-only, following backing files as `policy` allows.
    pub fn open_with(path: &Path, policy: BackingPolicy) -> Result<Self, ImageError> {
        let file = File::open(path).map_err(|source| ImageError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::assemble(walk(path, file, policy)?)
    }

    /// Builds imago's images from the bottom of a checked chain up, each given its backing
    /// image and data file explicitly; imago may open nothing itself.
    fn assemble(chain: Vec<OpenLayer>) -> Result<Self, ImageError> {
        let mut below: Option<FormatAccess<imago::file::File>> = None;
        for layer in chain.into_iter().rev() {
            let path = layer.layer.path;
            let err = |source| ImageError::Qcow2 {
                path: path.clone(),
                source,
            };
            let image = storage(layer.file, &path).map_err(err)?;
            let access = match layer.layer.format {
                ImageFormat::Raw => FormatAccess::new(
                    Raw::builder(image)
                        .write(false)
                        .open(DenyImplicitOpenGate::default())
                        .map_err(err)?,
                ),
                ImageFormat::Qcow2 => {
                    let data = match (layer.data, &layer.layer.data_file) {
                        (Some(file), Some(data_path)) => {
                            Some(storage(file, data_path).map_err(err)?)
                        }
                        _ => None,
                    };
                    FormatAccess::new(
                        Qcow2::<imago::file::File>::builder(image)
                            .write(false)
                            .backing(below.take())
                            .data_file(data)
                            .open(DenyImplicitOpenGate::default())
                            .map_err(err)?,
                    )
                }
            };
            below = Some(access);
        }
        let access = below.ok_or_else(|| ImageError::Header {
            path: PathBuf::new(),
            reason: "empty backing chain".into(),
        })?;
        Ok(Qcow2Backend { access })
    }
}

impl BlockBackend for Qcow2Backend {
    fn len(&self) -> u64 {
        self.access.size()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.access.read(buf, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Block;
    use super::*;
    use std::process::Command;

    fn qemu_img() -> bool {
        let found = Command::new("qemu-img").arg("--version").output().is_ok();
        if !found {
            // CI installs qemu-utils: there, a missing qemu-img is a failure, not a skip.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "qemu-img not found, and CI=true"
            );
            eprintln!("SKIPPED: qemu-img not found");
        }
        found
    }

    /// `qemu-img create -f qcow2 -u -b BACKING -F FORMAT PATH 4M`: a header naming `backing`
    /// as it is given, unchecked (the backing file need not exist, nor be what it says).
    fn overlay(path: &Path, backing: &OsStr, format: &str) {
        let ok = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-u", "-F", format, "-b"])
            .arg(backing)
            .arg(path)
            .arg("4M")
            .status()
            .unwrap();
        assert!(ok.success(), "qemu-img create {path:?}");
    }

    /// A 4 MiB raw disk with a recognisable pattern at 1 MiB.
    fn base(path: &Path) -> Vec<u8> {
        let mut bytes = vec![0u8; 4 << 20];
        for (i, b) in bytes.iter_mut().enumerate().skip(1 << 20).take(4096) {
            *b = (i % 251) as u8;
        }
        fs::write(path, &bytes).unwrap();
        bytes
    }

    fn reads_like(image: &OpenedImage, bytes: &[u8]) {
        let mut got = vec![0u8; 8192];
        image.backend.read_at(&mut got, (1 << 20) - 4096).unwrap();
        assert_eq!(got, bytes[(1 << 20) - 4096..(1 << 20) + 4096]);
    }

    #[test]
    fn overlay_beside_its_base_reads_through_and_reports_its_chain() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bytes = base(&dir.path().join("base.raw"));
        let mid = dir.path().join("mid.qcow2");
        overlay(&mid, OsStr::new("base.raw"), "raw");
        let top = dir.path().join("top.qcow2");
        // An absolute name beside the image is beside it too.
        overlay(&top, mid.as_os_str(), "qcow2");
        let image = open(&top).unwrap();
        reads_like(&image, &bytes);
        let real = fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            image.chain,
            vec![
                Layer {
                    path: top.clone(),
                    format: ImageFormat::Qcow2,
                    data_file: None
                },
                Layer {
                    path: real.join("mid.qcow2"),
                    format: ImageFormat::Qcow2,
                    data_file: None
                },
                Layer {
                    path: real.join("base.raw"),
                    format: ImageFormat::Raw,
                    data_file: None
                },
            ]
        );
        // A symlink beside the image to a file beside it is fine.
        std::os::unix::fs::symlink("base.raw", dir.path().join("link.raw")).unwrap();
        let via_link = dir.path().join("via-link.qcow2");
        overlay(&via_link, OsStr::new("link.raw"), "raw");
        let image = open(&via_link).unwrap();
        reads_like(&image, &bytes);
        assert_eq!(image.chain[1].path, real.join("base.raw"));
    }

    #[test]
    fn an_image_naming_itself_is_a_loop_not_a_stack_overflow() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let me = dir.path().join("self.qcow2");
        overlay(&me, OsStr::new("self.qcow2"), "qcow2");
        for policy in [BackingPolicy::Beside, BackingPolicy::Any] {
            let err = open_with(&me, policy).unwrap_err();
            assert!(
                matches!(&err, ImageError::Loop { image, what: Dependency::BackingFile, .. } if image == &me),
                "{err}"
            );
            let msg = err.to_string();
            assert!(msg.contains("self.qcow2") && msg.contains("loop"), "{msg}");
        }
    }

    #[test]
    fn a_loop_of_two_images_is_refused() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.qcow2");
        let b = dir.path().join("b.qcow2");
        overlay(&a, OsStr::new("b.qcow2"), "qcow2");
        overlay(&b, OsStr::new("a.qcow2"), "qcow2");
        let err = open_with(&a, BackingPolicy::Any).unwrap_err();
        // b.qcow2 (reached as DIR/b.qcow2) names a.qcow2, the top image.
        assert!(
            matches!(&err, ImageError::Loop { top, image, .. }
                if top == &a && image == &b),
            "{err}"
        );
        assert!(err.to_string().contains("in the backing chain of"), "{err}");
        // Through a hard link the name differs but the inode does not.
        fs::hard_link(&a, dir.path().join("a-again.qcow2")).unwrap();
        overlay(&b, OsStr::new("a-again.qcow2"), "qcow2");
        assert!(matches!(open(&a), Err(ImageError::Loop { .. })));
    }

    #[test]
    fn a_chain_deeper_than_the_cap_is_refused_and_one_at_the_cap_reads() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bytes = base(&dir.path().join("l0.raw"));
        let mut below = "l0.raw".to_owned();
        let mut format = "raw";
        for i in 1..=MAX_BACKING_DEPTH + 1 {
            let name = format!("l{i}.qcow2");
            overlay(&dir.path().join(&name), OsStr::new(&below), format);
            below = name;
            format = "qcow2";
        }
        // l16 has 16 backing files below it: the cap, read through.
        let at_cap = dir.path().join(format!("l{MAX_BACKING_DEPTH}.qcow2"));
        let image = open(&at_cap).unwrap();
        assert_eq!(image.chain.len(), MAX_BACKING_DEPTH + 1);
        reads_like(&image, &bytes);
        // l17 has 17.
        let deeper = dir.path().join(format!("l{}.qcow2", MAX_BACKING_DEPTH + 1));
        for policy in [BackingPolicy::Beside, BackingPolicy::Any] {
            let err = open_with(&deeper, policy).unwrap_err();
            assert!(
                matches!(&err, ImageError::TooDeep { top, name, .. }
                    if top == &deeper && name == Path::new("l0.raw")),
                "{err}"
            );
            assert!(err.to_string().contains("16 files deep"), "{err}");
        }
    }

    #[test]
    fn a_backing_file_elsewhere_needs_the_option() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let elsewhere = other.path().join("base.raw");
        let bytes = base(&elsewhere);
        // Named absolutely, and relatively through "..".
        let absolute = dir.path().join("absolute.qcow2");
        overlay(&absolute, elsewhere.as_os_str(), "raw");
        fs::create_dir(dir.path().join("sub")).unwrap();
        base(&dir.path().join("up.raw"));
        let relative = dir.path().join("sub/relative.qcow2");
        overlay(&relative, OsStr::new("../up.raw"), "raw");
        for image in [&absolute, &relative] {
            let err = open(image).unwrap_err();
            assert!(matches!(&err, ImageError::Outside { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains("--allow-backing"), "{msg}");
            assert!(matches!(
                Block::open(image, Default::default()),
                Err(super::super::BlockError::Image(ImageError::Outside { .. }))
            ));
            assert!(open_with(image, BackingPolicy::Any).is_ok());
        }
        reads_like(&open_with(&absolute, BackingPolicy::Any).unwrap(), &bytes);
        // The shape of the issue: a header naming /etc/shadow, never opened by default.
        let shadow = dir.path().join("shadow.qcow2");
        overlay(&shadow, OsStr::new("/etc/shadow"), "raw");
        let err = open(&shadow).unwrap_err();
        assert!(
            matches!(&err, ImageError::Outside { real, .. } if real == Path::new("/etc/shadow")),
            "{err}"
        );
    }

    #[test]
    fn a_symlink_beside_the_image_pointing_elsewhere_is_not_beside_it() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let target = other.path().join("secret.raw");
        base(&target);
        std::os::unix::fs::symlink(&target, dir.path().join("base.raw")).unwrap();
        let top = dir.path().join("top.qcow2");
        overlay(&top, OsStr::new("base.raw"), "raw");
        let err = open(&top).unwrap_err();
        assert!(
            matches!(&err, ImageError::Outside { real, .. }
                if real == &fs::canonicalize(&target).unwrap()),
            "{err}"
        );
        let image = open_with(&top, BackingPolicy::Any).unwrap();
        assert_eq!(image.chain[1].path, fs::canonicalize(&target).unwrap());
    }

    #[test]
    fn devices_fifos_sockets_and_directories_are_refused_under_every_policy() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        fs::create_dir(dir.path().join("subdir")).unwrap();
        // A symlink beside the image to a device: the device is what counts.
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
        let cases: [(&str, &str); 6] = [
            ("/dev/null", "a character device"),
            ("zero", "a character device"),
            ("fifo", "a FIFO"),
            ("sock", "a socket"),
            ("subdir", "a directory"),
            (".", "a directory"),
        ];
        for (name, kind_wanted) in cases {
            let top = dir.path().join("top.qcow2");
            overlay(&top, OsStr::new(name), "raw");
            for policy in [BackingPolicy::Beside, BackingPolicy::Any] {
                // A FIFO with no writer would block an ordinary open: this must return.
                let err = open_with(&top, policy).unwrap_err();
                assert!(
                    matches!(&err, ImageError::NotRegular { kind, .. } if *kind == kind_wanted),
                    "{name}: {err}"
                );
                assert!(err.to_string().contains(kind_wanted), "{err}");
            }
        }
    }

    #[test]
    fn an_external_data_file_obeys_the_same_policy() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let create = |image: &Path, data: &Path| {
            let ok = Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-o"])
                .arg(format!(
                    "data_file={},data_file_raw=on",
                    data.display().to_string().replace(',', ",,")
                ))
                .arg(image)
                .arg("4M")
                .status()
                .unwrap();
            assert!(ok.success());
        };
        // Beside: read (data_file_raw: the data file's bytes are the disk's).
        let bytes = base(&dir.path().join("data.raw"));
        let top = dir.path().join("top.qcow2");
        create(&top, &dir.path().join("data.raw"));
        fs::write(dir.path().join("data.raw"), &bytes).unwrap();
        let image = open(&top).unwrap();
        reads_like(&image, &bytes);
        assert_eq!(
            image.chain[0].data_file,
            Some(fs::canonicalize(dir.path().join("data.raw")).unwrap())
        );
        // Elsewhere: refused by default, read with the option.
        let far = dir.path().join("far.qcow2");
        create(&far, &other.path().join("data.raw"));
        let err = open(&far).unwrap_err();
        assert!(
            matches!(
                &err,
                ImageError::Outside {
                    what: Dependency::DataFile,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("external data file"), "{err}");
        assert!(open_with(&far, BackingPolicy::Any).is_ok());
        // Its own file as data file: a loop.
        let own = dir.path().join("own.qcow2");
        create(&own, &dir.path().join("scratch.raw"));
        let mut header = fs::read(&own).unwrap();
        let at = header
            .windows(4)
            .position(|w| w == EXT_DATA_FILE.to_be_bytes())
            .unwrap();
        let old_len = be32(&header, at + 4) as usize;
        assert!(old_len >= 9);
        // The extension's name becomes "own.qcow2" (relative to the image), NUL-padded.
        header[at + 4..at + 8].copy_from_slice(&9u32.to_be_bytes());
        header[at + 8..at + 8 + old_len].fill(0);
        header[at + 8..at + 17].copy_from_slice(b"own.qcow2");
        fs::write(&own, &header).unwrap();
        let err = open(&own).unwrap_err();
        assert!(
            matches!(
                &err,
                ImageError::Loop {
                    what: Dependency::DataFile,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn forged_headers_are_errors_not_panics() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.qcow2");
        base(&dir.path().join("base.raw"));
        overlay(&good, OsStr::new("base.raw"), "raw");
        let header = fs::read(&good).unwrap();
        let forge = |name: &str, at: usize, value: &[u8]| {
            let mut h = header.clone();
            h[at..at + value.len()].copy_from_slice(value);
            let path = dir.path().join(name);
            fs::write(&path, &h).unwrap();
            open(&path).unwrap_err()
        };
        // backing_file_size over QEMU's 1023.
        let err = forge("long.qcow2", 16, &4096u32.to_be_bytes());
        assert!(matches!(&err, ImageError::Header { .. }), "{err}");
        assert!(err.to_string().contains("1023"), "{err}");
        // A name far beyond the first cluster.
        let err = forge("far.qcow2", 8, &(u64::MAX - 3).to_be_bytes());
        assert!(matches!(err, ImageError::Header { .. }), "{err}");
        // An unknown backing format.
        let at = header.windows(3).position(|w| w == b"raw").unwrap();
        let err = forge("fmt.qcow2", at, b"vmd");
        assert!(err.to_string().contains("\"vmd\""), "{err}");
        // A header extension running past the header.
        let at = header
            .windows(4)
            .position(|w| w == EXT_BACKING_FORMAT.to_be_bytes())
            .unwrap();
        let err = forge("ext.qcow2", at + 4, &0x00ff_ffffu32.to_be_bytes());
        assert!(matches!(err, ImageError::Header { .. }), "{err}");
    }

    #[test]
    fn probes_by_content() {
        assert_eq!(probe_bytes(b""), Probe::Readable(ImageFormat::Raw));
        assert_eq!(
            probe_bytes(b"QFI\xfb\0\0\0\x03rest"),
            Probe::Readable(ImageFormat::Qcow2)
        );
        assert_eq!(
            probe_bytes(b"QFI\xfb\0\0\0\x01"),
            Probe::Unsupported("qcow (version 1)")
        );
        assert_eq!(probe_bytes(b"KDMV...."), Probe::Unsupported("VMDK"));
        assert_eq!(probe_bytes(b"vhdxfile"), Probe::Unsupported("VHDX"));
        let mut vdi = vec![0u8; 0x48];
        vdi[0x40..0x44].copy_from_slice(&0xbeda_107f_u32.to_le_bytes());
        assert_eq!(probe_bytes(&vdi), Probe::Unsupported("VDI"));
        // A raw disk that happens to start with a boot sector stays raw.
        let mut mbr = vec![0u8; 512];
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        assert_eq!(probe_bytes(&mbr), Probe::Readable(ImageFormat::Raw));
    }

    #[test]
    fn qcow2_reads_like_its_raw_source_and_names_what_it_cannot_read() {
        if !qemu_img() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let mut bytes = vec![0u8; 4 << 20];
        for (i, b) in bytes.iter_mut().enumerate().skip(1 << 20).take(300_000) {
            *b = (i % 251) as u8;
        }
        std::fs::write(&raw, &bytes).unwrap();
        let qcow = dir.path().join("disk.qcow2");
        let ok = Command::new("qemu-img")
            .args(["convert", "-c", "-O", "qcow2"])
            .arg(&raw)
            .arg(&qcow)
            .status()
            .unwrap();
        assert!(ok.success());
        let image = open(&qcow).unwrap();
        assert_eq!(image.format, ImageFormat::Qcow2);
        assert_eq!(image.backend.len(), bytes.len() as u64);
        let mut got = vec![0u8; 400_000];
        image.backend.read_at(&mut got, 1_000_000).unwrap();
        assert_eq!(got, bytes[1_000_000..1_400_000]);

        // An overlay reads through its backing file.
        let overlay = dir.path().join("overlay.qcow2");
        let ok = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&qcow)
            .arg(&overlay)
            .status()
            .unwrap();
        assert!(ok.success());
        let image = open(&overlay).unwrap();
        image.backend.read_at(&mut got, 1_000_000).unwrap();
        assert_eq!(got, bytes[1_000_000..1_400_000]);

        // Its backing file gone, the overlay is refused, naming it.
        std::fs::remove_file(&qcow).unwrap();
        let err = open(&overlay).unwrap_err();
        assert!(
            matches!(&err, ImageError::DependencyUnreadable { resolved, .. } if resolved == &qcow),
            "{err}"
        );

        // A truncated header is an error, not a panic.
        let cut = dir.path().join("cut.qcow2");
        std::fs::write(&cut, &std::fs::read(&overlay).unwrap()[..40]).unwrap();
        assert!(matches!(open(&cut), Err(ImageError::Header { .. })));

        // So is a header claiming an absurd L1 table.
        let mut forged = std::fs::read(&overlay).unwrap();
        forged[36..40].copy_from_slice(&0x7fff_ffffu32.to_be_bytes()); // l1_size
        forged[24..32].copy_from_slice(&(1u64 << 60).to_be_bytes()); // size
        let forged_path = dir.path().join("forged.qcow2");
        std::fs::write(&forged_path, &forged).unwrap();
        assert!(open(&forged_path).is_err());

        // Directories and recognised foreign formats get their own errors.
        assert!(matches!(
            open(dir.path()),
            Err(ImageError::IsDirectory { .. })
        ));
        let vmdk = dir.path().join("x.vmdk");
        std::fs::write(&vmdk, b"KDMV\x01\0\0\0").unwrap();
        let err = open(&vmdk).unwrap_err();
        assert!(err.to_string().contains("VMDK"), "{err}");
        assert!(matches!(
            open(&dir.path().join("missing")),
            Err(ImageError::Io { .. })
        ));
    }
}

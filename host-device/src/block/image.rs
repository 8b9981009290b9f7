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

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use imago::qcow2::Qcow2;
use imago::{FormatAccess, FormatDriverBuilder, PermissiveImplicitOpenGate};

use super::backend::{BlockBackend, FileBackend};

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
}

impl std::fmt::Debug for OpenedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedImage")
            .field("format", &self.format)
            .field("len", &self.backend.len())
            .finish()
    }
}

/// Opens the image at `path` read-only, in whichever format it holds.
pub fn open(path: &Path) -> Result<OpenedImage, ImageError> {
    let format = probe(path)?;
    let backend: Box<dyn BlockBackend> = match format {
        ImageFormat::Raw => {
            let io_err = |source| ImageError::Io {
                path: path.to_owned(),
                source,
            };
            let file = File::open(path).map_err(io_err)?;
            Box::new(FileBackend::open(file).map_err(io_err)?)
        }
        ImageFormat::Qcow2 => Box::new(Qcow2Backend::open(path)?),
    };
    Ok(OpenedImage { format, backend })
}

/// A qcow2 image (and its backing chain) read through imago.
pub struct Qcow2Backend {
    access: FormatAccess<imago::file::File>,
}

impl Qcow2Backend {
    /// Opens the qcow2 image at `path` read-only. Its backing file, if the header names one,
    /// is opened read-only too, in the format the header gives (qcow2 or raw).
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let qcow2 = Qcow2::<imago::file::File>::builder_path(path)
            .write(false)
            .open(PermissiveImplicitOpenGate::default())
            .map_err(|source| ImageError::Qcow2 {
                path: path.to_owned(),
                source,
            })?;
        Ok(Qcow2Backend {
            access: FormatAccess::new(qcow2),
        })
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
    use super::*;
    use std::process::Command;

    fn qemu_img() -> bool {
        Command::new("qemu-img").arg("--version").output().is_ok()
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
            eprintln!("SKIPPED: qemu-img not found");
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

        // Its backing file gone, the overlay is refused with a qcow2 error.
        std::fs::remove_file(&qcow).unwrap();
        let err = open(&overlay).unwrap_err();
        assert!(matches!(err, ImageError::Qcow2 { .. }), "{err}");

        // A truncated header is an error, not a panic.
        let cut = dir.path().join("cut.qcow2");
        std::fs::write(&cut, &std::fs::read(&overlay).unwrap()[..40]).unwrap();
        assert!(matches!(open(&cut), Err(ImageError::Qcow2 { .. })));

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

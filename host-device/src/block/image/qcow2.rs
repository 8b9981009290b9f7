//! A checked qcow2 chain read through imago.

use super::chain::OpenLayer;
use super::*;

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
    pub(super) fn assemble(chain: Vec<OpenLayer>) -> Result<Self, ImageError> {
        let top = chain
            .first()
            .map(|l| l.layer.path.clone())
            .unwrap_or_default();
        // imago is a young crate fed hostile files: a panic in it (one found by fuzzing is
        // refused before it is reached, see `check_feature_tables`) is an unreadable image,
        // not a crash of vmch or of the VMM.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::assemble_unguarded(chain)
        }))
        .unwrap_or_else(|_| {
            Err(ImageError::Qcow2 {
                path: top,
                source: io::Error::other("the qcow2 reader failed on this image (it panicked)"),
            })
        })
    }

    fn assemble_unguarded(chain: Vec<OpenLayer>) -> Result<Self, ImageError> {
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
        // As in `assemble`: a panic in imago is an I/O error of this read.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.access.read(buf, offset)
        }))
        .unwrap_or_else(|_| Err(io::Error::other("the qcow2 reader failed (it panicked)")))
    }
}

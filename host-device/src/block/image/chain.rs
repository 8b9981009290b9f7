//! The backing chain of a qcow2 image: the header fields that name other files, read within
//! bounds, and the walk that checks and opens each file under the [`BackingPolicy`] before
//! imago sees it.

use super::*;

/// What a qcow2 header says about other files.
#[derive(Debug, Default)]
struct Header {
    /// The backing file's name and, if given, its format.
    backing: Option<(OsString, Option<String>)>,
    /// The external data file's name, if the image requires one.
    data_file: Option<OsString>,
}

pub(super) fn be32(b: &[u8], at: usize) -> u32 {
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

/// The header extension listing feature names: 48-byte entries.
const EXT_FEATURE_NAMES: u32 = 0x6803_f857;
/// Bytes per feature name table entry.
const FEATURE_NAME_ENTRY: usize = 48;

/// Walks the header extensions of a version 3 header as imago (0.2.6) does, from the end of
/// the header to the end of the first cluster, and refuses a feature name table that is not a
/// whole number of 48-byte entries: imago slices each entry unchecked and panics on a short one
/// (found by fuzzing the image target). qemu-img never writes such a table.
fn check_feature_tables(file: &File, header_len: u64, cluster: u64) -> Result<(), String> {
    let mut region = vec![0u8; cluster.saturating_sub(header_len) as usize];
    // Bytes past the end of the file read as zeros: the end of the extensions.
    read_up_to(file, &mut region, header_len).map_err(|e| e.to_string())?;
    let mut at = 0usize;
    while at + 8 <= region.len() {
        let (kind, len) = (be32(&region, at), be32(&region, at + 4) as usize);
        if kind == 0 {
            break;
        }
        if kind == EXT_FEATURE_NAMES && !len.is_multiple_of(FEATURE_NAME_ENTRY) {
            return Err(format!(
                "its feature name table is {len} bytes, not a whole number of \
                 {FEATURE_NAME_ENTRY}-byte entries"
            ));
        }
        at = at.saturating_add(8).saturating_add(len.next_multiple_of(8));
    }
    Ok(())
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
    if version == 3 {
        check_feature_tables(file, header_len, cluster).map_err(bad)?;
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
pub(super) struct OpenLayer {
    /// The layer as reported.
    pub(super) layer: Layer,
    /// The path it was reached by (the top image's path, or a name resolved against the
    /// directory of the image naming it): the base for the relative names in its header.
    pub(super) reached_as: PathBuf,
    /// The image file, opened read-only.
    pub(super) file: File,
    /// The external data file, opened read-only.
    pub(super) data: Option<File>,
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
pub(super) fn walk(
    top: &Path,
    file: File,
    policy: BackingPolicy,
) -> Result<Vec<OpenLayer>, ImageError> {
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

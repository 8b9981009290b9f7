//! The demo disk: what `vmch inspect` inspects when given no image.
//!
//! The tree in `vmch/demo/rootfs` (a small Debian 12 system: os-release, hostname, fstab, a
//! dpkg database, an x86_64 ELF at /usr/bin/bash) is embedded at build time. [`image`] lays it
//! out as an ext4 filesystem in the first partition of an MBR disk, in memory, through the
//! `fstool` crate, and writes the image to a file. It takes milliseconds and needs no external
//! tool, so the demo works on a machine without e2fsprogs or fdisk.

use std::io::Cursor;
use std::path::Path;

use fstool::block::{BlockDevice, MemoryBackend, SlicedBackend};
use fstool::fs::ext::{Ext, FormatOpts, FsKind};
use fstool::fs::{FileMeta, FileSource};
use fstool::part::mbr::Mbr;
use fstool::part::{Partition, PartitionKind, PartitionTable};

/// One entry of the embedded tree.
#[derive(Debug)]
pub struct Entry {
    /// The path relative to the root, without a leading '/'.
    pub path: &'static str,
    /// What it is.
    pub kind: Kind,
}

/// What an entry of the tree is.
#[derive(Debug)]
pub enum Kind {
    /// A directory (mode 0755).
    Dir,
    /// A regular file (mode 0755 when executable, else 0644).
    File {
        /// Its bytes.
        contents: &'static [u8],
        /// Whether it is executable.
        executable: bool,
    },
    /// A symbolic link to this target.
    Symlink(&'static str),
}

include!(concat!(env!("OUT_DIR"), "/demo_tree.rs"));

/// The root filesystem's UUID; `demo/rootfs/etc/fstab` mounts `/` by it.
pub const ROOT_UUID: [u8; 16] = [
    0x6f, 0x1c, 0x2a, 0x4e, 0x8d, 0x3b, 0x4c, 0x5a, 0x9e, 0x7f, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f,
];
/// The root filesystem's label.
pub const ROOT_LABEL: &str = "demo-root";
/// The whole disk's size.
pub const DISK_BYTES: u64 = 16 << 20;
/// Where the root partition starts, in 512-byte sectors (1 MiB, as fdisk aligns).
const PART_START: u64 = 2048;
const BLOCK: u32 = 4096;
/// The modification time given to every file (2024-09-01 00:00:00 UTC), so the image is the
/// same on every build.
const MTIME: u32 = 1_725_148_800;

/// Why the demo disk could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// fstool refused the layout.
    #[error("building the demo filesystem: {0}")]
    Build(#[from] fstool::Error),
    /// The tree names a path whose parent is not a directory before it.
    #[error("demo tree entry {0} has no parent directory")]
    Orphan(&'static str),
    /// Writing the image failed.
    #[error("writing the demo disk {path}: {source}", path = path.display())]
    Write {
        /// The image path.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Builds the demo disk image in memory.
pub fn image() -> Result<Vec<u8>, DemoError> {
    let mut disk = MemoryBackend::new(DISK_BYTES);
    let part_sectors = DISK_BYTES / 512 - PART_START;
    let mut partition = Partition::new(PART_START, part_sectors, PartitionKind::LinuxFilesystem);
    partition.bootable = true;
    Mbr::new(vec![partition])?.write(&mut disk)?;

    let mut label = [0u8; 16];
    label[..ROOT_LABEL.len()].copy_from_slice(ROOT_LABEL.as_bytes());
    let mut opts = FormatOpts::default();
    opts.kind = FsKind::Ext4;
    opts.block_size = BLOCK;
    opts.blocks_count = (part_sectors * 512 / u64::from(BLOCK)) as u32;
    opts.inodes_count = 256;
    // mke2fs's default; ext4-view refuses 128-byte inodes on a metadata_csum filesystem.
    opts.inode_size = 256;
    opts.uuid = ROOT_UUID;
    opts.volume_label = label;
    opts.mtime = MTIME;
    {
        // The partition's view borrows the disk until the filesystem is written.
        let mut fs_dev = SlicedBackend::new(&mut disk, PART_START * 512, part_sectors * 512)?;
        let mut ext = Ext::format_with(&mut fs_dev, &opts)?;
        populate(&mut ext, &mut fs_dev)?;
        ext.flush(&mut fs_dev)?;
    }
    Ok(disk.into_bytes())
}

/// Adds every entry of [`TREE`] (in path order, so parents come first).
fn populate(ext: &mut Ext, dev: &mut dyn BlockDevice) -> Result<(), DemoError> {
    const ROOT_INO: u32 = 2;
    let mut dirs: Vec<(&str, u32)> = vec![("", ROOT_INO)];
    let meta = |mode| FileMeta {
        mode,
        uid: 0,
        gid: 0,
        mtime: MTIME,
        atime: MTIME,
        ctime: MTIME,
    };
    for entry in TREE {
        let (parent, name) = entry.path.rsplit_once('/').unwrap_or(("", entry.path));
        let parent_ino = dirs
            .iter()
            .find(|(p, _)| *p == parent)
            .map(|(_, ino)| *ino)
            .ok_or(DemoError::Orphan(entry.path))?;
        match entry.kind {
            Kind::Dir => {
                let ino = ext.add_dir_to(dev, parent_ino, name.as_bytes(), meta(0o755))?;
                dirs.push((entry.path, ino));
            }
            Kind::File {
                contents,
                executable,
            } => {
                let source = FileSource::Reader {
                    reader: Box::new(Cursor::new(contents)),
                    len: contents.len() as u64,
                };
                let mode = if executable { 0o755 } else { 0o644 };
                ext.add_file_to(dev, parent_ino, name.as_bytes(), source, meta(mode))?;
            }
            Kind::Symlink(target) => {
                ext.add_symlink_to(
                    dev,
                    parent_ino,
                    name.as_bytes(),
                    target.as_bytes(),
                    meta(0o777),
                )?;
            }
        }
    }
    Ok(())
}

/// Builds the demo disk and writes it to `path`.
pub fn write(path: &Path) -> Result<(), DemoError> {
    let bytes = image()?;
    std::fs::write(path, bytes).map_err(|source| DemoError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn the_tree_is_embedded_in_path_order() {
        assert!(TREE.iter().any(|e| e.path == "etc/fstab"));
        assert!(TREE.windows(2).all(|w| w[0].path < w[1].path));
        let fstab = TREE.iter().find(|e| e.path == "etc/fstab").unwrap();
        let Kind::File { contents, .. } = fstab.kind else {
            panic!("fstab is a file")
        };
        // The fstab and the filesystem agree on the root's UUID.
        let uuid = "6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f";
        assert!(std::str::from_utf8(contents).unwrap().contains(uuid));
        let hex: String = ROOT_UUID.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, uuid.replace('-', ""));
    }

    #[test]
    fn the_image_is_a_clean_ext4_with_the_tree() {
        let bytes = image().unwrap();
        assert_eq!(bytes.len() as u64, DISK_BYTES);
        assert_eq!(&bytes[510..512], &[0x55, 0xaa]);
        assert_eq!(bytes, image().unwrap(), "the image is reproducible");
        let dir = tempfile::tempdir().unwrap();
        let fs = dir.path().join("root.ext4");
        std::fs::write(&fs, &bytes[PART_START as usize * 512..]).unwrap();
        let Ok(out) = Command::new("e2fsck").arg("-fn").arg(&fs).output() else {
            eprintln!("SKIPPED: e2fsck not found, filesystem not checked");
            return;
        };
        assert!(
            out.status.success(),
            "e2fsck: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("debugfs")
            .arg("-R")
            .arg("cat /etc/hostname")
            .arg(&fs)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "vmch-demo\n");
    }
}

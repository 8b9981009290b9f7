//! `vmch libguestfs-appliance DIR`: our kernel as a libguestfs "fixed appliance", so that
//! unmodified libguestfs programs (virt-inspector, guestfish, ...) launch it when
//! `LIBGUESTFS_PATH=DIR`.
//!
//! libguestfs 1.48 takes a directory holding `README.fixed`, `kernel`, `initrd` and `root` as
//! a fixed appliance (lib/appliance.c): it checks that the four exist and reads the UUID of
//! `root`'s ext superblock, which it puts on the kernel command line as `root=UUID=...` and
//! attaches as the last disk. QEMU boots `kernel` as a PVH ELF. Our kernel has no userland,
//! so `initrd` is empty and `root` is only an ext2 superblock (no files): the kernel knows the
//! appliance disk by that UUID and hides it from the guest's disks.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Size of the `root` image.
const ROOT_SIZE: usize = 1 << 20;
/// Where an ext superblock starts.
const SUPERBLOCK: usize = 1024;

/// Why the appliance could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FixedApplianceError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// The `root` image: an ext2 superblock for an empty 1 MiB filesystem with `uuid`.
pub fn root_image(uuid: [u8; 16]) -> Vec<u8> {
    let mut img = vec![0u8; ROOT_SIZE];
    let sb = &mut img[SUPERBLOCK..SUPERBLOCK + 1024];
    let put32 = |sb: &mut [u8], at: usize, v: u32| sb[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put32(sb, 0x00, 128); // s_inodes_count
    put32(sb, 0x04, 1024); // s_blocks_count (1 KiB blocks)
    put32(sb, 0x0c, 1000); // s_free_blocks_count
    put32(sb, 0x10, 117); // s_free_inodes_count
    put32(sb, 0x14, 1); // s_first_data_block
    put32(sb, 0x18, 0); // s_log_block_size: 1 KiB
    put32(sb, 0x20, 8192); // s_blocks_per_group
    put32(sb, 0x28, 128); // s_inodes_per_group
    sb[0x38..0x3a].copy_from_slice(&0xef53u16.to_le_bytes()); // s_magic
    sb[0x3a..0x3c].copy_from_slice(&1u16.to_le_bytes()); // s_state: clean
    put32(sb, 0x4c, 1); // s_rev_level: dynamic
    put32(sb, 0x54, 11); // s_first_ino
    sb[0x58..0x5a].copy_from_slice(&128u16.to_le_bytes()); // s_inode_size
    sb[0x68..0x78].copy_from_slice(&uuid); // s_uuid
    sb[0x78..0x80].copy_from_slice(b"vmchroot"); // s_volume_name
    img
}

/// A random UUID (version 4), from the kernel's random source.
fn random_uuid() -> std::io::Result<[u8; 16]> {
    let mut u = [0u8; 16];
    fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut u))?;
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

/// Writes the fixed appliance into `dir` (created if missing): `kernel` copied from
/// `kernel`, an empty `initrd`, `root`, and `README.fixed`. Files of those names are
/// replaced; nothing else in `dir` is touched.
pub fn write(dir: &Path, kernel: &Path) -> Result<(), FixedApplianceError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| FixedApplianceError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let target = dir.join("kernel");
    fs::copy(kernel, &target).map_err(io(&target))?;
    let initrd = dir.join("initrd");
    fs::write(&initrd, b"").map_err(io(&initrd))?;
    let root = dir.join("root");
    let uuid = random_uuid().map_err(io(Path::new("/dev/urandom")))?;
    fs::write(&root, root_image(uuid)).map_err(io(&root))?;
    let readme = dir.join("README.fixed");
    let mut f = fs::File::create(&readme).map_err(io(&readme))?;
    writeln!(
        f,
        "A libguestfs fixed appliance: the vmchannel unikernel (vmch {}).\n\n\
         Use it with unmodified libguestfs programs:\n\n    LIBGUESTFS_PATH={} virt-inspector -a disk.img\n\n\
         `kernel` is the appliance (a PVH ELF that QEMU boots directly); `initrd` is empty and\n\
         `root` holds only an ext2 superblock, whose UUID tells the kernel which disk is the\n\
         appliance's own. Written by `vmch libguestfs-appliance`.",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    )
    .map_err(io(&readme))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_image_is_an_ext2_superblock_with_the_uuid() {
        let uuid = *b"0123456789abcdef";
        let img = root_image(uuid);
        assert_eq!(img.len(), ROOT_SIZE);
        // Where libguestfs (and blkid) look: the magic at 0x438, the UUID at 0x468.
        assert_eq!(&img[0x438..0x43a], &[0x53, 0xef]);
        assert_eq!(&img[0x468..0x478], &uuid);
    }

    #[test]
    fn writes_the_four_files() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("k");
        fs::write(&kernel, b"ELF").unwrap();
        let out = dir.path().join("appliance");
        write(&out, &kernel).unwrap();
        for f in ["README.fixed", "kernel", "initrd", "root"] {
            assert!(out.join(f).exists(), "{f}");
        }
        assert_eq!(fs::read(out.join("kernel")).unwrap(), b"ELF");
        let missing = write(&out, &dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("kernel"), "{missing}");
    }
}

//! Disk images the appliance tests build themselves: directory trees written by the test,
//! turned into filesystems by `mkfs.ext4 -d` (and `mkfs.vfat`, `mkswap`, `mkfs.xfs`,
//! `mkfs.btrfs`), laid out on disks partitioned by `sfdisk` (MBR and GPT).
//!
//! Each OS tree follows the real distribution's files closely enough for libguestfs's rules:
//! os-release, the version files, hostname, fstab, the package databases and an ELF binary.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// MiB.
pub const MIB: u64 = 1 << 20;

/// Fixed identities, so tests can look for them.
pub mod ids {
    /// Debian root filesystem UUID.
    pub const DEBIAN_ROOT_UUID: &str = "6a1c5e3e-1f00-4a7b-9a55-0d3b6a2c1e01";
    /// Debian /boot label.
    pub const DEBIAN_BOOT_LABEL: &str = "debboot";
    /// Debian /boot UUID.
    pub const DEBIAN_BOOT_UUID: &str = "6a1c5e3e-1f00-4a7b-9a55-0d3b6a2c1e02";
    /// Debian swap UUID.
    pub const DEBIAN_SWAP_UUID: &str = "6a1c5e3e-1f00-4a7b-9a55-0d3b6a2c1e03";
    /// Ubuntu root UUID.
    pub const UBUNTU_ROOT_UUID: &str = "0b7e11aa-2222-4c3d-8e4f-5a6b7c8d9e01";
    /// Ubuntu EFI system partition volume id (`mkfs.vfat -i`).
    pub const UBUNTU_ESP_ID: &str = "1234ABCD";
    /// Fedora-like root with separate /usr: root UUID.
    pub const USR_ROOT_UUID: &str = "c0ffee00-0000-4000-8000-000000000001";
    /// ... and the /usr UUID.
    pub const USR_USR_UUID: &str = "c0ffee00-0000-4000-8000-000000000002";
    /// Alpine root UUID.
    pub const ALPINE_UUID: &str = "a1a1a1a1-b2b2-4c3c-9d4d-e5e5e5e5e5e5";
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A tool failed or is missing.
    #[error("{tool}: {message}")]
    Tool {
        /// The command.
        tool: String,
        /// Its stderr, or why it could not run.
        message: String,
    },
    /// Writing the tree or the image failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn run(cmd: &mut Command) -> Result<(), ImageError> {
    let tool = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| ImageError::Tool {
        tool: tool.clone(),
        message: format!("cannot run: {e} (is it installed? .ci/run installs it)"),
    })?;
    if !out.status.success() {
        return Err(ImageError::Tool {
            tool,
            message: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// A directory tree under construction.
pub struct Tree {
    root: PathBuf,
}

impl Tree {
    /// An empty tree at `root` (created).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, ImageError> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes `contents` at `rel` (parents created).
    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> Result<&Self, ImageError> {
        let p = self.root.join(rel.trim_start_matches('/'));
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(p, contents)?;
        Ok(self)
    }

    /// Creates directory `rel`.
    pub fn dir(&self, rel: &str) -> Result<&Self, ImageError> {
        fs::create_dir_all(self.root.join(rel.trim_start_matches('/')))?;
        Ok(self)
    }

    /// A symlink at `rel` pointing to `target` (as written).
    pub fn link(&self, rel: &str, target: &str) -> Result<&Self, ImageError> {
        let p = self.root.join(rel.trim_start_matches('/'));
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir)?;
        }
        symlink(target, p)?;
        Ok(self)
    }
}

/// The first 64 bytes of an x86-64 (or other) ELF executable, then some padding.
pub fn elf(machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 4096];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // 64-bit
    h[5] = 1; // little-endian
    h[6] = 1;
    h[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

/// A `w` x `h` 8-bit RGB PNG made from scratch (IHDR, one zlib IDAT, IEND): a checker of
/// 8-pixel squares tinted by `tint`, so it compresses well and each image differs.
pub fn png(w: u32, h: u32, tint: u8) -> Vec<u8> {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let chunk = |out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut d = CRC.digest();
        d.update(kind);
        d.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(d.finalize().to_be_bytes());
    };
    let mut raw = Vec::with_capacity(((w * 3 + 1) * h) as usize);
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            let on = ((x / 8) + (y / 8)) % 2 == 0;
            raw.extend(if on {
                [tint, 0x20, 0xff - tint]
            } else {
                [0xf0; 3]
            });
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, adaptive filtering, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 9),
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// `len` bytes of a fixed pseudo-random sequence (xorshift from `seed`).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The initrd in the Debian /boot tree.
pub fn debian_initrd() -> Vec<u8> {
    pseudo_random(3 * MIB as usize + 12345, 7)
}

/// x86-64's e_machine.
pub const EM_X86_64: u16 = 0x3E;
/// AArch64's e_machine.
pub const EM_AARCH64: u16 = 0xB7;

fn dpkg_stanza(name: &str, status: &str, version: &str, arch: &str, summary: &str) -> String {
    format!(
        "Package: {name}\nStatus: {status}\nPriority: optional\nSection: misc\n\
         Installed-Size: 100\nMaintainer: Someone <a@b.c>\nArchitecture: {arch}\n\
         Version: {version}\nDescription: {summary}\n The long description of {name},\n on two lines.\n .\n And a paragraph.\n\n"
    )
}

/// A Debian 12 root: os-release, debian_version, hostname, fstab (root by UUID, /boot by
/// LABEL, swap by UUID), dpkg status, /bin/ls (x86-64), usr-merged /bin.
pub fn debian_root(t: &Tree) -> Result<(), ImageError> {
    t.file(
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n\
         VERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\n",
    )?
    .file("etc/debian_version", "12.5\n")?
    .file("etc/hostname", "debhost\n")?
    .file(
        "etc/fstab",
        format!(
            "# /etc/fstab: static file system information.\n\
             UUID={}  /      ext4  errors=remount-ro 0 1\n\
             LABEL={}  /boot  ext4  defaults 0 2\n\
             UUID={}  none   swap  sw 0 0\n\
             proc /proc proc defaults 0 0\n\
             /dev/sr0 /media/cdrom0 udf,iso9660 user,noauto 0 0\n",
            ids::DEBIAN_ROOT_UUID,
            ids::DEBIAN_BOOT_LABEL,
            ids::DEBIAN_SWAP_UUID
        ),
    )?
    .file("etc/hosts", "127.0.0.1 localhost\n")?
    .file("usr/bin/ls", elf(EM_X86_64))?
    .file("usr/bin/bash", elf(EM_X86_64))?
    .link("bin", "usr/bin")?
    .dir("boot")?
    .dir("var/log")?
    .file(
        "var/lib/dpkg/status",
        [
            dpkg_stanza("bash", "install ok installed", "5.2.15-2+b2", "amd64", "GNU Bourne Again SHell"),
            dpkg_stanza("coreutils", "install ok installed", "9.1-1", "amd64", "GNU core utilities"),
            dpkg_stanza("libc6", "install ok installed", "2.36-9+deb12u4", "amd64", "GNU C Library: Shared libraries"),
            dpkg_stanza("oldpkg", "deinstall ok config-files", "1.0-1", "amd64", "Removed, config kept"),
            dpkg_stanza("perl-base", "install ok installed", "1:5.36.0-7", "amd64", "minimal Perl system"),
        ]
        .concat(),
    )?;
    Ok(())
}

/// A Debian /boot filesystem's contents.
pub fn debian_boot(t: &Tree) -> Result<(), ImageError> {
    t.file("vmlinuz-6.1.0-18-amd64", vec![0x4d; 100_000])?
        .file(
            "initrd.img-6.1.0-18-amd64",
            pseudo_random(3 * MIB as usize + 12345, 7),
        )?
        .file("grub/grub.cfg", "set default=0\n")?;
    Ok(())
}

/// An Ubuntu 22.04 root (os-release and lsb-release), ESP mounted at /boot/efi.
pub fn ubuntu_root(t: &Tree) -> Result<(), ImageError> {
    t.file(
        "etc/os-release",
        "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\n\
         VERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nID=ubuntu\nID_LIKE=debian\n",
    )?
    .file(
        "etc/lsb-release",
        "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION=\"Ubuntu 22.04.4 LTS\"\n",
    )?
    .file("etc/debian_version", "bookworm/sid\n")?
    .file("etc/hostname", "ubuntu-box\n")?
    .file(
        "etc/fstab",
        format!(
            "UUID={} / ext4 defaults 0 1\nUUID=1234-ABCD /boot/efi vfat umask=0077 0 1\n/swap.img none swap sw 0 0\n",
            ids::UBUNTU_ROOT_UUID
        ),
    )?
    .file("usr/bin/bash", elf(EM_AARCH64))?
    .link("bin", "usr/bin")?
    .dir("boot/efi")?
    .file(
        "var/lib/dpkg/status",
        dpkg_stanza("base-files", "install ok installed", "12ubuntu4.6", "arm64", "Debian base system miscellaneous files"),
    )?;
    Ok(())
}

/// An Alpine 3.19 root: alpine-release, busybox links, the apk database.
pub fn alpine_root(t: &Tree) -> Result<(), ImageError> {
    t.file(
        "etc/os-release",
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
    )?
    .file("etc/alpine-release", "3.19.1\n")?
    .file("etc/hostname", "alpine-vm\n")?
    .file(
        "etc/fstab",
        format!("UUID={} / ext4 rw,relatime 0 1\n/dev/cdrom /media/cdrom iso9660 noauto,ro 0 0\n", ids::ALPINE_UUID),
    )?
    .file("bin/busybox", elf(EM_X86_64))?
    .link("bin/sh", "/bin/busybox")?
    .link("bin/ls", "/bin/busybox")?
    .file(
        "lib/apk/db/installed",
        "C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:383152\nI:622592\nT:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\n\n\
         C:Q1def=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nT:Size optimized toolbox of many common UNIX utilities\nU:https://busybox.net/\n\n\
         C:Q1ghi=\nP:alpine-baselayout\nV:3.4.3-r2\nA:x86_64\nT:Alpine base dir structure and init scripts\n\n",
    )?;
    Ok(())
}

/// A usr-merged root whose /usr is its own filesystem: /bin -> usr/bin, and os-release only
/// in /usr/lib (reached through the /etc/os-release link).
pub fn usr_split_root(t: &Tree) -> Result<(), ImageError> {
    t.link("etc/os-release", "../usr/lib/os-release")?
        .file("etc/hostname", "split\n")?
        .file(
            "etc/fstab",
            format!(
                "UUID={} / ext4 defaults 0 1\nUUID={} /usr ext4 defaults 0 2\n",
                ids::USR_ROOT_UUID,
                ids::USR_USR_UUID
            ),
        )?
        .link("bin", "usr/bin")?
        .dir("usr")?;
    Ok(())
}

/// The /usr filesystem for [`usr_split_root`] (Fedora 39).
pub fn usr_split_usr(t: &Tree) -> Result<(), ImageError> {
    t.file(
        "lib/os-release",
        "NAME=\"Fedora Linux\"\nVERSION=\"39 (Server Edition)\"\nID=fedora\nVERSION_ID=39\nPRETTY_NAME=\"Fedora Linux 39 (Server Edition)\"\n",
    )?
    .file("bin/bash", elf(EM_X86_64))?
    .dir("share/doc")?;
    Ok(())
}

/// What to put in a partition or on a whole disk.
pub enum Content<'a> {
    /// ext4 from a tree, with a UUID and a label.
    Ext4 {
        /// The tree.
        tree: &'a Path,
        /// `-U`.
        uuid: &'a str,
        /// `-L`, or none.
        label: Option<&'a str>,
    },
    /// vfat with a volume id (8 hex digits) and a label, files copied with mtools.
    Vfat {
        /// `-i`.
        id: &'a str,
        /// `-n`.
        label: &'a str,
    },
    /// Linux swap.
    Swap {
        /// `-U`.
        uuid: &'a str,
        /// `-L`.
        label: &'a str,
    },
    /// xfs.
    Xfs {
        /// `-L`.
        label: &'a str,
    },
    /// btrfs.
    Btrfs {
        /// `-L`.
        label: &'a str,
    },
    /// These bytes at the start, zeros after.
    Raw(Vec<u8>),
    /// Nothing.
    Empty,
}

/// Makes a `size`-byte file at `path` holding `content`.
pub fn make_fs(path: &Path, size: u64, content: &Content<'_>) -> Result<(), ImageError> {
    let f = fs::File::create(path)?;
    f.set_len(size)?;
    drop(f);
    match content {
        Content::Ext4 { tree, uuid, label } => {
            let mut cmd = Command::new("mkfs.ext4");
            cmd.args(["-q", "-F", "-U", uuid, "-d"]).arg(tree);
            cmd.args(["-E", "root_owner=0:0"]);
            if let Some(l) = label {
                cmd.args(["-L", l]);
            }
            cmd.env("E2FSPROGS_FAKE_TIME", "1700000000");
            run(cmd.arg(path))
        }
        Content::Vfat { id, label } => run(Command::new("mkfs.vfat")
            .args(["-i", id, "-n", label])
            .arg(path)),
        Content::Swap { uuid, label } => run(Command::new("mkswap")
            .args(["-U", uuid, "-L", label])
            .arg(path)),
        Content::Xfs { label } => run(Command::new("mkfs.xfs")
            .args(["-q", "-f", "-L", label])
            .arg(path)),
        Content::Btrfs { label } => run(Command::new("mkfs.btrfs")
            .args(["-q", "-f", "-L", label])
            .arg(path)),
        Content::Raw(bytes) => {
            let mut f = fs::OpenOptions::new().write(true).open(path)?;
            f.write_all(bytes)?;
            Ok(())
        }
        Content::Empty => Ok(()),
    }
}

/// A partition to lay out: size in MiB, sfdisk type, what it holds.
pub struct Part<'a> {
    /// Size in MiB.
    pub mib: u64,
    /// sfdisk `type=` (MBR hex like `83`, or a GPT type GUID / shortcut like `L`).
    pub kind: &'a str,
    /// GPT name (`name=`), if any.
    pub name: Option<&'a str>,
    /// Contents.
    pub content: Content<'a>,
}

/// A disk of `mib` MiB at `path`, partitioned by sfdisk with `label` ("dos" or "gpt"); on a
/// dos disk, partitions after the third go in an extended partition as logicals.
pub fn make_disk(path: &Path, mib: u64, label: &str, parts: &[Part<'_>]) -> Result<(), ImageError> {
    let f = fs::File::create(path)?;
    f.set_len(mib * MIB)?;
    drop(f);
    let mut script = format!("label: {label}\n");
    if label == "dos" {
        script.push_str("label-id: 0x1234abcd\n");
    }
    let mut offsets = Vec::new();
    let mut at = MIB; // first partition at 1 MiB
    for (i, p) in parts.iter().enumerate() {
        if label == "dos" && parts.len() > 4 && i == 3 {
            // The extended container holds the rest; each logical needs 1 MiB for its EBR.
            script.push_str(&format!("start={}, type=5\n", at / 512));
            at += MIB;
        } else if label == "dos" && parts.len() > 4 && i > 3 {
            at += MIB;
        }
        let mut line = format!(
            "start={}, size={}, type={}",
            at / 512,
            p.mib * MIB / 512,
            p.kind
        );
        if let Some(n) = p.name {
            line.push_str(&format!(", name=\"{n}\""));
        }
        script.push_str(&line);
        script.push('\n');
        offsets.push(at);
        at += p.mib * MIB;
    }
    sfdisk(path, &script)?;
    let scratch = path.with_extension("part");
    for (p, offset) in parts.iter().zip(offsets) {
        make_fs(&scratch, p.mib * MIB, &p.content)?;
        place(path, offset, &scratch)?;
    }
    let _ = fs::remove_file(scratch);
    Ok(())
}

/// Partitions the disk image at `path` by the sfdisk `script`.
pub(crate) fn sfdisk(path: &Path, script: &str) -> Result<(), ImageError> {
    let mut child = Command::new("sfdisk")
        .args(["--no-reread", "--no-tell-kernel", "-q"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| ImageError::Tool {
            tool: "sfdisk".into(),
            message: format!("cannot run: {e} (package fdisk)"),
        })?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(ImageError::Tool {
            tool: format!("sfdisk with script:\n{script}"),
            message: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// Copies file `part` into `disk` at byte `offset`.
pub fn place(disk: &Path, offset: u64, part: &Path) -> Result<(), ImageError> {
    // Only the blocks holding data are written, so the disk stays sparse.
    let mut d = fs::OpenOptions::new().write(true).open(disk)?;
    let mut p = fs::File::open(part)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    loop {
        let n = std::io::Read::read(&mut p, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|&b| b != 0) {
            d.seek(SeekFrom::Start(offset + at))?;
            d.write_all(&buf[..n])?;
        }
        at += n as u64;
    }
}

/// True if the image tools the appliance tests need are installed (`mkfs.ext4`, `sfdisk`,
/// `mkfs.vfat`, `mkswap`, `mkfs.xfs`, `mkfs.btrfs`, `debugfs`).
pub fn tools_present() -> Result<(), String> {
    for tool in [
        "mkfs.ext4",
        "debugfs",
        "sfdisk",
        "mkfs.vfat",
        "mkswap",
        "mkfs.xfs",
        "mkfs.btrfs",
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
                    .any(|d| d.join(tool).exists())
            })
            .unwrap_or(false);
        if !found {
            return Err(format!(
                "{tool} not found (.ci/run installs e2fsprogs, fdisk, dosfstools, xfsprogs, btrfs-progs)"
            ));
        }
    }
    Ok(())
}

/// The test disks, built once per test binary into a temporary directory.
pub struct DiskSet {
    /// Keeps the files.
    pub dir: tempfile::TempDir,
    /// MBR: /dev/sda1 /boot (ext4, LABEL), sda2 Debian 12 root (ext4), sda3 swap.
    pub debian: PathBuf,
    /// GPT: sda1 ESP (vfat), sda2 Ubuntu 22.04 root (aarch64).
    pub ubuntu: PathBuf,
    /// No partition table: Alpine 3.19 on the whole disk.
    pub alpine: PathBuf,
    /// GPT: sda1 root, sda2 /usr (Fedora 39 through /usr/lib/os-release).
    pub usr_split: PathBuf,
    /// MBR with logicals: sda1 Debian root, sda2 Alpine root, sda3 vfat, extended sda4
    /// with sda5 swap, sda6 LVM PV, sda7 LUKS: two operating systems and every detected type.
    pub multi: PathBuf,
    /// Whole-disk xfs.
    pub xfs: PathBuf,
    /// Whole-disk btrfs.
    pub btrfs: PathBuf,
    /// Hostile disks: [`DiskSet::debian`] truncated mid-partition, [`DiskSet::multi`] with
    /// a looping EBR chain, [`DiskSet::ubuntu`] with both GPT headers destroyed, and
    /// [`DiskSet::alpine`] with its group descriptors overwritten.
    pub hostile: Vec<PathBuf>,
    /// [`DiskSet::alpine`] edited with debugfs: a symlink loop `/etc/loop`, a directory
    /// hard-linked into itself `/etc/selfloop`, and `/etc/motd` claiming 1 TiB (a hole).
    pub odd: PathBuf,
}

/// A LUKS2 header start: magic, version 2, UUID at 168, label at 24.
pub fn luks_header(uuid: &str, label: &str) -> Vec<u8> {
    let mut h = vec![0u8; 4096];
    h[..6].copy_from_slice(b"LUKS\xba\xbe");
    h[6..8].copy_from_slice(&2u16.to_be_bytes());
    h[24..24 + label.len()].copy_from_slice(label.as_bytes());
    h[168..168 + uuid.len()].copy_from_slice(uuid.as_bytes());
    h
}

/// An LVM2 physical volume label in sector 1 with a 32-character PV UUID.
pub fn lvm_header(pv_uuid: &str) -> Vec<u8> {
    let mut h = vec![0u8; 4096];
    let s = &mut h[512..1024];
    s[..8].copy_from_slice(b"LABELONE");
    s[8..16].copy_from_slice(&1u64.to_le_bytes());
    s[20..24].copy_from_slice(&32u32.to_le_bytes());
    s[24..32].copy_from_slice(b"LVM2 001");
    s[32..64].copy_from_slice(&pv_uuid.as_bytes()[..32]);
    h
}

/// The UUID the LVM PV in [`DiskSet::multi`] carries (32 characters).
pub const LVM_PV_UUID: &str = "AbCdEf0123456789GhIjKlMnOpQrStUv";
/// The LUKS UUID in [`DiskSet::multi`].
pub const LUKS_UUID: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";

/// The test disks, built on first use and shared by every test in the binary; removed when
/// the test binary exits (a static is never dropped, and each set is some 460 MB of /tmp).
pub fn shared() -> &'static DiskSet {
    static SET: std::sync::OnceLock<DiskSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let set = DiskSet::build().expect("building the test disks");
        remove_at_exit(set.dir.path());
        set
    })
}

/// Removes `dir` (recursively) when the process exits normally.
pub(crate) fn remove_at_exit(dir: &Path) {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    extern "C" fn remove_all() {
        let dirs = DIRS.lock().map(|d| d.clone()).unwrap_or_default();
        for d in dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if dirs.is_empty() {
        // SAFETY: atexit registers a plain extern "C" function that takes no arguments; it
        // runs once at exit, when no test thread uses the disks any more.
        unsafe { libc::atexit(remove_all) };
    }
    dirs.push(dir.to_owned());
}

impl DiskSet {
    /// Builds every disk.
    pub fn build() -> Result<Self, ImageError> {
        tools_present().map_err(|message| ImageError::Tool {
            tool: "image tools".into(),
            message,
        })?;
        let dir = tempfile::Builder::new().prefix("vmch-disks").tempdir()?;
        let d = dir.path();
        let tree = |name: &str,
                    fill: fn(&Tree) -> Result<(), ImageError>|
         -> Result<PathBuf, ImageError> {
            let t = Tree::new(d.join(name))?;
            fill(&t)?;
            Ok(t.path().to_path_buf())
        };
        let deb = tree("t-debian", debian_root)?;
        let deb_boot = tree("t-debian-boot", debian_boot)?;
        let ubu = tree("t-ubuntu", ubuntu_root)?;
        let alp = tree("t-alpine", alpine_root)?;
        let split = tree("t-split", usr_split_root)?;
        let split_usr = tree("t-split-usr", usr_split_usr)?;

        let debian = d.join("debian.img");
        make_disk(
            &debian,
            80,
            "dos",
            &[
                Part {
                    mib: 16,
                    kind: "83",
                    name: None,
                    content: Content::Ext4 {
                        tree: &deb_boot,
                        uuid: ids::DEBIAN_BOOT_UUID,
                        label: Some(ids::DEBIAN_BOOT_LABEL),
                    },
                },
                Part {
                    mib: 48,
                    kind: "83",
                    name: None,
                    content: Content::Ext4 {
                        tree: &deb,
                        uuid: ids::DEBIAN_ROOT_UUID,
                        label: None,
                    },
                },
                Part {
                    mib: 8,
                    kind: "82",
                    name: None,
                    content: Content::Swap {
                        uuid: ids::DEBIAN_SWAP_UUID,
                        label: "debswap",
                    },
                },
            ],
        )?;
        let ubuntu = d.join("ubuntu.img");
        make_disk(
            &ubuntu,
            80,
            "gpt",
            &[
                Part {
                    mib: 33,
                    kind: "U",
                    name: Some("EFI System"),
                    content: Content::Vfat {
                        id: ids::UBUNTU_ESP_ID,
                        label: "ESP",
                    },
                },
                Part {
                    mib: 40,
                    kind: "L",
                    name: Some("ubuntu-root"),
                    content: Content::Ext4 {
                        tree: &ubu,
                        uuid: ids::UBUNTU_ROOT_UUID,
                        label: Some("cloudimg-rootfs"),
                    },
                },
            ],
        )?;
        let alpine = d.join("alpine.img");
        make_fs(
            &alpine,
            32 * MIB,
            &Content::Ext4 {
                tree: &alp,
                uuid: ids::ALPINE_UUID,
                label: Some("alpine-root"),
            },
        )?;
        let usr_split = d.join("usr-split.img");
        make_disk(
            &usr_split,
            80,
            "gpt",
            &[
                Part {
                    mib: 32,
                    kind: "L",
                    name: Some("root"),
                    content: Content::Ext4 {
                        tree: &split,
                        uuid: ids::USR_ROOT_UUID,
                        label: None,
                    },
                },
                Part {
                    mib: 40,
                    kind: "L",
                    name: Some("usr"),
                    content: Content::Ext4 {
                        tree: &split_usr,
                        uuid: ids::USR_USR_UUID,
                        label: Some("usr"),
                    },
                },
            ],
        )?;
        let multi = d.join("multi.img");
        make_disk(
            &multi,
            200,
            "dos",
            &[
                Part {
                    mib: 48,
                    kind: "83",
                    name: None,
                    content: Content::Ext4 {
                        tree: &deb,
                        uuid: ids::DEBIAN_ROOT_UUID,
                        label: None,
                    },
                },
                Part {
                    mib: 32,
                    kind: "83",
                    name: None,
                    content: Content::Ext4 {
                        tree: &alp,
                        uuid: ids::ALPINE_UUID,
                        label: None,
                    },
                },
                Part {
                    mib: 33,
                    kind: "c",
                    name: None,
                    content: Content::Vfat {
                        id: "CAFEF00D",
                        label: "DATA",
                    },
                },
                Part {
                    mib: 8,
                    kind: "82",
                    name: None,
                    content: Content::Swap {
                        uuid: ids::DEBIAN_SWAP_UUID,
                        label: "swap2",
                    },
                },
                Part {
                    mib: 4,
                    kind: "8e",
                    name: None,
                    content: Content::Raw(lvm_header(LVM_PV_UUID)),
                },
                Part {
                    mib: 4,
                    kind: "83",
                    name: None,
                    content: Content::Raw(luks_header(LUKS_UUID, "secret")),
                },
            ],
        )?;
        let xfs = d.join("xfs.img");
        make_fs(&xfs, 320 * MIB, &Content::Xfs { label: "xfsdata" })?;
        let btrfs = d.join("btrfs.img");
        make_fs(&btrfs, 128 * MIB, &Content::Btrfs { label: "btrdata" })?;
        let hostile = hostile_disks(d, &debian, &multi, &ubuntu, &alpine)?;
        let odd = d.join("odd.img");
        fs::copy(&alpine, &odd)?;
        for cmd in [
            "symlink /etc/loop /etc/loop",
            "link /etc /etc/selfloop",
            "write /dev/null /etc/motd",
            "sif /etc/motd size 0x10000000000",
        ] {
            run(Command::new("debugfs").args(["-w", "-R", cmd]).arg(&odd))?;
        }
        Ok(Self {
            dir,
            debian,
            ubuntu,
            alpine,
            usr_split,
            multi,
            xfs,
            btrfs,
            hostile,
            odd,
        })
    }
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) -> Result<(), ImageError> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(bytes)?;
    Ok(())
}

fn read_at(path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, ImageError> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    fs::File::open(path)?.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

fn le32(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as u64
}

fn hostile_disks(
    d: &Path,
    debian: &Path,
    multi: &Path,
    ubuntu: &Path,
    alpine: &Path,
) -> Result<Vec<PathBuf>, ImageError> {
    // Truncated in the middle of the root partition.
    let trunc = d.join("truncated.img");
    fs::copy(debian, &trunc)?;
    fs::OpenOptions::new()
        .write(true)
        .open(&trunc)?
        .set_len(30 * MIB)?;
    // The second EBR links to itself.
    let ebr = d.join("ebr-loop.img");
    fs::copy(multi, &ebr)?;
    let mbr = read_at(&ebr, 0, 512)?;
    let ext = le32(&mbr, 446 + 3 * 16 + 8);
    let ebr1 = read_at(&ebr, ext * 512, 512)?;
    let rel2 = le32(&ebr1, 446 + 16 + 8);
    let mut entry = [0u8; 16];
    entry[4] = 0x05;
    entry[8..12].copy_from_slice(&(rel2 as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&2048u32.to_le_bytes());
    patch(&ebr, (ext + rel2) * 512 + 446 + 16, &entry)?;
    // Both GPT headers gone (the protective MBR stays).
    let gpt = d.join("gpt-dead.img");
    fs::copy(ubuntu, &gpt)?;
    let last = fs::metadata(&gpt)?.len() - 512;
    patch(&gpt, 512, b"NOT PART")?;
    patch(&gpt, last, b"NOT PART")?;
    // ext4 with garbage group descriptors (1 KiB blocks: the table starts at 2048).
    let ext4 = d.join("ext4-corrupt.img");
    fs::copy(alpine, &ext4)?;
    patch(&ext4, 2048, &[0xA5; 4096])?;
    Ok(vec![trunc, ebr, gpt, ext4])
}

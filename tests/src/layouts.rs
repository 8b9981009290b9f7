//! The layouts of real Linux cloud images (../shared/FIELD-NOTES.md, "Real-world disks"),
//! built by the tests with the real tools: GPT by `sfdisk` with fixed GUIDs, EFI system
//! partitions by `mkfs.vfat` and mtools' `mcopy`, ext4 by `mkfs.ext4 -d`, XFS by
//! `mkfs.xfs -p` (a protofile made from the tree), btrfs by `mkfs.btrfs --rootdir` with
//! `--subvol` and `--compress`, LVM2 by `pvcreate`/`vgcreate`/`lvcreate` on a loop device.
//!
//! Every identity is fixed, so virt-inspector's XML for these disks is reproducible: it is
//! recorded in `tests/data/inspector/<layout>.xml` (`bin/record-inspector` writes it again).
//! Each system has its package database as its distribution keeps it, written by the real
//! tools where they exist: rpm's sqlite database by `rpmbuild` and `rpm --justdb` (Fedora in
//! /usr/lib/sysimage/rpm with /var/lib/rpm a link from the `var` subvolume, RHEL in
//! /var/lib/rpm), CentOS 7's Berkeley DB `Packages` by `db5.3_load` from those header blobs,
//! openSUSE's ndb `Packages.db` laid out from rpm's description of the format around them
//! (no tool here writes ndb), Arch's pacman `desc` files as pacman writes them, Ubuntu's dpkg
//! status. The rpm systems carry rpm's own configuration (/usr/lib/rpm/macros), which librpm
//! reads from the guest when libguestfs lists its packages.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::images::{EM_X86_64, ImageError, MIB, Tree, elf, place, png, pseudo_random, sfdisk};

/// GPT type GUIDs.
mod types {
    /// BIOS boot partition.
    pub const BIOS: &str = "21686148-6449-6E6F-744E-656564454649";
    /// EFI system partition.
    pub const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
    /// Linux filesystem.
    pub const LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
    /// Linux LVM.
    pub const LVM: &str = "E6D6D379-F507-44C2-A23C-238F2A3DF928";
    /// Linux /boot (XBOOTLDR).
    pub const XBOOTLDR: &str = "BC13C2FF-59E6-4262-A352-B275FD6F7172";
}

/// One of the layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Fedora Cloud 40: BIOS boot, ESP (/boot/efi), ext4 /boot, btrfs with subvolumes
    /// `root`, `home`, `var`, compress=zstd:1.
    Fedora,
    /// RHEL 9 with LVM: BIOS boot, ESP, XFS /boot, PV with VG `rhel`: LVs `root` (XFS) and
    /// `swap`; fstab by /dev/mapper names.
    Rhel,
    /// openSUSE Leap 15.6 Minimal-VM: BIOS boot, ESP, XFS root, /etc/HOSTNAME.
    Opensuse,
    /// Arch (arch-boxes): BIOS boot, ESP at /efi, btrfs root with zstd.
    Arch,
    /// Ubuntu 24.04 cloud: p1 ext4 root, p14 BIOS boot, p15 ESP (/boot/efi), p16 ext4 /boot,
    /// all by LABEL.
    Ubuntu,
    /// CentOS 7 as its installer lays it out: MBR, XFS /boot, PV with VG `centos`: LVs
    /// `root` (XFS) and `swap`; rpm's Berkeley DB `Packages`.
    Centos7,
}

impl Layout {
    /// Every layout.
    pub const ALL: [Layout; 6] = [
        Layout::Fedora,
        Layout::Rhel,
        Layout::Opensuse,
        Layout::Arch,
        Layout::Ubuntu,
        Layout::Centos7,
    ];

    /// Its name, as in file names.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Fedora => "fedora",
            Layout::Rhel => "rhel",
            Layout::Opensuse => "opensuse",
            Layout::Arch => "arch",
            Layout::Ubuntu => "ubuntu",
            Layout::Centos7 => "centos7",
        }
    }

    /// virt-inspector's XML for it, as recorded.
    pub fn inspector_xml(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/inspector")
            .join(format!("{}.xml", self.name()))
    }

    /// Builds it at `path`; `scratch` is a directory for the trees and filesystems.
    pub fn build(self, path: &Path, scratch: &Path) -> Result<(), ImageError> {
        self.build_as(path, scratch, true)
    }

    /// Builds the disk virt-inspector's reference answer is recorded on: the same disk, but
    /// for openSUSE with its rpm database left in sqlite, since Debian's libguestfs (its
    /// librpm) has no ndb backend. The ndb disk holds the same packages, so its answer must
    /// be the same.
    pub fn build_for_reference(self, path: &Path, scratch: &Path) -> Result<(), ImageError> {
        self.build_as(path, scratch, false)
    }

    fn build_as(self, path: &Path, scratch: &Path, ndb: bool) -> Result<(), ImageError> {
        let s = scratch.join(self.name());
        fs::create_dir_all(&s)?;
        match self {
            Layout::Fedora => fedora(path, &s),
            Layout::Rhel => rhel(path, &s),
            Layout::Opensuse => opensuse(path, &s, ndb),
            Layout::Arch => arch(path, &s),
            Layout::Ubuntu => ubuntu(path, &s),
            Layout::Centos7 => centos7(path, &s),
        }
    }
}

/// Fixed identities of the layouts' filesystems and partitions.
pub mod ids {
    /// Fedora: ESP volume id and its UUID as blkid prints it.
    pub const FEDORA_ESP: (&str, &str) = ("F0ED0001", "F0ED-0001");
    /// Fedora: /boot.
    pub const FEDORA_BOOT: &str = "f0ed0000-0000-4000-8000-000000000002";
    /// Fedora: the btrfs filesystem.
    pub const FEDORA_BTRFS: &str = "f0ed0000-0000-4000-8000-000000000003";
    /// RHEL: ESP.
    pub const RHEL_ESP: (&str, &str) = ("7E1E0001", "7E1E-0001");
    /// RHEL: XFS /boot.
    pub const RHEL_BOOT: &str = "7e1e0000-0000-4000-8000-000000000002";
    /// RHEL: XFS root on LV rhel/root.
    pub const RHEL_ROOT: &str = "7e1e0000-0000-4000-8000-000000000003";
    /// RHEL: swap on LV rhel/swap.
    pub const RHEL_SWAP: &str = "7e1e0000-0000-4000-8000-000000000004";
    /// RHEL: the PV's UUID (LVM's 32 characters, dashed as LVM prints it).
    pub const RHEL_PV: &str = "RhElPv-0000-1111-2222-3333-4444-555555";
    /// openSUSE: ESP.
    pub const SUSE_ESP: (&str, &str) = ("5E5E0001", "5E5E-0001");
    /// openSUSE: XFS root.
    pub const SUSE_ROOT: &str = "5e5e0000-0000-4000-8000-000000000002";
    /// Arch: ESP.
    pub const ARCH_ESP: (&str, &str) = ("A4C40001", "A4C4-0001");
    /// Arch: btrfs root.
    pub const ARCH_ROOT: &str = "a4c40000-0000-4000-8000-000000000002";
    /// Ubuntu: root.
    pub const UBUNTU_ROOT: &str = "0b0b0000-0000-4000-8000-000000000001";
    /// Ubuntu: /boot.
    pub const UBUNTU_BOOT: &str = "0b0b0000-0000-4000-8000-000000000002";
    /// Ubuntu: ESP.
    pub const UBUNTU_ESP: (&str, &str) = ("0B0B0003", "0B0B-0003");
    /// CentOS 7: XFS /boot.
    pub const CENTOS_BOOT: &str = "ce070000-0000-4000-8000-000000000001";
    /// CentOS 7: XFS root on LV centos/root.
    pub const CENTOS_ROOT: &str = "ce070000-0000-4000-8000-000000000002";
    /// CentOS 7: swap on LV centos/swap.
    pub const CENTOS_SWAP: &str = "ce070000-0000-4000-8000-000000000003";
    /// CentOS 7: the PV's UUID.
    pub const CENTOS_PV: &str = "Ce07Pv-0000-1111-2222-3333-4444-555555";
}

/// What a partition holds.
pub(crate) enum Fs<'a> {
    /// Nothing (a BIOS boot partition).
    Empty,
    /// vfat with volume id and label, files from a tree.
    Vfat {
        id: &'a str,
        label: &'a str,
        tree: &'a Path,
    },
    /// ext4 from a tree.
    Ext4 {
        uuid: &'a str,
        label: Option<&'a str>,
        tree: &'a Path,
    },
    /// XFS from a tree.
    Xfs {
        uuid: &'a str,
        label: Option<&'a str>,
        tree: &'a Path,
    },
    /// btrfs from a tree whose top-level directories `subvols` become subvolumes (the first
    /// of them the default when `default` is set), compressed with `compress`.
    Btrfs {
        uuid: &'a str,
        label: Option<&'a str>,
        tree: &'a Path,
        subvols: &'a [&'a str],
        compress: &'a str,
    },
    /// An LVM2 PV: a VG of LVs, each with its content.
    Lvm {
        pv_uuid: &'a str,
        vg: &'a str,
        lvs: &'a [(&'a str, u64, Fs<'a>)],
    },
    /// Linux swap.
    Swap { uuid: &'a str },
    /// NTFS made by `mkntfs` with volume serial `serial` (16 hex digits, set by `ntfslabel
    /// --new-serial`) and `label`, files from a tree copied in through an `ntfs-3g` mount.
    Ntfs {
        label: &'a str,
        serial: &'a str,
        tree: &'a Path,
    },
}

/// One GPT partition: number, size in MiB, type GUID, PARTUUID, name, content.
pub(crate) struct Part<'a> {
    pub(crate) number: u32,
    pub(crate) mib: u64,
    pub(crate) kind: &'a str,
    pub(crate) uuid: &'a str,
    pub(crate) name: &'a str,
    pub(crate) fs: Fs<'a>,
}

/// Runs `cmd`, which must succeed; its standard output. An error names the command, cut to
/// 300 characters (one rpm command can name 500 packages).
pub(crate) fn tool(cmd: &mut Command) -> Result<String, ImageError> {
    let name: String = format!("{cmd:?}").chars().take(300).collect();
    let out = cmd.output().map_err(|e| ImageError::Tool {
        tool: name.clone(),
        message: format!("cannot run: {e} (is it installed? .ci/run installs it)"),
    })?;
    if !out.status.success() {
        return Err(ImageError::Tool {
            tool: name,
            message: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn new_file(path: &Path, size: u64) -> Result<(), ImageError> {
    let f = fs::File::create(path)?;
    f.set_len(size)?;
    Ok(())
}

/// A GPT disk of `mib` MiB with a fixed disk GUID; partitions placed in order from 1 MiB.
pub(crate) fn gpt_disk(
    path: &Path,
    mib: u64,
    guid: &str,
    parts: &[Part<'_>],
    s: &Path,
) -> Result<(), ImageError> {
    partitioned(
        path,
        mib,
        &format!("label: gpt\nlabel-id: {guid}\n"),
        parts,
        s,
    )
}

/// An MBR disk of `mib` MiB with a fixed disk signature (`0x...`); primary partitions
/// placed in order from 1 MiB, each `kind` an MBR type (`83`, `8e`).
pub(crate) fn mbr_disk(
    path: &Path,
    mib: u64,
    signature: &str,
    parts: &[Part<'_>],
    s: &Path,
) -> Result<(), ImageError> {
    partitioned(
        path,
        mib,
        &format!("label: dos\nlabel-id: {signature}\n"),
        parts,
        s,
    )
}

/// A disk of `mib` MiB partitioned by sfdisk with `header` (label and its id), partitions
/// placed in order from 1 MiB, each made and written in place.
fn partitioned(
    path: &Path,
    mib: u64,
    header: &str,
    parts: &[Part<'_>],
    s: &Path,
) -> Result<(), ImageError> {
    new_file(path, mib * MIB)?;
    let mut script = String::from(header);
    let mut at = MIB;
    let mut placed = Vec::new();
    for p in parts {
        let _ = write!(
            script,
            "{}{} : start={}, size={}, type={}",
            path.display(),
            p.number,
            at / 512,
            p.mib * MIB / 512,
            p.kind,
        );
        if !p.uuid.is_empty() {
            let _ = write!(script, ", uuid={}", p.uuid);
        }
        if !p.name.is_empty() {
            let _ = write!(script, ", name=\"{}\"", p.name);
        }
        script.push('\n');
        placed.push(at);
        at += p.mib * MIB;
    }
    sfdisk(path, &script)?;
    for (p, offset) in parts.iter().zip(placed) {
        let img = s.join(format!("part{}", p.number));
        make(&img, p.mib * MIB, &p.fs, s)?;
        place(path, offset, &img)?;
        fs::remove_file(&img)?;
    }
    Ok(())
}

/// Makes a `size`-byte filesystem image at `img`.
pub(crate) fn make(img: &Path, size: u64, content: &Fs<'_>, s: &Path) -> Result<(), ImageError> {
    new_file(img, size)?;
    match content {
        Fs::Empty => {}
        Fs::Vfat { id, label, tree } => {
            tool(
                Command::new("mkfs.vfat")
                    .args(["-i", id, "-n", label])
                    .arg(img),
            )?;
            for entry in fs::read_dir(tree)? {
                let entry = entry?;
                tool(
                    Command::new("mcopy")
                        .args(["-s", "-p", "-m", "-i"])
                        .arg(img)
                        .arg(entry.path())
                        .arg("::/"),
                )?;
            }
        }
        Fs::Ext4 { uuid, label, tree } => {
            // Fixed access and modification times (mkfs copies them from the tree), and a
            // fixed directory-hash seed, so that what ls -l, stat and readdir show of the
            // image is the same on every build and matches the recorded outputs.
            tool(Command::new("sh").arg("-c").arg(format!(
                "find '{}' -exec touch -h -d @1600000000 {{}} +",
                tree.display()
            )))?;
            let mut cmd = Command::new("mkfs.ext4");
            cmd.args(["-q", "-F", "-U", uuid, "-E"])
                .arg(format!("root_owner=0:0,hash_seed={uuid}"))
                .arg("-d")
                .arg(tree);
            if let Some(l) = label {
                cmd.args(["-L", l]);
            }
            cmd.env("E2FSPROGS_FAKE_TIME", "1700000000");
            tool(cmd.arg(img))?;
        }
        Fs::Xfs { uuid, label, tree } => {
            let proto = s.join("protofile");
            fs::write(&proto, protofile(tree)?)?;
            let mut cmd = Command::new("mkfs.xfs");
            cmd.args(["-q", "-f", "-m"])
                .arg(format!("uuid={uuid}"))
                .arg("-p")
                .arg(&proto);
            if let Some(l) = label {
                cmd.args(["-L", l]);
            }
            tool(cmd.arg(img))?;
        }
        Fs::Btrfs {
            uuid,
            label,
            tree,
            subvols,
            compress,
        } => {
            let mut cmd = Command::new("mkfs.btrfs");
            cmd.args(["-q", "-f", "-U", uuid, "--rootdir"]).arg(tree);
            for sv in *subvols {
                cmd.args(["--subvol", &format!("rw:{sv}")]);
            }
            cmd.args(["--compress", compress]);
            if let Some(l) = label {
                cmd.args(["-L", l]);
            }
            tool(cmd.arg(img))?;
        }
        Fs::Swap { uuid } => {
            tool(Command::new("mkswap").args(["-U", uuid]).arg(img))?;
        }
        Fs::Lvm { pv_uuid, vg, lvs } => lvm(img, pv_uuid, vg, lvs, s)?,
        Fs::Ntfs {
            label,
            serial,
            tree,
        } => crate::windows::ntfs(img, label, serial, tree, s)?,
    }
    Ok(())
}

/// LVM's configuration for building on loop device `dev` with no device-mapper: no activation
/// (so no udev and no zeroing through dm), no devices file, and no device but `dev` seen (other
/// PVs on the machine, with VGs of the same name, stay out of it).
fn lvm_config(dev: &str) -> String {
    format!(
        "devices {{ use_devicesfile = 0 filter = [ \"a|^{dev}$|\", \"r|.*|\" ] }} \
         global {{ activation = 0 }}"
    )
}

/// Makes `img` an LVM2 PV with VG `vg` and its LVs, then writes each LV's content at the
/// extents LVM reports for it.
fn lvm(
    img: &Path,
    pv_uuid: &str,
    vg: &str,
    lvs: &[(&str, u64, Fs<'_>)],
    s: &Path,
) -> Result<(), ImageError> {
    let loopdev = tool(Command::new("losetup").args(["-f", "--show"]).arg(img))?;
    let loopdev = loopdev.trim().to_string();
    let config = lvm_config(&loopdev);
    let result = (|| {
        let lvm = |args: &[&str]| {
            tool(
                Command::new(args[0])
                    .args(&args[1..])
                    .args(["--config", &config])
                    .env("LVM_SUPPRESS_FD_WARNINGS", "1"),
            )
        };
        lvm(&[
            "pvcreate",
            "-ff",
            "-y",
            "--uuid",
            pv_uuid,
            "--norestorefile",
            &loopdev,
        ])?;
        lvm(&["vgcreate", vg, &loopdev])?;
        for (name, mib, _) in lvs {
            lvm(&[
                "lvcreate",
                "-an",
                "-Zn",
                "-L",
                &format!("{mib}M"),
                "-n",
                name,
                vg,
            ])?;
        }
        let pe_start: u64 = lvm(&[
            "pvs",
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "pe_start",
            &loopdev,
        ])?
        .trim()
        .parse()
        .map_err(|e| ImageError::Tool {
            tool: "pvs".into(),
            message: format!("pe_start: {e}"),
        })?;
        let extent: u64 = lvm(&[
            "vgs",
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "vg_extent_size",
            vg,
        ])?
        .trim()
        .parse()
        .map_err(|e| ImageError::Tool {
            tool: "vgs".into(),
            message: format!("extent size: {e}"),
        })?;
        let segs = lvm(&[
            "lvs",
            "--noheadings",
            "--segments",
            "-o",
            "lv_name,seg_pe_ranges",
            vg,
        ])?;
        Ok::<_, ImageError>((pe_start, extent, segs))
    })();
    let _ = Command::new("losetup").args(["-d", &loopdev]).status();
    let (pe_start, extent, segs) = result?;
    for (name, mib, content) in lvs {
        // One segment each: "root /dev/loop0:0-4095".
        let line = segs
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .ok_or_else(|| ImageError::Tool {
                tool: "lvs".into(),
                message: format!("no segment for {name}: {segs}"),
            })?;
        let range = line
            .split_whitespace()
            .nth(1)
            .and_then(|r| r.rsplit(':').next())
            .unwrap_or("");
        let first: u64 = range
            .split('-')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ImageError::Tool {
                tool: "lvs".into(),
                message: format!("bad range {line}"),
            })?;
        let lv_img = s.join(format!("lv-{name}"));
        make(&lv_img, mib * MIB, content, s)?;
        place(img, pe_start + first * extent, &lv_img)?;
        fs::remove_file(&lv_img)?;
    }
    Ok(())
}

/// An xfsprogs protofile describing `tree`: directories, regular files and symlinks, owned
/// by root, with the tree's permission bits.
fn protofile(tree: &Path) -> Result<String, ImageError> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(dir: &Path, depth: usize, out: &mut String) -> Result<(), ImageError> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(e.path())?;
            let mode = meta.permissions().mode() & 0o7777;
            let pad = " ".repeat(depth * 2);
            if meta.file_type().is_symlink() {
                let target = fs::read_link(e.path())?;
                let _ = writeln!(out, "{pad}{name} l--{mode:03o} 0 0 {}", target.display());
            } else if meta.is_dir() {
                let _ = writeln!(out, "{pad}{name} d--{mode:03o} 0 0");
                walk(&e.path(), depth + 1, out)?;
                let _ = writeln!(out, "{pad}$");
            } else {
                let _ = writeln!(out, "{pad}{name} ---{mode:03o} 0 0 {}", e.path().display());
            }
        }
        Ok(())
    }
    let mut out = String::from("/dev/null\n0 0\nd--755 0 0\n");
    walk(tree, 1, &mut out)?;
    out.push_str("$\n");
    Ok(out)
}

/// An rpm package to put in a test database.
#[derive(Clone, Copy, Debug)]
pub struct Rpm<'a> {
    /// Name.
    pub name: &'a str,
    /// Epoch, when the package has one.
    pub epoch: Option<u32>,
    /// Version.
    pub version: &'a str,
    /// Release.
    pub release: &'a str,
    /// Architecture (`noarch` too).
    pub arch: &'a str,
    /// Summary.
    pub summary: &'a str,
    /// Whether the spec has a URL (virt-inspector prints `(none)` without one).
    pub url: bool,
}

impl<'a> Rpm<'a> {
    /// A package with a URL and no epoch.
    pub const fn new(
        name: &'a str,
        version: &'a str,
        release: &'a str,
        arch: &'a str,
        summary: &'a str,
    ) -> Rpm<'a> {
        Rpm {
            name,
            epoch: None,
            version,
            release,
            arch,
            summary,
            url: true,
        }
    }

    /// With an epoch.
    pub const fn epoch(self, epoch: u32) -> Rpm<'a> {
        Rpm {
            epoch: Some(epoch),
            ..self
        }
    }

    /// Without a URL.
    pub const fn no_url(self) -> Rpm<'a> {
        Rpm { url: false, ..self }
    }
}

/// rpm's configuration as every rpm system carries it (the `rpm` package's
/// /usr/lib/rpm/rpmrc and macros), reduced to what locates the database. libguestfs lists a
/// guest's rpm packages with librpm after a chroot into the guest, so librpm reads these,
/// not the appliance's own (Debian's, whose `%_dbpath` is `~/.rpmdb`): without them
/// virt-inspector finds no database on a guest.
fn rpm_config(root: &Tree, dbpath: &str, backend: Option<&str>) -> Result<(), ImageError> {
    let mut macros = format!(
        "# rpm macros (the part that locates the database)\n%_usr\t\t/usr\n%_var\t\t/var\n\
         %_dbpath\t\t{dbpath}\n"
    );
    if let Some(b) = backend {
        let _ = writeln!(macros, "%_db_backend\t\t{b}");
    }
    root.file("usr/lib/rpm/macros", macros)?
        .file("usr/lib/rpm/rpmrc", "# rpmrc\n")?;
    Ok(())
}

/// Builds each of `packages` with `rpmbuild` (a spec with no files) under `s`, returning
/// the package files.
fn rpmbuild(packages: &[Rpm<'_>], s: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let top = s.join("rpmbuild");
    fs::create_dir_all(top.join("SPECS"))?;
    let mut out = Vec::new();
    for p in packages {
        let spec = top.join("SPECS").join(format!("{}.spec", p.name));
        let mut text = format!(
            "Name: {}\nVersion: {}\nRelease: {}\nSummary: {}\nLicense: MIT\nBuildArch: {}\n",
            p.name, p.version, p.release, p.summary, p.arch
        );
        if let Some(e) = p.epoch {
            let _ = writeln!(text, "Epoch: {e}");
        }
        if p.url {
            let _ = writeln!(text, "URL: https://example.org/{}", p.name);
        }
        let _ = write!(
            text,
            "\n%description\nThe {} package, for the tests.\nIts second line.\n\n%files\n",
            p.name
        );
        fs::write(&spec, text)?;
        tool(
            Command::new("rpmbuild")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .args([
                    "--define",
                    "debug_package %{nil}",
                    "--define",
                    "_build_id_links none",
                ])
                .args(["--quiet", "-bb"])
                .arg(&spec),
        )?;
        out.push(top.join("RPMS").join(p.arch).join(format!(
            "{}-{}-{}.{}.rpm",
            p.name, p.version, p.release, p.arch
        )));
    }
    Ok(out)
}

/// The public key rpm imports as a `gpg-pubkey` pseudo-package (made once by gpg; fixed, so
/// the package's version and release, its key id and creation time, are too).
pub fn test_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rpm/RPM-GPG-KEY-vmchannel-test")
}

/// Creates an empty rpm database at `dbpath` (`rpm --initdb`).
pub(crate) fn rpm_initdb(dbpath: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(dbpath)?;
    tool(
        Command::new("rpm")
            .arg("--dbpath")
            .arg(dbpath)
            .arg("--initdb"),
    )?;
    Ok(())
}

/// Enters `rpms` into the database at `dbpath` in one transaction, without installing their
/// files or checking anything (`rpm -i --justdb --nodeps --noscripts`, any arch and OS).
pub(crate) fn rpm_justdb(dbpath: &Path, rpms: &[PathBuf]) -> Result<(), ImageError> {
    tool(
        Command::new("rpm")
            .arg("--dbpath")
            .arg(dbpath)
            .args([
                "-i",
                "--justdb",
                "--nodeps",
                "--noscripts",
                "--ignorearch",
                "--ignoreos",
            ])
            .args(rpms),
    )?;
    Ok(())
}

/// An rpm database (rpm 4.18's default, sqlite) at `dbpath` holding `packages`, each built by
/// `rpmbuild` and entered with `rpm --justdb`, then [`test_key`] imported as real systems
/// import their vendor's key (`rpm --import`).
fn rpmdb(dbpath: &Path, packages: &[Rpm<'_>], s: &Path) -> Result<(), ImageError> {
    rpm_initdb(dbpath)?;
    for rpm in rpmbuild(packages, s)? {
        rpm_justdb(dbpath, std::slice::from_ref(&rpm))?;
    }
    tool(
        Command::new("rpm")
            .arg("--dbpath")
            .arg(dbpath)
            .arg("--import")
            .arg(test_key()),
    )?;
    Ok(())
}

/// The header blobs of the sqlite rpm database in `dbpath`, in header-number order, read by
/// python3's sqlite3 (real SQLite) into files under `out`.
pub(crate) fn rpm_blobs(dbpath: &Path, out: &Path) -> Result<Vec<PathBuf>, ImageError> {
    fs::create_dir_all(out)?;
    let listed = tool(
        Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
                 for h, b in db.execute('SELECT hnum, blob FROM Packages ORDER BY hnum'):\n\
                 \x20   p = '%s/%08d.bin' % (sys.argv[2], h)\n\
                 \x20   open(p, 'wb').write(b)\n\
                 \x20   print(p)\n",
            ])
            .arg(dbpath.join("rpmdb.sqlite"))
            .arg(out),
    )?;
    Ok(listed.lines().map(PathBuf::from).collect())
}

/// Removes the sqlite database rpm wrote in `dbpath` (once its blobs are in another store).
fn remove_sqlite(dbpath: &Path) -> Result<(), ImageError> {
    for f in [
        "rpmdb.sqlite",
        "rpmdb.sqlite-shm",
        "rpmdb.sqlite-wal",
        ".rpm.lock",
    ] {
        match fs::remove_file(dbpath.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

/// Turns the sqlite rpm database in `dbpath` into rpm's ndb store (`Packages.db`) holding
/// the same header blobs. No tool here writes ndb (Debian's rpm is built without it), so
/// the store is laid out by the ndb reader's fixture writer
/// (inspect/src/pkgdb/testdata/ndb/make.py), written from rpm's lib/backend/ndb/rpmpkg.c.
pub(crate) fn to_ndb(dbpath: &Path, s: &Path) -> Result<(), ImageError> {
    let blobs = rpm_blobs(dbpath, &s.join("ndb-blobs"))?;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../inspect/src/pkgdb/testdata/ndb/make.py");
    tool(
        Command::new("python3")
            .arg(script)
            .arg(dbpath.join("Packages.db"))
            .args(&blobs),
    )?;
    remove_sqlite(dbpath)
}

/// Turns the sqlite rpm database in `dbpath` into a Berkeley DB hash `Packages` as rpm
/// <= 4.15 kept it, written by db5.3_load: keys are little-endian header numbers (key 0
/// holds the next header number), values the header blobs. rpm's read-only BDB backend
/// reads it (`rpm --define '_db_backend bdb_ro' -qa`).
pub(crate) fn to_bdb(dbpath: &Path, s: &Path) -> Result<(), ImageError> {
    let blobs = rpm_blobs(dbpath, &s.join("bdb-blobs"))?;
    // db_load -T: key and value lines alternate, every byte escaped as \xx.
    let hex = |b: &[u8]| b.iter().map(|x| format!("\\{x:02x}")).collect::<String>();
    let mut text = String::new();
    let mut next = 1u32;
    let mut pairs = Vec::new();
    for b in &blobs {
        let h: u32 = b
            .file_stem()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ImageError::Tool {
                tool: "rpm_blobs".into(),
                message: format!("bad blob name {}", b.display()),
            })?;
        next = next.max(h + 1);
        pairs.push((h.to_le_bytes().to_vec(), fs::read(b)?));
    }
    pairs.insert(
        0,
        (0u32.to_le_bytes().to_vec(), next.to_le_bytes().to_vec()),
    );
    for (k, v) in &pairs {
        let _ = writeln!(text, "{}\n{}", hex(k), hex(v));
    }
    let input = s.join("bdb-load.txt");
    fs::write(&input, text)?;
    tool(
        Command::new("db5.3_load")
            .args([
                "-T",
                "-t",
                "hash",
                "-c",
                "db_pagesize=4096",
                "-c",
                "db_lorder=1234",
            ])
            .arg("-f")
            .arg(&input)
            .arg(dbpath.join("Packages")),
    )?;
    remove_sqlite(dbpath)
}

fn tree(s: &Path, name: &str) -> Result<Tree, ImageError> {
    Tree::new(s.join(name))
}

/// A text file that compresses well (zstd/zlib/lzo extents on btrfs).
pub fn compressible(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut i = 0u64;
    while v.len() < len {
        let _ = writeln!(v, "line {i}: the quick brown fox jumps over the lazy dog");
        i += 1;
    }
    v.truncate(len);
    v
}

/// A 1 MiB file of pseudo-random bytes at `/usr/share/bench.bin` on the root filesystems
/// (and `/bench.bin` on the ESPs), the same on every type, for the read benchmarks.
pub fn bench_file() -> Vec<u8> {
    pseudo_random(MIB as usize, 21)
}

fn esp_tree(s: &Path, vendor: &str) -> Result<Tree, ImageError> {
    let t = tree(s, "esp")?;
    t.file("bench.bin", bench_file())?
        .file(
            &format!("EFI/{vendor}/grub.cfg"),
            "search --fs-uuid --set=dev x\n",
        )?
        .file("EFI/BOOT/BOOTX64.EFI", pseudo_random(70_000, 3))?;
    Ok(t)
}

fn fedora(path: &Path, s: &Path) -> Result<(), ImageError> {
    let esp = esp_tree(s, "fedora")?;
    let boot = tree(s, "boot")?;
    boot.file("vmlinuz-6.8.5-301.fc40.x86_64", vec![0x4d; 50_000])?
        .file("loader/entries/fedora.conf", "title Fedora Linux 40\n")?
        .dir("efi")?;
    let top = tree(s, "btrfs")?;
    let root = tree(top.path(), "root")?;
    root.file(
        "etc/os-release",
        "NAME=\"Fedora Linux\"\nVERSION=\"40 (Cloud Edition)\"\nID=fedora\nVERSION_ID=40\n\
         PRETTY_NAME=\"Fedora Linux 40 (Cloud Edition)\"\nVARIANT_ID=cloud\n",
    )?
    .file("etc/fedora-release", "Fedora release 40 (Forty)\n")?
    .file(
        "usr/share/icons/hicolor/96x96/apps/fedora-logo-icon.png",
        png(96, 96, 0x3c),
    )?
    .file("etc/hostname", "fedora-cloud\n")?
    .file(
        "etc/fstab",
        format!(
            "UUID={b} / btrfs subvol=root,compress=zstd:1 0 0\n\
             UUID={boot} /boot ext4 defaults 1 2\n\
             UUID={esp} /boot/efi vfat defaults,umask=0077,shortname=winnt 0 2\n\
             UUID={b} /home btrfs subvol=home,compress=zstd:1 0 0\n\
             UUID={b} /var btrfs subvol=var,compress=zstd:1 0 0\n",
            b = ids::FEDORA_BTRFS,
            boot = ids::FEDORA_BOOT,
            esp = ids::FEDORA_ESP.1
        ),
    )?
    .file("usr/bin/bash", elf(EM_X86_64))?
    .file("usr/share/bench.bin", bench_file())?
    .link("bin", "usr/bin")?
    .file("usr/share/doc/fedora/README", compressible(300_000))?
    .dir("boot/efi")?
    .dir("home")?
    .dir("var")?;
    rpm_config(&root, "%{_usr}/lib/sysimage/rpm", Some("sqlite"))?;
    rpmdb(
        &root.path().join("usr/lib/sysimage/rpm"),
        &[
            Rpm::new(
                "fedora-release-cloud",
                "40",
                "39",
                "noarch",
                "Fedora release files",
            ),
            Rpm::new(
                "bash",
                "5.2.26",
                "3.fc40",
                "x86_64",
                "The GNU Bourne Again shell",
            ),
            Rpm::new(
                "shadow-utils",
                "4.15.1",
                "3.fc40",
                "x86_64",
                "Utilities for managing accounts and shadow password files",
            )
            .epoch(2),
            Rpm::new(
                "basesystem",
                "11",
                "20.fc40",
                "noarch",
                "The skeleton package which defines a simple Fedora system",
            )
            .no_url(),
        ],
        s,
    )?;
    let home = tree(top.path(), "home")?;
    home.file("fedora/.bashrc", "# .bashrc\n")?;
    let var = tree(top.path(), "var")?;
    var.file("log/messages", compressible(200_000))?
        .link("lib/rpm", "../../usr/lib/sysimage/rpm")?;
    gpt_disk(
        path,
        200,
        "f0ed0000-aaaa-4000-8000-000000000000",
        &[
            Part {
                number: 1,
                mib: 1,
                kind: types::BIOS,
                uuid: "f0ed0000-aaaa-4000-8000-000000000001",
                name: "",
                fs: Fs::Empty,
            },
            Part {
                number: 2,
                mib: 20,
                kind: types::ESP,
                uuid: "f0ed0000-aaaa-4000-8000-000000000002",
                name: "EFI System Partition",
                fs: Fs::Vfat {
                    id: ids::FEDORA_ESP.0,
                    label: "ESP",
                    tree: esp.path(),
                },
            },
            Part {
                number: 3,
                mib: 24,
                kind: types::XBOOTLDR,
                uuid: "f0ed0000-aaaa-4000-8000-000000000003",
                name: "",
                fs: Fs::Ext4 {
                    uuid: ids::FEDORA_BOOT,
                    label: Some("boot"),
                    tree: boot.path(),
                },
            },
            Part {
                number: 4,
                mib: 150,
                kind: types::LINUX,
                uuid: "f0ed0000-aaaa-4000-8000-000000000004",
                name: "",
                fs: Fs::Btrfs {
                    uuid: ids::FEDORA_BTRFS,
                    label: Some("fedora"),
                    tree: top.path(),
                    subvols: &["root", "home", "var"],
                    compress: "zstd:1",
                },
            },
        ],
        s,
    )
}

fn rhel(path: &Path, s: &Path) -> Result<(), ImageError> {
    let esp = esp_tree(s, "redhat")?;
    let boot = tree(s, "boot")?;
    boot.file("vmlinuz-5.14.0-427.13.1.el9_4.x86_64", vec![0x4d; 50_000])?
        .file("grub2/grub.cfg", "set default=0\n")?
        .dir("efi")?;
    let root = tree(s, "root")?;
    root.file(
        "etc/os-release",
        "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\n\
         VERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.4 (Plow)\"\n",
    )?
    .file("etc/redhat-release", "Red Hat Enterprise Linux release 9.4 (Plow)\n")?
    .file("usr/share/pixmaps/system-logo-white.png", png(96, 96, 0xee))?
    .link(
        "usr/share/icons/hicolor/96x96/apps/system-logo-icon.png",
        "../../../../pixmaps/system-logo-white.png",
    )?
    .file("etc/hostname", "rhel9.example.com\n")?
    .file(
        "etc/fstab",
        format!(
            "/dev/mapper/rhel-root   /                       xfs     defaults        0 0\n\
             UUID={boot} /boot                   xfs     defaults        0 0\n\
             UUID={esp}          /boot/efi               vfat    umask=0077,shortname=winnt 0 2\n\
             /dev/mapper/rhel-swap   none                    swap    defaults        0 0\n",
            boot = ids::RHEL_BOOT,
            esp = ids::RHEL_ESP.1
        ),
    )?
    .file("usr/bin/bash", elf(EM_X86_64))?
    .file("usr/share/bench.bin", bench_file())?
    .link("bin", "usr/bin")?
    .dir("boot/efi")?;
    rpm_config(&root, "%{_var}/lib/rpm", Some("sqlite"))?;
    rpmdb(
        &root.path().join("var/lib/rpm"),
        &[
            Rpm::new(
                "redhat-release",
                "9.4",
                "0.5.el9",
                "x86_64",
                "Red Hat Enterprise Linux release file",
            ),
            Rpm::new(
                "bash",
                "5.1.8",
                "9.el9",
                "x86_64",
                "The GNU Bourne Again shell",
            ),
            Rpm::new(
                "openssl-libs",
                "3.0.7",
                "27.el9",
                "x86_64",
                "A general purpose cryptography library with TLS implementation",
            )
            .epoch(1),
        ],
        s,
    )?;
    gpt_disk(
        path,
        740,
        "7e1e0000-aaaa-4000-8000-000000000000",
        &[
            Part {
                number: 1,
                mib: 1,
                kind: types::BIOS,
                uuid: "7e1e0000-aaaa-4000-8000-000000000001",
                name: "",
                fs: Fs::Empty,
            },
            Part {
                number: 2,
                mib: 20,
                kind: types::ESP,
                uuid: "7e1e0000-aaaa-4000-8000-000000000002",
                name: "EFI System Partition",
                fs: Fs::Vfat {
                    id: ids::RHEL_ESP.0,
                    label: "",
                    tree: esp.path(),
                },
            },
            Part {
                number: 3,
                mib: 320,
                kind: types::XBOOTLDR,
                uuid: "7e1e0000-aaaa-4000-8000-000000000003",
                name: "",
                fs: Fs::Xfs {
                    uuid: ids::RHEL_BOOT,
                    label: None,
                    tree: boot.path(),
                },
            },
            Part {
                number: 4,
                mib: 392,
                kind: types::LVM,
                uuid: "7e1e0000-aaaa-4000-8000-000000000004",
                name: "",
                fs: Fs::Lvm {
                    pv_uuid: ids::RHEL_PV,
                    vg: "rhel",
                    lvs: &[
                        (
                            "root",
                            320,
                            Fs::Xfs {
                                uuid: ids::RHEL_ROOT,
                                label: None,
                                tree: root.path(),
                            },
                        ),
                        (
                            "swap",
                            64,
                            Fs::Swap {
                                uuid: ids::RHEL_SWAP,
                            },
                        ),
                    ],
                },
            },
        ],
        s,
    )
}

fn opensuse(path: &Path, s: &Path, ndb: bool) -> Result<(), ImageError> {
    let esp = esp_tree(s, "opensuse")?;
    let root = tree(s, "root")?;
    root.file(
        "etc/os-release",
        "NAME=\"openSUSE Leap\"\nVERSION=\"15.6\"\nID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\n\
         VERSION_ID=\"15.6\"\nPRETTY_NAME=\"openSUSE Leap 15.6\"\nCPE_NAME=\"cpe:/o:opensuse:leap:15.6\"\n",
    )?
    .file("etc/HOSTNAME", "leap-vm\n")?
    .file(
        "usr/share/icons/hicolor/24x24/apps/distributor.png",
        png(24, 24, 0x73),
    )?
    .file(
        "etc/fstab",
        format!(
            "UUID={root} / xfs defaults 0 0\nUUID={esp} /boot/efi vfat defaults 0 0\n",
            root = ids::SUSE_ROOT,
            esp = ids::SUSE_ESP.1
        ),
    )?
    .file("usr/bin/bash", elf(EM_X86_64))?
    .file("usr/share/bench.bin", bench_file())?
    .link("bin", "usr/bin")?
    .dir("boot/efi")?;
    rpm_config(&root, "%{_usr}/lib/sysimage/rpm", Some("ndb"))?;
    rpmdb(
        &root.path().join("usr/lib/sysimage/rpm"),
        &[
            Rpm::new(
                "openSUSE-release",
                "15.6",
                "lp156.1.1",
                "x86_64",
                "openSUSE Leap 15.6",
            ),
            Rpm::new(
                "bash",
                "4.4",
                "150400.27.3.2",
                "x86_64",
                "The GNU Bourne-Again Shell",
            ),
        ],
        s,
    )?;
    if ndb {
        to_ndb(&root.path().join("usr/lib/sysimage/rpm"), s)?;
    }
    root.link("var/lib/rpm", "../../usr/lib/sysimage/rpm")?;
    gpt_disk(
        path,
        360,
        "5e5e0000-aaaa-4000-8000-000000000000",
        &[
            Part {
                number: 1,
                mib: 2,
                kind: types::BIOS,
                uuid: "5e5e0000-aaaa-4000-8000-000000000001",
                name: "p.legacy",
                fs: Fs::Empty,
            },
            Part {
                number: 2,
                mib: 20,
                kind: types::ESP,
                uuid: "5e5e0000-aaaa-4000-8000-000000000002",
                name: "p.UEFI",
                fs: Fs::Vfat {
                    id: ids::SUSE_ESP.0,
                    label: "EFI",
                    tree: esp.path(),
                },
            },
            Part {
                number: 3,
                mib: 320,
                kind: types::LINUX,
                uuid: "5e5e0000-aaaa-4000-8000-000000000003",
                name: "p.lxroot",
                fs: Fs::Xfs {
                    uuid: ids::SUSE_ROOT,
                    label: Some("ROOT"),
                    tree: root.path(),
                },
            },
        ],
        s,
    )
}

fn arch(path: &Path, s: &Path) -> Result<(), ImageError> {
    let esp = esp_tree(s, "arch")?;
    let root = tree(s, "root")?;
    root.file(
        "etc/os-release",
        "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n\
         HOME_URL=\"https://archlinux.org/\"\n",
    )?
    .file("etc/arch-release", "")?
    .file("etc/hostname", "archlinux\n")?
    .file(
        "etc/fstab",
        format!(
            "# Static information about the filesystems.\n\
             UUID={root} / btrfs rw,relatime,compress=zstd:1 0 0\n\
             UUID={esp} /efi vfat rw,relatime,fmask=0022,dmask=0022 0 2\n",
            root = ids::ARCH_ROOT,
            esp = ids::ARCH_ESP.1
        ),
    )?
    .file("usr/bin/bash", elf(EM_X86_64))?
    .file("usr/share/bench.bin", bench_file())?
    .link("bin", "usr/bin")?
    .file("usr/share/licenses/README", compressible(150_000))?
    .file("var/lib/pacman/local/ALPM_DB_VERSION", "9\n")?
    .dir("efi")?;
    for p in ARCH_PACKAGES {
        pacman_entry(&root, p)?;
    }
    gpt_disk(
        path,
        180,
        "a4c40000-aaaa-4000-8000-000000000000",
        &[
            Part {
                number: 1,
                mib: 1,
                kind: types::BIOS,
                uuid: "a4c40000-aaaa-4000-8000-000000000001",
                name: "",
                fs: Fs::Empty,
            },
            Part {
                number: 2,
                mib: 20,
                kind: types::ESP,
                uuid: "a4c40000-aaaa-4000-8000-000000000002",
                name: "",
                fs: Fs::Vfat {
                    id: ids::ARCH_ESP.0,
                    label: "",
                    tree: esp.path(),
                },
            },
            Part {
                number: 3,
                mib: 150,
                kind: types::LINUX,
                uuid: "a4c40000-aaaa-4000-8000-000000000003",
                name: "",
                fs: Fs::Btrfs {
                    uuid: ids::ARCH_ROOT,
                    label: None,
                    tree: root.path(),
                    subvols: &[],
                    compress: "zstd:1",
                },
            },
        ],
        s,
    )
}

fn centos7(path: &Path, s: &Path) -> Result<(), ImageError> {
    let boot = tree(s, "boot")?;
    boot.file("vmlinuz-3.10.0-1160.el7.x86_64", vec![0x4d; 50_000])?
        .file("grub2/grub.cfg", "set default=0\n")?;
    let root = tree(s, "root")?;
    root.file(
        "etc/os-release",
        "NAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\n\
         VERSION_ID=\"7\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\nANSI_COLOR=\"0;31\"\n\
         CPE_NAME=\"cpe:/o:centos:centos:7\"\nHOME_URL=\"https://www.centos.org/\"\n\
         BUG_REPORT_URL=\"https://bugs.centos.org/\"\n",
    )?
    .file(
        "etc/centos-release",
        "CentOS Linux release 7.9.2009 (Core)\n",
    )?
    .file(
        "usr/share/icons/hicolor/96x96/apps/system-logo-icon.png",
        png(96, 96, 0x7c),
    )?
    .link("etc/redhat-release", "centos-release")?
    .link("etc/system-release", "centos-release")?
    .file("etc/hostname", "centos7.localdomain\n")?
    .file(
        "etc/fstab",
        format!(
            "\n#\n# /etc/fstab\n# Created by anaconda on Mon Nov  2 15:20:25 2020\n#\n\
             /dev/mapper/centos-root /                       xfs     defaults        0 0\n\
             UUID={boot} /boot                   xfs     defaults        0 0\n\
             /dev/mapper/centos-swap swap                    swap    defaults        0 0\n",
            boot = ids::CENTOS_BOOT,
        ),
    )?
    .file("usr/bin/bash", elf(EM_X86_64))?
    .link("bin", "usr/bin")?
    .dir("boot")?;
    rpm_config(&root, "%{_var}/lib/rpm", None)?;
    let dbpath = root.path().join("var/lib/rpm");
    rpmdb(
        &dbpath,
        &[
            Rpm::new(
                "centos-release",
                "7",
                "9.2009.0.el7.centos",
                "x86_64",
                "CentOS Linux release file",
            ),
            Rpm::new(
                "bash",
                "4.2.46",
                "34.el7",
                "x86_64",
                "The GNU Bourne Again shell",
            ),
            Rpm::new(
                "openssl-libs",
                "1.0.2k",
                "19.el7",
                "x86_64",
                "A general purpose cryptography library with TLS implementation",
            )
            .epoch(1),
            Rpm::new(
                "basesystem",
                "10.0",
                "7.el7.centos",
                "noarch",
                "The skeleton package which defines a simple CentOS Linux system",
            )
            .no_url(),
        ],
        s,
    )?;
    to_bdb(&dbpath, s)?;
    mbr_disk(
        path,
        720,
        "0x000ce007",
        &[
            Part {
                number: 1,
                mib: 320,
                kind: "83",
                uuid: "",
                name: "",
                fs: Fs::Xfs {
                    uuid: ids::CENTOS_BOOT,
                    label: None,
                    tree: boot.path(),
                },
            },
            Part {
                number: 2,
                mib: 392,
                kind: "8e",
                uuid: "",
                name: "",
                fs: Fs::Lvm {
                    pv_uuid: ids::CENTOS_PV,
                    vg: "centos",
                    lvs: &[
                        (
                            "root",
                            320,
                            Fs::Xfs {
                                uuid: ids::CENTOS_ROOT,
                                label: None,
                                tree: root.path(),
                            },
                        ),
                        (
                            "swap",
                            64,
                            Fs::Swap {
                                uuid: ids::CENTOS_SWAP,
                            },
                        ),
                    ],
                },
            },
        ],
        s,
    )
}

/// An Arch package in the layout's pacman database: name, `[epoch:]version-release`,
/// architecture, description, URL.
pub type Pacman<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// The Arch layout's packages (as arch-boxes images have them).
pub const ARCH_PACKAGES: &[Pacman<'static>] = &[
    (
        "bash",
        "5.2.026-2",
        "x86_64",
        "The GNU Bourne Again shell",
        "https://www.gnu.org/software/bash/bash.html",
    ),
    (
        "filesystem",
        "2024.04.07-1",
        "any",
        "Base Arch Linux files",
        "https://archlinux.org",
    ),
    (
        "linux",
        "6.9.3.arch1-1",
        "x86_64",
        "The Linux kernel and modules",
        "https://github.com/archlinux/linux",
    ),
    (
        "iana-etc",
        "20240502-1",
        "any",
        "/etc/protocols and /etc/services provided by IANA",
        "https://www.iana.org/protocols",
    ),
    (
        "libcap",
        "2.70-1",
        "x86_64",
        "POSIX 1003.1e capabilities",
        "https://sites.google.com/site/fullycapable/",
    ),
    (
        "zstd",
        "1.5.6-1",
        "x86_64",
        "Zstandard - Fast real-time compression algorithm",
        "https://facebook.github.io/zstd/",
    ),
    (
        "shadow",
        "4.15.1-1",
        "x86_64",
        "Password and account management tool suite with support for shadow files and PAM",
        "https://github.com/shadow-maint/shadow",
    ),
    (
        "tzdata",
        "2024a-1",
        "x86_64",
        "Sources for time zone and daylight saving time data",
        "https://www.iana.org/time-zones",
    ),
    (
        "ca-certificates-mozilla",
        "3.100-1",
        "x86_64",
        "Mozilla's set of trusted CA certificates",
        "https://developer.mozilla.org/en-US/docs/Mozilla/Projects/NSS",
    ),
    (
        "gnupg",
        "2.4.5-3",
        "x86_64",
        "Complete and free implementation of the OpenPGP standard",
        "https://www.gnupg.org/",
    ),
    (
        "pacman",
        "6.1.0-3",
        "x86_64",
        "A library-based package manager with dependency support",
        "https://www.archlinux.org/pacman/",
    ),
    (
        "xz",
        "5.6.1-4",
        "x86_64",
        "Library and command line tools for XZ and LZMA compressed files",
        "https://tukaani.org/xz/",
    ),
    (
        "openssl",
        "3.3.0-1",
        "x86_64",
        "The Open Source toolkit for Secure Sockets Layer and Transport Layer Security",
        "https://www.openssl.org",
    ),
    (
        "libtirpc",
        "1.3.4-1",
        "x86_64",
        "Transport Independent RPC library (SunRPC replacement)",
        "https://git.linux-nfs.org/?p=steved/libtirpc.git",
    ),
    (
        "e2fsprogs",
        "1.47.1-2",
        "x86_64",
        "Ext2/3/4 filesystem utilities",
        "http://e2fsprogs.sourceforge.net",
    ),
    (
        "libgpg-error",
        "1.49-1",
        "x86_64",
        "Support library for libgcrypt",
        "https://www.gnupg.org",
    ),
    (
        "cryptsetup",
        "2.7.2-1",
        "x86_64",
        "Userspace setup tool for transparent encryption of block devices using dm-crypt",
        "https://gitlab.com/cryptsetup/cryptsetup/",
    ),
    (
        "pinentry",
        "1:1.3.0-2",
        "x86_64",
        "Collection of simple PIN or passphrase entry dialogs which utilize the Assuan protocol",
        "https://gnupg.org/related_software/pinentry/",
    ),
];

/// One package's directory in the pacman local database, with its `desc` as pacman 6
/// writes it and its `files` list.
fn pacman_entry(root: &Tree, p: &Pacman<'_>) -> Result<(), ImageError> {
    let (name, version, arch, desc, url) = *p;
    let dir = format!("var/lib/pacman/local/{name}-{version}");
    root.file(
        &format!("{dir}/desc"),
        format!(
            "%NAME%\n{name}\n\n%VERSION%\n{version}\n\n%BASE%\n{name}\n\n%DESC%\n{desc}\n\n\
             %URL%\n{url}\n\n%ARCH%\n{arch}\n\n%BUILDDATE%\n1715000000\n\n\
             %INSTALLDATE%\n1717000000\n\n%PACKAGER%\nArch Linux <build@archlinux.org>\n\n\
             %SIZE%\n1048576\n\n%REASON%\n1\n\n%LICENSE%\nGPL-3.0-or-later\n\n\
             %VALIDATION%\npgp\n\n%DEPENDS%\nglibc\n\n"
        ),
    )?
    .file(
        &format!("{dir}/files"),
        format!("%FILES%\nusr/\nusr/share/\nusr/share/doc/{name}/\n\n"),
    )?;
    Ok(())
}

fn ubuntu(path: &Path, s: &Path) -> Result<(), ImageError> {
    let esp = esp_tree(s, "ubuntu")?;
    let boot = tree(s, "boot")?;
    boot.file("vmlinuz-6.8.0-31-generic", vec![0x4d; 50_000])?
        .file("grub/grub.cfg", "set default=0\n")?;
    let root = tree(s, "root")?;
    root.file(
        "etc/os-release",
        "PRETTY_NAME=\"Ubuntu 24.04 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\n\
         VERSION=\"24.04 LTS (Noble Numbat)\"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n",
    )?
    .file(
        "etc/lsb-release",
        "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\nDISTRIB_CODENAME=noble\nDISTRIB_DESCRIPTION=\"Ubuntu 24.04 LTS\"\n",
    )?
    .file("etc/debian_version", "trixie/sid\n")?
    .file("etc/hostname", "ubuntu\n")?
    .file(
        "usr/share/help/C/ubuntu-help/figures/ubuntu-logo.png",
        png(24, 24, 0xe9),
    )?
    .file(
        "etc/fstab",
        "LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,commit=30,errors=remount-ro\t0 1\n\
         LABEL=BOOT\t/boot\text4\tdefaults\t0 2\n\
         LABEL=UEFI\t/boot/efi\tvfat\tumask=0077\t0 1\n",
    )?
    .file("usr/bin/bash", elf(EM_X86_64))?
    .file("usr/share/bench.bin", bench_file())?
    .link("bin", "usr/bin")?
    .dir("boot/efi")?
    .file(
        "var/lib/dpkg/status",
        "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 13ubuntu10\n\
         Description: Debian base system miscellaneous files\n\n",
    )?;
    gpt_disk(
        path,
        120,
        "0b0b0000-aaaa-4000-8000-000000000000",
        &[
            Part {
                number: 14,
                mib: 4,
                kind: types::BIOS,
                uuid: "0b0b0000-aaaa-4000-8000-000000000014",
                name: "",
                fs: Fs::Empty,
            },
            Part {
                number: 15,
                mib: 20,
                kind: types::ESP,
                uuid: "0b0b0000-aaaa-4000-8000-000000000015",
                name: "",
                fs: Fs::Vfat {
                    id: ids::UBUNTU_ESP.0,
                    label: "UEFI",
                    tree: esp.path(),
                },
            },
            Part {
                number: 16,
                mib: 24,
                kind: types::XBOOTLDR,
                uuid: "0b0b0000-aaaa-4000-8000-000000000016",
                name: "",
                fs: Fs::Ext4 {
                    uuid: ids::UBUNTU_BOOT,
                    label: Some("BOOT"),
                    tree: boot.path(),
                },
            },
            Part {
                number: 1,
                mib: 64,
                kind: types::LINUX,
                uuid: "0b0b0000-aaaa-4000-8000-000000000001",
                name: "",
                fs: Fs::Ext4 {
                    uuid: ids::UBUNTU_ROOT,
                    label: Some("cloudimg-rootfs"),
                    tree: root.path(),
                },
            },
        ],
        s,
    )
}

/// The five layout disks, built once per test binary into a temporary directory that is
/// removed when the binary exits.
pub struct LayoutSet {
    /// Keeps the files.
    pub dir: tempfile::TempDir,
    /// Each layout's image, in [`Layout::ALL`] order.
    pub images: Vec<(Layout, PathBuf)>,
}

impl LayoutSet {
    /// The image of `layout`.
    pub fn image(&self, layout: Layout) -> &Path {
        &self
            .images
            .iter()
            .find(|(l, _)| *l == layout)
            .expect("every layout is built")
            .1
    }
}

/// The libguestfs programs the drop-in test runs on the Ubuntu layout, with the stock
/// appliance (`record-inspector libguestfs-tools`, into tests/data/libguestfs/) and with ours
/// (vmch/tests/libguestfs.rs): (program, output file, arguments; `IMAGE` is the disk).
pub const LIBGUESTFS_TOOL_CASES: [(&str, &str, &[&str]); 8] = [
    (
        "virt-cat",
        "cat.txt",
        &["--format=raw", "-a", "IMAGE", "/etc/fstab"],
    ),
    ("virt-df", "df.txt", &["--format=raw", "-a", "IMAGE"]),
    (
        "virt-df",
        "df-h.txt",
        &["-h", "--format=raw", "-a", "IMAGE"],
    ),
    (
        "virt-ls",
        "ls.txt",
        &["--format=raw", "-a", "IMAGE", "/etc"],
    ),
    (
        "virt-ls",
        "ls-R.txt",
        &["-R", "--format=raw", "-a", "IMAGE", "/boot"],
    ),
    (
        "virt-ls",
        "ls-l.txt",
        &["-l", "--format=raw", "-a", "IMAGE", "/etc"],
    ),
    (
        "virt-ls",
        "ls-lR.txt",
        &["-lR", "--format=raw", "-a", "IMAGE", "/etc"],
    ),
    ("guestfish", "guestfish.txt", GUESTFISH_SCRIPT),
];

/// libguestfs programs run on other layouts' filesystems, with the stock appliance's output
/// recorded in tests/data/libguestfs/FILE: `virt-ls -lR` and guestfish's `readdir` (inode
/// numbers and readdir order) on RHEL's XFS root and Fedora's btrfs root subvolume. (Not
/// `ll` or `statns` there: mkfs.xfs and mkfs.btrfs stamp their files with the time the
/// test built them.)
pub const LIBGUESTFS_LAYOUT_CASES: [(Layout, &str, &str, &[&str]); 4] = [
    (
        Layout::Rhel,
        "virt-ls",
        "rhel-ls-lR.txt",
        &["-lR", "--format=raw", "-a", "IMAGE", "/etc"],
    ),
    (
        Layout::Rhel,
        "guestfish",
        "rhel-readdir.txt",
        &[
            "--ro",
            "--format=raw",
            "-a",
            "IMAGE",
            "-i",
            "readdir",
            "/etc",
        ],
    ),
    (
        Layout::Fedora,
        "virt-ls",
        "fedora-ls-lR.txt",
        &["-lR", "--format=raw", "-a", "IMAGE", "/etc"],
    ),
    (
        Layout::Fedora,
        "guestfish",
        "fedora-readdir.txt",
        &[
            "--ro",
            "--format=raw",
            "-a",
            "IMAGE",
            "-i",
            "readdir",
            "/etc",
        ],
    ),
];

/// The guestfish commands of [`LIBGUESTFS_TOOL_CASES`], `:`-separated on its command line:
/// the read-only commands libguestfs users script, on the Ubuntu layout's root and /boot.
/// Not `ll /` (its `..` is the stock appliance's own root directory) nor `statns` of files
/// mkfs copied in (their ctime is when the test built the disk): `/` and `/lost+found` are
/// mkfs's own, with its fixed time. Nor `statns` on /boot: the stock appliance's kernel gives
/// partition 16 a device number on the extended major 259 whose minor varied between two
/// recordings (259:0, then 259:1: partitions are rescanned, and the minor of the first scan
/// is not always free again yet).
#[rustfmt::skip]
const GUESTFISH_SCRIPT: &[&str] = &[
    "--ro", "--format=raw", "-a", "IMAGE", "run",
    ":", "list-devices",
    ":", "list-partitions",
    ":", "list-filesystems",
    ":", "vfs-type", "/dev/sda1",
    ":", "vfs-label", "/dev/sda1",
    ":", "vfs-uuid", "/dev/sda16",
    ":", "mount-ro", "/dev/sda1", "/",
    ":", "mount-ro", "/dev/sda16", "/boot",
    ":", "ls", "/etc",
    ":", "cat", "/etc/hostname",
    ":", "download", "/etc/os-release", "-",
    ":", "is-file", "/etc/fstab",
    ":", "is-dir", "/boot/grub",
    ":", "is-symlink", "/etc/fstab",
    ":", "exists", "/no/such/file",
    ":", "filesize", "/etc/os-release",
    ":", "realpath", "/boot/../etc/./hostname",
    ":", "file", "/etc/hostname",
    ":", "file", "/boot",
    ":", "ll", "/etc",
    ":", "ll", "/boot",
    ":", "ll", "/etc/hostname",
    ":", "statns", "/",
    ":", "lstatns", "/lost+found",
    ":", "readdir", "/etc",
    ":", "readdir", "/boot",
    ":", "statvfs", "/",
    ":", "statvfs", "/boot",
    ":", "lstatnslist", "/", "lost+found nope",
    ":", "blkid", "/dev/sda1",
    ":", "blkid", "/dev/sda15",
    ":", "blkid", "/dev/sda14",
    ":", "blkid", "/dev/sda",
    ":", "umount-all",
];

/// The layout disks, built on first use (some 30 s of mkfs) and shared by every test in the
/// binary.
pub fn shared() -> &'static LayoutSet {
    static SET: std::sync::OnceLock<LayoutSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("vmch-layouts")
            .tempdir()
            .expect("a temp dir for the layout disks");
        crate::images::remove_at_exit(dir.path());
        let images = Layout::ALL
            .iter()
            .map(|&l| {
                let img = dir.path().join(format!("{}.img", l.name()));
                l.build(&img, dir.path())
                    .unwrap_or_else(|e| panic!("building the {} layout disk: {e}", l.name()));
                let _ = fs::remove_dir_all(dir.path().join(l.name()));
                (l, img)
            })
            .collect();
        LayoutSet { dir, images }
    })
}

/// What virt-inspector's XML says of one operating system that the volume layer decides:
/// the root, the mountpoints and the filesystems, as their XML lines.
#[derive(Debug, PartialEq, Eq)]
pub struct Placement {
    /// `<root>` line.
    pub root: String,
    /// The lines inside `<mountpoints>`.
    pub mountpoints: Vec<String>,
    /// The lines inside `<filesystems>`.
    pub filesystems: Vec<String>,
}

/// The [`Placement`] of every operating system in virt-inspector-style `xml`.
pub fn placements(xml: &str) -> Vec<Placement> {
    let mut out = Vec::new();
    let mut section: Option<&str> = None;
    for line in xml.lines() {
        let t = line.trim();
        match t {
            "<operatingsystem>" => out.push(Placement {
                root: String::new(),
                mountpoints: Vec::new(),
                filesystems: Vec::new(),
            }),
            "<mountpoints>" => section = Some("m"),
            "<filesystems>" => section = Some("f"),
            "</mountpoints>" | "</filesystems>" => section = None,
            _ => {
                let Some(os) = out.last_mut() else { continue };
                match section {
                    Some("m") => os.mountpoints.push(t.to_string()),
                    Some(_) => os.filesystems.push(t.to_string()),
                    None if t.starts_with("<root>") => os.root = t.to_string(),
                    None => {}
                }
            }
        }
    }
    out
}

//! Windows test disks, built with the real tools the way Windows Setup lays its disks out:
//! NTFS by `mkntfs` (serial numbers fixed by `ntfslabel --new-serial`) filled through an
//! `ntfs-3g` mount, registry hives by `hivexregedit --merge` from regedit text written here
//! into the empty hive of `tests/data/windows/empty-hive.py`, FAT32 EFI system partitions by
//! `mkfs.vfat -F 32` and mtools, partition tables by `sfdisk`.
//!
//! - [`WinLayout::Server2022`]: Windows Server 2022 Datacenter installed in BIOS mode: an
//!   MBR disk with the 50 MiB "System Reserved" NTFS partition (active, `bootmgr` and
//!   `Boot/BCD`) and C:.
//! - [`WinLayout::Win11`]: Windows 11 Pro 23H2 installed in UEFI mode: a GPT disk with the
//!   EFI system partition (FAT32, `EFI/Microsoft/Boot`), the Microsoft reserved partition (no
//!   filesystem), C: (basic data) and the Windows RE recovery partition (NTFS).
//!
//! C: holds what libguestfs's Windows rules (daemon/inspect_fs_windows.ml) read: the system
//! root `/Windows` with `System32/cmd.exe` (a PE32+ x86-64 header, which `file` names, the
//! architecture), and the SOFTWARE and SYSTEM hives in `System32/config`: the product name,
//! version and installation type under `Microsoft\Windows NT\CurrentVersion`, applications in
//! both Uninstall keys (the 64-bit one and WOW6432Node's), `Select\Current`, the hostname under
//! `ControlSet001\Services\Tcpip\Parameters`, and the drive letters in `MountedDevices` (MBR:
//! disk signature and partition byte offset; GPT: `DMIO:ID:` and the partition's GUID), each
//! with values libguestfs must skip beside them (no DisplayName, a CD-ROM, a disk that is not
//! attached). The values are those of real installs; names with non-ASCII characters and
//! keys spelt in another case than libguestfs asks for are among them.
//!
//! Every identity is fixed ([`ids`]), so virt-inspector's XML for these disks is
//! reproducible: it is recorded in `tests/data/inspector/<name>.xml` by
//! `bin/record-inspector win2022 win11`.
//!
//! Needs (Debian packages): `ntfs-3g` (mkntfs, ntfslabel, ntfs-3g; `/dev/fuse` and root for
//! the mount), `libhivex-bin` (hivexregedit), `dosfstools`, `mtools`, `fdisk`, `python3`.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::images::{ImageError, MIB, Tree, place, pseudo_random};
use crate::layouts::{Fs, Part, gpt_disk, mbr_disk, tool};

/// GPT partition type GUIDs of a Windows disk.
pub mod types {
    /// EFI system partition.
    pub const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
    /// Microsoft reserved partition (MSR).
    pub const MSR: &str = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE";
    /// Microsoft basic data.
    pub const BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
    /// Windows recovery environment.
    pub const WINRE: &str = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC";
    /// MBR partition type of NTFS (and exFAT): `07`.
    pub const MBR_NTFS: &str = "7";
}

/// Fixed identities of the Windows disks.
pub mod ids {
    /// Server 2022: the MBR disk signature (at byte 0x1B8, little-endian).
    pub const SRV_DISK_SIGNATURE: u32 = 0x2022_5E4D;
    /// Server 2022: "System Reserved" NTFS serial, as blkid and virt-inspector print it.
    pub const SRV_RESERVED_SERIAL: &str = "5E2022A1B2C3D401";
    /// Server 2022: C: NTFS serial.
    pub const SRV_C_SERIAL: &str = "5E2022A1B2C3D402";
    /// Server 2022: the byte offset of "System Reserved" (partition 1).
    pub const SRV_RESERVED_OFFSET: u64 = super::MIB;
    /// Server 2022: the byte offset of C: (partition 2).
    pub const SRV_C_OFFSET: u64 = 51 * super::MIB;
    /// Server 2022: the hostname (`Tcpip\Parameters\Hostname`).
    pub const SRV_HOSTNAME: &str = "Srv2022-Web01";
    /// Server 2022: the volume GUIDs of C: and System Reserved in `MountedDevices`.
    pub const SRV_VOLUMES: (&str, &str) = (
        "8a1f3c2e-5b7d-11ee-9c4a-806e6f6e6963",
        "8a1f3c2d-5b7d-11ee-9c4a-806e6f6e6963",
    );

    /// Windows 11: the GPT disk GUID.
    pub const WIN11_DISK: &str = "7d4e2c11-0b5f-4e8a-9c3d-2a1b0c9d8e00";
    /// Windows 11: the EFI system partition's PARTUUID.
    pub const WIN11_ESP_PART: &str = "7d4e2c11-0b5f-4e8a-9c3d-2a1b0c9d8e01";
    /// Windows 11: the MSR's PARTUUID.
    pub const WIN11_MSR_PART: &str = "7d4e2c11-0b5f-4e8a-9c3d-2a1b0c9d8e02";
    /// Windows 11: C:'s PARTUUID (what `MountedDevices` names after `DMIO:ID:`).
    pub const WIN11_C_PART: &str = "7d4e2c11-0b5f-4e8a-9c3d-2a1b0c9d8e03";
    /// Windows 11: the recovery partition's PARTUUID.
    pub const WIN11_RE_PART: &str = "7d4e2c11-0b5f-4e8a-9c3d-2a1b0c9d8e04";
    /// Windows 11: the EFI system partition's volume id (`mkfs.vfat -i`) and its UUID as
    /// blkid prints it.
    pub const WIN11_ESP: (&str, &str) = ("11E5A001", "11E5-A001");
    /// Windows 11: C: NTFS serial.
    pub const WIN11_C_SERIAL: &str = "11A1B2C3D4E5F603";
    /// Windows 11: the recovery partition's NTFS serial.
    pub const WIN11_RE_SERIAL: &str = "11A1B2C3D4E5F604";
    /// Windows 11: the hostname.
    pub const WIN11_HOSTNAME: &str = "DESKTOP-7Q2K9VB";
    /// A GPT partition GUID that is on no attached disk (a USB stick's, in
    /// `MountedDevices` as `\DosDevices\F:`).
    pub const ABSENT_PART: &str = "0c4f5a7e-93d2-4b61-a8e0-5f1d2c3b4a59";
    /// An MBR disk signature that is on no attached disk (`\DosDevices\E:` on Server 2022).
    pub const ABSENT_SIGNATURE: u32 = 0x0BAD_D15C;
}

/// One of the Windows disks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinLayout {
    /// Windows Server 2022 Datacenter (build 20348), BIOS, MBR: System Reserved + C:.
    Server2022,
    /// Windows 11 Pro 23H2 (build 22631), UEFI, GPT: ESP, MSR, C:, recovery.
    Win11,
}

impl WinLayout {
    /// Every Windows layout.
    pub const ALL: [WinLayout; 2] = [WinLayout::Server2022, WinLayout::Win11];

    /// Its name, as in file names and on `record-inspector`'s command line.
    pub fn name(self) -> &'static str {
        match self {
            WinLayout::Server2022 => "win2022",
            WinLayout::Win11 => "win11",
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
        let s = scratch.join(self.name());
        fs::create_dir_all(&s)?;
        let r = match self {
            WinLayout::Server2022 => server2022(path, &s),
            WinLayout::Win11 => win11(path, &s),
        };
        let _ = fs::remove_dir_all(&s);
        r
    }
}

/// The Windows disks, built once per test binary into a temporary directory that is removed
/// when the binary exits.
pub struct WinSet {
    /// Keeps the files.
    pub dir: tempfile::TempDir,
    /// Each layout's image, in [`WinLayout::ALL`] order.
    pub images: Vec<(WinLayout, PathBuf)>,
}

impl WinSet {
    /// The image of `layout`.
    pub fn image(&self, layout: WinLayout) -> &Path {
        &self
            .images
            .iter()
            .find(|(l, _)| *l == layout)
            .expect("every Windows layout is built")
            .1
    }
}

/// The Windows disks, built on first use and shared by every test in the binary.
pub fn shared() -> &'static WinSet {
    static SET: std::sync::OnceLock<WinSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("vmch-windows")
            .tempdir()
            .expect("a temp dir for the Windows disks");
        crate::images::remove_at_exit(dir.path());
        let images = WinLayout::ALL
            .iter()
            .map(|&l| {
                let img = dir.path().join(format!("{}.img", l.name()));
                l.build(&img, dir.path())
                    .unwrap_or_else(|e| panic!("building the {} disk: {e}", l.name()));
                (l, img)
            })
            .collect();
        WinSet { dir, images }
    })
}

/// The 16 bytes of `guid` as Windows and GPT store it: the first three fields
/// little-endian, the last two as written. `None` if it is not a GUID.
pub fn guid_bytes(guid: &str) -> Option<[u8; 16]> {
    let hex: String = guid.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || guid.len() != 36 {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    Some(b)
}

/// A `MountedDevices` value for an MBR partition: the disk signature, then the partition's
/// byte offset, both little-endian (12 bytes).
pub fn mbr_mount(signature: u32, offset: u64) -> Vec<u8> {
    let mut v = signature.to_le_bytes().to_vec();
    v.extend_from_slice(&offset.to_le_bytes());
    v
}

/// A `MountedDevices` value for a GPT partition: `DMIO:ID:` and the partition's GUID in its
/// on-disk byte order (24 bytes).
pub fn gpt_mount(part_guid: &str) -> Vec<u8> {
    let mut v = b"DMIO:ID:".to_vec();
    v.extend_from_slice(&guid_bytes(part_guid).expect("a GUID"));
    v
}

/// A `MountedDevices` value for a CD-ROM drive: its device path in UTF-16LE, as Windows
/// writes it (no terminator).
pub fn cdrom_mount() -> Vec<u8> {
    utf16(
        "\\??\\IDE#CdRomQEMU_QEMU_DVD-ROM_____________________2.5+____#5&1f1b0b3&0&1.0.0#\
         {53f5630d-b6bf-11d0-94f2-00a0c91efb8b}",
    )
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// PE machine types.
pub const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
/// PE machine: i386.
pub const IMAGE_FILE_MACHINE_I386: u16 = 0x014C;
/// PE subsystem: console.
pub const SUBSYSTEM_CONSOLE: u16 = 3;
/// PE subsystem: EFI application.
pub const SUBSYSTEM_EFI_APPLICATION: u16 = 10;

/// A PE executable of some `len` bytes (at least 4 KiB): the MZ header with its DOS stub,
/// `e_lfanew`, `PE\0\0`, the COFF header for `machine`, the optional header (PE32+ for
/// x86-64, PE32 otherwise) with `subsystem`, three section headers, and pseudo-random
/// section contents. `file` (5.44) calls it "PE32+ executable (console) x86-64, for MS Windows,
/// 3 sections".
pub fn pe_image(machine: u16, subsystem: u16, len: usize) -> Vec<u8> {
    let pe32plus = machine == IMAGE_FILE_MACHINE_AMD64;
    let len = len.max(0x1000).div_ceil(0x200) * 0x200;
    let mut b = pseudo_random(len, u64::from(machine) + u64::from(subsystem));
    b[..0x400].fill(0);
    let put16 =
        |b: &mut Vec<u8>, at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 =
        |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    // DOS header and stub.
    b[0..2].copy_from_slice(b"MZ");
    for (at, v) in [
        (2, 0x90u16),
        (4, 3),
        (8, 4),
        (0x0C, 0xFFFF),
        (0x10, 0xB8),
        (0x18, 0x40),
    ] {
        put16(&mut b, at, v);
    }
    let e_lfanew = 0xF8;
    put32(&mut b, 0x3C, e_lfanew as u32);
    let stub: &[u8] = b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21\
        This program cannot be run in DOS mode.\r\r\n$";
    b[0x40..0x40 + stub.len()].copy_from_slice(stub);
    // PE signature and COFF header.
    let sections = [(".text", 0x1000u32), (".rdata", 0x2000), (".data", 0x3000)];
    let opt_size: u16 = if pe32plus { 240 } else { 224 };
    b[e_lfanew..e_lfanew + 4].copy_from_slice(b"PE\0\0");
    let coff = e_lfanew + 4;
    put16(&mut b, coff, machine);
    put16(&mut b, coff + 2, sections.len() as u16);
    put32(&mut b, coff + 4, 0x6523_9A1C); // TimeDateStamp, fixed
    put16(&mut b, coff + 16, opt_size);
    // EXECUTABLE_IMAGE, and LARGE_ADDRESS_AWARE or 32BIT_MACHINE.
    put16(&mut b, coff + 18, if pe32plus { 0x0022 } else { 0x0102 });
    // Optional header.
    let opt = coff + 20;
    let raw = ((len - 0x400) / 3) as u32 & !0x1FF;
    put16(&mut b, opt, if pe32plus { 0x20B } else { 0x10B });
    b[opt + 2] = 14; // linker 14.38
    b[opt + 3] = 38;
    put32(&mut b, opt + 4, raw); // SizeOfCode
    put32(&mut b, opt + 8, 2 * raw); // SizeOfInitializedData
    put32(&mut b, opt + 16, 0x1010); // AddressOfEntryPoint
    put32(&mut b, opt + 20, 0x1000); // BaseOfCode
    let dirs = if pe32plus {
        put64(&mut b, opt + 24, 0x1_4000_0000); // ImageBase
        opt + 112
    } else {
        put32(&mut b, opt + 24, 0x2000); // BaseOfData
        put32(&mut b, opt + 28, 0x40_0000); // ImageBase
        opt + 96
    };
    put32(&mut b, opt + 32, 0x1000); // SectionAlignment
    put32(&mut b, opt + 36, 0x200); // FileAlignment
    for at in [40, 44, 48] {
        put16(&mut b, opt + at, 10); // OS, image, subsystem major versions
    }
    put32(&mut b, opt + 56, 0x1000 + 0x1000 * sections.len() as u32); // SizeOfImage
    put32(&mut b, opt + 60, 0x400); // SizeOfHeaders
    put16(&mut b, opt + 68, subsystem);
    put16(&mut b, opt + 70, 0xC160); // DllCharacteristics: ASLR, NX, CFG, ...
    if pe32plus {
        put64(&mut b, opt + 72, 0x8_0000);
        put64(&mut b, opt + 80, 0x2000);
        put64(&mut b, opt + 88, 0x10_0000);
        put64(&mut b, opt + 96, 0x1000);
        put32(&mut b, opt + 108, 16); // NumberOfRvaAndSizes
    } else {
        put32(&mut b, opt + 72, 0x8_0000);
        put32(&mut b, opt + 76, 0x2000);
        put32(&mut b, opt + 80, 0x10_0000);
        put32(&mut b, opt + 84, 0x1000);
        put32(&mut b, opt + 92, 16);
    }
    // Section headers.
    let mut sh = dirs + 16 * 8;
    for (i, (name, rva)) in sections.iter().enumerate() {
        b[sh..sh + name.len()].copy_from_slice(name.as_bytes());
        put32(&mut b, sh + 8, raw); // VirtualSize
        put32(&mut b, sh + 12, *rva);
        put32(&mut b, sh + 16, raw); // SizeOfRawData
        put32(&mut b, sh + 20, 0x400 + i as u32 * raw); // PointerToRawData
        let flags: u32 = match i {
            0 => 0x6000_0020, // code, execute, read
            1 => 0x4000_0040, // initialized data, read
            _ => 0xC000_0040, // initialized data, read, write
        };
        put32(&mut b, sh + 36, flags);
        sh += 40;
    }
    b
}

/// Registry text in regedit's format (`Windows Registry Editor Version 5.00`) for one hive,
/// with its keys under `prefix` (`HKEY_LOCAL_MACHINE\SOFTWARE`). Each key is written after
/// its parents (they are added when missing), as `hivexregedit --merge` needs.
pub struct Reg {
    prefix: String,
    text: String,
    keys: Vec<String>,
    current: Option<String>,
}

impl Reg {
    /// Empty text for the hive mounted at `prefix`.
    pub fn new(prefix: &str) -> Reg {
        Reg {
            prefix: prefix.to_string(),
            text: String::from("Windows Registry Editor Version 5.00\n"),
            keys: Vec::new(),
            current: None,
        }
    }

    /// Starts key `path` (relative to the hive's root, `\`-separated): the values that
    /// follow are its.
    pub fn key(&mut self, path: &str) -> &mut Reg {
        let mut at = String::new();
        let parts: Vec<&str> = path.split('\\').collect();
        for (i, part) in parts.iter().enumerate() {
            if !at.is_empty() {
                at.push('\\');
            }
            at.push_str(part);
            let known = self
                .keys
                .iter()
                .any(|k| k.to_lowercase() == at.to_lowercase());
            let last = i + 1 == parts.len();
            // A parent is listed once; the key itself again when it was listed before, so
            // the values that follow are its.
            if !known || (last && self.current.as_deref() != Some(at.as_str())) {
                if !known {
                    self.keys.push(at.clone());
                }
                let _ = write!(self.text, "\n[{}\\{at}]\n", self.prefix);
                self.current = Some(at.clone());
            }
        }
        self
    }

    fn name(name: &str) -> String {
        if name.is_empty() {
            "@".to_string()
        } else {
            format!("\"{}\"", escape(name))
        }
    }

    fn hex(&mut self, name: &str, kind: &str, bytes: &[u8]) -> &mut Reg {
        let list: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(self.text, "{}={kind}:{}", Reg::name(name), list.join(","));
        self
    }

    /// A REG_SZ value (`name` empty: the key's default value).
    pub fn sz(&mut self, name: &str, value: &str) -> &mut Reg {
        let _ = writeln!(self.text, "{}=\"{}\"", Reg::name(name), escape(value));
        self
    }

    /// A REG_DWORD value.
    pub fn dword(&mut self, name: &str, value: u32) -> &mut Reg {
        let _ = writeln!(self.text, "{}=dword:{value:08x}", Reg::name(name));
        self
    }

    /// A REG_QWORD value.
    pub fn qword(&mut self, name: &str, value: u64) -> &mut Reg {
        self.hex(name, "hex(b)", &value.to_le_bytes())
    }

    /// A REG_EXPAND_SZ value (UTF-16LE with its terminator).
    pub fn expand_sz(&mut self, name: &str, value: &str) -> &mut Reg {
        let mut b = utf16(value);
        b.extend_from_slice(&[0, 0]);
        self.hex(name, "hex(2)", &b)
    }

    /// A REG_MULTI_SZ value (each string terminated, then an empty one).
    pub fn multi_sz(&mut self, name: &str, values: &[&str]) -> &mut Reg {
        let mut b = Vec::new();
        for v in values {
            b.extend(utf16(v));
            b.extend_from_slice(&[0, 0]);
        }
        b.extend_from_slice(&[0, 0]);
        self.hex(name, "hex(7)", &b)
    }

    /// A REG_BINARY value.
    pub fn binary(&mut self, name: &str, value: &[u8]) -> &mut Reg {
        self.hex(name, "hex", value)
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Writes the hive at `out`: an empty hive whose root key is `root_name`
/// (`tests/data/windows/empty-hive.py`), then `reg` merged in by `hivexregedit --merge`.
pub fn hive(out: &Path, root_name: &str, reg: &Reg) -> Result<(), ImageError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/windows/empty-hive.py");
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir)?;
    }
    tool(Command::new("python3").arg(script).arg(out).arg(root_name))?;
    let text = out.with_extension("reg");
    fs::write(&text, reg.text())?;
    // The text is UTF-8: Perl reads it as such with PERL_UNICODE=D (or it would store each
    // byte of "ü" as a character of its own).
    tool(
        Command::new("hivexregedit")
            .args(["--merge", "--prefix", &reg.prefix])
            .arg(out)
            .arg(&text)
            .env("PERL_UNICODE", "SD"),
    )?;
    fs::remove_file(&text)?;
    Ok(())
}

/// Makes `img` (a file of the partition's size) an NTFS volume with `label` and `serial`:
/// `mkntfs -T` (all times zero, so every run writes the same volume), `ntfslabel
/// --new-serial`, then `tree` copied in with `cp -a` through an `ntfs-3g` mount (with
/// `windows_names`, so nothing Windows could not name gets in). `ntfs-3g` runs in the
/// foreground and is waited for after `umount`, so the volume is complete when this returns.
pub(crate) fn ntfs(
    img: &Path,
    label: &str,
    serial: &str,
    tree: &Path,
    s: &Path,
) -> Result<(), ImageError> {
    let mut mk = Command::new("mkntfs");
    mk.args(["-q", "-F", "-Q", "-T"]);
    if !label.is_empty() {
        mk.args(["-L", label]);
    }
    tool(mk.arg(img))?;
    tool(
        Command::new("ntfslabel")
            .arg(format!("--new-serial={serial}"))
            .arg(img),
    )?;
    let mnt = s.join("ntfs-mnt");
    fs::create_dir_all(&mnt)?;
    let log_path = s.join("ntfs-3g.log");
    let log = fs::File::create(&log_path)?;
    let mut child = Command::new("ntfs-3g")
        .args(["-o", "no_detach,windows_names"])
        .arg(img)
        .arg(&mnt)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| ImageError::Tool {
            tool: "ntfs-3g".into(),
            message: format!("cannot run: {e} (package ntfs-3g)"),
        })?;
    let failed = |what: &str| ImageError::Tool {
        tool: format!("ntfs-3g {}", img.display()),
        message: format!(
            "{what}: {}",
            fs::read_to_string(&log_path).unwrap_or_default()
        ),
    };
    // Mounted when the mount point's device is no longer its parent's.
    let parent_dev = fs::metadata(s)?.dev();
    let start = Instant::now();
    loop {
        if fs::metadata(&mnt)?.dev() != parent_dev {
            break;
        }
        if child.try_wait()?.is_some() {
            return Err(failed("exited before mounting"));
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed("not mounted after 20 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let copied = tool(Command::new("cp").arg("-a").arg(tree.join(".")).arg(&mnt));
    let unmounted = tool(Command::new("umount").arg(&mnt));
    if unmounted.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    copied?;
    unmounted?;
    if !status.success() {
        return Err(failed(&format!("exited with {status}")));
    }
    Ok(())
}

/// A FAT32 EFI system partition image of `mib` MiB at `img` with volume id `id`, no label,
/// files from `tree` (`mkfs.vfat -F 32`, `mcopy`), as Windows Setup formats it.
fn esp_fat32(img: &Path, mib: u64, id: &str, tree: &Path) -> Result<(), ImageError> {
    let f = fs::File::create(img)?;
    f.set_len(mib * MIB)?;
    drop(f);
    tool(
        Command::new("mkfs.vfat")
            .args(["-F", "32", "-S", "512", "-i", id])
            .arg(img),
    )?;
    for entry in fs::read_dir(tree)? {
        tool(
            Command::new("mcopy")
                .args(["-s", "-p", "-m", "-i"])
                .arg(img)
                .arg(entry?.path())
                .arg("::/"),
        )?;
    }
    Ok(())
}

/// One application in an Uninstall key: the subkey's name, then DisplayName, DisplayVersion,
/// Publisher, InstallLocation, URLInfoAbout, Comments (an empty field: no such value; no
/// DisplayName: libguestfs skips it).
pub type App<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

/// The 64-bit applications of Server 2022 (`Microsoft\Windows\CurrentVersion\Uninstall`).
pub const SRV_APPS: &[App<'static>] = &[
    ("AddressBook", "", "", "", "", "", ""),
    (
        "{23170F69-40C1-2702-2301-000001000000}",
        "7-Zip 23.01 (x64 edition)",
        "23.01.00.0",
        "Igor Pavlov",
        "C:\\Program Files\\7-Zip\\",
        "https://www.7-zip.org/",
        "",
    ),
    (
        "Mozilla Firefox 125.0.3 (x64 en-US)",
        "Mozilla Firefox (x64 en-US)",
        "125.0.3",
        "Mozilla",
        "C:\\Program Files\\Mozilla Firefox",
        "https://www.mozilla.org",
        "Mozilla Firefox 125.0.3 (x64 en-US)",
    ),
    (
        "Müller Übersetzer_is1",
        "Müller Übersetzer 3.2",
        "3.2.1",
        "Müller & Söhne GmbH",
        "C:\\Program Files\\Müller Übersetzer\\",
        "https://www.example.de/übersetzer",
        "Wörterbücher für \"Übersetzer\"",
    ),
    ("Connection Manager", "", "", "", "", "", ""),
    (
        "{A7E1C0A5-9A2C-4F0E-8E55-1B6B0C2A3D41}",
        "Microsoft Edge WebView2 Runtime",
        "",
        "Microsoft Corporation",
        "",
        "",
        "",
    ),
];

/// Server 2022's 32-bit applications (`WOW6432Node\...\Uninstall`).
pub const SRV_APPS32: &[App<'static>] = &[
    (
        "Notepad++",
        "Notepad++ (32-bit x86)",
        "8.6.7",
        "Notepad++ Team",
        "C:\\Program Files (x86)\\Notepad++",
        "https://notepad-plus-plus.org/",
        "",
    ),
    (
        "{D5D19E2F-7189-42FE-8103-92CD1FA457C2}",
        "Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.38.33135",
        "14.38.33135.0",
        "Microsoft Corporation",
        "",
        "",
        "",
    ),
    ("IE40", "", "", "", "", "", ""),
];

/// Windows 11's 64-bit applications.
pub const WIN11_APPS: &[App<'static>] = &[
    ("AddressBook", "", "", "", "", "", ""),
    (
        "Git_is1",
        "Git",
        "2.45.1",
        "The Git Development Community",
        "C:\\Program Files\\Git\\",
        "https://gitforwindows.org/",
        "",
    ),
    (
        "{90160000-008C-0000-1000-0000000FF1CE}",
        "Office 16 Click-to-Run Extensibility Component",
        "16.0.17531.20140",
        "Microsoft Corporation",
        "",
        "",
        "",
    ),
    (
        "VLC media player",
        "VLC media player",
        "3.0.20",
        "VideoLAN",
        "C:\\Program Files\\VideoLAN\\VLC",
        "http://www.videolan.org/",
        "",
    ),
    (
        "Übersicht",
        "Übersicht – Kalender für Büros",
        "1.0",
        "Zürich Software AG",
        "C:\\Program Files\\Übersicht",
        "",
        "Ein Kalender, ganz einfach.",
    ),
];

/// Windows 11's 32-bit applications, one named in Japanese (a key name hivex stores in
/// UTF-16, not Latin-1).
pub const WIN11_APPS32: &[App<'static>] = &[
    (
        "秀丸エディタ",
        "秀丸エディタ",
        "9.34",
        "有限会社サイトー企画",
        "C:\\Program Files (x86)\\Hidemaru",
        "https://hide.maruo.co.jp/",
        "",
    ),
    (
        "Steam",
        "Steam",
        "2.10.91.91",
        "Valve Corporation",
        "C:\\Program Files (x86)\\Steam",
        "https://www.valvesoftware.com/",
        "",
    ),
    ("DirectDrawEx", "", "", "", "", "", ""),
];

fn uninstall(reg: &mut Reg, base: &str, apps: &[App<'_>]) {
    reg.key(base);
    for (key, name, version, publisher, location, url, comments) in apps {
        reg.key(&format!("{base}\\{key}"));
        if name.is_empty() {
            // What such keys hold on a real system (components with no entry of their own).
            reg.dword("SystemComponent", 1);
            continue;
        }
        reg.sz("DisplayName", name);
        for (value, text) in [
            ("DisplayVersion", version),
            ("Publisher", publisher),
            ("InstallLocation", location),
            ("URLInfoAbout", url),
            ("Comments", comments),
        ] {
            if !text.is_empty() {
                reg.sz(value, text);
            }
        }
        reg.dword("NoModify", 1).dword("EstimatedSize", 0x2F40);
    }
}

/// What differs between the two systems' registries.
struct Version<'a> {
    product_name: &'a str,
    edition: &'a str,
    installation_type: &'a str,
    build: &'a str,
    ubr: u32,
    display_version: &'a str,
    build_lab: &'a str,
    apps: &'a [App<'a>],
    apps32: &'a [App<'a>],
}

/// The SOFTWARE hive's text.
fn software(v: &Version<'_>) -> Reg {
    let mut r = Reg::new("HKEY_LOCAL_MACHINE\\SOFTWARE");
    r.key("Microsoft\\Windows NT\\CurrentVersion")
        .sz("SystemRoot", "C:\\Windows")
        .sz("BuildBranch", v.build_lab.split('.').nth(1).unwrap_or(""))
        .sz("BuildGUID", "ffffffff-ffff-ffff-ffff-ffffffffffff")
        .sz("BuildLab", v.build_lab)
        .sz("CurrentBuild", v.build)
        .sz("CurrentBuildNumber", v.build)
        .dword("CurrentMajorVersionNumber", 10)
        .dword("CurrentMinorVersionNumber", 0)
        .sz("CurrentType", "Multiprocessor Free")
        .sz("CurrentVersion", "6.3")
        .sz("DisplayVersion", v.display_version)
        .sz("EditionID", v.edition)
        .sz("CompositionEditionID", v.edition)
        .sz("InstallationType", v.installation_type)
        .dword("InstallDate", 1_700_000_000)
        .qword("InstallTime", 133_444_736_000_000_000)
        .sz("PathName", "C:\\Windows")
        .sz("ProductId", "00454-40000-00001-AA047")
        .sz("ProductName", v.product_name)
        .sz("RegisteredOrganization", "")
        .sz("RegisteredOwner", "Windows User")
        .sz("ReleaseId", "2009")
        .sz("SoftwareType", "System")
        .dword("UBR", v.ubr)
        .binary("DigitalProductId", &pseudo_random(164, 7));
    r.key("Microsoft\\Windows\\CurrentVersion")
        .sz("CommonFilesDir", "C:\\Program Files\\Common Files")
        .sz("ProgramFilesDir", "C:\\Program Files")
        .expand_sz("ProgramFilesPath", "%ProgramFiles%")
        .sz("DevicePath", "%SystemRoot%\\inf");
    r.key("Microsoft\\Windows\\CurrentVersion\\App Paths\\cmd.exe")
        .expand_sz("", "%SystemRoot%\\system32\\cmd.exe");
    uninstall(
        &mut r,
        "Microsoft\\Windows\\CurrentVersion\\Uninstall",
        v.apps,
    );
    uninstall(
        &mut r,
        "WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
        v.apps32,
    );
    r
}

/// One control set's keys in the SYSTEM hive.
fn control_set(r: &mut Reg, set: &str, hostname: &str, domain: &str) {
    r.key(&format!("{set}\\Control\\ComputerName\\ComputerName"))
        .sz("ComputerName", &hostname.to_uppercase());
    r.key(&format!("{set}\\Control\\ServiceGroupOrder"))
        .multi_sz("List", &["System Reserved", "Boot Bus Extender", "Base"]);
    r.key(&format!("{set}\\Services\\Tcpip\\Parameters"))
        .sz("Hostname", hostname)
        .sz("NV Hostname", hostname)
        .sz("Domain", domain)
        .sz("NV Domain", domain)
        .expand_sz("DataBasePath", "%SystemRoot%\\System32\\drivers\\etc")
        .dword("EnableICMPRedirect", 1);
}

/// The SYSTEM hive's text: `Select`, the control sets (`(name, hostname, domain)`) and
/// `MountedDevices` (`(value name, data)`).
fn system(sets: &[(&str, &str, &str)], last_known_good: u32, mounted: &[(String, Vec<u8>)]) -> Reg {
    let mut r = Reg::new("HKEY_LOCAL_MACHINE\\SYSTEM");
    r.key("Select")
        .dword("Current", 1)
        .dword("Default", 1)
        .dword("Failed", 0)
        .dword("LastKnownGood", last_known_good);
    for (set, hostname, domain) in sets {
        control_set(&mut r, set, hostname, domain);
    }
    r.key("MountedDevices");
    for (name, data) in mounted {
        r.binary(name, data);
    }
    r
}

/// The root key names real hives have.
const SOFTWARE_ROOT: &str = "CMI-CreateHive{199DAFC2-6F16-4946-BF90-5A3FC3A60902}";
const SYSTEM_ROOT: &str = "CMI-CreateHive{2A7FB991-7BBE-4F9D-B91E-7CB51D4737F5}";

/// The files of C: (`/Windows`, `Program Files`, `Users`, ...) with its two hives.
fn system_drive(t: &Tree, software: &Reg, system: &Reg) -> Result<(), ImageError> {
    let config = t.path().join("Windows/System32/config");
    hive(&config.join("SOFTWARE"), SOFTWARE_ROOT, software)?;
    hive(&config.join("SYSTEM"), SYSTEM_ROOT, system)?;
    for (name, root) in [
        (
            "SAM",
            "CMI-CreateHive{C4E7BA2B-68E8-499C-B1A1-371AC8D717C7}",
        ),
        (
            "SECURITY",
            "CMI-CreateHive{D43B12B8-09B5-40DB-B4F6-F6DFEB78DAEC}",
        ),
        (
            "DEFAULT",
            "CMI-CreateHive{C8D5E8E0-4C6B-4D9B-9CA3-1D1F2A3B4C5D}",
        ),
    ] {
        hive(&config.join(name), root, &Reg::new("HKEY_USERS\\.DEFAULT"))?;
    }
    t.file(
        "Windows/System32/cmd.exe",
        pe_image(IMAGE_FILE_MACHINE_AMD64, SUBSYSTEM_CONSOLE, 289_792),
    )?
    .file(
        "Windows/System32/notepad.exe",
        pe_image(IMAGE_FILE_MACHINE_AMD64, 2, 20_480),
    )?
    .file(
        "Windows/SysWOW64/cmd.exe",
        pe_image(IMAGE_FILE_MACHINE_I386, SUBSYSTEM_CONSOLE, 236_544),
    )?
    .file(
        "Windows/System32/drivers/etc/hosts",
        "# Copyright (c) 1993-2009 Microsoft Corp.\r\n#\r\n# localhost name resolution is \
         handled within DNS itself.\r\n#\t127.0.0.1       localhost\r\n",
    )?
    .file(
        "Windows/win.ini",
        "; for 16-bit app support\r\n[fonts]\r\n[extensions]\r\n[mci extensions]\r\n[files]\r\n",
    )?
    .dir("Program Files/Common Files")?
    .dir("Program Files (x86)")?
    .dir("ProgramData/Microsoft")?
    .dir("System Volume Information")?
    .dir("$Recycle.Bin")?
    .file(
        "Users/Public/Documents/Übersicht.txt",
        "Grüße aus Zürich\r\n",
    )?
    .file("Users/Public/desktop.ini", "[.ShellClassInfo]\r\n")?;
    Ok(())
}

fn tree(s: &Path, name: &str) -> Result<Tree, ImageError> {
    Tree::new(s.join(name))
}

fn server2022(path: &Path, s: &Path) -> Result<(), ImageError> {
    let reserved = tree(s, "reserved")?;
    reserved
        .file("bootmgr", pseudo_random(413_738, 22))?
        .file("BOOTNXT", [0u8])?
        .file("Boot/bootstat.dat", vec![0u8; 65_536])?
        .file(
            "Boot/en-US/bootmgr.exe.mui",
            pe_image(IMAGE_FILE_MACHINE_AMD64, 2, 8192),
        )?
        .file(
            "Boot/memtest.exe",
            pe_image(IMAGE_FILE_MACHINE_I386, 16, 8192),
        )?
        .dir("System Volume Information")?;
    hive(
        &reserved.path().join("Boot/BCD"),
        "NewStoreRoot",
        &Reg::new("HKEY_LOCAL_MACHINE\\BCD00000000"),
    )?;
    let c = tree(s, "c")?;
    let (vol_c, vol_reserved) = ids::SRV_VOLUMES;
    let system_reg = system(
        &[
            ("ControlSet001", ids::SRV_HOSTNAME, "corp.example.com"),
            // A control set left from before the machine was renamed: not the current one.
            ("ControlSet002", "WIN-3J5K7OLDNAME", ""),
        ],
        2,
        &[
            (
                "\\DosDevices\\C:".into(),
                mbr_mount(ids::SRV_DISK_SIGNATURE, ids::SRV_C_OFFSET),
            ),
            (
                format!("\\??\\Volume{{{vol_c}}}"),
                mbr_mount(ids::SRV_DISK_SIGNATURE, ids::SRV_C_OFFSET),
            ),
            (
                format!("\\??\\Volume{{{vol_reserved}}}"),
                mbr_mount(ids::SRV_DISK_SIGNATURE, ids::SRV_RESERVED_OFFSET),
            ),
            ("\\DosDevices\\D:".into(), cdrom_mount()),
            (
                "\\DosDevices\\E:".into(),
                mbr_mount(ids::ABSENT_SIGNATURE, MIB),
            ),
        ],
    );
    system_drive(
        &c,
        &software(&Version {
            product_name: "Windows Server 2022 Datacenter",
            edition: "ServerDatacenter",
            installation_type: "Server",
            build: "20348",
            ubr: 2402,
            display_version: "21H2",
            build_lab: "20348.fe_release.210507-1500",
            apps: SRV_APPS,
            apps32: SRV_APPS32,
        }),
        &system_reg,
    )?;
    c.file(
        "Program Files/7-Zip/7z.exe",
        pe_image(IMAGE_FILE_MACHINE_AMD64, SUBSYSTEM_CONSOLE, 8192),
    )?
    .file(
        "Program Files/Mozilla Firefox/firefox.exe",
        pe_image(IMAGE_FILE_MACHINE_AMD64, 2, 8192),
    )?
    .file(
        "Program Files/Müller Übersetzer/übersetzer.exe",
        pe_image(IMAGE_FILE_MACHINE_AMD64, 2, 8192),
    )?
    .file(
        "Program Files (x86)/Notepad++/notepad++.exe",
        pe_image(IMAGE_FILE_MACHINE_I386, 2, 8192),
    )?
    .dir("Users/Administrator/Desktop")?;
    mbr_disk(
        path,
        180,
        &format!("0x{:08x}", ids::SRV_DISK_SIGNATURE),
        &[
            Part {
                number: 1,
                mib: 50,
                kind: types::MBR_NTFS,
                uuid: "",
                name: "",
                fs: Fs::Ntfs {
                    label: "System Reserved",
                    serial: ids::SRV_RESERVED_SERIAL,
                    tree: reserved.path(),
                },
            },
            Part {
                number: 2,
                mib: 120,
                kind: types::MBR_NTFS,
                uuid: "",
                name: "",
                fs: Fs::Ntfs {
                    label: "",
                    serial: ids::SRV_C_SERIAL,
                    tree: c.path(),
                },
            },
        ],
        s,
    )?;
    // System Reserved is the active partition.
    tool(
        Command::new("sfdisk")
            .args(["-q", "--activate"])
            .arg(path)
            .arg("1"),
    )?;
    Ok(())
}

fn win11(path: &Path, s: &Path) -> Result<(), ImageError> {
    let esp = tree(s, "esp")?;
    let bootmgfw = pe_image(IMAGE_FILE_MACHINE_AMD64, SUBSYSTEM_EFI_APPLICATION, 65_536);
    esp.file("EFI/Microsoft/Boot/bootmgfw.efi", &bootmgfw)?
        .file("EFI/Microsoft/Boot/bootmgr.efi", &bootmgfw)?
        .file("EFI/Microsoft/Boot/BOOTSTAT.DAT", vec![0u8; 65_536])?
        .file(
            "EFI/Microsoft/Boot/en-US/bootmgfw.efi.mui",
            pe_image(IMAGE_FILE_MACHINE_AMD64, 2, 8192),
        )?
        .file("EFI/Boot/bootx64.efi", &bootmgfw)?;
    hive(
        &esp.path().join("EFI/Microsoft/Boot/BCD"),
        "NewStoreRoot",
        &Reg::new("HKEY_LOCAL_MACHINE\\BCD00000000"),
    )?;
    hive(
        &esp.path().join("EFI/Microsoft/Recovery/BCD"),
        "NewStoreRoot",
        &Reg::new("HKEY_LOCAL_MACHINE\\BCD00000000"),
    )?;
    let recovery = tree(s, "recovery")?;
    recovery
        .file("Recovery/WindowsRE/Winre.wim", {
            let mut wim = pseudo_random(200_000, 11);
            wim[..8].copy_from_slice(b"MSWIM\0\0\0");
            wim
        })?
        .file(
            "Recovery/WindowsRE/ReAgent.xml",
            "<?xml version='1.0' encoding='utf-8'?>\r\n<WindowsRE version=\"2.0\">\
             <WinreBCD id=\"{9a4e8c5d-3b2f-11ef-8e5b-806e6f6e6963}\"/></WindowsRE>\r\n",
        )?
        .dir("System Volume Information")?;
    let c = tree(s, "c")?;
    let system_reg = system(
        &[("ControlSet001", ids::WIN11_HOSTNAME, "")],
        1,
        &[
            ("\\DosDevices\\C:".into(), gpt_mount(ids::WIN11_C_PART)),
            (
                "\\??\\Volume{3f6a9d2e-6c1b-4f4e-9d53-0a7b5c2e1f03}".into(),
                gpt_mount(ids::WIN11_C_PART),
            ),
            (
                "\\??\\Volume{3f6a9d2e-6c1b-4f4e-9d53-0a7b5c2e1f01}".into(),
                gpt_mount(ids::WIN11_ESP_PART),
            ),
            (
                "\\??\\Volume{3f6a9d2e-6c1b-4f4e-9d53-0a7b5c2e1f04}".into(),
                gpt_mount(ids::WIN11_RE_PART),
            ),
            ("\\DosDevices\\D:".into(), cdrom_mount()),
            ("\\DosDevices\\F:".into(), gpt_mount(ids::ABSENT_PART)),
            // A letter given to the recovery partition: a second drive on the disk.
            ("\\DosDevices\\R:".into(), gpt_mount(ids::WIN11_RE_PART)),
        ],
    );
    system_drive(
        &c,
        &software(&Version {
            // What Windows 11 really says: its product name was never changed.
            product_name: "Windows 10 Pro",
            edition: "Professional",
            installation_type: "Client",
            build: "22631",
            ubr: 3880,
            display_version: "23H2",
            build_lab: "22621.ni_release.220506-1250",
            apps: WIN11_APPS,
            apps32: WIN11_APPS32,
        }),
        &system_reg,
    )?;
    c.file(
        "Program Files/Git/cmd/git.exe",
        pe_image(IMAGE_FILE_MACHINE_AMD64, SUBSYSTEM_CONSOLE, 8192),
    )?
    .file(
        "Program Files/VideoLAN/VLC/vlc.exe",
        pe_image(IMAGE_FILE_MACHINE_AMD64, 2, 8192),
    )?
    .file(
        "Program Files (x86)/Hidemaru/Hidemaru.exe",
        pe_image(IMAGE_FILE_MACHINE_I386, 2, 8192),
    )?
    .file("Windows/Boot/EFI/bootmgfw.efi", &bootmgfw)?
    .dir("Users/Benutzer/Desktop")?;
    let esp_img = s.join("esp.img");
    esp_fat32(&esp_img, 100, ids::WIN11_ESP.0, esp.path())?;
    gpt_disk(
        path,
        272,
        ids::WIN11_DISK,
        &[
            Part {
                number: 1,
                mib: 100,
                kind: types::ESP,
                uuid: ids::WIN11_ESP_PART,
                name: "EFI system partition",
                fs: Fs::Empty,
            },
            Part {
                number: 2,
                mib: 16,
                kind: types::MSR,
                uuid: ids::WIN11_MSR_PART,
                name: "Microsoft reserved partition",
                fs: Fs::Empty,
            },
            Part {
                number: 3,
                mib: 120,
                kind: types::BASIC_DATA,
                uuid: ids::WIN11_C_PART,
                name: "Basic data partition",
                fs: Fs::Ntfs {
                    label: "",
                    serial: ids::WIN11_C_SERIAL,
                    tree: c.path(),
                },
            },
            Part {
                number: 4,
                mib: 32,
                kind: types::WINRE,
                uuid: ids::WIN11_RE_PART,
                name: "",
                fs: Fs::Ntfs {
                    label: "",
                    serial: ids::WIN11_RE_SERIAL,
                    tree: recovery.path(),
                },
            },
        ],
        s,
    )?;
    // The ESP is FAT32, as Windows formats it (the layouts' vfat is mkfs.vfat's choice).
    place(path, MIB, &esp_img)?;
    fs::remove_file(&esp_img)?;
    // The recovery partition: required by the platform, no drive letter (GPT attribute bits
    // 0 and 63), as Windows Setup marks it.
    tool(
        Command::new("sfdisk")
            .args(["-q", "--part-attrs"])
            .arg(path)
            .args(["4", "RequiredPartition,GUID:63"]),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_bytes_are_mixed_endian() {
        assert_eq!(
            guid_bytes("00112233-4455-6677-8899-aabbccddeeff"),
            Some([
                0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ])
        );
        assert_eq!(guid_bytes("not a guid"), None);
        assert_eq!(gpt_mount(ids::WIN11_C_PART).len(), 24);
        assert_eq!(
            mbr_mount(0x0403_0201, 0x10_0000),
            [1, 2, 3, 4, 0, 0, 0x10, 0, 0, 0, 0, 0]
        );
    }

    /// The bytes of partition `n` of `disk`, as sfdisk places it, copied to `out`.
    fn extract(disk: &Path, start_sector: u64, sectors: u64, out: &Path) {
        let data = fs::read(disk).expect("read the disk");
        let from = (start_sector * 512) as usize;
        let to = from + (sectors * 512) as usize;
        fs::write(out, &data[from..to]).expect("write the partition");
    }

    fn run(cmd: &mut Command) -> String {
        tool(cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Both disks as sfdisk, blkid, ntfscat, file and hivexget read them. With
    /// `VMCH_WINDISKS_KEEP=DIR` the images are copied to DIR too.
    #[test]
    fn disks_as_the_real_tools_read_them() {
        let root = is_root();
        if !crate::hosts::require(
            "root and /dev/fuse (the disks are filled through ntfs-3g)",
            root && Path::new("/dev/fuse").exists(),
            "disks_as_the_real_tools_read_them",
        ) {
            return;
        }
        let set = shared();
        let scratch = tempfile::tempdir().expect("scratch");
        if let Some(keep) = std::env::var_os("VMCH_WINDISKS_KEEP") {
            for (l, img) in &set.images {
                fs::copy(img, Path::new(&keep).join(format!("{}.img", l.name())))
                    .expect("copy the image");
            }
        }
        let srv = set.image(WinLayout::Server2022);
        let dump = run(Command::new("sfdisk").arg("--dump").arg(srv));
        let p = srv.display();
        assert!(
            dump.contains("label: dos\nlabel-id: 0x20225e4d\n"),
            "{dump}"
        );
        assert!(
            dump.contains(&format!(
                "{p}1 : start=        2048, size=      102400, type=7, bootable\n\
                 {p}2 : start=      104448, size=      245760, type=7\n"
            )),
            "{dump}"
        );
        let w11 = set.image(WinLayout::Win11);
        let dump = run(Command::new("sfdisk").arg("--dump").arg(w11));
        let p = w11.display();
        for line in [
            "label: gpt\n".to_string(),
            format!("label-id: {}\n", ids::WIN11_DISK.to_uppercase()),
            format!(
                "{p}1 : start=        2048, size=      204800, type={}, uuid={}, \
                 name=\"EFI system partition\"\n",
                types::ESP,
                ids::WIN11_ESP_PART.to_uppercase()
            ),
            format!(
                "{p}2 : start=      206848, size=       32768, type={}, uuid={}, \
                 name=\"Microsoft reserved partition\"\n",
                types::MSR,
                ids::WIN11_MSR_PART.to_uppercase()
            ),
            format!(
                "{p}3 : start=      239616, size=      245760, type={}, uuid={}, \
                 name=\"Basic data partition\"\n",
                types::BASIC_DATA,
                ids::WIN11_C_PART.to_uppercase()
            ),
            format!(
                "{p}4 : start=      485376, size=       65536, type={}, uuid={}, \
                 attrs=\"RequiredPartition GUID:63\"\n",
                types::WINRE,
                ids::WIN11_RE_PART.to_uppercase()
            ),
        ] {
            assert!(dump.contains(&line), "{line} not in\n{dump}");
        }
        // Each filesystem, by blkid.
        let part = scratch.path().join("part");
        let cases: [(&Path, u64, u64, &str); 5] = [
            (
                srv,
                2048,
                102400,
                "LABEL=System\\ Reserved\nUUID=5E2022A1B2C3D401\nTYPE=ntfs\n",
            ),
            (srv, 104448, 245760, "UUID=5E2022A1B2C3D402\nTYPE=ntfs\n"),
            (
                w11,
                2048,
                204800,
                "UUID=11E5-A001\nVERSION=FAT32\nTYPE=vfat\n",
            ),
            (w11, 239616, 245760, "UUID=11A1B2C3D4E5F603\nTYPE=ntfs\n"),
            (w11, 485376, 65536, "UUID=11A1B2C3D4E5F604\nTYPE=ntfs\n"),
        ];
        for (disk, start, sectors, want) in cases {
            extract(disk, start, sectors, &part);
            let got = run(Command::new("blkid")
                .args(["-p", "-o", "export", "-s", "LABEL", "-s", "UUID"])
                .args(["-s", "VERSION", "-s", "TYPE"])
                .arg(&part));
            let got: String = got.lines().skip(1).map(|l| format!("{l}\n")).collect();
            assert_eq!(got, want, "{} at {start}", disk.display());
        }
        // C: of each: cmd.exe by file, the hives by hivexget.
        for (disk, start, product, build, hostname) in [
            (
                srv,
                104448,
                "Windows Server 2022 Datacenter",
                "20348",
                ids::SRV_HOSTNAME,
            ),
            (w11, 239616, "Windows 10 Pro", "22631", ids::WIN11_HOSTNAME),
        ] {
            extract(disk, start, 245760, &part);
            let cat = |path: &str, out: &Path| {
                let bytes = Command::new("ntfscat")
                    .arg(&part)
                    .arg(path)
                    .output()
                    .expect("ntfscat");
                assert!(bytes.status.success(), "ntfscat {path}");
                fs::write(out, bytes.stdout).expect("write");
            };
            let cmd = scratch.path().join("cmd.exe");
            cat("/Windows/System32/cmd.exe", &cmd);
            assert_eq!(
                run(Command::new("file").arg("-b").arg(&cmd)),
                "PE32+ executable (console) x86-64, for MS Windows, 3 sections\n"
            );
            cat("/Windows/SysWOW64/cmd.exe", &cmd);
            assert_eq!(
                run(Command::new("file").arg("-b").arg(&cmd)),
                "PE32 executable (console) Intel 80386, for MS Windows, 3 sections\n"
            );
            let sw = scratch.path().join("SOFTWARE");
            cat("/Windows/System32/config/SOFTWARE", &sw);
            let get = |hive: &Path, key: &str, value: &str| {
                run(Command::new("hivexget").arg(hive).arg(key).arg(value))
            };
            let cv = "\\Microsoft\\Windows NT\\CurrentVersion";
            assert_eq!(get(&sw, cv, "ProductName"), format!("{product}\n"));
            assert_eq!(get(&sw, cv, "CurrentBuildNumber"), format!("{build}\n"));
            assert_eq!(get(&sw, cv, "CurrentMajorVersionNumber"), "10\n");
            let sys = scratch.path().join("SYSTEM");
            cat("/Windows/System32/config/SYSTEM", &sys);
            assert_eq!(get(&sys, "\\Select", "Current"), "1\n");
            assert_eq!(
                get(
                    &sys,
                    "\\ControlSet001\\Services\\Tcpip\\Parameters",
                    "Hostname"
                ),
                format!("{hostname}\n")
            );
        }
    }

    /// Whether this process runs as root (ntfs-3g mounts need it here).
    fn is_root() -> bool {
        fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
            })
            .unwrap_or(false)
    }

    #[test]
    fn reg_lists_parents_first() {
        let mut r = Reg::new("HKEY_LOCAL_MACHINE\\SOFTWARE");
        r.key("A\\B").sz("x", "a\\\"b\"").key("A\\C").dword("", 10);
        assert_eq!(
            r.text(),
            "Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\A]\n\n\
             [HKEY_LOCAL_MACHINE\\SOFTWARE\\A\\B]\n\"x\"=\"a\\\\\\\"b\\\"\"\n\n\
             [HKEY_LOCAL_MACHINE\\SOFTWARE\\A\\C]\n@=dword:0000000a\n"
        );
    }
}

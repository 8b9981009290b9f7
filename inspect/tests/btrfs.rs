//! The btrfs reader against images made by the real `mkfs.btrfs` (btrfs-progs 6.14,
//! `--rootdir`, `--subvol`, `--compress`, `-m`/`-d` profiles): every file, directory and
//! symlink put in is read back and compared; stat, readdir, readlink and statvfs are
//! compared with what a Linux loop mount answered on the same kind of image (recorded in
//! `tests/data/btrfs/`); and a Fedora-like disk is inspected and compared with
//! virt-inspector's answer on it.
//!
//! Without `mkfs.btrfs` the tests print `SKIPPED: <why>` and pass, unless `CI=true`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::open_dev;
use vmchannel_inspect::appliance::disks::DiskSet;
use vmchannel_inspect::fs::FileSystem;
use vmchannel_inspect::fs::btrfs::Btrfs;
use vmchannel_proto::FileKind;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmch-btrfs-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Whether `tool` runs; otherwise SKIPPED (or a failure under CI).
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is missing (Debian package btrfs-progs)"
        );
        println!("SKIPPED: {tool} is not installed");
    }
    ok
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Text that compresses well, `lines` lines of it.
fn text(lines: usize, seed: u64) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..lines {
        s.push_str(&format!("line {i} of file {seed}: the quick brown fox\n"));
    }
    s.into_bytes()
}

/// Bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A tree with every kind of content: small (inline) and large files, compressible and
/// not, a sparse file, empty files, nested directories, many entries, symlinks (relative,
/// absolute, dangling), a fifo, and odd modes and owners.
fn populate(root: &Path) {
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    };
    w("etc/hostname", b"btrfs-test\n");
    w("etc/empty", b"");
    w("etc/big.txt", &text(40_000, 1));
    w("etc/noise.bin", &noise(300_000, 2));
    w(
        "etc/mixed.bin",
        &[text(3000, 3), noise(70_000, 4), text(5000, 5)].concat(),
    );
    w("usr/share/doc/a/b/c/deep.txt", &text(10, 6));
    w("usr/lib/os-release", b"ID=test\n");
    for i in 0..300 {
        w(&format!("many/f{i:03}"), format!("{i}\n").as_bytes());
    }
    // A sparse file: data, a hole, data.
    let sparse = fs::File::create(root.join("etc/sparse")).unwrap();
    sparse.write_all_at(&noise(5000, 7), 0).unwrap();
    sparse.write_all_at(&text(100, 8), 3 << 20).unwrap();
    symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    symlink("/usr/share/doc", root.join("docs")).unwrap();
    symlink("nowhere", root.join("dangling")).unwrap();
    symlink("loop2", root.join("loop1")).unwrap();
    symlink("loop1", root.join("loop2")).unwrap();
    run(Command::new("mkfifo").arg(root.join("etc/fifo")));
    fs::set_permissions(root.join("etc/hostname"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(root.join("etc/big.txt"), Some(1000), Some(100)).unwrap();
    fs::create_dir_all(root.join("emptydir")).unwrap();
}

/// `mkfs.btrfs` of `dir` into `img` with `args`.
fn mkfs(img: &Path, dir: &Path, args: &[&str]) {
    fs::File::create(img).unwrap().set_len(160 << 20).unwrap();
    run(Command::new("mkfs.btrfs")
        .args(["-q", "-f", "--rootdir"])
        .arg(dir)
        .args(args)
        .arg(img));
}

/// Every path under `dir`, relative, sorted.
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let r = format!("{rel}/{name}");
        let ft = e.file_type().unwrap();
        out.push(r.clone());
        if ft.is_dir() {
            walk(&e.path(), &r, out);
        }
    }
}

/// Compares `fs` with the source tree `dir`: kinds, sizes, modes, owners, mtimes, link
/// targets, contents (read whole and in odd pieces) and directory listings.
fn compare(fs: &dyn FileSystem, dir: &Path) {
    let mut paths = Vec::new();
    walk(dir, "", &mut paths);
    assert!(!paths.is_empty());
    for rel in &paths {
        let host = dir.join(&rel[1..]);
        let md = fs::symlink_metadata(&host).unwrap();
        let st = fs.lstat(rel).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(st.mode, md.mode(), "{rel}: mode");
        assert_eq!((st.uid, st.gid), (md.uid(), md.gid()), "{rel}: owner");
        assert_eq!(st.mtime, md.mtime(), "{rel}: mtime");
        let ft = md.file_type();
        if ft.is_symlink() {
            let t = fs::read_link(&host).unwrap();
            assert_eq!(fs.read_link(rel).unwrap(), t.to_str().unwrap(), "{rel}");
            assert_eq!(st.link_target.as_deref(), t.to_str(), "{rel}");
            assert_eq!(st.kind, FileKind::Symlink);
        } else if ft.is_file() {
            assert_eq!(st.size, md.len(), "{rel}: size");
            let want = fs::read(&host).unwrap();
            let got = fs.read_file(rel, 1 << 30).unwrap();
            assert!(got == want, "{rel}: contents differ");
            // In pieces that straddle extents and compressed chunks.
            let mut off = 0u64;
            let mut piece = vec![0u8; 12_345];
            let mut again = Vec::new();
            loop {
                let n = fs.read_at(rel, off, &mut piece).unwrap();
                if n == 0 {
                    break;
                }
                again.extend_from_slice(&piece[..n]);
                off += n as u64;
            }
            assert!(again == want, "{rel}: piecewise contents differ");
        } else if ft.is_dir() {
            let mut want: Vec<String> = fs::read_dir(&host)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            let mut got: Vec<String> = fs
                .read_dir(rel)
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "{rel}: entries");
        }
    }
}

#[test]
fn contents_match_the_source_tree_for_every_compression_and_profile() {
    if !have("mkfs.btrfs") {
        return;
    }
    let base = scratch("contents");
    let src = base.join("src");
    populate(&src);
    for (name, args) in [
        ("plain", &[][..]),
        ("zstd", &["--compress", "zstd"][..]),
        ("zstd1", &["--compress", "zstd:1"][..]),
        ("zlib", &["--compress", "zlib"][..]),
        ("lzo", &["--compress", "lzo"][..]),
        ("dup", &["-m", "dup", "-d", "dup", "--compress", "zstd"][..]),
        ("single", &["-m", "single", "-d", "single"][..]),
        (
            "nodesize4k",
            &["--nodesize", "4096", "--compress", "lzo"][..],
        ),
    ] {
        let img = base.join(format!("{name}.img"));
        mkfs(&img, &src, args);
        let fs = Btrfs::open(open_dev(&img)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(fs.default_subvolume().unwrap(), 5);
        let top = fs.default_fs().unwrap();
        compare(&top, &src);
        println!("{name}: ok");
    }
    let _ = fs::remove_dir_all(&base);
}

/// Writes `data` at `rel` under `root`, creating directories.
fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// Fixed identities of the Fedora-like disk (also in the recorded virt-inspector output).
const FEDORA_BTRFS_UUID: &str = "f3d0a000-0000-4000-8000-00000000b7f5";
const FEDORA_BOOT_UUID: &str = "f3d0a000-0000-4000-8000-0000000000b0";
const FEDORA_ESP_ID: &str = "ABCD1234";

const FEDORA_OS_RELEASE: &str = r#"NAME="Fedora Linux"
VERSION="41 (Cloud Edition)"
ID=fedora
VERSION_ID=41
PLATFORM_ID="platform:f41"
PRETTY_NAME="Fedora Linux 41 (Cloud Edition)"
CPE_NAME="cpe:/o:fedoraproject:fedora:41"
VARIANT="Cloud Edition"
VARIANT_ID=cloud
"#;

/// A partitioned disk: GPT with these (MiB, type GUID, image file) partitions from 1 MiB.
fn gpt_disk(path: &Path, parts: &[(u64, &str, &Path)]) {
    let total: u64 = parts.iter().map(|p| p.0).sum::<u64>() + 2;
    fs::File::create(path)
        .unwrap()
        .set_len(total << 20)
        .unwrap();
    let mut script = String::from("label: gpt\n");
    let mut at = 1u64;
    for (mib, ty, _) in parts {
        script.push_str(&format!(
            "start={}, size={}, type={ty}\n",
            at << 11,
            mib << 11
        ));
        at += mib;
    }
    let mut child = Command::new("sfdisk")
        .args(["--no-reread", "--no-tell-kernel", "-q"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let disk = fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut at = 1u64;
    for (mib, _, img) in parts {
        let data = fs::read(img).unwrap();
        for (i, chunk) in data.chunks(1 << 16).enumerate() {
            if chunk.iter().any(|&b| b != 0) {
                disk.write_all_at(chunk, (at << 20) + (i as u64) * (1 << 16))
                    .unwrap();
            }
        }
        at += mib;
    }
}

const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";

fn have_all(tools: &[&str]) -> bool {
    tools.iter().all(|t| {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{t} is missing"
            );
            println!("SKIPPED: {t} is not installed");
        }
        ok
    })
}

/// The Fedora Cloud layout: GPT, EFI vfat, ext4 /boot, btrfs with subvolumes `root`,
/// `home` and `var` compressed with zstd:1, fstab naming them by `subvol=`.
fn fedora_disk(dir: &Path) -> PathBuf {
    let t = dir.join("fedora-tree");
    let r = "root";
    write(
        &t,
        &format!("{r}/etc/os-release"),
        FEDORA_OS_RELEASE.as_bytes(),
    );
    write(
        &t,
        &format!("{r}/usr/lib/os-release"),
        FEDORA_OS_RELEASE.as_bytes(),
    );
    write(
        &t,
        &format!("{r}/etc/fedora-release"),
        b"Fedora release 41 (Forty One)\n",
    );
    symlink("fedora-release", t.join("root/etc/redhat-release")).unwrap();
    symlink("fedora-release", t.join("root/etc/system-release")).unwrap();
    write(&t, &format!("{r}/etc/hostname"), b"fedora-test\n");
    let fstab = format!(
        "UUID={FEDORA_BTRFS_UUID} / btrfs subvol=root,compress=zstd:1 0 0\n\
         UUID={FEDORA_BOOT_UUID} /boot ext4 defaults 1 2\n\
         UUID=ABCD-1234 /boot/efi vfat umask=0077,shortname=winnt 0 2\n\
         UUID={FEDORA_BTRFS_UUID} /home btrfs subvol=home,compress=zstd:1 0 0\n\
         UUID={FEDORA_BTRFS_UUID} /var btrfs subvol=var,compress=zstd:1 0 0\n"
    );
    write(&t, &format!("{r}/etc/fstab"), fstab.as_bytes());
    write(
        &t,
        &format!("{r}/usr/bin/bash"),
        &fs::read("/bin/true").unwrap(),
    );
    symlink("usr/bin", t.join("root/bin")).unwrap();
    write(&t, &format!("{r}/etc/numbers"), &text(20_000, 9));
    for d in ["boot/efi", "home", "var", "proc", "sys", "dev", "tmp"] {
        fs::create_dir_all(t.join(r).join(d)).unwrap();
    }
    write(&t, "home/alice/note", b"hi\n");
    write(&t, "var/log/messages", &text(5000, 10));
    let esp = dir.join("esp.img");
    fs::File::create(&esp).unwrap().set_len(32 << 20).unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-F", "16", "-i", FEDORA_ESP_ID, "-n", "EFI"])
        .arg(&esp));
    let bootdir = dir.join("boot-tree");
    write(&bootdir, "vmlinuz-6.11", b"kernel\n");
    let boot = dir.join("boot.img");
    fs::File::create(&boot).unwrap().set_len(32 << 20).unwrap();
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-U", FEDORA_BOOT_UUID, "-L", "boot", "-d"])
        .arg(&bootdir)
        .arg(&boot));
    let btr = dir.join("btrfs.img");
    mkfs(
        &btr,
        &t,
        &[
            "-U",
            FEDORA_BTRFS_UUID,
            "-L",
            "fedora",
            "--subvol",
            "rw:root",
            "--subvol",
            "rw:home",
            "--subvol",
            "rw:var",
            "--compress",
            "zstd:1",
        ],
    );
    let disk = dir.join("fedora.img");
    gpt_disk(
        &disk,
        &[(32, ESP, &esp), (32, LINUX, &boot), (160, LINUX, &btr)],
    );
    disk
}

/// One operating system as libguestfs inspects it: root, (device, mountpoint)s, the
/// filesystems' devices, and (distro, product name, hostname).
type OsSummary = (
    String,
    Vec<(String, String)>,
    Vec<String>,
    [Option<String>; 3],
);

/// The operating systems in a recorded libguestfs answer (`tests/data/btrfs/<name>.txt`,
/// made from a guestfish session's `inspect-os`, `inspect-get-mountpoints`,
/// `inspect-get-filesystems`, `inspect-get-distro`, `-product-name` and `-hostname`, the
/// calls virt-inspector makes): lines `root R`, then `mountpoint DEV PATH`, `filesystem DEV`,
/// `distro D`, `product P`, `hostname H` for it.
fn parse_recorded(text: &str) -> Vec<OsSummary> {
    let mut out: Vec<OsSummary> = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (what, rest) = line.split_once(' ').unwrap();
        if what == "root" {
            out.push((rest.to_string(), Vec::new(), Vec::new(), [None, None, None]));
            continue;
        }
        let os = out.last_mut().unwrap();
        match what {
            "mountpoint" => {
                let (dev, path) = rest.split_once(' ').unwrap();
                os.1.push((dev.to_string(), path.to_string()));
            }
            "filesystem" => os.2.push(rest.to_string()),
            "distro" => os.3[0] = Some(rest.to_string()),
            "product" => os.3[1] = Some(rest.to_string()),
            "hostname" => os.3[2] = Some(rest.to_string()),
            _ => panic!("{line}"),
        }
    }
    for os in &mut out {
        os.1.sort();
        os.2.sort();
    }
    out
}

/// Scans `disk` and inspects it; compares roots, mountpoints, filesystems, distribution,
/// product name and host name with libguestfs's answer recorded in
/// `tests/data/btrfs/<name>.txt`.
fn inspect_like_virt_inspector(disk: &Path, name: &str) -> DiskSet {
    // To record: keep the disk and run guestfish on it (see the data file's header).
    if let Ok(keep) = std::env::var("VMCH_KEEP_DIR") {
        fs::copy(disk, Path::new(&keep).join(format!("{name}.img"))).unwrap();
    }
    let set = DiskSet::scan(&[open_dev(disk)]);
    let oses = vmchannel_inspect::inspect::inspect(&set.volumes, false);
    let got: Vec<OsSummary> = oses
        .iter()
        .map(|o| {
            println!(
                "{name}: root {} distro {:?} product {:?} version {}.{} hostname {:?} arch {:?} osinfo {:?} format {:?} management {:?}",
                o.root, o.distro, o.product_name, o.major_version, o.minor_version, o.hostname, o.arch, o.osinfo, o.package_format, o.package_management
            );
            let mut mps = o.mountpoints.clone();
            mps.sort();
            let mut fss: Vec<String> = o.filesystems.iter().map(|f| f.device.clone()).collect();
            fss.sort();
            (o.root.clone(), mps, fss, [o.distro.clone(), o.product_name.clone(), o.hostname.clone()])
        })
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/btrfs/{name}.txt"));
    let recorded = parse_recorded(&fs::read_to_string(&path).unwrap());
    // libguestfs 1.48 also reports a btrfs snapshot of a root as a root of its own; later
    // libguestfs drops one that looks like the root on its device's default subvolume (same
    // distribution and product), and so does this reader.
    let is_dropped_snapshot = |w: &OsSummary| {
        recorded
            .iter()
            .any(|o| w.0.starts_with(&format!("btrfsvol:{}/", o.0)) && o.3[..2] == w.3[..2])
    };
    let want: Vec<OsSummary> = recorded
        .iter()
        .filter(|w| {
            let drop = is_dropped_snapshot(w);
            if drop {
                println!(
                    "{name}: libguestfs 1.48's snapshot root {} not expected",
                    w.0
                );
            }
            !drop
        })
        .cloned()
        .collect();
    assert_eq!(
        got, want,
        "{name}: ours (left) and libguestfs's (right); warnings {:?}",
        set.warnings
    );
    // Every filesystem named has the type libguestfs lists for it.
    let listed = recorded_list(name);
    for o in &oses {
        for f in &o.filesystems {
            let v = set.volume(&f.device).unwrap();
            let t = listed
                .iter()
                .find(|(d, _)| *d == v.info.device)
                .map(|(_, t)| t.as_str());
            assert_eq!(Some(f.fstype.as_str()), t, "{name}: {}", f.device);
        }
    }
    set
}

#[test]
fn a_fedora_like_disk_inspects_as_virt_inspector_sees_it() {
    if !have_all(&["mkfs.btrfs", "mkfs.vfat", "mkfs.ext4", "sfdisk"]) {
        return;
    }
    let dir = scratch("fedora");
    let disk = fedora_disk(&dir);
    let set = inspect_like_virt_inspector(&disk, "fedora");
    // The volumes, as `guestfish list-filesystems` lists them.
    assert_eq!(listed(&set), recorded_list("fedora"));
    // The subvolume volumes read, compressed files included.
    let root = set
        .volume("btrfsvol:/dev/sda3/root")
        .unwrap()
        .fs
        .clone()
        .unwrap();
    assert_eq!(
        root.read_file("/etc/numbers", 1 << 20).unwrap(),
        text(20_000, 9)
    );
    let var = set
        .volume("btrfsvol:/dev/sda3/var")
        .unwrap()
        .fs
        .clone()
        .unwrap();
    assert_eq!(
        var.read_file("/log/messages", 1 << 20).unwrap(),
        text(5000, 10)
    );
    let top = set.volume("/dev/sda3").unwrap().fs.clone().unwrap();
    let names: Vec<_> = top
        .read_dir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["root", "var", "home"]);
    let _ = fs::remove_dir_all(&dir);
}

/// The volumes as `guestfish list-filesystems` lists them, from its recorded output.
fn recorded_list(name: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/btrfs/{name}-list-filesystems.txt"));
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(d, t)| (d.to_string(), t.to_string()))
        .collect()
}

fn listed(set: &DiskSet) -> Vec<(String, String)> {
    set.volumes
        .iter()
        .map(|v| (v.info.device.clone(), v.info.fstype.clone()))
        .collect()
}

const SUSE_UUID: &str = "5e5e0000-0000-4000-8000-00000000b7f5";
const SUSE_OS_RELEASE: &str = r#"NAME="openSUSE Leap"
VERSION="15.6"
ID="opensuse-leap"
ID_LIKE="suse opensuse"
VERSION_ID="15.6"
PRETTY_NAME="openSUSE Leap 15.6"
CPE_NAME="cpe:/o:opensuse:leap:15.6"
"#;

/// openSUSE with snapper: subvolume `@` holding `@/.snapshots`, `@/home` and `@/var`; the
/// root is snapshot 1, `@/.snapshots/1/snapshot`, the default subvolume, so the device
/// itself is the root; snapshot 2 (read-only) is an older copy of it.
fn opensuse_disk(dir: &Path) -> PathBuf {
    let t = dir.join("suse-tree");
    let fstab = format!(
        "UUID={SUSE_UUID} / btrfs defaults 0 0\n\
         UUID={SUSE_UUID} /var btrfs subvol=/@/var 0 0\n\
         UUID={SUSE_UUID} /home btrfs subvol=/@/home 0 0\n\
         UUID={SUSE_UUID} /.snapshots btrfs subvol=/@/.snapshots 0 0\n\
         UUID=5E5E-0001 /boot/efi vfat utf8 0 2\n"
    );
    for snap in ["1", "2"] {
        let r = format!("@/.snapshots/{snap}/snapshot");
        write(
            &t,
            &format!("{r}/etc/os-release"),
            SUSE_OS_RELEASE.as_bytes(),
        );
        write(&t, &format!("{r}/etc/fstab"), fstab.as_bytes());
        write(&t, &format!("{r}/etc/HOSTNAME"), b"suse-test\n");
        write(
            &t,
            &format!("{r}/usr/bin/bash"),
            &fs::read("/bin/true").unwrap(),
        );
        symlink("usr/bin", t.join(&r).join("bin")).unwrap();
        for d in ["boot/efi", "home", "var", ".snapshots", "proc", "sys"] {
            fs::create_dir_all(t.join(&r).join(d)).unwrap();
        }
        write(
            &t,
            &format!("@/.snapshots/{snap}/info.xml"),
            b"<snapshot/>\n",
        );
    }
    write(&t, "@/home/bob/.profile", b"# bob\n");
    write(&t, "@/var/log/zypper.log", &text(2000, 11));
    let esp = dir.join("esp.img");
    fs::File::create(&esp).unwrap().set_len(32 << 20).unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-F", "16", "-i", "5E5E0001", "-n", "EFI"])
        .arg(&esp));
    let btr = dir.join("btrfs.img");
    mkfs(
        &btr,
        &t,
        &[
            "-U",
            SUSE_UUID,
            "--subvol",
            "rw:@",
            "--subvol",
            "rw:@/.snapshots",
            "--subvol",
            "default:@/.snapshots/1/snapshot",
            "--subvol",
            "ro:@/.snapshots/2/snapshot",
            "--subvol",
            "rw:@/home",
            "--subvol",
            "rw:@/var",
            "--compress",
            "zstd",
        ],
    );
    let disk = dir.join("opensuse.img");
    gpt_disk(&disk, &[(32, ESP, &esp), (160, LINUX, &btr)]);
    disk
}

#[test]
fn an_opensuse_snapper_disk_roots_on_the_default_subvolume() {
    if !have_all(&["mkfs.btrfs", "mkfs.vfat", "sfdisk"]) {
        return;
    }
    let dir = scratch("opensuse");
    let disk = opensuse_disk(&dir);
    let set = inspect_like_virt_inspector(&disk, "opensuse");
    assert_eq!(listed(&set), recorded_list("opensuse"));
    // The device is the default subvolume, snapshot 1.
    let v = set.volume("/dev/sda2").unwrap();
    let s = v.subvolume.as_ref().unwrap();
    assert_eq!(s.path, "@/.snapshots/1/snapshot");
    let root = v.fs.clone().unwrap();
    assert_eq!(
        root.read_file("/etc/HOSTNAME", 100).unwrap(),
        b"suse-test\n"
    );
    let _ = fs::remove_dir_all(&dir);
}

const ARCH_UUID: &str = "a4c40000-0000-4000-8000-00000000b7f5";

/// Arch (arch-boxes): GPT with a BIOS boot partition, EFI vfat at /efi, and btrfs holding
/// the root at its top level, compressed with zstd.
fn arch_disk(dir: &Path) -> PathBuf {
    let t = dir.join("arch-tree");
    write(
        &t,
        "etc/os-release",
        b"NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n",
    );
    write(
        &t,
        "etc/fstab",
        format!(
            "# <file system> <dir> <type> <options> <dump> <pass>\n\
             UUID={ARCH_UUID} / btrfs rw,relatime,compress=zstd:1 0 0\n\
             UUID=A4C4-0001 /efi vfat rw,relatime 0 2\n"
        )
        .as_bytes(),
    );
    write(&t, "etc/hostname", b"archlinux\n");
    write(&t, "usr/bin/bash", &fs::read("/bin/true").unwrap());
    symlink("usr/bin", t.join("bin")).unwrap();
    write(&t, "var/lib/pacman/local/ALPM_DB_VERSION", b"9\n");
    for d in ["efi", "home", "proc", "sys"] {
        fs::create_dir_all(t.join(d)).unwrap();
    }
    let esp = dir.join("esp.img");
    fs::File::create(&esp).unwrap().set_len(32 << 20).unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-F", "16", "-i", "A4C40001", "-n", "EFI"])
        .arg(&esp));
    let bios = dir.join("bios.img");
    fs::File::create(&bios).unwrap().set_len(1 << 20).unwrap();
    let btr = dir.join("btrfs.img");
    mkfs(&btr, &t, &["-U", ARCH_UUID, "--compress", "zstd:1"]);
    let disk = dir.join("arch.img");
    gpt_disk(
        &disk,
        &[(1, BIOS_BOOT, &bios), (32, ESP, &esp), (160, LINUX, &btr)],
    );
    disk
}

#[test]
fn an_arch_disk_roots_on_the_top_level() {
    if !have_all(&["mkfs.btrfs", "mkfs.vfat", "sfdisk"]) {
        return;
    }
    let dir = scratch("arch");
    let disk = arch_disk(&dir);
    let set = inspect_like_virt_inspector(&disk, "arch");
    assert_eq!(listed(&set), recorded_list("arch"));
    let _ = fs::remove_dir_all(&dir);
}

/// Everything a stat/readdir/readlink/statvfs of the tree answers, one line each, as text:
/// `P path mode uid gid size mtime [target]`, `D path name...` (in listing order) and
/// `V bsize blocks bfree bavail files ffree`.
fn describe_mount(root: &Path) -> Vec<String> {
    fn go(root: &Path, rel: &str, out: &mut Vec<String>) {
        let p = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel[1..])
        };
        let md = fs::symlink_metadata(&p).unwrap();
        let target = fs::read_link(&p)
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shown = if rel.is_empty() { "/" } else { rel };
        let size = if md.is_dir() { 0 } else { md.len() };
        out.push(
            format!(
                "P {shown} {:o} {} {} {size} {} {target}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.mtime()
            )
            .trim_end()
            .to_string(),
        );
        if md.is_dir() {
            let names: Vec<String> = fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            out.push(
                format!("D {shown} {}", names.join(" "))
                    .trim_end()
                    .to_string(),
            );
            for n in names {
                go(root, &format!("{rel}/{n}"), out);
            }
        }
    }
    let mut out = Vec::new();
    go(root, "", &mut out);
    let o = Command::new("stat")
        .args(["-f", "-c", "%S %b %f %a %c %d"])
        .arg(root)
        .output()
        .unwrap();
    out.push(format!("V {}", String::from_utf8_lossy(&o.stdout).trim()));
    out
}

/// The same description from our reader.
fn describe_ours(fs: &dyn FileSystem) -> Vec<String> {
    fn go(fs: &dyn FileSystem, path: &str, out: &mut Vec<String>) {
        let st = fs.lstat(path).unwrap();
        let target = st.link_target.clone().unwrap_or_default();
        let size = if st.kind == FileKind::Directory {
            0
        } else {
            st.size
        };
        out.push(
            format!(
                "P {path} {:o} {} {} {size} {} {target}",
                st.mode, st.uid, st.gid, st.mtime
            )
            .trim_end()
            .to_string(),
        );
        if st.kind == FileKind::Directory {
            let names: Vec<String> = fs
                .read_dir(path)
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            out.push(
                format!("D {path} {}", names.join(" "))
                    .trim_end()
                    .to_string(),
            );
            for n in names {
                let child = if path == "/" {
                    format!("/{n}")
                } else {
                    format!("{path}/{n}")
                };
                go(fs, &child, out);
            }
        }
    }
    let mut out = Vec::new();
    go(fs, "/", &mut out);
    let u = fs.usage().unwrap();
    out.push(format!(
        "V {} {} {} {} {} {}",
        u.block_size, u.blocks, u.blocks_free, u.blocks_available, u.inodes, u.inodes_free
    ));
    out
}

/// Whether this process can loop-mount (root, with `mount`); under `CI=true` it must.
fn can_mount() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "not root, cannot loop-mount (required under CI=true)"
        );
        println!("SKIPPED (live part): not root, cannot loop-mount");
    }
    root
}

/// The image the mount comparison uses: `populate`'s tree with fixed times, zstd, and a
/// subvolume.
fn mount_image(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    populate(&src);
    fs::create_dir_all(src.join("sub/inner")).unwrap();
    fs::write(src.join("sub/inner/file"), text(50, 12)).unwrap();
    run(Command::new("sh").arg("-c").arg(format!(
        "find '{}' -exec touch -h -d @1700000000 {{}} +",
        src.display()
    )));
    let img = dir.join("mount.img");
    mkfs(
        &img,
        &src,
        &[
            "--compress",
            "zstd",
            "--subvol",
            "rw:sub",
            "-U",
            "0b7f5000-0000-4000-8000-00000000cafe",
        ],
    );
    img
}

/// stat, readdir (order included), readlink and statvfs against a read-only loop mount of
/// the same image (live when root), and against the answers recorded from one
/// (`tests/data/btrfs/loop-mount.txt`, listing order aside since it follows the order
/// mkfs.btrfs met the source files in).
#[test]
fn stat_readdir_readlink_statvfs_match_a_linux_loop_mount() {
    if !have("mkfs.btrfs") {
        return;
    }
    let dir = scratch("mount");
    let img = mount_image(&dir);
    let b = Btrfs::open(open_dev(&img)).unwrap();
    let ours = describe_ours(&b.default_fs().unwrap());
    // The subvolume reads as itself too.
    let sub = b.subvolumes().unwrap();
    assert_eq!(sub.len(), 1);
    assert_eq!(
        b.subvolume(sub[0].id)
            .unwrap()
            .read_file("/inner/file", 1 << 20)
            .unwrap(),
        text(50, 12)
    );
    let recorded_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/btrfs/loop-mount.txt");
    if can_mount() {
        let mnt = dir.join("mnt");
        fs::create_dir_all(&mnt).unwrap();
        run(Command::new("mount")
            .args(["-o", "ro,loop"])
            .arg(&img)
            .arg(&mnt));
        let live = describe_mount(&mnt);
        run(Command::new("umount").arg(&mnt));
        if std::env::var_os("VMCH_RECORD").is_some() {
            fs::write(&recorded_path, live.join("\n") + "\n").unwrap();
        }
        compare_descriptions(&ours, &live, true);
    }
    let recorded: Vec<String> = fs::read_to_string(&recorded_path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    compare_descriptions(&ours, &recorded, false);
    let _ = fs::remove_dir_all(&dir);
}

/// Compares two descriptions: paths and their stat lines exactly, listings in order when
/// `ordered` (else as sets), statvfs's block size, total and inode counts exactly, free and
/// available within 5% of the total (Linux sizes its global reserve in memory, and on a
/// fresh mkfs image left the free space inside the data chunk out of `f_bavail`).
fn compare_descriptions(ours: &[String], theirs: &[String], ordered: bool) {
    let norm = |v: &[String]| -> (BTreeSet<String>, BTreeMap<String, Vec<String>>, Vec<u64>) {
        let mut p = BTreeSet::new();
        let mut d = BTreeMap::new();
        let mut s = Vec::new();
        for l in v {
            if let Some(r) = l.strip_prefix("P ") {
                p.insert(r.to_string());
            } else if let Some(r) = l.strip_prefix("D ") {
                let mut it = r.split(' ');
                let path = it.next().unwrap().to_string();
                let mut names: Vec<String> = it.map(String::from).collect();
                if !ordered {
                    names.sort();
                }
                d.insert(path, names);
            } else if let Some(r) = l.strip_prefix("V ") {
                s = r.split(' ').map(|x| x.parse().unwrap()).collect();
            }
        }
        (p, d, s)
    };
    let (p1, d1, s1) = norm(ours);
    let (p2, d2, s2) = norm(theirs);
    let only_ours: Vec<_> = p1.difference(&p2).collect();
    let only_theirs: Vec<_> = p2.difference(&p1).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "stat lines differ:\nours only {only_ours:#?}\nLinux only {only_theirs:#?}"
    );
    assert_eq!(d1, d2, "listings differ");
    assert_eq!(
        s1[..2],
        s2[..2],
        "statvfs block size and blocks: ours {s1:?}, Linux {s2:?}"
    );
    let near = |a: u64, b: u64| a.abs_diff(b) <= s2[1] / 20;
    assert!(
        near(s1[2], s2[2]) && near(s1[3], s2[3]),
        "statvfs free/available: ours {s1:?}, Linux {s2:?}"
    );
    assert_eq!(
        s1[4..],
        s2[4..],
        "statvfs inode counts: ours {s1:?}, Linux {s2:?}"
    );
}

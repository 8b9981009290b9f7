//! vfat volumes made by the real tools: `mkfs.vfat` (dosfstools) for FAT12, FAT16 and
//! FAT32, filled with `mcopy -s -m`, `mmd`, `mdel` and `mattrib` (mtools), read back
//! through `VfatFs` and compared with what was put in; free space with mtools' and
//! dosfstools' figures, label and UUID with blkid's (recorded below), and the same volume as
//! an EFI system partition on a GPT disk through `DiskSet::scan`.
//!
//! Needs dosfstools, mtools and util-linux (`sfdisk`); a missing tool prints `SKIPPED` and
//! passes, unless `CI=true`.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;

use support::{Tmp, content};

use vmchannel_inspect::appliance::disks::DiskSet;
use vmchannel_inspect::disk::BlockDevice;
use vmchannel_inspect::fs::FileSystem;
use vmchannel_inspect::fs::detect::detect;
use vmchannel_inspect::fs::vfat::VfatFs;
use vmchannel_inspect::fs::vfat::bpb::FatType;
use vmchannel_inspect::inspect::{inspect, os_tree};
use vmchannel_proto::FileKind;

/// Every file's mtime (even, as FAT keeps two-second steps): 2023-11-14 22:13:20 UTC.
const MTIME: i64 = 1_700_000_000;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tools_or_skip() -> bool {
    let missing: Vec<_> = [
        "mkfs.vfat",
        "mcopy",
        "mmd",
        "mdel",
        "mattrib",
        "mdir",
        "mshowfat",
        "fsck.fat",
        "sfdisk",
    ]
    .into_iter()
    .filter(|t| !have(t))
    .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("missing tools: {missing:?}");
    }
    println!("SKIPPED: missing {missing:?} (dosfstools, mtools, util-linux)");
    false
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("MTOOLSRC", "/dev/null")
        .env("TZ", "UTC")
        .output()
        .expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The tree put on every volume, as path -> contents (None: a directory).
fn tree(cluster: usize) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut t = BTreeMap::new();
    let mut file = |p: &str, data: Vec<u8>| {
        t.insert(p.to_string(), Some(data));
    };
    file("readme.txt", b"lower case 8.3: NT case bits\n".to_vec());
    file("README2.TXT", b"upper case 8.3\n".to_vec());
    file("Readme3.txt", b"mixed case: a long name\n".to_vec());
    file("read.TXT", b"lower base, upper extension\n".to_vec());
    file("Long File Name.text", content(3000, 1));
    file("Ünïcödé ☃ name.txt", b"latin-1 and BMP\n".to_vec());
    // (No names beyond the BMP: mtools 4.0 writes them as one truncated UTF-16 unit, not a
    // surrogate pair; the unit tests have pairs.)
    file("empty", Vec::new());
    file("one-cluster.bin", content(cluster, 2));
    file("one-cluster-plus-one.bin", content(cluster + 1, 3));
    file("EFI/BOOT/BOOTX64.EFI", content(5 * cluster + 17, 4));
    file(
        "EFI/debian/grub.cfg",
        b"search.fs_uuid 1234 root\n".to_vec(),
    );
    file("a/b/c/d/deep.txt", b"deep\n".to_vec());
    for i in 0..40 {
        file(
            &format!("many/a file with a rather long name number {i:02}.dat"),
            content(i as usize * 7, 100 + i),
        );
    }
    for d in [
        "EFI",
        "EFI/BOOT",
        "EFI/debian",
        "a",
        "a/b",
        "a/b/c",
        "a/b/c/d",
        "many",
        "emptydir",
    ] {
        t.insert(d.to_string(), None);
    }
    t
}

struct Volume {
    image: PathBuf,
    label: &'static str,
    serial: &'static str,
    cluster: usize,
    tree: BTreeMap<String, Option<Vec<u8>>>,
    /// The fragmented file's contents.
    frag: Vec<u8>,
}

/// Makes a volume of `size_mib` MiB with `mkfs.vfat -F fat -s spc` and fills it.
fn make(
    work: &Tmp,
    fat: u32,
    size_mib: u64,
    spc: usize,
    label: &'static str,
    serial: &'static str,
) -> Volume {
    let image = work.0.join(format!("fat{fat}.img"));
    let f = fs::File::create(&image).unwrap();
    f.set_len(size_mib << 20).unwrap();
    drop(f);
    run(Command::new("mkfs.vfat")
        .args([
            "-F",
            &fat.to_string(),
            "-s",
            &spc.to_string(),
            "-n",
            label,
            "-i",
            serial,
        ])
        .arg(&image));
    let cluster = spc * 512;
    let tree = tree(cluster);
    let src = work.0.join(format!("src{fat}"));
    for (p, data) in &tree {
        let path = src.join(p);
        match data {
            None => fs::create_dir_all(&path).unwrap(),
            Some(d) => {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, d).unwrap();
            }
        }
    }
    run(Command::new("find").arg(&src).args([
        "-exec",
        "touch",
        "-h",
        "-d",
        &format!("@{MTIME}"),
        "{}",
        "+",
    ]));
    let mut cp = Command::new("mcopy");
    cp.args(["-s", "-m", "-i"]).arg(&image);
    for e in fs::read_dir(&src).unwrap() {
        cp.arg(e.unwrap().path());
    }
    run(cp.arg("::/"));
    run(Command::new("mattrib")
        .arg("-i")
        .arg(&image)
        .args(["+r", "::/README2.TXT"]));
    // Fragment: eight 3-cluster files, every other one deleted, then a 20-cluster file.
    for i in 0..8 {
        let p = work.0.join(format!("f{i}"));
        fs::write(&p, content(3 * cluster, 200 + i)).unwrap();
        run(Command::new("mcopy")
            .arg("-i")
            .arg(&image)
            .arg(&p)
            .arg(format!("::/frag{i}")));
    }
    for i in (0..8).step_by(2) {
        run(Command::new("mdel")
            .arg("-i")
            .arg(&image)
            .arg(format!("::/frag{i}")));
    }
    if fat == 32 {
        // mtools allocates from FSInfo's next-free hint on FAT32: point it at the start so
        // that the holes are reused.
        let mut d = fs::read(&image).unwrap();
        let info = u16::from_le_bytes([d[48], d[49]]) as usize * 512;
        d[info + 492..info + 496].copy_from_slice(&2u32.to_le_bytes());
        fs::write(&image, d).unwrap();
    }
    let frag = content(20 * cluster - 5, 300);
    let p = work.0.join("big");
    fs::write(&p, &frag).unwrap();
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&image)
        .arg(&p)
        .arg("::/fragmented.bin"));
    let chain = run(Command::new("mshowfat")
        .arg("-i")
        .arg(&image)
        .arg("::/fragmented.bin"));
    assert!(chain.matches('<').count() > 1, "not fragmented: {chain}");
    Volume {
        image,
        label,
        serial,
        cluster,
        tree,
        frag,
    }
}

fn open(v: &Volume) -> VfatFs {
    let data = fs::read(&v.image).unwrap();
    VfatFs::open(Rc::new(data)).expect("opens")
}

/// Compares every file and directory of `v`'s tree with what `fs` reads.
fn compare(fs: &dyn FileSystem, v: &Volume) {
    let mut dirs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    dirs.insert(String::new(), Vec::new());
    for p in v.tree.keys() {
        let (parent, name) = p.rsplit_once('/').unwrap_or(("", p));
        dirs.entry(parent.to_string())
            .or_default()
            .push(name.to_string());
        if v.tree[p].is_none() {
            dirs.entry(p.clone()).or_default();
        }
    }
    for i in (1..8).step_by(2) {
        dirs.get_mut("").unwrap().push(format!("frag{i}"));
    }
    dirs.get_mut("").unwrap().push("fragmented.bin".to_string());
    for (dir, want) in &dirs {
        let path = format!("/{dir}");
        let mut got: Vec<String> = fs
            .read_dir(&path)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        got.sort();
        let mut want = want.clone();
        want.sort();
        assert_eq!(got, want, "listing of {path}");
    }
    for (p, data) in &v.tree {
        let path = format!("/{p}");
        let st = fs.stat(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(st.mtime, MTIME, "{path}");
        assert_eq!((st.uid, st.gid), (0, 0));
        match data {
            None => {
                assert_eq!(
                    (st.kind, st.mode),
                    (FileKind::Directory, 0o040755),
                    "{path}"
                );
                assert!(
                    st.size >= v.cluster as u64 && st.size % v.cluster as u64 == 0,
                    "{path}"
                );
            }
            Some(d) => {
                let mode = if p == "README2.TXT" {
                    0o100555
                } else {
                    0o100755
                };
                assert_eq!(
                    (st.kind, st.mode, st.size),
                    (FileKind::File, mode, d.len() as u64),
                    "{path}"
                );
                assert_eq!(&fs.read_file(&path, 1 << 24).unwrap(), d, "{path}");
            }
        }
    }
    // The directory of 40 long names spans clusters.
    assert!(fs.stat("/many").unwrap().size > v.cluster as u64);
    assert_eq!(fs.read_file("/fragmented.bin", 1 << 24).unwrap(), v.frag);
    // Read in pieces that do not line up with clusters.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 777];
    loop {
        let n = fs
            .read_at("/fragmented.bin", got.len() as u64, &mut buf)
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, v.frag);
    // Lookups fold ASCII case and match short names; trailing dots are ignored.
    for (alias, real) in [
        ("/README.TXT", "readme.txt"),
        ("/readme2.txt", "README2.TXT"),
        ("/LONG FILE NAME.TEXT", "Long File Name.text"),
        ("/longfi~1.tex", "Long File Name.text"),
        ("/efi/boot/bootx64.efi", "EFI/BOOT/BOOTX64.EFI"),
        ("/readme.txt.", "readme.txt"),
    ] {
        let want = v.tree[real].as_ref().unwrap();
        assert_eq!(&fs.read_file(alias, 1 << 24).unwrap(), want, "{alias}");
    }
    assert!(fs.stat("/ÜNÏCÖDÉ ☃ NAME.TXT").is_err(), "only ASCII folds");
}

/// Free space: mtools' "bytes free" and fsck.fat's cluster counts.
fn compare_usage(fs: &dyn FileSystem, v: &Volume) {
    let u = fs.usage().unwrap();
    assert_eq!(u.block_size, v.cluster as u64);
    assert_eq!((u.inodes, u.inodes_free), (0, 0));
    let mdir = run(Command::new("mdir").arg("-i").arg(&v.image).arg("::/"));
    let free_line = mdir.lines().find(|l| l.contains("bytes free")).unwrap();
    let free: u64 = free_line
        .split("bytes")
        .next()
        .unwrap()
        .replace([' ', '\u{a0}'], "")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(u.blocks_free * u.block_size, free, "{free_line}");
    assert_eq!(u.blocks_available, u.blocks_free);
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg(&v.image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "IMG: N files, USED/TOTAL clusters"
    let counts = text.lines().find(|l| l.contains(" clusters")).unwrap();
    let frac = counts
        .rsplit(", ")
        .next()
        .unwrap()
        .trim_end_matches(" clusters");
    let (used, total) = frac.split_once('/').unwrap();
    let (used, total): (u64, u64) = (used.parse().unwrap(), total.parse().unwrap());
    assert_eq!(u.blocks, total, "{counts}");
    assert_eq!(u.blocks - u.blocks_free, used, "{counts}");
}

fn check(
    fat: u32,
    size_mib: u64,
    spc: usize,
    label: &'static str,
    serial: &'static str,
    want: FatType,
) {
    if !tools_or_skip() {
        return;
    }
    let work = Tmp::new("vfat", &format!("fat{fat}"));
    let v = make(&work, fat, size_mib, spc, label, serial);
    let fs = open(&v);
    assert_eq!(fs.fat_type(), want);
    compare(&fs, &v);
    compare_usage(&fs, &v);
    // detect answers as blkid does (recorded: `blkid -p` gives LABEL=<label>,
    // UUID=<serial as XXXX-XXXX> for these volumes).
    let data: Rc<dyn BlockDevice> = Rc::new(fs::read(&v.image).unwrap());
    let d = detect(&*data).unwrap().unwrap();
    assert_eq!(d.fstype, "vfat");
    assert_eq!(d.label.as_deref(), Some(v.label));
    let uuid = format!("{}-{}", &v.serial[..4], &v.serial[4..]);
    assert_eq!(d.uuid.as_deref(), Some(uuid.as_str()));
    if have("blkid") {
        let out = run(Command::new("blkid")
            .args(["-p", "-o", "export"])
            .arg(&v.image));
        assert!(out.contains(&format!("LABEL={}\n", v.label)), "{out}");
        assert!(out.contains(&format!("UUID={uuid}\n")), "{out}");
    }
}

#[test]
fn fat12() {
    check(12, 4, 2, "FAT12VOL", "1234ABCD", FatType::Fat12);
}

#[test]
fn fat16() {
    check(16, 16, 1, "FAT16VOL", "CAFEF00D", FatType::Fat16);
}

#[test]
fn fat32() {
    check(32, 40, 1, "ESP", "DEADBEEF", FatType::Fat32);
}

#[test]
fn an_efi_system_partition_on_a_gpt_disk_is_a_readable_volume_inspection_mounts() {
    if !tools_or_skip() || !have("mkfs.ext4") {
        return;
    }
    let work = Tmp::new("vfat", "gpt");
    let v = make(&work, 32, 40, 1, "EFI", "0A0B0C0D");
    // A Debian root naming the ESP by UUID at /boot/efi, as Debian's installer writes it.
    let root = work.0.join("root");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("boot/efi")).unwrap();
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    fs::write(root.join("etc/debian_version"), "12.5\n").unwrap();
    fs::write(
        root.join("etc/fstab"),
        "UUID=11111111-2222-3333-4444-555555555555 / ext4 errors=remount-ro 0 1\n\
         UUID=0A0B-0C0D /boot/efi vfat umask=0077 0 1\n",
    )
    .unwrap();
    let root_img = work.0.join("root.img");
    run(Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-U",
            "11111111-2222-3333-4444-555555555555",
            "-d",
        ])
        .arg(&root)
        .arg(&root_img)
        .arg("8M"));
    let disk = work.0.join("disk.img");
    let f = fs::File::create(&disk).unwrap();
    f.set_len(52 << 20).unwrap();
    drop(f);
    let mut sf = Command::new("sfdisk");
    sf.args(["--no-reread", "--no-tell-kernel", "-q"])
        .arg(&disk);
    sf.stdin(std::process::Stdio::piped());
    let mut child = sf.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"label: gpt\n\
              start=2048, size=81920, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI System\"\n\
              start=83968, size=16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"root\"\n",
        )
        .unwrap();
    assert!(child.wait().unwrap().success());
    let mut data = fs::read(&disk).unwrap();
    let esp = fs::read(&v.image).unwrap();
    data[2048 * 512..2048 * 512 + esp.len()].copy_from_slice(&esp);
    let ext = fs::read(&root_img).unwrap();
    data[83968 * 512..83968 * 512 + ext.len()].copy_from_slice(&ext);
    let set = DiskSet::scan(&[Rc::new(data) as Rc<dyn BlockDevice>]);
    let vol = set.volume("/dev/sda1").expect("the ESP");
    assert_eq!(vol.info.fstype, "vfat");
    assert_eq!(vol.info.label.as_deref(), Some("EFI"));
    assert_eq!(vol.info.uuid.as_deref(), Some("0A0B-0C0D"));
    assert_eq!(vol.partlabel.as_deref(), Some("EFI System"));
    let fs = vol.fs.as_ref().expect("readable");
    compare(&**fs, &v);
    // Inspection mounts the ESP where fstab says, and reads through it.
    let oses = inspect(&set.volumes, false);
    assert_eq!(oses.len(), 1, "{oses:?}");
    let mounts: Vec<(&str, &str)> = oses[0]
        .mountpoints
        .iter()
        .map(|(d, m)| (d.as_str(), m.as_str()))
        .collect();
    assert_eq!(mounts, [("/dev/sda2", "/"), ("/dev/sda1", "/boot/efi")]);
    let tree = os_tree(&set.volumes, "/dev/sda2").unwrap();
    let want = v.tree["EFI/BOOT/BOOTX64.EFI"].as_ref().unwrap();
    assert_eq!(
        &tree
            .read_file("/boot/efi/EFI/BOOT/BOOTX64.EFI", 1 << 20)
            .unwrap(),
        want
    );
    assert_eq!(
        &tree
            .read_file("/boot/efi/efi/boot/bootx64.efi", 1 << 20)
            .unwrap(),
        want
    );
    let u = tree.usage_at("/boot/efi").unwrap();
    assert_eq!(u.block_size, 512);
}

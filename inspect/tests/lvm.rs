//! LVM2 volumes made by the real lvm2 tools on loop devices, read through the crate.
//!
//! There is no device-mapper here, so the tools run with `--driverloaded n` (metadata only,
//! no activation) and a device filter that shows them only this test's loop devices; the
//! test then writes filesystem images into each LV's extents itself, from what `lvs
//! --segments` and `pvs` report, and checks that the crate reads back exactly those bytes,
//! lists the LVs under libguestfs's names (recorded guestfish output in
//! `tests/data/lvm/`), and sees through them in inspection. Thin pools, thin LVs and
//! snapshots are written with `vgcfgrestore` from edited `vgcfgbackup` text (creating them
//! needs device-mapper).
//!
//! Needs root, loop devices, lvm2, e2fsprogs (mkfs.ext4, mkswap from util-linux) and
//! sfdisk. Without them the tests print `SKIPPED` and pass, unless `CI=true`.
//!
//! `VMCH_LVM_KEEP=DIR` keeps the images built there (to run guestfish on them).

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::Mutex;

mod support;

use support::lvm::Lvm;
use support::run;

use vmchannel_inspect::appliance::DiskSet;
use vmchannel_inspect::disk::lvm;
use vmchannel_inspect::disk::{BlockDevice, Slice};
use vmchannel_inspect::inspect::inspect;

/// The lvm2 tools and loop devices are shared by the whole machine: one test at a time.
static LOCK: Mutex<()> = Mutex::new(());

const MIB: u64 = 1 << 20;

fn have_tools() -> bool {
    let why = (|| {
        for tool in ["lvm", "losetup", "mkfs.ext4", "mkswap", "sfdisk"] {
            let ok = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                return Some(format!("{tool} not installed"));
            }
        }
        let out = Command::new("losetup").arg("-f").output();
        if !out.is_ok_and(|o| o.status.success()) {
            return Some(String::from("no free loop device (root needed)"));
        }
        None
    })();
    match why {
        None => true,
        Some(why) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("lvm tests need their tools under CI: {why}");
            }
            println!("SKIPPED: {why}");
            false
        }
    }
}

/// A scratch directory, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vmch-lvm-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(keep) = std::env::var("VMCH_LVM_KEEP") {
            for e in fs::read_dir(&self.0).unwrap().flatten() {
                if e.path().extension().is_some_and(|x| x == "img") {
                    let _ = fs::copy(e.path(), Path::new(&keep).join(e.file_name()));
                }
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Lvm {
    /// Writes `data` into LV `vg/lv` the way device-mapper maps it, from the tools'
    /// report of its segments; `data` must be the LV's size.
    fn fill(&self, vg: &str, lv: &str, data: &[u8]) {
        let ext: u64 = self.report("vgs", "vg_extent_size", &[vg])[0][0]
            .parse()
            .unwrap();
        let pe_start: Vec<(String, u64)> = self
            .report("pvs", "pv_name,pe_start", &[])
            .into_iter()
            .map(|r| (r[0].clone(), r[1].parse().unwrap()))
            .collect();
        let segs = self.report(
            "lvs",
            "seg_start_pe,seg_size_pe,stripes,stripe_size,seg_pe_ranges",
            &["-a", "--segments", &format!("{vg}/{lv}")],
        );
        let mut total = 0;
        for s in segs {
            let start = s[0].parse::<u64>().unwrap() * ext;
            let len = s[1].parse::<u64>().unwrap() * ext;
            let stripes: u64 = s[2].parse().unwrap();
            let chunk: u64 = if stripes == 1 {
                len
            } else {
                s[3].parse().unwrap()
            };
            // "/dev/loop0:0-1 /dev/loop1:0-1"
            let areas: Vec<(String, u64)> = s[4]
                .split([' ', ','])
                .filter(|a| !a.is_empty())
                .map(|a| {
                    let (dev, range) = a.rsplit_once(':').unwrap();
                    let first = range.split('-').next().unwrap().parse::<u64>().unwrap();
                    (dev.to_string(), first * ext)
                })
                .collect();
            assert_eq!(areas.len() as u64, stripes, "{s:?}");
            let mut off = 0;
            while off < len {
                let n = chunk.min(len - off);
                let chunk_no = off / chunk;
                let (dev, base) = &areas[(chunk_no % stripes) as usize];
                let pv_off = base + (chunk_no / stripes) * chunk;
                let pe = pe_start.iter().find(|(d, _)| d == dev).unwrap().1;
                let (_, img, win) = self.loops.iter().find(|(d, _, _)| d == dev).unwrap();
                let f = fs::OpenOptions::new().write(true).open(img).unwrap();
                let from = (start + off) as usize;
                f.write_all_at(&data[from..from + n as usize], win + pe + pv_off)
                    .unwrap();
                off += n;
            }
            total += len;
        }
        assert_eq!(total, data.len() as u64, "{vg}/{lv} size");
    }

    /// The VG's metadata as `vgcfgbackup` writes it.
    fn backup(&self, vg: &str, dir: &Path) -> String {
        let f = dir.join(format!("{vg}.vg"));
        self.lvm("vgcfgbackup", &["-f", f.to_str().unwrap(), vg]);
        fs::read_to_string(f).unwrap()
    }

    /// Replaces the VG's metadata with `text` (checked by the tools).
    fn restore(&self, vg: &str, text: &str, dir: &Path) {
        let f = dir.join(format!("{vg}.new.vg"));
        fs::write(&f, text).unwrap();
        self.lvm("vgcfgrestore", &["--force", "-f", f.to_str().unwrap(), vg]);
    }
}

/// An ext4 image of `size` bytes holding `files` (path, contents).
fn ext4(dir: &Path, name: &str, size: u64, label: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let tree = dir.join(format!("{name}.tree"));
    fs::create_dir_all(&tree).unwrap();
    for (p, data) in files {
        let p = tree.join(p.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
    let img = dir.join(format!("{name}.fs"));
    fs::File::create(&img).unwrap().set_len(size).unwrap();
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", label, "-E", "root_owner=0:0", "-d"])
        .arg(&tree)
        .arg(&img)
        .env("E2FSPROGS_FAKE_TIME", "1700000000"));
    fs::read(img).unwrap()
}

fn swap(dir: &Path, size: u64) -> Vec<u8> {
    let img = dir.join("swap.fs");
    fs::File::create(&img).unwrap().set_len(size).unwrap();
    run(Command::new("mkswap").args(["-L", "swap"]).arg(&img));
    fs::read(img).unwrap()
}

fn image(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(format!("{name}.img"));
    fs::File::create(&p).unwrap().set_len(size).unwrap();
    p
}

fn disk(p: &Path) -> Rc<dyn BlockDevice> {
    Rc::new(fs::read(p).unwrap())
}

fn read_all(dev: &dyn BlockDevice) -> Vec<u8> {
    let mut b = vec![0u8; dev.size() as usize];
    dev.read_at(0, &mut b).unwrap();
    b
}

/// `(device, type)` of every volume but the PVs, as guestfish's list-filesystems gives them.
fn listing(set: &DiskSet) -> Vec<String> {
    set.volumes
        .iter()
        .filter(|v| v.info.fstype != "LVM2_member")
        .map(|v| format!("{}: {}", v.info.device, v.info.fstype))
        .collect()
}

/// The lines of recorded guestfish output `name` between `== list-filesystems` and the
/// next `==` line, or under `== lvs`.
fn recorded(name: &str, section: &str) -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/lvm")
        .join(name);
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .skip_while(|l| *l != format!("== {section}"))
        .skip(1)
        .take_while(|l| !l.starts_with("=="))
        .map(String::from)
        .collect()
}

/// A RHEL-like disk: MBR, /boot ext4, an LVM PV with VG `rhel`: `root` (ext4, extended
/// after `swap` was made, so in two segments), `swap`, `home` and `opt`; its fstab names
/// them in each form fstab can.
#[test]
fn rhel_on_lvm() {
    if !have_tools() {
        return;
    }
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("rhel");
    let img = image(&dir.0, "rhel", 64 * MIB);
    let mut sf = Command::new("sfdisk");
    sf.args(["-q", img.to_str().unwrap()])
        .stdin(std::process::Stdio::piped());
    let mut child = sf.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, size=16384, type=83\nstart=18432, type=8e\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let (pv_start, pv_size) = (18432 * 512, 64 * MIB - 18432 * 512);

    let mut l = Lvm::new();
    let pv = l.attach(&img, pv_start, pv_size);
    l.lvm("pvcreate", &["-y", &pv]);
    l.lvm("vgcreate", &["-y", "-s", "1m", "rhel", &pv]);
    for (lv, size) in [
        ("root", "16m"),
        ("swap", "4m"),
        ("home", "8m"),
        ("opt", "4m"),
    ] {
        l.lvm(
            "lvcreate",
            &["-an", "-Zn", "-y", "-L", size, "-n", lv, "rhel"],
        );
    }
    l.lvm("lvextend", &["-L", "+8m", "rhel/root"]);
    let segs = l.report("lvs", "lv_name", &["--segments", "rhel/root"]);
    assert_eq!(segs.len(), 2, "root in two segments");

    let boot = ext4(&dir.0, "boot", 8 * MIB, "boot", &[("/grub2/grub.cfg", "")]);
    let boot_uuid = blkid_uuid(&dir.0.join("boot.fs"));
    let opt = ext4(&dir.0, "opt", 4 * MIB, "optfs", &[("/readme", "opt\n")]);
    let opt_uuid = blkid_uuid(&dir.0.join("opt.fs"));
    let fstab = format!(
        "/dev/mapper/rhel-root / ext4 defaults 0 0\n\
         UUID={boot_uuid} /boot ext4 defaults 1 2\n\
         LABEL=homefs /home ext4 defaults 1 2\n\
         UUID={opt_uuid} /opt ext4 defaults 1 2\n\
         /dev/rhel/swap none swap defaults 0 0\n"
    );
    let root = ext4(
        &dir.0,
        "root",
        24 * MIB,
        "rootfs",
        &[
            ("/etc/fstab", &fstab),
            ("/etc/hostname", "rhel.example.com\n"),
            (
                "/etc/redhat-release",
                "Red Hat Enterprise Linux release 8.9 (Ootpa)\n",
            ),
            (
                "/etc/os-release",
                "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"8.9 (Ootpa)\"\nID=\"rhel\"\nVERSION_ID=\"8.9\"\n",
            ),
            ("/bin/sh", ""),
        ],
    );
    let home = ext4(
        &dir.0,
        "home",
        8 * MIB,
        "homefs",
        &[("/user/notes", "hello\n")],
    );
    let sw = swap(&dir.0, 4 * MIB);
    l.fill("rhel", "root", &root);
    l.fill("rhel", "home", &home);
    l.fill("rhel", "swap", &sw);
    l.fill("rhel", "opt", &opt);
    let f = fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&boot, MIB).unwrap();
    drop(f);

    // Byte for byte, through the LV reader over the PV partition.
    let d = disk(&img);
    let part: Rc<dyn BlockDevice> = Rc::new(Slice::new(d.clone(), pv_start, pv_size));
    let scan = lvm::scan(&[(String::from("/dev/sda2"), part)]);
    assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
    for (name, want) in [
        ("root", &root),
        ("home", &home),
        ("swap", &sw),
        ("opt", &opt),
    ] {
        let lv = scan.lvs.iter().find(|l| l.name == name).unwrap();
        assert_eq!(read_all(&**lv.device.as_ref().unwrap()), *want, "{name}");
    }

    // Listed as libguestfs lists them, and inspected through.
    let set = DiskSet::scan(&[d]);
    assert_eq!(listing(&set), recorded("rhel.txt", "list-filesystems"));
    assert_eq!(set.logical_volumes, recorded("rhel.txt", "lvs"));
    assert_eq!(set.volume("/dev/sda2").unwrap().info.fstype, "LVM2_member");
    assert!(set.devices.iter().all(|d| d.name.starts_with("/dev/sda")));
    let root_vol = set.volume("/dev/rhel/root").unwrap();
    assert_eq!(root_vol.info.label.as_deref(), Some("rootfs"));
    assert!(set.volume("/dev/mapper/rhel-root").is_some());
    let oses = inspect(&set.volumes, false);
    assert_eq!(oses.len(), 1);
    let os = &oses[0];
    assert_eq!(os.root, "/dev/rhel/root");
    assert_eq!(os.distro.as_deref(), Some("rhel"));
    assert_eq!((os.major_version, os.minor_version), (8, 9));
    assert_eq!(os.hostname.as_deref(), Some("rhel.example.com"));
    let mps: Vec<(&str, &str)> = os
        .mountpoints
        .iter()
        .map(|(d, m)| (d.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        mps,
        [
            ("/dev/rhel/root", "/"),
            ("/dev/rhel/opt", "/opt"),
            ("/dev/sda1", "/boot"),
            ("/dev/rhel/home", "/home"),
        ]
    );
    let fss: Vec<&str> = os.filesystems.iter().map(|f| f.device.as_str()).collect();
    assert_eq!(
        fss,
        [
            "/dev/rhel/home",
            "/dev/rhel/opt",
            "/dev/rhel/root",
            "/dev/rhel/swap",
            "/dev/sda1"
        ]
    );
    // The OS tree reads through the LVs.
    let tree = vmchannel_inspect::inspect::os_tree(&set.volumes, "/dev/rhel/root").unwrap();
    use vmchannel_inspect::fs::FileSystem;
    assert_eq!(tree.read_file("/home/user/notes", 100).unwrap(), b"hello\n");
    assert_eq!(tree.read_file("/opt/readme", 100).unwrap(), b"opt\n");
}

fn blkid_uuid(p: &Path) -> String {
    run(Command::new("blkid")
        .args(["-o", "value", "-s", "UUID"])
        .arg(p))
    .trim()
    .to_string()
}

/// A VG with a dash in its name over two whole disks: a striped LV over both (64 KiB
/// stripes), a linear LV on the first; then the same without the second disk.
#[test]
fn striped_over_two_disks_and_a_missing_pv() {
    if !have_tools() {
        return;
    }
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("striped");
    let a = image(&dir.0, "striped-a", 32 * MIB);
    let b = image(&dir.0, "striped-b", 32 * MIB);
    let mut l = Lvm::new();
    let pa = l.attach(&a, 0, 32 * MIB);
    let pb = l.attach(&b, 0, 32 * MIB);
    l.lvm("pvcreate", &["-y", &pa, &pb]);
    l.lvm("vgcreate", &["-y", "-s", "1m", "my-vg", &pa, &pb]);
    l.lvm(
        "lvcreate",
        &[
            "-an", "-Zn", "-y", "-i", "2", "-I", "64k", "-L", "16m", "-n", "data-lv", "my-vg",
        ],
    );
    l.lvm(
        "lvcreate",
        &["-an", "-Zn", "-y", "-L", "4m", "-n", "lin", "my-vg", &pa],
    );
    let data = ext4(
        &dir.0,
        "data",
        16 * MIB,
        "striped",
        &[("/big", &"0123456789".repeat(100_000))],
    );
    let mut lin = vec![0u8; 4 * MIB as usize];
    for (i, b) in lin.iter_mut().enumerate() {
        *b = (i % 253) as u8;
    }
    l.fill("my-vg", "data-lv", &data);
    l.fill("my-vg", "lin", &lin);
    let stripes = l.report("lvs", "stripes", &["--segments", "my-vg/data-lv"]);
    assert_eq!(stripes[0][0], "2");

    let set = DiskSet::scan(&[disk(&a), disk(&b)]);
    assert_eq!(listing(&set), recorded("striped.txt", "list-filesystems"));
    assert_eq!(set.logical_volumes, recorded("striped.txt", "lvs"));
    let scan = lvm::scan(&[
        (String::from("/dev/sda"), disk(&a)),
        (String::from("/dev/sdb"), disk(&b)),
    ]);
    let dev = |s: &lvm::Scan, n: &str| {
        s.lvs
            .iter()
            .find(|l| l.name == n)
            .map(|l| {
                l.device
                    .as_ref()
                    .map(|d| read_all(&**d))
                    .map_err(|e| e.to_string())
            })
            .unwrap()
    };
    assert_eq!(dev(&scan, "data-lv").unwrap(), data);
    assert_eq!(dev(&scan, "lin").unwrap(), lin);
    let v = set.volume("/dev/mapper/my--vg-data--lv").unwrap();
    assert_eq!(v.info.device, "/dev/my-vg/data-lv");
    assert_eq!(v.info.fstype, "ext4");
    let big = v.fs.as_ref().unwrap().read_file("/big", 1 << 21).unwrap();
    assert_eq!(big, "0123456789".repeat(100_000).as_bytes());

    // Without the second disk: the striped LV is an error naming the missing PV, the
    // linear one on the first disk is still read.
    let scan = lvm::scan(&[(String::from("/dev/sda"), disk(&a))]);
    assert!(dev(&scan, "data-lv").unwrap_err().contains("is missing"));
    assert_eq!(dev(&scan, "lin").unwrap(), lin);
    let set = DiskSet::scan(&[disk(&a)]);
    assert_eq!(listing(&set), recorded("missing.txt", "list-filesystems"));
    let e = set.open_error("/dev/my-vg/data-lv").unwrap().to_string();
    assert!(e.contains("missing"), "{e}");
    assert!(set.volume("/dev/my-vg/data-lv").unwrap().fs.is_none());
}

/// Thin pool, thin LV and an old-style snapshot, written with `vgcfgrestore`: listed with
/// an error, never read.
#[test]
fn thin_and_snapshot_are_not_read() {
    if !have_tools() {
        return;
    }
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("thin");
    let img = image(&dir.0, "thin", 32 * MIB);
    let mut l = Lvm::new();
    let pv = l.attach(&img, 0, 32 * MIB);
    l.lvm("pvcreate", &["-y", &pv]);
    l.lvm("vgcreate", &["-y", "-s", "1m", "tvg", &pv]);
    l.lvm(
        "lvcreate",
        &["-an", "-Zn", "-y", "-L", "4m", "-n", "lin", "tvg"],
    );
    let text = l.backup("tvg", &dir.0);
    let at = text.find("logical_volumes {").unwrap() + "logical_volumes {".len();
    let text = format!("{}{}{}", &text[..at], THIN_AND_SNAPSHOT, &text[at..]);
    l.restore("tvg", &text, &dir.0);
    let roles = l.report("lvs", "lv_name,lv_role,segtype", &["-a"]);
    assert!(
        roles.iter().any(|r| r[0] == "pool" && r[2] == "thin-pool"),
        "{roles:?}"
    );
    // Something that looks like a filesystem in the snapshot's and the pool's extents
    // must not be read as one.
    let decoy = ext4(&dir.0, "decoy", MIB, "decoy", &[]);
    l.fill("tvg", "snap", &decoy);
    l.fill(
        "tvg",
        "pool_tdata",
        &[decoy.clone(), decoy.clone()].concat(),
    );

    let set = DiskSet::scan(&[disk(&img)]);
    assert_eq!(listing(&set), recorded("thin.txt", "list-filesystems"));
    assert_eq!(set.logical_volumes, recorded("thin.txt", "lvs"));
    for (lv, what) in [
        ("/dev/tvg/thin", "thin LV"),
        ("/dev/tvg/snap", "snapshot of lin"),
    ] {
        let e = set.open_error(lv).unwrap().to_string();
        assert!(e.contains(what), "{lv}: {e}");
        assert!(set.volume(lv).unwrap().fs.is_none());
    }
    assert!(set.volume("/dev/tvg/lin").is_some());
    assert!(set.volume("/dev/tvg/pool").is_none());
    assert!(
        set.warnings
            .iter()
            .any(|w| w.contains("tvg/pool") && w.contains("thin pool")),
        "{:?}",
        set.warnings
    );
}

/// A thin pool over `pool_tmeta` (extent 6) and `pool_tdata` (extents 7-8), a thin LV in
/// it, and a snapshot of `lin` whose copy-on-write store is `snap` (extent 9), in the
/// metadata text's own syntax.
const THIN_AND_SNAPSHOT: &str = r#"
pool {
id = "poolAB-pool-ABpo-olAB-pool-ABpo-olABpo"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 2
type = "thin-pool"
metadata = "pool_tmeta"
pool = "pool_tdata"
transaction_id = 1
chunk_size = 128
discards = "passdown"
zero_new_blocks = 1
}
}
thin {
id = "thinAB-thin-ABth-inAB-thin-ABth-inABth"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 4
type = "thin"
thin_pool = "pool"
transaction_id = 0
device_id = 1
}
}
pool_tmeta {
id = "tmetaA-tmet-aAtm-etaA-tmet-aAtm-etaAtm"
status = ["READ", "WRITE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = [
"pv0", 6
]
}
}
pool_tdata {
id = "tdataA-tdat-aAtd-ataA-tdat-aAtd-ataAtd"
status = ["READ", "WRITE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 2
type = "striped"
stripe_count = 1
stripes = [
"pv0", 7
]
}
}
snap {
id = "snapAB-snap-ABsn-apAB-snap-ABsn-apABsn"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 1
type = "striped"
stripe_count = 1
stripes = [
"pv0", 9
]
}
}
snapshot0 {
id = "snapsh-0sna-psh0-snap-sh0s-naps-h0snap"
status = ["READ"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 1
type = "snapshot"
chunk_size = 8
origin = "lin"
cow_store = "snap"
}
}
"#;

/// The fuzz seeds (made by `kernel/fuzz/seeds/make-lvm-seeds.sh` with the real tools) hold
/// readable LVs, so the fuzzer starts from deep inside the format.
#[test]
fn fuzz_seeds_hold_readable_lvs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/fuzz/seeds/lvm");
    let read = |n: &str| fs::read(dir.join(n)).unwrap()[1..].to_vec();
    let one = read("rhel-one-pv.img");
    let s = lvm::scan(&[(
        String::from("/dev/sda"),
        Rc::new(one) as Rc<dyn BlockDevice>,
    )]);
    let names: Vec<String> = s.lvs.iter().map(|l| l.path()).collect();
    assert_eq!(names, ["/dev/rhel/root", "/dev/rhel/swap"]);
    assert!(s.lvs.iter().all(|l| l.device.is_ok()), "{:?}", s.warnings);
    let two = read("striped-two-pvs.img");
    let (a, b) = two.split_at(two.len() / 2);
    let s = lvm::scan(&[
        (
            String::from("/dev/sda"),
            Rc::new(a.to_vec()) as Rc<dyn BlockDevice>,
        ),
        (
            String::from("/dev/sdb"),
            Rc::new(b.to_vec()) as Rc<dyn BlockDevice>,
        ),
    ]);
    let names: Vec<String> = s.lvs.iter().map(|l| l.path()).collect();
    assert_eq!(names, ["/dev/my-vg/data", "/dev/my-vg/lin"]);
    assert!(s.lvs.iter().all(|l| l.device.is_ok()), "{:?}", s.warnings);
}

/// A small metadata area (32 KiB) the tools have written around its end: the text is read
/// across the wrap, and every LV is there.
#[test]
fn metadata_wrapped_around_the_area() {
    if !have_tools() {
        return;
    }
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Scratch::new("wrap");
    let img = image(&dir.0, "wrap", 16 * MIB);
    let mut l = Lvm::new();
    let pv = l.attach(&img, 0, 16 * MIB);
    l.lvm(
        "pvcreate",
        &["-y", "--metadatasize", "32k", "--dataalignment", "64k", &pv],
    );
    l.lvm("vgcreate", &["-y", "-s", "64k", "wrapvg", &pv]);
    let mut wrapped = false;
    let mut names = Vec::new();
    for i in 0..60 {
        let name = format!("lv{i:02}");
        l.lvm(
            "lvcreate",
            &["-an", "-Zn", "-y", "-L", "64k", "-n", &name, "wrapvg"],
        );
        names.push(format!("/dev/wrapvg/{name}"));
        // The committed text's raw_locn: wrapped once it runs past the area's end.
        let d = fs::read(&img).unwrap();
        let mda = 4096usize;
        let le = |at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
        let (area, off, len) = (le(mda + 32), le(mda + 40), le(mda + 48));
        if off + len > area {
            wrapped = true;
            break;
        }
    }
    assert!(wrapped, "the metadata never wrapped");
    let s = lvm::scan(&[(String::from("/dev/sda"), disk(&img))]);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let got: Vec<String> = s.lvs.iter().map(|l| l.path()).collect();
    assert_eq!(got, names);
}

//! libguestfs's `blkid` procedure (`Daemon::blkid`) against this machine's blkid
//! (util-linux 2.38.1, the appliance's version) on loop devices: every filesystem type the
//! scan knows, made by the real tools, with and without labels, on a whole device and in
//! the partitions of an MBR disk (primary, extended and logical) and a GPT disk (names,
//! attribute flags, an empty partition), compared key by key and in order. Only DEVNAME
//! and PART_ENTRY_DISK differ by nature (a loop device here, `/dev/sda` and 8:0 in the
//! appliance) and are substituted.
//!
//! Needs root for loop devices: without it the tests print `SKIPPED` (and fail under
//! `CI=true`).

mod support;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use support::lvm::Lvm;
use support::{Tmp, have, open_dev, run, skip};
use vmchannel_inspect::disk::BlockDevice;
use vmchannel_inspect::guestfs::Daemon;

const MIB: u64 = 1 << 20;

/// Whether the tools and the rights these tests need are here; else skips (or fails).
fn usable() -> bool {
    for tool in [
        "blkid",
        "losetup",
        "partx",
        "mknod",
        "sfdisk",
        "mkfs.ext2",
        "mkfs.ext3",
        "mkfs.ext4",
        "mkfs.vfat",
        "mkfs.xfs",
        "mkfs.btrfs",
        "mkswap",
        "mkntfs",
        "lvm",
    ] {
        if !have(tool) {
            return !skip(&format!("{tool} is not installed"));
        }
    }
    let probe = Command::new("losetup").arg("-f").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return !skip("no loop device can be set up here (root is needed)");
    }
    true
}

/// A loop device over an image, detached on drop.
struct Loop(String);

impl Loop {
    fn attach(img: &Path, partitions: bool) -> Loop {
        let mut cmd = Command::new("losetup");
        cmd.args(["-f", "--show"]);
        if partitions {
            cmd.arg("-P");
        }
        Loop(run(cmd.arg(img)).trim().to_string())
    }

    /// Device nodes for partitions `numbers`, made in `dir` from sysfs (this machine has no
    /// udev to make them in /dev): blkid finds the whole disk and the entry through the
    /// node's device number.
    fn partition_nodes(&self, numbers: &[u32], dir: &Path) -> Vec<PathBuf> {
        let name = self.0.trim_start_matches("/dev/");
        // The kernel's own scan at attach time may not have run: ask for it again.
        let _ = Command::new("partx").args(["-a", &self.0]).output();
        numbers
            .iter()
            .map(|n| {
                let sys = format!("/sys/block/{name}/{name}p{n}/dev");
                let start = Instant::now();
                let devno = loop {
                    if let Ok(s) = fs::read_to_string(&sys) {
                        break s;
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(20),
                        "{sys} never appeared"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                };
                let (major, minor) = devno.trim().split_once(':').unwrap();
                let node = dir.join(format!("{name}p{n}"));
                let _ = fs::remove_file(&node);
                run(Command::new("mknod").arg(&node).args(["b", major, minor]));
                node
            })
            .collect()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// `blkid -c /dev/null -p -i -o export DEV`'s keys in order, with DEVNAME given as `name`
/// and PART_ENTRY_DISK as `8:0`, as the appliance's /dev/sda shows them.
fn blkid(dev: &Path, name: &str) -> Vec<(String, String)> {
    let out = Command::new("blkid")
        .args(["-c", "/dev/null", "-p", "-i", "-o", "export"])
        .arg(dev)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            let v = match k {
                "DEVNAME" => name,
                "PART_ENTRY_DISK" => "8:0",
                _ => v,
            };
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A filesystem the tests make: blkid's TYPE (for messages), the size, and the command
/// that makes it in a file.
struct Fs {
    what: &'static str,
    mib: u64,
    make: fn(&Path),
}

fn mkfs(args: &[&str], img: &Path) {
    run(Command::new(args[0]).args(&args[1..]).arg(img));
}

/// Every type the scan recognises, labelled and not.
fn filesystems() -> Vec<Fs> {
    vec![
        Fs {
            what: "ext2 labelled",
            mib: 8,
            make: |p| mkfs(&["mkfs.ext2", "-q", "-F", "-L", "lab2"], p),
        },
        Fs {
            what: "ext2",
            mib: 8,
            make: |p| mkfs(&["mkfs.ext2", "-q", "-F"], p),
        },
        Fs {
            what: "ext3 labelled",
            mib: 16,
            make: |p| mkfs(&["mkfs.ext3", "-q", "-F", "-L", "my lab$"], p),
        },
        Fs {
            what: "ext3",
            mib: 16,
            make: |p| mkfs(&["mkfs.ext3", "-q", "-F"], p),
        },
        Fs {
            what: "ext4 labelled",
            mib: 32,
            make: |p| mkfs(&["mkfs.ext4", "-q", "-F", "-L", "root"], p),
        },
        Fs {
            what: "ext4 with a UTF-8 label",
            mib: 32,
            make: |p| mkfs(&["mkfs.ext4", "-q", "-F", "-L", "Grüße 'x'"], p),
        },
        Fs {
            what: "ext4 4k blocks",
            mib: 32,
            make: |p| mkfs(&["mkfs.ext4", "-q", "-F", "-b", "4096"], p),
        },
        Fs {
            what: "vfat FAT12 labelled",
            mib: 4,
            make: |p| mkfs(&["mkfs.vfat", "-F", "12", "-n", "SMALL"], p),
        },
        Fs {
            what: "vfat FAT12",
            mib: 4,
            make: |p| mkfs(&["mkfs.vfat", "-F", "12"], p),
        },
        Fs {
            what: "vfat FAT16 labelled",
            mib: 32,
            make: |p| mkfs(&["mkfs.vfat", "-F", "16", "-n", "UEFI"], p),
        },
        Fs {
            what: "vfat FAT16",
            mib: 32,
            make: |p| mkfs(&["mkfs.vfat", "-F", "16"], p),
        },
        Fs {
            what: "vfat FAT32 labelled",
            mib: 64,
            make: |p| mkfs(&["mkfs.vfat", "-F", "32", "-n", "BIG ONE"], p),
        },
        Fs {
            what: "vfat FAT32",
            mib: 64,
            make: |p| mkfs(&["mkfs.vfat", "-F", "32"], p),
        },
        Fs {
            what: "xfs labelled",
            mib: 300,
            make: |p| mkfs(&["mkfs.xfs", "-q", "-f", "-L", "xroot"], p),
        },
        Fs {
            what: "btrfs labelled",
            mib: 128,
            make: |p| mkfs(&["mkfs.btrfs", "-q", "-f", "-L", "bt"], p),
        },
        Fs {
            what: "btrfs",
            mib: 128,
            make: |p| mkfs(&["mkfs.btrfs", "-q", "-f"], p),
        },
        Fs {
            what: "swap labelled",
            mib: 16,
            make: |p| mkfs(&["mkswap", "-L", "sw"], p),
        },
        Fs {
            what: "swap",
            mib: 16,
            make: |p| mkfs(&["mkswap"], p),
        },
        Fs {
            what: "ntfs labelled",
            mib: 16,
            make: |p| mkfs(&["mkntfs", "-q", "-F", "-f", "-L", "Windows"], p),
        },
        Fs {
            what: "ntfs",
            mib: 16,
            make: |p| mkfs(&["mkntfs", "-q", "-F", "-f"], p),
        },
        Fs {
            what: "LVM2_member",
            mib: 16,
            make: pvcreate,
        },
    ]
}

/// Makes `img` an LVM2 physical volume, through a loop device and the lvm2 tools confined
/// to it (no device-mapper).
fn pvcreate(img: &Path) {
    let dev = Loop::attach(img, false);
    let config = format!(
        "devices {{ use_devicesfile = 0 obtain_device_list_from_udev = 0 filter = [ \"a|^{}$|\", \"r|.*|\" ] }} \
         activation {{ udev_sync = 0 udev_rules = 0 }} backup {{ backup = 0 archive = 0 }}",
        dev.0
    );
    run(Command::new("lvm")
        .args([
            "pvcreate",
            "-ff",
            "-y",
            "--driverloaded",
            "n",
            "--config",
            &config,
        ])
        .arg(&dev.0)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1"));
}

/// A sparse file of `mib` MiB made into `fs`.
fn make(fs: &Fs, path: &Path) {
    let f = fs::File::create(path).unwrap();
    f.set_len(fs.mib * MIB).unwrap();
    drop(f);
    (fs.make)(path);
}

/// Copies `src` into `dst` at byte `at`, skipping zero blocks (both files are sparse).
fn copy_into(src: &Path, dst: &Path, at: u64) {
    let src = fs::File::open(src).unwrap();
    let dst = fs::OpenOptions::new().write(true).open(dst).unwrap();
    let len = src.metadata().unwrap().len();
    let mut buf = vec![0u8; 1 << 16];
    let mut off = 0;
    while off < len {
        let n = buf.len().min((len - off) as usize);
        src.read_exact_at(&mut buf[..n], off).unwrap();
        if buf[..n].iter().any(|&b| b != 0) {
            dst.write_all_at(&buf[..n], at + off).unwrap();
        }
        off += n as u64;
    }
}

fn daemon(img: &Path) -> Daemon {
    Daemon::new(vec![open_dev(img) as Rc<dyn BlockDevice>])
}

/// Compares blkid and `Daemon::blkid` on `img` as a whole device, which must hold a `fstype`;
/// gives blkid's keys.
fn compare_whole(img: &Path, what: &str, fstype: &str) -> Vec<(String, String)> {
    let want = {
        let dev = Loop::attach(img, false);
        blkid(Path::new(&dev.0), "/dev/sda")
    };
    assert!(
        want.iter().any(|(k, v)| k == "TYPE" && v == fstype),
        "{what}: blkid found no {fstype}: {want:?}"
    );
    let got = daemon(img).blkid("/dev/sda").unwrap();
    assert_eq!(got, want, "{what}");
    want
}

#[test]
fn every_type_on_a_whole_device_as_blkid_gives_it() {
    if !usable() {
        return;
    }
    let t = Tmp::new("blkid", "whole");
    for fs in filesystems() {
        let img = t.0.join("fs.img");
        make(&fs, &img);
        let fstype = fs.what.split(' ').next().unwrap();
        let _ = compare_whole(&img, fs.what, fstype);
        fs::remove_file(&img).unwrap();
    }
}

#[test]
fn luks_bitlocker_and_external_journals_as_blkid_gives_them() {
    if !usable() {
        return;
    }
    if !have("cryptsetup") {
        skip("cryptsetup is not installed");
        return;
    }
    let t = Tmp::new("blkid", "luks");
    let key = t.0.join("key");
    fs::write(&key, "secret").unwrap();
    let sparse = |name: &str, mib: u64| {
        let p = t.0.join(name);
        fs::File::create(&p).unwrap().set_len(mib * MIB).unwrap();
        p
    };
    let luks = |img: &Path, args: &[&str]| {
        run(Command::new("cryptsetup")
            .args(["luksFormat", "-q", "--key-file"])
            .arg(&key)
            .args(["--pbkdf-force-iterations", "1000"])
            .args(args)
            .arg(img));
    };
    let l1 = sparse("luks1.img", 16);
    luks(&l1, &["--type", "luks1"]);
    let _ = compare_whole(&l1, "LUKS1", "crypto_LUKS");
    let l2 = sparse("luks2.img", 32);
    luks(
        &l2,
        &[
            "--type",
            "luks2",
            "--pbkdf",
            "pbkdf2",
            "--label",
            "my vault",
            "--subsystem",
            "sub",
        ],
    );
    let keys = compare_whole(&l2, "LUKS2", "crypto_LUKS");
    assert!(keys.iter().any(|(k, _)| k == "SUBSYSTEM"), "{keys:?}");
    // BitLocker (Windows 7 and later), which no tool here makes: its boot sector and FVE
    // metadata header written by hand, all blkid reads of it.
    for serial in [0u32, 0x1234_5678, 0xfedc_ba98] {
        let bl = sparse("bitlocker.img", 1);
        let mut head = vec![0u8; 4096];
        head[..11].copy_from_slice(b"\xeb\x58\x90-FVE-FS-");
        head[67..71].copy_from_slice(&serial.to_le_bytes());
        head[176..184].copy_from_slice(&2048u64.to_le_bytes());
        // Boot code where an MBR's entries would be (a boot indicator no table has), as on
        // a real volume: blkid would otherwise take the sector for an empty dos table.
        for (i, b) in head[446..510].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(0x21);
        }
        head[510..512].copy_from_slice(&[0x55, 0xAA]);
        head[2048..2056].copy_from_slice(b"-FVE-FS-");
        head[2058..2060].copy_from_slice(&2u16.to_le_bytes());
        fs::write(&bl, &head).unwrap();
        fs::File::options()
            .write(true)
            .open(&bl)
            .unwrap()
            .set_len(MIB)
            .unwrap();
        let _ = compare_whole(&bl, "BitLocker", "BitLocker");
    }
    // An external ext journal (jbd), and an ext3 that uses it (EXT_JOURNAL).
    let j = sparse("journal.img", 8);
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-O", "journal_dev", "-L", "jl"])
        .arg(&j));
    let _ = compare_whole(&j, "jbd", "jbd");
    let e3 = sparse("ext3.img", 16);
    {
        let jdev = Loop::attach(&j, false);
        run(Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext3", "-J"])
            .arg(format!("device={}", jdev.0))
            .arg(&e3));
    }
    let keys = compare_whole(&e3, "ext3 with an external journal", "ext3");
    assert!(keys.iter().any(|(k, _)| k == "EXT_JOURNAL"), "{keys:?}");
}

/// Partitions as `sfdisk -d` gives them: (number, start sector, sectors).
fn sfdisk_dump(img: &Path) -> Vec<(u32, u64, u64)> {
    let dump = run(Command::new("sfdisk").arg("-d").arg(img));
    let name = img.to_str().unwrap();
    dump.lines()
        .filter_map(|l| {
            let (dev, rest) = l.split_once(" : ")?;
            let n = dev.strip_prefix(name)?.parse().ok()?;
            let field = |key: &str| -> u64 {
                rest.split(',')
                    .find_map(|f| f.trim().strip_prefix(key))
                    .and_then(|v| v.trim_start_matches(['=', ' ']).parse().ok())
                    .unwrap()
            };
            Some((n, field("start"), field("size")))
        })
        .collect()
}

/// Builds a disk of `mib` MiB with the sfdisk `script`, puts `contents` (partition
/// number, filesystem) into its partitions, and compares blkid and `Daemon::blkid` on the
/// disk and every partition.
fn partitioned(kind: &str, mib: u64, script: &str, contents: &[(u32, &Fs)]) {
    let t = Tmp::new("blkid", kind);
    let disk = t.0.join("disk.img");
    fs::File::create(&disk).unwrap().set_len(mib * MIB).unwrap();
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(&disk)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk {kind}");
    let parts = sfdisk_dump(&disk);
    for (n, fs) in contents {
        let (_, start, sectors) = parts.iter().find(|p| p.0 == *n).unwrap();
        assert!(fs.mib * MIB <= sectors * 512, "{} fits {n}", fs.what);
        let img = t.0.join("fs.img");
        make(fs, &img);
        copy_into(&img, &disk, start * 512);
        fs::remove_file(&img).unwrap();
    }
    let numbers: Vec<u32> = parts.iter().map(|p| p.0).collect();
    let dev = Loop::attach(&disk, true);
    let nodes = dev.partition_nodes(&numbers, &t.0);
    let mut g = daemon(&disk);
    let want = blkid(Path::new(&dev.0), "/dev/sda");
    assert_eq!(g.blkid("/dev/sda").unwrap(), want, "{kind} disk");
    for (n, node) in numbers.iter().zip(&nodes) {
        let name = format!("/dev/sda{n}");
        let want = blkid(node, &name);
        let what = contents
            .iter()
            .find(|c| c.0 == *n)
            .map_or("empty", |c| c.1.what);
        assert!(
            want.iter().any(|(k, _)| k == "PART_ENTRY_NUMBER"),
            "{kind} {name}: blkid gave no partition entry: {want:?}"
        );
        assert_eq!(g.blkid(&name).unwrap(), want, "{kind} {name} ({what})");
    }
}

fn by_name<'a>(all: &'a [Fs], what: &str) -> &'a Fs {
    all.iter().find(|f| f.what == what).unwrap()
}

#[test]
fn partitions_of_an_mbr_disk_as_blkid_gives_them() {
    if !usable() {
        return;
    }
    let all = filesystems();
    let f = |w| by_name(&all, w);
    let script = "label: dos\nlabel-id: 0x0b0b1234\n\
        size=32M, type=83, bootable\n\
        size=32M, type=c\n\
        size=130M, type=83\n\
        type=5\n\
        size=302M, type=83\n\
        size=16M, type=82\n\
        size=16M, type=8e\n\
        size=16M, type=7\n\
        size=8M, type=83\n\
        size=4M, type=1\n\
        size=16M, type=83\n\
        size=64M, type=c\n\
        size=4M, type=83\n";
    partitioned(
        "mbr",
        700,
        script,
        &[
            (1, f("ext4 labelled")),
            (2, f("vfat FAT16 labelled")),
            (3, f("btrfs labelled")),
            (5, f("xfs labelled")),
            (6, f("swap labelled")),
            (7, f("LVM2_member")),
            (8, f("ntfs labelled")),
            (9, f("ext2 labelled")),
            (10, f("vfat FAT12 labelled")),
            (11, f("ext3 labelled")),
            (12, f("vfat FAT32 labelled")),
        ],
    );
}

#[test]
fn partitions_of_a_gpt_disk_as_blkid_gives_them() {
    if !usable() {
        return;
    }
    let all = filesystems();
    let f = |w| by_name(&all, w);
    let script = "label: gpt\nlabel-id: 0B0B0000-AAAA-4000-8000-000000000000\n\
        size=32M, type=L, name=\"root fs\", attrs=\"LegacyBIOSBootable\"\n\
        size=32M, type=U, name=\"EFI Sýstem\"\n\
        size=130M, type=L\n\
        size=302M, type=L\n\
        size=16M, type=S\n\
        size=16M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n\
        size=16M, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n\
        size=8M, type=L\n\
        size=4M, type=L\n\
        size=16M, type=L\n\
        size=64M, type=U\n\
        size=4M, type=21686148-6449-6E6F-744E-656564454649\n";
    partitioned(
        "gpt",
        700,
        script,
        &[
            (1, f("ext4 4k blocks")),
            (2, f("vfat FAT16")),
            (3, f("btrfs")),
            (4, f("xfs labelled")),
            (5, f("swap")),
            (6, f("LVM2_member")),
            (7, f("ntfs")),
            (8, f("ext2")),
            (9, f("vfat FAT12")),
            (10, f("ext3")),
            (11, f("vfat FAT32")),
        ],
    );
}

#[test]
fn devices_that_do_not_exist_get_the_daemons_errors() {
    // A disk with no table and nothing on it.
    let mut g = Daemon::new(vec![Rc::new(vec![0u8; 1 << 20]) as Rc<dyn BlockDevice>]);
    let keys = g.blkid("/dev/sda").unwrap();
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "DEVNAME",
            "MINIMUM_IO_SIZE",
            "PHYSICAL_SECTOR_SIZE",
            "LOGICAL_SECTOR_SIZE"
        ]
    );
    for dev in ["/dev/sdb", "/dev/sda1", "/dev/sda01", "/dev/vg/lv"] {
        let e = g.blkid(dev).unwrap_err();
        assert_eq!(e.errno, "ENOENT", "{dev}");
        assert_eq!(
            e.message,
            format!("blkid_stub: {dev}: No such file or directory")
        );
    }
    let e = g.blkid("sda").unwrap_err();
    assert_eq!(e.message, "blkid_stub: sda: expecting a device name");
}

#[test]
fn a_logical_volume_as_blkid_gives_its_filesystem() {
    if !usable() {
        return;
    }
    let t = Tmp::new("blkid", "lv");
    let img = t.0.join("pv.img");
    fs::File::create(&img).unwrap().set_len(64 * MIB).unwrap();
    let mut l = Lvm::new();
    let pv = l.attach(&img, 0, 64 * MIB);
    l.lvm("pvcreate", &["-ff", "-y", &pv]);
    l.lvm("vgcreate", &["vgb", &pv]);
    l.lvm("lvcreate", &["-an", "-Zn", "-L", "16M", "-n", "lvb", "vgb"]);
    // The only LV of a fresh VG: linear, from the first extent.
    let pe_start: u64 = l.report("pvs", "pe_start", &[&pv])[0][0].parse().unwrap();
    drop(l);
    // The LV's filesystem, made and probed through a loop device over its extents.
    let want = {
        let lv = Loop(
            run(Command::new("losetup")
                .args(["-f", "--show", "-o", &pe_start.to_string()])
                .args(["--sizelimit", &(16 * MIB).to_string()])
                .arg(&img))
            .trim()
            .to_string(),
        );
        run(Command::new("mkfs.ext4").args(["-q", "-L", "lvroot", &lv.0]));
        blkid(Path::new(&lv.0), "/dev/vgb/lvb")
    };
    assert!(
        want.iter().any(|(k, v)| k == "TYPE" && v == "ext4"),
        "{want:?}"
    );
    let mut g = daemon(&img);
    assert_eq!(g.lvs(), ["/dev/vgb/lvb"]);
    assert_eq!(g.blkid("/dev/vgb/lvb").unwrap(), want);
    // By its device-mapper name too, which DEVNAME repeats.
    let mut mapper = want.clone();
    mapper[0].1 = "/dev/mapper/vgb-lvb".into();
    assert_eq!(g.blkid("/dev/mapper/vgb-lvb").unwrap(), mapper);
    // The PV itself.
    let pv = g.blkid("/dev/sda").unwrap();
    assert!(
        pv.contains(&("TYPE".into(), "LVM2_member".into())),
        "{pv:?}"
    );
}

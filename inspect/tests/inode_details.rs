//! The inode details libguestfs's `statns`, `ll`, `readdir` and `lxattrlist` need, from
//! ext2/3/4 (the `raw` reader beside ext4-view), XFS, btrfs and NTFS, against Linux: images
//! made by mkfs and filled through a mount by the kernel itself, or by ntfs-3g for NTFS as
//! the stock appliance mounts it (hard links, device nodes of both encodings, fifos, fast
//! and slow symlinks, xattrs in the inode and in a block where the reader reads them, a
//! 600-entry directory, nanosecond times), then every file's lstat, xattrs and the
//! readdir(3) order (with inode numbers and `.`/`..`) compared with what a read-only mount
//! answers (`data/inode-details/describe.py`), and libguestfs's `ll` with the same
//! coreutils' `ls -lan`.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::{Tmp, have, open_dev, run, skip};
use vmchannel_inspect::fs::btrfs::Btrfs;
use vmchannel_inspect::fs::ext4::Ext4Fs;
use vmchannel_inspect::fs::ntfs::NtfsFs;
use vmchannel_inspect::fs::xfs::XfsFs;
use vmchannel_inspect::fs::{FileSystem, FullStat, Time};
use vmchannel_inspect::guestfs::Daemon;
use vmchannel_proto::FileKind;

/// Whether this process can loop-mount (root); under `CI=true` it must.
fn can_mount() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    root || !skip("not root: cannot loop-mount to compare with Linux")
}

/// The shell commands that fill the mounted filesystem at `$M`.
const FILL: &str = r#"
set -e
cd "$M"
printf 'hello\n' > file
ln file hardlink
mkdir -p dir/sub small
for i in $(seq 1 600); do printf "$i" > "dir/entry-with-a-longish-name-$i"; done
for n in a b c zz .hidden 'sp ace' 'ünï'; do : > "small/$n"; done
ln -s file fast-link
ln -s "$(printf 'x%.0s' $(seq 1 100))/target" slow-link
mknod chr c 1 3
mknod blk b 8 17
mknod big c 300 70000
mkfifo fifo
truncate -s 10M sparse
printf 'data' | dd of=sparse bs=1 seek=5000000 conv=notrunc 2>/dev/null
chown 1000:2000 file || [ -n "$LAX" ]
chmod 4755 small/a || [ -n "$LAX" ]
if [ -n "$XATTRS" ]; then
setfattr -n user.small -v hello file
setfattr -n trusted.t -v 0x00ff fifo
[ "$XATTRS" = big ] && setfattr -n user.big -v "$(printf 'v%.0s' $(seq 1 900))" small/b
setfattr -h -n trusted.onlink -v 1 fast-link
fi
touch -h -d '2021-03-04 05:06:07.123456789' file small/zz fast-link || [ -n "$LAX" ]
touch -d '1999-12-31 23:59:59.5' dir
mkdir special
mknod special/tty c 5 0
mknod special/big c 300 70000
mknod special/sda b 8 0
ln -s ../file special/link
mkfifo special/fifo
[ -n "$XATTRS" ] && setfattr -n security.selinux -v 'system_u:object_r:etc_t:s0' special/sda
true
"#;

/// Builds an image with `mkfs` (the command and its arguments), fills it through a loop
/// mount (with xattrs when `xattrs`), and returns it.
fn image(t: &Tmp, name: &str, mkfs: &[&str], xattrs: bool) -> std::path::PathBuf {
    let img = t.0.join(format!("{name}.img"));
    fs::File::create(&img).unwrap().set_len(320 << 20).unwrap();
    run(Command::new(mkfs[0]).args(&mkfs[1..]).arg(&img));
    let m = t.0.join(format!("{name}.mnt"));
    fs::create_dir_all(&m).unwrap();
    mount(&img, &m, mkfs[0], false);
    let filled = Command::new("sh")
        .arg("-c")
        .arg(FILL)
        .env("M", &m)
        .env(
            "XATTRS",
            // XFS: only attributes that fit in the inode, which is all its reader reads.
            match (xattrs, mkfs[0]) {
                (false, _) => "",
                (true, "mkfs.xfs") => "small",
                (true, _) => "big",
            },
        )
        // ntfs-3g with its default options has no owners or permissions to change.
        .env("LAX", if mkfs[0] == "mkntfs" { "1" } else { "" })
        .status();
    run(Command::new("umount").arg(&m));
    assert!(filled.unwrap().success(), "filling {name}");
    img
}

/// Mounts `img` at `m` as libguestfs's appliance would: NTFS through ntfs-3g (what its
/// `mount` runs), others with the kernel's driver on a loop device.
fn mount(img: &Path, m: &Path, mkfs: &str, ro: bool) {
    if mkfs == "mkntfs" {
        let mut cmd = Command::new("ntfs-3g");
        if ro {
            cmd.args(["-o", "ro"]);
        }
        run(cmd.arg(img).arg(m));
    } else {
        let opts = if ro { "loop,ro" } else { "loop" };
        run(Command::new("mount").args(["-o", opts]).arg(img).arg(m));
    }
}

/// Directories whose `ls -la` is compared with libguestfs's `ll` (`..` stays on the image).
const LISTED: [&str; 4] = ["/small", "/dir", "/dir/sub", "/special"];

/// Linux's description of the image (read-only loop mount), and `ls -la` of [`LISTED`] as
/// the stock appliance prints it (C locale, UTC, numeric ids).
fn describe_linux(img: &Path, t: &Tmp, mkfs: &str) -> (Vec<String>, Vec<String>) {
    let m = t.0.join("ro.mnt");
    fs::create_dir_all(&m).unwrap();
    mount(img, &m, mkfs, true);
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/inode-details/describe.py"
        ))
        .arg(&m)
        .output();
    let ls: Vec<String> = LISTED
        .iter()
        .map(|d| {
            // -n: the appliance has no passwd or group file, so ids print as numbers.
            let o = Command::new("ls")
                .arg("-lan")
                .arg(format!("{}{d}", m.display()))
                .env("LC_ALL", "C")
                .env("TZ", "UTC")
                .output()
                .unwrap();
            String::from_utf8(o.stdout).unwrap()
        })
        .collect();
    run(Command::new("umount").arg(&m));
    let out = out.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    (lines, ls)
}

fn t(x: Time) -> String {
    format!("{}.{:09}", x.sec, x.nsec)
}

/// `d_type` as Linux numbers it.
fn d_type(k: FileKind) -> u8 {
    match k {
        FileKind::Fifo => 1,
        FileKind::CharDevice => 2,
        FileKind::Directory => 4,
        FileKind::BlockDevice => 6,
        FileKind::File => 8,
        FileKind::Symlink => 10,
        FileKind::Socket => 12,
        FileKind::Unknown => 0,
    }
}

/// The same description from our reader.
fn describe_ours(fs: &dyn FileSystem, xattrs: bool) -> Vec<String> {
    fn go(fs: &dyn FileSystem, rel: &str, xattrs: bool, out: &mut Vec<String>) {
        let path = if rel.is_empty() { "/" } else { rel };
        let s: FullStat = fs.full_stat(path, false).unwrap();
        out.push(format!(
            "S {path} {} {:o} {} {} {} {} {} {} {} {} {} {}",
            s.ino,
            s.mode,
            s.nlink,
            s.uid,
            s.gid,
            s.rdev,
            s.size,
            s.blksize,
            s.blocks,
            t(s.atime),
            t(s.mtime),
            t(s.ctime)
        ));
        let mut x = if xattrs {
            fs.xattrs(path).unwrap()
        } else {
            Vec::new()
        };
        x.sort();
        if !x.is_empty() {
            let parts: Vec<String> = x
                .iter()
                .map(|(n, v)| {
                    format!(
                        "{n}={}",
                        v.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    )
                })
                .collect();
            out.push(format!("X {path} {}", parts.join(" ")));
        }
        if s.mode & 0o170000 == 0o040000 {
            let entries = fs.readdir_raw(path).unwrap();
            let shown: Vec<String> = entries
                .iter()
                .map(|e| format!("{}:{}:{}", e.ino, d_type(e.kind), e.name))
                .collect();
            out.push(format!("D {path} {}", shown.join(" ")));
            let mut names: Vec<String> = shown;
            names.sort();
            for e in names {
                let name = e.splitn(3, ':').nth(2).unwrap().to_string();
                if name != "." && name != ".." {
                    go(fs, &format!("{rel}/{name}"), xattrs, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    go(fs, "", xattrs, &mut out);
    out
}

/// Builds, fills and compares one image; `xattrs` for a reader that reads them.
fn compare(name: &str, mkfs: &[&str], xattrs: bool) {
    let mounter = if mkfs[0] == "mkntfs" {
        "ntfs-3g"
    } else {
        "mount"
    };
    if !have(mkfs[0]) || !have(mounter) || !have("setfattr") || !have("python3") {
        skip(&format!(
            "{}, {mounter}, setfattr or python3 missing",
            mkfs[0]
        ));
        return;
    }
    if !can_mount() {
        return;
    }
    let tmp = Tmp::new("ext4", name);
    let img = image(&tmp, name, mkfs, xattrs);
    let (linux, ls) = describe_linux(&img, &tmp, mkfs[0]);
    let fs: Box<dyn FileSystem> = match mkfs[0] {
        "mkfs.xfs" => Box::new(XfsFs::open(open_dev(&img)).unwrap()),
        "mkntfs" => Box::new(NtfsFs::open(open_dev(&img)).unwrap()),
        "mkfs.btrfs" => Box::new(Btrfs::open(open_dev(&img)).unwrap().default_fs().unwrap()),
        _ => Box::new(Ext4Fs::open(open_dev(&img)).unwrap()),
    };
    let ours = describe_ours(&*fs, xattrs);
    for (l, o) in linux.iter().zip(&ours) {
        assert_eq!(o, l, "{name}: ours, then Linux's");
    }
    assert_eq!(ours.len(), linux.len(), "{name}: line counts");
    // Every file was seen, and every entry of the big directory.
    assert!(linux.len() > 600, "{name}: {} lines", linux.len());
    let dir = linux.iter().find(|l| l.starts_with("D /dir ")).unwrap();
    let order: Vec<u32> = dir
        .split(' ')
        .filter_map(|e| e.rsplit_once("name-").and_then(|(_, n)| n.parse().ok()))
        .collect();
    assert_eq!(order.len(), 600);
    if mkfs[0] == "mkfs.ext4" {
        // ext4 hands it back in hash order (XFS in creation order).
        assert!(
            order.windows(2).any(|w| w[0] > w[1]),
            "{name}: /dir in creation order"
        );
    }

    // libguestfs's `ll` (`ls -la` in the stock appliance) from the same image.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let now = Time {
        sec: now.as_secs() as i64,
        nsec: now.subsec_nanos(),
    };
    let mut d = Daemon::new(vec![open_dev(&img)]);
    d.mount_ro("/dev/sda", "/").unwrap();
    for (dir, expected) in LISTED.iter().zip(&ls) {
        assert_eq!(&d.ll(dir, now).unwrap(), expected, "{name}: ll {dir}");
    }
}

#[test]
fn ext4_inodes_xattrs_and_readdir_order_are_linuxs() {
    compare("ext4", &["mkfs.ext4", "-q", "-F", "-U", UUID], true);
}

#[test]
fn ext2_block_maps_with_1k_blocks_are_linuxs() {
    compare(
        "ext2",
        &[
            "mkfs.ext4",
            "-q",
            "-F",
            "-U",
            UUID,
            "-t",
            "ext2",
            "-b",
            "1024",
        ],
        true,
    );
}

#[test]
fn xfs_inodes_and_readdir_order_are_linuxs() {
    compare("xfs", &["mkfs.xfs", "-q", "-f"], true);
}

#[test]
fn btrfs_inodes_and_readdir_order_are_linuxs() {
    compare("btrfs", &["mkfs.btrfs", "-q", "-f"], true);
}

#[test]
fn ntfs_through_ntfs3g_inodes_and_readdir_order() {
    // Our NTFS reader does not read extended attributes (they answer ENOTSUP).
    compare("ntfs", &["mkntfs", "-q", "-F", "-f"], false);
}

const UUID: &str = "e4e40000-0000-4000-8000-000000000001";

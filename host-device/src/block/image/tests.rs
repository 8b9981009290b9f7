use super::super::Block;
use super::chain::be32;
use super::*;
use std::process::Command;

fn qemu_img() -> bool {
    let found = Command::new("qemu-img").arg("--version").output().is_ok();
    if !found {
        // CI installs qemu-utils: there, a missing qemu-img is a failure, not a skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "qemu-img not found, and CI=true"
        );
        eprintln!("SKIPPED: qemu-img not found");
    }
    found
}

/// `qemu-img create -f qcow2 -u -b BACKING -F FORMAT PATH 4M`: a header naming `backing`
/// as it is given, unchecked (the backing file need not exist, nor be what it says).
fn overlay(path: &Path, backing: &OsStr, format: &str) {
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-u", "-F", format, "-b"])
        .arg(backing)
        .arg(path)
        .arg("4M")
        .status()
        .unwrap();
    assert!(ok.success(), "qemu-img create {path:?}");
}

/// A 4 MiB raw disk with a recognisable pattern at 1 MiB.
fn base(path: &Path) -> Vec<u8> {
    let mut bytes = vec![0u8; 4 << 20];
    for (i, b) in bytes.iter_mut().enumerate().skip(1 << 20).take(4096) {
        *b = (i % 251) as u8;
    }
    fs::write(path, &bytes).unwrap();
    bytes
}

fn reads_like(image: &OpenedImage, bytes: &[u8]) {
    let mut got = vec![0u8; 8192];
    image.backend.read_at(&mut got, (1 << 20) - 4096).unwrap();
    assert_eq!(got, bytes[(1 << 20) - 4096..(1 << 20) + 4096]);
}

#[test]
fn overlay_beside_its_base_reads_through_and_reports_its_chain() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = base(&dir.path().join("base.raw"));
    let mid = dir.path().join("mid.qcow2");
    overlay(&mid, OsStr::new("base.raw"), "raw");
    let top = dir.path().join("top.qcow2");
    // An absolute name beside the image is beside it too.
    overlay(&top, mid.as_os_str(), "qcow2");
    let image = open(&top).unwrap();
    reads_like(&image, &bytes);
    let real = fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        image.chain,
        vec![
            Layer {
                path: top.clone(),
                format: ImageFormat::Qcow2,
                data_file: None
            },
            Layer {
                path: real.join("mid.qcow2"),
                format: ImageFormat::Qcow2,
                data_file: None
            },
            Layer {
                path: real.join("base.raw"),
                format: ImageFormat::Raw,
                data_file: None
            },
        ]
    );
    // A symlink beside the image to a file beside it is fine.
    std::os::unix::fs::symlink("base.raw", dir.path().join("link.raw")).unwrap();
    let via_link = dir.path().join("via-link.qcow2");
    overlay(&via_link, OsStr::new("link.raw"), "raw");
    let image = open(&via_link).unwrap();
    reads_like(&image, &bytes);
    assert_eq!(image.chain[1].path, real.join("base.raw"));
}

#[test]
fn an_image_naming_itself_is_a_loop_not_a_stack_overflow() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let me = dir.path().join("self.qcow2");
    overlay(&me, OsStr::new("self.qcow2"), "qcow2");
    for policy in [BackingPolicy::Beside, BackingPolicy::Any] {
        let err = open_with(&me, policy).unwrap_err();
        assert!(
            matches!(&err, ImageError::Loop { image, what: Dependency::BackingFile, .. } if image == &me),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("self.qcow2") && msg.contains("loop"), "{msg}");
    }
}

#[test]
fn a_loop_of_two_images_is_refused() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.qcow2");
    let b = dir.path().join("b.qcow2");
    overlay(&a, OsStr::new("b.qcow2"), "qcow2");
    overlay(&b, OsStr::new("a.qcow2"), "qcow2");
    let err = open_with(&a, BackingPolicy::Any).unwrap_err();
    // b.qcow2 (reached as DIR/b.qcow2) names a.qcow2, the top image.
    assert!(
        matches!(&err, ImageError::Loop { top, image, .. }
            if top == &a && image == &b),
        "{err}"
    );
    assert!(err.to_string().contains("in the backing chain of"), "{err}");
    // Through a hard link the name differs but the inode does not.
    fs::hard_link(&a, dir.path().join("a-again.qcow2")).unwrap();
    overlay(&b, OsStr::new("a-again.qcow2"), "qcow2");
    assert!(matches!(open(&a), Err(ImageError::Loop { .. })));
}

#[test]
fn a_chain_deeper_than_the_cap_is_refused_and_one_at_the_cap_reads() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = base(&dir.path().join("l0.raw"));
    let mut below = "l0.raw".to_owned();
    let mut format = "raw";
    for i in 1..=MAX_BACKING_DEPTH + 1 {
        let name = format!("l{i}.qcow2");
        overlay(&dir.path().join(&name), OsStr::new(&below), format);
        below = name;
        format = "qcow2";
    }
    // l16 has 16 backing files below it: the cap, read through.
    let at_cap = dir.path().join(format!("l{MAX_BACKING_DEPTH}.qcow2"));
    let image = open(&at_cap).unwrap();
    assert_eq!(image.chain.len(), MAX_BACKING_DEPTH + 1);
    reads_like(&image, &bytes);
    // l17 has 17.
    let deeper = dir.path().join(format!("l{}.qcow2", MAX_BACKING_DEPTH + 1));
    for policy in [BackingPolicy::Beside, BackingPolicy::Any] {
        let err = open_with(&deeper, policy).unwrap_err();
        assert!(
            matches!(&err, ImageError::TooDeep { top, name, .. }
                if top == &deeper && name == Path::new("l0.raw")),
            "{err}"
        );
        assert!(err.to_string().contains("16 files deep"), "{err}");
    }
}

#[test]
fn a_backing_file_elsewhere_needs_the_option() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let elsewhere = other.path().join("base.raw");
    let bytes = base(&elsewhere);
    // Named absolutely, and relatively through "..".
    let absolute = dir.path().join("absolute.qcow2");
    overlay(&absolute, elsewhere.as_os_str(), "raw");
    fs::create_dir(dir.path().join("sub")).unwrap();
    base(&dir.path().join("up.raw"));
    let relative = dir.path().join("sub/relative.qcow2");
    overlay(&relative, OsStr::new("../up.raw"), "raw");
    for image in [&absolute, &relative] {
        let err = open(image).unwrap_err();
        assert!(matches!(&err, ImageError::Outside { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("--allow-backing"), "{msg}");
        assert!(matches!(
            Block::open(image, Default::default()),
            Err(super::super::BlockError::Image(ImageError::Outside { .. }))
        ));
        assert!(open_with(image, BackingPolicy::Any).is_ok());
    }
    reads_like(&open_with(&absolute, BackingPolicy::Any).unwrap(), &bytes);
    // The shape of the issue: a header naming /etc/shadow, never opened by default.
    let shadow = dir.path().join("shadow.qcow2");
    overlay(&shadow, OsStr::new("/etc/shadow"), "raw");
    let err = open(&shadow).unwrap_err();
    assert!(
        matches!(&err, ImageError::Outside { real, .. } if real == Path::new("/etc/shadow")),
        "{err}"
    );
}

#[test]
fn a_symlink_beside_the_image_pointing_elsewhere_is_not_beside_it() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let target = other.path().join("secret.raw");
    base(&target);
    std::os::unix::fs::symlink(&target, dir.path().join("base.raw")).unwrap();
    let top = dir.path().join("top.qcow2");
    overlay(&top, OsStr::new("base.raw"), "raw");
    let err = open(&top).unwrap_err();
    assert!(
        matches!(&err, ImageError::Outside { real, .. }
            if real == &fs::canonicalize(&target).unwrap()),
        "{err}"
    );
    let image = open_with(&top, BackingPolicy::Any).unwrap();
    assert_eq!(image.chain[1].path, fs::canonicalize(&target).unwrap());
}

#[test]
fn devices_fifos_sockets_and_directories_are_refused_under_every_policy() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    fs::create_dir(dir.path().join("subdir")).unwrap();
    // A symlink beside the image to a device: the device is what counts.
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
    let cases: [(&str, &str); 6] = [
        ("/dev/null", "a character device"),
        ("zero", "a character device"),
        ("fifo", "a FIFO"),
        ("sock", "a socket"),
        ("subdir", "a directory"),
        (".", "a directory"),
    ];
    for (name, kind_wanted) in cases {
        let top = dir.path().join("top.qcow2");
        overlay(&top, OsStr::new(name), "raw");
        for policy in [BackingPolicy::Beside, BackingPolicy::Any] {
            // A FIFO with no writer would block an ordinary open: this must return.
            let err = open_with(&top, policy).unwrap_err();
            assert!(
                matches!(&err, ImageError::NotRegular { kind, .. } if *kind == kind_wanted),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(kind_wanted), "{err}");
        }
    }
}

#[test]
fn an_external_data_file_obeys_the_same_policy() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let create = |image: &Path, data: &Path| {
        let ok = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-o"])
            .arg(format!(
                "data_file={},data_file_raw=on",
                data.display().to_string().replace(',', ",,")
            ))
            .arg(image)
            .arg("4M")
            .status()
            .unwrap();
        assert!(ok.success());
    };
    // Beside: read (data_file_raw: the data file's bytes are the disk's).
    let bytes = base(&dir.path().join("data.raw"));
    let top = dir.path().join("top.qcow2");
    create(&top, &dir.path().join("data.raw"));
    fs::write(dir.path().join("data.raw"), &bytes).unwrap();
    let image = open(&top).unwrap();
    reads_like(&image, &bytes);
    assert_eq!(
        image.chain[0].data_file,
        Some(fs::canonicalize(dir.path().join("data.raw")).unwrap())
    );
    // Elsewhere: refused by default, read with the option.
    let far = dir.path().join("far.qcow2");
    create(&far, &other.path().join("data.raw"));
    let err = open(&far).unwrap_err();
    assert!(
        matches!(
            &err,
            ImageError::Outside {
                what: Dependency::DataFile,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("external data file"), "{err}");
    assert!(open_with(&far, BackingPolicy::Any).is_ok());
    // Its own file as data file: a loop.
    let own = dir.path().join("own.qcow2");
    create(&own, &dir.path().join("scratch.raw"));
    let mut header = fs::read(&own).unwrap();
    let at = header
        .windows(4)
        .position(|w| w == EXT_DATA_FILE.to_be_bytes())
        .unwrap();
    let old_len = be32(&header, at + 4) as usize;
    assert!(old_len >= 9);
    // The extension's name becomes "own.qcow2" (relative to the image), NUL-padded.
    header[at + 4..at + 8].copy_from_slice(&9u32.to_be_bytes());
    header[at + 8..at + 8 + old_len].fill(0);
    header[at + 8..at + 17].copy_from_slice(b"own.qcow2");
    fs::write(&own, &header).unwrap();
    let err = open(&own).unwrap_err();
    assert!(
        matches!(
            &err,
            ImageError::Loop {
                what: Dependency::DataFile,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn forged_headers_are_errors_not_panics() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.qcow2");
    base(&dir.path().join("base.raw"));
    overlay(&good, OsStr::new("base.raw"), "raw");
    let header = fs::read(&good).unwrap();
    let forge = |name: &str, at: usize, value: &[u8]| {
        let mut h = header.clone();
        h[at..at + value.len()].copy_from_slice(value);
        let path = dir.path().join(name);
        fs::write(&path, &h).unwrap();
        open(&path).unwrap_err()
    };
    // backing_file_size over QEMU's 1023.
    let err = forge("long.qcow2", 16, &4096u32.to_be_bytes());
    assert!(matches!(&err, ImageError::Header { .. }), "{err}");
    assert!(err.to_string().contains("1023"), "{err}");
    // A name far beyond the first cluster.
    let err = forge("far.qcow2", 8, &(u64::MAX - 3).to_be_bytes());
    assert!(matches!(err, ImageError::Header { .. }), "{err}");
    // An unknown backing format.
    let at = header.windows(3).position(|w| w == b"raw").unwrap();
    let err = forge("fmt.qcow2", at, b"vmd");
    assert!(err.to_string().contains("\"vmd\""), "{err}");
    // A header extension running past the header.
    let at = header
        .windows(4)
        .position(|w| w == EXT_BACKING_FORMAT.to_be_bytes())
        .unwrap();
    let err = forge("ext.qcow2", at + 4, &0x00ff_ffffu32.to_be_bytes());
    assert!(matches!(err, ImageError::Header { .. }), "{err}");
}

#[test]
fn probes_by_content() {
    assert_eq!(probe_bytes(b""), Probe::Readable(ImageFormat::Raw));
    assert_eq!(
        probe_bytes(b"QFI\xfb\0\0\0\x03rest"),
        Probe::Readable(ImageFormat::Qcow2)
    );
    assert_eq!(
        probe_bytes(b"QFI\xfb\0\0\0\x01"),
        Probe::Unsupported("qcow (version 1)")
    );
    assert_eq!(probe_bytes(b"KDMV...."), Probe::Unsupported("VMDK"));
    assert_eq!(probe_bytes(b"vhdxfile"), Probe::Unsupported("VHDX"));
    let mut vdi = vec![0u8; 0x48];
    vdi[0x40..0x44].copy_from_slice(&0xbeda_107f_u32.to_le_bytes());
    assert_eq!(probe_bytes(&vdi), Probe::Unsupported("VDI"));
    // A raw disk that happens to start with a boot sector stays raw.
    let mut mbr = vec![0u8; 512];
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    assert_eq!(probe_bytes(&mbr), Probe::Readable(ImageFormat::Raw));
}

#[test]
fn qcow2_reads_like_its_raw_source_and_names_what_it_cannot_read() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    let mut bytes = vec![0u8; 4 << 20];
    for (i, b) in bytes.iter_mut().enumerate().skip(1 << 20).take(300_000) {
        *b = (i % 251) as u8;
    }
    std::fs::write(&raw, &bytes).unwrap();
    let qcow = dir.path().join("disk.qcow2");
    let ok = Command::new("qemu-img")
        .args(["convert", "-c", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow)
        .status()
        .unwrap();
    assert!(ok.success());
    let image = open(&qcow).unwrap();
    assert_eq!(image.format, ImageFormat::Qcow2);
    assert_eq!(image.backend.len(), bytes.len() as u64);
    let mut got = vec![0u8; 400_000];
    image.backend.read_at(&mut got, 1_000_000).unwrap();
    assert_eq!(got, bytes[1_000_000..1_400_000]);

    // An overlay reads through its backing file.
    let overlay = dir.path().join("overlay.qcow2");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&qcow)
        .arg(&overlay)
        .status()
        .unwrap();
    assert!(ok.success());
    let image = open(&overlay).unwrap();
    image.backend.read_at(&mut got, 1_000_000).unwrap();
    assert_eq!(got, bytes[1_000_000..1_400_000]);

    // Its backing file gone, the overlay is refused, naming it.
    std::fs::remove_file(&qcow).unwrap();
    let err = open(&overlay).unwrap_err();
    assert!(
        matches!(&err, ImageError::DependencyUnreadable { resolved, .. } if resolved == &qcow),
        "{err}"
    );

    // A truncated header is an error, not a panic.
    let cut = dir.path().join("cut.qcow2");
    std::fs::write(&cut, &std::fs::read(&overlay).unwrap()[..40]).unwrap();
    assert!(matches!(open(&cut), Err(ImageError::Header { .. })));

    // So is a header claiming an absurd L1 table.
    let mut forged = std::fs::read(&overlay).unwrap();
    forged[36..40].copy_from_slice(&0x7fff_ffffu32.to_be_bytes()); // l1_size
    forged[24..32].copy_from_slice(&(1u64 << 60).to_be_bytes()); // size
    let forged_path = dir.path().join("forged.qcow2");
    std::fs::write(&forged_path, &forged).unwrap();
    assert!(open(&forged_path).is_err());

    // Directories and recognised foreign formats get their own errors.
    assert!(matches!(
        open(dir.path()),
        Err(ImageError::IsDirectory { .. })
    ));
    let vmdk = dir.path().join("x.vmdk");
    std::fs::write(&vmdk, b"KDMV\x01\0\0\0").unwrap();
    let err = open(&vmdk).unwrap_err();
    assert!(err.to_string().contains("VMDK"), "{err}");
    assert!(matches!(
        open(&dir.path().join("missing")),
        Err(ImageError::Io { .. })
    ));
}

/// Found by fuzzing (a panic in imago 0.2.6): a version 3 header whose feature name table is
/// not a whole number of 48-byte entries. Refused as a bad header before imago reads it.
#[test]
fn a_short_feature_name_table_is_a_bad_header_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short-table.qcow2");
    std::fs::write(
        &path,
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/qcow2-short-feature-table.bin"
        )),
    )
    .unwrap();
    let err = open(&path).unwrap_err();
    assert!(matches!(err, ImageError::Header { .. }), "{err}");
    assert!(err.to_string().contains("feature name table"), "{err}");
}

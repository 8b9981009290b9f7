//! Appliance scenarios: what the appliance must answer about the disks in
//! [`crate::images::DiskSet`], run the same way in process, under QEMU and under the bundled
//! VMM. Each takes a connected [`Client`].

use std::io::{Read, Write};
use std::time::Duration;

use sha2::{Digest, Sha256};
use vmchannel_proto::client::{Client, ClientError};
use vmchannel_proto::frame;
use vmchannel_proto::{ClientMessage, ErrorKind, FileKind, Target};

use crate::images::{self, ids};

/// The port the appliance serves.
pub const PORT: &str = "org.vmchannel.appliance.0";
/// How long a client waits for one answer.
pub const TIMEOUT: Duration = Duration::from_secs(120);

fn remote_kind<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ErrorKind {
    match r {
        Err(ClientError::Remote(e)) => e.kind,
        other => panic!("expected an error from the appliance, got {other:?}"),
    }
}

/// `/dev/sda` is [`images::DiskSet::debian`]: inspection with applications.
pub fn inspect_debian<S: Read + Write>(c: &mut Client<S>) {
    let oses = c.inspect(true).expect("inspect");
    assert_eq!(oses.len(), 1, "{oses:#?}");
    let os = &oses[0];
    assert_eq!(os.root, "/dev/sda2");
    assert_eq!(os.os_type, "linux");
    assert_eq!(os.distro.as_deref(), Some("debian"));
    assert_eq!((os.major_version, os.minor_version), (12, 5));
    assert_eq!(os.arch.as_deref(), Some("x86_64"));
    assert_eq!(os.hostname.as_deref(), Some("debhost"));
    assert_eq!(os.package_format.as_deref(), Some("deb"));
    assert_eq!(os.package_management.as_deref(), Some("apt"));
    assert_eq!(os.osinfo.as_deref(), Some("debian12"));
    assert!(os.product_name.is_some());
    assert_eq!(
        os.mountpoints,
        vec![
            ("/dev/sda2".to_string(), "/".to_string()),
            ("/dev/sda1".to_string(), "/boot".to_string())
        ]
    );
    let fs: Vec<(&str, &str, Option<&str>)> = os
        .filesystems
        .iter()
        .map(|f| (f.device.as_str(), f.fstype.as_str(), f.uuid.as_deref()))
        .collect();
    assert_eq!(
        fs,
        vec![
            ("/dev/sda1", "ext4", Some(ids::DEBIAN_BOOT_UUID)),
            ("/dev/sda2", "ext4", Some(ids::DEBIAN_ROOT_UUID)),
            ("/dev/sda3", "swap", Some(ids::DEBIAN_SWAP_UUID)),
        ]
    );
    assert_eq!(
        os.filesystems[0].label.as_deref(),
        Some(ids::DEBIAN_BOOT_LABEL)
    );
    let apps: Vec<(&str, u32, &str, &str)> = os
        .applications
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                a.epoch,
                a.version.as_str(),
                a.release.as_str(),
            )
        })
        .collect();
    assert_eq!(
        apps,
        vec![
            ("bash", 0, "5.2.15", "2+b2"),
            ("coreutils", 0, "9.1", "1"),
            ("libc6", 0, "2.36", "9+deb12u4"),
            ("perl-base", 1, "5.36.0", "7"),
        ]
    );
    let bash = &os.applications[0];
    assert_eq!(bash.arch, "amd64");
    assert_eq!(bash.summary, "GNU Bourne Again SHell");
    assert!(bash.description.contains("The long description of bash"));
    // Without applications the list is empty and the rest the same.
    let plain = c.inspect(false).expect("inspect without applications");
    assert!(plain[0].applications.is_empty());
    assert_eq!(plain[0].hostname, os.hostname);
}

/// File queries on the Debian disk: listing, stat, reads, a download through the /boot
/// mount, the guest's sha256, usage, and typed errors.
pub fn files_debian<S: Read + Write>(c: &mut Client<S>) {
    let os = Target::Os("/dev/sda2".into());
    let etc = c.read_dir(&os, "/etc").expect("ls /etc");
    let names: Vec<&str> = etc.iter().map(|e| e.name.as_str()).collect();
    for want in ["os-release", "hostname", "fstab", "debian_version", "hosts"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let hostname = etc.iter().find(|e| e.name == "hostname").unwrap();
    assert_eq!(hostname.stat.kind, FileKind::File);
    assert_eq!(hostname.stat.size, 8);
    assert_eq!(hostname.stat.mode & 0o170000, 0o100000);
    assert_eq!(c.read_file(&os, "/etc/hostname").unwrap(), b"debhost\n");
    assert_eq!(c.read(&os, "/etc/hostname", 3, 3).unwrap(), b"hos");
    assert_eq!(c.read(&os, "/etc/hostname", 100, 3).unwrap(), b"");
    // /bin is a symlink to usr/bin: lstat sees the link, stat follows it.
    let bin = c.stat(&os, "/bin", false).unwrap();
    assert_eq!(bin.kind, FileKind::Symlink);
    assert_eq!(bin.link_target.as_deref(), Some("usr/bin"));
    assert_eq!(c.stat(&os, "/bin/ls", true).unwrap().size, 4096);
    // /boot is the other filesystem, mounted by LABEL= in fstab.
    let boot = c.read_dir(&os, "/boot").unwrap();
    assert!(
        boot.iter().any(|e| e.name == "vmlinuz-6.1.0-18-amd64"),
        "{boot:?}"
    );
    let initrd = images::debian_initrd();
    let mut got = Vec::new();
    let mut progress = Vec::new();
    let (size, sha) = c
        .download(
            &os,
            "/boot/initrd.img-6.1.0-18-amd64",
            &mut got,
            &mut |d, t| progress.push((d, t)),
        )
        .expect("download");
    assert_eq!(size, initrd.len() as u64);
    assert!(got == initrd, "downloaded bytes differ");
    let want: [u8; 32] = Sha256::digest(&initrd).into();
    assert_eq!(sha, want);
    assert_eq!(progress.last(), Some(&(size, size)));
    assert!(progress.len() >= 3, "{progress:?}");
    assert_eq!(
        c.checksum(&os, "/boot/initrd.img-6.1.0-18-amd64").unwrap(),
        want
    );
    // The same file through the device alone.
    let dev = Target::Device("/dev/sda1".into());
    assert_eq!(
        c.stat(&dev, "/initrd.img-6.1.0-18-amd64", false)
            .unwrap()
            .size,
        size
    );
    let usage = c.usage(&dev, "/").unwrap();
    assert_eq!(usage.block_size, 1024 * (usage.block_size / 1024));
    assert!(usage.blocks * usage.block_size <= 16 << 20 && usage.blocks_free < usage.blocks);
    let root_usage = c.usage(&os, "/boot").unwrap();
    assert_eq!(root_usage, usage, "usage of /boot is the boot filesystem's");
    // Errors.
    assert_eq!(
        remote_kind(c.stat(&os, "/etc/nonexistent", false)),
        ErrorKind::NotFound
    );
    assert_eq!(
        remote_kind(c.read_dir(&os, "/etc/hostname")),
        ErrorKind::NotADirectory
    );
    assert_eq!(
        remote_kind(c.read(&os, "/etc", 0, 10)),
        ErrorKind::IsADirectory
    );
    assert_eq!(
        remote_kind(c.read(&os, "etc/hostname", 0, 10)),
        ErrorKind::BadRequest
    );
    assert_eq!(
        remote_kind(c.read(&os, "/etc/hostname", 0, 64 << 20)),
        ErrorKind::TooLarge
    );
    assert_eq!(
        remote_kind(c.read_dir(&Target::Device("/dev/sdz9".into()), "/")),
        ErrorKind::NotFound
    );
    assert_eq!(
        remote_kind(c.read_dir(&Target::Device("/dev/sda3".into()), "/")),
        ErrorKind::Unsupported
    );
    assert_eq!(
        remote_kind(c.read_dir(&Target::Os("/dev/sda1".into()), "/")),
        ErrorKind::NotFound
    );
}

/// Protocol robustness: garbage gets a Garbage report and the session goes on; Sync gets
/// back to a clean state; a download can be cancelled; an oversized frame is refused.
pub fn protocol_recovery<S: Read + Write>(c: &mut Client<S>) {
    let os = Target::Os("/dev/sda2".into());
    c.send_raw(b"this is not a frame at all \x00\x01\x02 VMC")
        .unwrap();
    let skipped = c.resync().expect("resync after garbage");
    assert!(skipped >= 1, "a Garbage report comes first");
    assert_eq!(c.read_file(&os, "/etc/hostname").unwrap(), b"debhost\n");
    // A frame header announcing more than the appliance accepts.
    let mut big = b"VMCH".to_vec();
    big.extend_from_slice(&(64u32 << 20).to_le_bytes());
    c.send_raw(&big).unwrap();
    c.resync().expect("resync after an oversized frame");
    assert_eq!(c.read_file(&os, "/etc/hostname").unwrap(), b"debhost\n");
    // A well-framed payload that does not decode.
    let mut junk = b"VMCH".to_vec();
    junk.extend_from_slice(&5u32.to_le_bytes());
    junk.extend_from_slice(&[0xff; 5]);
    c.send_raw(&junk).unwrap();
    c.resync().unwrap();
    // Cancel a download part-way.
    let e = c
        .download_cancel_after(&os, "/boot/initrd.img-6.1.0-18-amd64", 64 * 1024)
        .expect("cancel");
    assert_eq!(e.kind, ErrorKind::Cancelled);
    c.resync().unwrap();
    assert_eq!(c.read_file(&os, "/etc/hostname").unwrap(), b"debhost\n");
    // A Cancel for an id that is not in flight is ignored: nothing comes back before Synced.
    let frame = frame::encode(&ClientMessage::Cancel { id: 424242 }).unwrap();
    c.send_raw(&frame).unwrap();
    assert_eq!(c.resync().unwrap(), 0);
}

/// `/dev/sda` is [`images::DiskSet::multi`], `/dev/sdb` xfs, `/dev/sdc` btrfs: every type
/// recognised, two operating systems on one disk.
pub fn multi_disk<S: Read + Write>(c: &mut Client<S>) {
    let devices = c.list_devices().unwrap();
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "/dev/sda",
            "/dev/sda1",
            "/dev/sda2",
            "/dev/sda3",
            "/dev/sda4",
            "/dev/sda5",
            "/dev/sda6",
            "/dev/sda7",
            "/dev/sdb",
            "/dev/sdc"
        ]
    );
    assert_eq!(devices[0].table.as_deref(), Some("mbr"));
    assert_eq!(devices[4].partition.as_ref().unwrap().type_id, "05");
    let fs = c.list_filesystems().unwrap();
    let got: Vec<(&str, &str, Option<&str>, Option<&str>)> = fs
        .iter()
        .map(|f| {
            (
                f.device.as_str(),
                f.fstype.as_str(),
                f.label.as_deref(),
                f.uuid.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("/dev/sda1", "ext4", None, Some(ids::DEBIAN_ROOT_UUID)),
            ("/dev/sda2", "ext4", None, Some(ids::ALPINE_UUID)),
            ("/dev/sda3", "vfat", Some("DATA"), Some("CAFE-F00D")),
            (
                "/dev/sda5",
                "swap",
                Some("swap2"),
                Some(ids::DEBIAN_SWAP_UUID)
            ),
            (
                "/dev/sda6",
                "LVM2_member",
                None,
                Some("AbCdEf-0123-4567-89Gh-IjKl-MnOp-QrStUv")
            ),
            (
                "/dev/sda7",
                "crypto_LUKS",
                Some("secret"),
                Some(images::LUKS_UUID)
            ),
            ("/dev/sdb", "xfs", Some("xfsdata"), fs[6].uuid.as_deref()),
            ("/dev/sdc", "btrfs", Some("btrdata"), fs[7].uuid.as_deref()),
        ]
    );
    assert!(fs[6].uuid.is_some() && fs[7].uuid.is_some());
    let oses = c.inspect(true).unwrap();
    let roots: Vec<(&str, Option<&str>)> = oses
        .iter()
        .map(|o| (o.root.as_str(), o.distro.as_deref()))
        .collect();
    assert_eq!(
        roots,
        vec![
            ("/dev/sda1", Some("debian")),
            ("/dev/sda2", Some("alpinelinux"))
        ]
    );
    let alpine = &oses[1];
    assert_eq!((alpine.major_version, alpine.minor_version), (3, 19));
    assert_eq!(alpine.osinfo.as_deref(), Some("alpinelinux3.19"));
    assert_eq!(alpine.package_format.as_deref(), Some("apk"));
    let apk: Vec<(&str, &str, &str)> = alpine
        .applications
        .iter()
        .map(|a| (a.name.as_str(), a.version.as_str(), a.release.as_str()))
        .collect();
    assert_eq!(
        apk,
        vec![
            ("alpine-baselayout", "3.4.3", "2"),
            ("busybox", "1.36.1", "15"),
            ("musl", "1.2.4_git20230717", "4")
        ]
    );
}

/// `/dev/sda` Ubuntu (GPT, aarch64, ESP), `/dev/sdb` Alpine on the whole disk, `/dev/sdc`
/// the split-/usr Fedora.
pub fn three_systems<S: Read + Write>(c: &mut Client<S>) {
    let oses = c.inspect(false).unwrap();
    let roots: Vec<(&str, Option<&str>)> = oses
        .iter()
        .map(|o| (o.root.as_str(), o.distro.as_deref()))
        .collect();
    assert_eq!(
        roots,
        vec![
            ("/dev/sda2", Some("ubuntu")),
            ("/dev/sdb", Some("alpinelinux")),
            ("/dev/sdc1", Some("fedora"))
        ]
    );
    let ubuntu = &oses[0];
    assert_eq!((ubuntu.major_version, ubuntu.minor_version), (22, 4));
    assert_eq!(ubuntu.arch.as_deref(), Some("aarch64"));
    assert_eq!(ubuntu.osinfo.as_deref(), Some("ubuntu22.04"));
    assert_eq!(ubuntu.product_name.as_deref(), Some("Ubuntu 22.04.4 LTS"));
    assert!(
        ubuntu
            .mountpoints
            .contains(&("/dev/sda1".into(), "/boot/efi".into())),
        "{:?}",
        ubuntu.mountpoints
    );
    let alpine = &oses[1];
    assert_eq!(
        alpine.arch.as_deref(),
        Some("x86_64"),
        "through the /bin/sh -> /bin/busybox link"
    );
    assert_eq!(alpine.hostname.as_deref(), Some("alpine-vm"));
    let fedora = &oses[2];
    assert_eq!(fedora.major_version, 39);
    assert_eq!(
        fedora.arch.as_deref(),
        Some("x86_64"),
        "/bin -> usr/bin on the /usr filesystem"
    );
    assert_eq!(fedora.package_format.as_deref(), Some("rpm"));
    assert!(
        fedora
            .mountpoints
            .contains(&("/dev/sdc2".into(), "/usr".into())),
        "{:?}",
        fedora.mountpoints
    );
    // Files across the /usr mount.
    let os = Target::Os("/dev/sdc1".into());
    let release = c.read_file(&os, "/etc/os-release").unwrap();
    assert!(String::from_utf8_lossy(&release).contains("Fedora Linux 39"));
}

/// `/dev/sda` is [`images::DiskSet::odd`]: loops and absurd sizes inside a filesystem.
pub fn odd_files<S: Read + Write>(c: &mut Client<S>) {
    let os = Target::Os("/dev/sda".into());
    assert_eq!(
        remote_kind(c.stat(&os, "/etc/loop", true)),
        ErrorKind::BadRequest
    );
    assert_eq!(
        c.stat(&os, "/etc/loop", false).unwrap().kind,
        FileKind::Symlink
    );
    assert_eq!(
        remote_kind(c.read_file(&os, "/etc/loop/x")),
        ErrorKind::BadRequest
    );
    // A directory linked into itself lists like any directory, however deep one goes.
    let deep = "/etc/selfloop/selfloop/selfloop/selfloop";
    assert!(
        c.read_dir(&os, deep)
            .unwrap()
            .iter()
            .any(|e| e.name == "hostname")
    );
    // A file claiming 1 TiB: stat says so, reads far in are holes, and a checksum or
    // download of it can be cancelled instead of hanging the appliance.
    let motd = c.stat(&os, "/etc/motd", false).unwrap();
    assert_eq!(motd.size, 1 << 40);
    assert_eq!(
        c.read(&os, "/etc/motd", 1 << 39, 16).unwrap(),
        vec![0u8; 16]
    );
    let id = c
        .send_request(vmchannel_proto::Request::Checksum {
            target: os.clone(),
            path: "/etc/motd".into(),
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    c.cancel(id).unwrap();
    match c.wait(id) {
        Err(ClientError::Remote(e)) => assert_eq!(e.kind, ErrorKind::Cancelled),
        other => panic!("checksum of a 1 TiB file: {other:?}"),
    }
    let e = c
        .download_cancel_after(&os, "/etc/motd", 256 * 1024)
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert_eq!(c.read_file(&os, "/etc/hostname").unwrap(), b"alpine-vm\n");
}

/// Hostile disks: the appliance answers with errors or empty results and keeps serving.
pub fn hostile<S: Read + Write>(c: &mut Client<S>) {
    // Whatever the disks hold, these must answer (possibly with errors), never hang or kill
    // the appliance.
    let _ = c.list_devices().expect("list devices");
    let _ = c.list_filesystems().expect("list filesystems");
    let _ = c.inspect(true).expect("inspect");
    for fs in c.list_filesystems().unwrap() {
        let t = Target::Device(fs.device.clone());
        match c.read_dir(&t, "/") {
            Ok(_) | Err(ClientError::Remote(_)) => {}
            Err(e) => panic!("{}: {e}", fs.device),
        }
    }
}

/// Where a session is cut.
#[derive(Clone, Copy, Debug)]
pub enum Cut {
    /// After sending this many bytes of the request's frame.
    Sending(usize),
    /// After receiving this many bytes of the answer (all of a shorter one).
    Receiving(usize),
}

/// The cut points [`cut_sessions`] tries for a request frame of `len` bytes: inside the
/// magic, the length, the payload, and at many depths of the answer (inside a first frame's
/// header and payload, several frames in, deep in a stream). `dense` adds more of them.
pub fn cut_points(len: usize, dense: bool) -> Vec<Cut> {
    let mut sending = vec![1, 3, 4, 7, 8, len / 2, len - 1];
    let mut receiving = vec![0, 1, 4, 5, 8, 9, 100, 70_001, 300_000];
    if dense {
        sending.extend([2, 5, 6, 9, len - 2]);
        receiving.extend([2, 7, 64, 4_097, 65_545, 65_546, 140_000, 1_000_003]);
    }
    sending.retain(|&n| n > 0 && n < len);
    sending.sort_unstable();
    sending.dedup();
    receiving.sort_unstable();
    let mut cuts: Vec<Cut> = sending.into_iter().map(Cut::Sending).collect();
    cuts.extend(receiving.into_iter().map(Cut::Receiving));
    cuts
}

/// Sessions cut at every point of [`cut_points`] of every streamed and one-shot request
/// (inspect, read, download, checksum) on [`images::DiskSet::debian`], each followed by a new
/// session that must start cleanly: the handshake completes, and its requests are answered
/// with nothing of the old session among them. `connect` opens a new connection to the
/// appliance's port; `settle(n)` runs after the n-th hang-up (wait there for the device to
/// see it, or not, to cover both orders).
pub fn cut_sessions(
    mut connect: impl FnMut() -> std::os::unix::net::UnixStream,
    mut settle: impl FnMut(usize),
    dense: bool,
) {
    use vmchannel_proto::{MAX_READ, Request};
    let boot = Target::Device("/dev/sda1".into());
    let initrd = "/initrd.img-6.1.0-18-amd64";
    let requests = [
        Request::Inspect { applications: true },
        Request::Read {
            target: boot.clone(),
            path: initrd.into(),
            offset: 0,
            len: MAX_READ,
        },
        Request::Download {
            target: boot.clone(),
            path: initrd.into(),
        },
        Request::Checksum {
            target: boot.clone(),
            path: initrd.into(),
        },
    ];
    let mut round = 0;
    for request in requests {
        let bytes = frame::encode(&ClientMessage::Request {
            id: 4242,
            request: request.clone(),
        })
        .unwrap();
        for cut in cut_points(bytes.len(), dense) {
            let stream = connect();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut c = Client::connect(stream)
                .unwrap_or_else(|e| panic!("round {round} ({request:?}, {cut:?}): handshake: {e}"));
            match cut {
                Cut::Sending(n) => c.send_raw(&bytes[..n]).unwrap(),
                Cut::Receiving(n) => {
                    c.send_raw(&bytes).unwrap();
                    // Reads up to n bytes; an answer shorter than that ends with a quiet
                    // stream.
                    let s = c.stream();
                    s.set_read_timeout(Some(Duration::from_millis(300)))
                        .unwrap();
                    let mut got = 0;
                    let mut buf = vec![0u8; 64 * 1024];
                    while got < n {
                        let want = buf.len().min(n - got);
                        match s.read(&mut buf[..want]) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => got += k,
                        }
                    }
                }
            }
            drop(c);
            settle(round);
            let stream = connect();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut c = Client::connect(stream).unwrap_or_else(|e| {
                panic!("round {round} ({request:?}, {cut:?}): the next handshake: {e}")
            });
            let before = c.passed_over();
            assert_eq!(
                c.read_file(&boot, "/grub/grub.cfg").unwrap(),
                b"set default=0\n",
                "round {round} ({request:?}, {cut:?})"
            );
            assert_eq!(c.list_devices().unwrap().len(), 4);
            assert_eq!(
                c.passed_over(),
                before,
                "round {round} ({request:?}, {cut:?}): the old session leaked into the new one"
            );
            drop(c);
            settle(round);
            round += 1;
        }
    }
}

//! Faults end to end through `vmch`, under QEMU (TCG) and the bundled VMM: reads that fail for
//! a range of sectors, an image truncated or replaced while it is read, a guest that stops
//! answering, signals at any moment, and `-j 8` over a mix of good and bad images. Each
//! checks that nothing hangs, the status says what happened, and nothing is left behind (VM
//! processes, temporary directories, partial downloads).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmch::launch::{Appliance, Backend, LaunchOptions};
use vmchannel_proto::Target;
use vmchannel_proto::client::ClientError;
use vmchannel_tests::hosts::{require_kvm, require_qemu};
use vmchannel_tests::images::{self, DiskSet};
use vmchannel_tests::procs::{assert_status as status, mentioning as processes_mentioning};

const QEMU: &[&str] = &["--backend", "qemu", "--accel", "tcg"];
const VMM: &[&str] = &["--backend", "vmm"];
const INITRD: &str = "/initrd.img-6.1.0-18-amd64";

fn disks() -> &'static DiskSet {
    images::shared()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `vmch SUB [backend] ARGS` with its temporary files in `tmp`.
fn vmch_in(tmp: &Path, sub: &str, backend: &[&str], args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmch"));
    c.env("TMPDIR", tmp).arg(sub).args(backend).args(args);
    c
}

/// Waits (up to 10 s) until no process mentions `tmp` and `tmp` is empty.
#[track_caller]
fn assert_nothing_left(tmp: &Path, context: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = processes_mentioning(p(tmp));
        let files: Vec<_> = std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        if procs.is_empty() && files.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{context}: left behind: processes {procs:?}, files {files:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the initrd's bytes start in the raw Debian image.
fn initrd_offset(raw: &[u8]) -> usize {
    let needle = &images::debian_initrd()[..4096];
    raw.windows(needle.len())
        .position(|w| w == needle)
        .expect("the initrd is in the image")
}

/// The Debian disk as qcow2 whose clusters holding the initrd's first bytes claim to be
/// compressed, with the qcow2 header as their "compressed data": every read of those sectors
/// fails to decompress (QEMU and imago both answer an I/O error), everything else reads. QEMU
/// refuses just those entries; imago refuses the whole L2 table holding them, so the clusters
/// are small (4 KiB: a table maps 2 MiB, all within /boot).
fn qcow2_with_bad_sectors(dir: &Path) -> PathBuf {
    let path = dir.join("bad-sectors.qcow2");
    let ok = Command::new("qemu-img")
        .args(["convert", "-O", "qcow2", "-o", "cluster_size=4096"])
        .arg(&disks().debian)
        .arg(&path)
        .status()
        .expect("qemu-img runs");
    assert!(ok.success());
    let raw = std::fs::read(&disks().debian).unwrap();
    // At the file's start, so that the error comes at once (a 3 MiB read takes minutes under
    // kvm-pvm, where the guest's CPL0 code is emulated).
    let first = initrd_offset(&raw) >> 12;
    let mut q = std::fs::read(&path).unwrap();
    let be64 = |b: &[u8], at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
    let l1 = be64(&q, 40) as usize;
    const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
    for cluster in first..first + 4 {
        // 512 L2 entries per 4 KiB table.
        let l2 = (be64(&q, l1 + 8 * (cluster / 512)) & OFFSET_MASK) as usize;
        assert_ne!(l2, 0, "the cluster is allocated");
        let at = l2 + 8 * (cluster % 512);
        let entry = be64(&q, at);
        assert_ne!(entry & OFFSET_MASK, 0, "the cluster is allocated");
        // Compressed (bit 62), one sector of "compressed data" at offset 0.
        q[at..at + 8].copy_from_slice(&(1u64 << 62).to_be_bytes());
    }
    std::fs::write(&path, q).unwrap();
    path
}

fn bad_sector_checks(backend: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let image = qcow2_with_bad_sectors(dir.path());
    let dev = ["--device", "/dev/sda1"];
    // Inspection reads metadata only: unharmed.
    let out = vmch_in(
        tmp.path(),
        "inspect",
        backend,
        &["--no-applications", p(&image)],
    )
    .output()
    .unwrap();
    status(&out, 0);
    // Files elsewhere on the disk read.
    let out = vmch_in(tmp.path(), "cat", backend, &[p(&image), "/etc/hostname"])
        .output()
        .unwrap();
    status(&out, 0);
    assert_eq!(out.stdout, b"debhost\n");
    // The file over the bad sectors: an I/O error from the disk, status 4, at once.
    for sub in ["cat", "download"] {
        let dest = dir.path().join("initrd");
        let mut args = dev.to_vec();
        args.extend([p(&image), INITRD]);
        if sub == "download" {
            args.push(p(&dest));
        }
        let started = Instant::now();
        let out = vmch_in(tmp.path(), sub, backend, &args).output().unwrap();
        status(&out, 4);
        assert!(
            text(&out.stderr).contains("I/O error"),
            "{sub}: {}",
            text(&out.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{sub} took long"
        );
        assert!(!dest.exists(), "a failed download leaves no file");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".vmch-download-")
            })
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    assert_nothing_left(tmp.path(), "bad sectors");
}

#[test]
fn reads_failing_for_a_range_of_sectors_under_qemu() {
    if !require_qemu("reads_failing_for_a_range_of_sectors_under_qemu") {
        return;
    }
    bad_sector_checks(QEMU);
}

#[test]
fn reads_failing_for_a_range_of_sectors_under_the_vmm() {
    if !require_kvm("reads_failing_for_a_range_of_sectors_under_the_vmm") {
        return;
    }
    bad_sector_checks(VMM);
}

fn options(backend: Backend) -> LaunchOptions {
    LaunchOptions {
        backend,
        accel: vmch::launch::Accel::Tcg,
        timeout: Duration::from_secs(60),
        ..LaunchOptions::default()
    }
}

/// The image truncated, then replaced, under a running appliance.
fn truncate_and_replace_checks(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("debian.img");
    std::fs::copy(&disks().debian, &image).unwrap();
    let boot = Target::Device("/dev/sda1".into());
    let initrd = images::debian_initrd();

    // Replaced: the appliance keeps reading the file it opened, never a mix of two.
    let mut a = Appliance::launch(std::slice::from_ref(&image), &options(backend)).unwrap();
    assert_eq!(a.client().list_devices().unwrap().len(), 4);
    let other = dir.path().join("other.img");
    std::fs::write(&other, vec![0x5a; 1 << 20]).unwrap();
    std::fs::rename(&other, &image).unwrap();
    assert_eq!(
        a.client().read_file(&boot, "/grub/grub.cfg").unwrap(),
        b"set default=0\n"
    );
    drop(a);

    // Truncated below the initrd while the appliance runs.
    std::fs::copy(&disks().debian, &image).unwrap();
    let raw = std::fs::read(&image).unwrap();
    // Just past the initrd's first block: its first read already fails (a long read would
    // take minutes under kvm-pvm).
    let cut = initrd_offset(&raw) + 4096;
    let mut a = Appliance::launch(std::slice::from_ref(&image), &options(backend)).unwrap();
    assert_eq!(a.client().list_devices().unwrap().len(), 4);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    let started = Instant::now();
    let got = a.client().read_file(&boot, INITRD);
    assert!(started.elapsed() < Duration::from_secs(50), "the read hung");
    match backend {
        // The bundled VMM answers the guest an I/O error: the disk cannot be read.
        Backend::Vmm => match &got {
            Err(e @ ClientError::Remote(_)) => {
                assert_eq!(
                    vmch::session::client_status(e),
                    vmch::exit::UNREADABLE_IMAGE
                );
                assert!(e.to_string().contains("I/O error"), "{e}");
            }
            other => panic!(
                "expected an I/O error, got {:?}",
                other.as_ref().map(Vec::len)
            ),
        },
        // QEMU reads past the end of a raw file as zeros (its file driver pads short reads):
        // no error, but not the old bytes either, and no hang.
        Backend::Qemu => {
            if let Ok(bytes) = &got {
                assert_ne!(bytes, &initrd);
                assert!(bytes[8192..].iter().all(|&b| b == 0));
            }
        }
    }
    // The appliance still answers.
    assert_eq!(a.client().list_devices().unwrap().len(), 4);
}

#[test]
fn an_image_truncated_or_replaced_under_qemu() {
    if !require_qemu("an_image_truncated_or_replaced_under_qemu") {
        return;
    }
    truncate_and_replace_checks(Backend::Qemu);
}

#[test]
fn an_image_truncated_or_replaced_under_the_vmm() {
    if !require_kvm("an_image_truncated_or_replaced_under_the_vmm") {
        return;
    }
    truncate_and_replace_checks(Backend::Vmm);
}

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would still be "Z".
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a process id of a child of this test.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

/// A guest that stops answering (its VM process stopped with SIGSTOP): the next reply times
/// out, the VM is killed, the status is 5.
fn stalled_guest_checks(backend: Backend) {
    let mut opts = options(backend);
    opts.timeout = Duration::from_secs(3);
    let mut a = Appliance::launch(std::slice::from_ref(&disks().debian), &opts).unwrap();
    let pid = a.pid();
    signal(pid, libc::SIGSTOP);
    let started = Instant::now();
    let err = a.client().inspect(false).unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    assert_eq!(
        vmch::session::client_status(&err),
        vmch::exit::APPLIANCE_FAILED,
        "{err}"
    );
    drop(a);
    assert!(!alive(pid), "the stopped VM was killed");
}

#[test]
fn a_guest_that_stops_answering_times_out_under_qemu() {
    if !require_qemu("a_guest_that_stops_answering_times_out_under_qemu") {
        return;
    }
    stalled_guest_checks(Backend::Qemu);
}

#[test]
fn a_guest_that_stops_answering_times_out_under_the_vmm() {
    if !require_kvm("a_guest_that_stops_answering_times_out_under_the_vmm") {
        return;
    }
    stalled_guest_checks(Backend::Vmm);
    // Through the command: --timeout fires, status 5, nothing left.
    let tmp = tempfile::tempdir().unwrap();
    let child = vmch_in(
        tmp.path(),
        "inspect",
        VMM,
        &["--timeout", "3", p(&disks().debian)],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Stop the VM as soon as it exists.
    let deadline = Instant::now() + Duration::from_secs(20);
    let vm = loop {
        if let Some(&pid) = processes_mentioning(p(tmp.path())).first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no VM started");
        std::thread::sleep(Duration::from_millis(5));
    };
    signal(vm, libc::SIGSTOP);
    let out = child.wait_with_output().unwrap();
    status(&out, 5);
    assert!(!alive(vm));
    assert_nothing_left(tmp.path(), "timeout");
}

/// SIGINT or SIGTERM to `vmch` alone, at several moments of a run (before the VM exists,
/// while it boots, during the work): status 128 + the signal, or 0 if the run was already
/// over; in every case no VM process, temporary directory or partial download is left.
fn signal_checks(backend: &[&str], delays_ms: &[u64]) {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = dir.path().join("initrd");
    let image = p(&disks().debian);
    // Runs the handler stopped (128 + the signal): some must be, or nothing was tested.
    let mut handled = 0;
    for (i, &delay) in delays_ms.iter().enumerate() {
        let (sig, name) = if i % 2 == 0 {
            (libc::SIGTERM, "SIGTERM")
        } else {
            (libc::SIGINT, "SIGINT")
        };
        for (sub, args) in [
            ("inspect", vec![image]),
            (
                "download",
                vec!["--device", "/dev/sda1", image, INITRD, p(&dest)],
            ),
        ] {
            let child = vmch_in(tmp.path(), sub, backend, &args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay));
            signal(child.id(), sig);
            let out = child.wait_with_output().unwrap();
            let context = format!("{sub}, {name} after {delay} ms");
            // Killed by the signal itself when it came before vmch installed its handlers
            // (nothing existed yet), else 128 + the signal, or 0 when the run was over.
            use std::os::unix::process::ExitStatusExt;
            let code = out.status.code();
            assert!(
                code == Some(128 + sig) || code == Some(0) || out.status.signal() == Some(sig),
                "{context}: {:?}\n{}",
                out.status,
                text(&out.stderr)
            );
            handled += usize::from(code == Some(128 + sig));
            assert_nothing_left(tmp.path(), &context);
            if code != Some(0) {
                assert!(!dest.exists(), "{context}: a download was left");
            }
            let _ = std::fs::remove_file(&dest);
            let partial: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
            assert!(partial.is_empty(), "{context}: {partial:?}");
        }
    }
    assert!(
        handled >= 2,
        "only {handled} runs were stopped by vmch's handler"
    );
    // `vmch cat` into a pipe nobody reads: it blocks writing the file out, and a signal must
    // still end it at once, with nothing left.
    let mut child = vmch_in(
        tmp.path(),
        "cat",
        backend,
        &["--device", "/dev/sda1", image, INITRD],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_mentioning(p(tmp.path())).is_empty() {
        assert!(Instant::now() < deadline, "no VM started");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(1500));
    signal(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    let ended = loop {
        if let Some(ended) = child.try_wait().unwrap() {
            break ended;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vmch cat went on for 5 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ended.code(), Some(128 + libc::SIGTERM), "{ended:?}");
    assert_nothing_left(tmp.path(), "cat into a stalled pipe");
    // SIGKILL leaves no chance to clean up: the VM still dies (its parent-death signal) and
    // the next vmch removes the dead one's temporary directory.
    let mut child = vmch_in(tmp.path(), "inspect", backend, &[image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_mentioning(p(tmp.path())).is_empty() {
        assert!(Instant::now() < deadline, "no VM started");
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_mentioning(p(tmp.path())).is_empty() {
        assert!(Instant::now() < deadline, "the VM outlived a killed vmch");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = vmch_in(
        tmp.path(),
        "inspect",
        backend,
        &["--no-applications", image],
    )
    .output()
    .unwrap();
    status(&out, 0);
    assert_nothing_left(tmp.path(), "after SIGKILL and another run");
}

#[test]
fn signals_at_any_moment_leave_nothing_behind_under_qemu() {
    if !require_qemu("signals_at_any_moment_leave_nothing_behind_under_qemu") {
        return;
    }
    signal_checks(QEMU, &[0, 5, 20, 60, 120, 250]);
}

#[test]
fn signals_at_any_moment_leave_nothing_behind_under_the_vmm() {
    if !require_kvm("signals_at_any_moment_leave_nothing_behind_under_the_vmm") {
        return;
    }
    signal_checks(VMM, &[0, 10, 100, 500, 1500]);
}

/// `-j 8` over good, corrupt, unreadable and hostile images: one line each, the rest finish.
fn parallel_mix_checks(backend: &[&str]) {
    let d = disks();
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.img");
    let looping = dir.path().join("loop.qcow2");
    let ok = Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-u",
            "-F",
            "qcow2",
            "-b",
            "loop.qcow2",
        ])
        .arg(&looping)
        .arg("64M")
        .status()
        .unwrap();
    assert!(ok.success());
    let vmdk = dir.path().join("disk.vmdk");
    std::fs::write(&vmdk, b"KDMV\x01\0\0\0").unwrap();
    let mut images: Vec<(PathBuf, &str)> = vec![
        (d.debian.clone(), "ok"),
        (d.alpine.clone(), "ok"),
        (d.ubuntu.clone(), "ok"),
        (missing, "unreadable-image"),
        (looping, "unreadable-image"),
        (vmdk, "unreadable-image"),
        (dir.path().to_owned(), "unreadable-image"),
    ];
    for h in &d.hostile {
        images.push((h.clone(), "any"));
    }
    let mut args = vec!["-j", "8", "--no-applications"];
    args.extend(images.iter().map(|(i, _)| p(i)));
    let out = vmch_in(tmp.path(), "inspect", backend, &args)
        .output()
        .unwrap();
    // The worst status: an unreadable image.
    status(&out, 4);
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), images.len(), "{}", text(&out.stdout));
    for (image, expect) in &images {
        let line = lines
            .iter()
            .find(|v| v["image"] == p(image))
            .unwrap_or_else(|| panic!("no line for {}", image.display()));
        match *expect {
            "ok" => assert!(line["operatingsystems"][0]["root"].is_string(), "{line}"),
            "any" => assert!(
                line.get("operatingsystems").is_some() || line["error"]["status"].is_u64(),
                "{line}"
            ),
            kind => assert_eq!(line["error"]["kind"], kind, "{line}"),
        }
    }
    assert_nothing_left(tmp.path(), "-j 8");
}

#[test]
fn parallel_mix_of_good_and_bad_images_under_qemu() {
    if !require_qemu("parallel_mix_of_good_and_bad_images_under_qemu") {
        return;
    }
    parallel_mix_checks(QEMU);
}

#[test]
fn parallel_mix_of_good_and_bad_images_under_the_vmm() {
    if !require_kvm("parallel_mix_of_good_and_bad_images_under_the_vmm") {
        return;
    }
    parallel_mix_checks(VMM);
}

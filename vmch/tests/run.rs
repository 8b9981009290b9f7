//! `vmch run` end to end under KVM: self tests, power-off, crashes, the one-line error without
//! KVM, the echo scenarios the QEMU tests also pass, socket permissions, Ctrl-C, and a disk
//! image that is attached read-only and unchanged after the run.
//!
//! The guest CPU is slow under this machine's nested KVM (tens of KiB/s of echo), so the echo
//! payloads are smaller than under QEMU TCG; the scenarios are the same code.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use vmchannel_tests::echo::{Rng, checksum, echo};
use vmchannel_tests::hosts::require_kvm;
use vmchannel_tests::scenarios;
use vmchannel_tests::vmch::{VmchOptions, VmchVm, run_to_end};

const T: Duration = Duration::from_secs(120);
const STARTED: &str = "echo agent started";

fn vmch() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vmch"))
}

fn echo_name(i: usize) -> String {
    format!("org.vmchannel.echo.{i}")
}

#[test]
fn selftest_passes_and_exits_zero() {
    if !require_kvm("selftest_passes_and_exits_zero") {
        return;
    }
    let (status, serial, stderr) =
        run_to_end(vmch(), &["--cmdline", "selftest", "--boot-time"], T).unwrap();
    assert_eq!(status, Some(0), "{serial}\n{stderr}");
    assert!(serial.contains("passed, 0 failed"), "{serial}");
    assert!(
        stderr.contains("guest ready"),
        "--boot-time said nothing: {stderr}"
    );
}

#[test]
fn a_kernel_panic_exits_35() {
    if !require_kvm("a_kernel_panic_exits_35") {
        return;
    }
    // No command line makes a self test fail on purpose; a kernel panic ends the same way a
    // failed self-test run does: debug-exit 0x11, QEMU's status 35.
    let (status, serial, _) = run_to_end(vmch(), &["--cmdline", "crash=panic"], T).unwrap();
    assert_eq!(status, Some(35), "{serial}");
    assert!(serial.contains("deliberate panic"), "{serial}");
}

#[test]
fn a_guest_without_work_powers_off_through_acpi() {
    if !require_kvm("a_guest_without_work_powers_off_through_acpi") {
        return;
    }
    let (status, serial, stderr) = run_to_end(vmch(), &[], T).unwrap();
    assert_eq!(status, Some(0), "{serial}\n{stderr}");
    assert!(serial.contains("powering off"), "{serial}");
    assert!(!serial.contains("ACPI:"), "ACPI tables not used: {serial}");
}

#[test]
fn a_triple_fault_prints_the_registers_and_fails() {
    if !require_kvm("a_triple_fault_prints_the_registers_and_fails") {
        return;
    }
    let (status, serial, stderr) = run_to_end(vmch(), &["--cmdline", "crash=triple"], T).unwrap();
    assert_eq!(status, Some(vmm::EXIT_GUEST_CRASH), "{serial}\n{stderr}");
    // Real KVM reports KVM_EXIT_SHUTDOWN; the nested KVM here an internal error.
    assert!(stderr.contains("guest crashed"), "{stderr}");
    assert!(
        stderr.contains("triple fault") || stderr.contains("KVM internal error"),
        "{stderr}"
    );
    assert!(
        stderr.contains("RIP=") && stderr.contains("CR3="),
        "{stderr}"
    );
}

#[test]
fn without_kvm_it_says_so_in_one_line() {
    // Needs no KVM: that is the point.
    let (status, _, stderr) = run_to_end(vmch(), &["--kvm-device", "/nonexistent/kvm"], T).unwrap();
    assert_eq!(status, Some(vmm::EXIT_VMM_ERROR));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("KVM is not available: /nonexistent/kvm"),
        "{stderr}"
    );
}

#[test]
fn bad_kernels_and_ports_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"definitely not an ELF file, just text....").unwrap();
    let (status, _, stderr) = run_to_end(vmch(), &["--kernel", junk.to_str().unwrap()], T).unwrap();
    if require_kvm("bad_kernels_and_ports_are_refused_clearly") {
        assert_eq!(status, Some(vmm::EXIT_VMM_ERROR), "{stderr}");
        assert!(stderr.contains("loading kernel"), "{stderr}");
    }
    let (status, _, stderr) = run_to_end(vmch(), &["--port", "name=x,colour=red"], T).unwrap();
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown port property \"colour\""),
        "{stderr}"
    );
}

#[test]
fn four_ports_echo_random_payloads_at_once() {
    if !require_kvm("four_ports_echo_random_payloads_at_once") {
        return;
    }
    let names: Vec<String> = (0..4).map(echo_name).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let vm = VmchVm::start(vmch(), &refs, &VmchOptions::default()).unwrap();
    scenarios::ports_echo_at_once(&vm, &names, 16 << 10, T);
}

#[test]
fn host_disconnect_and_reconnect() {
    if !require_kvm("host_disconnect_and_reconnect") {
        return;
    }
    let name = "org.vmchannel.echo.r";
    let vm = VmchVm::start(vmch(), &[name], &VmchOptions::default()).unwrap();
    scenarios::disconnect_and_reconnect(&vm, name, 8 << 10, T, 0);
}

#[test]
fn an_unread_port_does_not_stall_the_others() {
    if !require_kvm("an_unread_port_does_not_stall_the_others") {
        return;
    }
    let names = [echo_name(0), echo_name(1)];
    // Small caps on both sides so the stalled port backs up after a few hundred KiB (the
    // socket buffers hold most of that); 3 MiB cannot fit, however fast the guest echoes.
    let options = VmchOptions {
        port_props: "byte_limit=16K,guest_byte_limit=16K".into(),
        ..VmchOptions::default()
    };
    let vm = VmchVm::start(vmch(), &[&names[0], &names[1]], &options).unwrap();
    scenarios::unread_port_does_not_stall_others(&vm, [&names[0], &names[1]], 3 << 20, 16 << 10, T);
}

#[test]
fn sockets_are_private_and_ctrl_c_cleans_up() {
    if !require_kvm("sockets_are_private_and_ctrl_c_cleans_up") {
        return;
    }
    let name = echo_name(0);
    let mut vm = VmchVm::start(vmch(), &[&name], &VmchOptions::default()).unwrap();
    let socket = vm.socket(&name).unwrap().to_path_buf();
    let s = vm.connect(&name).unwrap();
    assert_eq!(echo(&s, b"ping", T).unwrap(), b"ping");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    vm.signal("INT");
    let status = vm.wait(T).expect("vmch exits on SIGINT");
    assert_eq!(status.code(), Some(130), "{}", vm.stderr());
    assert!(!socket.exists(), "the socket file was left behind");
}

#[test]
fn the_disk_is_attached_read_only_and_left_unchanged() {
    if !require_kvm("the_disk_is_attached_read_only_and_left_unchanged") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    let data = Rng::new(42).bytes(4 << 20);
    std::fs::write(&image, &data).unwrap();
    let before = std::fs::metadata(&image).unwrap().modified().unwrap();
    let port = format!(
        "name=unserved,socket={}",
        dir.path().join("p.sock").display()
    );
    let (status, serial, stderr) = run_to_end(
        vmch(),
        &[
            "--cmdline",
            "lspci",
            "--disk",
            image.to_str().unwrap(),
            "--port",
            &port,
        ],
        T,
    )
    .unwrap();
    assert_eq!(status, Some(0), "{serial}\n{stderr}");
    // The guest sees a modern virtio-blk function beside the console.
    assert!(serial.contains("1af4:1042"), "{serial}");
    assert!(serial.contains("1af4:1043"), "{serial}");
    let after = std::fs::read(&image).unwrap();
    assert_eq!(checksum(&after), checksum(&data), "the image changed");
    assert_eq!(
        std::fs::metadata(&image).unwrap().modified().unwrap(),
        before
    );
    // A missing image is a clear error, not a guest without its disk.
    let (status, _, stderr) = run_to_end(vmch(), &["--disk", "/nonexistent/disk.img"], T).unwrap();
    assert_eq!(status, Some(vmm::EXIT_VMM_ERROR), "{stderr}");
    assert!(stderr.contains("/nonexistent/disk.img"), "{stderr}");
}

#[test]
fn thirty_ports_at_qemus_max_ports_all_echo() {
    if !require_kvm("thirty_ports_at_qemus_max_ports_all_echo") {
        return;
    }
    let names: Vec<String> = (1..31).map(echo_name).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let options = VmchOptions {
        max_ports: Some(31),
        ..VmchOptions::default()
    };
    let vm = VmchVm::start(vmch(), &refs, &options).unwrap();
    vm.wait_for_log(STARTED, 30, T).unwrap();
    std::thread::scope(|s| {
        for (i, name) in names.iter().enumerate() {
            let vm = &vm;
            s.spawn(move || {
                let stream = vm.connect(name).unwrap();
                let data = Rng::new(i as u64 + 1000).bytes(1000 + i);
                let back = echo(&stream, &data, T)
                    .unwrap_or_else(|e| panic!("{name}: {e}\n{}", vm.serial_log()));
                assert_eq!(back, data, "{name}");
            });
        }
    });
}

/// The `Seccomp:` mode (0 none, 2 filter) of every thread of `pid`, by thread name.
fn seccomp_modes(pid: u32) -> Vec<(String, String)> {
    let mut modes = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let mode = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .map(|m| m.trim().to_string())
            .unwrap_or_default();
        modes.push((comm.trim().to_string(), mode));
    }
    modes
}

/// Starts `vmch run` with one echo port and `extra` arguments, waits until the guest echoes,
/// and returns the child with its socket.
fn start_echo_vm(dir: &Path, extra: &[&str]) -> (std::process::Child, std::path::PathBuf) {
    let socket = dir.join("e.sock");
    let child = std::process::Command::new(vmch())
        .arg("run")
        .arg("--serial")
        .arg(format!("file:{}", dir.join("serial.log").display()))
        .arg("--port")
        .arg(format!(
            "name={},socket={},server",
            echo_name(0),
            socket.display()
        ))
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + T;
    let s = loop {
        match std::os::unix::net::UnixStream::connect(&socket) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() > deadline => panic!("no socket: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    assert_eq!(echo(&s, b"ping", T).unwrap(), b"ping");
    (child, socket)
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("vmch did not exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn every_vmm_thread_runs_under_its_seccomp_filter() {
    if !require_kvm("every_vmm_thread_runs_under_its_seccomp_filter") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, socket) = start_echo_vm(dir.path(), &[]);
    let pid = child.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("\nSeccomp:\t2\n"), "{status}");
    let modes = seccomp_modes(pid);
    for name in ["vmch", "vmch-vcpu0", "vmch-events"] {
        assert!(
            modes.iter().any(|(n, _)| n == name),
            "no thread {name}: {modes:?}"
        );
    }
    // Every thread, the kernel's per-VM worker included, is filtered.
    assert!(modes.iter().all(|(_, m)| m == "2"), "{modes:?}");
    // SIGTERM still ends it with 128 + 15 and the socket is removed (by the filtered thread).
    send_signal(pid, "TERM");
    let status = wait_exit(&mut child);
    let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(!stderr.contains("seccomp"), "{stderr}");
    assert!(!socket.exists(), "the socket file was left behind");
}

#[test]
fn seccomp_off_leaves_the_threads_unfiltered() {
    if !require_kvm("seccomp_off_leaves_the_threads_unfiltered") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _) = start_echo_vm(dir.path(), &["--seccomp=off"]);
    let modes = seccomp_modes(child.id());
    assert!(
        modes.iter().any(|(n, m)| n == "vmch-vcpu0" && m == "0"),
        "{modes:?}"
    );
    assert!(modes.iter().all(|(_, m)| m == "0"), "{modes:?}");
    send_signal(child.id(), "INT");
    assert_eq!(wait_exit(&mut child).code(), Some(130));
}

fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

//! The guest agent (`org.qemu.guest_agent.0`) end to end, under QEMU (TCG) and under the
//! bundled VMM: every command through `vmch::agent` and the `vmch agent` tool, errors in the
//! agent's shape for unknown commands, bad arguments, bad JSON and oversized input, the 0xFF
//! resync, an echo port answering beside it, and shutdown (powerdown, halt) and reboot doing
//! what they say.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vmch::agent::{AgentClient, AgentError};
use vmchannel_tests::hosts::{require_kvm, require_qemu};
use vmchannel_tests::qemu::{Accel, Machine, QemuBoot};
use vmchannel_tests::vm::SerialVm;
use vmchannel_tests::vmch::{VmchOptions, VmchVm};

const AGENT: &str = "org.qemu.guest_agent.0";
const ECHO: &str = "org.vmchannel.echo.0";
const TIMEOUT: Duration = Duration::from_secs(60);
const CMDLINE: &str = "loglevel=info hostname=agent-test";

/// What the tests need of a running VM, whichever backend runs it.
trait Guest {
    fn connect(&self, name: &str) -> UnixStream;
    fn socket(&self, name: &str) -> std::path::PathBuf;
    fn log(&self) -> String;
    /// Waits for the VM to end; true if it did.
    fn ended(&mut self, timeout: Duration) -> bool;
    /// Waits for the `count`th `needle` in the serial log.
    fn wait_for_log(&self, needle: &str, count: usize);
}

struct Qemu(SerialVm);

impl Guest for Qemu {
    fn connect(&self, name: &str) -> UnixStream {
        self.0.connect(name).expect("connect")
    }
    fn socket(&self, name: &str) -> std::path::PathBuf {
        let p = self
            .0
            .ports()
            .iter()
            .find(|p| p.name == name)
            .expect("port");
        p.socket.clone()
    }
    fn log(&self) -> String {
        self.0.serial_log()
    }
    fn wait_for_log(&self, needle: &str, count: usize) {
        self.0
            .wait_for_log(needle, count, TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    fn ended(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.0.running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

struct Vmm(VmchVm);

impl Guest for Vmm {
    fn connect(&self, name: &str) -> UnixStream {
        self.0.connect(name).expect("connect")
    }
    fn socket(&self, name: &str) -> std::path::PathBuf {
        self.0.socket(name).expect("port").to_owned()
    }
    fn log(&self) -> String {
        self.0.serial_log()
    }
    fn wait_for_log(&self, needle: &str, count: usize) {
        self.0
            .wait_for_log(needle, count, TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    fn ended(&mut self, timeout: Duration) -> bool {
        self.0.wait(timeout).is_some_and(|s| s.success())
    }
}

fn qemu(reboot: bool) -> Qemu {
    let kernel = vmchannel_tests::kernel_image();
    let mut boot = QemuBoot::new(kernel, Machine::Q35, Accel::Tcg, CMDLINE);
    boot.reboot = reboot;
    let vm = SerialVm::start(&boot, "disable-legacy=on", &[AGENT, ECHO], false).expect("QEMU");
    vm.wait_for_log("guest-agent agent started", 1, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    Qemu(vm)
}

fn vmm(reboot: bool) -> Vmm {
    let mut options = VmchOptions {
        cmdline: CMDLINE.into(),
        ..VmchOptions::default()
    };
    if !reboot {
        options.extra.push("--no-reboot".into());
    }
    let vm = VmchVm::start(
        Path::new(env!("CARGO_BIN_EXE_vmch")),
        &[AGENT, ECHO],
        &options,
    )
    .expect("vmch run");
    vm.wait_for_log("guest-agent agent started", 1, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    Vmm(vm)
}

fn agent(g: &dyn Guest) -> AgentClient<UnixStream> {
    let stream = g.connect(AGENT);
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut c = AgentClient::new(stream);
    c.resync(TIMEOUT)
        .unwrap_or_else(|e| panic!("sync: {e}\n{}", g.log()));
    c
}

#[track_caller]
fn guest_error(r: Result<Value, AgentError>, class: &str) -> String {
    match r {
        Err(AgentError::Guest { class: c, desc }) => {
            assert_eq!(c, class, "{desc}");
            desc
        }
        other => panic!("expected a {class} error, got {other:?}"),
    }
}

/// Every command, errors, resync, oversized input; the echo port answering meanwhile.
fn commands(g: &dyn Guest) {
    let mut c = agent(g);
    assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));
    assert_eq!(
        c.execute("guest-sync", Some(json!({"id": 1234567})))
            .unwrap(),
        json!(1234567)
    );
    let info = c.execute("guest-info", None).unwrap();
    let names: Vec<&str> = info["supported_commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for cmd in [
        "guest-sync",
        "guest-sync-delimited",
        "guest-ping",
        "guest-info",
        "guest-get-osinfo",
        "guest-get-host-name",
        "guest-get-time",
        "guest-get-users",
        "guest-shutdown",
    ] {
        assert!(names.contains(&cmd), "{cmd} missing from {names:?}");
    }
    let os = c.execute("guest-get-osinfo", None).unwrap();
    assert_eq!(os["id"], "vmchannel");
    assert_eq!(os["machine"], "x86_64");
    assert_eq!(
        c.execute("guest-get-host-name", None).unwrap(),
        json!({"host-name": "agent-test"})
    );
    assert_eq!(c.execute("guest-get-users", None).unwrap(), json!([]));
    let t = c.execute("guest-get-time", None).unwrap().as_i64().unwrap();
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    assert!(
        (t - host).abs() < 120_000_000_000,
        "guest time {t} vs host {host}"
    );

    guest_error(c.execute("guest-no-such-command", None), "CommandNotFound");
    guest_error(c.execute("guest-sync", None), "GenericError");
    assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));
}

/// Errors in the agent's shape, oversized input, the 0xFF resync, echo beside a busy agent,
/// and the `vmch agent` tool.
fn errors_and_resync(g: &dyn Guest) {
    let mut c = agent(g);
    guest_error(
        c.execute("guest-shutdown", Some(json!({"mode": "sideways"})))
            .and_then(|_| c.answer()),
        "GenericError",
    );
    c.stream()
        .write_all(b"{\"execute\": \"guest-ping\",,}\n")
        .unwrap();
    guest_error(c.answer(), "GenericError");
    c.stream().write_all(b"[1, 2]\n").unwrap();
    guest_error(c.answer(), "GenericError");
    assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));

    // Oversized: one error, then the agent is still there.
    let big = format!(
        "{{\"execute\": \"guest-ping\", \"arguments\": {{\"pad\": \"{}\"}}}}",
        "x".repeat(200 * 1024)
    );
    c.stream().write_all(big.as_bytes()).unwrap();
    guest_error(c.answer(), "GenericError");
    assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));

    // A half-sent request, then 0xFF: flushed, and the resync finds the agent.
    c.stream().write_all(b"{\"execute\": \"guest-pi").unwrap();
    c.sync().unwrap();
    assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));

    // The echo port answers while the agent is busy with garbage.
    c.stream().write_all(&[b'{'; 4096]).unwrap();
    let mut echo = g.connect(ECHO);
    echo.set_read_timeout(Some(TIMEOUT)).unwrap();
    echo.write_all(b"still here").unwrap();
    let mut got = [0u8; 10];
    echo.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still here");
    c.sync().unwrap();
    assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));

    // The same through the tool (a socket chardev serves one client at a time).
    drop(c);
    let out = Command::new(env!("CARGO_BIN_EXE_vmch"))
        .args(["agent"])
        .arg(g.socket(AGENT))
        .args(["get-host-name"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["host-name"], "agent-test");
    let out = Command::new(env!("CARGO_BIN_EXE_vmch"))
        .args(["agent"])
        .arg(g.socket(AGENT))
        .args(["guest-frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CommandNotFound"));
}

/// `guest-shutdown` with `mode`: the VM must end (powerdown, halt).
fn shutdown(mut g: Box<dyn Guest>, mode: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmch"))
        .args(["agent"])
        .arg(g.socket(AGENT))
        .args(["shutdown", &format!("{{\"mode\": \"{mode}\"}}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        g.ended(TIMEOUT),
        "the VM did not end after {mode}\n{}",
        g.log()
    );
}

/// `guest-shutdown` reboot: the kernel boots a second time and the agent answers again.
fn reboot(g: &dyn Guest, wait: impl Fn(usize)) {
    let mut c = agent(g);
    c.execute("guest-shutdown", Some(json!({"mode": "reboot"})))
        .unwrap();
    drop(c);
    wait(2);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        // The VMM makes its sockets anew; QEMU keeps them.
        if let Ok(stream) = UnixStream::connect(g.socket(AGENT)) {
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut c = AgentClient::new(stream);
            if c.sync().is_ok() {
                assert_eq!(c.execute("guest-ping", None).unwrap(), json!({}));
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agent after reboot\n{}",
            g.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The whole suite on VMs `start(reboot)` makes.
fn suite<G: Guest + 'static>(start: impl Fn(bool) -> G) {
    let g = start(false);
    commands(&g);
    errors_and_resync(&g);
    shutdown(Box::new(g), "powerdown");
    shutdown(Box::new(start(false)), "halt");
    let g = start(true);
    reboot(&g, |n| g.wait_for_log("guest-agent agent started", n));
    assert!(
        g.log().matches("vmchannel kernel").count() >= 2,
        "{}",
        g.log()
    );
}

#[test]
fn agent_under_qemu() {
    if require_qemu("agent_under_qemu") {
        suite(qemu);
    }
}

#[test]
fn agent_under_the_vmm() {
    if require_kvm("agent_under_the_vmm") {
        suite(vmm);
    }
}

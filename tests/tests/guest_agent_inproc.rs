//! Kernel-less guest agent tests: the kernel's agents (the guest agent on
//! `org.qemu.guest_agent.0` beside an echo port) and its virtio-console driver run on the host
//! against host-device's device model, spoken to over unix sockets as a host's qemu-ga client
//! would. The serve loop's power hook is the in-process harness's (`InProcVm::power_actions`).

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use host_device::console::{Backend, ConsoleConfig, PortConfig, SocketBackend};
use kernel::agents::guest_agent::{MAX_REQUEST, PORT_NAME};
use kernel::power::PowerAction;
use serde_json::{Value, json};
use vmchannel_tests::echo::{Rng, check_echo, echo};
use vmchannel_tests::inproc::{HOST_NAME, InProcVm};

const T: Duration = Duration::from_secs(20);
const ECHO: &str = "org.vmchannel.echo.0";

/// An in-process guest with the guest agent and an echo port on sockets.
struct Rig {
    vm: InProcVm,
    agent: PathBuf,
    echo: PathBuf,
    _dir: tempfile::TempDir,
}

fn start() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("qga.sock");
    let echo = dir.path().join("echo.sock");
    let vm = InProcVm::start(
        ConsoleConfig::default(),
        vec![
            (
                PortConfig::new(PORT_NAME),
                Backend::Socket(SocketBackend::server(&agent).unwrap()),
            ),
            (
                PortConfig::new(ECHO),
                Backend::Socket(SocketBackend::server(&echo).unwrap()),
            ),
        ],
    )
    .unwrap();
    Rig {
        vm,
        agent,
        echo,
        _dir: dir,
    }
}

/// A qemu-ga client: newline-terminated replies, 0xFF sentinels.
struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(T)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).expect("a reply in time");
        assert!(n > 0, "the agent's socket closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next reply line, without its newline (a leading 0xFF is kept).
    fn line(&mut self) -> Vec<u8> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf[..at].to_vec();
                self.buf.drain(..=at);
                return line;
            }
            self.fill();
        }
    }

    /// The next reply, which must not be delimited.
    fn reply(&mut self) -> Value {
        let line = self.line();
        assert_ne!(line.first(), Some(&0xff), "unexpected sentinel");
        serde_json::from_slice(&line)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&line)))
    }

    fn call(&mut self, request: &Value) -> Value {
        self.send(request.to_string().as_bytes());
        self.reply()
    }

    fn ret(&mut self, execute: &str) -> Value {
        let r = self.call(&json!({ "execute": execute }));
        r.get("return")
            .cloned()
            .unwrap_or_else(|| panic!("{execute}: {r}"))
    }

    fn error(&mut self, request: &[u8]) -> (String, String) {
        self.send(request);
        let r = self.reply();
        (
            r["error"]["class"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}"))
                .into(),
            r["error"]["desc"].as_str().unwrap().into(),
        )
    }

    /// The resync a careful client does: 0xFF to flush the agent's parser, then
    /// guest-sync-delimited; everything before the sentinel is stale and skipped.
    /// Returns how many bytes were skipped.
    fn resync(&mut self, id: i64) -> usize {
        self.send(b"\xff");
        self.send(
            json!({"execute": "guest-sync-delimited", "arguments": {"id": id}})
                .to_string()
                .as_bytes(),
        );
        let mut skipped = 0;
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == 0xff) {
                skipped += at;
                self.buf.drain(..=at);
                let r: Value = serde_json::from_slice(&self.line()).unwrap();
                if r == json!({ "return": id }) {
                    return skipped;
                }
                continue;
            }
            skipped += self.buf.len();
            self.buf.clear();
            self.fill();
        }
    }

    /// Asserts nothing arrives for `wait`.
    fn silent_for(&mut self, wait: Duration) {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut chunk = [0u8; 256];
        match self.stream.read(&mut chunk) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(n) => panic!(
                "unexpected output: {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) => panic!("read: {e}"),
        }
        self.stream.set_read_timeout(Some(T)).unwrap();
    }
}

fn generic(desc: &str) -> (String, String) {
    ("GenericError".into(), desc.into())
}

#[test]
fn every_command() {
    let rig = start();
    let mut c = Client::connect(&rig.agent);
    assert_eq!(c.resync(1), 0, "a fresh agent has nothing stale to say");
    assert_eq!(
        c.call(&json!({"execute": "guest-sync", "arguments": {"id": 123456789012i64}})),
        json!({"return": 123456789012i64})
    );
    assert_eq!(c.ret("guest-ping"), json!({}));
    let info = c.ret("guest-info");
    let commands = info["supported_commands"].as_array().unwrap();
    let names: Vec<&str> = commands
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
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
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for cmd in commands {
        assert_eq!(cmd["enabled"], json!(true));
        assert_eq!(
            cmd["success-response"],
            json!(cmd["name"] != json!("guest-shutdown"))
        );
    }
    let os = c.ret("guest-get-osinfo");
    assert_eq!(os["id"], json!("vmchannel"));
    assert_eq!(os["machine"], json!("x86_64"));
    assert_eq!(os["version"], info["version"]);
    assert_eq!(
        c.ret("guest-get-host-name"),
        json!({ "host-name": HOST_NAME })
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let t = c.ret("guest-get-time").as_i64().unwrap();
    assert!(
        (t - now).abs() < 5_000_000_000,
        "guest time {t}, host {now}"
    );
    assert_eq!(c.ret("guest-get-users"), json!([]));
    // The id is echoed back.
    assert_eq!(
        c.call(&json!({"execute": "guest-ping", "id": "req-1"})),
        json!({"return": {}, "id": "req-1"})
    );
    assert!(rig.vm.power_actions().is_empty());
}

#[test]
fn several_requests_in_one_write_and_one_request_in_many() {
    let rig = start();
    let mut c = Client::connect(&rig.agent);
    c.resync(2);
    let mut batch = Vec::new();
    for id in 0..100 {
        batch.extend(
            json!({"execute": "guest-sync", "arguments": {"id": id}})
                .to_string()
                .as_bytes(),
        );
    }
    c.send(&batch);
    for id in 0..100 {
        assert_eq!(c.reply(), json!({ "return": id }));
    }
    let request = json!({"execute": "guest-sync", "arguments": {"id": 7}}).to_string();
    for b in request.as_bytes() {
        c.send(&[*b]);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(c.reply(), json!({"return": 7}));
}

#[test]
fn errors_in_qemu_ga_shape() {
    let rig = start();
    let mut c = Client::connect(&rig.agent);
    c.resync(3);
    assert_eq!(
        c.error(br#"{"execute":"guest-exec","arguments":{"path":"/bin/sh"}}"#),
        (
            "CommandNotFound".into(),
            "The command guest-exec has not been found".into()
        )
    );
    assert_eq!(
        c.error(br#"{"execute":"guest-sync"}"#),
        generic("Parameter 'id' is missing")
    );
    assert_eq!(
        c.error(br#"{"execute":"guest-sync","arguments":{"id":"x"}}"#),
        generic("Invalid parameter type for 'id', expected: integer")
    );
    assert_eq!(
        c.error(br#"{"execute":"guest-ping","arguments":{"verbose":true}}"#),
        generic("Parameter 'verbose' is unexpected")
    );
    assert_eq!(
        c.error(br#"{"execute":"guest-shutdown","arguments":{"mode":"nap"}}"#),
        generic("Parameter 'mode' expects 'halt', 'powerdown', or 'reboot'")
    );
    assert_eq!(
        c.error(br#"{"execute":"guest-ping","arguments":"x"}"#),
        generic("QMP input member 'arguments' must be an object")
    );
    assert_eq!(
        c.error(br#"{"exec":"guest-ping"}"#),
        generic("QMP input member 'exec' is unexpected")
    );
    assert_eq!(
        c.error(b"[1,2,3]\n"),
        generic("QMP input must be a JSON object")
    );
    let (class, desc) = c.error(b"{\"execute\" \"guest-ping\"}\n");
    assert_eq!(class, "GenericError");
    assert!(desc.starts_with("JSON parse error, "), "{desc}");
    // An error reply carries the request's id too.
    c.send(br#"{"execute":"nope","id":42}"#);
    assert_eq!(c.reply()["id"], json!(42));
    // Still serving, and no shutdown was requested by any of it.
    assert_eq!(c.ret("guest-ping"), json!({}));
    assert!(rig.vm.power_actions().is_empty());
}

#[test]
fn resync_with_the_flush_byte_and_sync_delimited() {
    let rig = start();
    let mut c = Client::connect(&rig.agent);
    c.resync(4);
    // A request cut off (a client that timed out mid-write), then the resync: the fragment
    // is dropped without a reply, and the sentinel comes first.
    c.send(br#"{"execute":"guest-shutdown","arguments":{"mo"#);
    c.send(b"\xff");
    c.send(br#"{"execute":"guest-sync-delimited","arguments":{"id":99}}"#);
    assert_eq!(c.line(), b"\xff{\"return\":99}");
    assert!(rig.vm.power_actions().is_empty());
    // The same through the helper, after garbage that does get errors: they are skipped.
    c.send(b"}}} not json {\"unterminated\": ");
    assert!(c.resync(5) > 0, "the garbage before the flush was answered");
    assert_eq!(c.ret("guest-ping"), json!({}));
}

#[test]
fn oversized_input_gets_one_error_and_service_goes_on() {
    let rig = start();
    let mut c = Client::connect(&rig.agent);
    c.resync(6);
    let mut big = br#"{"execute":"guest-sync","arguments":{"id":1},"id":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 4 * MAX_REQUEST));
    big.extend_from_slice(br#""}"#);
    c.send(&big);
    let (class, desc) = c.error(br#"{"execute":"guest-ping"}"#);
    assert_eq!(class, "GenericError");
    assert!(desc.contains("longer than"), "{desc}");
    assert_eq!(c.reply(), json!({"return": {}}));
    // A never-ending text is cut off the same way, and a flush ends it.
    c.send(&vec![b'['; 2 * MAX_REQUEST]);
    assert!(
        c.reply()["error"]["desc"]
            .as_str()
            .unwrap()
            .contains("longer than")
    );
    assert_eq!(c.resync(7), 0);
}

#[test]
fn guest_shutdown_reaches_the_serve_loop() {
    for (arguments, action) in [
        (json!({}), PowerAction::PowerOff),
        (json!({"mode": "powerdown"}), PowerAction::PowerOff),
        (json!({"mode": "halt"}), PowerAction::Halt),
        (json!({"mode": "reboot"}), PowerAction::Reboot),
    ] {
        let rig = start();
        let mut c = Client::connect(&rig.agent);
        c.resync(8);
        // A reply queued before the shutdown still goes out; the shutdown has none.
        c.send(br#"{"execute":"guest-ping"}"#);
        c.send(
            json!({"execute": "guest-shutdown", "arguments": arguments})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(c.reply(), json!({"return": {}}));
        assert_eq!(rig.vm.wait_power_action(T), Some(action), "{arguments}");
        c.send(br#"{"execute":"guest-ping"}"#);
        c.silent_for(Duration::from_millis(300));
        assert_eq!(rig.vm.power_actions(), [action], "exactly one action");
    }
}

/// A client that writes `chunk` over and over and never reads, until told to stop.
struct Flood {
    stop: Arc<AtomicBool>,
    taken: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Flood {
    fn start(path: &Path, chunk: Vec<u8>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let taken = Arc::new(AtomicU64::new(0));
        let mut s = UnixStream::connect(path).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let thread = {
            let (stop, taken) = (stop.clone(), taken.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match s.write(&chunk) {
                        Ok(n) => {
                            taken.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(e) => panic!("flood: {e}"),
                    }
                }
            })
        };
        let flood = Flood {
            stop,
            taken,
            thread,
        };
        let deadline = Instant::now() + T;
        while flood.taken() < 256 * 1024 {
            assert!(Instant::now() < deadline, "the flood did not get going");
            std::thread::sleep(Duration::from_millis(5));
        }
        flood
    }

    fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Stops writing and hangs up.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.taken.load(Ordering::Relaxed)
    }
}

/// Round trips on the echo port, each of which must be quick.
fn echo_rounds(echo_path: &Path, seed: u64, what: &str) {
    let e = UnixStream::connect(echo_path).unwrap();
    let mut rng = Rng::new(seed);
    for round in 0..10 {
        let len = rng.range(1, 64 * 1024);
        let data = rng.bytes(len);
        let started = Instant::now();
        let back = echo(&e, &data, T).unwrap_or_else(|err| panic!("{what} {round}: {err}"));
        check_echo(what, &data, &back).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what} {round} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn echo_keeps_answering_while_the_agent_is_flooded() {
    let rig = start();
    // Random 7-bit garbage: mostly texts that never end, which the agent skips (holding no
    // memory) as fast as they come. The echo port must not notice.
    let mut rng = Rng::new(17);
    let garbage: Vec<u8> = rng.bytes(64 * 1024).into_iter().map(|b| b & 0x7f).collect();
    let flood = Flood::start(&rig.agent, garbage);
    echo_rounds(&rig.echo, 5, "echo beside a garbage flood");
    flood.stop();

    // Requests that each earn an error reply, from a client that never reads them: the
    // agent must stop reading once its replies back up, so the flood stalls, and still the
    // echo port answers. (The 0xFF first ends whatever the last client left half-sent.)
    let mut chunk = b"\xff".to_vec();
    chunk.extend((0..128).flat_map(|_| b"{}                              ".iter().copied()));
    let flood = Flood::start(&rig.agent, chunk);
    let deadline = Instant::now() + T;
    loop {
        let before = flood.taken();
        std::thread::sleep(Duration::from_millis(200));
        let after = flood.taken();
        if after == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the flood never stalled: {after} bytes taken"
        );
    }
    echo_rounds(&rig.echo, 6, "echo beside a stalled agent");
    let taken = flood.stop();
    assert!(taken < 16 << 20, "the guest side took {taken} bytes");

    // A new client resyncs past whatever the old connections left behind, and is served.
    let mut c = Client::connect(&rig.agent);
    c.resync(9);
    assert_eq!(c.ret("guest-ping"), json!({}));
    assert!(rig.vm.power_actions().is_empty());
}

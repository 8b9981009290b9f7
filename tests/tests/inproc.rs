//! Kernel-less tests: the guest kernel's own multiport driver and agents against host-device's
//! device model in one process, over shared guest memory (see `vmchannel_tests::inproc`).

use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use host_device::console::{
    Backend, ChannelHandler, Console, ConsoleConfig, PortConfig, PortEvent, PortHandler,
    SocketBackend,
};
use vmchannel_tests::echo::{Rng, check_echo, echo};
use vmchannel_tests::inproc::InProcVm;

const T: Duration = Duration::from_secs(20);
const ECHO: &str = "org.vmchannel.echo.0";

fn handler() -> (Backend, Receiver<PortEvent>) {
    let (tx, rx) = channel();
    (Backend::Handler(Box::new(ChannelHandler::new(tx))), rx)
}

/// Collects `n` bytes of data events (other events are skipped).
fn collect(rx: &Receiver<PortEvent>, n: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    let deadline = Instant::now() + T;
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(PortEvent::Data(d)) => got.extend_from_slice(&d),
            Ok(_) => {}
            Err(_) => panic!("timed out after {} of {n} bytes", got.len()),
        }
    }
    got
}

/// Writes all of `data` through the API, waiting while the guest has no room.
fn write_all(vm: &InProcVm, id: u32, data: &[u8]) {
    let mut off = 0;
    let deadline = Instant::now() + T;
    while off < data.len() {
        let n = vm.host(|c| c.write(id, &data[off..])).expect("write");
        off += n;
        if n == 0 {
            assert!(Instant::now() < deadline, "write stalled at {off}");
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

fn guest_names(vm: &InProcVm) -> Vec<String> {
    vm.guest(|g| {
        g.console
            .ports()
            .ports()
            .filter_map(|(_, n)| n.map(str::to_string))
            .collect()
    })
}

fn wait_guest_names(vm: &InProcVm, want: &[&str]) {
    let deadline = Instant::now() + T;
    loop {
        let names = guest_names(vm);
        if want.iter().all(|w| names.iter().any(|n| n == w)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "guest sees {names:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn guest_sees_host(vm: &InProcVm, id: u32) -> bool {
    vm.guest(move |g| g.console.ports().host_connected(id))
}

#[test]
fn start_up_names_and_open_close() {
    let (echo_be, echo_rx) = handler();
    let vm = InProcVm::start(
        ConsoleConfig::default(),
        vec![
            (PortConfig::console("org.vmchannel.console"), Backend::None),
            (PortConfig::new(ECHO), echo_be),
            (PortConfig::new("org.example.unserved"), Backend::None),
        ],
    )
    .unwrap();
    wait_guest_names(
        &vm,
        &["org.vmchannel.console", ECHO, "org.example.unserved"],
    );
    // The echo agent opens its port; nobody serves the other one.
    vm.wait_host(T, "the guest to open the echo port", |c| {
        c.port_info(1).unwrap().guest_connected
    });
    assert!(matches!(echo_rx.recv_timeout(T), Ok(PortEvent::GuestOpen)));
    let infos = vm.host(|c| c.ports());
    assert_eq!(infos.len(), 3);
    assert!(infos.iter().all(|p| p.ready), "{infos:?}");
    assert!(!infos[2].guest_connected);
    assert_eq!(infos[0].id, 0);
    assert!(vm.host(|c| c.driver_ready()));

    // Host open and close reach the guest as PORT_OPEN.
    assert!(!guest_sees_host(&vm, 1));
    vm.host(|c| c.open(1)).unwrap();
    let deadline = Instant::now() + T;
    while !guest_sees_host(&vm, 1) {
        assert!(
            Instant::now() < deadline,
            "the guest never saw the host open"
        );
    }
    vm.host(|c| c.close(1)).unwrap();
    while guest_sees_host(&vm, 1) {
        assert!(
            Instant::now() < deadline,
            "the guest never saw the host close"
        );
    }
    assert_eq!(vm.host(|c| c.stats()).bad_control, 0);
    assert!(vm.interrupts() > 0, "the device raised no interrupt");
}

#[test]
fn echo_in_process() {
    let (be, rx) = handler();
    let vm = InProcVm::start(ConsoleConfig::default(), vec![(PortConfig::new(ECHO), be)]).unwrap();
    vm.host(|c| c.open(1)).unwrap();
    let mut rng = Rng::new(7);
    for len in [1, 4095, 4096, 4097, 65_537, 1 << 20] {
        let data = rng.bytes(len);
        write_all(&vm, 1, &data);
        let back = collect(&rx, len);
        check_echo(&format!("{len} bytes"), &data, &back).unwrap();
    }
    let info = vm.host(|c| c.port_info(1)).unwrap();
    assert_eq!(info.stats.dropped_to_guest + info.stats.dropped_to_host, 0);
}

#[test]
fn echo_over_unix_sockets_with_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("echo{i}")))
        .collect();
    let ports = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                PortConfig::new(format!("org.vmchannel.echo.{i}")),
                Backend::Socket(SocketBackend::server(p).unwrap()),
            )
        })
        .collect();
    let vm = InProcVm::start(ConsoleConfig::default(), ports).unwrap();
    for round in 0..2 {
        std::thread::scope(|s| {
            for (i, p) in paths.iter().enumerate() {
                s.spawn(move || {
                    let stream = UnixStream::connect(p).unwrap();
                    let data = Rng::new((round * 10 + i) as u64).bytes(256 * 1024 + i);
                    let back = echo(&stream, &data, T).unwrap();
                    check_echo(&format!("port {i} round {round}"), &data, &back).unwrap();
                });
            }
        });
        // Every disconnect reached the device before the next round connects.
        vm.wait_host(T, "the host sides to close", |c| {
            c.ports().iter().all(|p| !p.host_connected)
        });
    }
    let mode = std::fs::metadata(&paths[0]).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);
}

#[test]
fn hotplug_and_unplug() {
    let vm = InProcVm::start(
        ConsoleConfig::default(),
        vec![(PortConfig::new("org.example.first"), Backend::None)],
    )
    .unwrap();
    wait_guest_names(&vm, &["org.example.first"]);
    for round in 0..2 {
        let name = "org.vmchannel.echo.hot";
        let (be, rx) = handler();
        let id = vm.host(|c| c.add_port(PortConfig::new(name), be)).unwrap();
        wait_guest_names(&vm, &[name]);
        vm.host(|c| c.open(id)).unwrap();
        let data = Rng::new(round).bytes(100_000);
        write_all(&vm, id, &data);
        check_echo("hot-plugged echo", &data, &collect(&rx, data.len())).unwrap();
        vm.host(|c| c.remove_port(id)).unwrap();
        let deadline = Instant::now() + T;
        while guest_names(&vm).iter().any(|n| n == name) {
            assert!(
                Instant::now() < deadline,
                "the guest kept the unplugged port"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(vm.host(|c| c.port_info(id)).is_err());
    }
    assert_eq!(vm.host(|c| c.stats()).bad_control, 0);
}

/// Host data written before the guest opens the port: kept with cache_buffers on, dropped
/// with it off.
#[test]
fn cache_buffers_host_data_for_a_closed_guest() {
    for cache in [true, false] {
        let (be, rx) = handler();
        let early = Rng::new(1).bytes(100_000);
        let early2 = early.clone();
        let vm = InProcVm::start_with(
            ConsoleConfig::default(),
            vec![(PortConfig::new(ECHO).cache_buffers(cache), be)],
            move |c| {
                c.open(1).unwrap();
                assert_eq!(c.write(1, &early2).unwrap(), early2.len());
            },
        )
        .unwrap();
        vm.wait_host(T, "the guest to open", |c| {
            c.port_info(1).unwrap().guest_connected
        });
        let late = b"written after the guest opened".to_vec();
        write_all(&vm, 1, &late);
        let info = vm.host(|c| c.port_info(1)).unwrap();
        if cache {
            let back = collect(&rx, early.len() + late.len());
            check_echo("cached", &[early.clone(), late.clone()].concat(), &back).unwrap();
            assert_eq!(info.stats.dropped_to_guest, 0);
        } else {
            let back = collect(&rx, late.len());
            check_echo("uncached", &late, &back).unwrap();
            assert_eq!(info.stats.dropped_to_guest, early.len() as u64);
        }
    }
}

/// Takes at most what its budget allows: a backend slower than the guest.
struct Budgeted {
    budget: Arc<AtomicUsize>,
    tx: Sender<Vec<u8>>,
}

impl PortHandler for Budgeted {
    fn have_data(&mut self, data: &[u8]) -> usize {
        let n = self.budget.load(Ordering::SeqCst).min(data.len());
        self.budget.fetch_sub(n, Ordering::SeqCst);
        if n > 0 {
            let _ = self.tx.send(data[..n].to_vec());
        }
        n
    }
}

fn pattern(from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|i| (i % 251) as u8).collect()
}

fn drain(rx: &Receiver<Vec<u8>>) -> Vec<u8> {
    let mut v = Vec::new();
    while let Ok(d) = rx.try_recv() {
        v.extend(d);
    }
    v
}

/// Guest output while the host side is closed: cached up to byte_limit (the rest waits in the
/// guest's queue) and delivered on reopen, or dropped with cache_buffers off.
#[test]
fn cache_buffers_and_byte_limit_for_guest_output() {
    const LIMIT: usize = 48 * 1024;
    for cache in [true, false] {
        let budget = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel();
        let be = Backend::Handler(Box::new(Budgeted {
            budget: budget.clone(),
            tx,
        }));
        let cfg = PortConfig::new("org.vmchannel.source.0")
            .cache_buffers(cache)
            .byte_limit(LIMIT);
        let vm = InProcVm::start(ConsoleConfig::default(), vec![(cfg, be)]).unwrap();
        vm.wait_host(T, "the guest to open", |c| {
            c.port_info(1).unwrap().guest_connected
        });
        vm.host(|c| {
            c.open(1)?;
            c.throttle(1, true)?;
            c.write(1, &(1u64 << 20).to_le_bytes())
        })
        .unwrap();
        // The guest fills its transmit queue while the host is throttled.
        let deadline = Instant::now() + T;
        while vm.guest(|g| g.console.stats().tx_bytes) < 128 * 1024 {
            assert!(
                Instant::now() < deadline,
                "the guest did not fill its queue"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let queued = vm.guest(|g| g.console.stats().tx_bytes);
        vm.host(|c| c.close(1)).unwrap();
        let info = vm.host(|c| c.port_info(1)).unwrap();
        if cache {
            assert!(
                info.held_for_host >= LIMIT && info.held_for_host <= LIMIT + 16 * 1024,
                "held {} with byte_limit {LIMIT}",
                info.held_for_host
            );
            assert_eq!(info.stats.dropped_to_host, 0);
        } else {
            assert_eq!(info.held_for_host, 0);
            assert_eq!(info.stats.dropped_to_host, queued);
        }
        budget.store(usize::MAX / 2, Ordering::SeqCst);
        vm.host(|c| c.open(1)).unwrap();
        // Whatever the guest still sends arrives after what was held; nothing is lost or
        // repeated.
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut got = Vec::new();
        while Instant::now() < deadline {
            got.extend(drain(&rx));
            std::thread::sleep(Duration::from_millis(5));
        }
        got.extend(drain(&rx));
        let info = vm.host(|c| c.port_info(1)).unwrap();
        let sent = vm.guest(|g| g.console.stats().tx_bytes);
        assert_eq!(got.len() as u64 + info.stats.dropped_to_host, sent);
        if cache {
            assert!(got.len() as u64 >= queued, "{} < {queued}", got.len());
            check_echo("cached guest output", &pattern(0, got.len()), &got).unwrap();
        } else {
            check_echo(
                "guest output after the drop",
                &pattern(queued as usize, got.len()),
                &got,
            )
            .unwrap();
        }
    }
}

#[test]
fn guest_byte_limit_caps_the_api_and_the_socket() {
    const LIMIT: usize = 4096;
    // The API takes only what fits while the guest is not reading yet.
    let (be, rx) = handler();
    let data = Rng::new(3).bytes(10_000);
    let first = data.clone();
    let vm = InProcVm::start_with(
        ConsoleConfig::default(),
        vec![(PortConfig::new(ECHO).guest_byte_limit(LIMIT), be)],
        move |c| {
            c.open(1).unwrap();
            assert_eq!(c.write(1, &first).unwrap(), LIMIT);
            assert_eq!(c.guest_ready(1).unwrap(), 0);
        },
    )
    .unwrap();
    check_echo("first 4 KiB", &data[..LIMIT], &collect(&rx, LIMIT)).unwrap();
    vm.wait_host(T, "room toward the guest", |c| {
        c.guest_ready(1).unwrap() == LIMIT
    });
    write_all(&vm, 1, &data[LIMIT..]);
    check_echo(
        "the rest",
        &data[LIMIT..],
        &collect(&rx, data.len() - LIMIT),
    )
    .unwrap();
    drop(vm);

    // A socket is not read beyond the limit while the guest does not read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unserved");
    let vm = InProcVm::start(
        ConsoleConfig::default(),
        vec![(
            PortConfig::new("org.example.unserved").guest_byte_limit(LIMIT),
            Backend::Socket(SocketBackend::server(&path).unwrap()),
        )],
    )
    .unwrap();
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_nonblocking(true).unwrap();
    let chunk = vec![0x5a; 64 * 1024];
    let mut written = 0usize;
    let deadline = Instant::now() + T;
    loop {
        match s.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // Give the device a chance to read more, then stop once it no longer does.
                std::thread::sleep(Duration::from_millis(50));
                match s.write(&chunk) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            Err(e) => panic!("{e}"),
        }
        assert!(
            Instant::now() < deadline && written < 64 << 20,
            "the socket never filled"
        );
    }
    let info = vm.host(|c| c.port_info(1)).unwrap();
    assert_eq!(info.queued_for_guest, LIMIT);
    assert!(written < 16 << 20);
}

/// Snapshot and restore in the middle of a stream, with a chain half-delivered and data queued
/// toward the guest: no byte lost or repeated.
#[test]
fn snapshot_and_restore_mid_stream() {
    let budget = Arc::new(AtomicUsize::new(1000));
    let (tx, rx) = channel();
    let mk = |budget: &Arc<AtomicUsize>, tx: &Sender<Vec<u8>>| {
        Backend::Handler(Box::new(Budgeted {
            budget: budget.clone(),
            tx: tx.clone(),
        }))
    };
    let vm = InProcVm::start(
        ConsoleConfig::default(),
        vec![(PortConfig::new(ECHO), mk(&budget, &tx))],
    )
    .unwrap();
    vm.host(|c| c.open(1)).unwrap();
    let data = Rng::new(11).bytes(3 << 20);
    let half = data.len() / 2;
    write_all(&vm, 1, &data[..half]);
    // The handler took 1000 bytes of the first chain and throttled the port.
    vm.wait_host(T, "a half-delivered chain", |c| {
        let i = c.port_info(1).unwrap();
        i.throttled && i.held_for_host > 0
    });
    let mid = half + vm.host(|c| c.write(1, &data[half..half + 5000])).unwrap();
    let before = vm.host(|c| c.port_info(1)).unwrap();
    let mut fresh = Console::new(ConsoleConfig::default()).unwrap();
    fresh
        .add_port(PortConfig::new(ECHO), mk(&budget, &tx))
        .unwrap();
    let size = vm.snapshot_restore(fresh).unwrap();
    let after = vm.host(|c| c.port_info(1)).unwrap();
    assert_eq!(before.held_for_host, after.held_for_host);
    // Restored data may already have moved on into guest buffers, none created or lost.
    assert_eq!(
        before.queued_for_guest as u64 + before.stats.to_guest,
        after.queued_for_guest as u64 + after.stats.to_guest
    );
    assert!(after.throttled && after.host_connected && after.guest_connected);
    assert!(size > 1000);
    budget.store(usize::MAX / 2, Ordering::SeqCst);
    vm.host(|c| c.throttle(1, false)).unwrap();
    write_all(&vm, 1, &data[mid..]);
    let mut got = Vec::new();
    let deadline = Instant::now() + T;
    while got.len() < data.len() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(d) => got.extend(d),
            Err(_) => panic!("timed out after {} of {} bytes", got.len(), data.len()),
        }
    }
    check_echo("stream across a snapshot", &data, &got).unwrap();
}

/// A socket that stops reading: the device keeps the partly written chain and throttles the
/// port; once the peer reads again everything arrives, in order.
#[test]
fn full_socket_throttles_and_loses_nothing() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source");
    let vm = InProcVm::start(
        ConsoleConfig::default(),
        vec![(
            PortConfig::new("org.vmchannel.source.0"),
            Backend::Socket(SocketBackend::server(&path).unwrap()),
        )],
    )
    .unwrap();
    let mut s = UnixStream::connect(&path).unwrap();
    const N: usize = 8 << 20;
    s.write_all(&(N as u64).to_le_bytes()).unwrap();
    vm.wait_host(T, "the socket to fill", |c| {
        let i = c.port_info(1).unwrap();
        i.throttled && i.held_for_host > 0
    });
    // The guest is back-pressured: what it has sent stops growing, well short of N.
    let deadline = Instant::now() + T;
    let (mut last, mut still) = (0, 0);
    while still < 5 {
        std::thread::sleep(Duration::from_millis(10));
        let now = vm.guest(|g| g.console.stats().tx_bytes);
        still = if now == last { still + 1 } else { 0 };
        last = now;
        assert!(Instant::now() < deadline, "the guest never stopped sending");
    }
    assert!(
        (last as usize) < N / 2,
        "sent {last} of {N} into a full socket"
    );
    s.set_read_timeout(Some(T)).unwrap();
    let mut got = vec![0u8; N];
    s.read_exact(&mut got).unwrap();
    check_echo("source through a full socket", &pattern(0, N), &got).unwrap();
}

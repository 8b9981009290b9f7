//! In-process virtio-serial benchmark: the guest kernel's driver and agents against
//! host-device's device model in one process (no VM, no exits), so it measures the driver and
//! the device themselves. Host→guest and guest→host throughput through the in-process API, the
//! same through unix sockets, and 1-byte and 1-KiB round trips per second through the echo
//! agent, all in one run.
//!
//! `cargo bench -p vmchannel-tests --bench inproc [-- MIB]` (default 256 MiB per transfer).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use host_device::console::{
    Backend, ChannelHandler, ConsoleConfig, PortConfig, PortEvent, SocketBackend,
};
use vmchannel_tests::inproc::InProcVm;

const T: Duration = Duration::from_secs(120);

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn handler() -> (Backend, Receiver<PortEvent>) {
    let (tx, rx) = channel();
    (Backend::Handler(Box::new(ChannelHandler::new(tx))), rx)
}

fn recv_bytes(rx: &Receiver<PortEvent>, n: usize) {
    let mut got = 0;
    while got < n {
        if let PortEvent::Data(d) = rx.recv_timeout(T).expect("data from the guest") {
            got += d.len();
        }
    }
}

fn write_all(vm: &InProcVm, id: u32, data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        let n = vm.host(|c| c.write(id, &data[off..])).expect("write");
        off += n;
        if n == 0 {
            std::thread::yield_now();
        }
    }
}

fn main() {
    let mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(256);
    let bytes = mib << 20;
    let dir = tempfile::tempdir().unwrap();
    let sink_path = dir.path().join("sink");
    let source_path = dir.path().join("source");
    let (sink_be, sink_rx) = handler();
    let (source_be, source_rx) = handler();
    let (echo_be, echo_rx) = handler();
    let vm = InProcVm::start(
        ConsoleConfig::default(),
        vec![
            (PortConfig::new("org.vmchannel.sink.api"), sink_be),
            (PortConfig::new("org.vmchannel.source.api"), source_be),
            (PortConfig::new("org.vmchannel.echo.api"), echo_be),
            (
                PortConfig::new("org.vmchannel.sink.sock"),
                Backend::Socket(SocketBackend::server(&sink_path).unwrap()),
            ),
            (
                PortConfig::new("org.vmchannel.source.sock"),
                Backend::Socket(SocketBackend::server(&source_path).unwrap()),
            ),
        ],
    )
    .unwrap();
    vm.wait_host(T, "the guest to open its ports", |c| {
        c.ports().iter().all(|p| p.guest_connected)
    });
    for id in 1..=3 {
        vm.host(|c| c.open(id)).unwrap();
    }
    println!("in-process, {mib} MiB per transfer");

    // host→guest, API: the sink answers one '#' per MiB.
    let chunk = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    for _ in 0..mib {
        write_all(&vm, 1, &chunk);
    }
    recv_bytes(&sink_rx, mib);
    let d = start.elapsed();
    println!("host→guest api     {:8.1} MiB/s", mib_per_s(bytes, d));

    // guest→host, API.
    let start = Instant::now();
    write_all(&vm, 2, &(bytes as u64).to_le_bytes());
    recv_bytes(&source_rx, bytes);
    let d = start.elapsed();
    println!("guest→host api     {:8.1} MiB/s", mib_per_s(bytes, d));

    // host→guest, socket.
    let mut s = UnixStream::connect(&sink_path).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let start = Instant::now();
    let mut r = s.try_clone().unwrap();
    let acks = std::thread::spawn(move || {
        let mut got = vec![0u8; mib];
        r.read_exact(&mut got).map(|_| Instant::now())
    });
    for _ in 0..mib {
        s.write_all(&chunk).unwrap();
    }
    let d = acks.join().unwrap().unwrap() - start;
    println!("host→guest socket  {:8.1} MiB/s", mib_per_s(bytes, d));

    // guest→host, socket.
    let mut s = UnixStream::connect(&source_path).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let start = Instant::now();
    s.write_all(&(bytes as u64).to_le_bytes()).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < bytes {
        got += s.read(&mut buf).unwrap();
    }
    let d = start.elapsed();
    println!("guest→host socket  {:8.1} MiB/s", mib_per_s(bytes, d));

    // Round trips through the echo agent, API.
    for size in [1usize, 1024] {
        let msg = vec![0x42u8; size];
        let run = Duration::from_secs(2);
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < run {
            write_all(&vm, 3, &msg);
            recv_bytes(&echo_rx, size);
            n += 1;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        println!("echo {size:5} B api   {rate:8.0} round trips/s");
    }
    let info = vm.host(|c| c.stats());
    println!(
        "interrupts {}, control messages {}, bad {}",
        vm.interrupts(),
        info.control_sent,
        info.bad_control + info.bad_chains
    );
}

//! Echo scenarios shared by the QEMU tests and the bundled-VMM tests, so both VMMs pass the
//! very same checks. Each takes the VM through [`PortHost`] and a payload scale: the guest CPU
//! is fast under TCG and slow under this machine's nested KVM, so the VMM runs them smaller.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use crate::echo::{Rng, check_echo, echo};

/// A running guest with named ports on unix sockets.
pub trait PortHost: Sync {
    /// Connects to the port called `name`.
    fn connect_port(&self, name: &str) -> Result<UnixStream, String>;
    /// The guest's serial log so far.
    fn log(&self) -> String;
}

/// Echoes 1 byte, `max` bytes and four random sizes between on every port at once.
pub fn ports_echo_at_once(vm: &dyn PortHost, names: &[String], max: usize, t: Duration) {
    thread::scope(|s| {
        let workers: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                s.spawn(move || {
                    let stream = vm.connect_port(name).unwrap();
                    let mut rng = Rng::new(0x5eed + i as u64);
                    let mut sizes = vec![1, max];
                    sizes.extend((0..4).map(|_| rng.range(2, max - 1)));
                    for size in sizes {
                        let data = rng.bytes(size);
                        let back = echo(&stream, &data, t)
                            .unwrap_or_else(|e| panic!("{name} {size} bytes: {e}"));
                        check_echo(name, &data, &back).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            if w.join().is_err() {
                panic!("an echo worker failed; guest log:\n{}", vm.log());
            }
        }
    });
}

/// Three whole echoes of `size` bytes on fresh connections, then five connections dropped in
/// the middle of a stream, then a new connection that gets only whole old bytes before its own.
///
/// `host_stall_reconnects`: how many times a new connection on which nothing at all comes
/// back may be dropped and made again. QEMU (10) needs one: under load its mid-stream
/// disconnects can leave the port throttled on the next connection (guest output stalls)
/// until the host disconnects again (see tests/echo.rs), which no guest can clear. Our own
/// device model gets none.
pub fn disconnect_and_reconnect(
    vm: &dyn PortHost,
    name: &str,
    size: usize,
    t: Duration,
    host_stall_reconnects: u32,
) {
    let mut rng = Rng::new(7);
    for round in 0..3 {
        let s = vm.connect_port(name).unwrap();
        let data = rng.bytes(size + round);
        check_echo(name, &data, &echo(&s, &data, t).unwrap()).unwrap();
    }
    // Walk away in the middle of a stream: bytes 0x00..=0x7f, half read back. The payload fits
    // in the buffers on the way, so the guest is not applying backpressure when the host goes
    // (QEMU 10 has a bug there: see tests/echo.rs).
    for round in 0..5u32 {
        let mut s = vm.connect_port(name).unwrap();
        let data: Vec<u8> = (0..size as u32).map(|i| (i % 128) as u8).collect();
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            let _ = w.write_all(&data);
        });
        let mut half = vec![0u8; size / 2];
        s.set_read_timeout(Some(t)).unwrap();
        s.read_exact(&mut half)
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", vm.log()));
        s.shutdown(std::net::Shutdown::Both).unwrap();
        drop(s);
        let _ = writer.join();
    }
    // A new connection works. Echoes of the old stream still in flight may arrive first, but
    // they are whole old bytes, never mixed into the new data.
    let marker: Vec<u8> = (0..4096u32).map(|i| 0x80 | (i % 127) as u8).collect();
    let mut attempt = 0;
    let (s, got) = loop {
        let s = vm.connect_port(name).unwrap();
        let mut w = s.try_clone().unwrap();
        w.write_all(&marker).unwrap();
        let mut r = s.try_clone().unwrap();
        // A stalled port stays stalled: where another try is allowed, do not wait the whole
        // timeout for the first byte (a working port answers in milliseconds, under TCG too).
        let first_wait = if attempt < host_stall_reconnects {
            t.min(Duration::from_secs(20))
        } else {
            t
        };
        r.set_read_timeout(Some(first_wait)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        let mut stalled = false;
        while got.len() < marker.len() || !got.ends_with(&marker) {
            match r.read(&mut buf) {
                Ok(n) => {
                    assert!(n > 0, "EOF");
                    r.set_read_timeout(Some(t)).unwrap();
                    got.extend_from_slice(&buf[..n]);
                    assert!(got.len() < 2_000_000, "stale data without end");
                }
                Err(_) if got.is_empty() && attempt < host_stall_reconnects => {
                    stalled = true;
                    break;
                }
                Err(e) => panic!(
                    "after reconnecting, {e} with {} bytes read; guest log:\n{}",
                    got.len(),
                    vm.log()
                ),
            }
        }
        if !stalled {
            break (s, got);
        }
        eprintln!("{name}: nothing came back on the new connection; reconnecting once more");
        attempt += 1;
    };
    let stale = &got[..got.len() - marker.len()];
    assert!(
        stale.iter().all(|b| *b < 0x80),
        "new data mixed into stale bytes"
    );
    check_echo(name, &[7u8; 3], &echo(&s, &[7u8; 3], t).unwrap()).unwrap();
}

/// One port is written `stalled_bytes` and never read (the writer blocks); another echoes
/// `flowing_bytes` meanwhile; then the first is read and everything arrives in order.
pub fn unread_port_does_not_stall_others(
    vm: &dyn PortHost,
    names: [&str; 2],
    stalled_bytes: usize,
    flowing_bytes: usize,
    t: Duration,
) {
    let stalled = vm.connect_port(names[0]).unwrap();
    let data = Rng::new(99).bytes(stalled_bytes);
    let mut w = stalled.try_clone().unwrap();
    let sent = data.clone();
    let writer = thread::spawn(move || w.write_all(&sent));
    thread::sleep(Duration::from_secs(2));
    assert!(
        !writer.is_finished(),
        "{stalled_bytes} bytes fitted in the buffers: make the payload bigger"
    );
    let other = vm.connect_port(names[1]).unwrap();
    let payload = Rng::new(3).bytes(flowing_bytes);
    check_echo(
        "flowing port",
        &payload,
        &echo(&other, &payload, t).unwrap(),
    )
    .unwrap();
    let mut r = stalled.try_clone().unwrap();
    r.set_read_timeout(Some(t)).unwrap();
    let mut back = vec![0u8; data.len()];
    r.read_exact(&mut back)
        .unwrap_or_else(|e| panic!("reading the stalled port: {e}\n{}", vm.log()));
    writer.join().unwrap().unwrap();
    check_echo("stalled port", &data, &back).unwrap();
}

//! What the inspection benchmarks share: an appliance over an image file, medians, and
//! timed reads through the appliance's request handler. Included by each bench with
//! `mod support;` (each bench is a binary of its own).
#![allow(dead_code)]

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use vmchannel_inspect::appliance::Appliance;
use vmchannel_inspect::disk::BlockDevice;
use vmchannel_proto::{Reply, Request, Target};
use vmchannel_tests::inproc::disk::FileDisk;

/// The appliance's request handler over the image file, in this process (no VM).
pub fn appliance(img: &Path) -> Appliance {
    let disk = FileDisk::open(img).expect("image opens");
    Appliance::new(vec![Rc::new(disk) as Rc<dyn BlockDevice>])
}

/// How long `vmch inspect --backend qemu --accel tcg --format xml IMG` takes (the whole
/// command under QEMU TCG); panics, naming `name`, when it fails.
pub fn vmch_inspect_qemu(vmch: &Path, img: &Path, name: &str) -> Duration {
    let t = Instant::now();
    let out = std::process::Command::new(vmch)
        .args([
            "inspect",
            "--backend",
            "qemu",
            "--accel",
            "tcg",
            "--format",
            "xml",
        ])
        .arg(img)
        .output()
        .expect("vmch runs");
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// The median.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// As milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Reads `path` on `target` `len` bytes at a time until `budget` has passed, from the start
/// again at its end; reads per second and bytes per second, `None` (and the error printed)
/// when a read fails.
pub fn reads(
    a: &mut Appliance,
    target: &Target,
    path: &str,
    len: u32,
    budget: Duration,
) -> Option<(f64, f64)> {
    let start = Instant::now();
    let (mut n, mut bytes, mut offset) = (0u64, 0u64, 0u64);
    while start.elapsed() < budget {
        let req = Request::Read {
            target: target.clone(),
            path: path.into(),
            offset,
            len,
        };
        match a.handle(&req) {
            Ok(Reply::Data(d)) => {
                n += 1;
                bytes += d.len() as u64;
                offset = if d.len() < len as usize {
                    0
                } else {
                    offset + len as u64
                };
            }
            other => {
                eprintln!("  {path} on {target:?}: {:?}", other.err());
                return None;
            }
        }
    }
    let s = start.elapsed().as_secs_f64();
    Some((n as f64 / s, bytes as f64 / s))
}

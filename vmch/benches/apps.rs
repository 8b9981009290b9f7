//! Application listing per package database format, for a system of 500 Fedora-sized
//! packages (`vmchannel_tests::pkgbench`: rpm sqlite, rpm Berkeley DB, rpm ndb, pacman,
//! dpkg; one ext4 disk each), side by side in one run:
//!
//! - the rpm store readers alone over the database file in memory
//!   (`vmchannel_inspect::pkgdb::{sqlite,bdb,ndb}::packages` and `rpmheader::package` for
//!   each blob): packages/s and MB/s, and how many `Store` reads one listing makes (each is a
//!   filesystem read when the store is a file of the guest's filesystem);
//! - the whole inspection in process (no VM: the appliance over the image file) with and
//!   without applications, the difference being the listing's cost, with the number of
//!   device reads each makes;
//! - `vmch inspect --backend qemu --accel tcg --format xml IMG` end to end (process start to
//!   exit) with and without `--no-applications`, and the number of `<application>` elements.
//!
//! Every listing must give [`PACKAGES`] applications: the bench exits non-zero (after
//! printing its tables) if one does not.
//!
//! `cargo bench -p vmch --bench apps [-- [--no-qemu] RUNS]` (default 5; medians, runs
//! interleaved; `--no-qemu` leaves out the QEMU runs, for profiling the in-process ones).

use std::cell::Cell;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use vmchannel_inspect::appliance::Appliance;
use vmchannel_inspect::disk::{BlockDevice, DiskError};
use vmchannel_inspect::pkgdb::{Bytes, Store, StoreError, bdb, ndb, rpmheader, sqlite};
use vmchannel_proto::{Reply, Request, Target};
use vmchannel_tests::inproc::disk::FileDisk;
use vmchannel_tests::pkgbench::{Format, PACKAGES, shared};

/// A device that counts the reads that reach it (below the appliance's metadata cache).
struct CountingDisk {
    inner: FileDisk,
    reads: Rc<Cell<u64>>,
}

impl BlockDevice for CountingDisk {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.reads.set(self.reads.get() + 1);
        self.inner.read_at(offset, buf)
    }
}

/// A store in memory that counts its reads and the bytes they ask for.
struct CountingStore<'a> {
    inner: Bytes<'a>,
    reads: Cell<u64>,
    bytes: Cell<u64>,
}

impl Store for CountingStore<'_> {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.reads.set(self.reads.get() + 1);
        self.bytes.set(self.bytes.get() + buf.len() as u64);
        self.inner.read_exact_at(offset, buf)
    }
}

/// Lists the rpm database `db` of `format` with the store's reader: the number of packages
/// and the total size of their header blobs.
fn list_rpm(format: Format, db: &dyn Store) -> (usize, u64) {
    let (mut n, mut blob_bytes) = (0usize, 0u64);
    let mut each = |blob: &[u8]| {
        let p = rpmheader::package(blob).expect("a valid header");
        assert!(!p.name.is_empty());
        n += 1;
        blob_bytes += blob.len() as u64;
    };
    let result = match format {
        Format::RpmSqlite => sqlite::packages(db, None, &mut each).map_err(|e| e.to_string()),
        Format::RpmBdb => bdb::packages(db, &mut each).map_err(|e| e.to_string()),
        Format::RpmNdb => ndb::packages(db, &mut each).map_err(|e| e.to_string()),
        _ => unreachable!("not an rpm store"),
    };
    result.unwrap_or_else(|e| panic!("{}: {e}", format.name()));
    (n, blob_bytes)
}

/// Inspects `img` in process; returns the time, the applications of its one OS and the
/// device reads made.
fn inspect_inproc(img: &Path, applications: bool) -> (Duration, usize, u64) {
    let reads = Rc::new(Cell::new(0));
    let t = Instant::now();
    let disk = CountingDisk {
        inner: FileDisk::open(img).expect("image opens"),
        reads: reads.clone(),
    };
    let mut a = Appliance::new(vec![Rc::new(disk) as Rc<dyn BlockDevice>]);
    let r = a.handle(&Request::Inspect { applications });
    let took = t.elapsed();
    let apps = match r {
        Ok(Reply::Inspection(oses)) => {
            assert_eq!(oses.len(), 1, "{}: one OS expected", img.display());
            oses[0].applications.len()
        }
        other => panic!("{}: {other:?}", img.display()),
    };
    (took, apps, reads.get())
}

/// Runs `vmch inspect` under QEMU TCG; returns the time and the `<application>`s in the XML.
fn inspect_qemu(vmch: &str, img: &Path, applications: bool) -> (Duration, usize) {
    let t = Instant::now();
    let mut cmd = Command::new(vmch);
    cmd.args([
        "inspect",
        "--backend",
        "qemu",
        "--accel",
        "tcg",
        "--format",
        "xml",
    ]);
    if !applications {
        cmd.arg("--no-applications");
    }
    let out = cmd.arg(img).output().expect("vmch runs");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "{}: {}",
        img.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8_lossy(&out.stdout);
    (took, xml.matches("<application>").count())
}

/// Reads `path` on the first partition of `img` in process, 4 KiB at a time from the start
/// (and again from the start at its end) for `budget`; returns reads per second.
fn fs_reads(img: &Path, path: &str, budget: Duration) -> f64 {
    let disk = FileDisk::open(img).expect("image opens");
    let mut a = Appliance::new(vec![Rc::new(disk) as Rc<dyn BlockDevice>]);
    let target = Target::Device("/dev/sda1".into());
    let start = Instant::now();
    let (mut n, mut offset) = (0u64, 0u64);
    while start.elapsed() < budget {
        let req = Request::Read {
            target: target.clone(),
            path: path.into(),
            offset,
            len: 4096,
        };
        match a.handle(&req) {
            Ok(Reply::Data(d)) => {
                n += 1;
                offset = if d.len() < 4096 { 0 } else { offset + 4096 };
            }
            other => panic!("{path} on {}: {other:?}", img.display()),
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The medians of one format's runs.
#[derive(Default)]
struct Row {
    inproc_apps: Vec<Duration>,
    inproc_none: Vec<Duration>,
    qemu_apps: Vec<Duration>,
    qemu_none: Vec<Duration>,
    reads_apps: u64,
    reads_none: u64,
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let qemu = !std::env::args().any(|a| a == "--no-qemu");
    let vmch = env!("CARGO_BIN_EXE_vmch");
    let t = Instant::now();
    let set = shared();
    println!(
        "{PACKAGES} packages per database; disks built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut wrong = Vec::new();

    println!("database sizes:");
    for d in &set.disks {
        println!(
            "  {:<11} {:>10} bytes  {}",
            d.format.name(),
            d.database_bytes,
            d.format.guest_path()
        );
    }

    println!(
        "rpm store readers alone, database in memory, median of {runs} \
         (time | packages/s | MB/s of database | Store reads, KB asked | header blobs):"
    );
    for d in set.disks.iter().filter(|d| d.format.is_rpm()) {
        let data = std::fs::read(&d.database).expect("the database copy");
        let mut times = Vec::new();
        let mut listed = (0, 0);
        for _ in 0..runs {
            let t = Instant::now();
            listed = list_rpm(d.format, &Bytes(&data));
            times.push(t.elapsed());
        }
        let counting = CountingStore {
            inner: Bytes(&data),
            reads: Cell::new(0),
            bytes: Cell::new(0),
        };
        list_rpm(d.format, &counting);
        let m = median(times).as_secs_f64();
        let (n, blob_bytes) = listed;
        if n != PACKAGES {
            wrong.push(format!("{} reader: {n} packages", d.format.name()));
        }
        println!(
            "  {:<11} {:>8.2} ms {:>10.0} pkg/s {:>8.1} MB/s | {:>6} reads, {:>7.0} KB | \
             {n} blobs, {:.1} MB, {:.1} KB each",
            d.format.name(),
            m * 1e3,
            n as f64 / m,
            data.len() as f64 / m / 1e6,
            counting.reads.get(),
            counting.bytes.get() as f64 / 1e3,
            blob_bytes as f64 / 1e6,
            blob_bytes as f64 / n.max(1) as f64 / 1e3,
        );
    }

    println!("filesystem reads in process (ext4), 4 KiB each, 1 s per path:");
    let paths: [(Format, &str); 5] = [
        (Format::RpmSqlite, "/etc/os-release"),
        (Format::RpmSqlite, "/usr/lib/sysimage/rpm/rpmdb.sqlite"),
        (Format::RpmSqlite, "/var/lib/rpm/rpmdb.sqlite"),
        (
            Format::Pacman,
            "/var/lib/pacman/local/bash-libs-1:1.0.3-2/desc",
        ),
        (Format::Dpkg, "/var/lib/dpkg/status"),
    ];
    for (format, path) in paths {
        let d = set
            .disks
            .iter()
            .find(|d| d.format == format)
            .expect("built");
        let path = if format == Format::Pacman {
            // The real directory name of the first package.
            let local = d.database.clone();
            let mut names: Vec<_> = std::fs::read_dir(&local)
                .expect("pacman database copy")
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            format!("/var/lib/pacman/local/{}/desc", names[0])
        } else {
            path.to_string()
        };
        let r = fs_reads(&d.image, &path, Duration::from_secs(1));
        println!(
            "  {:<58} {:>8.0} reads/s  {:>6.1} us each",
            path,
            r,
            1e6 / r
        );
    }

    let mut rows: Vec<Row> = set.disks.iter().map(|_| Row::default()).collect();
    let mut counts = vec![(0usize, 0usize); set.disks.len()];
    for round in 0..runs {
        eprintln!("round {}/{runs}", round + 1);
        for (i, d) in set.disks.iter().enumerate() {
            let row = &mut rows[i];
            let (t, n, reads) = inspect_inproc(&d.image, true);
            row.inproc_apps.push(t);
            row.reads_apps = reads;
            counts[i].0 = n;
            let (t, n0, reads) = inspect_inproc(&d.image, false);
            row.inproc_none.push(t);
            row.reads_none = reads;
            assert_eq!(n0, 0, "{}: applications when not asked", d.format.name());
            if !qemu {
                counts[i].1 = PACKAGES;
                continue;
            }
            let (t, n) = inspect_qemu(vmch, &d.image, true);
            row.qemu_apps.push(t);
            counts[i].1 = n;
            let (t, n0) = inspect_qemu(vmch, &d.image, false);
            row.qemu_none.push(t);
            assert_eq!(n0, 0, "{}: applications in the XML", d.format.name());
        }
    }

    println!(
        "whole inspection, median of {runs} (in process: with apps | without | listing | \
         device reads with/without; QEMU TCG: with | without | listing; applications \
         in process / XML):"
    );
    for ((d, row), (n_inproc, n_xml)) in set.disks.iter().zip(rows).zip(counts) {
        let (a, b) = (median(row.inproc_apps), median(row.inproc_none));
        let (qa, qb) = if qemu {
            (median(row.qemu_apps), median(row.qemu_none))
        } else {
            (Duration::ZERO, Duration::ZERO)
        };
        println!(
            "  {:<11} {:>8.2} | {:>6.2} | {:>8.2} ms | {:>6} / {:<5} || {:>7.1} | {:>6.1} | \
             {:>6.1} ms || {n_inproc} / {n_xml}",
            d.format.name(),
            ms(a),
            ms(b),
            ms(a.saturating_sub(b)),
            row.reads_apps,
            row.reads_none,
            ms(qa),
            ms(qb),
            ms(qa) - ms(qb),
        );
        if n_inproc != PACKAGES || n_xml != PACKAGES {
            wrong.push(format!(
                "{}: {n_inproc} applications in process, {n_xml} in the XML",
                d.format.name()
            ));
        }
    }
    if !wrong.is_empty() {
        eprintln!("WRONG NUMBER OF APPLICATIONS (expected {PACKAGES} each):");
        for w in wrong {
            eprintln!("  {w}");
        }
        std::process::exit(1);
    }
}

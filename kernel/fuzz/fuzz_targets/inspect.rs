//! cargo-fuzz target: the whole appliance on one arbitrary disk image.
//!
//! The input is the disk (cut at 4 MiB). The appliance scans it (partition table,
//! detection, ext2/3/4 open), inspects it with applications, and answers directory
//! listings, stats, reads and usage on every filesystem and on every OS root it found.
//! Errors are fine; panics are not.
//!
//! Random bytes rarely get past the superblock, so start from the seed images in
//! `seeds/inspect/` (a small ext4 root filesystem, and an MBR disk holding one) and let
//! libFuzzer mutate them. Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run inspect --sanitizer none corpus/inspect seeds/inspect -- -max_len=2097152 -timeout=10 -rss_limit_mb=2048`
#![no_main]

use std::rc::Rc;
use std::sync::OnceLock;

use vmchannel_inspect::appliance::Appliance;
use vmchannel_inspect::disk::BlockDevice;
use libfuzzer_sys::fuzz_target;
use vmchannel_proto::{Reply, Request, Target};

const MAX_DISK: usize = 4 << 20;

/// `FUZZ_VERBOSE=1` prints every request and reply (for looking at one input).
fn handle(app: &mut Appliance, request: Request) -> Option<Reply> {
    let reply = app.handle(&request);
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    if *VERBOSE.get_or_init(|| std::env::var_os("FUZZ_VERBOSE").is_some()) {
        eprintln!("{request:?}\n  -> {reply:?}");
    }
    reply.ok()
}

fn file_requests(app: &mut Appliance, target: &Target) {
    let t = || target.clone();
    for path in ["/", "/etc", "/boot"] {
        let _ = handle(
            app,
            Request::ReadDir {
                target: t(),
                path: path.into(),
            },
        );
    }
    let _ = handle(
        app,
        Request::Stat {
            target: t(),
            path: "/etc/os-release".into(),
            follow: true,
        },
    );
    let _ = handle(
        app,
        Request::Stat {
            target: t(),
            path: "/bin".into(),
            follow: false,
        },
    );
    // Through the /bin -> usr/bin link.
    let _ = handle(
        app,
        Request::Stat {
            target: t(),
            path: "/bin/ls".into(),
            follow: true,
        },
    );
    let _ = handle(
        app,
        Request::Read {
            target: t(),
            path: "/etc/fstab".into(),
            offset: 0,
            len: 4096,
        },
    );
    let _ = handle(
        app,
        Request::Usage {
            target: t(),
            path: "/".into(),
        },
    );
    // The download path: resolve once, then read from the filesystem holding the file.
    if let Ok(f) = app.open(target, "/etc/os-release") {
        let mut buf = vec![0u8; f.size.min(4096) as usize];
        let _ = f.fs.read_at(&f.path, 0, &mut buf);
    }
}

fuzz_target!(|data: &[u8]| {
    let disk = data[..data.len().min(MAX_DISK)].to_vec();
    let mut app = Appliance::new(vec![Rc::new(disk) as Rc<dyn BlockDevice>]);

    let _ = handle(&mut app, Request::ListDevices);
    let devices = match handle(&mut app, Request::ListFilesystems) {
        Some(Reply::Filesystems(v)) => v.into_iter().map(|f| f.device).collect(),
        _ => Vec::new(),
    };
    let roots = match handle(&mut app, Request::Inspect { applications: true }) {
        Some(Reply::Inspection(oses)) => oses.into_iter().map(|o| o.root).collect(),
        _ => Vec::new(),
    };
    for dev in devices {
        file_requests(&mut app, &Target::Device(dev));
    }
    for root in roots {
        file_requests(&mut app, &Target::Os(root));
    }
});

//! cargo-fuzz target: libguestfs's daemon procedures (`vmchannel_inspect::guestfs`) on one
//! arbitrary disk image, as virt-inspector, virt-ls, virt-cat and virt-df drive them.
//!
//! The input is the disk (cut at 4 MiB). The daemon lists devices, partitions and
//! filesystems, runs `blkid` on each, inspects, reads every getter of every root, mounts each root with its
//! mountpoints, and then lists (`readdir`, `ls0`, `find0`), stats, identifies (`file`) and
//! opens files, reads usage, lists rpm packages, and walks any registry hive it can open.
//! Errors are fine; panics are not. Start from the inspect target's seeds:
//! `cargo fuzz run guestfs --sanitizer none corpus/guestfs seeds/inspect -- -max_len=2097152`
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::disk::BlockDevice;
use vmchannel_inspect::guestfs::Daemon;

const MAX_DISK: usize = 4 << 20;

fn walk(d: &Daemon) {
    let _ = d.find0("/");
    for dir in ["/", "/etc", "/boot"] {
        let _ = d.readdir(dir);
        let _ = d.ls0(dir);
    }
    for path in ["/etc/os-release", "/etc/hostname", "/bin", "/usr/share/pixmaps/debian-logo.png"] {
        let _ = d.is_file(path, true);
        let _ = d.is_dir(path, false);
        let _ = d.exists(path);
        let _ = d.filesize(path);
        let _ = d.realpath(path);
        let _ = d.file(path);
        if let Ok((fs, inner, size)) = d.open(path) {
            let mut buf = vec![0u8; 8192];
            let _ = fs.read_at(&inner, 0, &mut buf);
            let _ = fs.read_at(&inner, size.saturating_sub(100), &mut buf);
        }
    }
    let _ = d.statvfs("/");
    let _ = d.rpm_applications();
}

fn hive(d: &mut Daemon, root: &str) {
    for name in ["SOFTWARE", "SYSTEM"] {
        let Ok(path) = d.windows_hive(root, name) else {
            continue;
        };
        if d.hivex_open(&path).is_err() {
            continue;
        }
        if let Ok(root_node) = d.hivex_root() {
            let mut todo = vec![root_node];
            let mut seen = 0;
            while let Some(node) = todo.pop() {
                seen += 1;
                if seen > 200 {
                    break;
                }
                let _ = d.hivex_node_name(node);
                let _ = d.hivex_node_parent(node);
                let _ = d.hivex_node_get_child(node, "Microsoft");
                if let Ok(values) = d.hivex_node_values(node) {
                    for v in values.into_iter().take(20) {
                        let _ = d.hivex_value_key(v);
                        let _ = d.hivex_value_type(v);
                        let _ = d.hivex_value_value(v);
                        let _ = d.hivex_value_string(v);
                    }
                }
                if let Ok(children) = d.hivex_node_children(node) {
                    todo.extend(children.into_iter().take(20));
                }
            }
        }
        let _ = d.hivex_close();
    }
}

fuzz_target!(|data: &[u8]| {
    let disk: Rc<dyn BlockDevice> = Rc::new(data[..data.len().min(MAX_DISK)].to_vec());
    let mut d = Daemon::new(vec![disk]);
    let mut devices = d.list_devices();
    devices.extend(d.list_partitions());
    devices.extend(d.lvs());
    for dev in &devices {
        let _ = d.blkid(dev);
    }
    let filesystems = d.list_filesystems();
    for (dev, _) in &filesystems {
        let _ = d.blkid(dev);
        let _ = d.vfs_type(dev);
        let _ = d.vfs_label(dev);
        let _ = d.vfs_uuid(dev);
    }
    for root in d.inspect_os() {
        let mountpoints = match d.os(&root) {
            Ok(os) => os.mountpoints.clone(),
            Err(_) => continue,
        };
        // As the tools do: shortest mountpoint first.
        let mut mps = mountpoints;
        mps.sort_by_key(|(_, mp)| mp.len());
        for (dev, mp) in &mps {
            let _ = d.mount_ro(dev, mp);
        }
        walk(&d);
        hive(&mut d, &root);
        let _ = d.applications(&root);
        d.umount_all();
    }
    // Every filesystem on its own at /, as virt-df and virt-ls -a do.
    for (dev, _) in &filesystems {
        if d.mount_ro(dev, "/").is_ok() {
            walk(&d);
        }
        d.umount_all();
    }
});

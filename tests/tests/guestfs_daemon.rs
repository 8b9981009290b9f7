//! libguestfs's daemon procedures (`vmchannel_inspect::guestfs`) on the host, over the test
//! disks: what unmodified libguestfs tools will be told when they drive our appliance.

use std::rc::Rc;

use vmchannel_inspect::disk::BlockDevice;
use vmchannel_inspect::guestfs::Daemon;
use vmchannel_tests::images::shared;
use vmchannel_tests::inproc::disk::FileDisk;

fn daemon(paths: &[&std::path::Path]) -> Daemon {
    let disks: Vec<Rc<dyn BlockDevice>> = paths
        .iter()
        .map(|p| Rc::new(FileDisk::open(p).unwrap()) as Rc<dyn BlockDevice>)
        .collect();
    Daemon::new(disks)
}

#[test]
fn devices_filesystems_and_inspection_of_the_debian_disk() {
    let d = shared();
    let mut g = daemon(&[&d.debian]);
    assert_eq!(g.list_devices(), ["/dev/sda"]);
    assert_eq!(g.list_partitions(), ["/dev/sda1", "/dev/sda2", "/dev/sda3"]);
    assert_eq!(
        g.list_filesystems(),
        [
            ("/dev/sda1".to_string(), "ext4".to_string()),
            ("/dev/sda2".to_string(), "ext4".to_string()),
            ("/dev/sda3".to_string(), "swap".to_string()),
        ]
    );
    assert_eq!(g.vfs_type("/dev/sda2").unwrap(), "ext4");
    assert_eq!(
        g.vfs_uuid("/dev/sda2").unwrap(),
        vmchannel_tests::images::ids::DEBIAN_ROOT_UUID
    );
    assert_eq!(g.vfs_type("/dev/sdz9").unwrap_err().errno, "ENOENT");
    assert!(g.lvs().is_empty());
    assert_eq!(g.inspect_os(), ["/dev/sda2"]);
    assert_eq!(g.inspect_get_roots(), ["/dev/sda2"]);
    let os = g.os("/dev/sda2").unwrap();
    assert_eq!(os.distro.as_deref(), Some("debian"));
    let e = g.os("/dev/sda1").unwrap_err();
    assert!(e.message.contains("root device not found"), "{e}");
}

#[test]
fn mounts_and_paths_as_the_daemon_sees_them() {
    let d = shared();
    let mut g = daemon(&[&d.debian]);
    // Nothing mounted: paths do not exist.
    assert!(!g.is_file("/etc/hostname", true).unwrap());
    assert_eq!(g.filesize("/etc/hostname").unwrap_err().errno, "ENOENT");
    // `/` must come first.
    assert!(g.mount_ro("/dev/sda1", "/boot").is_err());
    g.mount_ro("/dev/sda2", "/").unwrap();
    g.mount_ro("/dev/sda1", "/boot").unwrap();
    assert!(
        g.mount_ro("/dev/sda3", "/mnt").is_err(),
        "swap cannot be mounted"
    );
    assert_eq!(g.mounts(), ["/dev/sda2", "/dev/sda1"]);
    assert!(g.is_file("/etc/hostname", true).unwrap());
    assert!(g.is_dir("/boot/grub", true).unwrap());
    assert!(g.exists("/boot/grub/grub.cfg").unwrap());
    assert!(!g.exists("/no/such").unwrap());
    assert_eq!(g.filesize("/boot/grub/grub.cfg").unwrap(), 14);
    let (fs, inner, size) = g.open("/boot/grub/grub.cfg").unwrap();
    assert_eq!(size, 14);
    assert_eq!(fs.read_file(&inner, 100).unwrap(), b"set default=0\n");
    assert_eq!(g.open("/etc").err().map(|e| e.errno), Some("EISDIR"));
    let names: Vec<String> = g
        .readdir("/boot")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    // ext4 gives a one-block directory back in hash order, `.` and `..` included (where
    // they fall is checked against Linux in inspect/tests/inode_details.rs).
    assert!(
        names.iter().any(|n| n == ".") && names.iter().any(|n| n == ".."),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "grub"), "{names:?}");
    assert_eq!(g.readdir("/etc/hostname").unwrap_err().errno, "ENOTDIR");
    assert_eq!(
        g.realpath("/boot/../etc/./hostname").unwrap(),
        "/etc/hostname"
    );
    assert!(g.is_file("relative", true).is_err());
    g.umount_all();
    assert!(g.mounts().is_empty());
    assert!(!g.exists("/etc").unwrap());
}

#[test]
fn file_and_statvfs() {
    let d = shared();
    let mut g = daemon(&[&d.debian]);
    g.mount_ro("/dev/sda2", "/").unwrap();
    assert_eq!(g.file("/etc").unwrap(), "directory");
    assert_eq!(g.file("/etc/hostname").unwrap(), "ASCII text");
    // (PNG descriptions are checked in the module's unit tests, and end to end by
    // virt-inspector's icons on the layout disks, vmch/tests/libguestfs.rs.)
    let u = g.statvfs("/").unwrap();
    assert!(u.blocks > 0 && u.blocks_free <= u.blocks, "{u:?}");
}

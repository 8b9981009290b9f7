//! libguestfs's `blkid` procedure (`Daemon::blkid`) on the Ubuntu layout disk, against
//! what the stock appliance answered (`tests/data/libguestfs/blkid.txt`: `guestfish blkid`
//! on /dev/sda1, /dev/sda15, /dev/sda16, /dev/sda14 and /dev/sda, recorded once; guestfish
//! prints the hashtable as `KEY: VALUE` lines). The guestfish script of the libguestfs
//! drop-in test runs the same calls through our appliance end to end.

use std::path::Path;
use std::rc::Rc;

use vmchannel_inspect::disk::BlockDevice;
use vmchannel_inspect::guestfs::Daemon;
use vmchannel_tests::hosts::require;
use vmchannel_tests::images::ImageError;
use vmchannel_tests::inproc::disk::FileDisk;
use vmchannel_tests::layouts::Layout;

#[test]
fn blkid_of_the_ubuntu_disk_is_the_stock_appliances() {
    let dir = tempfile::Builder::new()
        .prefix("vmch-blkid-ubuntu")
        .tempdir()
        .unwrap();
    let img = dir.path().join("ubuntu.img");
    match Layout::Ubuntu.build(&img, dir.path()) {
        Ok(()) => {}
        Err(e @ ImageError::Tool { .. }) => {
            require(&format!("the image tools ({e})"), false, "blkid ubuntu");
            return;
        }
        Err(e) => panic!("building the Ubuntu layout disk: {e}"),
    }
    let disk = Rc::new(FileDisk::open(&img).unwrap()) as Rc<dyn BlockDevice>;
    let mut g = Daemon::new(vec![disk]);
    let mut got = String::new();
    for dev in [
        "/dev/sda1",
        "/dev/sda15",
        "/dev/sda16",
        "/dev/sda14",
        "/dev/sda",
    ] {
        for (k, v) in g.blkid(dev).unwrap() {
            got.push_str(&format!("{k}: {v}\n"));
        }
    }
    let want = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/libguestfs/blkid.txt"),
    )
    .unwrap();
    assert_eq!(got, want);
}

//! The read-only virtio-blk device model against a real guest driver (virtio-drivers'
//! `VirtIOBlk`) in one process, over shared guest memory and the in-process virtio-pci
//! transport (see `vmchannel_tests::inproc`).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use host_device::block::{Block, BlockConfig};
use host_device::pci::VirtioPciDevice;
use virtio_drivers::Error;
use virtio_drivers::device::blk::{SECTOR_SIZE, VirtIOBlk};
use vmchannel_tests::inproc::{
    CountingSink, GuestRam, InProcHal, InProcTransport, RAM_SIZE, SharedDevice,
};

/// The image: 4 MiB.
const IMAGE_LEN: usize = 4 << 20;
const SECTORS: usize = IMAGE_LEN / SECTOR_SIZE;
const SERIAL: &str = "vmchannel-inproc-blk";

type Disk = VirtIOBlk<InProcHal, InProcTransport<Block>>;

/// Every byte depends on its sector and its place in the sector.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            ((i / SECTOR_SIZE) as u8).wrapping_mul(37)
                ^ ((i / SECTOR_SIZE) >> 8) as u8
                ^ (i % 251) as u8
        })
        .collect()
}

/// A temporary image file holding [`pattern`].
fn image() -> (tempfile::NamedTempFile, Vec<u8>) {
    let bytes = pattern(IMAGE_LEN);
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(&bytes).expect("write the image");
    f.flush().expect("flush the image");
    (f, bytes)
}

/// The guest's view: RAM installed on this thread, the device behind the transport, and the
/// driver probed.
struct Vm {
    _ram: Arc<GuestRam>,
    ram_mem: vm_memory::GuestMemoryMmap,
    sink: Arc<CountingSink>,
    dev: SharedDevice<Block>,
    disk: Disk,
}

fn block(path: &Path) -> Block {
    Block::open(
        path,
        BlockConfig {
            serial: Some(SERIAL.into()),
        },
    )
    .expect("open the image")
}

fn boot(path: &Path) -> Vm {
    let ram = GuestRam::new(RAM_SIZE).expect("guest RAM");
    ram.install();
    let sink = Arc::new(CountingSink::counting());
    let dev: SharedDevice<Block> = Arc::new(Mutex::new(VirtioPciDevice::new(
        block(path),
        ram.memory(),
        sink.clone(),
        4,
    )));
    let transport = InProcTransport::new(dev.clone()).expect("virtio capabilities");
    let disk = VirtIOBlk::<InProcHal, _>::new(transport).expect("the driver probes the device");
    Vm {
        ram_mem: ram.memory(),
        _ram: ram,
        sink,
        dev,
        disk,
    }
}

fn read(disk: &mut Disk, sector: usize, sectors: usize) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; sectors * SECTOR_SIZE];
    disk.read_blocks(sector, &mut buf).map(|()| buf)
}

fn expect(image: &[u8], sector: usize, sectors: usize) -> &[u8] {
    &image[sector * SECTOR_SIZE..(sector + sectors) * SECTOR_SIZE]
}

#[test]
fn driver_reads_the_image() {
    let (file, bytes) = image();
    let mut vm = boot(file.path());
    assert_eq!(vm.disk.capacity(), SECTORS as u64);
    assert!(vm.disk.readonly());

    for (sector, sectors) in [
        (0, 1),
        (0, 8),
        (1, 3),
        (SECTORS / 2, 16),
        (SECTORS / 2 + 7, 128),
        (SECTORS - 8, 8),
        (SECTORS - 1, 1),
        (1000, 512),
    ] {
        let got = read(&mut vm.disk, sector, sectors)
            .unwrap_or_else(|e| panic!("read {sectors} sectors at {sector}: {e:?}"));
        assert!(
            got == expect(&bytes, sector, sectors),
            "data of {sectors} sectors at {sector}"
        );
    }
    // Past the end, and straddling it.
    assert_eq!(read(&mut vm.disk, SECTORS, 1), Err(Error::IoError));
    assert_eq!(read(&mut vm.disk, SECTORS - 1, 2), Err(Error::IoError));
    assert_eq!(read(&mut vm.disk, usize::MAX / 2, 1), Err(Error::IoError));

    let mut id = [0u8; 20];
    assert_eq!(vm.disk.device_id(&mut id), Ok(SERIAL.len()));
    assert_eq!(&id[..SERIAL.len()], SERIAL.as_bytes());
    assert_eq!(vm.disk.flush(), Ok(()));

    let stats = vm.dev.lock().unwrap().device().stats();
    assert_eq!(stats.io_errors, 3);
    assert_eq!(stats.bad_chains, 0);
    assert_eq!(
        stats.bytes_read,
        (1 + 8 + 3 + 16 + 128 + 8 + 1 + 512) * SECTOR_SIZE as u64
    );
    assert!(vm.sink.intx_raised() > 0);
}

#[test]
fn writes_fail_and_the_file_is_unchanged() {
    let (file, bytes) = image();
    let before_meta = std::fs::metadata(file.path()).unwrap();
    let mut vm = boot(file.path());
    assert!(vm.disk.readonly());

    assert_eq!(
        vm.disk.write_blocks(0, &[0x55; SECTOR_SIZE]),
        Err(Error::IoError)
    );
    assert_eq!(
        vm.disk.write_blocks(SECTORS / 2, &vec![0xa5; 64 * 1024]),
        Err(Error::IoError)
    );
    assert_eq!(
        vm.disk.write_blocks(SECTORS - 1, &[0; SECTOR_SIZE]),
        Err(Error::IoError)
    );
    assert_eq!(vm.disk.flush(), Ok(()));

    // The device still reads the original bytes, and so does the file.
    assert!(read(&mut vm.disk, 0, 1).unwrap() == expect(&bytes, 0, 1));
    assert!(read(&mut vm.disk, SECTORS / 2, 128).unwrap() == expect(&bytes, SECTORS / 2, 128));
    assert_eq!(vm.dev.lock().unwrap().device().stats().write_refused, 3);
    drop(vm);
    assert!(
        std::fs::read(file.path()).unwrap() == bytes,
        "the image changed"
    );
    let after_meta = std::fs::metadata(file.path()).unwrap();
    assert_eq!(after_meta.len(), before_meta.len());
    assert_eq!(
        after_meta.modified().unwrap(),
        before_meta.modified().unwrap()
    );
}

#[test]
fn driver_carries_on_after_snapshot_restore() {
    let (file, bytes) = image();
    let mut vm = boot(file.path());
    assert!(read(&mut vm.disk, 10, 4).unwrap() == expect(&bytes, 10, 4));
    {
        let mut dev = vm.dev.lock().unwrap();
        let snap = dev.snapshot();
        // Another disk size is refused.
        let small = tempfile::NamedTempFile::new().unwrap();
        small.as_file().set_len(1 << 20).unwrap();
        assert!(
            VirtioPciDevice::restore(
                block(small.path()),
                vm.ram_mem.clone(),
                vm.sink.clone(),
                &snap
            )
            .is_err()
        );
        *dev = VirtioPciDevice::restore(
            block(file.path()),
            vm.ram_mem.clone(),
            vm.sink.clone(),
            &snap,
        )
        .expect("restore");
    }
    for sector in [0, SECTORS / 3, SECTORS - 4] {
        assert!(read(&mut vm.disk, sector, 4).unwrap() == expect(&bytes, sector, 4));
    }
    assert_eq!(
        vm.disk.write_blocks(0, &[1; SECTOR_SIZE]),
        Err(Error::IoError)
    );
}

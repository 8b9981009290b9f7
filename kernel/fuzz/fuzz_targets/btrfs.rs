//! cargo-fuzz target: the btrfs reader on one arbitrary btrfs device.
//!
//! A btrfs image spreads its trees over tens of MiB (chunks start at 1 MiB and beyond), so
//! the input is a sparse image: a 3-byte header, then records of a 4-byte little-endian
//! block number (4 KiB blocks) and that block's 4096 bytes; blocks not given are zeros.
//! Header: byte 0 bit 0 set means "fix the checksums first" (the superblock's and every
//! tree block's whose header carries the filesystem's fsid), so that mutations reach the
//! parsers behind the checksums; bytes 1-2 are the device size in MiB (at least 1, at most
//! 1024). Seeds are made from mkfs.btrfs images by `seeds/make-btrfs-seeds.sh`.
//!
//! What runs: `Btrfs::open`, the default subvolume, the subvolume list, and on the default
//! and up to 8 subvolumes a bounded walk (listings, stats, link targets, whole-file reads
//! and reads at odd offsets) and usage; then `DiskSet::scan` and `inspect` on the device.
//! Errors are fine; panics, hangs and huge allocations are not.
//!
//! Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run btrfs --sanitizer none corpus/btrfs seeds/btrfs -- -max_len=1048576 -timeout=10 -rss_limit_mb=2048`
#![no_main]

use std::collections::BTreeMap;
use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::appliance::disks::DiskSet;
use vmchannel_inspect::disk::{BlockDevice, DiskError, check_range};
use vmchannel_inspect::fs::FileSystem;
use vmchannel_inspect::fs::btrfs::Btrfs;

const BLOCK: u64 = 4096;

struct Sparse {
    size: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
}

impl Sparse {
    fn get(&self, offset: u64, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let (blk, within) = (at / BLOCK, (at % BLOCK) as usize);
            let n = (BLOCK as usize - within).min(buf.len() - done);
            match self.blocks.get(&blk) {
                Some(b) => buf[done..done + n].copy_from_slice(&b[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
    }

    fn put(&mut self, offset: u64, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let (blk, within) = (at / BLOCK, (at % BLOCK) as usize);
            let n = (BLOCK as usize - within).min(data.len() - done);
            let b = self
                .blocks
                .entry(blk)
                .or_insert_with(|| vec![0; BLOCK as usize]);
            b[within..within + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
    }
}

impl BlockDevice for Sparse {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size)?;
        self.get(offset, buf);
        Ok(())
    }
}

fn crc32c(data: &[u8]) -> u32 {
    const C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    C.checksum(data)
}

/// Recomputes the superblock's checksum and every tree block's that carries the fsid.
fn fix_checksums(dev: &mut Sparse) {
    let mut sb = vec![0u8; 4096];
    dev.get(0x10000, &mut sb);
    let nodesize = u32::from_le_bytes(sb[0x94..0x98].try_into().unwrap()) as u64;
    let fsid = sb[0x20..0x30].to_vec();
    if nodesize.is_power_of_two() && (4096..=65536).contains(&nodesize) {
        let starts: Vec<u64> = dev
            .blocks
            .keys()
            .map(|b| b * BLOCK)
            .filter(|o| o % nodesize == 0 && *o != 0x10000)
            .collect();
        for off in starts {
            let mut node = vec![0u8; nodesize as usize];
            dev.get(off, &mut node);
            if node[32..48] == fsid[..] {
                let c = crc32c(&node[32..]);
                dev.put(off, &c.to_le_bytes());
            }
        }
    }
    let c = crc32c(&sb[0x20..]);
    dev.put(0x10000, &c.to_le_bytes());
}

fn parse(data: &[u8]) -> Option<Sparse> {
    let (head, mut rest) = (data.get(..3)?, &data[3..]);
    let mib = u64::from(u16::from_le_bytes([head[1], head[2]])).clamp(1, 1024);
    let mut dev = Sparse {
        size: mib << 20,
        blocks: BTreeMap::new(),
    };
    while rest.len() >= 4 {
        let n = u64::from(u32::from_le_bytes(rest[..4].try_into().unwrap()));
        let take = rest.len().min(4 + BLOCK as usize);
        let mut blk = rest[4..take].to_vec();
        blk.resize(BLOCK as usize, 0);
        if n * BLOCK < dev.size {
            dev.blocks.insert(n, blk);
        }
        rest = &rest[take..];
    }
    if head[0] & 1 != 0 {
        fix_checksums(&mut dev);
    }
    Some(dev)
}

/// Lists, stats and reads under `dir`, at most `budget` entries in all.
fn walk(fs: &dyn FileSystem, dir: &str, depth: u32, budget: &mut u32) {
    let Ok(entries) = fs.read_dir(dir) else {
        return;
    };
    for e in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let path = if dir == "/" {
            format!("/{}", e.name)
        } else {
            format!("{dir}/{}", e.name)
        };
        let _ = fs.lstat(&path);
        let _ = fs.stat(&path);
        match e.stat.kind {
            vmchannel_proto::FileKind::Directory if depth < 4 => walk(fs, &path, depth + 1, budget),
            vmchannel_proto::FileKind::Symlink => {
                let _ = fs.read_link(&path);
            }
            _ => {
                let _ = fs.read_file(&path, 1 << 20);
                let mut buf = [0u8; 5000];
                let _ = fs.read_at(&path, 4093, &mut buf);
                let _ = fs.read_at(&path, 1 << 17, &mut buf);
            }
        }
    }
}

fn exercise(fs: &dyn FileSystem) {
    let mut budget = 200;
    walk(fs, "/", 0, &mut budget);
    let _ = fs.usage();
    let _ = fs.stat("/etc/../etc/./os-release");
}

fuzz_target!(|data: &[u8]| {
    let Some(dev) = parse(data) else { return };
    let dev: Rc<dyn BlockDevice> = Rc::new(dev);
    let opened = Btrfs::open(dev.clone());
    if std::env::var_os("FUZZ_VERBOSE").is_some() {
        match &opened {
            Ok(b) => eprintln!(
                "opened: default {:?}, subvolumes {:?}",
                b.default_subvolume(),
                b.subvolumes()
            ),
            Err(e) => eprintln!("open: {e}"),
        }
    }
    if let Ok(b) = opened {
        let _ = b.default_subvolume();
        if let Ok(f) = b.default_fs() {
            exercise(&f);
        }
        if let Ok(subs) = b.subvolumes() {
            for s in subs.iter().take(8) {
                if let Ok(f) = b.subvolume(s.id) {
                    exercise(&f);
                }
            }
        }
    }
    let set = DiskSet::scan(&[dev]);
    let _ = vmchannel_inspect::inspect::inspect(&set.volumes, true);
});

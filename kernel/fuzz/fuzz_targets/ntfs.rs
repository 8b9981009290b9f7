//! cargo-fuzz target: the NTFS reader (`vmchannel_inspect::fs::ntfs`) and superblock
//! detection on one arbitrary NTFS device.
//!
//! The input is a sparse device of 512-byte sectors, so that a seed holds only what the
//! reader looks at and every mutation lands in metadata: a 7-byte header, then records of a
//! 4-byte little-endian sector number and that sector's 512 bytes (a short last one is
//! padded with zeros; sectors past the device are dropped); sectors not given read as
//! zeros. Header:
//! - byte 0, flags: bit 0 "protect the records": every given sector that starts with
//!   `FILE` or `INDX` is taken as an unprotected multi-sector record of as many sectors as
//!   its update sequence array says (at most 128) and protected as NTFS writes it (the
//!   last two bytes of each sector saved in the array, the update sequence number put in
//!   their place), so that mutations reach the parsers behind the fixup check and seeds
//!   need not hold records' tail sectors that are zero; bit 1 "synthesise `$UpCase`": the
//!   128 KiB from the sector in bytes 3-6 read as a default upcase table (ASCII, Latin-1,
//!   Greek, Cyrillic, full-width Latin) where no sector is given, so seeds carry only the
//!   sectors in which the volume's table differs from it;
//! - bytes 1-2: the device size in MiB (at least 1, at most 1024);
//! - bytes 3-6: the upcase table's first sector (for flag bit 1).
//!
//! Seeds are made from mkntfs images filled through ntfs-3g by `seeds/make-ntfs-seeds.sh`.
//!
//! What runs: detection, `NtfsFs::open`, usage, a stat of a deep path, and a bounded walk
//! (300 entries, 8 levels): readdir, stat and lstat, readlink, reads at the start and near
//! the end of every file. Errors are fine; panics, hangs and huge allocations are not.
//! `FUZZ_VERBOSE=1` prints what opened and what the walk saw.
//!
//! Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run ntfs --sanitizer none -a corpus/ntfs seeds/ntfs -- -max_len=262144 -runs=1000000 -timeout=10 -rss_limit_mb=2048`
#![no_main]

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::disk::{BlockDevice, DiskError, check_range};
use vmchannel_inspect::fs::FileSystem;
use vmchannel_inspect::fs::detect::detect;
use vmchannel_inspect::fs::ntfs::NtfsFs;
use vmchannel_proto::FileKind;

const SECTOR: usize = 512;
const HEADER: usize = 7;
/// Bytes of `$UpCase`'s value.
const UPCASE_BYTES: u64 = 131_072;
/// Most sectors one protected record may span (64 KiB).
const MAX_RECORD_SECTORS: usize = 128;

/// The default upcase table, little-endian: what `seeds/make-ntfs-seeds.sh` computes too.
fn upcase_table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0u32..65536)
            .flat_map(|c| {
                let u = match c {
                    0x61..=0x7A => c - 32,
                    0xE0..=0xFE if c != 0xF7 => c - 32,
                    0xFF => 0x178,
                    0x3B1..=0x3C9 if c != 0x3C2 => c - 32,
                    0x430..=0x44F => c - 32,
                    0x450..=0x45F => c - 80,
                    0xFF41..=0xFF5A => c - 32,
                    _ => c,
                };
                (u as u16).to_le_bytes()
            })
            .collect()
    })
}

struct Sparse {
    size: u64,
    sectors: BTreeMap<u64, [u8; SECTOR]>,
    /// The synthesised upcase table's first byte, if flag bit 1 is set.
    upcase: Option<u64>,
}

impl Sparse {
    fn sector(&self, n: u64, out: &mut [u8; SECTOR]) {
        if let Some(s) = self.sectors.get(&n) {
            *out = *s;
            return;
        }
        let at = n * SECTOR as u64;
        match self.upcase {
            Some(u) if at >= u && at < u + UPCASE_BYTES => {
                let i = (at - u) as usize;
                out.copy_from_slice(&upcase_table()[i..i + SECTOR]);
            }
            _ => out.fill(0),
        }
    }

    /// Protects the record at sector `first` of `count` sectors with the update sequence
    /// array at `usa` of its first sector.
    fn protect(&mut self, first: u64, count: usize, usa: usize) {
        let mut secs: Vec<[u8; SECTOR]> = (first..first + count as u64)
            .take_while(|n| n * (SECTOR as u64) < self.size)
            .map(|n| {
                let mut s = [0u8; SECTOR];
                self.sector(n, &mut s);
                s
            })
            .collect();
        let usn = [secs[0][usa], secs[0][usa + 1]];
        for i in 0..secs.len() {
            let tail = [secs[i][SECTOR - 2], secs[i][SECTOR - 1]];
            let slot = usa + 2 + 2 * i;
            secs[0][slot..slot + 2].copy_from_slice(&tail);
            secs[i][SECTOR - 2..].copy_from_slice(&usn);
        }
        for (n, s) in (first..).zip(secs) {
            self.sectors.insert(n, s);
        }
    }

    /// Protects every record found at the start of a given sector.
    fn protect_all(&mut self) {
        let heads: Vec<(u64, usize, usize)> = self
            .sectors
            .iter()
            .filter(|(_, s)| &s[..4] == b"FILE" || &s[..4] == b"INDX")
            .filter_map(|(&n, s)| {
                let usa = u16::from_le_bytes([s[4], s[5]]) as usize;
                let entries = u16::from_le_bytes([s[6], s[7]]) as usize;
                let count = entries.checked_sub(1)?;
                ((1..=MAX_RECORD_SECTORS).contains(&count) && usa + 2 * entries <= SECTOR - 2)
                    .then_some((n, count, usa))
            })
            .collect();
        for (n, count, usa) in heads {
            self.protect(n, count, usa);
        }
    }
}

impl BlockDevice for Sparse {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size)?;
        let mut done = 0;
        let mut s = [0u8; SECTOR];
        while done < buf.len() {
            let at = offset + done as u64;
            let (n, within) = (at / SECTOR as u64, (at % SECTOR as u64) as usize);
            let len = (SECTOR - within).min(buf.len() - done);
            self.sector(n, &mut s);
            buf[done..done + len].copy_from_slice(&s[within..within + len]);
            done += len;
        }
        Ok(())
    }
}

fn parse(data: &[u8]) -> Option<Sparse> {
    let head = data.get(..HEADER)?;
    let mut rest = &data[HEADER..];
    let mib = u64::from(u16::from_le_bytes([head[1], head[2]])).clamp(1, 1024);
    let size = mib << 20;
    let upcase = u64::from(u32::from_le_bytes([head[3], head[4], head[5], head[6]]))
        .checked_mul(SECTOR as u64)
        .filter(|_| head[0] & 2 != 0);
    let mut dev = Sparse {
        size,
        sectors: BTreeMap::new(),
        upcase,
    };
    while rest.len() >= 4 {
        let n = u64::from(u32::from_le_bytes(rest[..4].try_into().unwrap()));
        let take = rest.len().min(4 + SECTOR);
        let mut s = [0u8; SECTOR];
        s[..take - 4].copy_from_slice(&rest[4..take]);
        if n * (SECTOR as u64) < size {
            dev.sectors.insert(n, s);
        }
        rest = &rest[take..];
    }
    if head[0] & 1 != 0 {
        dev.protect_all();
    }
    Some(dev)
}

fn walk(fs: &NtfsFs, dir: &str, depth: u32, budget: &mut u32, verbose: bool) {
    let entries = match fs.read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            if verbose {
                eprintln!("read_dir {dir}: {e}");
            }
            return;
        }
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
        let _ = fs.read_link(&path);
        let st = fs.stat(&path);
        if verbose {
            eprintln!("{path}: {st:?}");
        }
        if let Ok(st) = st {
            let mut buf = [0u8; 8192];
            let r = fs.read_at(&path, 0, &mut buf);
            if verbose && st.kind == FileKind::File {
                eprintln!("  read: {:?}", r.map(|n| n.min(24)).map(|n| &buf[..n]));
            }
            let _ = fs.read_at(&path, st.size.saturating_sub(5000), &mut buf);
        }
        if e.stat.kind == FileKind::Directory && depth < 8 {
            walk(fs, &path, depth + 1, budget, verbose);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(dev) = parse(data) else { return };
    let verbose = std::env::var_os("FUZZ_VERBOSE").is_some();
    let dev: Rc<dyn BlockDevice> = Rc::new(dev);
    let found = detect(&*dev);
    let opened = NtfsFs::open(dev);
    if verbose {
        eprintln!("detect: {found:?}");
        if let Err(e) = &opened {
            eprintln!("open: {e}");
        }
    }
    let Ok(fs) = opened else {
        return;
    };
    let usage = fs.usage();
    let _ = fs.stat("/WINDOWS/system32/CONFIG/software");
    if verbose {
        eprintln!("usage: {usage:?}");
    }
    let mut budget = 300;
    walk(&fs, "/", 0, &mut budget, verbose);
});

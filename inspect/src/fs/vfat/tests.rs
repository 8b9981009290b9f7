//! Hand-made volumes: what mkfs and mtools would not write (inspect/tests/vfat.rs has the
//! real tools' images).

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::name::checksum;
use super::*;
use crate::disk::BlockDevice;

const SS: usize = 512;

/// A volume made by hand: FAT12, 512-byte sectors and clusters, one reserved sector, one
/// FAT of one sector, a one-sector root directory (16 entries), 64 sectors in all (61
/// clusters); or FAT32 with the root directory at cluster 2.
struct Img {
    d: Vec<u8>,
    fat32: bool,
}

impl Img {
    fn fat12() -> Img {
        let mut d = vec![0u8; 64 * SS];
        d[0] = 0xEB;
        d[11..13].copy_from_slice(&(SS as u16).to_le_bytes());
        d[13] = 1; // sectors per cluster
        d[14..16].copy_from_slice(&1u16.to_le_bytes()); // reserved
        d[16] = 1; // FATs
        d[17..19].copy_from_slice(&16u16.to_le_bytes()); // root entries
        d[19..21].copy_from_slice(&64u16.to_le_bytes()); // sectors
        d[21] = 0xF8;
        d[22..24].copy_from_slice(&1u16.to_le_bytes()); // FAT sectors
        d[510] = 0x55;
        d[511] = 0xAA;
        let mut img = Img { d, fat32: false };
        img.set_fat(0, 0xFF8);
        img.set_fat(1, 0xFFF);
        img
    }

    /// FAT32: two reserved sectors (FSInfo in the second), one FAT of one sector (128
    /// entries), 64 sectors (61 clusters), the root directory at cluster 2.
    fn fat32() -> Img {
        let mut d = vec![0u8; 64 * SS];
        d[0] = 0xEB;
        d[11..13].copy_from_slice(&(SS as u16).to_le_bytes());
        d[13] = 1;
        d[14..16].copy_from_slice(&2u16.to_le_bytes());
        d[16] = 1;
        d[19..21].copy_from_slice(&64u16.to_le_bytes());
        d[21] = 0xF8;
        d[36..40].copy_from_slice(&1u32.to_le_bytes()); // FAT32 FAT sectors
        d[44..48].copy_from_slice(&2u32.to_le_bytes()); // root cluster
        d[48..50].copy_from_slice(&1u16.to_le_bytes()); // FSInfo sector
        d[510] = 0x55;
        d[511] = 0xAA;
        d[SS..SS + 4].copy_from_slice(&FSINFO_LEAD.to_le_bytes());
        d[SS + 484..SS + 488].copy_from_slice(&FSINFO_STRUCT.to_le_bytes());
        let mut img = Img { d, fat32: true };
        img.set_fat(0, 0x0FFF_FFF8);
        img.set_fat(1, 0x0FFF_FFFF);
        img.set_fat(2, 0x0FFF_FFFF);
        img
    }

    fn fat_at(&self) -> usize {
        if self.fat32 { 2 * SS } else { SS }
    }

    fn set_fat(&mut self, c: u32, v: u32) {
        let f = self.fat_at();
        if self.fat32 {
            let at = f + c as usize * 4;
            self.d[at..at + 4].copy_from_slice(&v.to_le_bytes());
        } else {
            let at = f + c as usize * 3 / 2;
            let old = u16::from_le_bytes([self.d[at], self.d[at + 1]]);
            let new = if c & 1 == 1 {
                (old & 0x000F) | ((v as u16) << 4)
            } else {
                (old & 0xF000) | (v as u16 & 0xFFF)
            };
            self.d[at..at + 2].copy_from_slice(&new.to_le_bytes());
        }
    }

    /// Links `clusters` into a chain ending in an end marker.
    fn chain(&mut self, clusters: &[u32]) {
        let end = if self.fat32 { 0x0FFF_FFFF } else { 0xFFF };
        for w in clusters.windows(2) {
            self.set_fat(w[0], w[1]);
        }
        if let Some(&last) = clusters.last() {
            self.set_fat(last, end);
        }
    }

    fn cluster(&self, c: u32) -> usize {
        // FAT12: boot, FAT, root; FAT32: boot, FSInfo, FAT.
        3 * SS + (c as usize - 2) * SS
    }

    /// Byte offset of record `i` of the root directory.
    fn root(&self, i: usize) -> usize {
        if self.fat32 {
            self.cluster(2) + i * 32
        } else {
            2 * SS + i * 32
        }
    }

    fn entry(&mut self, at: usize, name: &[u8; 11], attr: u8, start: u32, size: u32) {
        let r = &mut self.d[at..at + 32];
        r[..11].copy_from_slice(name);
        r[11] = attr;
        r[20..22].copy_from_slice(&((start >> 16) as u16).to_le_bytes());
        r[26..28].copy_from_slice(&(start as u16).to_le_bytes());
        r[28..32].copy_from_slice(&size.to_le_bytes());
        // 2023-11-14 22:13:20
        r[22..24].copy_from_slice(&(22u16 << 11 | 13 << 5 | 10).to_le_bytes());
        r[24..26].copy_from_slice(&(43u16 << 9 | 11 << 5 | 14).to_le_bytes());
    }

    /// A long-name slot: sequence byte `id`, 13 units of `name` from `part * 13`.
    fn slot(&mut self, at: usize, id: u8, name: &str, part: usize, sum: u8) {
        let mut units: Vec<u16> = name.encode_utf16().collect();
        units.push(0);
        units.resize(units.len().div_ceil(13).max(part + 1) * 13, 0xFFFF);
        let u = &units[part * 13..part * 13 + 13];
        let r = &mut self.d[at..at + 32];
        r[0] = id;
        r[11] = 0x0F;
        r[13] = sum;
        let spots = (1..11)
            .step_by(2)
            .chain((14..26).step_by(2))
            .chain((28..32).step_by(2));
        for (k, p) in spots.enumerate() {
            r[p..p + 2].copy_from_slice(&u[k].to_le_bytes());
        }
    }

    /// A subdirectory's `.` and `..` at cluster `c` (parent `parent`).
    fn dots(&mut self, c: u32, parent: u32) {
        let at = self.cluster(c);
        self.entry(at, b".          ", 0x10, c, 0);
        self.entry(at + 32, b"..         ", 0x10, parent, 0);
    }

    fn open(self) -> Result<VfatFs, FsError> {
        VfatFs::open(Rc::new(self.d))
    }
}

fn names(fs: &VfatFs, path: &str) -> Vec<String> {
    fs.read_dir(path)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// A FAT12 volume: `A.TXT` of 600 bytes in clusters 2 and 3, `SUB` at 4 holding `B.TXT`
/// (cluster 5, 3 bytes).
fn basic() -> Img {
    let mut img = Img::fat12();
    img.entry(img.root(0), b"A       TXT", 0x20, 2, 600);
    img.chain(&[2, 3]);
    for i in 0..600 {
        let at = img.cluster(2) + i;
        img.d[at] = (i % 251) as u8;
    }
    img.entry(img.root(1), b"SUB        ", 0x10, 4, 0);
    img.chain(&[4]);
    img.dots(4, 0);
    let at = img.cluster(4) + 64;
    img.entry(at, b"B       TXT", 0x21, 5, 3);
    img.chain(&[5]);
    let at = img.cluster(5);
    img.d[at..at + 3].copy_from_slice(b"bee");
    img
}

#[test]
fn a_hand_made_volume_reads() {
    let fs = basic().open().unwrap();
    assert_eq!(fs.fat_type(), bpb::FatType::Fat12);
    assert_eq!(names(&fs, "/"), ["A.TXT", "SUB"]);
    assert_eq!(names(&fs, "/sub"), ["B.TXT"]);
    let data = fs.read_file("/a.txt", 1 << 20).unwrap();
    assert_eq!(data.len(), 600);
    assert!(data.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    let mut buf = [0u8; 100];
    assert_eq!(fs.read_at("/A.TXT", 480, &mut buf).unwrap(), 100);
    assert_eq!(buf[..], data[480..580]);
    assert_eq!(fs.read_at("/A.TXT", 600, &mut buf).unwrap(), 0);
    assert_eq!(fs.read_file("/SUB/b.txt", 10).unwrap(), b"bee");
    let st = fs.stat("/SUB/B.TXT").unwrap();
    assert_eq!(
        (st.kind, st.mode, st.size, st.mtime),
        (FileKind::File, 0o100555, 3, 1_700_000_000)
    );
    let st = fs.stat("/sub").unwrap();
    assert_eq!(
        (st.kind, st.mode, st.size),
        (FileKind::Directory, 0o040755, 512)
    );
    let st = fs.stat("/").unwrap();
    assert_eq!((st.mode, st.size, st.mtime), (0o040755, 16 * 32, 0));
    assert_eq!(fs.stat("/SUB/../a.txt.").unwrap().size, 600);
    assert!(matches!(fs.stat("/nope"), Err(FsError::NotFound(_))));
    assert!(matches!(
        fs.stat("/A.TXT/x"),
        Err(FsError::NotADirectory(_))
    ));
    assert!(matches!(
        fs.read_dir("/A.TXT"),
        Err(FsError::NotADirectory(_))
    ));
    assert!(matches!(
        fs.read_at("/SUB", 0, &mut buf),
        Err(FsError::IsADirectory(_))
    ));
    assert!(matches!(fs.read_link("/A.TXT"), Err(FsError::BadPath(_))));
    let u = fs.usage().unwrap();
    assert_eq!((u.block_size, u.blocks, u.blocks_free), (512, 61, 57));
}

#[test]
fn chain_loops_are_corrupt() {
    let mut img = basic();
    img.set_fat(3, 2); // 2 -> 3 -> 2
    img.entry(img.root(0), b"A       TXT", 0x20, 2, 5000);
    let fs = img.open().unwrap();
    let err = fs.read_file("/A.TXT", 1 << 20).unwrap_err();
    assert!(
        matches!(&err, FsError::Corrupt(m) if m.contains("loops")),
        "{err:?}"
    );
    // A directory chain looping on itself.
    let mut img = basic();
    img.set_fat(4, 4);
    let fs = img.open().unwrap();
    assert!(matches!(fs.read_dir("/SUB"), Err(FsError::Corrupt(_))));
    assert!(matches!(fs.stat("/SUB"), Err(FsError::Corrupt(_))));
    // The listing still shows it.
    assert_eq!(names(&fs, "/"), ["A.TXT", "SUB"]);
}

#[test]
fn chains_out_of_range_or_through_free_clusters_are_corrupt() {
    for (link, what) in [(0x500u32, "outside"), (1, "outside"), (0, "free")] {
        let mut img = basic();
        img.set_fat(2, link);
        let fs = img.open().unwrap();
        let err = fs.read_file("/A.TXT", 1 << 20).unwrap_err();
        assert!(
            matches!(&err, FsError::Corrupt(m) if m.contains(what)),
            "{link}: {err:?}"
        );
    }
    // A start outside the data area, and a file longer than its chain.
    let mut img = basic();
    img.entry(img.root(0), b"A       TXT", 0x20, 999, 600);
    assert!(matches!(
        img.open().unwrap().read_file("/A.TXT", 1 << 20),
        Err(FsError::Corrupt(_))
    ));
    let mut img = basic();
    img.entry(img.root(0), b"A       TXT", 0x20, 2, 2000);
    let err = img
        .open()
        .unwrap()
        .read_file("/A.TXT", 1 << 20)
        .unwrap_err();
    assert!(
        matches!(&err, FsError::Corrupt(m) if m.contains("ends after 2")),
        "{err:?}"
    );
    // A file with a size and no clusters.
    let mut img = basic();
    img.entry(img.root(0), b"A       TXT", 0x20, 0, 10);
    assert!(matches!(
        img.open().unwrap().read_file("/A.TXT", 99),
        Err(FsError::Corrupt(_))
    ));
    // The bad-cluster marker ends a chain, as in Linux.
    let mut img = basic();
    img.set_fat(3, 0xFF7);
    assert_eq!(
        img.open()
            .unwrap()
            .read_file("/A.TXT", 1 << 20)
            .unwrap()
            .len(),
        600
    );
}

#[test]
fn long_names_and_their_failures() {
    let name = "A rather long name.text";
    let short = *b"ARATHE~1TEX";
    let sum = checksum(&short);
    let build = |ids: [u8; 2], sums: [u8; 2]| {
        let mut img = basic();
        let (a, b) = (img.root(2), img.root(3));
        img.slot(a, ids[0], name, 1, sums[0]);
        img.slot(b, ids[1], name, 0, sums[1]);
        img.entry(img.root(4), &short, 0x20, 0, 0);
        img.open().unwrap()
    };
    assert_eq!(
        names(&build([0x42, 0x01], [sum, sum]), "/"),
        ["A.TXT", "SUB", name]
    );
    // Bad checksum: the short name, as Linux falls back to it.
    assert_eq!(
        names(&build([0x42, 0x01], [sum ^ 1, sum ^ 1]), "/"),
        ["A.TXT", "SUB", "ARATHE~1.TEX"]
    );
    // Sequence out of order, checksum differing between slots, no last-slot flag.
    assert_eq!(
        names(&build([0x42, 0x02], [sum, sum]), "/")[2],
        "ARATHE~1.TEX"
    );
    assert_eq!(
        names(&build([0x42, 0x01], [sum, sum ^ 1]), "/")[2],
        "ARATHE~1.TEX"
    );
    assert_eq!(
        names(&build([0x02, 0x01], [sum, sum]), "/")[2],
        "ARATHE~1.TEX"
    );
    assert_eq!(
        names(&build([0x55, 0x01], [sum, sum]), "/")[2],
        "ARATHE~1.TEX"
    );
    // Lookups match the long and the short name, ASCII case folded.
    let fs = build([0x42, 0x01], [sum, sum]);
    assert!(fs.stat("/a RATHER long NAME.TEXT").is_ok());
    assert!(fs.stat("/arathe~1.tex").is_ok());
    // A run that reaches the end of the directory, or a deleted short entry.
    let mut img = basic();
    let last = img.root(15);
    img.slot(last, 0x41, "tail", 0, 0);
    assert_eq!(names(&img.open().unwrap(), "/"), ["A.TXT", "SUB"]);
    let mut img = basic();
    let (a, b) = (img.root(2), img.root(3));
    img.slot(a, 0x41, "gone", 0, 0);
    img.entry(b, b"\xe5ONE       ", 0x20, 0, 0);
    assert_eq!(names(&img.open().unwrap(), "/"), ["A.TXT", "SUB"]);
}

#[test]
fn entries_past_a_free_record_are_read_as_linux_reads_them() {
    let mut img = basic();
    let (label, deleted, late) = (img.root(3), img.root(4), img.root(6));
    img.entry(label, b"MY LABEL   ", 0x08, 0, 0);
    img.entry(deleted, b"\xe5ELETED TXT", 0x20, 0, 0);
    img.entry(late, b"LATE    TXT", 0x20, 0, 0);
    assert_eq!(
        names(&img.open().unwrap(), "/"),
        ["A.TXT", "SUB", "LATE.TXT"]
    );
}

#[test]
fn a_directory_that_contains_itself_is_corrupt() {
    let mut img = basic();
    let at = img.cluster(4) + 96;
    img.entry(at, b"SELF       ", 0x10, 4, 0);
    let fs = img.open().unwrap();
    assert_eq!(names(&fs, "/SUB"), ["B.TXT", "SELF"]);
    let err = fs.read_dir("/SUB/SELF").unwrap_err();
    assert!(
        matches!(&err, FsError::Corrupt(m) if m.contains("contains itself")),
        "{err:?}"
    );
    // Pointing at the root (cluster 0 on FAT12/16), or missing its dot entries.
    let mut img = basic();
    let at = img.cluster(4) + 96;
    img.entry(at, b"UP         ", 0x10, 0, 0);
    assert!(matches!(
        img.open().unwrap().read_dir("/SUB/UP"),
        Err(FsError::Corrupt(_))
    ));
    let mut img = basic();
    let at = img.cluster(4);
    img.d[at..at + 64].fill(0);
    assert!(matches!(
        img.open().unwrap().read_dir("/SUB"),
        Err(FsError::Corrupt(_))
    ));
    // FAT32: a subdirectory at the root's cluster.
    let mut img = Img::fat32();
    let at = img.root(0);
    img.entry(at, b"ROOT       ", 0x10, 2, 0);
    let fs = img.open().unwrap();
    assert_eq!(names(&fs, "/"), ["ROOT"]);
    let err = fs.read_dir("/ROOT").unwrap_err();
    assert!(
        matches!(&err, FsError::Corrupt(m) if m.contains("cluster 2")),
        "{err:?}"
    );
}

#[test]
fn fat32_volumes_read() {
    let mut img = Img::fat32();
    let at = img.root(0);
    img.entry(at, b"BIG     BIN", 0x20, 10, 1500);
    // Fragmented: 10, 11, 20.
    img.chain(&[10, 11, 20]);
    for (k, c) in [10u32, 11, 20].into_iter().enumerate() {
        let at = img.cluster(c);
        img.d[at..at + SS].fill(k as u8 + 1);
    }
    // A root directory of two clusters: 2 -> 30.
    img.chain(&[2, 30]);
    let at = img.cluster(30);
    img.entry(at, b"SECOND  TXT", 0x20, 0, 0);
    let fs = img.open().unwrap();
    assert_eq!(fs.fat_type(), bpb::FatType::Fat32);
    assert_eq!(names(&fs, "/"), ["BIG.BIN", "SECOND.TXT"]);
    assert_eq!(fs.stat("/").unwrap().size, 1024);
    let data = fs.read_file("/big.bin", 1 << 20).unwrap();
    assert_eq!(data.len(), 1500);
    assert!(data[..512].iter().all(|&b| b == 1));
    assert!(data[512..1024].iter().all(|&b| b == 2));
    assert!(data[1024..].iter().all(|&b| b == 3));
    let mut buf = [0u8; 600];
    assert_eq!(fs.read_at("/BIG.BIN", 500, &mut buf).unwrap(), 600);
    assert_eq!(buf[..], data[500..1100]);
    assert_eq!(fs.read_file("/second.txt", 10).unwrap(), b"");
    let u = fs.usage().unwrap();
    assert_eq!((u.blocks, u.blocks_free), (61, 61 - 5));
    // The root chain is walked at open: a loop there refuses the volume.
    let mut img = Img::fat32();
    img.set_fat(2, 2);
    assert!(matches!(img.open(), Err(FsError::Corrupt(_))));
    let mut img = Img::fat32();
    img.d[44..48].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(img.open(), Err(FsError::Corrupt(_))));
}

#[test]
fn boot_sectors_with_zero_or_huge_values_are_refused() {
    let cases: &[(usize, &[u8])] = &[
        (11, &[0, 0]),       // sector size 0
        (11, &[0, 0x20]),    // 8192
        (11, &[0x00, 0x03]), // 768
        (13, &[0]),          // sectors per cluster
        (13, &[3]),
        (14, &[0, 0]), // reserved
        (16, &[0]),    // FATs
        (17, &[1, 0]), // root entries not filling a sector
        (19, &[2, 0]), // total sectors below the data area
        (21, &[0x12]), // media
        (22, &[0, 0]), // no FAT size at all
    ];
    for &(at, bytes) in cases {
        let mut img = basic();
        img.d[at..at + bytes.len()].copy_from_slice(bytes);
        let err = img.open().err();
        assert!(
            matches!(err, Some(FsError::Corrupt(_))),
            "byte {at}: {err:?}"
        );
    }
    // Too many clusters for FAT16: 200000 sectors, a FAT big enough for them.
    let mut img = basic();
    img.d[19..21].copy_from_slice(&0u16.to_le_bytes());
    img.d[32..36].copy_from_slice(&200_000u32.to_le_bytes());
    img.d[22..24].copy_from_slice(&1000u16.to_le_bytes());
    let err = img.open().err();
    assert!(
        matches!(&err, Some(FsError::Corrupt(m)) if m.contains("more than")),
        "{err:?}"
    );
    // Huge FAT32 figures: the data area past the sector count.
    let mut img = Img::fat32();
    img.d[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    img.d[19..21].copy_from_slice(&0u16.to_le_bytes());
    img.d[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(img.open(), Err(FsError::Corrupt(_))));
    // A plausible geometry on a device far too small: reads fail, nothing is allocated
    // for what the boot sector claims.
    let mut img = Img::fat32();
    img.d[19..21].copy_from_slice(&0u16.to_le_bytes());
    img.d[32..36].copy_from_slice(&0x0800_0000u32.to_le_bytes());
    img.d[36..40].copy_from_slice(&0x0010_0000u32.to_le_bytes());
    img.d[44..48].copy_from_slice(&0x00F0_0000u32.to_le_bytes());
    assert!(matches!(img.open(), Err(FsError::Io(_))));
    // Short devices.
    assert!(VfatFs::open(Rc::new(vec![0u8; 100])).is_err());
}

#[test]
fn a_fat_shorter_than_the_cluster_count_clips_it() {
    // 1000 sectors, but one FAT sector holds 341 FAT12 entries: 339 clusters, as Linux
    // clips them.
    let mut img = basic();
    img.d.resize(1000 * SS, 0);
    img.d[19..21].copy_from_slice(&1000u16.to_le_bytes());
    img.entry(img.root(2), b"FAR     TXT", 0x20, 400, 10);
    let fs = img.open().unwrap();
    assert_eq!(fs.geo.clusters, 339);
    assert_eq!(fs.usage().unwrap().blocks, 339);
    assert!(matches!(
        fs.read_file("/FAR.TXT", 99),
        Err(FsError::Corrupt(_))
    ));
    assert_eq!(fs.read_file("/A.TXT", 1 << 20).unwrap().len(), 600);
}

#[test]
fn truncated_volumes_fail_with_io_errors() {
    let mut img = basic();
    img.d.truncate(4 * SS); // the root and cluster 2, not cluster 3
    let fs = img.open().unwrap();
    assert_eq!(names(&fs, "/"), ["A.TXT", "SUB"]);
    assert!(matches!(
        fs.read_file("/A.TXT", 1 << 20),
        Err(FsError::Io(_))
    ));
}

#[test]
fn the_disk_scan_opens_vfat_volumes() {
    let mut img = basic();
    img.d[38] = 0x29;
    img.d[39..43].copy_from_slice(&0x1234_ABCDu32.to_le_bytes());
    img.d[43..54].copy_from_slice(b"BOOTLABEL  ");
    img.d[54..62].copy_from_slice(b"FAT12   ");
    let at = img.root(2);
    img.entry(at, b"ESP        ", 0x08, 0, 0);
    let disk: Rc<dyn BlockDevice> = Rc::new(img.d);
    let set = crate::appliance::disks::DiskSet::scan(&[disk]);
    let v = set.volume("/dev/sda").expect("a volume");
    assert_eq!(v.info.fstype, "vfat");
    assert_eq!(v.info.uuid.as_deref(), Some("1234-ABCD"));
    // blkid's LABEL is the root directory's label entry, not the boot sector's.
    assert_eq!(v.info.label.as_deref(), Some("ESP"));
    let fs = v.fs.as_ref().expect("readable");
    assert_eq!(fs.read_file("/SUB/B.TXT", 10).unwrap(), b"bee");
}

#[test]
fn labels_and_serials_as_blkid_gives_them() {
    use crate::fs::detect::detect;
    let probe = |f: &dyn Fn(&mut Img)| {
        let mut img = basic();
        img.d[38] = 0x29;
        img.d[39..43].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
        img.d[43..54].copy_from_slice(b"BPBLBL     ");
        img.d[54..62].copy_from_slice(b"FAT12   ");
        f(&mut img);
        let d = detect(&img.d).unwrap().expect("vfat");
        assert_eq!(d.fstype, "vfat");
        (d.label, d.uuid)
    };
    let lbl = |l: &[u8; 11]| {
        let l = *l;
        move |img: &mut Img| {
            let at = img.root(2);
            img.entry(at, &l, 0x08, 0, 0);
        }
    };
    let s = |x: &str| Some(String::from(x));
    // Only the boot sector's label: blkid 2.38 gives no LABEL (LABEL_FATBOOT only).
    assert_eq!(probe(&|_| {}), (None, s("DEAD-BEEF")));
    assert_eq!(probe(&lbl(b"ROOTLBL    ")).0, s("ROOTLBL"));
    assert_eq!(probe(&lbl(b"NO NAME    ")).0, s("NO NAME"));
    assert_eq!(probe(&lbl(b"lower case ")).0, s("lower case"));
    assert_eq!(probe(&lbl(b"\x8eBC        ")).0, None);
    assert_eq!(probe(&lbl(b"           ")).0, None);
    // A label after a free record, deleted, with a cluster, or a directory: not found.
    assert_eq!(
        probe(&|img| {
            let at = img.root(3);
            img.entry(at, b"LATE       ", 0x08, 0, 0);
            let at = img.root(2);
            img.d[at..at + 32].fill(0);
        })
        .0,
        None
    );
    assert_eq!(probe(&lbl(b"\xe5ONE       ")).0, None);
    assert_eq!(
        probe(&|img| {
            let at = img.root(2);
            img.entry(at, b"WITHCLUSTER", 0x08, 7, 0);
        })
        .0,
        None
    );
    assert_eq!(
        probe(&|img| {
            let at = img.root(2);
            img.entry(at, b"ARCHIVED   ", 0x28, 0, 0);
        })
        .0,
        s("ARCHIVED")
    );
    // The serial needs the extended boot signature (0x28 or 0x29) and is not zero.
    assert_eq!(probe(&|img| img.d[38] = 0).1, None);
    assert_eq!(probe(&|img| img.d[38] = 0x28).1, s("DEAD-BEEF"));
    assert_eq!(probe(&|img| img.d[39..43].fill(0)).1, None);
    // Without a magic string, the jump and the boot signature do.
    assert!(probe(&|img| img.d[54..62].fill(b' ')).1.is_some());
    // FAT32: the label in the root cluster chain; FSInfo must be signed or empty.
    let mut img = Img::fat32();
    img.d[66] = 0x29;
    img.d[67..71].copy_from_slice(&0x0102_0304u32.to_le_bytes());
    img.d[82..90].copy_from_slice(b"FAT32   ");
    img.chain(&[2, 9]);
    let at = img.cluster(9);
    img.entry(at, b"EFI        ", 0x08, 0, 0);
    let at = img.root(0);
    img.d[at..at + SS].fill(0xE5);
    let d = detect(&img.d).unwrap().unwrap();
    assert_eq!(
        (d.label.as_deref(), d.uuid.as_deref()),
        (Some("EFI"), Some("0102-0304"))
    );
    img.d[SS] = 0x11;
    assert_eq!(detect(&img.d).unwrap(), None);
    img.d[SS..2 * SS].fill(0);
    assert!(detect(&img.d).unwrap().is_some());
}

#[test]
fn long_names_with_surrogate_pairs_and_unpaired_surrogates() {
    let short = *b"EMOJI~1 TXT";
    let sum = checksum(&short);
    let mut img = basic();
    let name = "emoji 😀 x.txt"; // 14 UTF-16 units: two slots
    let (a, b) = (img.root(2), img.root(3));
    img.slot(a, 0x42, name, 1, sum);
    img.slot(b, 0x01, name, 0, sum);
    img.entry(img.root(4), &short, 0x20, 0, 0);
    // A lone high surrogate in a one-slot name: dropped, as Linux drops it.
    let short2 = *b"LONE    TXT";
    let sum2 = checksum(&short2);
    let at = img.root(5);
    img.slot(at, 0x41, "ab\u{FFFD}cd", 0, sum2);
    img.d[at + 5..at + 7].copy_from_slice(&0xD800u16.to_le_bytes());
    img.entry(img.root(6), &short2, 0x20, 0, 0);
    let fs = img.open().unwrap();
    assert_eq!(names(&fs, "/"), ["A.TXT", "SUB", name, "abcd"]);
    assert!(fs.stat("/EMOJI 😀 X.TXT").is_ok());
    assert!(fs.stat("/abcd").is_ok());
}

#[test]
fn a_repeated_name_is_listed_twice_and_looked_up_first() {
    // Found while fuzzing (target `vfat`): the harness assumed a listing's stat and a
    // lookup's agree; with two entries of one name (any case) a lookup finds the first,
    // as Linux's does.
    let mut img = basic();
    img.entry(img.root(2), b"A       TXT", 0x20, 0, 0);
    let fs = img.open().unwrap();
    let listing = fs.read_dir("/").unwrap();
    assert_eq!(listing.len(), 3);
    assert_eq!((listing[0].stat.size, listing[2].stat.size), (600, 0));
    assert_eq!(fs.stat("/a.txt").unwrap().size, 600);
}

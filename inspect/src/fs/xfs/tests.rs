//! Hostile images, made by hand: each forgery must be a clean error for what it touches
//! (usually [`FsError::Corrupt`]), never a panic, a hang or a huge allocation, and the rest
//! of the filesystem must stay readable.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use vmchannel_proto::FileKind;

use super::{CRC32C, XfsFs};
use crate::fs::{FileSystem, FsError};

const BS: usize = 1024;
const AGBLOCKS: u32 = 64;
const AGLOG: u8 = 6;

/// A 128 KiB filesystem of 1 KiB blocks in two groups of 64, v4 (256-byte inodes) or v5
/// (512-byte inodes), with ftype. Inodes live in blocks 8 and 9.
struct Img {
    d: Vec<u8>,
    v5: bool,
}

fn put(d: &mut [u8], at: usize, b: &[u8]) {
    d[at..at + b.len()].copy_from_slice(b);
}

fn set_crc(b: &mut [u8], at: usize) {
    b[at..at + 4].fill(0);
    let c = CRC32C.checksum(b);
    b[at..at + 4].copy_from_slice(&c.to_le_bytes());
}

const UUID: [u8; 16] = [7; 16];

impl Img {
    fn new(v5: bool) -> Img {
        let mut d = vec![0u8; 2 * AGBLOCKS as usize * BS];
        let isize: u16 = if v5 { 512 } else { 256 };
        let ilog: u8 = if v5 { 9 } else { 8 };
        put(&mut d, 0, b"XFSB");
        put(&mut d, 4, &(BS as u32).to_be_bytes());
        put(&mut d, 8, &(2 * AGBLOCKS as u64).to_be_bytes());
        put(&mut d, 32, &UUID);
        put(&mut d, 84, &AGBLOCKS.to_be_bytes());
        put(&mut d, 88, &2u32.to_be_bytes());
        let version: u16 = if v5 { 5 | 0x8000 } else { 4 | 0x8000 | 0x20 };
        put(&mut d, 100, &version.to_be_bytes());
        put(&mut d, 102, &512u16.to_be_bytes());
        put(&mut d, 104, &isize.to_be_bytes());
        put(&mut d, 106, &((BS as u16) / isize).to_be_bytes());
        d[120] = 10;
        d[121] = 9;
        d[122] = ilog;
        d[123] = 10 - ilog;
        d[124] = AGLOG;
        put(&mut d, 200, &0x200u32.to_be_bytes()); // v4 ftype
        if v5 {
            put(&mut d, 216, &1u32.to_be_bytes()); // ftype
        }
        let mut img = Img { d, v5 };
        let root = img.ino(8, 0);
        put(&mut img.d, 56, &root.to_be_bytes());
        img
    }

    /// Inode number of slot `slot` in AG block `agbno` of group 0.
    fn ino(&self, agbno: u64, slot: u64) -> u64 {
        let inop_blog = if self.v5 { 1 } else { 2 };
        (agbno << inop_blog) | slot
    }

    fn isize(&self) -> usize {
        if self.v5 { 512 } else { 256 }
    }

    fn core(&self) -> usize {
        if self.v5 { 176 } else { 100 }
    }

    fn ino_at(&self, ino: u64) -> usize {
        let inop_blog = if self.v5 { 1 } else { 2 };
        (ino >> inop_blog) as usize * BS + (ino & ((1 << inop_blog) - 1)) as usize * self.isize()
    }

    /// Writes inode `ino`.
    fn inode(&mut self, ino: u64, mode: u16, format: u8, size: u64, nextents: u32, fork: &[u8]) {
        let at = self.ino_at(ino);
        let core = self.core();
        let v5 = self.v5;
        let isize = self.isize();
        let d = &mut self.d[at..at + isize];
        d.fill(0);
        put(d, 0, b"IN");
        put(d, 2, &mode.to_be_bytes());
        d[4] = if v5 { 3 } else { 2 };
        d[5] = format;
        put(d, 16, &1u32.to_be_bytes());
        put(d, 56, &size.to_be_bytes());
        put(d, 76, &nextents.to_be_bytes());
        put(d, core, fork);
        if v5 {
            put(d, 152, &ino.to_be_bytes());
            put(d, 160, &UUID);
        }
    }

    fn finish(mut self) -> XfsFs {
        if self.v5 {
            set_crc(&mut self.d[..512], 224);
            for b in 8..10 {
                for s in 0..2 {
                    let at = b * BS + s * 512;
                    if &self.d[at..at + 2] == b"IN" {
                        set_crc(&mut self.d[at..at + 512], 100);
                    }
                }
            }
        }
        XfsFs::open(Rc::new(self.d)).expect("the hand-made filesystem opens")
    }

    fn open_err(self) -> FsError {
        XfsFs::open(Rc::new(self.d)).err().expect("refused")
    }
}

/// A shortform directory fork: parent, then (name, ftype, ino).
fn shortform(parent: u64, entries: &[(&str, u8, u64)]) -> Vec<u8> {
    let mut f = vec![entries.len() as u8, 0];
    f.extend_from_slice(&(parent as u32).to_be_bytes());
    let mut off = 0x60u16;
    for (name, ft, ino) in entries {
        f.push(name.len() as u8);
        f.extend_from_slice(&off.to_be_bytes());
        off += 16;
        f.extend_from_slice(name.as_bytes());
        f.push(*ft);
        f.extend_from_slice(&(*ino as u32).to_be_bytes());
    }
    f
}

/// A packed extent record.
fn extent(off: u64, block: u64, len: u64) -> [u8; 16] {
    let l0 = (off << 9) | (block >> 43);
    let l1 = (block << 21) | len;
    let mut r = [0u8; 16];
    r[..8].copy_from_slice(&l0.to_be_bytes());
    r[8..].copy_from_slice(&l1.to_be_bytes());
    r
}

/// A root directory (in slot 0 of block 8) holding `entries`.
fn with_root(img: &mut Img, entries: &[(&str, u8, u64)]) {
    let root = img.ino(8, 0);
    let f = shortform(root, entries);
    img.inode(root, 0o40755, 1, f.len() as u64, 0, &f);
}

fn corrupt<T: core::fmt::Debug>(r: Result<T, FsError>) -> String {
    match r {
        Err(FsError::Corrupt(m)) => m,
        other => panic!("wanted Corrupt, got {other:?}"),
    }
}

#[test]
fn a_sound_hand_made_filesystem_reads() {
    for v5 in [false, true] {
        let mut img = Img::new(v5);
        let file = img.ino(8, 1);
        let link = img.ino(9, 0);
        with_root(&mut img, &[("f", 1, file), ("l", 7, link)]);
        img.inode(file, 0o100644, 2, 5, 1, &extent(0, 20, 1));
        put(&mut img.d, 20 * BS, b"hello");
        img.inode(link, 0o120777, 1, 1, 0, b"f");
        let fs = img.finish();
        assert_eq!(fs.read_file("/l", 100).unwrap(), b"hello");
        let names: Vec<_> = fs
            .read_dir("/")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["f", "l"]);
        assert_eq!(fs.stat_full("/", false).unwrap().nlink, 1);
    }
}

#[test]
fn forged_group_geometry_is_refused() {
    // More groups than the data section holds.
    let mut img = Img::new(false);
    put(&mut img.d, 88, &0x4000_0000u32.to_be_bytes());
    assert!(matches!(img.open_err(), FsError::Corrupt(_)));
    // Groups larger than agblklog can address.
    let mut img = Img::new(false);
    put(&mut img.d, 84, &1000u32.to_be_bytes());
    assert!(matches!(img.open_err(), FsError::Corrupt(_)));
    // A data section larger than the device.
    let mut img = Img::new(false);
    put(&mut img.d, 8, &(1u64 << 40).to_be_bytes());
    put(&mut img.d, 84, &(1u32 << 30).to_be_bytes());
    img.d[124] = 30;
    assert!(matches!(img.open_err(), FsError::Corrupt(_)));
    // Zero groups, zero-sized groups.
    let mut img = Img::new(false);
    put(&mut img.d, 88, &0u32.to_be_bytes());
    assert!(matches!(img.open_err(), FsError::Corrupt(_)));
    let mut img = Img::new(false);
    put(&mut img.d, 84, &0u32.to_be_bytes());
    assert!(matches!(img.open_err(), FsError::Corrupt(_)));
}

#[test]
fn a_v5_superblock_with_a_wrong_crc_is_refused() {
    let mut img = Img::new(true);
    with_root(&mut img, &[]);
    set_crc(&mut img.d[..512], 224);
    img.d[224] ^= 1;
    let e = XfsFs::open(Rc::new(img.d)).err().expect("refused");
    assert!(
        matches!(&e, FsError::Corrupt(m) if m.contains("CRC")),
        "{e:?}"
    );
}

#[test]
fn an_inode_with_a_wrong_crc_costs_only_that_inode() {
    let mut img = Img::new(true);
    let bad = img.ino(8, 1);
    let good = img.ino(9, 0);
    with_root(&mut img, &[("bad", 1, bad), ("good", 1, good)]);
    img.inode(bad, 0o100644, 2, 0, 0, &[]);
    img.inode(good, 0o100644, 2, 0, 0, &[]);
    let at = img.ino_at(bad);
    let mut d = img.d.clone();
    // Valid CRCs everywhere, then one inode's CRC lies.
    set_crc(&mut d[..512], 224);
    for i in [img.ino(8, 0), bad, good] {
        let a = img.ino_at(i);
        set_crc(&mut d[a..a + 512], 100);
    }
    d[at + 100] ^= 0xff;
    let fs = XfsFs::open(Rc::new(d)).unwrap();
    assert!(corrupt(fs.stat("/bad")).contains("CRC"));
    assert_eq!(fs.stat("/good").unwrap().kind, FileKind::File);
    let list = fs.read_dir("/").unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].stat.kind, FileKind::File); // from the entry's ftype
}

#[test]
fn inodes_outside_the_device_or_their_group_are_corrupt() {
    let mut img = Img::new(false);
    let far = 5u64 << (AGLOG + 2); // AG 5 of 2
    let past = (60u64 << 2) | (1u64 << (AGLOG + 2)); // AG 1, block 60: inside
    let huge = u32::MAX as u64;
    with_root(
        &mut img,
        &[("far", 1, far), ("past", 1, past), ("huge", 2, huge)],
    );
    // Shrink the groups so block 60 lies past the end of AG 1.
    put(&mut img.d, 84, &40u32.to_be_bytes());
    put(&mut img.d, 8, &80u64.to_be_bytes());
    let fs = img.finish();
    assert!(corrupt(fs.stat("/far")).contains("outside"));
    assert!(corrupt(fs.stat("/past")).contains("outside"));
    assert!(corrupt(fs.read_dir("/huge")).contains("outside"));
    assert_eq!(fs.read_dir("/").unwrap().len(), 3);
}

#[test]
fn overlapping_or_backward_extents_are_corrupt() {
    let mut img = Img::new(false);
    let f = img.ino(8, 1);
    let g = img.ino(8, 2);
    let h = img.ino(8, 3);
    with_root(
        &mut img,
        &[("overlap", 1, f), ("backward", 1, g), ("outside", 1, h)],
    );
    let mut two = extent(0, 20, 4).to_vec();
    two.extend_from_slice(&extent(2, 30, 4));
    img.inode(f, 0o100644, 2, 8 * BS as u64, 2, &two);
    let mut back = extent(5, 20, 1).to_vec();
    back.extend_from_slice(&extent(0, 20, 1));
    img.inode(g, 0o100644, 2, 8 * BS as u64, 2, &back);
    // Runs past the end of its group.
    img.inode(h, 0o100644, 2, 8 * BS as u64, 1, &extent(0, 60, 8));
    let fs = img.finish();
    let mut buf = [0u8; 16];
    assert!(corrupt(fs.read_at("/overlap", 0, &mut buf)).contains("overlaps"));
    assert!(corrupt(fs.read_at("/backward", 0, &mut buf)).contains("precedes"));
    assert!(corrupt(fs.read_at("/outside", 0, &mut buf)).contains("outside"));
    // An extent count larger than the fork holds.
    let mut img = Img::new(false);
    let f = img.ino(8, 1);
    with_root(&mut img, &[("f", 1, f)]);
    img.inode(f, 0o100644, 2, 10, 1000, &[]);
    assert!(corrupt(img.finish().stat("/f")).contains("extents"));
}

/// A v4 bmbt block at `block`: level, pointers (node) or records (leaf).
fn bmbt_block(img: &mut Img, block: usize, level: u16, ptrs: &[u64], recs: &[[u8; 16]]) {
    let at = block * BS;
    let b = &mut img.d[at..at + BS];
    b.fill(0);
    put(b, 0, b"BMAP");
    put(b, 4, &level.to_be_bytes());
    let n = if level == 0 { recs.len() } else { ptrs.len() };
    put(b, 6, &(n as u16).to_be_bytes());
    put(b, 8, &u64::MAX.to_be_bytes());
    put(b, 16, &u64::MAX.to_be_bytes());
    if level == 0 {
        for (i, r) in recs.iter().enumerate() {
            put(b, 24 + i * 16, r);
        }
    } else {
        let maxrecs = (BS - 24) / 16;
        for (i, p) in ptrs.iter().enumerate() {
            put(b, 24 + maxrecs * 8 + i * 8, &p.to_be_bytes());
        }
    }
}

/// A btree root fork of `level` with `ptrs`, for a 156-byte v4 fork.
fn bmbt_root(level: u16, ptrs: &[u64]) -> Vec<u8> {
    let mut f = vec![0u8; 156];
    put(&mut f, 0, &level.to_be_bytes());
    put(&mut f, 2, &(ptrs.len() as u16).to_be_bytes());
    let maxrecs = (156 - 4) / 16;
    for (i, p) in ptrs.iter().enumerate() {
        put(&mut f, 4 + maxrecs * 8 + i * 8, &p.to_be_bytes());
    }
    f
}

#[test]
fn btree_levels_that_lie_loop_or_repeat_are_corrupt() {
    let mut img = Img::new(false);
    let good = img.ino(8, 1);
    let deep = img.ino(8, 2);
    let selfp = img.ino(8, 3);
    let twice = img.ino(9, 0);
    let lie = img.ino(9, 1);
    with_root(
        &mut img,
        &[
            ("good", 1, good),
            ("deep", 1, deep),
            ("self", 2, selfp),
            ("twice", 1, twice),
            ("lie", 1, lie),
        ],
    );
    // good: root level 1 -> leaf at 30 with two extents.
    bmbt_block(&mut img, 30, 0, &[], &[extent(0, 40, 1), extent(1, 41, 1)]);
    put(&mut img.d, 40 * BS, b"abc");
    put(&mut img.d, 41 * BS, b"def");
    img.inode(good, 0o100644, 3, 2 * BS as u64, 2, &bmbt_root(1, &[30]));
    // deep: a root claiming 200 levels.
    img.inode(deep, 0o100644, 3, 10, 0, &bmbt_root(200, &[30]));
    // self: a directory whose node (level 1, at 31) points at itself.
    bmbt_block(&mut img, 31, 1, &[31], &[]);
    img.inode(selfp, 0o40755, 3, 10, 0, &bmbt_root(2, &[31]));
    // twice: a root pointing at the same leaf twice.
    img.inode(twice, 0o100644, 3, 10, 0, &bmbt_root(1, &[30, 30]));
    // lie: a root of level 3 whose child is a leaf.
    img.inode(lie, 0o100644, 3, 10, 0, &bmbt_root(3, &[30]));
    let fs = img.finish();
    let data = fs.read_file("/good", 1 << 20).unwrap();
    assert_eq!((&data[..3], &data[BS..BS + 3]), (&b"abc"[..], &b"def"[..]));
    assert!(corrupt(fs.read_file("/deep", 100)).contains("levels"));
    assert!(corrupt(fs.read_dir("/self")).contains("level"));
    assert!(corrupt(fs.read_file("/twice", 100)).contains("overlaps"));
    assert!(corrupt(fs.read_file("/lie", 100)).contains("level"));
}

/// A v4 single-block directory at `block`: `.`, `..` and `entries`.
fn block_dir(img: &mut Img, block: usize, me: u64, parent: u64, entries: &[(&str, u8, u64)]) {
    let at = block * BS;
    let b = &mut img.d[at..at + BS];
    b.fill(0);
    put(b, 0, b"XD2B");
    let mut pos = 16;
    let mut all = vec![(".", 2u8, me), ("..", 2, parent)];
    all.extend_from_slice(entries);
    for (name, ft, ino) in all {
        put(b, pos, &ino.to_be_bytes());
        b[pos + 8] = name.len() as u8;
        put(b, pos + 9, name.as_bytes());
        b[pos + 9 + name.len()] = ft;
        let len = (12 + name.len()).next_multiple_of(8);
        put(b, pos + len - 2, &(pos as u16).to_be_bytes());
        pos += len;
    }
    // The rest free up to the tail (no leaf entries).
    let end = BS - 8;
    put(b, pos, &0xffffu16.to_be_bytes());
    put(b, pos + 2, &((end - pos) as u16).to_be_bytes());
    put(b, end - 2, &(pos as u16).to_be_bytes());
}

#[test]
fn directories_that_contain_themselves_or_lie_stay_bounded() {
    let mut img = Img::new(false);
    let root = img.ino(8, 0);
    let d = img.ino(8, 1);
    let badfree = img.ino(8, 2);
    let tail = img.ino(8, 3);
    let twice_ino = img.ino(9, 0);
    with_root(
        &mut img,
        &[
            ("d", 2, d),
            ("badfree", 2, badfree),
            ("tail", 2, tail),
            ("twice", 2, twice_ino),
        ],
    );
    // d's only block names d itself as "loop".
    block_dir(&mut img, 20, d, root, &[("loop", 2, d)]);
    let mut twice = extent(0, 20, 1).to_vec();
    twice.extend_from_slice(&extent(1, 20, 1));
    img.inode(d, 0o40755, 2, BS as u64, 1, &twice[..16]);
    // badfree: a free region of length 0.
    block_dir(&mut img, 21, badfree, root, &[]);
    put(&mut img.d, 21 * BS + 16 + 16 + 16 + 2, &0u16.to_be_bytes());
    img.inode(badfree, 0o40755, 2, BS as u64, 1, &extent(0, 21, 1));
    // tail: a leaf count that would put the data end before the header.
    block_dir(&mut img, 22, tail, root, &[]);
    put(&mut img.d, 23 * BS - 8, &0x0fff_ffffu32.to_be_bytes());
    img.inode(tail, 0o40755, 2, BS as u64, 1, &extent(0, 22, 1));
    // A directory whose extents map one block as two directory blocks.
    img.inode(twice_ino, 0o40755, 2, 2 * BS as u64, 2, &twice);
    let fs = img.finish();
    let mut deep = String::new();
    for _ in 0..300 {
        deep.push_str("/loop");
    }
    assert_eq!(
        fs.stat(&alloc::format!("/d{deep}")).unwrap().kind,
        FileKind::Directory
    );
    let names: Vec<_> = fs
        .read_dir("/d/loop/loop")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["loop"]);
    assert!(matches!(
        fs.stat(&alloc::format!("/d{deep}{deep}{deep}{deep}")),
        Err(FsError::BadPath(_))
    ));
    assert!(corrupt(fs.read_dir("/badfree")).contains("free region"));
    assert!(corrupt(fs.read_dir("/tail")).contains("leaf entries"));
    // Extents mapping one block as two directory blocks: the second copy is refused.
    assert!(corrupt(fs.read_dir("/twice")).contains("single-block"));
}

#[test]
fn symlinks_longer_than_their_fork_or_the_limit_are_corrupt() {
    let mut img = Img::new(false);
    let long = img.ino(8, 1);
    let huge = img.ino(8, 2);
    let empty = img.ino(8, 3);
    let remote = img.ino(9, 0);
    with_root(
        &mut img,
        &[
            ("long", 7, long),
            ("huge", 7, huge),
            ("empty", 7, empty),
            ("remote", 7, remote),
        ],
    );
    img.inode(long, 0o120777, 1, 300, 0, b"abc"); // 300 bytes in a 156-byte fork
    img.inode(huge, 0o120777, 1, 1 << 40, 0, b"abc");
    img.inode(empty, 0o120777, 1, 0, 0, b"");
    // Remote: 900 bytes claimed, one 1 KiB block mapped: fine; then 1000 with a hole.
    img.inode(remote, 0o120777, 2, 1000, 1, &extent(1, 20, 1));
    let fs = img.finish();
    assert!(corrupt(fs.read_link("/long")).contains("fork"));
    assert!(corrupt(fs.read_link("/huge")).contains("bytes"));
    assert!(corrupt(fs.read_link("/empty")).contains("bytes"));
    assert!(corrupt(fs.read_link("/remote")).contains("not mapped"));
    assert!(corrupt(fs.stat("/huge/x")).contains("bytes"));
    assert_eq!(fs.lstat("/huge").unwrap().link_target, None);
    assert_eq!(fs.read_dir("/").unwrap().len(), 4);
}

#[test]
fn symlink_loops_end() {
    let mut img = Img::new(false);
    let a = img.ino(8, 1);
    with_root(&mut img, &[("a", 7, a)]);
    img.inode(a, 0o120777, 1, 2, 0, b"/a");
    let fs = img.finish();
    assert!(matches!(fs.stat("/a"), Err(FsError::SymlinkLoop(_))));
    assert!(matches!(
        fs.read_file("/a/b", 10),
        Err(FsError::SymlinkLoop(_))
    ));
}

/// A sound hand-made v4 image with a bmbt file and a block directory: checked here, and
/// written to `$XFS_WRITE_SEED` for the fuzz target's seeds (`seeds/xfs/handmade.img`), since
/// mkfs.xfs puts such files past what a small seed can hold.
#[test]
fn a_hand_made_bmbt_file_and_block_directory_read() {
    let mut img = Img::new(false);
    let root = img.ino(8, 0);
    let file = img.ino(8, 1);
    let d = img.ino(8, 2);
    let link = img.ino(8, 3);
    with_root(
        &mut img,
        &[("file", 1, file), ("d", 2, d), ("link", 7, link)],
    );
    bmbt_block(&mut img, 30, 0, &[], &[extent(0, 40, 1), extent(2, 41, 2)]);
    put(&mut img.d, 40 * BS, b"abc");
    put(&mut img.d, 41 * BS, b"xyz");
    img.inode(file, 0o100644, 3, 4 * BS as u64, 2, &bmbt_root(1, &[30]));
    block_dir(
        &mut img,
        20,
        d,
        root,
        &[("back", 7, link), ("file", 1, file)],
    );
    img.inode(d, 0o40755, 2, BS as u64, 1, &extent(0, 20, 1));
    img.inode(link, 0o120777, 1, 7, 0, b"../file");
    if let Ok(p) = std::env::var("XFS_WRITE_SEED") {
        std::fs::write(p, &img.d).unwrap();
    }
    let fs = img.finish();
    let data = fs.read_file("/d/back", 1 << 20).unwrap();
    assert_eq!(data.len(), 4 * BS);
    assert_eq!(
        (&data[..3], &data[BS..BS + 3], &data[2 * BS..2 * BS + 3]),
        (&b"abc"[..], &[0u8; 3][..], &b"xyz"[..])
    );
    let names: Vec<_> = fs
        .read_dir("/d")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["back", "file"]);
}

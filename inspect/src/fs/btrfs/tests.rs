//! Hand-made btrfs images, each broken one way: the reader must answer an error for that
//! filesystem (never panic, never loop, never allocate what the disk claims).
//!
//! The image: 1 MiB, 4 KiB sectors and nodes, one SINGLE chunk mapping logical to physical
//! one to one; the chunk tree, root tree and top-level tree are one leaf each; the top level
//! holds `hello` (inline), `big` (a compressed extent) and `sub`, subvolume 256.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;

use super::crc;
use super::items::*;
use super::tree::Key;
use super::*;

const SIZE: usize = 1 << 20;
const NODE: usize = 4096;
const FSID: [u8; 16] = [7; 16];
const CHUNK_TREE_AT: u64 = 0x20000;
const ROOT_TREE_AT: u64 = 0x21000;
const FS_TREE_AT: u64 = 0x22000;
const SUB_TREE_AT: u64 = 0x23000;
const DATA_AT: u64 = 0x30000;

fn put(d: &mut [u8], at: usize, b: &[u8]) {
    d[at..at + b.len()].copy_from_slice(b);
}

fn key_bytes(k: Key) -> Vec<u8> {
    let mut b = k.objectid.to_le_bytes().to_vec();
    b.push(k.ty);
    b.extend_from_slice(&k.offset.to_le_bytes());
    b
}

fn header(bytenr: u64, level: u8, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; NODE];
    put(&mut b, 32, &FSID);
    put(&mut b, 48, &bytenr.to_le_bytes());
    put(&mut b, 96, &(n as u32).to_le_bytes());
    b[100] = level;
    b
}

fn seal(mut b: Vec<u8>) -> Vec<u8> {
    let c = crc::csum(&b[32..]);
    put(&mut b, 0, &c.to_le_bytes());
    b
}

/// A leaf of `items`, sorted here.
fn leaf(bytenr: u64, items: &[(Key, Vec<u8>)]) -> Vec<u8> {
    let mut items = items.to_vec();
    items.sort_by_key(|i| i.0);
    let mut b = header(bytenr, 0, items.len());
    let mut end = NODE;
    for (i, (k, data)) in items.iter().enumerate() {
        end -= data.len();
        let at = tree::HEADER + i * 25;
        put(&mut b, at, &key_bytes(*k));
        put(
            &mut b,
            at + 17,
            &((end - tree::HEADER) as u32).to_le_bytes(),
        );
        put(&mut b, at + 21, &(data.len() as u32).to_le_bytes());
        put(&mut b, end, data);
    }
    seal(b)
}

/// A node at `level` of `ptrs`.
fn node(bytenr: u64, level: u8, ptrs: &[(Key, u64)]) -> Vec<u8> {
    let mut b = header(bytenr, level, ptrs.len());
    for (i, (k, child)) in ptrs.iter().enumerate() {
        let at = tree::HEADER + i * 33;
        put(&mut b, at, &key_bytes(*k));
        put(&mut b, at + 17, &child.to_le_bytes());
    }
    seal(b)
}

fn chunk_item(length: u64, flags: u64, stripes: &[(u64, u64)]) -> Vec<u8> {
    let mut c = vec![0u8; 48];
    put(&mut c, 0, &length.to_le_bytes());
    put(&mut c, 16, &65536u64.to_le_bytes());
    put(&mut c, 24, &flags.to_le_bytes());
    put(&mut c, 44, &(stripes.len() as u16).to_le_bytes());
    for &(devid, offset) in stripes {
        c.extend_from_slice(&devid.to_le_bytes());
        c.extend_from_slice(&offset.to_le_bytes());
        c.extend_from_slice(&[0; 16]);
    }
    c
}

fn inode_item(mode: u32, size: u64) -> Vec<u8> {
    let mut b = vec![0u8; INODE_SIZE];
    put(&mut b, 16, &size.to_le_bytes());
    put(&mut b, 40, &1u32.to_le_bytes());
    put(&mut b, 52, &mode.to_le_bytes());
    put(&mut b, 136, &1_700_000_000u64.to_le_bytes());
    b
}

fn root_item(bytenr: u64, level: u8) -> Vec<u8> {
    let mut b = inode_item(0o40755, 0);
    b.resize(439, 0);
    put(&mut b, 168, &256u64.to_le_bytes());
    put(&mut b, 176, &bytenr.to_le_bytes());
    put(&mut b, 216, &1u32.to_le_bytes());
    b[238] = level;
    b
}

fn dir_entry(location: Key, ty: u8, name: &[u8]) -> Vec<u8> {
    let mut b = key_bytes(location);
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.push(ty);
    b.extend_from_slice(name);
    b
}

fn root_ref(dirid: u64, name: &[u8]) -> Vec<u8> {
    let mut b = dirid.to_le_bytes().to_vec();
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.extend_from_slice(name);
    b
}

fn inline_extent(data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 21];
    put(&mut b, 8, &(data.len() as u64).to_le_bytes());
    b.extend_from_slice(data);
    b
}

fn reg_extent(compression: u8, bytenr: u64, disk: u64, ram: u64) -> Vec<u8> {
    let mut b = vec![0u8; 53];
    put(&mut b, 8, &ram.to_le_bytes());
    b[16] = compression;
    b[20] = 1;
    put(&mut b, 21, &bytenr.to_le_bytes());
    put(&mut b, 29, &disk.to_le_bytes());
    put(&mut b, 45, &ram.to_le_bytes());
    b
}

/// What to build; each test changes one thing.
struct Spec {
    num_devices: u64,
    chunk: Vec<u8>,
    root_tree: Vec<(Key, Vec<u8>)>,
    fs_tree: Vec<(Key, Vec<u8>)>,
    /// Replaces the root tree block (for trees that are not one leaf).
    root_tree_block: Option<(u8, Vec<Vec<u8>>)>,
}

fn k(o: u64, t: u8, off: u64) -> Key {
    Key::new(o, t, off)
}

fn spec() -> Spec {
    let hello = b"hello\n";
    let fs_tree = vec![
        (k(256, INODE_ITEM, 0), inode_item(0o40755, 20)),
        (
            k(256, DIR_ITEM, crc::name_hash(b"hello")),
            dir_entry(k(257, INODE_ITEM, 0), 1, b"hello"),
        ),
        (
            k(256, DIR_ITEM, crc::name_hash(b"big")),
            dir_entry(k(258, INODE_ITEM, 0), 1, b"big"),
        ),
        (
            k(256, DIR_ITEM, crc::name_hash(b"sub")),
            dir_entry(k(256, ROOT_ITEM, u64::MAX), 2, b"sub"),
        ),
        (
            k(256, DIR_INDEX, 2),
            dir_entry(k(257, INODE_ITEM, 0), 1, b"hello"),
        ),
        (
            k(256, DIR_INDEX, 3),
            dir_entry(k(258, INODE_ITEM, 0), 1, b"big"),
        ),
        (
            k(256, DIR_INDEX, 4),
            dir_entry(k(256, ROOT_ITEM, u64::MAX), 2, b"sub"),
        ),
        (
            k(257, INODE_ITEM, 0),
            inode_item(0o100644, hello.len() as u64),
        ),
        (k(257, EXTENT_DATA, 0), inline_extent(hello)),
        (k(258, INODE_ITEM, 0), inode_item(0o100644, 4096)),
        (k(258, EXTENT_DATA, 0), reg_extent(3, DATA_AT, 4096, 4096)),
    ];
    let root_tree = vec![
        (k(5, ROOT_ITEM, 0), root_item(FS_TREE_AT, 0)),
        (k(5, ROOT_REF, 256), root_ref(256, b"sub")),
        (k(256, ROOT_ITEM, 0), root_item(SUB_TREE_AT, 0)),
        (k(256, ROOT_BACKREF, 5), root_ref(256, b"sub")),
    ];
    Spec {
        num_devices: 1,
        chunk: chunk_item(SIZE as u64, 1 | 2 | 4, &[(1, 0)]),
        root_tree,
        fs_tree,
        root_tree_block: None,
    }
}

fn build(s: &Spec) -> Vec<u8> {
    let mut d = vec![0u8; SIZE];
    // Superblock.
    let sb = 0x10000;
    put(&mut d, sb + 0x20, &FSID);
    put(&mut d, sb + 0x30, &0x10000u64.to_le_bytes());
    put(&mut d, sb + 0x40, superblock::MAGIC);
    let (root_level, blocks) = match &s.root_tree_block {
        Some((level, blocks)) => (*level, blocks.clone()),
        None => (0, vec![leaf(ROOT_TREE_AT, &s.root_tree)]),
    };
    put(&mut d, sb + 0x50, &ROOT_TREE_AT.to_le_bytes());
    put(&mut d, sb + 0x58, &CHUNK_TREE_AT.to_le_bytes());
    put(&mut d, sb + 0x70, &(SIZE as u64).to_le_bytes());
    put(&mut d, sb + 0x78, &65536u64.to_le_bytes());
    put(&mut d, sb + 0x88, &s.num_devices.to_le_bytes());
    put(&mut d, sb + 0x90, &4096u32.to_le_bytes());
    put(&mut d, sb + 0x94, &(NODE as u32).to_le_bytes());
    d[sb + 0xc6] = root_level;
    put(&mut d, sb + 0xc9, &1u64.to_le_bytes()); // devid
    let mut array = key_bytes(k(256, chunks::CHUNK_ITEM_KEY, 0));
    array.extend_from_slice(&s.chunk);
    put(&mut d, sb + 0xa0, &(array.len() as u32).to_le_bytes());
    put(&mut d, sb + 0x32b, &array);
    let c = crc::csum(&d[sb + 0x20..sb + 4096]);
    put(&mut d, sb, &c.to_le_bytes());
    // Trees.
    let chunk_leaf = leaf(
        CHUNK_TREE_AT,
        &[(k(256, chunks::CHUNK_ITEM_KEY, 0), s.chunk.clone())],
    );
    put(&mut d, CHUNK_TREE_AT as usize, &chunk_leaf);
    for (i, b) in blocks.iter().enumerate() {
        put(&mut d, slot(i) as usize, b);
    }
    put(&mut d, FS_TREE_AT as usize, &leaf(FS_TREE_AT, &s.fs_tree));
    let sub = [(k(256, INODE_ITEM, 0), inode_item(0o40700, 0))];
    put(&mut d, SUB_TREE_AT as usize, &leaf(SUB_TREE_AT, &sub));
    d
}

/// Where block `i` of a root tree of several blocks goes.
fn slot(i: usize) -> u64 {
    if i == 0 {
        ROOT_TREE_AT
    } else {
        0x24000 + (i as u64 - 1) * NODE as u64
    }
}

fn open(s: &Spec) -> Result<Btrfs> {
    Btrfs::open(Rc::new(build(s)))
}

fn is_corrupt<T>(r: Result<T>, what: &str) {
    match r {
        Err(FsError::Corrupt(m)) => assert!(m.contains(what), "{m:?} lacks {what:?}"),
        Err(e) => panic!("expected Corrupt({what}), got {e:?}"),
        Ok(_) => panic!("expected Corrupt({what}), got Ok"),
    }
}

#[test]
fn the_hand_made_image_reads() {
    let fs = open(&spec()).unwrap();
    assert_eq!(fs.default_subvolume().unwrap(), 5);
    let subs = fs.subvolumes().unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].id, subs[0].path.as_str()), (256, "sub"));
    let top = fs.default_fs().unwrap();
    let names: Vec<_> = top
        .read_dir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["hello", "big", "sub"]);
    assert_eq!(top.read_file("/hello", 100).unwrap(), b"hello\n");
    assert_eq!(top.stat("/sub").unwrap().mode, 0o40700);
    assert!(top.read_dir("/sub").unwrap().is_empty());
    // `big`'s extent holds zeros, which no zstd frame starts with.
    is_corrupt(top.read_file("/big", 1 << 20), "zstd");
}

#[test]
fn a_bad_superblock_checksum_is_refused() {
    let mut d = build(&spec());
    d[0x10000 + 0x100] ^= 1;
    is_corrupt(Btrfs::open(Rc::new(d)), "superblock: checksum");
}

#[test]
fn several_devices_are_named() {
    let mut s = spec();
    s.num_devices = 2;
    let err = open(&s).err().unwrap();
    assert_eq!(
        err,
        FsError::Unsupported("btrfs: 2 devices, only 1 present".into())
    );
}

#[test]
fn a_raid_profile_is_named() {
    let mut s = spec();
    s.chunk = chunk_item(SIZE as u64, 1 | 2 | 4 | 0x10, &[(1, 0), (2, 0)]);
    match open(&s).err().unwrap() {
        FsError::Unsupported(m) => assert!(m.contains("RAID1"), "{m}"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn a_chunk_mapping_past_the_device_is_refused() {
    let mut s = spec();
    s.chunk = chunk_item(SIZE as u64, 1 | 2 | 4, &[(1, 4096)]);
    is_corrupt(open(&s), "past the end");
    s.chunk = chunk_item(u64::MAX - 4095, 1 | 2 | 4, &[(1, 0)]);
    is_corrupt(open(&s), "past the end");
    // Logical addresses beyond every chunk.
    let mut s = spec();
    s.root_tree[0].1 = root_item(0x7000_0000, 0);
    let fs = open(&s).unwrap();
    is_corrupt(fs.default_fs().and_then(|f| f.stat("/")), "in no chunk");
}

#[test]
fn a_node_pointing_at_itself_or_an_ancestor_is_refused() {
    let first = k(5, ROOT_ITEM, 0);
    // The root tree's root, level 1, points at itself.
    let mut s = spec();
    s.root_tree_block = Some((1, vec![node(ROOT_TREE_AT, 1, &[(first, ROOT_TREE_AT)])]));
    is_corrupt(
        open(&s).and_then(|f| f.default_subvolume()),
        "level 1 where 0 was expected",
    );
    // Level 2 -> level 1 -> back to the root.
    s.root_tree_block = Some((
        2,
        vec![
            node(ROOT_TREE_AT, 2, &[(first, slot(1))]),
            node(slot(1), 1, &[(first, ROOT_TREE_AT)]),
        ],
    ));
    let fs = open(&s).unwrap();
    is_corrupt(fs.default_subvolume(), "level 2 where 0 was expected");
}

#[test]
fn levels_that_lie_are_refused() {
    // The root item says the top-level tree is a level-1 node; it is a leaf.
    let mut s = spec();
    s.root_tree[0].1 = root_item(FS_TREE_AT, 1);
    let fs = open(&s).unwrap();
    is_corrupt(fs.default_fs().and_then(|f| f.stat("/")), "level 0 where 1");
    // A level beyond btrfs's 8.
    s.root_tree[0].1 = root_item(FS_TREE_AT, 9);
    let fs = open(&s).unwrap();
    is_corrupt(fs.default_fs().map(|_| ()), "root level 9");
    // Two leaves under a node, the second a copy of the first: keys repeat.
    let mut s = spec();
    let a = leaf(slot(1), &s.root_tree);
    let mut b = a.clone();
    put(&mut b, 48, &(slot(2)).to_le_bytes());
    let b = seal(b);
    let first = s.root_tree[0].0;
    s.root_tree_block = Some((
        1,
        vec![
            node(ROOT_TREE_AT, 1, &[(first, slot(1)), (k(6, 0, 0), slot(2))]),
            a,
            b,
        ],
    ));
    let fs = open(&s).unwrap();
    is_corrupt(fs.subvolumes(), "first key differs");
}

#[test]
fn items_leaving_the_leaf_are_refused() {
    let s = spec();
    let mut d = build(&s);
    // Item 0 of the top-level tree: claim 5000 bytes of data.
    let at = FS_TREE_AT as usize + tree::HEADER + 21;
    put(&mut d, at, &5000u32.to_le_bytes());
    let c = crc::csum(&d[FS_TREE_AT as usize + 32..FS_TREE_AT as usize + NODE]);
    put(&mut d, FS_TREE_AT as usize, &c.to_le_bytes());
    let fs = Btrfs::open(Rc::new(d.clone())).unwrap();
    is_corrupt(
        fs.default_fs().and_then(|f| f.stat("/")),
        "leaves the block",
    );
    // An offset past the end.
    put(&mut d, at, &8u32.to_le_bytes());
    put(&mut d, at - 4, &u32::MAX.to_le_bytes());
    let c = crc::csum(&d[FS_TREE_AT as usize + 32..FS_TREE_AT as usize + NODE]);
    put(&mut d, FS_TREE_AT as usize, &c.to_le_bytes());
    let fs = Btrfs::open(Rc::new(d.clone())).unwrap();
    is_corrupt(
        fs.default_fs().and_then(|f| f.stat("/")),
        "leaves the block",
    );
    // More items than the block holds.
    put(&mut d, FS_TREE_AT as usize + 96, &1000u32.to_le_bytes());
    let c = crc::csum(&d[FS_TREE_AT as usize + 32..FS_TREE_AT as usize + NODE]);
    put(&mut d, FS_TREE_AT as usize, &c.to_le_bytes());
    let fs = Btrfs::open(Rc::new(d)).unwrap();
    is_corrupt(fs.default_fs().and_then(|f| f.stat("/")), "do not fit");
    // Directory entries whose names run past their item.
    let mut s = spec();
    let mut e = dir_entry(k(257, INODE_ITEM, 0), 1, b"hello");
    put(&mut e, 27, &300u16.to_le_bytes());
    s.fs_tree[4].1 = e;
    let fs = open(&s).unwrap();
    is_corrupt(
        fs.default_fs().and_then(|f| f.read_dir("/")),
        "leaves its item",
    );
}

#[test]
fn a_compressed_extent_claiming_a_huge_size_is_refused() {
    let mut s = spec();
    s.fs_tree[9].1 = inode_item(0o100644, 1 << 40);
    s.fs_tree[10].1 = reg_extent(3, DATA_AT, 1 << 40, 1 << 40);
    let f = open(&s).unwrap().default_fs().unwrap();
    is_corrupt(f.read_at("/big", 0, &mut [0u8; 4096]), "btrfs's limit");
    // And read_file refuses the size before allocating it.
    assert!(matches!(
        f.read_file("/big", 1 << 20),
        Err(FsError::TooLarge(_))
    ));
    // A plausible claim over a stream that expands past 128 KiB (an RLE block bomb).
    let mut z = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    for i in 0..8u32 {
        let h = u32::from(i == 7) | (1 << 1) | ((128 * 1024 - 1) << 3);
        z.extend_from_slice(&h.to_le_bytes()[..3]);
        z.push(b'A');
    }
    let mut s = spec();
    s.fs_tree[10].1 = reg_extent(3, DATA_AT, z.len() as u64, 4096);
    let mut d = build(&s);
    put(&mut d, DATA_AT as usize, &z);
    let f = Btrfs::open(Rc::new(d)).unwrap().default_fs().unwrap();
    is_corrupt(f.read_file("/big", 1 << 20), "decodes past");
}

#[test]
fn a_root_ref_cycle_is_refused() {
    let mut s = spec();
    // 256 is in 257 and 257 in 256.
    s.root_tree = vec![
        (k(5, ROOT_ITEM, 0), root_item(FS_TREE_AT, 0)),
        (k(256, ROOT_ITEM, 0), root_item(SUB_TREE_AT, 0)),
        (k(256, ROOT_BACKREF, 257), root_ref(256, b"a")),
        (k(257, ROOT_ITEM, 0), root_item(SUB_TREE_AT, 0)),
        (k(257, ROOT_BACKREF, 256), root_ref(256, b"b")),
    ];
    let fs = open(&s).unwrap();
    is_corrupt(fs.subvolumes(), "loop");
    // The default subvolume still reads.
    assert!(fs.default_fs().unwrap().stat("/hello").is_ok());
}

#[test]
fn a_subvolume_entry_without_its_root_ref_is_an_empty_directory() {
    let mut s = spec();
    s.root_tree.remove(1); // the ROOT_REF
    let f = open(&s).unwrap().default_fs().unwrap();
    let st = f.stat("/sub").unwrap();
    assert_eq!(st.mode, 0o40555);
    assert!(f.read_dir("/sub").unwrap().is_empty());
}

#[test]
fn truncations_of_the_image_never_panic() {
    let d = build(&spec());
    for len in [0, 100, 0x10000, 0x10800, 0x20000, 0x21000, 0x22800, 0x30000] {
        let dev: Rc<dyn BlockDevice> = Rc::new(d[..len].to_vec());
        if let Ok(fs) = Btrfs::open(dev) {
            let _ = fs.subvolumes();
            if let Ok(f) = fs.default_fs() {
                let _ = f.read_dir("/");
                let _ = f.read_file("/hello", 100);
            }
        }
    }
}

#[test]
fn the_disk_scan_lists_the_device_and_each_subvolume() {
    use crate::appliance::disks::DiskSet;
    let dev: Rc<dyn BlockDevice> = Rc::new(build(&spec()));
    let set = DiskSet::scan(&[dev]);
    let names: Vec<(&str, &str)> = set
        .volumes
        .iter()
        .map(|v| (v.info.device.as_str(), v.info.fstype.as_str()))
        .collect();
    assert_eq!(
        names,
        [("/dev/sda", "btrfs"), ("btrfsvol:/dev/sda/sub", "btrfs")]
    );
    let top = &set.volumes[0];
    assert!(!top.is_subvolume());
    assert_eq!(top.subvolume.as_ref().map(|s| s.id), Some(5));
    let sub = &set.volumes[1];
    assert!(sub.is_subvolume());
    assert_eq!(sub.device(), "/dev/sda");
    assert_eq!(sub.info.uuid, top.info.uuid);
    let fs = sub.fs.as_ref().unwrap();
    assert_eq!(fs.stat("/").unwrap().mode, 0o40700);
    let top_fs = top.fs.as_ref().unwrap();
    assert_eq!(top_fs.read_file("/hello", 100).unwrap(), b"hello\n");
    // A broken subvolume list leaves the device readable, with a warning.
    let mut s = spec();
    s.root_tree[3].1 = vec![1, 2];
    let set = DiskSet::scan(&[Rc::new(build(&s)) as Rc<dyn BlockDevice>]);
    assert_eq!(set.volumes.len(), 1);
    assert!(set.volumes[0].fs.is_some());
    assert!(
        set.warnings.iter().any(|w| w.contains("subvolumes")),
        "{:?}",
        set.warnings
    );
}

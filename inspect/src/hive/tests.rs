//! Tests over hives made by hivex (testdata/make.sh): everything read is compared with
//! `hivexregedit --export` and `hivexget`; then hostile hives, and mutated hives.

use super::*;
use crate::store::Bytes;
use std::fmt::Write as _;
use std::string::ToString;

const SOFTWARE: &[u8] = include_bytes!("testdata/software.hive");
const SOFTWARE_RI_DB: &[u8] = include_bytes!("testdata/software-ri-db.hive");
const SYSTEM: &[u8] = include_bytes!("testdata/system.hive");
const SOFTWARE_EXPORT: &str = include_str!("testdata/software.export");
const SYSTEM_EXPORT: &str = include_str!("testdata/system.export");
const HIVEXGET: &str = include_str!("testdata/hivexget.expect");

fn fixture(name: &str) -> &'static [u8] {
    match name {
        "software.hive" => SOFTWARE,
        "software-ri-db.hive" => SOFTWARE_RI_DB,
        "system.hive" => SYSTEM,
        _ => panic!("{name}"),
    }
}

/// What `hivexregedit --export HIVE '\'` prints, from our reader.
fn export(h: &Hive) -> String {
    fn node(h: &Hive, key: &Key, path: &str, out: &mut String) {
        writeln!(out, "[{path}]").unwrap();
        let mut values = h.values(key).unwrap();
        values.sort_by(|a, b| a.name.cmp(&b.name));
        for v in values {
            if v.name.is_empty() {
                out.push_str("@=");
            } else {
                let n = v.name.replace('\\', "\\\\").replace('"', "\\\"");
                write!(out, "\"{n}\"=").unwrap();
            }
            let data = h.value_data(&v).unwrap();
            assert_eq!(data.len(), v.data_len() as usize);
            if v.kind == REG_DWORD && data.len() == 4 {
                writeln!(out, "dword:{:08x}", h.value_dword(&v).unwrap()).unwrap();
            } else {
                let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
                writeln!(out, "hex({:x}):{}", v.kind, hex.join(",")).unwrap();
            }
        }
        out.push('\n');
        let mut children: Vec<(String, Key)> = h
            .children(key)
            .unwrap()
            .into_iter()
            .map(|k| (k.name().unwrap(), k))
            .collect();
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, k) in children {
            let p = if path == "\\" {
                format!("\\{name}")
            } else {
                format!("{path}\\{name}")
            };
            node(h, &k, &p, out);
        }
    }
    let mut out = String::from("Windows Registry Editor Version 5.00\n\n");
    node(h, &h.root().unwrap(), "\\", &mut out);
    out
}

#[test]
fn export_equals_hivexregedit() {
    for (hive, expected) in [
        (SOFTWARE, SOFTWARE_EXPORT),
        (SOFTWARE_RI_DB, SOFTWARE_EXPORT),
        (SYSTEM, SYSTEM_EXPORT),
    ] {
        for h in [
            Hive::open(&Bytes(hive)).unwrap(),
            Hive::open_lenient(&Bytes(hive)).unwrap(),
        ] {
            let ours = export(&h);
            if ours != expected {
                for (i, (a, b)) in ours.lines().zip(expected.lines()).enumerate() {
                    assert_eq!(a, b, "line {}", i + 1);
                }
                assert_eq!(ours.len(), expected.len());
            }
        }
    }
}

/// What `hivexget` (hivexsh's `lsval KEY`) prints for a value.
fn hivexget(h: &Hive, v: &Value) -> Vec<u8> {
    match v.kind {
        REG_SZ | REG_EXPAND_SZ | REG_LINK => format!("{}\n", h.value_string(v).unwrap()).into(),
        REG_MULTI_SZ => h
            .value_multi_strings(v)
            .unwrap()
            .iter()
            .map(|s| format!("{s}\n"))
            .collect::<String>()
            .into(),
        REG_DWORD | REG_DWORD_BIG_ENDIAN => {
            format!("{}\n", h.value_dword(v).unwrap() as i32).into()
        }
        REG_QWORD => format!("{}\n", h.value_qword(v).unwrap() as i64).into(),
        _ => h.value_data(v).unwrap(),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn values_equal_hivexget() {
    let mut n = 0;
    for line in HIVEXGET.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [hive, path, name, out] = f[..] else {
            panic!("{line}")
        };
        let store = Bytes(fixture(hive));
        let h = Hive::open(&store).unwrap();
        // hivexsh's cd and lsval look names up as we do: ASCII case folding.
        let key = h.path_str(&h.root().unwrap(), path).unwrap().expect(path);
        let v = h.value(&key, name).unwrap().expect(name);
        assert_eq!(hivexget(&h, &v), unhex(out), "{hive} {path} {name}");
        n += 1;
    }
    assert_eq!(n, 60);
}

fn cv<'a>(h: &Hive<'a>) -> Key {
    h.path(
        &h.root().unwrap(),
        &["Microsoft", "Windows NT", "CurrentVersion"],
    )
    .unwrap()
    .unwrap()
}

#[test]
fn typed_values() {
    let store = Bytes(SOFTWARE);
    let h = Hive::open(&store).unwrap();
    let k = cv(&h);
    let get = |n: &str| h.value(&k, n).unwrap().unwrap();
    assert_eq!(
        h.value_string(&get("ProductName")).unwrap(),
        "Windows Server 2022 Standard"
    );
    let v = get("productname");
    assert_eq!((v.name.as_str(), v.kind), ("ProductName", REG_SZ));
    assert_eq!(v.data_len(), 58);
    assert!(!v.is_resident());
    assert_eq!(
        h.value_dword(&get("CurrentMajorVersionNumber")).unwrap(),
        10
    );
    assert!(get("CurrentMajorVersionNumber").is_resident());
    assert_eq!(h.value_dword(&get("BigEndian")).unwrap(), 0x1234_5678);
    assert_eq!(h.value_dword(&get("LongDword")).unwrap(), 0x0403_0201);
    assert_eq!(
        h.value_qword(&get("InstallTime")).unwrap(),
        0x01D8_2F3A_1B2C_3D4E
    );
    assert_eq!(
        h.value_string(&get("PathName")).unwrap(),
        "%SystemRoot%\\system32"
    );
    assert_eq!(get("PathName").kind, REG_EXPAND_SZ);
    assert_eq!(
        h.value_multi_strings(&get("Languages")).unwrap(),
        ["en-US", "fr-FR", "", "de-DE", ""]
    );
    assert_eq!(h.value_string(&get("OddLength")).unwrap(), "AB");
    assert_eq!(h.value_string(&get("JunkAfterNul")).unwrap(), "ok");
    assert_eq!(
        h.value_string(&get("Θεσσαλονίκη")).unwrap(),
        "UTF-16 name, 中文 \u{1F600} data"
    );
    assert_eq!(h.value_string(&get("café crème")).unwrap(), "Latin-1 name");
    // ASCII case folding only, as strcasecmp: "É" is not "é".
    assert!(h.value(&k, "CAFÉ CRÈME").unwrap().is_none());
    assert_eq!(h.value_string(&get("")).unwrap(), "default value");
    assert_eq!(get("").name, "");
    assert_eq!(h.value_data(&get("Nothing")).unwrap(), b"");
    assert_eq!(get("Nothing").kind, REG_NONE);
    assert_eq!(
        h.value_data(&get("Custom")).unwrap(),
        [0xde, 0xad, 0xbe, 0xef, 1]
    );
    assert_eq!(get("Custom").kind, 0x4d2);
    assert_eq!(
        h.value_data(&get("DigitalProductId")).unwrap(),
        (0..164).collect::<Vec<u8>>()
    );
    let big = h.value_data(&get("Big")).unwrap();
    assert_eq!(big.len(), 100_000);
    assert!(
        big.iter()
            .enumerate()
            .all(|(i, &b)| b == ((i * 7 + i / 251) % 256) as u8)
    );
    // Wrong types are errors, as in hivex.
    let ty = |r: Result<_, HiveError>| matches!(r, Err(HiveError::Type { .. }));
    assert!(ty(h.value_qword(&get("ShortQword")).map(|_| ())));
    assert!(ty(h
        .value_string(&get("CurrentMajorVersionNumber"))
        .map(|_| ())));
    assert!(ty(h.value_dword(&get("ProductName")).map(|_| ())));
    assert!(ty(h.value_multi_strings(&get("ProductName")).map(|_| ())));
    assert_eq!(
        h.value_dword(&get("ProductName")).unwrap_err().to_string(),
        "value \"ProductName\" has type 1, not a DWORD of 4 bytes"
    );
    assert!(h.value(&k, "NoSuchValue").unwrap().is_none());
    // On-disk order (hivex keeps value lists in insertion order).
    let names: Vec<String> = h.values(&k).unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(&names[..3], ["", "ProductName", "CurrentVersion"]);
    assert_eq!(names.len(), 23);
}

#[test]
fn keys_and_names() {
    let store = Bytes(SOFTWARE);
    let h = Hive::open(&store).unwrap();
    let root = h.root().unwrap();
    assert_eq!(h.key_name(&root).unwrap(), "ROOT");
    let k = cv(&h);
    let names: Vec<String> = h
        .children(&k)
        .unwrap()
        .iter()
        .map(|c| c.name().unwrap())
        .collect();
    // hivex keeps lh lists sorted (case-insensitively, as Windows).
    assert_eq!(names, ["MiXeD CaSe", "Été Français", "Ωμέγα 中文"]);
    // Latin-1 ("compressed") and UTF-16 names.
    let c = h.children(&k).unwrap();
    assert_eq!(c[1].flags & 0x20, 0x20);
    assert_eq!(c[2].flags & 0x20, 0);
    assert_eq!(c[1].subkey_count(), 0);
    assert_eq!(c[1].value_count(), 1);
    assert_eq!(c[1].parent_offset(), k.offset());
    assert_eq!(
        k.last_written(),
        c[1].last_written() - (c[1].last_written() - k.last_written())
    );
    for (path, found) in [
        ("mixed case", Some("MiXeD CaSe")),
        ("MIXED CASE", Some("MiXeD CaSe")),
        ("Été FRANçAIS", Some("Été Français")),
        ("été français", None),
        ("ΩΜΈΓΑ 中文", None),
        ("Ωμέγα 中文", Some("Ωμέγα 中文")),
        ("Mixed", None),
    ] {
        let got = h.child(&k, path).unwrap().map(|k| k.name().unwrap());
        assert_eq!(got.as_deref(), found, "{path}");
    }
    assert!(
        h.path_str(&root, "\\microsoft\\\\WINDOWS NT\\currentversion\\")
            .unwrap()
            .is_some_and(|x| x == k)
    );
    assert!(
        h.path(&root, &["Microsoft", "Nope", "CurrentVersion"])
            .unwrap()
            .is_none()
    );
    assert_eq!(h.path(&root, &[]).unwrap(), Some(root.clone()));
    assert_eq!(h.key_at(k.offset()).unwrap(), k);
    let base = h.base_block();
    assert_eq!((base.major, base.minor), (1, 3));
    assert!(!base.is_dirty());
    assert_eq!(base.file_name, "empty");
    assert_eq!(base.bins_size as usize, SOFTWARE.len() - 4096);
}

fn uninstall_names(hive: &[u8]) -> Vec<String> {
    let store = Bytes(hive);
    let h = Hive::open(&store).unwrap();
    let k = h
        .path_str(
            &h.root().unwrap(),
            "Microsoft\\Windows\\CurrentVersion\\Uninstall",
        )
        .unwrap()
        .unwrap();
    h.children(&k)
        .unwrap()
        .iter()
        .map(|c| c.name().unwrap())
        .collect()
}

#[test]
fn index_lists_and_big_data() {
    let store = Bytes(SOFTWARE_RI_DB);
    let h = Hive::open(&store).unwrap();
    let base = h.base_block();
    assert_eq!(
        (base.major, base.minor, base.sequence1, base.sequence2),
        (1, 5, 5, 4)
    );
    assert!(base.is_dirty());
    // The Uninstall key's list is an ri over lf, li and lh lists (restructure.py).
    let un = h
        .path_str(
            &h.root().unwrap(),
            "Microsoft\\Windows\\CurrentVersion\\Uninstall",
        )
        .unwrap()
        .unwrap();
    let sig = |off: u32| {
        let o = 4096 + off as usize + 4;
        SOFTWARE_RI_DB[o..o + 2].to_vec()
    };
    assert_eq!(sig(un.subkey_list), b"ri");
    let ri = 4096 + un.subkey_list as usize + 8;
    let lists: Vec<Vec<u8>> = (0..3)
        .map(|i| sig(le32(SOFTWARE_RI_DB, ri + 4 * i)))
        .collect();
    assert_eq!(lists, [b"lf", b"li", b"lh"]);
    // The same subkeys in the same order as hivex's one lh list.
    let names = uninstall_names(SOFTWARE_RI_DB);
    assert_eq!(names, uninstall_names(SOFTWARE));
    assert_eq!(names.len(), 50);
    // hivex keeps lh lists sorted by upper-cased name, as Windows does.
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_uppercase());
    assert_eq!(names, sorted);
    assert_eq!(names[0], "App01");
    assert_eq!(names[49], "{000057B7-1234-5678-9ABC-DEF012345678}");
    // The big value: a db cell with 7 segments.
    let k = cv(&h);
    let v = h.value(&k, "Big").unwrap().unwrap();
    assert_eq!(sig(v.data_offset), b"db");
    assert_eq!(le16(SOFTWARE_RI_DB, 4096 + v.data_offset as usize + 6), 7);
    let big = h.value_data(&v).unwrap();
    let store0 = Bytes(SOFTWARE);
    let h0 = Hive::open(&store0).unwrap();
    let v0 = h0.value(&cv(&h0), "Big").unwrap().unwrap();
    assert_eq!(big, h0.value_data(&v0).unwrap());
}

#[test]
fn system_hive() {
    let store = Bytes(SYSTEM);
    let h = Hive::open(&store).unwrap();
    let root = h.root().unwrap();
    let select = h.child(&root, "select").unwrap().unwrap();
    let cur = h.value(&select, "current").unwrap().unwrap();
    assert_eq!(h.value_dword(&cur).unwrap(), 1);
    let ccs = format!("ControlSet{:03}", h.value_dword(&cur).unwrap());
    let p = h
        .path(&root, &[&ccs, "Services", "Tcpip", "Parameters"])
        .unwrap()
        .unwrap();
    let host = h.value(&p, "Hostname").unwrap().unwrap();
    assert_eq!(h.value_string(&host).unwrap(), "win-2022srv");
    assert_eq!(
        h.value_string(&h.value(&p, "Domain").unwrap().unwrap())
            .unwrap(),
        ""
    );
    let md = h.child(&root, "MountedDevices").unwrap().unwrap();
    let vals = h.values(&md).unwrap();
    let names: Vec<&str> = vals.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "\\DosDevices\\C:",
            "\\DosDevices\\E:",
            "\\??\\Volume{0a1b2c3d-0000-0000-0000-100000000000}"
        ]
    );
    assert!(vals.iter().all(|v| v.kind == REG_BINARY));
    assert_eq!(
        h.value_data(&vals[0]).unwrap(),
        [0x1a, 0x2b, 0x3c, 0x4d, 0, 0, 0x10, 0, 0, 0, 0, 0]
    );
    let gpt = h.value_data(&vals[1]).unwrap();
    assert_eq!(&gpt[..8], b"DMIO:ID:");
    assert_eq!(gpt[8..], (0x10..0x20).collect::<Vec<u8>>());
    // The whole tree, in on-disk order, each key once.
    let mut seen = Vec::new();
    h.walk(&root, &mut |path| {
        let names: Vec<String> = path.iter().skip(1).map(|k| k.name().unwrap()).collect();
        seen.push(names.join("\\"));
        Ok(true)
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            "",
            "ControlSet001",
            "ControlSet001\\Control",
            "ControlSet001\\Control\\ComputerName",
            "ControlSet001\\Control\\ComputerName\\ComputerName",
            "ControlSet001\\Services",
            "ControlSet001\\Services\\Tcpip",
            "ControlSet001\\Services\\Tcpip\\Parameters",
            "ControlSet002",
            "MountedDevices",
            "Select",
        ]
    );
    // Not descending.
    let mut n = 0;
    h.walk(&root, &mut |path| {
        n += 1;
        Ok(path.len() < 2)
    })
    .unwrap();
    assert_eq!(n, 5);
}

#[test]
fn hbins_are_walked_lazily() {
    let store = Bytes(SOFTWARE);
    let h = Hive::open(&store).unwrap();
    let first = h.bins_walked();
    assert!(first >= 1);
    export(&h);
    let hbins = (4096..SOFTWARE.len())
        .step_by(4096)
        .filter(|&o| &SOFTWARE[o..o + 4] == b"hbin")
        .count();
    assert!(first < hbins, "{first} {hbins}");
    assert_eq!(h.bins_walked(), hbins);
}

// ---- Hostile hives ----

fn checksum(d: &mut [u8]) {
    let sum = (0..0x1FC).step_by(4).fold(0u32, |s, i| s ^ le32(d, i));
    d[0x1FC..0x200].copy_from_slice(&sum.to_le_bytes());
}

fn put32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn corrupt_err<T: core::fmt::Debug>(r: Result<T, HiveError>, needle: &str) {
    match r {
        Err(HiveError::Corrupt(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("{other:?}, wanted Corrupt({needle:?})"),
    }
}

#[test]
fn bad_base_blocks() {
    let mut d = SYSTEM.to_vec();
    d[0] = b'R';
    corrupt_err(Hive::open(&Bytes(&d)).map(|_| ()), "no regf signature");
    let mut d = SYSTEM.to_vec();
    d[0x30] ^= 1;
    corrupt_err(Hive::open(&Bytes(&d)).map(|_| ()), "checksum");
    let mut d = SYSTEM.to_vec();
    put32(&mut d, 20, 2);
    checksum(&mut d);
    assert!(matches!(
        Hive::open(&Bytes(&d)),
        Err(HiveError::Unsupported(m)) if m == "version 2.3 (only 1.x)"
    ));
    corrupt_err(
        Hive::open(&Bytes(&SYSTEM[..0x1fff])).map(|_| ()),
        "too small",
    );
    corrupt_err(Hive::open(&Bytes(&[])).map(|_| ()), "too small");
    // Root outside the hive bins, inside an hbin header, in the middle of a cell, in a
    // free cell.
    for (root, why) in [
        (0x7FFF_FFF0, "outside the hive bins"),
        (u32::MAX, "not 4-byte aligned"),
        (0x1000, "inside an hbin header"),
        (0x24, "not the start of an allocated cell"),
        (0x2, "not 4-byte aligned"),
    ] {
        let mut d = SYSTEM.to_vec();
        put32(&mut d, 36, root);
        checksum(&mut d);
        corrupt_err(Hive::open(&Bytes(&d)).map(|_| ()), why);
    }
    // The root is not a key.
    let mut d = SYSTEM.to_vec();
    let sk = 4096 + 0x20 + 0x58;
    assert_eq!(&d[sk + 4..sk + 6], b"sk");
    put32(&mut d, 36, 0x78);
    checksum(&mut d);
    corrupt_err(Hive::open(&Bytes(&d)).map(|_| ()), "not nk");
    // Hive bins size larger than the file: the file bounds it.
    let mut d = SYSTEM.to_vec();
    put32(&mut d, 40, 0x7000_0000);
    checksum(&mut d);
    let store = Bytes(&d);
    let h = Hive::open(&store).unwrap();
    assert_eq!(export(&h), SYSTEM_EXPORT);
    // Hive bins size that cuts the hive: cells beyond it are outside.
    let mut d = SOFTWARE.to_vec();
    put32(&mut d, 40, 0x1000);
    checksum(&mut d);
    let store = Bytes(&d);
    let h = Hive::open(&store).unwrap();
    let r = h.path_str(&h.root().unwrap(), "Microsoft\\Windows NT\\CurrentVersion");
    corrupt_err(r, "outside the hive bins (0x1000 bytes)");
}

/// The offset in `d` of the hive cell of key `path` of a fixture.
fn key_of(d: &[u8], path: &str) -> Key {
    let store = Bytes(d);
    let h = Hive::open(&store).unwrap();
    h.path_str(&h.root().unwrap(), path).unwrap().unwrap()
}

const UNINSTALL: &str = "Microsoft\\Windows\\CurrentVersion\\Uninstall";
const CV: &str = "Microsoft\\Windows NT\\CurrentVersion";

#[test]
fn hostile_subkey_lists() {
    let un = key_of(SOFTWARE_RI_DB, UNINSTALL);
    let ri = 4096 + un.subkey_list as usize + 4;
    let lf = le32(SOFTWARE_RI_DB, ri + 4) as usize + 4096 + 4;
    let children = |d: &[u8], lenient: bool| {
        let store = Bytes(d);
        let h = if lenient {
            Hive::open_lenient(&store)
        } else {
            Hive::open(&store)
        }
        .unwrap();
        let k = h.key_at(un.offset).unwrap();
        h.children(&k).map(|c| c.len())
    };
    // An ri list containing itself.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, ri + 4 + 4, un.subkey_list);
    corrupt_err(children(&d, false), "an ri list inside ri list");
    corrupt_err(children(&d, true), "an ri list inside ri list");
    // An ri list listing one list twice.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, ri + 8, le32(SOFTWARE_RI_DB, ri + 4));
    corrupt_err(children(&d, false), "is listed twice");
    // A subkey list containing its own key.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, lf + 4 + 8 * 3, un.offset);
    corrupt_err(children(&d, false), "the key lists itself as a subkey");
    // ... or its parent: children() is fine, the walk finds the cycle.
    let mut d = SOFTWARE_RI_DB.to_vec();
    let parent = un.parent_offset();
    put32(&mut d, lf + 4 + 8 * 3, parent);
    assert_eq!(children(&d, false), Ok(50));
    let store = Bytes(&d);
    let h = Hive::open(&store).unwrap();
    let mut visits = 0;
    let r = h.walk(&h.root().unwrap(), &mut |_| {
        visits += 1;
        Ok(true)
    });
    corrupt_err(r, "is reached twice");
    assert!(visits < 200, "{visits}");
    // A subkey twice in one list.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, lf + 4 + 8 * 3, le32(SOFTWARE_RI_DB, lf + 4));
    corrupt_err(children(&d, false), "is listed twice");
    // A subkey outside the hive: strict, an error; lenient (hivex's unsafe mode), skipped.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, lf + 4 + 8 * 3, 0x4000_0000);
    corrupt_err(children(&d, false), "outside the hive bins");
    assert_eq!(children(&d, true), Ok(49));
    // A subkey that is a value.
    let mut d = SOFTWARE_RI_DB.to_vec();
    let vk = key_of(SOFTWARE_RI_DB, CV).value_list as usize + 4096 + 4;
    put32(&mut d, lf + 4 + 8 * 3, le32(SOFTWARE_RI_DB, vk));
    corrupt_err(children(&d, false), "not nk");
    assert_eq!(children(&d, true), Ok(49));
    // An ri entry outside the hive: lenient skips that list.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, ri + 4, 0x10_0000);
    corrupt_err(children(&d, false), "outside the hive bins");
    assert_eq!(children(&d, true), Ok(30));
    // Counts larger than the list cell.
    let mut d = SOFTWARE_RI_DB.to_vec();
    d[lf + 2..lf + 4].copy_from_slice(&0xFFFFu16.to_le_bytes());
    corrupt_err(children(&d, false), "65535 entries do not fit its cell");
    // More subkeys listed than the key's count.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, 4096 + un.offset as usize + 4 + 20, 10);
    corrupt_err(children(&d, true), "more subkeys listed than its count 10");
    // Fewer: strict refuses, lenient (hivex unsafe) accepts.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, 4096 + un.offset as usize + 4 + 20, 60);
    corrupt_err(children(&d, false), "50 subkeys listed, its count is 60");
    assert_eq!(children(&d, true), Ok(50));
    // An absurd count.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, 4096 + un.offset as usize + 4 + 20, 0xFFFF_FFFF);
    assert!(matches!(children(&d, true), Err(HiveError::Unsupported(_))));
    // A list that is not a list.
    let mut d = SOFTWARE_RI_DB.to_vec();
    d[lf..lf + 2].copy_from_slice(b"xx");
    corrupt_err(children(&d, false), "not lf/lh/li/ri");
}

#[test]
fn hostile_values() {
    let k = key_of(SOFTWARE_RI_DB, CV);
    let store = Bytes(SOFTWARE_RI_DB);
    let h = Hive::open(&store).unwrap();
    let vk_of = |name: &str| h.value(&k, name).unwrap().unwrap().offset as usize + 4096 + 4;
    let value = |d: &[u8], name: &str| {
        let store = Bytes(d);
        let h = Hive::open(&store).unwrap();
        let k = h.key_at(k.offset).unwrap();
        let v = h.value(&k, name)?.unwrap();
        h.value_data(&v)
    };
    // Gigabytes, and just over the cap: refused before allocating.
    for len in [0x7FFF_FFFF, MAX_VALUE + 1] {
        let mut d = SOFTWARE_RI_DB.to_vec();
        put32(&mut d, vk_of("Big") + 4, len);
        corrupt_err(value(&d, "Big"), &format!("{len} bytes, over 8000000"));
    }
    // Longer than its cell, not big data.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, vk_of("DigitalProductId") + 4, 1_000_000);
    corrupt_err(value(&d, "DigitalProductId"), "more than its cell");
    // Resident data over 4 bytes.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, vk_of("CurrentMajorVersionNumber") + 4, 0x8000_0008);
    corrupt_err(
        value(&d, "CurrentMajorVersionNumber"),
        "resident data of 8 bytes",
    );
    // Data outside the hive.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, vk_of("DigitalProductId") + 8, 0x7FFF_FFF8);
    corrupt_err(value(&d, "DigitalProductId"), "outside the hive bins");
    // Big data: more than its segments hold; a segment listed twice; too few segments.
    let db = le32(SOFTWARE_RI_DB, vk_of("Big") + 8) as usize + 4096 + 4;
    let list = le32(SOFTWARE_RI_DB, db + 4) as usize + 4096 + 4;
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, vk_of("Big") + 4, 7 * 16344 + 1);
    corrupt_err(value(&d, "Big"), "7 big-data segments for 114409 bytes");
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, list + 8, le32(SOFTWARE_RI_DB, list));
    corrupt_err(value(&d, "Big"), "is listed twice");
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, list + 24, le32(SOFTWARE_RI_DB, list));
    corrupt_err(value(&d, "Big"), "is listed twice");
    let mut d = SOFTWARE_RI_DB.to_vec();
    d[db + 2..db + 4].copy_from_slice(&3u16.to_le_bytes());
    corrupt_err(value(&d, "Big"), "3 big-data segments for 100000 bytes");
    // The last segment (1936 bytes) in place of a full one.
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, list, le32(SOFTWARE_RI_DB, list + 24));
    put32(&mut d, list + 24, le32(SOFTWARE_RI_DB, list));
    corrupt_err(
        value(&d, "Big"),
        "16344 bytes, more than its cell (1940 bytes)",
    );
    // Value list: outside the hive, more values than its cell, a value listed twice,
    // a name longer than its cell, invalid UTF-16 in a name.
    let vl = 4096 + k.offset as usize + 4 + 40;
    let nv = 4096 + k.offset as usize + 4 + 36;
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, vl, 0x0FFF_FFF0);
    corrupt_err(value(&d, "Big"), "outside the hive bins");
    let mut d = SOFTWARE_RI_DB.to_vec();
    put32(&mut d, nv, 100_000);
    corrupt_err(value(&d, "Big"), "100000 values do not fit its cell");
    let mut d = SOFTWARE_RI_DB.to_vec();
    let list = le32(&d, vl) as usize + 4096 + 4;
    put32(&mut d, list + 4, le32(SOFTWARE_RI_DB, list));
    corrupt_err(value(&d, "Big"), "is listed twice");
    let mut d = SOFTWARE_RI_DB.to_vec();
    d[vk_of("Big") + 2..vk_of("Big") + 4].copy_from_slice(&0x1000u16.to_le_bytes());
    corrupt_err(value(&d, "Big"), "runs past its cell");
    let mut d = SOFTWARE_RI_DB.to_vec();
    let utf16 = vk_of("Θεσσαλονίκη") + 20;
    d[utf16..utf16 + 2].copy_from_slice(&0xDC00u16.to_le_bytes());
    corrupt_err(value(&d, "Big"), "invalid UTF-16");
    // A string value that is not UTF-16 is an error (iconv's EILSEQ in hivex).
    let mut d = SOFTWARE_RI_DB.to_vec();
    let data = le32(&d, vk_of("ProductName") + 8) as usize + 4096 + 4;
    d[data..data + 2].copy_from_slice(&0xD800u16.to_le_bytes());
    let store = Bytes(&d);
    let h = Hive::open(&store).unwrap();
    let v = h.value(&k, "ProductName").unwrap().unwrap();
    corrupt_err(h.value_string(&v), "invalid UTF-16");
}

#[test]
fn hostile_hbins_and_cells() {
    let bins = |d: &[u8]| -> Vec<usize> {
        (4096..d.len())
            .step_by(4096)
            .filter(|&o| &d[o..o + 4] == b"hbin")
            .collect()
    };
    let all = bins(SOFTWARE);
    let walk = |d: &[u8], lenient: bool| -> Result<usize, HiveError> {
        let store = Bytes(d);
        let h = if lenient {
            Hive::open_lenient(&store)?
        } else {
            Hive::open(&store)?
        };
        let mut n = 0;
        h.walk(&h.root()?, &mut |_| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    };
    assert_eq!(walk(SOFTWARE, false), Ok(66));
    // hbins whose sizes overlap the next one.
    let mut d = SOFTWARE.to_vec();
    put32(&mut d, all[0] + 8, 0x2000);
    corrupt_err(walk(&d, false), "runs past the end of its hbin");
    let mut d = SOFTWARE.to_vec();
    put32(&mut d, all[3] + 8, 0x3000);
    corrupt_err(walk(&d, false), "0x6e696268 runs past the end of its hbin");
    // An hbin past the end of the file, one with a size not a multiple of 4 KiB, one
    // declaring another offset.
    let mut d = SOFTWARE.to_vec();
    let last = *all.last().unwrap();
    put32(&mut d, last + 8, 0x10_0000);
    corrupt_err(walk(&d, false), "runs past the end of the file");
    let mut d = SOFTWARE.to_vec();
    put32(&mut d, all[2] + 8, 0x1001);
    corrupt_err(walk(&d, false), "not a multiple of 4096");
    let mut d = SOFTWARE.to_vec();
    put32(&mut d, all[2] + 4, 0);
    corrupt_err(walk(&d, false), "says it is at 0x0");
    // Garbage where an hbin should be: strict refuses; lenient skips it (hivex unsafe),
    // losing the 7 keys in it.
    let mut d = SOFTWARE.to_vec();
    d[all[5]..all[5] + 4].copy_from_slice(b"XXXX");
    corrupt_err(walk(&d, false), &format!("no hbin at {:#x}", all[5] - 4096));
    assert_eq!(walk(&d, true), Ok(59));
    // A cell with a bad size: strict refuses the hbin; lenient ends its cells there.
    let mut d = SOFTWARE.to_vec();
    put32(&mut d, all[0] + 32, 3);
    corrupt_err(walk(&d, false), "not a multiple of 4 over 4");
    corrupt_err(walk(&d, true), "not the start of an allocated cell");
    // A cell size of i32::MIN.
    let mut d = SOFTWARE.to_vec();
    put32(&mut d, all[0] + 32, 0x8000_0000);
    corrupt_err(walk(&d, false), "runs past the end of its hbin");
    // A truncated file.
    let d = &SOFTWARE[..SOFTWARE.len() / 2];
    corrupt_err(walk(d, false), "outside the hive bins (0x11000 bytes)");
    // A key name over 255 characters.
    let root = Hive::open(&Bytes(SYSTEM)).unwrap().root().unwrap();
    let mut d = SYSTEM.to_vec();
    let nl = 4096 + root.offset as usize + 4 + 72;
    d[nl..nl + 2].copy_from_slice(&300u16.to_le_bytes());
    corrupt_err(Hive::open(&Bytes(&d)).map(|_| ()), "runs past its cell");
}

// ---- Mutated hives ----

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn fuzz_mutated_hives() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (hive, rounds) in [(SYSTEM, 3000), (SOFTWARE_RI_DB, 300)] {
        for round in 0..rounds {
            let mut d = hive.to_vec();
            for _ in 0..1 + rng.below(8) {
                // Mostly in cells' headers and small fields, sometimes anywhere.
                let at = if rng.below(4) == 0 {
                    rng.below(d.len())
                } else {
                    4096 + rng.below(hive.len().min(0x4000) - 4096)
                };
                match rng.below(4) {
                    0 => d[at] = rng.next() as u8,
                    1 => d[at] ^= 1 << rng.below(8),
                    2 if at + 4 <= d.len() => {
                        let v = [0u32, 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF, 0x20, 0x1000];
                        put32(&mut d, at, v[rng.below(v.len())]);
                    }
                    _ => d[at] = d[at].wrapping_add(1),
                }
            }
            if rng.below(8) == 0 {
                let n = rng.below(d.len());
                d.truncate(n);
            }
            if d.len() >= 0x200 && round % 16 != 0 {
                checksum(&mut d);
            }
            super::fuzz::exercise(&d);
        }
    }
}

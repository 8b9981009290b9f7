//! cargo-fuzz target: LVM2 (`vmchannel_inspect::disk::lvm`): PV labels, metadata areas, the
//! metadata text, VG assembly and reads through every LV, then the whole disk scan.
//!
//! Input: one flags byte, then an image. Flag bit 0: the harness first rewrites the label,
//! metadata-area and metadata-text checksums to match (so that mutations reach the text
//! parser and the LV mapping instead of stopping at a checksum); bit 1: the image is two
//! devices, its two halves (a VG over two PVs).
//!
//! Run on stable, from `kernel/fuzz`:
//! `cargo fuzz run lvm --sanitizer none corpus/lvm seeds/lvm -- -max_len=300000`
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use vmchannel_inspect::appliance::DiskSet;
use vmchannel_inspect::disk::BlockDevice;
use vmchannel_inspect::disk::lvm::{self, crc::lvm_crc, label, mda};

fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
}

/// Makes the checksums of the first label and its metadata areas' headers and committed
/// texts (when the text does not wrap) match.
fn fix_checksums(img: &mut [u8]) {
    for sector in 0..4usize {
        let at = sector * 512;
        let Some(s) = img.get_mut(at..at + 512) else { return };
        if &s[0..8] != b"LABELONE" {
            continue;
        }
        s[8..16].copy_from_slice(&(sector as u64).to_le_bytes());
        let crc = lvm_crc(&s[20..]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        let sec: [u8; 512] = s.try_into().unwrap();
        let Ok(l) = label::parse(sector as u64, &sec) else { return };
        for (start, _) in l.metadata_areas.into_iter().take(2) {
            let Ok(start) = usize::try_from(start) else { continue };
            if img.get(start..start.saturating_add(512)).is_none() {
                continue;
            }
            let (off, len) = (le64(img, start + 40), le64(img, start + 48));
            let text = usize::try_from(off)
                .ok()
                .and_then(|o| o.checked_add(start))
                .and_then(|b| Some(b..b.checked_add(usize::try_from(len).ok()?)?))
                .and_then(|r| img.get(r));
            if let Some(text) = text {
                let crc = lvm_crc(text);
                img[start + 56..start + 60].copy_from_slice(&crc.to_le_bytes());
            }
            let crc = lvm_crc(&img[start + 4..start + 512]);
            img[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        }
        return;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut img = rest.to_vec();
    let mut devs: Vec<Vec<u8>> = if flags & 2 != 0 {
        let (a, b) = img.split_at(img.len() / 2);
        vec![a.to_vec(), b.to_vec()]
    } else {
        vec![std::mem::take(&mut img)]
    };
    if flags & 1 != 0 {
        for d in &mut devs {
            fix_checksums(d);
        }
    }
    let devs: Vec<Rc<dyn BlockDevice>> =
        devs.into_iter().map(|d| Rc::new(d) as Rc<dyn BlockDevice>).collect();
    let named: Vec<(String, Rc<dyn BlockDevice>)> = devs
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("/dev/sd{}", (b'a' + i as u8) as char), d.clone()))
        .collect();
    for (_, d) in &named {
        if let Ok(Some(l)) = label::read(&**d) {
            for &(start, size) in &l.metadata_areas {
                let _ = mda::read_text(&**d, start, size);
            }
        }
    }
    let scan = lvm::scan(&named);
    for lv in &scan.lvs {
        assert!(lv.path().matches('/').count() == 3, "{}", lv.path());
        let Ok(dev) = &lv.device else { continue };
        // Whole reads of the first 256 KiB agree with reads in odd pieces.
        let n = dev.size().min(256 * 1024) as usize;
        let mut whole = vec![0u8; n];
        let ok = dev.read_at(0, &mut whole).is_ok();
        let mut pieces = vec![0u8; n];
        let mut at = 0;
        let mut all = true;
        while at < n {
            let len = (n - at).min(777);
            all &= dev.read_at(at as u64, &mut pieces[at..at + len]).is_ok();
            at += len;
        }
        assert!(ok && all, "a read inside a built LV failed");
        if ok {
            assert!(whole == pieces);
        }
        let mut b = [0u8; 1];
        assert!(dev.read_at(dev.size(), &mut b).is_err());
    }
    let set = DiskSet::scan(&devs);
    for name in &set.logical_volumes {
        assert!(set.volume(name).is_some());
    }
});

//! The PV label: `LABELONE` in one of the first four sectors, and the `pv_header` after it
//! with the PV's UUID, its data areas and its metadata areas.
//!
//! ```text
//! label_header (at the start of the sector):
//!   0  "LABELONE"   8  sector_xl (u64, the sector it is in)   16  crc_xl (u32, bytes 20..512)
//!  20  offset_xl (u32, where pv_header starts in the sector)  24  "LVM2 001"
//! pv_header (at offset_xl):
//!   0  pv_uuid[32]  32  device_size_xl (u64)
//!  40  disk_locn { offset u64, size u64 } ... data areas, a zero entry,
//!      then metadata areas, a zero entry
//! ```

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::crc::lvm_crc;
use crate::disk::{BlockDevice, SECTOR, le32, le64};
use crate::fs::FsError;

/// A physical volume's label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvLabel {
    /// The sector the label is in (0 to 3).
    pub sector: u64,
    /// The PV UUID, 32 characters without dashes.
    pub uuid: String,
    /// The device size the PV was created on, in bytes (0 when not recorded).
    pub device_size: u64,
    /// Data areas (offset, size) in bytes from the PV's start (size 0: to the end).
    pub data_areas: Vec<(u64, u64)>,
    /// Metadata areas (offset, size) in bytes from the PV's start.
    pub metadata_areas: Vec<(u64, u64)>,
}

/// Reads the label of the PV on `dev`. `Ok(None)`: no `LABELONE` label in the first four
/// sectors. A label that is there but does not check out is `Corrupt`.
pub fn read(dev: &dyn BlockDevice) -> Result<Option<PvLabel>, FsError> {
    let mut problem = None;
    for sector in 0..4u64 {
        let mut s = [0u8; SECTOR as usize];
        if dev.read_at(sector * SECTOR, &mut s).is_err() {
            break;
        }
        if &s[0..8] != b"LABELONE" {
            continue;
        }
        match parse(sector, &s) {
            Ok(l) => return Ok(Some(l)),
            Err(e) => {
                // A stale copy of another label may precede the real one: keep looking.
                problem.get_or_insert(e);
            }
        }
    }
    match problem {
        Some(e) => Err(FsError::Corrupt(e)),
        None => Ok(None),
    }
}

/// Parses the label sector `s`, found at `sector`.
pub fn parse(sector: u64, s: &[u8; SECTOR as usize]) -> Result<PvLabel, String> {
    let at = |what: &str| format!("LVM label in sector {sector}: {what}");
    if le64(s, 8) != sector {
        return Err(at(&format!("records sector {}", le64(s, 8))));
    }
    if &s[24..32] != b"LVM2 001" {
        return Err(at("type is not \"LVM2 001\""));
    }
    let (stored, computed) = (le32(s, 16), lvm_crc(&s[20..]));
    if stored != computed {
        return Err(at(&format!(
            "checksum {stored:#010x}, computed {computed:#010x}"
        )));
    }
    let off = le32(s, 20) as usize;
    if !(32..=s.len() - 40).contains(&off) {
        return Err(at(&format!("pv_header offset {off} outside the sector")));
    }
    let uuid = &s[off..off + 32];
    if !uuid.iter().all(u8::is_ascii_alphanumeric) {
        return Err(at("PV UUID is not 32 letters and digits"));
    }
    let mut label = PvLabel {
        sector,
        uuid: String::from_utf8_lossy(uuid).into_owned(),
        device_size: le64(s, off + 32),
        data_areas: Vec::new(),
        metadata_areas: Vec::new(),
    };
    let mut pos = off + 40;
    for list in [&mut label.data_areas, &mut label.metadata_areas] {
        loop {
            let Some(e) = s.get(pos..pos + 16) else {
                return Err(at("area list runs past the end of the sector"));
            };
            pos += 16;
            let (offset, size) = (le64(e, 0), le64(e, 8));
            if offset == 0 {
                break;
            }
            list.push((offset, size));
        }
    }
    Ok(label)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A label sector for `uuid` with these areas, checksummed.
    pub(crate) fn label_sector(
        sector: u64,
        uuid: &[u8; 32],
        data: &[(u64, u64)],
        mdas: &[(u64, u64)],
    ) -> [u8; 512] {
        let mut s = [0u8; 512];
        s[0..8].copy_from_slice(b"LABELONE");
        s[8..16].copy_from_slice(&sector.to_le_bytes());
        s[20..24].copy_from_slice(&32u32.to_le_bytes());
        s[24..32].copy_from_slice(b"LVM2 001");
        s[32..64].copy_from_slice(uuid);
        s[64..72].copy_from_slice(&(64u64 << 20).to_le_bytes());
        let mut pos = 72;
        for list in [data, mdas] {
            for &(o, l) in list {
                s[pos..pos + 8].copy_from_slice(&o.to_le_bytes());
                s[pos + 8..pos + 16].copy_from_slice(&l.to_le_bytes());
                pos += 16;
            }
            pos += 16;
        }
        let crc = lvm_crc(&s[20..]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        s
    }

    const UUID: &[u8; 32] = b"3Njl3M7lxJuaRR9uwUNaLWAcjrccBRKn";

    #[test]
    fn reads_a_label() {
        let mut img = alloc::vec![0u8; 8192];
        img[512..1024].copy_from_slice(&label_sector(1, UUID, &[(1 << 20, 0)], &[(4096, 0xff000)]));
        let l = read(&img).unwrap().unwrap();
        assert_eq!(l.uuid, "3Njl3M7lxJuaRR9uwUNaLWAcjrccBRKn");
        assert_eq!(l.data_areas, [(1 << 20, 0)]);
        assert_eq!(l.metadata_areas, [(4096, 0xff000)]);
        assert_eq!(read(&alloc::vec![0u8; 8192]).unwrap(), None);
        assert_eq!(read(&alloc::vec![0u8; 100]).unwrap(), None);
    }

    #[test]
    fn refuses_bad_labels() {
        let good = label_sector(1, UUID, &[], &[(4096, 4096)]);
        let mut img = alloc::vec![0u8; 4096];
        // Bad checksum.
        let mut s = good;
        s[40] ^= 1;
        img[512..1024].copy_from_slice(&s);
        let e = read(&img).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        // Label copied to another sector than it records.
        img[512..1024].fill(0);
        img[1024..1536].copy_from_slice(&good);
        assert!(
            read(&img)
                .unwrap_err()
                .to_string()
                .contains("records sector 1")
        );
        // A good label after a bad one is found.
        img[1536..2048].copy_from_slice(&label_sector(3, UUID, &[], &[]));
        assert_eq!(read(&img).unwrap().unwrap().sector, 3);
        // pv_header offset out of the sector, and an area list with no end.
        let mut s = good;
        s[20..24].copy_from_slice(&500u32.to_le_bytes());
        let crc = lvm_crc(&s[20..]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        assert!(parse(1, &s).unwrap_err().contains("outside"));
        let mut s = [0xffu8; 512];
        s[..512].copy_from_slice(&good);
        s[72..].fill(0xff);
        let crc = lvm_crc(&s[20..]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        assert!(parse(1, &s).unwrap_err().contains("runs past"));
    }
}

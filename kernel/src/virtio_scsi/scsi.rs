//! The SCSI commands a read-only disk driver needs (SPC-4, SBC-3): command blocks built,
//! answers parsed. No I/O here.

/// SCSI status GOOD.
pub const STATUS_GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION (sense data follows).
pub const STATUS_CHECK_CONDITION: u8 = 0x02;
/// Sense key UNIT ATTENTION: the device reset or changed; the command may be retried.
pub const SENSE_UNIT_ATTENTION: u8 = 0x06;
/// Sense key NOT READY.
pub const SENSE_NOT_READY: u8 = 0x02;

/// Bytes of INQUIRY data asked for (the standard header).
pub const INQUIRY_LEN: usize = 36;

/// TEST UNIT READY.
pub fn test_unit_ready() -> [u8; 6] {
    [0x00, 0, 0, 0, 0, 0]
}

/// INQUIRY for the standard data, [`INQUIRY_LEN`] bytes.
pub fn inquiry() -> [u8; 6] {
    [0x12, 0, 0, 0, INQUIRY_LEN as u8, 0]
}

/// READ CAPACITY (10).
pub fn read_capacity10() -> [u8; 10] {
    [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// READ CAPACITY (16) (SERVICE ACTION IN (16), action 0x10), 32 bytes back.
pub fn read_capacity16() -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9e;
    cdb[1] = 0x10;
    cdb[13] = 32;
    cdb
}

/// READ (10) of `blocks` blocks at `lba`; `None` when they do not fit its fields.
pub fn read10(lba: u64, blocks: u32) -> Option<[u8; 10]> {
    let lba = u32::try_from(lba).ok()?;
    let blocks = u16::try_from(blocks).ok()?;
    let mut cdb = [0u8; 10];
    cdb[0] = 0x28;
    cdb[2..6].copy_from_slice(&lba.to_be_bytes());
    cdb[7..9].copy_from_slice(&blocks.to_be_bytes());
    Some(cdb)
}

/// READ (16) of `blocks` blocks at `lba`.
pub fn read16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x88;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

/// The READ command for `blocks` at `lba`: (10) where it fits, else (16).
pub fn read(lba: u64, blocks: u32) -> ([u8; 16], usize) {
    match read10(lba, blocks) {
        Some(c) => {
            let mut cdb = [0u8; 16];
            cdb[..10].copy_from_slice(&c);
            (cdb, 10)
        }
        None => (read16(lba, blocks), 16),
    }
}

/// What INQUIRY says about a logical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inquiry {
    /// Peripheral qualifier (0: connected).
    pub qualifier: u8,
    /// Peripheral device type (0: direct-access block device).
    pub device_type: u8,
}

impl Inquiry {
    /// Parses the standard INQUIRY data; `None` when too short.
    pub fn parse(data: &[u8]) -> Option<Self> {
        let b = *data.first()?;
        Some(Self {
            qualifier: b >> 5,
            device_type: b & 0x1f,
        })
    }

    /// A connected direct-access block device (a disk).
    pub fn is_disk(&self) -> bool {
        self.qualifier == 0 && self.device_type == 0
    }
}

/// A logical unit's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Number of blocks.
    pub blocks: u64,
    /// Bytes per block.
    pub block_size: u32,
}

impl Capacity {
    /// From READ CAPACITY (10)'s 8 bytes. `None` when short, or when the device says to ask
    /// READ CAPACITY (16) (last LBA 0xffffffff).
    pub fn parse10(data: &[u8]) -> Option<Self> {
        let last = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?);
        let block_size = u32::from_be_bytes(data.get(4..8)?.try_into().ok()?);
        (last != u32::MAX).then_some(Self {
            blocks: u64::from(last) + 1,
            block_size,
        })
    }

    /// From READ CAPACITY (16)'s first 12 bytes.
    pub fn parse16(data: &[u8]) -> Option<Self> {
        let last = u64::from_be_bytes(data.get(0..8)?.try_into().ok()?);
        let block_size = u32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
        Some(Self {
            blocks: last.checked_add(1)?,
            block_size,
        })
    }

    /// Size in bytes; `None` on overflow or a block size that is not a power of two from 512
    /// to 64 KiB.
    pub fn bytes(&self) -> Option<u64> {
        (self.block_size.is_power_of_two() && (512..=65536).contains(&self.block_size))
            .then(|| self.blocks.checked_mul(u64::from(self.block_size)))
            .flatten()
    }
}

/// The sense key of fixed- or descriptor-format sense data; `None` when there is none.
pub fn sense_key(sense: &[u8]) -> Option<u8> {
    match sense.first()? & 0x7f {
        0x70 | 0x71 => Some(sense.get(2)? & 0x0f),
        0x72 | 0x73 => Some(sense.get(1)? & 0x0f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pick_the_short_form_when_it_fits() {
        let (cdb, len) = read(0x1234, 8);
        assert_eq!(len, 10);
        assert_eq!(&cdb[..10], &[0x28, 0, 0, 0, 0x12, 0x34, 0, 0, 8, 0]);
        let (cdb, len) = read(1 << 32, 8);
        assert_eq!(len, 16);
        assert_eq!(cdb[0], 0x88);
        assert_eq!(&cdb[2..10], &(1u64 << 32).to_be_bytes());
        assert_eq!(&cdb[10..14], &8u32.to_be_bytes());
        assert_eq!(read(0, 70_000).1, 16, "more than 65535 blocks");
    }

    #[test]
    fn capacities_parse_and_refuse_what_is_odd() {
        let c = Capacity::parse10(&[0, 0, 0x0f, 0xff, 0, 0, 2, 0]).unwrap();
        assert_eq!(c.blocks, 4096);
        assert_eq!(c.bytes(), Some(2 << 20));
        assert_eq!(Capacity::parse10(&[0xff; 8]), None, "ask (16)");
        assert_eq!(Capacity::parse10(&[0; 7]), None);
        let mut d = [0u8; 32];
        d[..8].copy_from_slice(&(u64::MAX).to_be_bytes());
        assert_eq!(Capacity::parse16(&d), None, "overflow");
        d[..8].copy_from_slice(&99u64.to_be_bytes());
        d[8..12].copy_from_slice(&4096u32.to_be_bytes());
        assert_eq!(Capacity::parse16(&d).unwrap().bytes(), Some(100 * 4096));
        let odd = Capacity {
            blocks: 1,
            block_size: 1000,
        };
        assert_eq!(odd.bytes(), None);
    }

    #[test]
    fn inquiry_and_sense() {
        assert!(Inquiry::parse(&[0x00]).unwrap().is_disk());
        assert!(!Inquiry::parse(&[0x05]).unwrap().is_disk(), "CD-ROM");
        assert!(!Inquiry::parse(&[0x7f]).unwrap().is_disk(), "no unit");
        assert_eq!(Inquiry::parse(&[]), None);
        assert_eq!(sense_key(&[0x70, 0, 0x06]), Some(SENSE_UNIT_ATTENTION));
        assert_eq!(sense_key(&[0x72, 0x02]), Some(SENSE_NOT_READY));
        assert_eq!(sense_key(&[0x00]), None);
        assert_eq!(sense_key(&[]), None);
    }
}

//! LVM2's checksum: CRC-32 with the reflected polynomial 0xedb88320, seeded with
//! 0xf597a6cf and not inverted at the end (`calc_crc` with `INITIAL_CRC` in LVM2), computed by
//! the `crc` crate.

/// The seed LVM2 starts every checksum from.
pub const SEED: u32 = 0xf597_a6cf;

/// LVM2's algorithm in the `crc` crate's terms: CRC-32's reflected polynomial, LVM's seed
/// (the crate takes `init` unreflected and reflects it itself, hence `reverse_bits`), no final
/// inversion.
const LVM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::Algorithm {
    init: SEED.reverse_bits(),
    xorout: 0,
    check: 0,
    residue: 0,
    ..crc::CRC_32_ISO_HDLC
});

/// LVM2's checksum of `data`.
pub fn lvm_crc(data: &[u8]) -> u32 {
    LVM.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lvm() {
        // The metadata area header of a PV vgcreate wrote (bytes 4..512 of it).
        let mut h = [0u8; 512];
        h[4..20].copy_from_slice(b" LVM2 x[5A%r0N*>");
        h[20] = 1;
        h[25] = 0x10;
        h[33..35].copy_from_slice(&[0xf0, 0x0f]);
        h[40..42].copy_from_slice(&[0x00, 0x12]);
        h[48..50].copy_from_slice(&[0xd1, 0x05]);
        h[56..60].copy_from_slice(&[0x05, 0x13, 0xf7, 0xbd]);
        assert_eq!(lvm_crc(&h[4..]), 0xe205_e299);
        let mut d = LVM.digest();
        d.update(b"ab");
        d.update(b"c");
        assert_eq!(d.finalize(), lvm_crc(b"abc"));
    }
}

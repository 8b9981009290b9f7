//! LVM2's checksum: CRC-32 with the reflected polynomial 0xedb88320, seeded with
//! 0xf597a6cf and not inverted at the end (`calc_crc` with `INITIAL_CRC` in LVM2).

/// The seed LVM2 starts every checksum from.
pub const SEED: u32 = 0xf597_a6cf;

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Continues LVM2's checksum `crc` over `data`.
pub fn update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// LVM2's checksum of `data`.
pub fn lvm_crc(data: &[u8]) -> u32 {
    update(SEED, data)
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
        assert_eq!(update(update(SEED, b"ab"), b"c"), lvm_crc(b"abc"));
    }
}

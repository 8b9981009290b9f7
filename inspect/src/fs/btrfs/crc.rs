//! CRC-32C (Castagnoli), as btrfs uses it for superblock and tree-block checksums and, with
//! a different seed and no final inversion, for directory-name hashes.

/// The reflected CRC-32C table, built at compile time.
const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
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

/// Linux's `crc32c(seed, data)`: the raw register update, no inversion on either side.
pub(crate) fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    let mut c = seed;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    c
}

/// The checksum btrfs stores for metadata: standard CRC-32C (seed !0, inverted at the end).
pub(crate) fn csum(data: &[u8]) -> u32 {
    !crc32c_raw(!0, data)
}

/// `btrfs_name_hash`: the key offset of a `DIR_ITEM` for `name`.
pub(crate) fn name_hash(name: &[u8]) -> u64 {
    u64::from(crc32c_raw(!1, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // The CRC-32C check value.
        assert_eq!(csum(b"123456789"), 0xE306_9283);
        // A name hash btrfs-progs prints for "default" (`btrfs inspect-internal dump-tree`).
        assert_eq!(name_hash(b"default"), 0x8dbf_c2d2);
    }
}

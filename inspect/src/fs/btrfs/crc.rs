//! CRC-32C (Castagnoli), as btrfs uses it for superblock and tree-block checksums and, with
//! a different seed and no final inversion, for directory-name hashes.

/// Standard CRC-32C, from the `crc` crate.
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC-32C with btrfs's name-hash seed (`~1` in the register) and no final inversion. The
/// crate takes `init` unreflected and reflects it for a reflected algorithm, hence the
/// `reverse_bits`.
const NAME_HASH: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::Algorithm {
    init: (!1u32).reverse_bits(),
    xorout: 0,
    check: 0,
    residue: 0,
    ..crc::CRC_32_ISCSI
});

/// The checksum btrfs stores for metadata: standard CRC-32C (seed !0, inverted at the end).
pub(crate) fn csum(data: &[u8]) -> u32 {
    CRC32C.checksum(data)
}

/// `btrfs_name_hash`: the key offset of a `DIR_ITEM` for `name`.
pub(crate) fn name_hash(name: &[u8]) -> u64 {
    u64::from(NAME_HASH.checksum(name))
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

//! ext4's directory-name hashes (legacy, half-MD4 and TEA, each with signed or unsigned
//! chars), which decide the order Linux's `readdir` returns a hash-indexed directory in.
//!
//! Written here from the algorithms (the kernel's `fs/ext4/hash.c` describes them); ext4-view
//! computes the major hash for lookups but keeps it private and has no minor hash, which
//! the order needs. Checked against e2fsprogs' `debugfs dx_hash` in the tests.

use core::num::Wrapping;

type W = Wrapping<u32>;

/// Default hash version numbers, as in the superblock and an htree root.
pub const LEGACY: u8 = 0;
/// Half-MD4.
pub const HALF_MD4: u8 = 1;
/// TEA.
pub const TEA: u8 = 2;

/// The major and minor hash of `name` under `version` (0-2; 3-5 are their unsigned-char
/// forms), with `seed`. `None` for a version this does not know (siphash, for casefolded
/// encrypted directories).
pub fn hash(name: &[u8], version: u8, seed: &[u32; 4]) -> Option<(u32, u32)> {
    let unsigned = version >= 3;
    let mut buf: [W; 4] = [
        Wrapping(0x6745_2301),
        Wrapping(0xefcd_ab89),
        Wrapping(0x98ba_dcfe),
        Wrapping(0x1032_5476),
    ];
    if seed.iter().any(|&s| s != 0) {
        for (b, &s) in buf.iter_mut().zip(seed) {
            *b = Wrapping(s);
        }
    }
    let (major, minor) = match version % 3 {
        LEGACY if version <= 3 => (legacy(name, unsigned), 0),
        HALF_MD4 if version <= 4 => {
            let mut rest = name;
            loop {
                let block = words::<8>(rest, unsigned);
                half_md4(&mut buf, &block);
                if rest.len() <= 32 {
                    break;
                }
                rest = &rest[32..];
            }
            (buf[1].0, buf[2].0)
        }
        TEA if version <= 5 => {
            let mut rest = name;
            loop {
                let block = words::<4>(rest, unsigned);
                tea(&mut buf, &block);
                if rest.len() <= 16 {
                    break;
                }
                rest = &rest[16..];
            }
            (buf[0].0, buf[1].0)
        }
        _ => return None,
    };
    let mut major = major & !1;
    // The last value is the end-of-directory cookie.
    if major == 0x7fff_ffff << 1 {
        major = (0x7fff_ffff - 1) << 1;
    }
    Some((major, minor))
}

/// A char of the name as the hash reads it.
fn chr(b: u8, unsigned: bool) -> u32 {
    if unsigned {
        b as u32
    } else {
        b as i8 as i32 as u32
    }
}

/// The first `N` words of the hash input from the rest of the name: big-endian packed chars,
/// padded with the remaining length's low byte repeated.
fn words<const N: usize>(rest: &[u8], unsigned: bool) -> [W; N] {
    let len = rest.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut out = [Wrapping(pad); N];
    let take = rest.len().min(N * 4);
    let mut val = pad;
    for (i, &b) in rest[..take].iter().enumerate() {
        val = chr(b, unsigned).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[i / 4] = Wrapping(val);
            val = pad;
        }
    }
    if !take.is_multiple_of(4) {
        out[take / 4] = Wrapping(val);
    }
    out
}

fn legacy(name: &[u8], unsigned: bool) -> u32 {
    let (mut h0, mut h1) = (0x12a3_fe2du32, 0x37ab_e8f9u32);
    for &b in name {
        let mut h = h1.wrapping_add(h0 ^ chr(b, unsigned).wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

fn half_md4(buf: &mut [W; 4], x: &[W; 8]) {
    let f = |x: W, y: W, z: W| z ^ (x & (y ^ z));
    let g = |x: W, y: W, z: W| (x & y) + ((x ^ y) & z);
    let h = |x: W, y: W, z: W| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *buf;
    let step = |fun: &dyn Fn(W, W, W) -> W, a: W, b: W, c: W, d: W, x: W, s: u32| {
        Wrapping((a + fun(b, c, d) + x).0.rotate_left(s))
    };
    let k2 = Wrapping(0x5a82_7999);
    let k3 = Wrapping(0x6ed9_eba1);
    for i in [0, 4] {
        a = step(&f, a, b, c, d, x[i], 3);
        d = step(&f, d, a, b, c, x[i + 1], 7);
        c = step(&f, c, d, a, b, x[i + 2], 11);
        b = step(&f, b, c, d, a, x[i + 3], 19);
    }
    for i in [1, 0] {
        a = step(&g, a, b, c, d, x[i] + k2, 3);
        d = step(&g, d, a, b, c, x[i + 2] + k2, 5);
        c = step(&g, c, d, a, b, x[i + 4] + k2, 9);
        b = step(&g, b, c, d, a, x[i + 6] + k2, 13);
    }
    for i in [3, 1] {
        a = step(&h, a, b, c, d, x[i] + k3, 3);
        d = step(&h, d, a, b, c, x[i + 4] + k3, 9);
        c = step(&h, c, d, a, b, x[i - 1] + k3, 11);
        b = step(&h, b, c, d, a, x[i + 3] + k3, 15);
    }
    buf[0] += a;
    buf[1] += b;
    buf[2] += c;
    buf[3] += d;
}

fn tea(buf: &mut [W; 4], x: &[W; 4]) {
    let mut sum = Wrapping(0u32);
    let (mut b0, mut b1) = (buf[0], buf[1]);
    for _ in 0..16 {
        sum += Wrapping(0x9e37_79b9);
        b0 += ((b1 << 4) + x[0]) ^ (b1 + sum) ^ ((b1 >> 5) + x[1]);
        b1 += ((b0 << 4) + x[2]) ^ (b0 + sum) ^ ((b0 >> 5) + x[3]);
    }
    buf[0] += b0;
    buf[1] += b1;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed of UUID 333fa1eb-588c-456e-b81c-d1d343cd0e01, as the superblock stores it.
    const SEED: [u32; 4] = [0xeba1_3f33, 0x6e45_8c58, 0xd3d1_1cb8, 0x010e_cd43];
    const LONG: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const UTF8: &str = "NetLock_Arany_=Class_Gold=_F\u{151}tan\u{fa}s\u{ed}tv\u{e1}ny.pem";

    /// Expected values printed by e2fsprogs 1.47's `debugfs -R "dx_hash -h ALG -s SEED NAME"`.
    #[test]
    fn hashes_are_debugfs_dx_hash() {
        let cases: [(u8, &[u8], u32, u32); 12] = [
            (LEGACY, b"hello", 0x3225_2546, 0),
            (LEGACY, b"a", 0xe74b_53e2, 0),
            (LEGACY, UTF8.as_bytes(), 0x2367_ca78, 0),
            (LEGACY, LONG, 0x0c07_9e3a, 0),
            (HALF_MD4, b"hello", 0x0a5a_fb0a, 0xd2dd_fff6),
            (HALF_MD4, b"a", 0x1fb2_5ba6, 0x00a3_3dde),
            (HALF_MD4, UTF8.as_bytes(), 0xb40a_2038, 0xa4ed_7df4),
            (HALF_MD4, LONG, 0x3af7_6350, 0x1779_84cc),
            (TEA, b"hello", 0xaab9_42c8, 0xd011_3bd1),
            (TEA, b"a", 0xb639_a1c4, 0xa226_a350),
            (TEA, UTF8.as_bytes(), 0x23d6_1dc4, 0x98c0_7042),
            (TEA, LONG, 0x108c_7b20, 0x8c6d_ca1d),
        ];
        for (v, name, major, minor) in cases {
            assert_eq!(
                hash(name, v, &SEED),
                Some((major, minor)),
                "version {v}, {}",
                String::from_utf8_lossy(name)
            );
        }
        // No seed: MD4's initial words.
        assert_eq!(
            hash(b"hello", HALF_MD4, &[0; 4]),
            Some((0x1746_da32, 0x4200_13b5))
        );
    }

    #[test]
    fn unsigned_forms_differ_only_past_ascii() {
        for v in [LEGACY, HALF_MD4, TEA] {
            assert_eq!(hash(LONG, v, &SEED), hash(LONG, v + 3, &SEED));
            assert_ne!(
                hash(UTF8.as_bytes(), v, &SEED),
                hash(UTF8.as_bytes(), v + 3, &SEED)
            );
        }
        assert_eq!(hash(b"x", 6, &SEED), None);
    }

    extern crate alloc;
    use alloc::string::String;
}

//! The ring's stable 64-bit hash: XXH64, written out from its specification.
//!
//! Every node of a cluster must place the same virtual nodes at the same
//! points and map the same key to the same point, whatever its platform,
//! compiler or crate versions. So the hash is not `std`'s `DefaultHasher`
//! (which may change between releases) but XXH64 (Yann Collet's xxHash,
//! 64-bit variant, `doc/xxhash_spec.md` of the reference implementation),
//! computed over explicit little-endian bytes. Its output for fixed inputs is
//! pinned by golden tests below: the published test vectors of the reference
//! implementation, and the ring's own derived values. Changing any of them
//! is a wire-format change: every node of a cluster must agree.

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

/// The seed with which keys are hashed onto the ring.
pub const KEY_SEED: u64 = 0;

/// The seed with which shard ids are hashed onto the ring (distinct from
/// [`KEY_SEED`], so shard 7 and the key `7u32.to_le_bytes()` do not collide).
pub const SHARD_SEED: u64 = 0x5348_4152_445F_5345; // "SHARD_SE"

#[inline(always)]
fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

#[inline(always)]
fn merge_round(acc: u64, val: u64) -> u64 {
    (acc ^ round(0, val)).wrapping_mul(P1).wrapping_add(P4)
}

#[inline(always)]
fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^= h >> 32;
    h
}

#[inline(always)]
fn read_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(
        bytes[..8]
            .try_into()
            .expect("caller passes at least 8 bytes"),
    )
}

#[inline(always)]
fn read_u32(bytes: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes(
        bytes[..4]
            .try_into()
            .expect("caller passes at least 4 bytes"),
    ))
}

/// XXH64 of `bytes` with `seed`, as the xxHash specification defines it.
#[inline]
pub fn xxh64(bytes: &[u8], seed: u64) -> u64 {
    let len = bytes.len();
    let mut rest = bytes;
    let mut h = if len >= 32 {
        let mut v1 = seed.wrapping_add(P1).wrapping_add(P2);
        let mut v2 = seed.wrapping_add(P2);
        let mut v3 = seed;
        let mut v4 = seed.wrapping_sub(P1);
        while rest.len() >= 32 {
            v1 = round(v1, read_u64(&rest[0..]));
            v2 = round(v2, read_u64(&rest[8..]));
            v3 = round(v3, read_u64(&rest[16..]));
            v4 = round(v4, read_u64(&rest[24..]));
            rest = &rest[32..];
        }
        let mut h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        h = merge_round(h, v1);
        h = merge_round(h, v2);
        h = merge_round(h, v3);
        merge_round(h, v4)
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(len as u64);
    while rest.len() >= 8 {
        h ^= round(0, read_u64(rest));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        h ^= read_u32(rest).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        rest = &rest[4..];
    }
    for &byte in rest {
        h ^= u64::from(byte).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    avalanche(h)
}

/// XXH64 of the 8 little-endian bytes of `x`: equal to
/// `xxh64(&x.to_le_bytes(), seed)`, without the loop.
#[inline]
pub fn xxh64_u64(x: u64, seed: u64) -> u64 {
    let mut h = seed.wrapping_add(P5).wrapping_add(8);
    h ^= round(0, x);
    h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
    avalanche(h)
}

/// Where a key lands on the ring.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    xxh64(key, KEY_SEED)
}

/// Where a key given as a `u64` lands on the ring: the same point as
/// `key_hash(&key.to_le_bytes())`.
#[inline]
pub fn key_hash_u64(key: u64) -> u64 {
    xxh64_u64(key, KEY_SEED)
}

/// The point of virtual node `vnode` of the node with raw id `node` on a
/// ring with `seed`: XXH64 of the 16 bytes `node` LE ‖ `vnode` LE.
#[inline]
pub fn vnode_point(node: u64, vnode: u64, seed: u64) -> u64 {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&node.to_le_bytes());
    buf[8..].copy_from_slice(&vnode.to_le_bytes());
    xxh64(&buf, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Test vectors published with the reference implementation (and
    /// reproduced by every conforming port). If one of these fails, the hash
    /// is not XXH64 any more.
    #[test]
    fn xxh64_matches_the_published_test_vectors() {
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
        assert_eq!(
            xxh64(b"The quick brown fox jumps over the lazy dog", 0),
            0x0B24_2D36_1FDA_71BC
        );
    }

    /// Golden values of the ring's own derived hashes, for inputs that take
    /// every path of the function (0, 1–3, 4–7, 8, 9–31, 32, > 32 bytes;
    /// non-zero seeds). Pinned so that no refactoring can silently move
    /// every key of a running cluster: these values must never change.
    #[test]
    fn hash_output_for_fixed_inputs_never_changes() {
        let golden: &[(&[u8], u64, u64)] = &[
            (b"", 1, GOLDEN[0]),
            (b"ab", 0, GOLDEN[1]),
            (b"abcd", 0, GOLDEN[2]),
            (b"abcdefg", 0, GOLDEN[3]),
            (b"abcdefgh", 0, GOLDEN[4]),
            (b"key-123456", 0, GOLDEN[5]),
            (b"0123456789abcdef0123456789abcdef", 0, GOLDEN[6]),
            (
                b"0123456789abcdef0123456789abcdef0123456789abcdef-tail",
                0x1234_5678_9ABC_DEF0,
                GOLDEN[7],
            ),
        ];
        for &(input, seed, want) in golden {
            assert_eq!(
                xxh64(input, seed),
                want,
                "xxh64({:?}, {seed:#x})",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(key_hash(b"user:42"), GOLDEN[8]);
        assert_eq!(key_hash_u64(42), GOLDEN[9]);
        assert_eq!(vnode_point(3, 17, 0), GOLDEN[10]);
        assert_eq!(vnode_point(3, 17, 99), GOLDEN[11]);
    }

    /// Computed by the reference C implementation (python-xxhash 3), not by
    /// this file, so they also check this port.
    const GOLDEN: [u64; 12] = [
        0xD5AF_BA13_36A3_BE4B,
        0x65F7_08CA_92D0_4A61,
        0xDE03_27B0_D25D_92CC,
        0x1860_940E_2902_822D,
        0x3AD3_5177_5B46_34B7,
        0x676A_3740_8012_FE20,
        0x642A_9495_8E71_E6C5,
        0x95E6_7890_B5DE_B730,
        0xDC1F_EA7D_A8D2_D1C2,
        0xB556_806F_B6D1_4353,
        0x30F0_3D05_1771_DA91,
        0x7B53_943B_5CA3_984E,
    ];

    proptest! {
        #[test]
        fn u64_fast_path_equals_the_byte_path(x in any::<u64>(), seed in any::<u64>()) {
            prop_assert_eq!(xxh64_u64(x, seed), xxh64(&x.to_le_bytes(), seed));
            prop_assert_eq!(key_hash_u64(x), key_hash(&x.to_le_bytes()));
        }
    }
}

// Integrity of weight files: XXH64 (Yann Collet's xxHash, 64-bit variant, written from its published
// specification, doc/xxhash_spec.md of github.com/Cyan4973/xxHash) and a count of non-finite values in float
// tensors. Portable C: one implementation, which is also the reference (tests compare it with the spec's test
// vector and with python-xxhash).
#include "internal.h"

#include <string.h>

// The spec's five primes.
#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t read64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);  // the spec reads little-endian; every target of this project is little-endian
    return v;
}

static inline uint32_t read32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t lane) {
    acc += lane * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t v) {
    acc ^= xxh_round(0, v);
    return acc * P1 + P4;
}

uint64_t ck_xxh64(const void *data, size_t len, uint64_t seed) {
    const uint8_t *p = (const uint8_t *)data, *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const uint8_t *limit = end - 32;
        do {  // one 32-byte stripe: four independent lanes
            v1 = xxh_round(v1, read64(p));
            v2 = xxh_round(v2, read64(p + 8));
            v3 = xxh_round(v3, read64(p + 16));
            v4 = xxh_round(v4, read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh_merge(h, v1);
        h = xxh_merge(h, v2);
        h = xxh_merge(h, v3);
        h = xxh_merge(h, v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)len;
    for (; p + 8 <= end; p += 8) h = rotl64(h ^ xxh_round(0, read64(p)), 27) * P1 + P4;
    if (p + 4 <= end) {
        h = rotl64(h ^ ((uint64_t)read32(p) * P1), 23) * P2 + P3;
        p += 4;
    }
    for (; p < end; p++) h = rotl64(h ^ ((uint64_t)*p * P5), 11) * P1;
    h ^= h >> 33;  // avalanche
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

// A value is non-finite when its exponent bits are all ones (∞ or NaN). Returns how many, and the first's index
// in *first (unchanged when there is none).
size_t ck_count_nonfinite(int kind, size_t n, const void *x, size_t *first) {
    size_t bad = 0;
    if (kind == CK_FLOAT_F32) {
        const uint32_t *u = (const uint32_t *)x;
        for (size_t i = 0; i < n; i++)
            if ((u[i] & 0x7f800000u) == 0x7f800000u && bad++ == 0) *first = i;
    } else {
        const uint16_t *u = (const uint16_t *)x;
        const uint16_t mask = kind == CK_FLOAT_F16 ? 0x7c00u : 0x7f80u;
        for (size_t i = 0; i < n; i++)
            if ((u[i] & mask) == mask && bad++ == 0) *first = i;
    }
    return bad;
}

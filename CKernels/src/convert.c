// binary16 / bfloat16 ↔ binary32 by bit manipulation (portable; exact where the format allows).
#include "internal.h"

#include <string.h>

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));          // inf / NaN
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);                                    // ±0
        return (sign ? -1.0f : 1.0f) * (float)man * 5.9604644775390625e-8f;    // subnormal: man · 2^-24
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t float_to_half(float f) {
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000;
    uint32_t exp = (u >> 23) & 0xff, man = u & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));  // inf / NaN (quiet)
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);                               // overflow → inf
    if (e <= 0) {                                                                // subnormal or zero
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;                  // may carry into the exponent: fine
    return (uint16_t)(sign | half);
}

void ck_f16_to_f32_ref(size_t n, const uint16_t *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = half_to_float(x[i]);
}

void ck_f32_to_f16_ref(size_t n, const float *x, uint16_t *y) {
    for (size_t i = 0; i < n; i++) y[i] = float_to_half(x[i]);
}

#if defined(__x86_64__)
#include <immintrin.h>

// vcvtph2ps / vcvtps2ph (round to nearest even): IEEE conversions, the same bits as the scalar twins above
// (subnormals included; the tests compare every binary16 value and random floats).
__attribute__((target("avx512f")))
void ck_f16_to_f32_avx512(size_t n, const uint16_t *x, float *y) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    ck_f16_to_f32_ref(n - i, x + i, y + i);
}

__attribute__((target("avx512f")))
void ck_f32_to_f16_avx512(size_t n, const float *x, uint16_t *y) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    ck_f32_to_f16_ref(n - i, x + i, y + i);
}

// The same instructions on ymm (F16C, beside AVX2 on every AVX2 CPU this runs on; dispatch.c checks the bit).
__attribute__((target("avx,f16c")))
void ck_f16_to_f32_f16c(size_t n, const uint16_t *x, float *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    ck_f16_to_f32_ref(n - i, x + i, y + i);
}

__attribute__((target("avx,f16c")))
void ck_f32_to_f16_f16c(size_t n, const float *x, uint16_t *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    ck_f32_to_f16_ref(n - i, x + i, y + i);
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

// fcvtl / fcvtn (Advanced SIMD, every AArch64 core; FPCR's default round-to-nearest-even, subnormals kept): the
// same bits as the scalar twins, but for a signalling binary16 NaN, which fcvtl quiets (still a NaN).
void ck_f16_to_f32_neon(size_t n, const uint16_t *x, float *y) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
    ck_f16_to_f32_ref(n - i, x + i, y + i);
}

void ck_f32_to_f16_neon(size_t n, const float *x, uint16_t *y) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    ck_f32_to_f16_ref(n - i, x + i, y + i);
}
#endif

// Whole arrays: split across threads above 256 Ki values.
#define CK_CVT_CHUNK ((size_t)1 << 16)

// f(n, x + i, y + i) over chunks of CK_CVT_CHUNK values, across the kernel threads when n is large.
#define CK_CVT_CHUNKED(f, n, x, y)                                                                   \
    do {                                                                                             \
        if ((n) <= 4 * CK_CVT_CHUNK) { f((n), (x), (y)); break; }                                    \
        long chunks_ = (long)(((n) + CK_CVT_CHUNK - 1) / CK_CVT_CHUNK);                              \
        _Pragma("omp parallel for schedule(static) num_threads(ck_get_threads())")                   \
        for (long k_ = 0; k_ < chunks_; k_++) {                                                      \
            size_t i_ = (size_t)k_ * CK_CVT_CHUNK;                                                   \
            f(CK_MIN(CK_CVT_CHUNK, (n) - i_), (x) + i_, (y) + i_);                                   \
        }                                                                                            \
    } while (0)

void ck_f16_to_f32(size_t n, const uint16_t *x, float *y) {
    ck_f16_to_f32_fn f = ck_dispatch_active()->f16_to_f32;
    CK_CVT_CHUNKED(f, n, x, y);
}

void ck_f32_to_f16(size_t n, const float *x, uint16_t *y) {
    ck_f32_to_f16_fn f = ck_dispatch_active()->f32_to_f16;
    CK_CVT_CHUNKED(f, n, x, y);
}

void ck_bf16_to_f32(size_t n, const uint16_t *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = bits_f32((uint32_t)x[i] << 16);
}

void ck_f32_to_bf16(size_t n, const float *x, uint16_t *y) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = f32_bits(x[i]);
        if ((u & 0x7fffffff) > 0x7f800000) y[i] = (uint16_t)((u >> 16) | 0x40);   // NaN stays NaN
        else y[i] = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
    }
}

// Vector exp for AVX-512, AVX2 and NEON (used by SiLU, quick_gelu, GroupNorm+SiLU and attention's softmax).
// exp(x) = 2^n · p(r), n = round(x·log2 e), r = x − n·ln2 split in two constants (Cody–Waite), p the degree-6
// Taylor/minimax polynomial of Cephes' expf (coefficients from Cephes `expf.c`). Max error ~2 ulp on
// [-87.3, 88.7]; inputs below −87.3 give 0, above 88.7 give +inf, as expf.
#ifndef CK_VECMATH_H
#define CK_VECMATH_H

#define CK_EXP_HI 88.72283935546875f
#define CK_EXP_LO -87.33654022216797f
#define CK_LOG2E 1.44269504088896341f
#define CK_LN2_HI 0.693359375f
#define CK_LN2_LO -2.12194440e-4f
#define CK_EXP_P0 1.9875691500e-4f
#define CK_EXP_P1 1.3981999507e-3f
#define CK_EXP_P2 8.3334519073e-3f
#define CK_EXP_P3 4.1665795894e-2f
#define CK_EXP_P4 1.6666665459e-1f
#define CK_EXP_P5 5.0000001201e-1f

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f,avx512bw,avx512vl,fma"), always_inline)) static inline __m512 ck_exp512(__m512 x) {
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(CK_EXP_LO), _CMP_LT_OQ);
    __mmask16 over = _mm512_cmp_ps_mask(x, _mm512_set1_ps(CK_EXP_HI), _CMP_GT_OQ);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(CK_EXP_LO)), _mm512_set1_ps(CK_EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(CK_LOG2E)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CK_LN2_HI), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CK_LN2_LO), r);
    __m512 p = _mm512_set1_ps(CK_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512 y = _mm512_scalef_ps(p, n);
    y = _mm512_mask_mov_ps(y, under, _mm512_setzero_ps());
    return _mm512_mask_mov_ps(y, over, _mm512_set1_ps(__builtin_inff()));
}

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 ck_exp256(__m256 x) {
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(CK_EXP_LO), _CMP_LT_OQ);
    __m256 over = _mm256_cmp_ps(x, _mm256_set1_ps(CK_EXP_HI), _CMP_GT_OQ);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(CK_EXP_LO)), _mm256_set1_ps(CK_EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(CK_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CK_LN2_HI), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(CK_LN2_LO), r);
    __m256 p = _mm256_set1_ps(CK_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^n: n is in [-127, 128] after the clamp; build the exponent in two halves so 2^128 does not overflow.
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i h1 = _mm256_srai_epi32(ni, 1), h2 = _mm256_sub_epi32(ni, h1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    y = _mm256_andnot_ps(under, y);
    return _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), over);
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

// The same steps on 4 lanes (Advanced SIMD is part of every AArch64 core: no target attribute needed). vrndnq is
// round-to-nearest-even like _MM_FROUND_TO_NEAREST_INT; vfmsq(a, b, c) = a − b·c in one rounding, as vfnmadd.
__attribute__((always_inline)) static inline float32x4_t ck_exp128(float32x4_t x) {
    uint32x4_t under = vcltq_f32(x, vdupq_n_f32(CK_EXP_LO));
    uint32x4_t over = vcgtq_f32(x, vdupq_n_f32(CK_EXP_HI));
    float32x4_t xc = vminq_f32(vmaxq_f32(x, vdupq_n_f32(CK_EXP_LO)), vdupq_n_f32(CK_EXP_HI));
    float32x4_t n = vrndnq_f32(vmulq_f32(xc, vdupq_n_f32(CK_LOG2E)));
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(CK_LN2_HI));
    r = vfmsq_f32(r, n, vdupq_n_f32(CK_LN2_LO));
    float32x4_t p = vdupq_n_f32(CK_EXP_P0);
    p = vfmaq_f32(vdupq_n_f32(CK_EXP_P1), p, r);
    p = vfmaq_f32(vdupq_n_f32(CK_EXP_P2), p, r);
    p = vfmaq_f32(vdupq_n_f32(CK_EXP_P3), p, r);
    p = vfmaq_f32(vdupq_n_f32(CK_EXP_P4), p, r);
    p = vfmaq_f32(vdupq_n_f32(CK_EXP_P5), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    // 2^n in two halves, as on AVX2, so that 2^128 does not overflow the exponent field
    int32x4_t ni = vcvtnq_s32_f32(n);
    int32x4_t h1 = vshrq_n_s32(ni, 1), h2 = vsubq_s32(ni, h1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h2, vdupq_n_s32(127)), 23));
    float32x4_t y = vmulq_f32(vmulq_f32(p, s1), s2);
    y = vbslq_f32(under, vdupq_n_f32(0.0f), y);
    return vbslq_f32(over, vdupq_n_f32(__builtin_inff()), y);
}
#endif
#endif

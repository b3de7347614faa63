// int8 GEMM inner kernel, AVX-512 VNNI: 8 rows × 32 columns (16 zmm int32 accumulators).
// vpdpbusd multiplies unsigned by signed bytes, so activations enter as qa + 128 (one xor of the sign bit) and
// 128·colsum[n] is subtracted at the end: Σ (qa+128)·q − 128·Σ q = Σ qa·q exactly (no saturation: vpdpbusd
// sums four products of at most 255·127 into int32 without saturating).
#if defined(__x86_64__)
#include "internal.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define CK_TARGET_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

CK_TARGET_ATTR __attribute__((always_inline)) static inline void
kernel_mr(const int MR, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
          int32_t *acc, int ldacc, int nvalid) {
    __m512i c0[CK_Q8_MR_AVX512], c1[CK_Q8_MR_AVX512];
    const __m512i sign = _mm512_set1_epi32((int)0x80808080u);
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_si512();
    for (int g = 0; g < Kp / 4; g++) {
        __m512i b0 = _mm512_loadu_si512(panel + (size_t)g * CK_Q8_NR * 4);
        __m512i b1 = _mm512_loadu_si512(panel + (size_t)g * CK_Q8_NR * 4 + 64);
        for (int r = 0; r < MR; r++) {
            int32_t a4;
            memcpy(&a4, qa + (size_t)r * ldqa + 4 * g, 4);
            __m512i a = _mm512_xor_si512(_mm512_set1_epi32(a4), sign);
            c0[r] = _mm512_dpbusd_epi32(c0[r], a, b0);
            c1[r] = _mm512_dpbusd_epi32(c1[r], a, b1);
        }
    }
    __mmask16 m0 = (__mmask16)(nvalid >= 16 ? 0xffff : (1u << nvalid) - 1);
    __mmask16 m1 = (__mmask16)(nvalid >= 32 ? 0xffff : nvalid <= 16 ? 0 : (1u << (nvalid - 16)) - 1);
    __m512i k0 = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m0, colsum), 7);
    __m512i k1 = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m1, colsum + 16), 7);
    for (int r = 0; r < MR; r++) {
        _mm512_mask_storeu_epi32(acc + (size_t)r * ldacc, m0, _mm512_sub_epi32(c0[r], k0));
        _mm512_mask_storeu_epi32(acc + (size_t)r * ldacc + 16, m1, _mm512_sub_epi32(c1[r], k1));
    }
}

CK_TARGET_ATTR
void ck_q8_kernel_avx512(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                         int32_t *acc, int ldacc, int nvalid, void *scratch) {
    (void)scratch;
    switch (mr) {
#define CASE(n) case n: kernel_mr(n, Kp, qa, ldqa, panel, colsum, acc, ldacc, nvalid); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    default: break;
    }
}

// Row quantization with the reference's exact arithmetic (ck_q8_quantize_rows_ref): min/max with 0 (exact),
// the scalar parameters from ck_q8_quantize_row_params, a·inv in f32, vcvtps2dq (round-half-even), + zp, clamp to
// [0, 255], − 128.
CK_TARGET_ATTR
void ck_q8_quantize_rows_avx512(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr) {
    int Kp = ck_q8_padded_k(K);
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        int8_t *o = out + (size_t)m * Kp;
        __m512 vmin = _mm512_setzero_ps(), vmax = _mm512_setzero_ps();
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            __m512 v = _mm512_loadu_ps(a + k);
            vmin = _mm512_min_ps(vmin, v);
            vmax = _mm512_max_ps(vmax, v);
        }
        float lo = _mm512_reduce_min_ps(vmin), hi = _mm512_reduce_max_ps(vmax), inv;
        for (; k < K; k++) {
            lo = fminf(lo, a[k]);
            hi = fmaxf(hi, a[k]);
        }
        int32_t zp;
        ck_q8_quantize_row_params(lo, hi, &sa[m], &inv, &zp);
        __m512 vinv = _mm512_set1_ps(inv);
        const __m512i vzp = _mm512_set1_epi32(zp), zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255),
                      half = _mm512_set1_epi32(128);
        for (k = 0; k + 16 <= K; k += 16) {
            __m512i u = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(a + k), vinv)), vzp);
            u = _mm512_min_epi32(_mm512_max_epi32(u, zero), top);
            _mm_storeu_si128((__m128i *)(o + k), _mm512_cvtepi32_epi8(_mm512_sub_epi32(u, half)));
        }
        for (; k < K; k++) o[k] = ck_q8_quantize_act(a[k], inv, zp);
        memset(o + K, 0, (size_t)(Kp - K));
        corr[m] = 128 - zp;
    }
}
#endif

// int8 GEMM inner kernel, AVX2 without VNNI: bytes are sign-extended to 16 bits and multiplied with vpmaddwd
// (exact: vpmaddubsw would saturate its 16-bit pair sums). Up to 4 rows × 8 columns at a time.
//
// The call's rows of A are widened to int16 once, into the scratch, so each K group of a row is one 64-bit
// broadcast load (no per-use conversion); a panel's bytes are widened once per 4 rows. Per K group of 4 and 8
// columns: 2 widenings of B, 4 broadcasts (load port), 8 vpmaddwd, 8 vpaddd — 8 accumulators, 2 B registers.
// (Measured on Zen 3, 1 thread, Kp 2880: 1.7× the 2-row × 16-column kernel it replaced, which widened A per use;
// 6 rows × 8 columns ran out of registers and was slower.)
#if defined(__x86_64__)
#include "internal.h"

#include <immintrin.h>
#include <string.h>

#define CK_TARGET_ATTR __attribute__((target("avx2,fma")))

// The pieces both passes share (inlined): MR rows of widened A against one K group of 8 columns (b0: columns 0-3,
// b1: columns 4-7, each × 4 k), the accumulators' store, and A's widening to int16.
#define CK_INLINE CK_TARGET_ATTR __attribute__((always_inline)) static inline
CK_INLINE void madd_rows(const int MR, __m256i b0, __m256i b1, const int16_t *aw, int Kp, int g, __m256i c[][2]) {
    for (int r = 0; r < MR; r++) {
        int64_t a4;
        memcpy(&a4, aw + (size_t)r * Kp + 4 * g, 8);
        __m256i av = _mm256_set1_epi64x(a4);                                          // k0..k3, repeated
        c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(b0, av));
        c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(b1, av));
    }
}

CK_INLINE void store_rows(const int MR, __m256i c[][2], int32_t *acc, int ldacc, int col0, int nvalid) {
    for (int r = 0; r < MR; r++) {
        // hadd adds each column's two lanes: per 128-bit half [c0 c1 c4 c5 | c2 c3 c6 c7]; the permute orders them
        __m256i s = _mm256_permute4x64_epi64(_mm256_hadd_epi32(c[r][0], c[r][1]), 0xD8);
        int32_t lanes[8];
        _mm256_storeu_si256((__m256i *)lanes, s);
        for (int j = 0; j < 8 && col0 + j < nvalid; j++) acc[(size_t)r * ldacc + col0 + j] = lanes[j];
    }
}

CK_INLINE void widen_rows(int mr, int Kp, const int8_t *qa, int ldqa, int16_t *aw) {
    for (int r = 0; r < mr; r++)
        for (int k = 0; k < Kp; k += 16)                // Kp is a multiple of CK_Q8_KB (64)
            _mm256_storeu_si256((__m256i *)(aw + (size_t)r * Kp + k),
                                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(qa + (size_t)r * ldqa + k))));
}

// Columns col0 .. col0+7 of the panel for MR rows of widened A (aw, row stride Kp). Each ymm accumulator covers 4
// columns as 8 int32 lanes: lane 2c holds Σ k%4∈{0,1}, lane 2c+1 holds Σ k%4∈{2,3} for column c.
CK_INLINE void pass8(const int MR, int Kp, const int16_t *aw, const int8_t *panel, int col0, int32_t *acc, int ldacc,
                     int nvalid) {
    __m256i c[4][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_si256();
    const int8_t *b = panel + col0 * 4;
    for (int g = 0; g < Kp / 4; g++, b += CK_Q8_NR * 4)
        madd_rows(MR, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b)),
                  _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 16))), aw, Kp, g, c);
    store_rows(MR, c, acc, ldacc, col0, nvalid);
}

CK_TARGET_ATTR
void ck_q8_kernel_avx2(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                       int32_t *acc, int ldacc, int nvalid, void *scratch) {
    (void)colsum;
    int16_t *aw = (int16_t *)scratch;                   // mr × Kp int16 = 8·Kp bytes ≤ CK_Q8_KERNEL_SCRATCH(Kp)
    widen_rows(mr, Kp, qa, ldqa, aw);
    for (int col0 = 0; col0 < nvalid; col0 += 8) {
        switch (mr) {
        case 4: pass8(4, Kp, aw, panel, col0, acc, ldacc, nvalid); break;
        case 3: pass8(3, Kp, aw, panel, col0, acc, ldacc, nvalid); break;
        case 2: pass8(2, Kp, aw, panel, col0, acc, ldacc, nvalid); break;
        default: pass8(1, Kp, aw, panel, col0, acc, ldacc, nvalid); break;
        }
    }
}

// int8 rows × int16 panels (Winograd's exact transformed weights): pass8 with the panel already in int16, so a K
// group of 8 columns is two 32-byte loads (contiguous: ck_w16_offset's stripes) and no widening. |a·u| ≤ 128·1143:
// vpmaddwd's pair sums are exact.
CK_INLINE void pass8_w16(const int MR, int Kp, const int16_t *aw, const int16_t *panel, int col0, int32_t *acc,
                         int ldacc, int nvalid) {
    __m256i c[4][2];
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_si256();
    const int16_t *b = panel + (size_t)col0 * Kp;                      // the stripe of columns col0 .. col0+7
    for (int g = 0; g < Kp / 4; g++, b += 32)
        madd_rows(MR, _mm256_loadu_si256((const __m256i *)b), _mm256_loadu_si256((const __m256i *)(b + 16)), aw, Kp, g, c);
    store_rows(MR, c, acc, ldacc, col0, nvalid);
}

// Up to CK_W16_MR_AVX2 (32) rows: all of them widened to int16 once, then stripe by stripe of 8 columns every row
// group of 4, so one stripe (8 columns × Kp int16, contiguous) is reused by all the rows while it is in cache.
// Measured on Zen 3 (super-res 256² cat(640, 320)→320, 2 threads, a standalone harness): row groups outermost with
// the q8 layout's interleaved stripes, 1.2–1.3× slower; K in chunks of 256 or 128 kept in L1, slower too.
CK_TARGET_ATTR
void ck_w16_kernel_avx2(int mr, int Kp, const int8_t *qa, int ldqa, const int16_t *panel, int32_t *acc, int ldacc,
                        int nvalid, void *scratch) {
    int16_t *aw = (int16_t *)scratch;                   // mr × Kp int16 ≤ CK_W16_KERNEL_SCRATCH(Kp)
    widen_rows(mr, Kp, qa, ldqa, aw);
    for (int col0 = 0; col0 < nvalid; col0 += 8)
        for (int r = 0; r < mr; r += 4) {
            const int16_t *a = aw + (size_t)r * Kp;
            int32_t *o = acc + (size_t)r * ldacc;
            switch (CK_MIN(4, mr - r)) {
            case 4: pass8_w16(4, Kp, a, panel, col0, o, ldacc, nvalid); break;
            case 3: pass8_w16(3, Kp, a, panel, col0, o, ldacc, nvalid); break;
            case 2: pass8_w16(2, Kp, a, panel, col0, o, ldacc, nvalid); break;
            default: pass8_w16(1, Kp, a, panel, col0, o, ldacc, nvalid); break;
            }
        }
}

// Row quantization with the scalar parameters (ck_q8_quantize_row_params) and the same per-value operations as
// ck_q8_quantize_act: a·inv in f32, vcvtps2dq (round-half-even, as lrintf in the default mode), + zp, clamp to
// [0, 255], − 128; so the bits equal ck_q8_quantize_rows_ref's (GemmTests). The min/max reduction is exact in any
// order.
CK_TARGET_ATTR
void ck_q8_quantize_rows_avx2(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr) {
    int Kp = ck_q8_padded_k(K);
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        int8_t *o = out + (size_t)m * Kp;
        __m256 vmin = _mm256_setzero_ps(), vmax = _mm256_setzero_ps();
        int k = 0;
        for (; k + 8 <= K; k += 8) {
            __m256 v = _mm256_loadu_ps(a + k);
            vmin = _mm256_min_ps(vmin, v);
            vmax = _mm256_max_ps(vmax, v);
        }
        float lo_l[8], hi_l[8], lo = 0.0f, hi = 0.0f, inv;
        _mm256_storeu_ps(lo_l, vmin);
        _mm256_storeu_ps(hi_l, vmax);
        for (int j = 0; j < 8; j++) {
            lo = fminf(lo, lo_l[j]);
            hi = fmaxf(hi, hi_l[j]);
        }
        for (; k < K; k++) {
            lo = fminf(lo, a[k]);
            hi = fmaxf(hi, a[k]);
        }
        int32_t zp;
        ck_q8_quantize_row_params(lo, hi, &sa[m], &inv, &zp);
        const __m256 vinv = _mm256_set1_ps(inv);
        const __m256i vzp = _mm256_set1_epi32(zp), zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(255),
                      half = _mm256_set1_epi32(128);
        for (k = 0; k + 8 <= K; k += 8) {
            __m256i u = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + k), vinv)), vzp);
            u = _mm256_sub_epi32(_mm256_min_epi32(_mm256_max_epi32(u, zero), top), half);   // [-128, 127]
            __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
            _mm_storel_epi64((__m128i *)(o + k), _mm_packs_epi16(w, w));
        }
        for (; k < K; k++) o[k] = ck_q8_quantize_act(a[k], inv, zp);
        memset(o + K, 0, (size_t)(Kp - K));
        corr[m] = 128 - zp;
    }
}
#endif

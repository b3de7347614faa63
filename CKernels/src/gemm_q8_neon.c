// int8 GEMM inner kernel, NEON without the dot-product extension (Cortex-A72, the Raspberry Pi 4): each group of 4 k
// × 4 columns is one smull/smull2 pair (8 exact int16 products each: |qa·q| ≤ 128·127) and one sadalp per product
// vector (pairwise widening add into int32, so no int16 sum can overflow). Up to 4 rows × 8 columns per pass: 16
// accumulators, 2 B registers. Also the NEON row quantization, with the scalar one's bits.
#if defined(__aarch64__)
#include "internal.h"

#include <arm_neon.h>
#include <string.h>

// Columns col0 .. col0+7 of the panel for MR rows. Accumulator c[r][h] (h = 0..3) covers the 2 columns 2h, 2h+1 as
// 4 int32 lanes: [col 2h: k%4 ∈ {0,1}, k%4 ∈ {2,3}, col 2h+1: the same].
__attribute__((always_inline)) static inline void pass8(const int MR, int Kp, const int8_t *qa, int ldqa,
                                                       const int8_t *panel, int col0, int32_t *acc, int ldacc,
                                                       int nvalid) {
    int32x4_t c[4][4];
    for (int r = 0; r < MR; r++)
        for (int h = 0; h < 4; h++) c[r][h] = vdupq_n_s32(0);
    const int8_t *b = panel + col0 * 4;
    for (int g = 0; g < Kp / 4; g++, b += CK_Q8_NR * 4) {
        int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16);    // columns 0-3 × 4 k, columns 4-7 × 4 k
        for (int r = 0; r < MR; r++) {
            int32_t a4;
            memcpy(&a4, qa + (size_t)r * ldqa + 4 * g, 4);
            int8x16_t a = vreinterpretq_s8_s32(vdupq_n_s32(a4));   // k0..k3 of row r, 4 times
            c[r][0] = vpadalq_s16(c[r][0], vmull_s8(vget_low_s8(b0), vget_low_s8(a)));
            c[r][1] = vpadalq_s16(c[r][1], vmull_high_s8(b0, a));
            c[r][2] = vpadalq_s16(c[r][2], vmull_s8(vget_low_s8(b1), vget_low_s8(a)));
            c[r][3] = vpadalq_s16(c[r][3], vmull_high_s8(b1, a));
        }
    }
    for (int r = 0; r < MR; r++) {
        int32_t lanes[8];
        vst1q_s32(lanes, vpaddq_s32(c[r][0], c[r][1]));       // columns 0-3: each column's two partial sums added
        vst1q_s32(lanes + 4, vpaddq_s32(c[r][2], c[r][3]));   // columns 4-7
        for (int j = 0; j < 8 && col0 + j < nvalid; j++) acc[(size_t)r * ldacc + col0 + j] = lanes[j];
    }
}

void ck_q8_kernel_neon(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                       int32_t *acc, int ldacc, int nvalid, void *scratch) {
    (void)colsum;
    (void)scratch;
    for (int col0 = 0; col0 < nvalid; col0 += 8) {
        switch (mr) {
        case 4: pass8(4, Kp, qa, ldqa, panel, col0, acc, ldacc, nvalid); break;
        case 3: pass8(3, Kp, qa, ldqa, panel, col0, acc, ldacc, nvalid); break;
        case 2: pass8(2, Kp, qa, ldqa, panel, col0, acc, ldacc, nvalid); break;
        default: pass8(1, Kp, qa, ldqa, panel, col0, acc, ldacc, nvalid); break;
        }
    }
}

// Row quantization with the scalar parameters (ck_q8_quantize_row_params) and the per-value operations of
// ck_q8_quantize_act: a·inv in f32 (fmul), fcvtns (round to nearest, ties to even, as lrintf in the default mode),
// + zp, clamp to [0, 255], − 128; so the bits equal ck_q8_quantize_rows_ref's. fminnm/fmaxnm ignore NaNs as fminf and
// fmaxf do; the reduction is exact in any order.
void ck_q8_quantize_rows_neon(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr) {
    int Kp = ck_q8_padded_k(K);
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        int8_t *o = out + (size_t)m * Kp;
        float32x4_t vmin = vdupq_n_f32(0.0f), vmax = vdupq_n_f32(0.0f);
        int k = 0;
        for (; k + 4 <= K; k += 4) {
            float32x4_t v = vld1q_f32(a + k);
            vmin = vminnmq_f32(vmin, v);
            vmax = vmaxnmq_f32(vmax, v);
        }
        float lo = vminnmvq_f32(vmin), hi = vmaxnmvq_f32(vmax), inv;
        for (; k < K; k++) {
            lo = fminf(lo, a[k]);
            hi = fmaxf(hi, a[k]);
        }
        int32_t zp;
        ck_q8_quantize_row_params(lo, hi, &sa[m], &inv, &zp);
        const float32x4_t vinv = vdupq_n_f32(inv);
        const int32x4_t vzp = vdupq_n_s32(zp), zero = vdupq_n_s32(0), top = vdupq_n_s32(255), half = vdupq_n_s32(128);
        for (k = 0; k + 8 <= K; k += 8) {
            int32x4_t u0 = vaddq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(a + k), vinv)), vzp);
            int32x4_t u1 = vaddq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(a + k + 4), vinv)), vzp);
            u0 = vsubq_s32(vminq_s32(vmaxq_s32(u0, zero), top), half);   // [-128, 127]
            u1 = vsubq_s32(vminq_s32(vmaxq_s32(u1, zero), top), half);
            vst1_s8(o + k, vqmovn_s16(vcombine_s16(vqmovn_s32(u0), vqmovn_s32(u1))));
        }
        for (; k < K; k++) o[k] = ck_q8_quantize_act(a[k], inv, zp);
        memset(o + K, 0, (size_t)(Kp - K));
        corr[m] = 128 - zp;
    }
}
#endif

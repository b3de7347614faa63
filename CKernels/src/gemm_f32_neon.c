// f32 GEMM inner kernel, NEON (Advanced SIMD: every AArch64 core): up to 4 rows × 16 columns per pass (16 q-register
// accumulators), two passes per 32-column panel. Per 4 k: 4 loads of A (one per row, 4 k each, used lane by lane with
// fmla-by-element), 16 loads of B and 64 FMAs — 4 B loads per 16 FMAs, inside a Cortex-A76's 2 loads and 2 FMAs per
// cycle. Each output is a chain of FMAs over k in order, as on AVX2.
#if defined(__aarch64__)
#include "internal.h"

#include <arm_neon.h>
#include <string.h>

// The 16 columns [j0, j0+16) of rows [0, MR); nv (1..16) of them valid.
__attribute__((always_inline)) static inline void pass16(const int MR, int kc, const float *A, int lda, const float *B,
                                                        float *C, int ldc, int j0, int nv, const float *bias,
                                                        int accumulate) {
    float32x4_t c[4][4];
    float edge[4][16];   // the part of a row or the bias that exists when nv < 16
    for (int r = 0; r < MR; r++) {
        const float *src = accumulate ? C + (size_t)r * ldc + j0 : bias ? bias + j0 : NULL;
        if (!src) {
            for (int q = 0; q < 4; q++) c[r][q] = vdupq_n_f32(0.0f);
            continue;
        }
        if (nv < 16) {
            memset(edge[r], 0, sizeof edge[r]);
            memcpy(edge[r], src, (size_t)nv * sizeof(float));
            src = edge[r];
        }
        for (int q = 0; q < 4; q++) c[r][q] = vld1q_f32(src + 4 * q);
    }
    const float *b = B + j0;
    int k = 0;
#define CK_F32_NEON_STEP(l)                                                                          \
    do {                                                                                             \
        const float *bk = b + (size_t)(k + l) * CK_F32_NR;                                           \
        float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8), b3 = vld1q_f32(bk + 12); \
        for (int r = 0; r < MR; r++) {                                                               \
            c[r][0] = vfmaq_laneq_f32(c[r][0], b0, a[r], l);                                         \
            c[r][1] = vfmaq_laneq_f32(c[r][1], b1, a[r], l);                                         \
            c[r][2] = vfmaq_laneq_f32(c[r][2], b2, a[r], l);                                         \
            c[r][3] = vfmaq_laneq_f32(c[r][3], b3, a[r], l);                                         \
        }                                                                                            \
    } while (0)
    for (; k + 4 <= kc; k += 4) {
        float32x4_t a[4];
        for (int r = 0; r < MR; r++) a[r] = vld1q_f32(A + (size_t)r * lda + k);   // A[r][k .. k+3]
        CK_F32_NEON_STEP(0);
        CK_F32_NEON_STEP(1);
        CK_F32_NEON_STEP(2);
        CK_F32_NEON_STEP(3);
    }
#undef CK_F32_NEON_STEP
    for (; k < kc; k++) {
        const float *bk = b + (size_t)k * CK_F32_NR;
        float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8), b3 = vld1q_f32(bk + 12);
        for (int r = 0; r < MR; r++) {
            float32x4_t a = vdupq_n_f32(A[(size_t)r * lda + k]);
            c[r][0] = vfmaq_f32(c[r][0], a, b0);
            c[r][1] = vfmaq_f32(c[r][1], a, b1);
            c[r][2] = vfmaq_f32(c[r][2], a, b2);
            c[r][3] = vfmaq_f32(c[r][3], a, b3);
        }
    }
    for (int r = 0; r < MR; r++) {
        float *dst = nv < 16 ? edge[r] : C + (size_t)r * ldc + j0;
        for (int q = 0; q < 4; q++) vst1q_f32(dst + 4 * q, c[r][q]);
        if (nv < 16) memcpy(C + (size_t)r * ldc + j0, edge[r], (size_t)nv * sizeof(float));
    }
}

__attribute__((always_inline)) static inline void kernel_mr(const int MR, int kc, const float *A, int lda,
                                                           const float *B, float *C, int ldc, int nvalid,
                                                           const float *bias, int accumulate) {
    for (int j0 = 0; j0 < nvalid; j0 += 16)
        pass16(MR, kc, A, lda, B, C, ldc, j0, CK_MIN(16, nvalid - j0), bias, accumulate);
}

void ck_f32_kernel_neon(int mr, int kc, const float *A, int lda, const float *B, float *C, int ldc, int nvalid,
                        const float *bias, int accumulate) {
    switch (mr) {
    case 1: kernel_mr(1, kc, A, lda, B, C, ldc, nvalid, bias, accumulate); break;
    case 2: kernel_mr(2, kc, A, lda, B, C, ldc, nvalid, bias, accumulate); break;
    case 3: kernel_mr(3, kc, A, lda, B, C, ldc, nvalid, bias, accumulate); break;
    case 4: kernel_mr(4, kc, A, lda, B, C, ldc, nvalid, bias, accumulate); break;
    default: break;
    }
}
#endif

// int8 GEMM inner kernel, NEON with the ARMv8.6 int8 matrix-multiply extension (smmla: Neoverse V1/V2/N2, Graviton 3
// and newer, Cortex-A710 and later). smmla multiplies a 2×8 block of A by a 2×8 block of B (rows × k) into a 2×2 int32
// block (exact). The q8 panel holds 4 k per column, so two consecutive group rows are interleaved by 32-bit zips into
// the 8-k column pairs smmla reads (one zip per smmla operand, shared by every row pair); the panel layout and its
// packing stay those of every other path. Up to 4 rows (2 row pairs; an odd last row is paired with zeros) × 16
// columns (8 column pairs) per pass: 16 accumulators, 8 zipped B registers; per 8 k, 8 B loads, 8 zips, 16 smmla.
#if defined(__aarch64__)
#include "internal.h"

#include <arm_neon.h>

#if defined(__clang__)
#define CK_TARGET_I8MM __attribute__((target("i8mm")))
#else
#define CK_TARGET_I8MM __attribute__((target("arch=armv8.2-a+i8mm")))
#endif

CK_TARGET_I8MM __attribute__((always_inline)) static inline void
pass16(const int MR, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, int col0, int32_t *acc, int ldacc,
       int nvalid) {
    enum { PAIRS = 2 };
    const int np = (MR + 1) / 2;
    int32x4_t c[PAIRS][8];   // c[rp][j]: rows 2rp, 2rp+1 × columns 2j, 2j+1 as [r0c0, r0c1, r1c0, r1c1]
    for (int rp = 0; rp < np; rp++)
        for (int j = 0; j < 8; j++) c[rp][j] = vdupq_n_s32(0);
    const int8_t *b = panel + col0 * 4;
    for (int h = 0; h < Kp / 8; h++) {
        const int8_t *g0 = b + (size_t)(2 * h) * CK_Q8_NR * 4, *g1 = g0 + CK_Q8_NR * 4;   // k 8h..8h+3, 8h+4..8h+7
        int8x16_t bz[8];
        for (int q = 0; q < 4; q++) {
            int32x4_t lo = vreinterpretq_s32_s8(vld1q_s8(g0 + 16 * q)), hi = vreinterpretq_s32_s8(vld1q_s8(g1 + 16 * q));
            bz[2 * q] = vreinterpretq_s8_s32(vzip1q_s32(lo, hi));       // columns 4q, 4q+1 × 8 k
            bz[2 * q + 1] = vreinterpretq_s8_s32(vzip2q_s32(lo, hi));   // columns 4q+2, 4q+3 × 8 k
        }
        for (int rp = 0; rp < np; rp++) {
            int8x8_t r0 = vld1_s8(qa + (size_t)(2 * rp) * ldqa + 8 * h);
            int8x8_t r1 = 2 * rp + 1 < MR ? vld1_s8(qa + (size_t)(2 * rp + 1) * ldqa + 8 * h) : vdup_n_s8(0);
            int8x16_t a = vcombine_s8(r0, r1);                            // rows 2rp, 2rp+1 × 8 k
            for (int j = 0; j < 8; j++) c[rp][j] = vmmlaq_s32(c[rp][j], a, bz[j]);
        }
    }
    for (int rp = 0; rp < np; rp++) {
        int32_t lanes[2][16];
        for (int q = 0; q < 4; q++) {
            vst1q_s32(lanes[0] + 4 * q, vcombine_s32(vget_low_s32(c[rp][2 * q]), vget_low_s32(c[rp][2 * q + 1])));
            vst1q_s32(lanes[1] + 4 * q, vcombine_s32(vget_high_s32(c[rp][2 * q]), vget_high_s32(c[rp][2 * q + 1])));
        }
        for (int t = 0; t < 2 && 2 * rp + t < MR; t++)
            for (int j = 0; j < 16 && col0 + j < nvalid; j++) acc[(size_t)(2 * rp + t) * ldacc + col0 + j] = lanes[t][j];
    }
}

CK_TARGET_I8MM
void ck_q8_kernel_i8mm(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                       int32_t *acc, int ldacc, int nvalid, void *scratch) {
    (void)colsum;
    (void)scratch;
    for (int col0 = 0; col0 < nvalid; col0 += 16) {
        switch (mr) {
        case 4: pass16(4, Kp, qa, ldqa, panel, col0, acc, ldacc, nvalid); break;
        case 3: pass16(3, Kp, qa, ldqa, panel, col0, acc, ldacc, nvalid); break;
        case 2: pass16(2, Kp, qa, ldqa, panel, col0, acc, ldacc, nvalid); break;
        default: pass16(1, Kp, qa, ldqa, panel, col0, acc, ldacc, nvalid); break;
        }
    }
}
#endif

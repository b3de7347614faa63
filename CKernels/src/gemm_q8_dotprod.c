// int8 GEMM inner kernel, NEON with the ARMv8.2 dot-product extension (sdot: Cortex-A76/A78 — Raspberry Pi 5, RK3588,
// Jetson Orin — and Neoverse cores). The panel's layout is sdot's operand as it stands: 16 bytes of a group row are
// 4 columns × 4 consecutive k, and sdot-by-element adds each column's 4 products to its int32 lane (exact). Up to 4 rows
// × 16 columns per pass: 16 accumulators; per 16 k, 4 A loads (4 groups of a row each, used lane by lane), 16 B loads
// and 64 sdot.
#if defined(__aarch64__)
#include "internal.h"

#include <arm_neon.h>

#if defined(__clang__)
#define CK_TARGET_DOTPROD __attribute__((target("dotprod")))
#else
#define CK_TARGET_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

CK_TARGET_DOTPROD __attribute__((always_inline)) static inline void
pass16(const int MR, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, int col0, int32_t *acc, int ldacc,
       int nvalid) {
    int32x4_t c[4][4];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) c[r][q] = vdupq_n_s32(0);
    const int8_t *b = panel + col0 * 4;
    for (int g = 0; g < Kp / 4; g += 4) {   // Kp is a multiple of CK_Q8_KB (64): 4 groups at a time
        int8x16_t a[4];
        for (int r = 0; r < MR; r++) a[r] = vld1q_s8(qa + (size_t)r * ldqa + 4 * g);   // groups g .. g+3 of row r
#define CK_SDOT_STEP(l)                                                                              \
        do {                                                                                         \
            const int8_t *bg = b + (size_t)(g + l) * CK_Q8_NR * 4;                                   \
            int8x16_t b0 = vld1q_s8(bg), b1 = vld1q_s8(bg + 16), b2 = vld1q_s8(bg + 32), b3 = vld1q_s8(bg + 48); \
            for (int r = 0; r < MR; r++) {                                                           \
                c[r][0] = vdotq_laneq_s32(c[r][0], b0, a[r], l);                                     \
                c[r][1] = vdotq_laneq_s32(c[r][1], b1, a[r], l);                                     \
                c[r][2] = vdotq_laneq_s32(c[r][2], b2, a[r], l);                                     \
                c[r][3] = vdotq_laneq_s32(c[r][3], b3, a[r], l);                                     \
            }                                                                                        \
        } while (0)
        CK_SDOT_STEP(0);
        CK_SDOT_STEP(1);
        CK_SDOT_STEP(2);
        CK_SDOT_STEP(3);
#undef CK_SDOT_STEP
    }
    for (int r = 0; r < MR; r++) {
        int32_t lanes[16];
        for (int q = 0; q < 4; q++) vst1q_s32(lanes + 4 * q, c[r][q]);
        for (int j = 0; j < 16 && col0 + j < nvalid; j++) acc[(size_t)r * ldacc + col0 + j] = lanes[j];
    }
}

CK_TARGET_DOTPROD
void ck_q8_kernel_dotprod(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
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

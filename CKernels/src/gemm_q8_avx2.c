// int8 GEMM inner kernel, AVX2 without VNNI: bytes are sign-extended to 16 bits and multiplied with vpmaddwd
// (exact: vpmaddubsw would saturate its 16-bit pair sums). 2 rows × 16 columns at a time.
#if defined(__x86_64__)
#include "internal.h"

#include <immintrin.h>
#include <string.h>

#define CK_TARGET_ATTR __attribute__((target("avx2,fma")))

// One 16-column half of a panel for MR rows. Each ymm accumulator covers 4 columns as 8 int32 lanes:
// lane 2c holds Σ k%4∈{0,1}, lane 2c+1 holds Σ k%4∈{2,3} for column c; the pairs are added at the end.
CK_TARGET_ATTR __attribute__((always_inline)) static inline void
half_mr(const int MR, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, int half, int32_t *acc,
        int ldacc, int nvalid) {
    __m256i c[CK_Q8_MR_AVX2][4];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) c[r][q] = _mm256_setzero_si256();
    for (int g = 0; g < Kp / 4; g++) {
        const int8_t *b = panel + (size_t)g * CK_Q8_NR * 4 + half * 64;
        __m256i bw[4];
        for (int q = 0; q < 4; q++) bw[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 16 * q)));
        for (int r = 0; r < MR; r++) {
            int32_t a4;
            memcpy(&a4, qa + (size_t)r * ldqa + 4 * g, 4);
            __m256i aw = _mm256_cvtepi8_epi16(_mm_set1_epi32(a4));
            for (int q = 0; q < 4; q++) c[r][q] = _mm256_add_epi32(c[r][q], _mm256_madd_epi16(bw[q], aw));
        }
    }
    for (int r = 0; r < MR; r++) {
        int32_t lanes[32];
        for (int q = 0; q < 4; q++) _mm256_storeu_si256((__m256i *)(lanes + 8 * q), c[r][q]);
        for (int j = 0; j < 16; j++) {
            int n = half * 16 + j;
            if (n < nvalid) acc[(size_t)r * ldacc + n] = lanes[2 * j] + lanes[2 * j + 1];
        }
    }
}

CK_TARGET_ATTR
void ck_q8_kernel_avx2(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                       int32_t *acc, int ldacc, int nvalid, void *scratch) {
    (void)colsum;
    (void)scratch;
    for (int half = 0; half < 2 && half * 16 < nvalid; half++) {
        if (mr == 2) half_mr(2, Kp, qa, ldqa, panel, half, acc, ldacc, nvalid);
        else half_mr(1, Kp, qa, ldqa, panel, half, acc, ldacc, nvalid);
    }
}
#endif

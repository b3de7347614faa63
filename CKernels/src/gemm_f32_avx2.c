// f32 GEMM inner kernel, AVX2 + FMA: 3 rows × 32 columns (12 ymm accumulators).
#if defined(__x86_64__)
#include "internal.h"

#include <immintrin.h>

#define CK_TARGET __attribute__((target("avx2,fma"), always_inline)) static inline

// Lane mask for columns [j0, j0+8) when only nvalid columns are valid.
CK_TARGET __m256i lane_mask(int nvalid, int j0) {
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nvalid - j0), idx);
}

CK_TARGET void kernel_mr(const int MR, int kc, const float *A, int lda, const float *B, float *C, int ldc,
                         int nvalid, const float *bias, int accumulate) {
    __m256i mk[4];
    for (int q = 0; q < 4; q++) mk[q] = lane_mask(nvalid, 8 * q);
    __m256 c[CK_F32_MR_AVX2][4];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) {
            if (accumulate) c[r][q] = _mm256_maskload_ps(C + (size_t)r * ldc + 8 * q, mk[q]);
            else if (bias) c[r][q] = _mm256_maskload_ps(bias + 8 * q, mk[q]);
            else c[r][q] = _mm256_setzero_ps();
        }
    for (int k = 0; k < kc; k++) {
        const float *b = B + (size_t)k * CK_F32_NR;
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 b2 = _mm256_loadu_ps(b + 16), b3 = _mm256_loadu_ps(b + 24);
        for (int r = 0; r < MR; r++) {
            __m256 a = _mm256_broadcast_ss(A + (size_t)r * lda + k);
            c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
            c[r][2] = _mm256_fmadd_ps(a, b2, c[r][2]);
            c[r][3] = _mm256_fmadd_ps(a, b3, c[r][3]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) _mm256_maskstore_ps(C + (size_t)r * ldc + 8 * q, mk[q], c[r][q]);
}

__attribute__((target("avx2,fma")))
void ck_f32_kernel_avx2(int mr, int kc, const float *A, int lda, const float *B, float *C, int ldc, int nvalid,
                        const float *bias, int accumulate) {
    switch (mr) {
    case 1: kernel_mr(1, kc, A, lda, B, C, ldc, nvalid, bias, accumulate); break;
    case 2: kernel_mr(2, kc, A, lda, B, C, ldc, nvalid, bias, accumulate); break;
    case 3: kernel_mr(3, kc, A, lda, B, C, ldc, nvalid, bias, accumulate); break;
    default: break;
    }
}
#endif

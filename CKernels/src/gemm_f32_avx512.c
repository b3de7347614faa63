// f32 GEMM inner kernel, AVX-512: 12 rows × 32 columns (24 zmm accumulators), A broadcast from memory.
#if defined(__x86_64__)
#include "internal.h"

#include <immintrin.h>

#define CK_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma"), always_inline)) static inline

CK_TARGET void kernel_mr(const int MR, int kc, const float *A, int lda, const float *B, float *C, int ldc,
                         int nvalid, const float *bias, int accumulate) {
    __mmask16 m0 = (__mmask16)(nvalid >= 16 ? 0xffff : (1u << nvalid) - 1);
    __mmask16 m1 = (__mmask16)(nvalid >= 32 ? 0xffff : nvalid <= 16 ? 0 : (1u << (nvalid - 16)) - 1);
    __m512 c0[CK_F32_MR_AVX512], c1[CK_F32_MR_AVX512];
    for (int r = 0; r < MR; r++) {
        if (accumulate) {
            c0[r] = _mm512_maskz_loadu_ps(m0, C + (size_t)r * ldc);
            c1[r] = _mm512_maskz_loadu_ps(m1, C + (size_t)r * ldc + 16);
        } else if (bias) {
            c0[r] = _mm512_maskz_loadu_ps(m0, bias);
            c1[r] = _mm512_maskz_loadu_ps(m1, bias + 16);
        } else {
            c0[r] = _mm512_setzero_ps();
            c1[r] = _mm512_setzero_ps();
        }
    }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(B + (size_t)k * CK_F32_NR);
        __m512 b1 = _mm512_loadu_ps(B + (size_t)k * CK_F32_NR + 16);
        for (int r = 0; r < MR; r++) {
            __m512 a = _mm512_set1_ps(A[(size_t)r * lda + k]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm512_mask_storeu_ps(C + (size_t)r * ldc, m0, c0[r]);
        _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16, m1, c1[r]);
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma")))
void ck_f32_kernel_avx512(int mr, int kc, const float *A, int lda, const float *B, float *C, int ldc, int nvalid,
                          const float *bias, int accumulate) {
    switch (mr) {
#define CASE(n) case n: kernel_mr(n, kc, A, lda, B, C, ldc, nvalid, bias, accumulate); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12)
#undef CASE
    default: break;
    }
}
#endif

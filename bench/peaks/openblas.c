// The benchmark's OpenBLAS baseline: the engine's f32 GEMM (C = A·Wᵀ + bias) through cblas_sgemm. Only the
// benchmark links OpenBLAS; the engine (CKernels) does not.
#include "cpeaks.h"

#include <stddef.h>
#include <cblas.h>

int ck_gemm_f32_openblas(int M, int N, int K, const float *A, int lda, const float *W, int ldw,
                         const float *bias, float *C, int ldc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) C[(size_t)m * ldc + n] = bias ? bias[n] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, W, ldw, 1.0f, C, ldc);
    return 0;
}

const char *ck_openblas_corename(void) { return openblas_get_corename(); }

void ck_openblas_set_threads(int n) { openblas_set_num_threads(n); }

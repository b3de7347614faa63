// f32 GEMM: C = A·Wᵀ + bias. Reference, packing, the blocked driver and the scalar packed kernel.
#include "internal.h"

#include <string.h>

// K is split in chunks of CK_F32_KC so that one panel chunk (KC × NR floats = 32 KiB) stays in L1/L2 while the
// rows of an M block stream past it; CK_F32_MC rows of A per block (192 × 256 × 4 B = 192 KiB, in L2).
#define CK_F32_KC 256
#define CK_F32_MC 192

size_t ck_gemm_f32_packed_size(int N, int K) {
    return (size_t)CK_ROUND_UP(N, CK_F32_NR) * (size_t)K * sizeof(float);
}

void ck_gemm_f32_pack(int N, int K, const float *W, int ldw, float *packed) {
    int np = CK_ROUND_UP(N, CK_F32_NR) / CK_F32_NR;
    for (int p = 0; p < np; p++)
        for (int k = 0; k < K; k++)
            for (int j = 0; j < CK_F32_NR; j++) {
                int n = p * CK_F32_NR + j;
                packed[((size_t)p * K + k) * CK_F32_NR + j] = n < N ? W[(size_t)n * ldw + k] : 0.0f;
            }
}

void ck_gemm_f32_pack_conv(int Cout, int Cin, int kh, int kw, const float *W, float *packed) {
    int K = kh * kw * Cin;
    int np = CK_ROUND_UP(Cout, CK_F32_NR) / CK_F32_NR;
    for (int p = 0; p < np; p++)
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++)
                for (int ci = 0; ci < Cin; ci++) {
                    int k = (ky * kw + kx) * Cin + ci;
                    for (int j = 0; j < CK_F32_NR; j++) {
                        int n = p * CK_F32_NR + j;
                        float v = n < Cout ? W[(((size_t)n * Cin + ci) * kh + ky) * kw + kx] : 0.0f;
                        packed[((size_t)p * K + k) * CK_F32_NR + j] = v;
                    }
                }
}

void ck_gemm_f32_ref(int M, int N, int K, const float *A, int lda, const float *W, int ldw,
                     const float *bias, float *C, int ldc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float s = bias ? bias[n] : 0.0f;
            for (int k = 0; k < K; k++) s += A[(size_t)m * lda + k] * W[(size_t)n * ldw + k];
            C[(size_t)m * ldc + n] = s;
        }
}

void ck_f32_kernel_ref(int mr, int kc, const float *A, int lda, const float *B, float *C, int ldc, int nvalid,
                       const float *bias, int accumulate) {
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nvalid; j++) {
            float s = accumulate ? C[(size_t)r * ldc + j] : (bias ? bias[j] : 0.0f);
            for (int k = 0; k < kc; k++) s += A[(size_t)r * lda + k] * B[(size_t)k * CK_F32_NR + j];
            C[(size_t)r * ldc + j] = s;
        }
}

void ck_gemm_f32_block(const ck_dispatch *d, int M, int N, int K, const float *A, int lda, const float *packed,
                       int p0, int p1, const float *bias, float *C, int ldc) {
    ck_f32_kernel kern = d->f32_kernel;
    int mr = d->f32_mr;
    for (int p = p0; p < p1; p++) {
        int n0 = p * CK_F32_NR;
        int nvalid = CK_MIN(CK_F32_NR, N - n0);
        const float *panel = packed + (size_t)p * K * CK_F32_NR;
        const float *pb = bias ? bias + n0 : NULL;
        if (K == 0) {
            for (int m = 0; m < M; m++)
                for (int j = 0; j < nvalid; j++) C[(size_t)m * ldc + n0 + j] = pb ? pb[j] : 0.0f;
            continue;
        }
        for (int k0 = 0; k0 < K; k0 += CK_F32_KC) {
            int kc = CK_MIN(CK_F32_KC, K - k0);
            for (int m = 0; m < M; m += mr)
                kern(CK_MIN(mr, M - m), kc, A + (size_t)m * lda + k0, lda, panel + (size_t)k0 * CK_F32_NR,
                     C + (size_t)m * ldc + n0, ldc, nvalid, pb, k0 > 0);
        }
    }
}

void ck_gemm_f32(int M, int N, int K, const float *A, int lda, const float *packed, const float *bias,
                 float *C, int ldc) {
    const ck_dispatch *d = ck_dispatch_active();
    int np = CK_ROUND_UP(N, CK_F32_NR) / CK_F32_NR;
    int mb = (M + CK_F32_MC - 1) / CK_F32_MC;
    int units = mb * np;
    // Unit u = (panel u / mb, M block u % mb): panel-major, so each thread's contiguous range of units covers
    // every M block (balanced when the last block is short) and reuses each panel across the M blocks.
#pragma omp parallel for schedule(static) num_threads(ck_get_threads())
    for (int u = 0; u < units; u++) {
        int m0 = (u % mb) * CK_F32_MC, p = u / mb;
        ck_gemm_f32_block(d, CK_MIN(CK_F32_MC, M - m0), N, K, A + (size_t)m0 * lda, lda, packed, p, p + 1, bias,
                          C + (size_t)m0 * ldc, ldc);
    }
}

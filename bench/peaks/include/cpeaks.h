// Register-only and streaming loops that measure this machine's own ceilings, for the kernel benchmark's
// "fraction of peak" columns. Each returns a rate for `threads` OpenMP threads running for ~`seconds`.
#ifndef CPEAKS_H
#define CPEAKS_H
#include <stddef.h>

double cpk_fma_f32_zmm(int threads, double seconds);    // GFLOP/s (2 per FMA lane)
double cpk_fma_f32_ymm(int threads, double seconds);    // GFLOP/s
double cpk_vnni_zmm(int threads, double seconds);       // GOPS (2 per int8 MAC), vpdpbusd
double cpk_madd_ymm(int threads, double seconds);       // GOPS (2 per MAC), the AVX2 int8 path's vpmaddwd
double cpk_amx_int8(int threads, double seconds);       // GOPS, tdpbssd; 0 when AMX is not usable
double cpk_read_bandwidth(int threads, size_t bytes, double seconds);   // GB/s
double cpk_triad_bandwidth(int threads, size_t bytes, double seconds);  // GB/s (a = b + s·c: 3 streams)
double cpk_now(void);                                   // monotonic seconds

// The OpenBLAS baseline (openblas.c; the names predate its move out of CKernels). The engine's f32 GEMM
// C[M,N] = A[M,K] · W[N,K]ᵀ + bias[N] (W unpacked, bias may be NULL) through cblas_sgemm; returns 0.
int ck_gemm_f32_openblas(int M, int N, int K, const float *A, int lda, const float *W, int ldw,
                         const float *bias, float *C, int ldc);
const char *ck_openblas_corename(void);     // the kernel set OpenBLAS chose at load (CPU or OPENBLAS_CORETYPE)
void ck_openblas_set_threads(int n);
#endif

// Internal declarations shared by the kernel files: per-ISA inner kernels and the threading helpers.
#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H

#include "ckernels.h"

#include <math.h>

#define CK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CK_MAX(a, b) ((a) > (b) ? (a) : (b))
#define CK_ROUND_UP(x, m) ((((x) + (m) - 1) / (m)) * (m))

// OpenMP thread index inside a parallel region (0 outside, or without OpenMP).
int ck_thread_index(void);

// Scratch buffers handed to threads are spaced by this many bytes to keep them on separate cache lines
// and 64-byte aligned (AMX tile loads and aligned vector stores want it).
#define CK_ALIGN 64
#define CK_ALIGN_UP(x) CK_ROUND_UP((size_t)(x), (size_t)CK_ALIGN)

// f32 inner kernel: C[mr, nvalid] (+)= A[mr, kc] · B[kc, CK_F32_NR], where B is one packed panel starting at
// row k0 (row stride CK_F32_NR). accumulate = 0: start from bias (or zero when bias is NULL); 1: from C.
typedef void (*ck_f32_kernel)(int mr, int kc, const float *A, int lda, const float *B, float *C, int ldc,
                              int nvalid, const float *bias, int accumulate);
void ck_f32_kernel_ref(int mr, int kc, const float *A, int lda, const float *B, float *C, int ldc, int nvalid,
                       const float *bias, int accumulate);
#if defined(__x86_64__)
void ck_f32_kernel_avx2(int mr, int kc, const float *A, int lda, const float *B, float *C, int ldc, int nvalid,
                        const float *bias, int accumulate);
void ck_f32_kernel_avx512(int mr, int kc, const float *A, int lda, const float *B, float *C, int ldc, int nvalid,
                          const float *bias, int accumulate);
#endif
#define CK_F32_MR_REF 4
#define CK_F32_MR_AVX2 3
#define CK_F32_MR_AVX512 12
// Rows of A handled per f32 kernel call on the active path.
int ck_f32_mr(ck_isa isa);
ck_f32_kernel ck_f32_kernel_for(ck_isa isa);
// Runs rows [0, M) × panels [p0, p1) of a packed GEMM on one thread.
void ck_gemm_f32_block(ck_isa isa, int M, int N, int K, const float *A, int lda, const float *packed, int p0,
                       int p1, const float *bias, float *C, int ldc);

// int8 inner kernel: acc[mr, nvalid] = qa[mr, Kp] · panel (one CK_Q8_NR-column panel). colsum is the panel's
// slice (vpdpbusd correction; unused elsewhere). scratch: per-thread, 64-byte aligned, CK_Q8_KERNEL_SCRATCH(Kp)
// bytes (the AMX kernel copies a block of fewer than 32 rows there, zero-padded, and stores its tiles there).
typedef void (*ck_q8_kernel)(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel,
                             const int32_t *colsum, int32_t *acc, int ldacc, int nvalid, void *scratch);
void ck_q8_kernel_ref(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                      int32_t *acc, int ldacc, int nvalid, void *scratch);
#if defined(__x86_64__)
void ck_q8_kernel_avx2(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                       int32_t *acc, int ldacc, int nvalid, void *scratch);
void ck_q8_kernel_avx512(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                         int32_t *acc, int ldacc, int nvalid, void *scratch);
void ck_q8_kernel_amx(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                      int32_t *acc, int ldacc, int nvalid, void *scratch);
void ck_amx_tile_release(void);
void ck_q8_quantize_rows_avx512(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr);
#endif
#define CK_Q8_MR_REF 4
#define CK_Q8_MR_AVX2 2
#define CK_Q8_MR_AVX512 8
#define CK_Q8_MR_AMX 32
int ck_q8_mr(ck_isa isa);
ck_q8_kernel ck_q8_kernel_for(ck_isa isa);
#define CK_Q8_KERNEL_SCRATCH(Kp) CK_ALIGN_UP(32 * (size_t)(Kp) + 32 * 32 * 4)
// Integer GEMM of rows [0, M) × panels [p0, p1) on one thread (AMX tiles configured by the caller).
void ck_gemm_q8_block(ck_isa isa, int M, int N, int Kp, const int8_t *qa, int ldqa, const int8_t *packed,
                      const int32_t *colsum, int p0, int p1, int32_t *acc, int ldacc, void *kscratch);
// acc → f32: C[m][n] = (acc + corr[m]·colsum[n])·sa[m]·scale[n] + bias[n], the same operation order on every path.
void ck_q8_epilogue(int M, int N, const int32_t *acc, int ldacc, const float *sa, const int32_t *corr,
                    const float *scale, const int32_t *colsum, const float *bias, float *C, int ldc);
// The row parameters of asymmetric activation quantization from the row's range [lo ≤ 0, hi ≥ 0].
void ck_q8_quantize_row_params(float lo, float hi, float *sa, float *inv, int32_t *zp);
// One activation value: u = clamp(round-half-even(a·inv) + zp, 0, 255), stored as u − 128. lrintf rounds half to
// even in the default rounding mode, as vcvtps2dq does; the scalar paths and the vector tails all use this.
static inline int8_t ck_q8_quantize_act(float a, float inv, int32_t zp) {
    long u = lrintf(a * inv) + zp;
    return (int8_t)((u < 0 ? 0 : u > 255 ? 255 : u) - 128);
}
// One output: s·sa·scale (+ bias[n]), the same operation order in the epilogue and in the reference.
static inline float ck_q8_dequantize(int32_t s, float sa, float scale, const float *bias, int n) {
    float v = (float)s * sa * scale;
    return bias ? v + bias[n] : v;
}

// y = x·σ(αx) on one thread with the given path (SiLU: α = 1).
void ck_sigmoid_gate_serial(ck_isa isa, size_t n, const float *x, float alpha, float *y);

// Attention: query rows per parallel unit; keys per block of the widest vector path (scratch depends on both).
#define CK_ATT_QB 64
#define CK_ATT_KB 16
// Attention inner loop for one (batch, head, query block).
void ck_attention_rows_ref(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch);
#if defined(__x86_64__)
void ck_attention_rows_avx2(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch);
void ck_attention_rows_avx512(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch);
#endif

#endif

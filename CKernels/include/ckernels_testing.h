// CKernels entry points that only the tests (Tests/UnCLIPTests) and the benchmark (bench/) call: the plain
// scalar `*_ref` twin of every dispatched kernel (the oracle of its tests), the integer-core `_s32` GEMM, row
// quantization and the packing internals, im2col and AMX tile setup. The engine's API is ckernels.h; nothing in
// the engine (Sources/UnCLIP, ckernels.h) includes this header. SwiftPM's generated module map (an umbrella
// directory over include/) makes both headers visible to Swift as module CKernels, so `import CKernels` is
// enough for the tests.
#ifndef CKERNELS_TESTING_H
#define CKERNELS_TESTING_H

#include "ckernels.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------------------------------------
// f32 GEMM (gemm_f32.c)
// ---------------------------------------------------------------------------------------------------------
// C[M,N] = A[M,K] · W[N,K]ᵀ + bias[N] reading the unpacked weight; bias may be NULL.
void ck_gemm_f32_ref(int M, int N, int K, const float *A, int lda, const float *W, int ldw,
                     const float *bias, float *C, int ldc);

// ---------------------------------------------------------------------------------------------------------
// int8 GEMM (gemm_q8*.c); the quantization scheme and the panel layout are described in ckernels.h.
// ---------------------------------------------------------------------------------------------------------
// Packs already-quantized weights q [N,K] into panels; computes colsum.
void ck_q8_pack(int N, int K, const int8_t *q, int ldq, int8_t *packed, int32_t *colsum);
// Reads back q[n][k] from panels.
int8_t ck_q8_packed_at(const int8_t *packed, int K, int n, int k);
// Position ξ's transformed weight U_ξ[n][ci] in ck_winograd_pack's int16 panels.
int16_t ck_winograd_packed_at(const int16_t *wpacked, int Cout, int Cin, int xi, int n, int ci);

// Quantizes rows of A: out is [M, Kp] int8 (zero past K), sa[M], corr[M]. Identical bits on every path.
void ck_q8_quantize_rows_ref(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr);
void ck_q8_quantize_rows(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr);

// AMX: loads the tile configuration the int8 kernel uses (8 tiles of 16 rows × 64 bytes) for the calling
// thread. Only call when ck_isa_supported(CK_ISA_AMX).
void ck_amx_tile_config(void);

// Integer core: acc[M,N] (row stride ldacc) = qa[M,Kp] · panelsᵀ. Bit-identical on every path.
void ck_gemm_q8_s32_ref(int M, int N, int K, const int8_t *qa, const int8_t *packed, int32_t *acc, int ldacc);
void ck_gemm_q8_s32(int M, int N, int K, const int8_t *qa, const int8_t *packed, const int32_t *colsum,
                    int32_t *acc, int ldacc, void *scratch);

// The whole int8 linear, scalar: quantize A's rows, Σ (qa + corr)·q directly, f32 output. bias may be NULL.
void ck_gemm_q8_ref(int M, int N, int K, const float *A, int lda, const int8_t *packed, const float *scale,
                    const float *bias, float *C, int ldc);

// ---------------------------------------------------------------------------------------------------------
// Convolution (conv2d.c)
// ---------------------------------------------------------------------------------------------------------
// Writes rows [p0, p0+rows) of the im2col matrix of image n: row r = output pixel p0+r, K = kh·kw·Cin.
void ck_im2col_f32(const ck_conv2d_params *p, const float *x, int n, int p0, int rows, float *out, int ldo);
void ck_conv2d_f32_ref(const ck_conv2d_params *p, const float *x, const float *W, const float *bias, float *y);
void ck_conv2d_q8_ref(const ck_conv2d_params *p, const float *x, const int8_t *packed, const float *scale,
                      const float *bias, float *y);
// The fused convolution by materialising each step with scalar loops (ck_sigmoid_gate_ref's SiLU, the scalar
// binary16 conversions), then ck_conv2d_q8_ref.
void ck_conv2d_q8_fused_ref(const ck_conv2d_params *p, const ck_conv_input *in, const int8_t *packed,
                            const float *scale, const float *bias, const ck_conv_residual *residual, void *y,
                            int y_f16);
// The Winograd convolution with every step materialised by scalar code (the input as ck_conv2d_q8_fused_ref's),
// each transformed row quantized by ck_q8_quantize_rows_ref and summed directly from the packed weights.
void ck_conv2d_q8_winograd_ref(const ck_conv2d_params *p, const ck_conv_input *in, const int16_t *wpacked,
                               const float *wscale, const float *bias, const ck_conv_residual *residual, void *y,
                               int y_f16);
// Scalar twins of ck_f16_to_f32 / ck_f32_to_f16 (convert.c).
void ck_f16_to_f32_ref(size_t n, const uint16_t *x, float *y);
void ck_f32_to_f16_ref(size_t n, const float *x, uint16_t *y);

// ---------------------------------------------------------------------------------------------------------
// Normalisation (norm.c)
// ---------------------------------------------------------------------------------------------------------
void ck_group_norm_ref(int N, int HW, int C, int G, float eps, const float *x, const float *gamma,
                       const float *beta, const float *scale, const float *shift, int silu, float *y);
void ck_layer_norm_ref(int rows, int C, float eps, const float *x, int ldx, const float *gamma,
                       const float *beta, float *y, int ldy);

// ---------------------------------------------------------------------------------------------------------
// Attention (attention.c): two-pass softmax per query row.
// ---------------------------------------------------------------------------------------------------------
void ck_attention_ref(const ck_attention_params *p);

// ---------------------------------------------------------------------------------------------------------
// Resampling (resample.c)
// ---------------------------------------------------------------------------------------------------------
// Each output pixel as the direct 2-D weighted sum (weights in double), no intermediate image.
void ck_resize_bicubic_aa_ref(int N, int H, int W, int C, const float *x, int Ho, int Wo, float *y);

// ---------------------------------------------------------------------------------------------------------
// Number formats (convert.c)
// ---------------------------------------------------------------------------------------------------------
void ck_f32_to_bf16(size_t n, const float *x, uint16_t *y);

#ifdef __cplusplus
}
#endif
#endif

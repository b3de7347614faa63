// CKernels: the C core of the unCLIP engine.
//
// Every kernel is a pure function over raw pointers with explicit sizes and strides. Nothing here allocates:
// scratch memory is passed in, sized by the matching *_scratch_size function. Every dispatched kernel has a
// plain scalar `*_ref` twin that is the oracle of its tests; those twins and the other entry points that only
// the tests and the benchmark call are declared in ckernels_testing.h.
//
// Layout conventions (shape comments use these names):
// - Activations are NHWC: a [N, H, W, C] tensor has channels contiguous. A GEMM's A matrix is [M, K]
//   row-major with a row stride; a linear weight is PyTorch's [N_out, K] ("W"), so C = A·Wᵀ + bias.
// - Convolution weights arrive as PyTorch's [Cout, Cin, kh, kw] and are packed for the kernels.
// - The compute ("packed") layouts are described at ck_gemm_f32_pack and ck_q8_quantize_pack.
//
// Threads: OpenMP, ck_set_threads(n). Work is split so that every output element is computed by exactly one
// thread in a fixed order: results are identical for any thread count.
//
// This header lists only what the engine (Sources/UnCLIP) calls. Test-only entry points (the `*_ref` twins, the
// integer-core `_s32` GEMM, row quantization and packing internals, AMX tile setup) are in ckernels_testing.h,
// next to this file: SwiftPM's generated module map exposes both as module CKernels, but nothing in the engine
// includes it. Both are implementation details of the Swift package, with no stable API of their own.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------------------------------------
// ISA dispatch (dispatch.c)
// ---------------------------------------------------------------------------------------------------------
typedef enum {
    CK_ISA_REF = 0,     // plain scalar C: the oracle
    CK_ISA_AVX2 = 1,    // AVX2 + FMA (int8 through vpmaddwd)
    CK_ISA_AVX512 = 2,  // AVX-512 F/BW/VL + VNNI (vpdpbusd)
    CK_ISA_AMX = 3,     // AVX-512 path plus AMX-INT8 tiles (tdpbssd) for int8 GEMM and convolution
    CK_ISA_NEON = 4,    // AArch64 Advanced SIMD (every ARMv8-A core; int8 through smull + sadalp)
    CK_ISA_DOTPROD = 5, // NEON path with the ARMv8.2 dot product (sdot) for int8 GEMM and convolution
    CK_ISA_I8MM = 6,    // NEON path with the ARMv8.6 int8 matrix multiply (smmla) for int8 GEMM and convolution
    CK_ISA_COUNT = 7
} ck_isa;

// Best path the host supports (x86: CPUID, OS XSAVE state and, for AMX, arch_prctl permission; AArch64: the
// kernel's hardware capabilities, getauxval(AT_HWCAP/AT_HWCAP2)). Each architecture's paths exist only on it.
ck_isa ck_isa_host_best(void);
// 1 when the host can run `isa`.
int ck_isa_supported(ck_isa isa);
// The path kernels use now. Starts as CK_ISA env (ref|avx2|avx512|amx|neon|dotprod|i8mm) when set and supported, else the best.
ck_isa ck_isa_active(void);
// Forces a path; returns 0, or -1 (and changes nothing) when the host cannot run it.
int ck_isa_set(ck_isa isa);
const char *ck_isa_name(ck_isa isa);

// Threads used by every kernel (OpenMP). Starts as UNCLIP_THREADS when set and an integer in 1..1024, else the
// usable cores (the process's CPU affinity, else the online cores). The command-line tools validate the variable
// strictly and bound it by ck_usable_cores (Runtime.threadsFromEnvironment).
void ck_set_threads(int n);
int ck_get_threads(void);
int ck_usable_cores(void);
// Fixes glibc's mmap threshold at `bytes` for the whole process (mallopt M_MMAP_THRESHOLD; fixing it also stops the
// dynamic raise of the trim threshold), so blocks of that size or more are unmapped when freed instead of staying
// in the heap (malloc_tuning.c). Returns mallopt's result (1 ok), 0 where the C library is not glibc.
int ck_malloc_fix_mmap_threshold(size_t bytes);

// ---------------------------------------------------------------------------------------------------------
// f32 GEMM (gemm_f32*.c): C[M,N] = A[M,K] · W[N,K]ᵀ + bias[N]
// ---------------------------------------------------------------------------------------------------------
// Packed layout: N padded to a multiple of CK_F32_NR with zero columns; panel p holds columns
// [p·NR, p·NR+NR) as K rows of NR floats: packed[p][k][j] = W[p·NR + j][k].
#define CK_F32_NR 32
size_t ck_gemm_f32_packed_size(int N, int K);              // bytes
void ck_gemm_f32_pack(int N, int K, const float *W, int ldw, float *packed);
// Convolution weight [Cout, Cin, kh, kw] packed as the GEMM weight [Cout, K = kh·kw·Cin] with
// k = (ky·kw + kx)·Cin + ci, the column order of ck_im2col_f32.
void ck_gemm_f32_pack_conv(int Cout, int Cin, int kh, int kw, const float *W, float *packed);

// bias may be NULL. Reads the packed weight (the reference ck_gemm_f32_ref reads the unpacked one).
void ck_gemm_f32(int M, int N, int K, const float *A, int lda, const float *packed, const float *bias,
                 float *C, int ldc);

// ---------------------------------------------------------------------------------------------------------
// int8 GEMM (gemm_q8*.c)
// ---------------------------------------------------------------------------------------------------------
// Weights: symmetric per-output-channel int8, w[n][k] ≈ scale[n]·q[n][k], q ∈ [-127, 127].
// Activations: quantized per row on the fly, asymmetric (unsigned 8-bit with a zero point), because most inputs
// are one-sided (after SiLU/GELU) and symmetric ±127 wastes half the levels there: with [lo, hi] the row's range
// widened to contain 0, inv = 255/(hi−lo) and sa = (hi−lo)/255 in f32, zp = round-half-even(−lo·inv) ∈ [0, 255],
// u = clamp(round-half-even(a·inv) + zp, 0, 255); stored as int8 qa = u − 128 with corr[m] = 128 − zp, so
// a[m][k] ≈ sa[m]·(qa[m][k] + corr[m]) and 0 is exact. A zero row has sa = 0, qa = 0, corr = 0.
// acc[m][n] = Σ_k qa[m][k]·q[n][k] in int32 (exact on every path);
// C = (acc + corr[m]·colsum[n])·sa[m]·scale[n] + bias[n].
//
// Packed layout ("q8 panels"): K padded to Kp = a multiple of CK_Q8_KB with zeros, N to a multiple of
// CK_Q8_NR; panel p holds Kp/4 groups of NR columns × 4 consecutive k:
//   packed[p][k/4][j][k%4] = q[p·NR + j][k].
// One 16-column half of a group row is the 64-byte row of an AMX B tile and of a vpdpbusd operand.
#define CK_Q8_NR 32
#define CK_Q8_KB 64
int ck_q8_padded_k(int K);                                  // Kp
size_t ck_q8_packed_size(int N, int K);                     // bytes of the int8 panels
// Quantizes W [N,K] (row stride ldw) per output channel: writes the panels, scale[N] and colsum[N]
// (Σ_k q[n][k], for the activations' zero point and the vpdpbusd path's unsigned-operand correction).
void ck_q8_quantize_pack(int N, int K, const float *W, int ldw, int8_t *packed, float *scale, int32_t *colsum);
// The same for a convolution weight [Cout, Cin, kh, kw] (column order of ck_im2col_f32).
void ck_q8_quantize_pack_conv(int Cout, int Cin, int kh, int kw, const float *W, int8_t *packed, float *scale,
                              int32_t *colsum);
// Quantization error of packed weights against the source W [N][Cin][kk] (PyTorch order; kk = kh·kw, or 1 for a
// linear weight with Cin = K): stats = {Σw², Σ(w−ŵ)², Σw·ŵ, Σŵ²} in double, maxabs = max|w−ŵ|.
void ck_q8_error_stats(int N, int Cin, int kk, const float *W, const int8_t *packed, const float *scale, double *stats,
                       float *maxabs);
// colsum[n] = Σ_k q[n][k] recomputed from panels (a file's stored column sums are checked against it).
void ck_q8_colsum(int N, int K, const int8_t *packed, int32_t *colsum);

// The whole int8 linear: quantize A's rows, integer GEMM, f32 epilogue. bias may be NULL.
size_t ck_gemm_q8_scratch_size(int M, int K, int nthreads);
void ck_gemm_q8(int M, int N, int K, const float *A, int lda, const int8_t *packed, const float *scale,
                const int32_t *colsum, const float *bias, float *C, int ldc, void *scratch);

// ---------------------------------------------------------------------------------------------------------
// Convolution (conv2d.c), NHWC, any kh×kw, stride, zero padding; tiled im2col (CK_CONV_TILE output pixels
// at a time per thread), never a whole-image im2col buffer.
// ---------------------------------------------------------------------------------------------------------
#define CK_CONV_TILE 48
typedef struct {
    int N, H, W, Cin;       // input [N, H, W, Cin]
    int Cout, kh, kw;       // weight [Cout, Cin, kh, kw]
    int stride, pad;
    int Ho, Wo;             // output [N, Ho, Wo, Cout]; set by ck_conv2d_shape
} ck_conv2d_params;
// Fills Ho/Wo; returns -1 when the geometry is invalid (non-positive sizes or an empty output).
int ck_conv2d_shape(ck_conv2d_params *p);

size_t ck_conv2d_f32_scratch_size(const ck_conv2d_params *p, int nthreads);
void ck_conv2d_f32(const ck_conv2d_params *p, const float *x, const float *packed, const float *bias, float *y,
                   void *scratch);

size_t ck_conv2d_q8_scratch_size(const ck_conv2d_params *p, int nthreads);
// The int8 convolution quantizes each im2col row (one output pixel's receptive field) on its own.
void ck_conv2d_q8(const ck_conv2d_params *p, const float *x, const int8_t *packed, const float *scale,
                  const int32_t *colsum, const float *bias, float *y, void *scratch);

// ---------------------------------------------------------------------------------------------------------
// Fused int8 convolution (conv2d_fused.c): the convolution reads its input through the operations a UNet's
// ResnetBlock2D puts in front of it, so none of them is materialised, and adds the residual in its epilogue:
//   input  = resample(silu((concat(src0, src1) + cbias − μ)·a + b))      (each part optional)
//   y      = conv(input) + bias + resample'(residual)                     (f32 or f16 out)
// Operands are NHWC [N, H, W, C] in f32 or f16 (binary16 bits). μ, a, b come from ck_group_norm_fold, so the
// fused input equals ck_group_norm's output bit for bit on f32 operands and the whole result equals the unfused
// chain GroupNorm → SiLU → resample → ck_conv2d_q8 → add.
// ---------------------------------------------------------------------------------------------------------
enum { CK_RESAMPLE_NONE = 0, CK_RESAMPLE_UP = 1, CK_RESAMPLE_DOWN = 2 };  // nearest 2×, 2×2 average
typedef struct {
    const void *data;   // [N, H, W, C]
    int C;
    int f16;            // 1: binary16 values, 0: f32
} ck_act;
typedef struct {
    ck_act src[2];
    int nsrc;                 // 1 or 2 (channel concatenation src0 ‖ src1)
    int H, W;                 // the operands' spatial size (before resampling)
    const float *cbias;       // [N, C] added first (diffusers' h + temb before norm2), or NULL
    const float *mu, *a, *b;  // [N, C] each (ck_group_norm_fold), or all NULL for no affine map
    int silu;
    int resample;             // CK_RESAMPLE_*: applied after the activation, before the convolution
} ck_conv_input;
typedef struct {
    const void *data;   // [N, Hr, Wr, Cout] with (Hr, Wr) = the output size, or half (UP) or double (DOWN) it
    int f16;
    int resample;       // CK_RESAMPLE_*, brings the residual to the output size
} ck_conv_residual;
// p: the convolution as ck_conv2d_q8 sees it (H, W after resampling; Cin = src0.C + src1.C).
size_t ck_conv2d_q8_fused_scratch_size(const ck_conv2d_params *p, const ck_conv_input *in, int nthreads);
// residual may be NULL; y [N, Ho, Wo, Cout] is f16 when y_f16 (it must not alias an operand).
void ck_conv2d_q8_fused(const ck_conv2d_params *p, const ck_conv_input *in, const int8_t *packed, const float *scale,
                        const int32_t *colsum, const float *bias, const ck_conv_residual *residual, void *y,
                        int y_f16, void *scratch);
// The same convolution by int8 Winograd F(2×2, 3×3) (conv2d_winograd.c), for 3×3 kernels with stride 1, padding 1
// and Cin ≤ CK_WINO_MAX_CIN (ck_conv2d_winograd_applies): 2.25× fewer multiply-accumulates. The weights come from
// ck_winograd_pack: the 16 positions of U = (2G) q (2G)ᵀ of the stored int8 weight q — exact integers, |U| ≤ 1143,
// as int16 panels (position ξ's at wpacked + ξ·ck_q8_packed_size(Cout, Cin) elements) —, wscale [Cout] =
// scale/4 and the column sums [16, Cout]. The transformed input tiles are rounded to int8 as activation rows.
#define CK_WINO_MAX_CIN 4096     // int32 sums: Cin·1143·(128 + 128) < 2³¹ (the products and the zero-point term)
int ck_conv2d_winograd_applies(const ck_conv2d_params *p);
size_t ck_winograd_packed_size(int Cout, int Cin);   // bytes
void ck_winograd_pack(int Cout, int Cin, const int8_t *packed, const float *scale, int16_t *wpacked, float *wscale,
                      int32_t *wcolsum);
size_t ck_conv2d_q8_winograd_scratch_size(const ck_conv2d_params *p, const ck_conv_input *in, int nthreads);
void ck_conv2d_q8_winograd(const ck_conv2d_params *p, const ck_conv_input *in, const int16_t *wpacked,
                           const float *wscale, const int32_t *wcolsum, const float *bias,
                           const ck_conv_residual *residual, void *y, int y_f16, void *scratch);
// The same convolution without a whole transformed copy of the weights (streamed weights, MemoryPlan.small): the
// direct int8 weight (ck_q8_quantize_pack_conv's packed and scale) is transformed chunk_cols output channels at a
// time into the scratch (chunk_cols a multiple of CK_Q8_NR; ck_winograd_chunk_cols gives the largest whose int16
// panels fit CK_WINO_CHUNK_BYTES), and each chunk's columns are computed before the next is transformed. The same
// integer sums and float operations per output as ck_conv2d_q8_winograd on ck_winograd_pack's whole transform, so
// the same bits; the input tiles are transformed again per chunk. The whole transform is 32/9 of the int8 weight's
// bytes — 105 MB for the super-res 32² level's cat(1280, 1280)→1280 — which made it the stage's peak.
#define CK_WINO_CHUNK_BYTES 8388608     // 8 MiB
int ck_winograd_chunk_cols(int Cout, int Cin);
size_t ck_conv2d_q8_winograd_streamed_scratch_size(const ck_conv2d_params *p, const ck_conv_input *in, int chunk_cols,
                                                   int nthreads);
void ck_conv2d_q8_winograd_streamed(const ck_conv2d_params *p, const ck_conv_input *in, const int8_t *packed,
                                    const float *scale, const float *bias, const ck_conv_residual *residual, void *y,
                                    int y_f16, int chunk_cols, void *scratch);
// The fused convolution's input, materialised: x [N, Hc, Wc, C] f32 (Hc·Wc: H·W, 2H·2W for UP, H/2·W/2 for DOWN).
void ck_conv_input_materialize(int N, const ck_conv_input *in, float *x);
// GroupNorm of the channel concatenation of `src` (+ cbias), folded into per-(image, channel) μ, a, b [N, C]
// with ck_group_norm's statistics and scale-shift (scale/shift [N, C] may be NULL): GN(x) = (x − μ)·a + b.
void ck_group_norm_fold(int N, int HW, const ck_act *src, int nsrc, const float *cbias, int G, float eps,
                        const float *gamma, const float *beta, const float *scale, const float *shift, float *mu,
                        float *a, float *b);

// ---------------------------------------------------------------------------------------------------------
// Normalisation (norm.c). Statistics accumulate in double.
// ---------------------------------------------------------------------------------------------------------
// GroupNorm over x [N, HW, C] (NHWC), G groups of C/G channels: y = (x-μ)/sqrt(σ²+eps)·γ + β, then
// optionally y = y·(1+scale[n,c]) + shift[n,c] (scale/shift [N, C], may be NULL), then optionally SiLU.
// In-place (y == x) is allowed.
void ck_group_norm(int N, int HW, int C, int G, float eps, const float *x, const float *gamma, const float *beta,
                   const float *scale, const float *shift, int silu, float *y);
// LayerNorm over the last dimension of x [rows, C] (row stride ldx/ldy); gamma/beta may be NULL.
void ck_layer_norm(int rows, int C, float eps, const float *x, int ldx, const float *gamma, const float *beta,
                   float *y, int ldy);

// ---------------------------------------------------------------------------------------------------------
// Attention (attention*.c): softmax(Q·Kᵀ·scale + mask)·V per head, streaming (online) softmax, O(n·d) memory.
// ---------------------------------------------------------------------------------------------------------
// Q [B, Lq, ·] with head h at columns [h·D, h·D+D) and row stride ldq; keys/values are the concatenation of up
// to two segments along the sequence: [k0 (L0 rows); k1 (L1 rows)] (the decoder's added-KV attention puts the
// context first, the image tokens second; L1 = 0 for plain attention). Batch strides are in floats.
// mask (may be NULL): additive, element (b, i, j) at mask[b·mask_bs + i·mask_qs + j] (mask_qs = 0 for a
// key-padding mask). causal: key j > query i gets -inf before softmax (j counted over the concatenation).
// Output O [B, Lq, H·D] with row stride ldo.
typedef struct {
    int B, H, D, Lq, L0, L1;
    float scale;
    const float *q; long q_bs; int ldq;
    const float *k0, *v0; long kv0_bs; int ldkv0;
    const float *k1, *v1; long kv1_bs; int ldkv1;
    const float *mask; long mask_bs; int mask_qs;
    int causal;
    float *o; long o_bs; int ldo;
} ck_attention_params;
size_t ck_attention_scratch_size(const ck_attention_params *p, int nthreads);
void ck_attention(const ck_attention_params *p, void *scratch);

// ---------------------------------------------------------------------------------------------------------
// Elementwise and softmax (elementwise.c). In-place allowed.
// ---------------------------------------------------------------------------------------------------------
void ck_silu(size_t n, const float *x, float *y);
void ck_gelu_erf(size_t n, const float *x, float *y);
void ck_quick_gelu(size_t n, const float *x, float *y);                 // x·σ(1.702x)
void ck_add(size_t n, const float *a, const float *b, float *y);
void ck_mul(size_t n, const float *a, const float *b, float *y);
void ck_scale_add(size_t n, const float *x, float alpha, float beta, float *y);   // y = αx + β
void ck_clamp(size_t n, const float *x, float lo, float hi, float *y);
// y[r] = x[r] + bias (bias [C], broadcast over rows of x [rows, C])
void ck_add_bias(int rows, int C, const float *x, const float *bias, float *y);
void ck_softmax_rows(int rows, int C, const float *x, int ldx, float *y, int ldy);

// ---------------------------------------------------------------------------------------------------------
// Resampling (resample.c), NHWC
// ---------------------------------------------------------------------------------------------------------
void ck_avg_pool2x2(int N, int H, int W, int C, const float *x, float *y);        // y [N, H/2, W/2, C]
void ck_upsample_nearest2x(int N, int H, int W, int C, const float *x, float *y); // y [N, 2H, 2W, C]
// PyTorch interpolate(mode="bicubic", align_corners=False, antialias=True): separable Keys cubic (a = -0.5)
// with support widened by the scale on downsampling, weights renormalised per output pixel.
size_t ck_resize_bicubic_aa_scratch_size(int H, int W, int Ho, int Wo, int C);
void ck_resize_bicubic_aa(int N, int H, int W, int C, const float *x, int Ho, int Wo, float *y, void *scratch);

// ---------------------------------------------------------------------------------------------------------
// Sinusoidal timestep embedding (timestep.c), diffusers get_timestep_embedding with flip_sin_to_cos = True,
// downscale_freq_shift = 0, max_period = 10000: out[b] = [cos(t·f_i), sin(t·f_i)], f_i = exp(-ln(1e4)·i/half).
// ---------------------------------------------------------------------------------------------------------
void ck_timestep_embedding(int B, const float *t, int dim, float *out);

// ---------------------------------------------------------------------------------------------------------
// Number formats (convert.c): IEEE binary16 and bfloat16 ↔ f32. f32 → 16-bit rounds to nearest even; NaN stays
// NaN, overflow becomes ±inf, binary16 subnormals are exact.
// ---------------------------------------------------------------------------------------------------------
void ck_f16_to_f32(size_t n, const uint16_t *x, float *y);
void ck_f32_to_f16(size_t n, const float *x, uint16_t *y);
void ck_bf16_to_f32(size_t n, const uint16_t *x, float *y);
// (f32 → bfloat16, ck_f32_to_bf16, is in ckernels_testing.h: only the tests call it.)

// ---------------------------------------------------------------------------------------------------------
// Weight-file integrity (checksum.c): XXH64 of a byte range (the xxHash specification's 64-bit hash), and the
// number of non-finite (∞, NaN) values in a float array of kind CK_FLOAT_* (the first one's index in *first).
// ---------------------------------------------------------------------------------------------------------
uint64_t ck_xxh64(const void *data, size_t len, uint64_t seed);
enum { CK_FLOAT_F32 = 0, CK_FLOAT_F16 = 1, CK_FLOAT_BF16 = 2 };
size_t ck_count_nonfinite(int kind, size_t n, const void *x, size_t *first);

#ifdef __cplusplus
}
#endif
#endif

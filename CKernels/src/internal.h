// Internal declarations shared by the kernel files: per-ISA inner kernels, the dispatch table and the threading
// helpers.
#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H

#include "ckernels.h"
#include "ckernels_testing.h"  // the kernels define the scalar twins and other test-only entry points

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

// ---------------------------------------------------------------------------------------------------------
// Per-path inner kernels: the entries of the dispatch table below. Only dispatch.c chooses among them.
// ---------------------------------------------------------------------------------------------------------
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
#if defined(__aarch64__)
void ck_f32_kernel_neon(int mr, int kc, const float *A, int lda, const float *B, float *C, int ldc, int nvalid,
                        const float *bias, int accumulate);
#endif
// Rows of A per f32 kernel call on each path (AMX has no f32 tiles: f32 runs on the AVX-512 kernel).
#define CK_F32_MR_REF 4
#define CK_F32_MR_AVX2 3
#define CK_F32_MR_AVX512 12
#define CK_F32_MR_NEON 4

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
#endif
#if defined(__aarch64__)
void ck_q8_kernel_neon(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                       int32_t *acc, int ldacc, int nvalid, void *scratch);
void ck_q8_kernel_dotprod(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                          int32_t *acc, int ldacc, int nvalid, void *scratch);
void ck_q8_kernel_i8mm(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                       int32_t *acc, int ldacc, int nvalid, void *scratch);
#endif
// Rows of A per int8 kernel call on each path.
#define CK_Q8_MR_REF 4
#define CK_Q8_MR_AVX2 4
#define CK_Q8_MR_AVX512 8
#define CK_Q8_MR_AMX 32
#define CK_Q8_MR_NEON 4      // the NEON, dot-product and i8mm kernels (i8mm: 2 row pairs)
#define CK_Q8_KERNEL_SCRATCH(Kp) CK_ALIGN_UP(32 * (size_t)(Kp) + 32 * 32 * 4)

// int8 rows × int16 panels (Winograd's exact transformed weights, ck_winograd_pack): acc[mr, nvalid] = qa[mr, Kp] ·
// panel. The int16 panels hold CK_Q8_NR columns as 4 stripes of 8, each stripe contiguous: [Kp/4][8 columns][4 k]
// (ck_w16_offset), so the 8-column pass streams one contiguous block (with the q8 layout's 256-byte group rows a
// pass touched a quarter of every line set and missed L1). scratch: per-thread, CK_W16_KERNEL_SCRATCH(Kp) bytes.
static inline size_t ck_w16_offset(int Kp, int n, int k) {
    return (size_t)(n / CK_Q8_NR) * Kp * CK_Q8_NR + (size_t)((n % CK_Q8_NR) / 8) * Kp * 8 + (size_t)(k >> 2) * 32 +
           (size_t)(n % 8) * 4 + (size_t)(k & 3);
}
typedef void (*ck_w16_kernel)(int mr, int Kp, const int8_t *qa, int ldqa, const int16_t *panel, int32_t *acc,
                              int ldacc, int nvalid, void *scratch);
void ck_w16_kernel_ref(int mr, int Kp, const int8_t *qa, int ldqa, const int16_t *panel, int32_t *acc, int ldacc,
                       int nvalid, void *scratch);
#if defined(__x86_64__)
void ck_w16_kernel_avx2(int mr, int Kp, const int8_t *qa, int ldqa, const int16_t *panel, int32_t *acc, int ldacc,
                        int nvalid, void *scratch);
#endif
#define CK_W16_MR_REF 4
#define CK_W16_MR_AVX2 32     // one Winograd block of tiles (CK_WINO_TILES) per call
#define CK_W16_KERNEL_SCRATCH(Kp) CK_ALIGN_UP(64 * (size_t)(Kp))     // 32 rows widened to int16

// Row quantization of activations (the scalar one is ck_q8_quantize_rows_ref, ckernels_testing.h).
typedef void (*ck_q8_quantize_rows_fn)(int M, int K, const float *A, int lda, int8_t *out, float *sa,
                                       int32_t *corr);
#if defined(__x86_64__)
void ck_q8_quantize_rows_avx2(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr);
void ck_q8_quantize_rows_avx512(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr);
#endif
#if defined(__aarch64__)
void ck_q8_quantize_rows_neon(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr);
#endif

// y = x·σ(αx) on one thread (SiLU: α = 1). elementwise.c.
typedef void (*ck_sigmoid_gate_fn)(size_t n, const float *x, float alpha, float *y);
void ck_sigmoid_gate_ref(size_t n, const float *x, float alpha, float *y);
#if defined(__x86_64__)
void ck_sigmoid_gate_avx2(size_t n, const float *x, float alpha, float *y);
void ck_sigmoid_gate_avx512(size_t n, const float *x, float alpha, float *y);
#endif
#if defined(__aarch64__)
void ck_sigmoid_gate_neon(size_t n, const float *x, float alpha, float *y);
#endif

// Convolution work units (conv2d.c, conv2d_fused.c): (image, tile of output pixels, panel group). Panel groups
// only split N when there are too few tiles to keep every thread busy; each output element is still computed by
// one unit in one fixed order. The int8 tile is a multiple of every int8 path's rows per call (4, 8, 32).
#define CK_CONV_TILE_Q8 96
static inline int ck_conv_panel_groups(int tiles, int np, int nt) {
    int g = (4 * nt + tiles - 1) / tiles;
    return CK_MAX(1, CK_MIN(g, np));
}
typedef struct {
    int n, p0, rows, q0, q1;   // image n, pixels [p0, p0+rows), panels [q0, q1) (q0 ≥ q1: nothing to do)
} ck_conv_unit;
static inline ck_conv_unit ck_conv_unit_of(int u, int tile, int HWo, int tiles, int groups, int np) {
    int per_group = (np + groups - 1) / groups;
    int g = u % groups, t = (u / groups) % tiles;
    ck_conv_unit r = {u / (groups * tiles), t * tile, CK_MIN(tile, HWo - t * tile), g * per_group,
                      CK_MIN(np, (g + 1) * per_group)};
    return r;
}

// binary16 ↔ f32 on one thread (convert.c); the scalar twins are ck_f16_to_f32_ref / ck_f32_to_f16_ref.
typedef void (*ck_f16_to_f32_fn)(size_t n, const uint16_t *x, float *y);
typedef void (*ck_f32_to_f16_fn)(size_t n, const float *x, uint16_t *y);
#if defined(__x86_64__)
void ck_f16_to_f32_avx512(size_t n, const uint16_t *x, float *y);
void ck_f32_to_f16_avx512(size_t n, const float *x, uint16_t *y);
void ck_f16_to_f32_f16c(size_t n, const uint16_t *x, float *y);
void ck_f32_to_f16_f16c(size_t n, const float *x, uint16_t *y);
#endif
#if defined(__aarch64__)
void ck_f16_to_f32_neon(size_t n, const uint16_t *x, float *y);
void ck_f32_to_f16_neon(size_t n, const float *x, uint16_t *y);
#endif

// Pixel `pixel` (n·H·W + y·W + x) of the channel concatenation of src[0..nsrc) as C f32 values (norm.c).
void ck_act_load_pixel(const ck_act *src, int nsrc, size_t pixel, ck_f16_to_f32_fn cvt, float *o);

// Attention: query rows per parallel unit; keys per block of the widest vector path (scratch depends on both).
#define CK_ATT_QB 64
#define CK_ATT_KB 16
// Attention inner loop for one (batch, head, query block).
typedef void (*ck_attention_rows_fn)(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch);
void ck_attention_rows_ref(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch);
#if defined(__x86_64__)
void ck_attention_rows_avx2(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch);
void ck_attention_rows_avx512(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch);
#endif
#if defined(__aarch64__)
void ck_attention_rows_neon(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch);
#endif

// ---------------------------------------------------------------------------------------------------------
// The dispatch table (dispatch.c): everything that depends on the ISA path, one entry per operation. One table
// per path is filled once, at first use, next to the CPUID/XGETBV detection; the active one is chosen by CK_ISA
// (or the best path) and switched by ck_isa_set. A driver reads ck_dispatch_active() once per call and uses only
// that table, so one call never mixes two paths even when the path changes on another thread.
// ---------------------------------------------------------------------------------------------------------
typedef struct {
    ck_isa isa;                                 // the path this table is for
    ck_f32_kernel f32_kernel;                   // f32 GEMM micro-kernel ...
    int f32_mr;                                 // ... and its rows per call
    ck_q8_kernel q8_kernel;                     // int8 GEMM micro-kernel ...
    int q8_mr;                                  // ... and its rows per call
    ck_w16_kernel w16_kernel;                   // int8 × int16 micro-kernel (Winograd) ...
    int w16_mr;                                 // ... and its rows per call
    ck_q8_quantize_rows_fn q8_quantize_rows;    // activation row quantization (identical bits on every path)
    ck_sigmoid_gate_fn sigmoid_gate;            // SiLU / quick_gelu / GroupNorm's fused SiLU, one thread
    ck_f16_to_f32_fn f16_to_f32;                // binary16 → f32, one thread
    ck_f32_to_f16_fn f32_to_f16;                // f32 → binary16 (round to nearest even), one thread
    // Attention rows for head dimension D: the path's vector width needs D to be a multiple of it, so the
    // entry picks a narrower path (or the scalar rows) for other D.
    ck_attention_rows_fn (*attention_rows)(int D);
} ck_dispatch;
// The active path's table (detects the host on first use).
const ck_dispatch *ck_dispatch_active(void);

// The fused convolutions' shared input and output side (conv_input.c): the grid of prepared rows (the operands'
// resolution for NONE and UP, half for DOWN), a per-thread cache of `slots` prepared rows, the tile store with the
// resampled residual, the whole input materialised with table d, and the scalar table of the twins.
typedef struct {
    float *rows;   // slots × grid_w × C
    int *tag;      // (n · grid_h + gy) held by each slot, −1: empty
    float *tmp;    // 4·C floats (the DOWN taps)
} ck_row_cache;
int ck_fused_grid_h(const ck_conv_input *in);
int ck_fused_grid_w(const ck_conv_input *in);
int ck_fused_in_channels(const ck_conv_input *in);
int ck_fused_cache_rows(const ck_conv2d_params *p);   // rows cached per thread: one output row's taps + the next
// Prepared row gy of image n (grid_w × C f32), computed on a miss.
const float *ck_fused_cached_row(ck_row_cache *rc, int slots, const ck_conv_input *in, const ck_dispatch *d, int n,
                                 int gy, int C);
// Stores a [rows, nc] f32 tile (row stride ldt) at output pixels pix0.. and channels c0.., adding the residual.
void ck_fused_store_tile(const ck_conv2d_params *p, const ck_conv_residual *res, const ck_dispatch *d, int n, int pix0,
                         int rows, int c0, int nc, float *tile, int ldt, void *y, int y_f16);
void ck_fused_materialize(int N, const ck_conv_input *in, const ck_dispatch *d, float *x);
ck_dispatch ck_fused_scalar_table(void);


// Runs rows [0, M) × panels [p0, p1) of a packed f32 GEMM on one thread with table d.
void ck_gemm_f32_block(const ck_dispatch *d, int M, int N, int K, const float *A, int lda, const float *packed,
                       int p0, int p1, const float *bias, float *C, int ldc);
// Integer GEMM of rows [0, M) × panels [p0, p1) on one thread with table d (AMX tiles configured by the kernel).
void ck_gemm_q8_block(const ck_dispatch *d, int M, int N, int Kp, const int8_t *qa, int ldqa, const int8_t *packed,
                      const int32_t *colsum, int p0, int p1, int32_t *acc, int ldacc, void *kscratch);
// acc → f32: C[m][n] = (acc + corr[m]·colsum[n])·sa[m]·scale[n] + bias[n], the same operation order on every path.
void ck_q8_epilogue(int M, int N, const int32_t *acc, int ldacc, const float *sa, const int32_t *corr,
                    const float *scale, const int32_t *colsum, const float *bias, float *C, int ldc);
// The q8 panel layout (ck_q8_quantize_pack in ckernels.h): weight row n of a matrix of padded depth Kp starts at
// ck_q8_row_offset(Kp, n), and its k-th value is ck_q8_k_offset(k) further.
static inline size_t ck_q8_row_offset(int Kp, int n) {
    return (size_t)(n / CK_Q8_NR) * Kp * CK_Q8_NR + (size_t)(n % CK_Q8_NR) * 4;
}
static inline size_t ck_q8_k_offset(int k) { return (size_t)(k >> 2) * (CK_Q8_NR * 4) + (size_t)(k & 3); }
// Stores K quantized values as the row starting at `row` (ck_q8_row_offset); returns their sum (the column sum).
int32_t ck_q8_store_row(int8_t *row, int K, const int8_t *q);
// Zeroes `bytes` of panels in 4 KiB pieces shared among the threads of the enclosing OpenMP parallel region (an
// orphaned `omp for`: every thread of the region must call it).
void ck_q8_zero_in_parallel(int8_t *packed, size_t bytes);
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

#endif

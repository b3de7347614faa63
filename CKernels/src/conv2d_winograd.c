// int8 Winograd F(2×2, 3×3) for the fused 3×3, stride-1, padding-1 convolution (ckernels.h). The minimal
// filtering algorithm of Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), §4.1:
//
//     Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        one 4×4 input tile d (stride 2) → one 2×2 output tile Y
//
//     Bᵀ = | 1  0 −1  0 |     G = | 1    0    0  |     Aᵀ = | 1  1  1  0 |
//          | 0  1  1  0 |         | ½    ½    ½  |          | 0  1 −1 −1 |
//          | 0 −1  1  0 |         | ½   −½    ½  |
//          | 0  1  0 −1 |         | 0    0    1  |
//
// Per position ξ = (a, b) of the 4×4 transformed tile the sum over input channels is a matrix product, so an
// F(2×2, 3×3) convolution is 16 GEMMs [tiles, Cin]·[Cin, Cout]: 16 multiply-accumulates per 4 outputs and input
// channel instead of 36 (2.25× fewer).
// - weights, exact: with q the stored int8 weight (w = scale[n]·q), U = (2G) q (2G)ᵀ = 4·G q Gᵀ is an integer
//   matrix (2G has integer entries) with |U| ≤ 9·127 = 1143, so it is stored as int16 — no second rounding — and
//   G w Gᵀ = U·scale[n]/4 exactly (ck_winograd_pack; int16 panels of 8-column stripes, ck_w16_offset);
// - activations: V = Bᵀ d B in f32 (adds only) from the fused input's prepared rows (conv_input.c: concatenation,
//   bias, GroupNorm, SiLU, resampling), each (tile, ξ) row of Cin values quantized as any activation row (int8).
// The 16 int8 × int16 products are summed in int32 (exact: |qa·U| ≤ 128·1143 and Cin ≤ CK_WINO_MAX_CIN keep every
// sum, with the zero-point correction, below 2³¹), the usual epilogue turns them into M_ξ in f32, then Aᵀ M A
// (adds only) + bias + residual is stored. The one rounding beyond the direct convolution's is V's: each row of V is
// a sum of up to four inputs, quantized with its own range (FusedConvTests, WinogradTests and the README measure it
// against the direct int8 and the f32 convolution).
#include "internal.h"

#include <stdlib.h>
#include <string.h>

// Tiles per work unit: a multiple of every path's rows per int8 × int16 kernel call (4, 32).
#define CK_WINO_TILES 32

int ck_conv2d_winograd_applies(const ck_conv2d_params *p) {
    return p->kh == 3 && p->kw == 3 && p->stride == 1 && p->pad == 1 && p->Cin <= CK_WINO_MAX_CIN;
}

size_t ck_winograd_packed_size(int Cout, int Cin) { return 16 * ck_q8_packed_size(Cout, Cin) * sizeof(int16_t); }

// U = (2G) q (2G)ᵀ for one (output, input) channel pair, in integers: q[ky·3 + kx] → u[a·4 + b] (the order of the
// rows above, left to right). t = (2G) q has |t| ≤ 3·127, u ≤ 9·127 = 1143.
static void weight_transform(const int8_t q[9], int16_t u[16]) {
    int t[12];   // t = (2G) q: 4 rows × 3 columns
    for (int x = 0; x < 3; x++) {
        int g0 = q[x], g1 = q[3 + x], g2 = q[6 + x];
        t[x] = 2 * g0;
        t[3 + x] = g0 + g1 + g2;
        t[6 + x] = g0 - g1 + g2;
        t[9 + x] = 2 * g2;
    }
    for (int a = 0; a < 4; a++) {   // u = t (2G)ᵀ
        int t0 = t[3 * a], t1 = t[3 * a + 1], t2 = t[3 * a + 2];
        u[4 * a] = (int16_t)(2 * t0);
        u[4 * a + 1] = (int16_t)(t0 + t1 + t2);
        u[4 * a + 2] = (int16_t)(t0 - t1 + t2);
        u[4 * a + 3] = (int16_t)(2 * t2);
    }
}

void ck_winograd_pack(int Cout, int Cin, const int8_t *packed, const float *scale, int16_t *wpacked, float *wscale,
                      int32_t *wcolsum) {
    int K = 9 * Cin, Kp = ck_q8_padded_k(K), Kpw = ck_q8_padded_k(Cin);
    size_t psize = ck_q8_packed_size(Cout, Cin);     // elements per position
    memset(wpacked, 0, 16 * psize * sizeof(int16_t));
#pragma omp parallel for schedule(static) num_threads(ck_get_threads())
    for (int n = 0; n < Cout; n++) {
        // the direct weight's row n: k = tap·Cin + ci (ck_q8_quantize_pack_conv's order)
        const int8_t *base = packed + ck_q8_row_offset(Kp, n);
        int32_t sum[16] = {0};
        for (int ci = 0; ci < Cin; ci++) {
            int8_t g[9];
            int16_t u[16];
            for (int tap = 0; tap < 9; tap++) g[tap] = base[ck_q8_k_offset(tap * Cin + ci)];
            weight_transform(g, u);
            size_t at = ck_w16_offset(Kpw, n, ci);
            for (int xi = 0; xi < 16; xi++) {
                wpacked[xi * psize + at] = u[xi];
                sum[xi] += u[xi];
            }
        }
        for (int xi = 0; xi < 16; xi++) wcolsum[(size_t)xi * Cout + n] = sum[xi];
        wscale[n] = 0.25f * scale[n];     // exact: a power of two
    }
}

int16_t ck_winograd_packed_at(const int16_t *wpacked, int Cout, int Cin, int xi, int n, int ci) {
    return wpacked[xi * ck_q8_packed_size(Cout, Cin) + ck_w16_offset(ck_q8_padded_k(Cin), n, ci)];
}

// int8 rows × int16 panels, the scalar kernel (every path's twin): acc[r][j] = Σ_k qa[r][k]·panel[k][j].
void ck_w16_kernel_ref(int mr, int Kp, const int8_t *qa, int ldqa, const int16_t *panel, int32_t *acc, int ldacc,
                       int nvalid, void *scratch) {
    (void)scratch;
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nvalid; j++) {
            int32_t s = 0;
            for (int k = 0; k < Kp; k++) s += (int32_t)qa[(size_t)r * ldqa + k] * panel[ck_w16_offset(Kp, j, k)];
            acc[(size_t)r * ldacc + j] = s;
        }
}

// Rows [0, M) × panel q of one position with table d's kernel.
static void gemm_w16_panel(const ck_dispatch *d, int M, int N, int Kp, const int8_t *qa, int ldqa,
                           const int16_t *packed, int q, int32_t *acc, int ldacc, void *kscratch) {
    int n0 = q * CK_Q8_NR, mr = d->w16_mr;
    const int16_t *panel = packed + (size_t)q * Kp * CK_Q8_NR;
    for (int m = 0; m < M; m += mr)
        d->w16_kernel(CK_MIN(mr, M - m), Kp, qa + (size_t)m * ldqa, ldqa, panel, acc + (size_t)m * ldacc, ldacc,
                      CK_MIN(CK_Q8_NR, N - n0), kscratch);
}

// V = Bᵀ d B for one tile: d[4a + b] points at the C channels of input pixel (row a, column b) of the tile (a zero
// row for the padding); t: 16·C floats of scratch; V[ξ·C + c].
static void input_transform(const float *const d[16], int C, float *t, float *V) {
    for (int b = 0; b < 4; b++) {      // t = Bᵀ d, column b
        const float *d0 = d[b], *d1 = d[4 + b], *d2 = d[8 + b], *d3 = d[12 + b];
        float *t0 = t + (size_t)b * C, *t1 = t + (size_t)(4 + b) * C, *t2 = t + (size_t)(8 + b) * C,
              *t3 = t + (size_t)(12 + b) * C;
        for (int c = 0; c < C; c++) {
            t0[c] = d0[c] - d2[c];
            t1[c] = d1[c] + d2[c];
            t2[c] = d2[c] - d1[c];
            t3[c] = d1[c] - d3[c];
        }
    }
    for (int a = 0; a < 4; a++) {      // V = t B, row a
        const float *t0 = t + (size_t)(4 * a) * C, *t1 = t0 + C, *t2 = t1 + C, *t3 = t2 + C;
        float *v0 = V + (size_t)(4 * a) * C, *v1 = v0 + C, *v2 = v1 + C, *v3 = v2 + C;
        for (int c = 0; c < C; c++) {
            v0[c] = t0[c] - t2[c];
            v1[c] = t1[c] + t2[c];
            v2[c] = t2[c] - t1[c];
            v3[c] = t1[c] - t3[c];
        }
    }
}

// Y = Aᵀ m A (+ bias) for one channel: m[ξ] → y[r·2 + s], the 2×2 outputs in raster order.
static void output_transform(const float m[16], float bias, float y[4]) {
    float s0[4], s1[4];
    for (int b = 0; b < 4; b++) {
        s0[b] = m[b] + m[4 + b] + m[8 + b];
        s1[b] = m[4 + b] - m[8 + b] - m[12 + b];
    }
    y[0] = s0[0] + s0[1] + s0[2] + bias;
    y[1] = s0[1] - s0[2] - s0[3] + bias;
    y[2] = s1[0] + s1[1] + s1[2] + bias;
    y[3] = s1[1] - s1[2] - s1[3] + bias;
}

static int tiles_h(const ck_conv2d_params *p) { return (p->Ho + 1) / 2; }
static int tiles_w(const ck_conv2d_params *p) { return (p->Wo + 1) / 2; }

static size_t wino_thread_bytes(const ck_conv2d_params *p, const ck_conv_input *in) {
    size_t C = (size_t)ck_fused_in_channels(in), Kp = (size_t)ck_q8_padded_k((int)C), T = CK_WINO_TILES;
    return 2 * CK_ALIGN_UP(16 * C * sizeof(float))                       // t, V
           + CK_ALIGN_UP(C * sizeof(float))                              // the zero row
           + CK_ALIGN_UP(16 * T * Kp)                                    // quantized V: 16 × [T, Kp]
           + 2 * CK_ALIGN_UP(16 * T * sizeof(float))                     // sa, corr
           + CK_ALIGN_UP(T * CK_Q8_NR * 4)                               // int32 accumulators
           + CK_ALIGN_UP(16 * T * CK_Q8_NR * sizeof(float))              // M: 16 × [T, NR]
           + CK_ALIGN_UP(4 * CK_Q8_NR * sizeof(float))                   // one tile's outputs
           + CK_MAX(CK_Q8_KERNEL_SCRATCH(Kp), CK_W16_KERNEL_SCRATCH(Kp))
           + CK_ALIGN_UP((size_t)ck_fused_cache_rows(p) * ck_fused_grid_w(in) * C * sizeof(float))
           + CK_ALIGN_UP((size_t)ck_fused_cache_rows(p) * sizeof(int)) + CK_ALIGN_UP(4 * C * sizeof(float));
}

size_t ck_conv2d_q8_winograd_scratch_size(const ck_conv2d_params *p, const ck_conv_input *in, int nthreads) {
    return (size_t)nthreads * wino_thread_bytes(p, in) + CK_ALIGN;
}

// Work units as in ck_conv2d_q8_fused, with tiles of 2×2 outputs in place of pixels, over the output channels
// [col0, col0 + ncols): wpacked holds those columns' transformed weights as a [ncols, Cin] matrix (ck_winograd_pack
// of the direct weight's rows col0…), wscale/wcolsum theirs; bias, the residual and y are indexed by the full Cout.
static void wino_columns(const ck_conv2d_params *p, const ck_conv_input *in, const int16_t *wpacked, const float *wscale,
                         const int32_t *wcolsum, int col0, int ncols, const float *bias, const ck_conv_residual *residual,
                         void *y, int y_f16, char *s) {
    const ck_dispatch *d = ck_dispatch_active();
    int C = p->Cin, Kp = ck_q8_padded_k(C), nt = ck_get_threads(), T = CK_WINO_TILES;
    int tw = tiles_w(p), tt = tiles_h(p) * tw, blocks = (tt + T - 1) / T;
    int np = CK_ROUND_UP(ncols, CK_Q8_NR) / CK_Q8_NR;
    int groups = ck_conv_panel_groups(p->N * blocks, np, nt);
    int slots = ck_fused_cache_rows(p), up = in->resample == CK_RESAMPLE_UP;
    size_t psize = ck_q8_packed_size(ncols, C);
    size_t per_thread = wino_thread_bytes(p, in);
    int units = p->N * blocks * groups;
#pragma omp parallel num_threads(nt)
    {
        char *ts = s + per_thread * ck_thread_index();
        float *t = (float *)ts;
        float *V = (float *)(ts + CK_ALIGN_UP(16 * (size_t)C * sizeof(float)));
        float *zero = (float *)((char *)V + CK_ALIGN_UP(16 * (size_t)C * sizeof(float)));
        int8_t *qa = (int8_t *)((char *)zero + CK_ALIGN_UP((size_t)C * sizeof(float)));
        float *sa = (float *)((char *)qa + CK_ALIGN_UP(16 * (size_t)T * Kp));
        int32_t *corr = (int32_t *)((char *)sa + CK_ALIGN_UP(16 * (size_t)T * sizeof(float)));
        int32_t *acc = (int32_t *)((char *)corr + CK_ALIGN_UP(16 * (size_t)T * sizeof(float)));
        float *m = (float *)((char *)acc + CK_ALIGN_UP((size_t)T * CK_Q8_NR * 4));
        float *out = (float *)((char *)m + CK_ALIGN_UP(16 * (size_t)T * CK_Q8_NR * sizeof(float)));
        void *ks = (char *)out + CK_ALIGN_UP(4 * CK_Q8_NR * sizeof(float));
        ck_row_cache rc;
        rc.rows = (float *)((char *)ks + CK_MAX(CK_Q8_KERNEL_SCRATCH(Kp), CK_W16_KERNEL_SCRATCH(Kp)));
        rc.tag = (int *)((char *)rc.rows + CK_ALIGN_UP((size_t)slots * ck_fused_grid_w(in) * C * sizeof(float)));
        rc.tmp = (float *)((char *)rc.tag + CK_ALIGN_UP((size_t)slots * sizeof(int)));
        for (int k = 0; k < slots; k++) rc.tag[k] = -1;
        memset(zero, 0, (size_t)C * sizeof(float));
        memset(qa, 0, 16 * (size_t)T * Kp);    // rows past a short block stay zero (the AMX kernel loads whole tiles)
#pragma omp for schedule(static)
        for (int u = 0; u < units; u++) {
            ck_conv_unit w = ck_conv_unit_of(u, T, tt, blocks, groups, np);
            if (w.q0 >= w.q1) continue;
            int n = w.n;
            for (int r = 0; r < w.rows; r++) {
                int tile = w.p0 + r, ty = tile / tw, tx = tile % tw;
                const float *dp[16];
                for (int a = 0; a < 4; a++) {
                    int iy = 2 * ty - 1 + a;
                    const float *row = (iy < 0 || iy >= p->H) ? NULL : ck_fused_cached_row(&rc, slots, in, d, n, iy >> up, C);
                    for (int b = 0; b < 4; b++) {
                        int ix = 2 * tx - 1 + b;
                        dp[4 * a + b] = (!row || ix < 0 || ix >= p->W) ? zero : row + (size_t)(ix >> up) * C;
                    }
                }
                input_transform(dp, C, t, V);
                for (int xi = 0; xi < 16; xi++)
                    d->q8_quantize_rows(1, C, V + (size_t)xi * C, C, qa + ((size_t)xi * T + r) * Kp, &sa[xi * T + r],
                                        &corr[xi * T + r]);
            }
            for (int q = w.q0; q < w.q1; q++) {
                int n0 = q * CK_Q8_NR, nc = CK_MIN(CK_Q8_NR, ncols - n0);
                for (int xi = 0; xi < 16; xi++) {
                    const int32_t *cs = wcolsum + (size_t)xi * ncols;
                    gemm_w16_panel(d, w.rows, ncols, Kp, qa + (size_t)xi * T * Kp, Kp, wpacked + xi * psize, q, acc,
                                   CK_Q8_NR, ks);
                    ck_q8_epilogue(w.rows, nc, acc, CK_Q8_NR, sa + xi * T, corr + xi * T, wscale + n0, cs + n0, NULL,
                                   m + (size_t)xi * T * CK_Q8_NR, CK_Q8_NR);
                }
                for (int r = 0; r < w.rows; r++) {
                    int tile = w.p0 + r, oy = 2 * (tile / tw), ox = 2 * (tile % tw);
                    for (int c = 0; c < nc; c++) {
                        float mv[16], yv[4];
                        for (int xi = 0; xi < 16; xi++) mv[xi] = m[((size_t)xi * T + r) * CK_Q8_NR + c];
                        output_transform(mv, bias ? bias[col0 + n0 + c] : 0.0f, yv);
                        for (int k = 0; k < 4; k++) out[k * CK_Q8_NR + c] = yv[k];
                    }
                    for (int k = 0; k < 4; k++)
                        if (oy + k / 2 < p->Ho && ox + k % 2 < p->Wo)
                            ck_fused_store_tile(p, residual, d, n, (oy + k / 2) * p->Wo + ox + k % 2, 1, col0 + n0, nc,
                                                out + k * CK_Q8_NR, CK_Q8_NR, y, y_f16);
                }
            }
        }
    }
}

void ck_conv2d_q8_winograd(const ck_conv2d_params *p, const ck_conv_input *in, const int16_t *wpacked,
                           const float *wscale, const int32_t *wcolsum, const float *bias,
                           const ck_conv_residual *residual, void *y, int y_f16, void *scratch) {
    wino_columns(p, in, wpacked, wscale, wcolsum, 0, p->Cout, bias, residual, y, y_f16,
                 (char *)CK_ALIGN_UP((uintptr_t)scratch));
}

int ck_winograd_chunk_cols(int Cout, int Cin) {
    size_t per_col = 16 * (size_t)ck_q8_padded_k(Cin) * sizeof(int16_t);   // a column's 16 positions
    int cols = (int)(CK_WINO_CHUNK_BYTES / per_col) / CK_Q8_NR * CK_Q8_NR;
    return CK_MIN(CK_MAX(cols, CK_Q8_NR), CK_ROUND_UP(Cout, CK_Q8_NR));
}

// The chunk's buffers after the threads' scratch: int16 panels, scale/4 and column sums of chunk_cols columns.
static size_t chunk_bytes(int Cin, int chunk_cols) {
    return CK_ALIGN_UP(ck_winograd_packed_size(chunk_cols, Cin)) + CK_ALIGN_UP((size_t)chunk_cols * sizeof(float))
           + CK_ALIGN_UP(16 * (size_t)chunk_cols * sizeof(int32_t));
}

size_t ck_conv2d_q8_winograd_streamed_scratch_size(const ck_conv2d_params *p, const ck_conv_input *in, int chunk_cols,
                                                   int nthreads) {
    return ck_conv2d_q8_winograd_scratch_size(p, in, nthreads) + chunk_bytes(p->Cin, chunk_cols);
}

void ck_conv2d_q8_winograd_streamed(const ck_conv2d_params *p, const ck_conv_input *in, const int8_t *packed,
                                    const float *scale, const float *bias, const ck_conv_residual *residual, void *y,
                                    int y_f16, int chunk_cols, void *scratch) {
    int Kp = ck_q8_padded_k(9 * p->Cin);
    char *s = (char *)CK_ALIGN_UP((uintptr_t)scratch);
    char *chunk = s + (size_t)ck_get_threads() * wino_thread_bytes(p, in);   // aligned: every piece is
    int16_t *wpacked = (int16_t *)chunk;
    float *wscale = (float *)(chunk + CK_ALIGN_UP(ck_winograd_packed_size(chunk_cols, p->Cin)));
    int32_t *wcolsum = (int32_t *)((char *)wscale + CK_ALIGN_UP((size_t)chunk_cols * sizeof(float)));
    for (int c0 = 0; c0 < p->Cout; c0 += chunk_cols) {
        int nc = CK_MIN(chunk_cols, p->Cout - c0);
        // rows c0… of the direct weight start a panel (c0 is a multiple of CK_Q8_NR): the same layout from there
        ck_winograd_pack(nc, p->Cin, packed + ck_q8_row_offset(Kp, c0), scale + c0, wpacked, wscale, wcolsum);
        wino_columns(p, in, wpacked, wscale, wcolsum, c0, nc, bias, residual, y, y_f16, s);
    }
}

// Scalar twin: the input materialised with scalar code (ck_fused_scalar_table), the same transforms, each row
// quantized by ck_q8_quantize_rows_ref and Σ (qa + corr)·U summed directly from the packed weights.
void ck_conv2d_q8_winograd_ref(const ck_conv2d_params *p, const ck_conv_input *in, const int16_t *wpacked,
                               const float *wscale, const float *bias, const ck_conv_residual *residual, void *y,
                               int y_f16) {
    ck_dispatch d = ck_fused_scalar_table();
    int C = p->Cin, Co = p->Cout, Kp = ck_q8_padded_k(C), tw = tiles_w(p), tt = tiles_h(p) * tw;
    float *x = malloc((size_t)p->N * p->H * p->W * C * sizeof(float));
    float *t = malloc(16 * (size_t)C * sizeof(float)), *V = malloc(16 * (size_t)C * sizeof(float));
    float *zero = calloc((size_t)C, sizeof(float)), *m = malloc(16 * (size_t)Co * sizeof(float));
    float *out = malloc(4 * (size_t)Co * sizeof(float));
    int8_t *qa = malloc((size_t)Kp);
    ck_fused_materialize(p->N, in, &d, x);
    for (int n = 0; n < p->N; n++)
        for (int tile = 0; tile < tt; tile++) {
            int ty = tile / tw, tx = tile % tw;
            const float *dp[16];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    int iy = 2 * ty - 1 + a, ix = 2 * tx - 1 + b;
                    dp[4 * a + b] = (iy < 0 || iy >= p->H || ix < 0 || ix >= p->W)
                                        ? zero
                                        : x + (((size_t)n * p->H + iy) * p->W + ix) * C;
                }
            input_transform(dp, C, t, V);
            for (int xi = 0; xi < 16; xi++) {
                float sa;
                int32_t corr;
                ck_q8_quantize_rows_ref(1, C, V + (size_t)xi * C, C, qa, &sa, &corr);
                for (int o = 0; o < Co; o++) {
                    int32_t acc = 0;
                    for (int k = 0; k < C; k++)
                        acc += ((int32_t)qa[k] + corr) * ck_winograd_packed_at(wpacked, Co, C, xi, o, k);
                    m[(size_t)xi * Co + o] = ck_q8_dequantize(acc, sa, wscale[o], NULL, o);
                }
            }
            for (int o = 0; o < Co; o++) {
                float mv[16], yv[4];
                for (int xi = 0; xi < 16; xi++) mv[xi] = m[(size_t)xi * Co + o];
                output_transform(mv, bias ? bias[o] : 0.0f, yv);
                for (int k = 0; k < 4; k++) out[(size_t)k * Co + o] = yv[k];
            }
            int oy = 2 * ty, ox = 2 * tx;
            for (int k = 0; k < 4; k++)
                if (oy + k / 2 < p->Ho && ox + k % 2 < p->Wo)
                    ck_fused_store_tile(p, residual, &d, n, (oy + k / 2) * p->Wo + ox + k % 2, 1, 0, Co,
                                        out + (size_t)k * Co, Co, y, y_f16);
        }
    free(x);
    free(t);
    free(V);
    free(zero);
    free(m);
    free(out);
    free(qa);
}

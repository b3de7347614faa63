// The fused int8 convolution (ckernels.h): the input's concatenation, channel bias, GroupNorm affine map, SiLU
// and 2× resampling are applied while the im2col tiles are built, the residual is added and the result stored
// (f32 or f16) in the epilogue. Nothing between two convolutions of a ResnetBlock2D is materialised.
//
// Each thread keeps a few "prepared rows": one row of the activated input (after concatenation, bias, affine
// map and SiLU; after the 2×2 average for DOWN; at the operands' resolution for UP, whose nearest 2× is an
// index shift) in f32. A 3×3 convolution reads every input row three times and every pixel nine times, so the
// activation runs once per row per thread instead of once per tap (conv_input.c). Then the im2col row of each output pixel is
// gathered from the prepared rows (memcpy per tap, as ck_conv2d_q8 does from the tensor) and quantized.
#include "internal.h"

#include <stdlib.h>
#include <string.h>

// im2col row of output pixel pix (image n) from the prepared rows.
static void gather(const ck_conv2d_params *p, const ck_conv_input *in, const ck_dispatch *d, ck_row_cache *rc, int slots,
                   int n, int pix, float *out) {
    int C = p->Cin, up = in->resample == CK_RESAMPLE_UP, oy = pix / p->Wo, ox = pix % p->Wo;
    size_t cbytes = (size_t)C * sizeof(float);
    for (int ky = 0; ky < p->kh; ky++) {
        int iy = oy * p->stride - p->pad + ky;
        const float *r = (iy < 0 || iy >= p->H) ? NULL : ck_fused_cached_row(rc, slots, in, d, n, iy >> up, C);
        for (int kx = 0; kx < p->kw; kx++, out += C) {
            int ix = ox * p->stride - p->pad + kx;
            if (!r || ix < 0 || ix >= p->W) memset(out, 0, cbytes);
            else memcpy(out, r + (size_t)(ix >> up) * C, cbytes);
        }
    }
}

static size_t conv_k(const ck_conv2d_params *p) { return (size_t)p->kh * p->kw * p->Cin; }

static size_t fused_thread_bytes(const ck_conv2d_params *p, const ck_conv_input *in) {
    size_t K = conv_k(p), Kp = (size_t)ck_q8_padded_k((int)K), C = (size_t)ck_fused_in_channels(in);
    return CK_ALIGN_UP(K * sizeof(float)) + CK_ALIGN_UP(CK_CONV_TILE_Q8 * Kp) +
           2 * CK_ALIGN_UP(CK_CONV_TILE_Q8 * sizeof(float)) + CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * CK_Q8_NR * 4) +
           CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * CK_Q8_NR * sizeof(float)) + CK_Q8_KERNEL_SCRATCH(Kp) +
           CK_ALIGN_UP((size_t)ck_fused_cache_rows(p) * ck_fused_grid_w(in) * C * sizeof(float)) +
           CK_ALIGN_UP((size_t)ck_fused_cache_rows(p) * sizeof(int)) + CK_ALIGN_UP(4 * C * sizeof(float));
}

size_t ck_conv2d_q8_fused_scratch_size(const ck_conv2d_params *p, const ck_conv_input *in, int nthreads) {
    return (size_t)nthreads * fused_thread_bytes(p, in) + CK_ALIGN;
}

// Work units as in ck_conv2d_q8: (image, tile, panel group), panel groups only when tiles are few.
void ck_conv2d_q8_fused(const ck_conv2d_params *p, const ck_conv_input *in, const int8_t *packed, const float *scale,
                        const int32_t *colsum, const float *bias, const ck_conv_residual *residual, void *y,
                        int y_f16, void *scratch) {
    const ck_dispatch *d = ck_dispatch_active();
    int K = (int)conv_k(p), Kp = ck_q8_padded_k(K), HWo = p->Ho * p->Wo, nt = ck_get_threads();
    int tiles = (HWo + CK_CONV_TILE_Q8 - 1) / CK_CONV_TILE_Q8;
    int np = CK_ROUND_UP(p->Cout, CK_Q8_NR) / CK_Q8_NR;
    int groups = ck_conv_panel_groups(p->N * tiles, np, nt);
    int slots = ck_fused_cache_rows(p), C = p->Cin;
    char *s = (char *)CK_ALIGN_UP((uintptr_t)scratch);
    size_t per_thread = fused_thread_bytes(p, in);
    int units = p->N * tiles * groups;
#pragma omp parallel num_threads(nt)
    {
        char *ts = s + per_thread * ck_thread_index();
        float *row = (float *)ts;
        int8_t *qa = (int8_t *)(ts + CK_ALIGN_UP((size_t)K * sizeof(float)));
        float *sa = (float *)((char *)qa + CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * Kp));
        int32_t *corr = (int32_t *)((char *)sa + CK_ALIGN_UP(CK_CONV_TILE_Q8 * sizeof(float)));
        int32_t *acc = (int32_t *)((char *)corr + CK_ALIGN_UP(CK_CONV_TILE_Q8 * sizeof(float)));
        float *tile = (float *)((char *)acc + CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * CK_Q8_NR * 4));
        void *ks = (char *)tile + CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * CK_Q8_NR * sizeof(float));
        ck_row_cache rc;
        rc.rows = (float *)((char *)ks + CK_Q8_KERNEL_SCRATCH(Kp));
        rc.tag = (int *)((char *)rc.rows + CK_ALIGN_UP((size_t)slots * ck_fused_grid_w(in) * C * sizeof(float)));
        rc.tmp = (float *)((char *)rc.tag + CK_ALIGN_UP((size_t)slots * sizeof(int)));
        for (int k = 0; k < slots; k++) rc.tag[k] = -1;
#pragma omp for schedule(static)
        for (int u = 0; u < units; u++) {
            ck_conv_unit w = ck_conv_unit_of(u, CK_CONV_TILE_Q8, HWo, tiles, groups, np);
            if (w.q0 >= w.q1) continue;
            int n = w.n, p0 = w.p0, rows = w.rows, q0 = w.q0, q1 = w.q1;
            for (int r = 0; r < rows; r++) {
                gather(p, in, d, &rc, slots, n, p0 + r, row);
                d->q8_quantize_rows(1, K, row, K, qa + (size_t)r * Kp, &sa[r], &corr[r]);
            }
            for (int q = q0; q < q1; q++) {
                int n0 = q * CK_Q8_NR, nc = CK_MIN(CK_Q8_NR, p->Cout - n0);
                ck_gemm_q8_block(d, rows, p->Cout, Kp, qa, Kp, packed, colsum, q, q + 1, acc, CK_Q8_NR, ks);
                ck_q8_epilogue(rows, nc, acc, CK_Q8_NR, sa, corr, scale + n0, colsum + n0, bias ? bias + n0 : NULL,
                               tile, CK_Q8_NR);
                ck_fused_store_tile(p, residual, d, n, p0, rows, n0, nc, tile, CK_Q8_NR, y, y_f16);
            }
        }
    }
}

void ck_conv2d_q8_fused_ref(const ck_conv2d_params *p, const ck_conv_input *in, const int8_t *packed,
                            const float *scale, const float *bias, const ck_conv_residual *residual, void *y,
                            int y_f16) {
    ck_dispatch d = ck_fused_scalar_table();
    size_t out = (size_t)p->Ho * p->Wo * p->Cout;
    float *x = malloc((size_t)p->N * p->H * p->W * p->Cin * sizeof(float)), *y32 = malloc((size_t)p->N * out * sizeof(float));
    ck_fused_materialize(p->N, in, &d, x);
    ck_conv2d_q8_ref(p, x, packed, scale, bias, y32);
    for (int n = 0; n < p->N; n++)
        ck_fused_store_tile(p, residual, &d, n, 0, p->Ho * p->Wo, 0, p->Cout, y32 + n * out, p->Cout, y, y_f16);
    free(x);
    free(y32);
}

// The fused int8 convolution (ckernels.h): the input's concatenation, channel bias, GroupNorm affine map, SiLU
// and 2× resampling are applied while the im2col tiles are built, the residual is added and the result stored
// (f32 or f16) in the epilogue. Nothing between two convolutions of a ResnetBlock2D is materialised.
//
// Each thread keeps a few "prepared rows": one row of the activated input (after concatenation, bias, affine
// map and SiLU; after the 2×2 average for DOWN; at the operands' resolution for UP, whose nearest 2× is an
// index shift) in f32. A 3×3 convolution reads every input row three times and every pixel nine times, so the
// activation runs once per row per thread instead of once per tap. Then the im2col row of each output pixel is
// gathered from the prepared rows (memcpy per tap, as ck_conv2d_q8 does from the tensor) and quantized.
#include "internal.h"

#include <stdlib.h>
#include <string.h>

// The prepared grid: the resolution whose rows are cached (the operands' for NONE and UP, half for DOWN).
static int grid_h(const ck_conv_input *in) { return in->resample == CK_RESAMPLE_DOWN ? in->H / 2 : in->H; }
static int grid_w(const ck_conv_input *in) { return in->resample == CK_RESAMPLE_DOWN ? in->W / 2 : in->W; }
static int in_channels(const ck_conv_input *in) {
    int c = 0;
    for (int s = 0; s < in->nsrc; s++) c += in->src[s].C;
    return c;
}

// Rows cached per thread: enough for one output row's taps plus the next row's (no thrashing).
static int cache_rows(const ck_conv2d_params *p) { return p->kh + 2; }

// One pixel of the operands, activated in place: + cbias, (x − μ)·a + b, SiLU (the ck_group_norm order).
static void activate_pixel(const ck_conv_input *in, const ck_dispatch *d, int n, size_t pixel, int C, float *o) {
    ck_act_load_pixel(in->src, in->nsrc, pixel, d->f16_to_f32, o);
    size_t nc = (size_t)n * C;
    if (in->cbias)
        for (int c = 0; c < C; c++) o[c] = o[c] + in->cbias[nc + c];
    if (in->mu)
        for (int c = 0; c < C; c++) o[c] = (o[c] - in->mu[nc + c]) * in->a[nc + c] + in->b[nc + c];
    if (in->silu) d->sigmoid_gate((size_t)C, o, 1.0f, o);
}

// Prepared row gy of image n: grid_w × C floats. tmp: 4·C floats (the DOWN taps).
static void prepare_row(const ck_conv_input *in, const ck_dispatch *d, int n, int gy, int C, float *out, float *tmp) {
    size_t img = (size_t)n * in->H * in->W;
    if (in->resample != CK_RESAMPLE_DOWN) {
        for (int x = 0; x < in->W; x++)
            activate_pixel(in, d, n, img + (size_t)gy * in->W + x, C, out + (size_t)x * C);
        return;
    }
    for (int x = 0; x < grid_w(in); x++) {
        // PyTorch avg_pool2d(2) after the activation: the four taps in raster order, summed, divided by 4
        // (ck_avg_pool2x2's order).
        for (int t = 0; t < 4; t++)
            activate_pixel(in, d, n, img + (size_t)(2 * gy + t / 2) * in->W + 2 * x + t % 2, C, tmp + (size_t)t * C);
        float *o = out + (size_t)x * C;
        for (int c = 0; c < C; c++) o[c] = (tmp[c] + tmp[C + c] + tmp[2 * C + c] + tmp[3 * C + c]) / 4.0f;
    }
}

typedef struct {
    float *rows;   // cache_rows × grid_w × C
    int *tag;      // (n · grid_h + gy) held by each slot, −1: empty
    float *tmp;
} row_cache;

static const float *cached_row(row_cache *rc, int slots, const ck_conv_input *in, const ck_dispatch *d, int n, int gy,
                               int C) {
    int key = n * grid_h(in) + gy, s = key % slots;
    float *r = rc->rows + (size_t)s * grid_w(in) * C;
    if (rc->tag[s] != key) {
        prepare_row(in, d, n, gy, C, r, rc->tmp);
        rc->tag[s] = key;
    }
    return r;
}

// im2col row of output pixel pix (image n) from the prepared rows.
static void gather(const ck_conv2d_params *p, const ck_conv_input *in, const ck_dispatch *d, row_cache *rc, int slots,
                   int n, int pix, float *out) {
    int C = p->Cin, up = in->resample == CK_RESAMPLE_UP, oy = pix / p->Wo, ox = pix % p->Wo;
    size_t cbytes = (size_t)C * sizeof(float);
    for (int ky = 0; ky < p->kh; ky++) {
        int iy = oy * p->stride - p->pad + ky;
        const float *r = (iy < 0 || iy >= p->H) ? NULL : cached_row(rc, slots, in, d, n, iy >> up, C);
        for (int kx = 0; kx < p->kw; kx++, out += C) {
            int ix = ox * p->stride - p->pad + kx;
            if (!r || ix < 0 || ix >= p->W) memset(out, 0, cbytes);
            else memcpy(out, r + (size_t)(ix >> up) * C, cbytes);
        }
    }
}

// residual(n, oy, ox)[c0 .. c0+nc) in f32 (brought to the output size by its resampling).
static void residual_values(const ck_conv2d_params *p, const ck_conv_residual *res, ck_f16_to_f32_fn cvt, int n,
                            int oy, int ox, int c0, int nc, float *v) {
    int Co = p->Cout;
    if (res->resample == CK_RESAMPLE_DOWN) {
        int H = 2 * p->Ho, W = 2 * p->Wo;
        float t[4][nc];
        for (int k = 0; k < 4; k++) {
            size_t off = (((size_t)n * H + 2 * oy + k / 2) * W + 2 * ox + k % 2) * Co + c0;
            if (res->f16) cvt((size_t)nc, (const uint16_t *)res->data + off, t[k]);
            else memcpy(t[k], (const float *)res->data + off, (size_t)nc * sizeof(float));
        }
        for (int c = 0; c < nc; c++) v[c] = (t[0][c] + t[1][c] + t[2][c] + t[3][c]) / 4.0f;
        return;
    }
    int up = res->resample == CK_RESAMPLE_UP, H = p->Ho >> up, W = p->Wo >> up;
    size_t off = (((size_t)n * H + (oy >> up)) * W + (ox >> up)) * Co + c0;
    if (res->f16) cvt((size_t)nc, (const uint16_t *)res->data + off, v);
    else memcpy(v, (const float *)res->data + off, (size_t)nc * sizeof(float));
}

// Stores a [rows, nc] f32 tile (row stride ldt) at output pixels pix0.. and channels c0.., adding the residual.
static void store_tile(const ck_conv2d_params *p, const ck_conv_residual *res, const ck_dispatch *d, int n, int pix0,
                       int rows, int c0, int nc, float *tile, int ldt, void *y, int y_f16) {
    float rv[nc];
    for (int r = 0; r < rows; r++) {
        int pix = pix0 + r;
        float *t = tile + (size_t)r * ldt;
        if (res) {
            residual_values(p, res, d->f16_to_f32, n, pix / p->Wo, pix % p->Wo, c0, nc, rv);
            for (int c = 0; c < nc; c++) t[c] = rv[c] + t[c];
        }
        size_t off = ((size_t)n * p->Ho * p->Wo + pix) * p->Cout + c0;
        if (y_f16) d->f32_to_f16((size_t)nc, t, (uint16_t *)y + off);
        else memcpy((float *)y + off, t, (size_t)nc * sizeof(float));
    }
}

static size_t conv_k(const ck_conv2d_params *p) { return (size_t)p->kh * p->kw * p->Cin; }

static size_t fused_thread_bytes(const ck_conv2d_params *p, const ck_conv_input *in) {
    size_t K = conv_k(p), Kp = (size_t)ck_q8_padded_k((int)K), C = (size_t)in_channels(in);
    return CK_ALIGN_UP(K * sizeof(float)) + CK_ALIGN_UP(CK_CONV_TILE_Q8 * Kp) +
           2 * CK_ALIGN_UP(CK_CONV_TILE_Q8 * sizeof(float)) + CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * CK_Q8_NR * 4) +
           CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * CK_Q8_NR * sizeof(float)) + CK_Q8_KERNEL_SCRATCH(Kp) +
           CK_ALIGN_UP((size_t)cache_rows(p) * grid_w(in) * C * sizeof(float)) +
           CK_ALIGN_UP((size_t)cache_rows(p) * sizeof(int)) + CK_ALIGN_UP(4 * C * sizeof(float));
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
    int slots = cache_rows(p), C = p->Cin;
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
        row_cache rc;
        rc.rows = (float *)((char *)ks + CK_Q8_KERNEL_SCRATCH(Kp));
        rc.tag = (int *)((char *)rc.rows + CK_ALIGN_UP((size_t)slots * grid_w(in) * C * sizeof(float)));
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
                store_tile(p, residual, d, n, p0, rows, n0, nc, tile, CK_Q8_NR, y, y_f16);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Scalar twin: every step materialised, scalar SiLU and conversions, ck_conv2d_q8_ref.
// ---------------------------------------------------------------------------------------------------------
static ck_dispatch scalar_table(void) {
    ck_dispatch d = *ck_dispatch_active();
    d.sigmoid_gate = ck_sigmoid_gate_ref;
    d.f16_to_f32 = ck_f16_to_f32_ref;
    d.f32_to_f16 = ck_f32_to_f16_ref;
    return d;
}

// The convolution's whole input [N, Hc, Wc, C] (Hc = H, 2H or H/2 by the resampling) in f32 with table d.
static void materialize(int N, const ck_conv_input *in, const ck_dispatch *d, float *x) {
    int C = in_channels(in), gh = grid_h(in), gw = grid_w(in), up = in->resample == CK_RESAMPLE_UP;
    int Hc = gh << up, Wc = gw << up;
    size_t plane = (size_t)Hc * Wc * C;
#pragma omp parallel num_threads(ck_get_threads())
    {
        float *grid = malloc((size_t)gw * C * sizeof(float)), *tmp = malloc(4 * (size_t)C * sizeof(float));
#pragma omp for schedule(static)
        for (int r = 0; r < N * gh; r++) {
            int n = r / gh, gy = r % gh;
            prepare_row(in, d, n, gy, C, grid, tmp);
            for (int iy = gy << up; iy < (gy + 1) << up; iy++)
                for (int ix = 0; ix < Wc; ix++)
                    memcpy(x + n * plane + ((size_t)iy * Wc + ix) * C, grid + (size_t)(ix >> up) * C,
                           (size_t)C * sizeof(float));
        }
        free(grid);
        free(tmp);
    }
}

void ck_conv_input_materialize(int N, const ck_conv_input *in, float *x) {
    materialize(N, in, ck_dispatch_active(), x);
}

void ck_conv2d_q8_fused_ref(const ck_conv2d_params *p, const ck_conv_input *in, const int8_t *packed,
                            const float *scale, const float *bias, const ck_conv_residual *residual, void *y,
                            int y_f16) {
    ck_dispatch d = scalar_table();
    size_t out = (size_t)p->Ho * p->Wo * p->Cout;
    float *x = malloc((size_t)p->N * p->H * p->W * p->Cin * sizeof(float)), *y32 = malloc((size_t)p->N * out * sizeof(float));
    materialize(p->N, in, &d, x);
    ck_conv2d_q8_ref(p, x, packed, scale, bias, y32);
    for (int n = 0; n < p->N; n++)
        store_tile(p, residual, &d, n, 0, p->Ho * p->Wo, 0, p->Cout, y32 + n * out, p->Cout, y, y_f16);
    free(x);
    free(y32);
}

// The fused convolutions' input side and output side, shared by the direct (conv2d_fused.c) and the Winograd
// (conv2d_winograd.c) int8 drivers: the activated operand rows ("prepared rows": concatenation, channel bias,
// GroupNorm affine map, SiLU and the 2×2 average in f32, cached per thread), the output store with the resampled
// residual, and the whole input materialised for the scalar twins.
#include "internal.h"

#include <stdlib.h>
#include <string.h>

// The prepared grid: the resolution whose rows are cached (the operands' for NONE and UP, half for DOWN).
int ck_fused_grid_h(const ck_conv_input *in) { return in->resample == CK_RESAMPLE_DOWN ? in->H / 2 : in->H; }
int ck_fused_grid_w(const ck_conv_input *in) { return in->resample == CK_RESAMPLE_DOWN ? in->W / 2 : in->W; }
int ck_fused_in_channels(const ck_conv_input *in) {
    int c = 0;
    for (int s = 0; s < in->nsrc; s++) c += in->src[s].C;
    return c;
}

// Rows cached per thread: enough for one output row's taps plus the next row's (no thrashing).
int ck_fused_cache_rows(const ck_conv2d_params *p) { return p->kh + 2; }

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
    for (int x = 0; x < ck_fused_grid_w(in); x++) {
        // PyTorch avg_pool2d(2) after the activation: the four taps in raster order, summed, divided by 4
        // (ck_avg_pool2x2's order).
        for (int t = 0; t < 4; t++)
            activate_pixel(in, d, n, img + (size_t)(2 * gy + t / 2) * in->W + 2 * x + t % 2, C, tmp + (size_t)t * C);
        float *o = out + (size_t)x * C;
        for (int c = 0; c < C; c++) o[c] = (tmp[c] + tmp[C + c] + tmp[2 * C + c] + tmp[3 * C + c]) / 4.0f;
    }
}

const float *ck_fused_cached_row(ck_row_cache *rc, int slots, const ck_conv_input *in, const ck_dispatch *d, int n, int gy,
                               int C) {
    int key = n * ck_fused_grid_h(in) + gy, s = key % slots;
    float *r = rc->rows + (size_t)s * ck_fused_grid_w(in) * C;
    if (rc->tag[s] != key) {
        prepare_row(in, d, n, gy, C, r, rc->tmp);
        rc->tag[s] = key;
    }
    return r;
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
void ck_fused_store_tile(const ck_conv2d_params *p, const ck_conv_residual *res, const ck_dispatch *d, int n, int pix0,
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

// The scalar table of the twins: scalar SiLU and binary16 conversions, the active path's GEMM.
ck_dispatch ck_fused_scalar_table(void) {
    ck_dispatch d = *ck_dispatch_active();
    d.sigmoid_gate = ck_sigmoid_gate_ref;
    d.f16_to_f32 = ck_f16_to_f32_ref;
    d.f32_to_f16 = ck_f32_to_f16_ref;
    return d;
}

// The convolution's whole input [N, Hc, Wc, C] (Hc = H, 2H or H/2 by the resampling) in f32 with table d.
void ck_fused_materialize(int N, const ck_conv_input *in, const ck_dispatch *d, float *x) {
    int C = ck_fused_in_channels(in), gh = ck_fused_grid_h(in), gw = ck_fused_grid_w(in), up = in->resample == CK_RESAMPLE_UP;
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
    ck_fused_materialize(N, in, ck_dispatch_active(), x);
}


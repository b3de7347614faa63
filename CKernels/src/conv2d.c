// 2-D convolution, NHWC, by tiled im2col: each thread expands CK_CONV_TILE output pixels (f32) or
// CK_CONV_TILE_Q8 pixels (int8, quantized row by row) into its own scratch and runs the GEMM kernels on them.
// Why NHWC: an im2col row is kh·kw contiguous Cin-vectors (memcpy per tap), a row's quantization scale covers
// one output pixel's receptive field, and attention reads pixels as tokens [HW, C] with no transpose.
#include "internal.h"

#include <string.h>

int ck_conv2d_shape(ck_conv2d_params *p) {
    if (p->N < 1 || p->H < 1 || p->W < 1 || p->Cin < 1 || p->Cout < 1 || p->kh < 1 || p->kw < 1 ||
        p->stride < 1 || p->pad < 0)
        return -1;
    long ho = ((long)p->H + 2L * p->pad - p->kh) / p->stride + 1;
    long wo = ((long)p->W + 2L * p->pad - p->kw) / p->stride + 1;
    if ((long)p->H + 2L * p->pad < p->kh || (long)p->W + 2L * p->pad < p->kw || ho < 1 || wo < 1) return -1;
    p->Ho = (int)ho;
    p->Wo = (int)wo;
    return 0;
}

void ck_im2col_f32(const ck_conv2d_params *p, const float *x, int n, int p0, int rows, float *out, int ldo) {
    const float *img = x + (size_t)n * p->H * p->W * p->Cin;
    size_t cbytes = (size_t)p->Cin * sizeof(float);
    for (int r = 0; r < rows; r++) {
        int pix = p0 + r, oy = pix / p->Wo, ox = pix % p->Wo;
        float *o = out + (size_t)r * ldo;
        for (int ky = 0; ky < p->kh; ky++) {
            int iy = oy * p->stride - p->pad + ky;
            for (int kx = 0; kx < p->kw; kx++, o += p->Cin) {
                int ix = ox * p->stride - p->pad + kx;
                if (iy < 0 || iy >= p->H || ix < 0 || ix >= p->W) memset(o, 0, cbytes);
                else memcpy(o, img + ((size_t)iy * p->W + ix) * p->Cin, cbytes);
            }
        }
    }
}

void ck_conv2d_f32_ref(const ck_conv2d_params *p, const float *x, const float *W, const float *bias, float *y) {
    for (int n = 0; n < p->N; n++)
        for (int oy = 0; oy < p->Ho; oy++)
            for (int ox = 0; ox < p->Wo; ox++)
                for (int co = 0; co < p->Cout; co++) {
                    float s = bias ? bias[co] : 0.0f;
                    for (int ky = 0; ky < p->kh; ky++)
                        for (int kx = 0; kx < p->kw; kx++) {
                            int iy = oy * p->stride - p->pad + ky, ix = ox * p->stride - p->pad + kx;
                            if (iy < 0 || iy >= p->H || ix < 0 || ix >= p->W) continue;
                            const float *xi = x + (((size_t)n * p->H + iy) * p->W + ix) * p->Cin;
                            for (int ci = 0; ci < p->Cin; ci++)
                                s += xi[ci] * W[(((size_t)co * p->Cin + ci) * p->kh + ky) * p->kw + kx];
                        }
                    y[(((size_t)n * p->Ho + oy) * p->Wo + ox) * p->Cout + co] = s;
                }
}

static int conv_k(const ck_conv2d_params *p) { return p->kh * p->kw * p->Cin; }

size_t ck_conv2d_f32_scratch_size(const ck_conv2d_params *p, int nthreads) {
    return (size_t)nthreads * CK_ALIGN_UP((size_t)CK_CONV_TILE * conv_k(p) * sizeof(float)) + CK_ALIGN;
}

void ck_conv2d_f32(const ck_conv2d_params *p, const float *x, const float *packed, const float *bias, float *y,
                   void *scratch) {
    const ck_dispatch *d = ck_dispatch_active();
    int K = conv_k(p), HWo = p->Ho * p->Wo, nt = ck_get_threads();
    int tiles = (HWo + CK_CONV_TILE - 1) / CK_CONV_TILE;
    int np = CK_ROUND_UP(p->Cout, CK_F32_NR) / CK_F32_NR;
    int groups = ck_conv_panel_groups(p->N * tiles, np, nt);
    char *s = (char *)CK_ALIGN_UP((uintptr_t)scratch);
    size_t per_thread = CK_ALIGN_UP((size_t)CK_CONV_TILE * K * sizeof(float));
    int units = p->N * tiles * groups;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int u = 0; u < units; u++) {
        ck_conv_unit w = ck_conv_unit_of(u, CK_CONV_TILE, HWo, tiles, groups, np);
        if (w.q0 >= w.q1) continue;
        float *a = (float *)(s + per_thread * ck_thread_index());
        ck_im2col_f32(p, x, w.n, w.p0, w.rows, a, K);
        ck_gemm_f32_block(d, w.rows, p->Cout, K, a, K, packed, w.q0, w.q1, bias,
                          y + ((size_t)w.n * HWo + w.p0) * p->Cout, p->Cout);
    }
}

// int8: per thread, one im2col row in f32 (K floats), the quantized tile, its row scales and zero-point
// corrections, and an int32 tile.
static size_t q8_thread_bytes(const ck_conv2d_params *p) {
    int K = conv_k(p), Kp = ck_q8_padded_k(K);
    return CK_ALIGN_UP((size_t)K * sizeof(float)) + CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * Kp) +
           2 * CK_ALIGN_UP(CK_CONV_TILE_Q8 * sizeof(float)) + CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * CK_Q8_NR * 4) +
           CK_Q8_KERNEL_SCRATCH(Kp);
}

size_t ck_conv2d_q8_scratch_size(const ck_conv2d_params *p, int nthreads) {
    return (size_t)nthreads * q8_thread_bytes(p) + CK_ALIGN;
}

void ck_conv2d_q8_ref(const ck_conv2d_params *p, const float *x, const int8_t *packed, const float *scale,
                      const float *bias, float *y) {
    int K = conv_k(p), HWo = p->Ho * p->Wo;
    float row[K];
    for (int n = 0; n < p->N; n++)
        for (int pix = 0; pix < HWo; pix++) {
            ck_im2col_f32(p, x, n, pix, 1, row, K);
            ck_gemm_q8_ref(1, p->Cout, K, row, K, packed, scale, bias, y + ((size_t)n * HWo + pix) * p->Cout,
                           p->Cout);
        }
}

void ck_conv2d_q8(const ck_conv2d_params *p, const float *x, const int8_t *packed, const float *scale,
                  const int32_t *colsum, const float *bias, float *y, void *scratch) {
    const ck_dispatch *d = ck_dispatch_active();
    int K = conv_k(p), Kp = ck_q8_padded_k(K), HWo = p->Ho * p->Wo, nt = ck_get_threads();
    int tiles = (HWo + CK_CONV_TILE_Q8 - 1) / CK_CONV_TILE_Q8;
    int np = CK_ROUND_UP(p->Cout, CK_Q8_NR) / CK_Q8_NR;
    int groups = ck_conv_panel_groups(p->N * tiles, np, nt);
    char *s = (char *)CK_ALIGN_UP((uintptr_t)scratch);
    size_t per_thread = q8_thread_bytes(p);
    int units = p->N * tiles * groups;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int u = 0; u < units; u++) {
        ck_conv_unit w = ck_conv_unit_of(u, CK_CONV_TILE_Q8, HWo, tiles, groups, np);
        if (w.q0 >= w.q1) continue;
        int n = w.n, p0 = w.p0, rows = w.rows;
        char *ts = s + per_thread * ck_thread_index();
        float *row = (float *)ts;
        int8_t *qa = (int8_t *)(ts + CK_ALIGN_UP((size_t)K * sizeof(float)));
        float *sa = (float *)((char *)qa + CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * Kp));
        int32_t *corr = (int32_t *)((char *)sa + CK_ALIGN_UP(CK_CONV_TILE_Q8 * sizeof(float)));
        int32_t *acc = (int32_t *)((char *)corr + CK_ALIGN_UP(CK_CONV_TILE_Q8 * sizeof(float)));
        void *ks = (char *)acc + CK_ALIGN_UP((size_t)CK_CONV_TILE_Q8 * CK_Q8_NR * 4);
        for (int r = 0; r < rows; r++) {
            ck_im2col_f32(p, x, n, p0 + r, 1, row, K);
            d->q8_quantize_rows(1, K, row, K, qa + (size_t)r * Kp, &sa[r], &corr[r]);
        }
        float *yt = y + ((size_t)n * HWo + p0) * p->Cout;
        for (int q = w.q0; q < w.q1; q++) {
            int n0 = q * CK_Q8_NR;
            ck_gemm_q8_block(d, rows, p->Cout, Kp, qa, Kp, packed, colsum, q, q + 1, acc, CK_Q8_NR, ks);
            ck_q8_epilogue(rows, CK_MIN(CK_Q8_NR, p->Cout - n0), acc, CK_Q8_NR, sa, corr, scale + n0, colsum + n0,
                           bias ? bias + n0 : NULL, yt + n0, p->Cout);
        }
    }
}

// 2×2 average pooling, nearest 2× upsampling and PyTorch's anti-aliased bicubic resize, NHWC.
#include "internal.h"

#include <math.h>
#include <string.h>

void ck_avg_pool2x2(int N, int H, int W, int C, const float *x, float *y) {
    int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for schedule(static) num_threads(ck_get_threads())
    for (int r = 0; r < N * Ho; r++) {
        int n = r / Ho, oy = r % Ho;
        for (int ox = 0; ox < Wo; ox++) {
            const float *a = x + (((size_t)n * H + 2 * oy) * W + 2 * ox) * C;
            const float *b = a + (size_t)W * C;
            float *o = y + (((size_t)n * Ho + oy) * Wo + ox) * C;
            // PyTorch avg_pool2d(2): the four taps summed in raster order, divided by 4.
            for (int c = 0; c < C; c++) o[c] = (a[c] + a[C + c] + b[c] + b[C + c]) / 4.0f;
        }
    }
}

void ck_upsample_nearest2x(int N, int H, int W, int C, const float *x, float *y) {
#pragma omp parallel for schedule(static) num_threads(ck_get_threads())
    for (int r = 0; r < N * H; r++) {
        int n = r / H, iy = r % H;
        for (int ix = 0; ix < W; ix++) {
            const float *a = x + (((size_t)n * H + iy) * W + ix) * C;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++)
                    memcpy(y + (((size_t)n * 2 * H + 2 * iy + dy) * 2 * W + 2 * ix + dx) * C, a, (size_t)C * 4);
        }
    }
}

// Keys' cubic convolution kernel with a = −0.5 (PyTorch aten/src/ATen/native/UpSample.h,
// HelperInterpCubic::aa_filter; the same as PIL's bicubic).
static float cubic_aa(float x) {
    const float a = -0.5f;
    x = fabsf(x);
    if (x < 1.0f) return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
    if (x < 2.0f) return (((x - 5.0f) * x + 8.0f) * x - 4.0f) * a;
    return 0.0f;
}

// Taps of output index i for an axis of `in` → `out` samples (align_corners = False): the filter support is 2
// input pixels, widened by the scale when shrinking; weights are normalised to sum to 1. At most `maxw` taps.
static int aa_taps(int in, int out, int i, int maxw, int *first, float *w) {
    float scale = (float)in / (float)out;
    float support = (scale >= 1.0f ? scale : 1.0f) * 2.0f;
    float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
    float center = scale * ((float)i + 0.5f);
    int xmin = (int)(center - support + 0.5f);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5f);
    if (xmax > in) xmax = in;
    int n = CK_MIN(xmax - xmin, maxw);
    float total = 0.0f;
    for (int j = 0; j < n; j++) {
        w[j] = cubic_aa(((float)(j + xmin) - center + 0.5f) * invscale);
        total += w[j];
    }
    for (int j = 0; j < n; j++) w[j] = total != 0.0f ? w[j] / total : 0.0f;
    *first = xmin;
    return n;
}

static int max_taps(int in, int out) {
    float scale = (float)in / (float)out;
    return (int)ceilf((scale >= 1.0f ? scale : 1.0f) * 2.0f) * 2 + 1;
}

size_t ck_resize_bicubic_aa_scratch_size(int H, int W, int Ho, int Wo, int C) {
    size_t tw = (size_t)max_taps(W, Wo), th = (size_t)max_taps(H, Ho);
    // horizontal pass output [H, Wo, C] per image, tap tables for both axes
    return (size_t)H * Wo * C * sizeof(float) + (size_t)(Wo * tw + Ho * th) * sizeof(float) +
           (size_t)(Wo + Ho) * 2 * sizeof(int) + CK_ALIGN;
}

void ck_resize_bicubic_aa_ref(int N, int H, int W, int C, const float *x, int Ho, int Wo, float *y) {
    int tw = max_taps(W, Wo), th = max_taps(H, Ho);
    float wx[tw], wy[th];
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < Ho; oy++) {
            int fy, ny = aa_taps(H, Ho, oy, th, &fy, wy);
            for (int ox = 0; ox < Wo; ox++) {
                int fx, nx = aa_taps(W, Wo, ox, tw, &fx, wx);
                for (int c = 0; c < C; c++) {
                    double s = 0.0;
                    for (int j = 0; j < ny; j++)
                        for (int i = 0; i < nx; i++)
                            s += (double)wy[j] * wx[i] * x[(((size_t)n * H + fy + j) * W + fx + i) * C + c];
                    y[(((size_t)n * Ho + oy) * Wo + ox) * C + c] = (float)s;
                }
            }
        }
}

// Separable: width first, then height (the order of PyTorch's separable_upsample_generic_Nd_kernel_impl).
void ck_resize_bicubic_aa(int N, int H, int W, int C, const float *x, int Ho, int Wo, float *y, void *scratch) {
    int tw = max_taps(W, Wo), th = max_taps(H, Ho);
    float *tmp = (float *)CK_ALIGN_UP((uintptr_t)scratch);
    float *ww = tmp + (size_t)H * Wo * C, *wh = ww + (size_t)Wo * tw;
    int *fw = (int *)(wh + (size_t)Ho * th), *nw = fw + Wo, *fh = nw + Wo, *nh = fh + Ho;
    for (int i = 0; i < Wo; i++) nw[i] = aa_taps(W, Wo, i, tw, &fw[i], ww + (size_t)i * tw);
    for (int i = 0; i < Ho; i++) nh[i] = aa_taps(H, Ho, i, th, &fh[i], wh + (size_t)i * th);
    int nt = ck_get_threads();
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * H * W * C;
        float *yn = y + (size_t)n * Ho * Wo * C;
#pragma omp parallel for schedule(static) num_threads(nt) if ((size_t)H * Wo * C > 65536)
        for (int iy = 0; iy < H; iy++)
            for (int ox = 0; ox < Wo; ox++) {
                float *o = tmp + ((size_t)iy * Wo + ox) * C;
                const float *w = ww + (size_t)ox * tw;
                for (int c = 0; c < C; c++) o[c] = 0.0f;
                for (int j = 0; j < nw[ox]; j++) {
                    const float *a = xn + ((size_t)iy * W + fw[ox] + j) * C;
                    for (int c = 0; c < C; c++) o[c] += a[c] * w[j];
                }
            }
        // Vertical pass: each output row is a weighted sum of whole rows of tmp (Wo·C contiguous floats).
        size_t rowlen = (size_t)Wo * C;
#pragma omp parallel for schedule(static) num_threads(nt) if (Ho * rowlen > 65536)
        for (int oy = 0; oy < Ho; oy++) {
            const float *w = wh + (size_t)oy * th;
            float *o = yn + (size_t)oy * rowlen;
            for (size_t i = 0; i < rowlen; i++) o[i] = 0.0f;
            for (int j = 0; j < nh[oy]; j++) {
                const float *a = tmp + (size_t)(fh[oy] + j) * rowlen;
                float wj = w[j];
                for (size_t i = 0; i < rowlen; i++) o[i] += a[i] * wj;
            }
        }
    }
}

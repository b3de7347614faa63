// GroupNorm (with the scale-shift form and fused SiLU) and LayerNorm. Statistics accumulate in double over
// fixed chunks that are summed in a fixed order, so results do not depend on the thread count.
#include "internal.h"

#include <math.h>
#include <string.h>

// Pixels per statistics chunk (the parallel unit of the first pass).
#define CK_GN_CHUNK 256

// Per-channel form of the whole GroupNorm for image n: y = (x − μ[c])·a[c] + b[c]. Subtracting the mean first
// (rather than folding it into b) avoids cancellation when σ is small next to μ.
static void gn_affine(int C, int G, const double *mean, const double *rstd, const float *gamma, const float *beta,
                      const float *scale, const float *shift, float *mu, float *a, float *b) {
    int cg = C / G;
    for (int c = 0; c < C; c++) {
        int g = c / cg;
        float s = (float)rstd[g] * (gamma ? gamma[c] : 1.0f);
        float t = beta ? beta[c] : 0.0f;
        if (scale) {
            s = s * (1.0f + scale[c]);
            t = t * (1.0f + scale[c]);
        }
        if (shift) t = t + shift[c];
        mu[c] = (float)mean[g];
        a[c] = s;
        b[c] = t;
    }
}

void ck_group_norm_ref(int N, int HW, int C, int G, float eps, const float *x, const float *gamma,
                       const float *beta, const float *scale, const float *shift, int silu, float *y) {
    int cg = C / G;
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * HW * C;
        float *yn = y + (size_t)n * HW * C;
        for (int g = 0; g < G; g++) {
            double s = 0, ss = 0, cnt = (double)HW * cg;
            for (int p = 0; p < HW; p++)
                for (int c = g * cg; c < (g + 1) * cg; c++) s += xn[(size_t)p * C + c];
            double mean = s / cnt;
            for (int p = 0; p < HW; p++)
                for (int c = g * cg; c < (g + 1) * cg; c++) {
                    double d = xn[(size_t)p * C + c] - mean;
                    ss += d * d;
                }
            double rstd = 1.0 / sqrt(ss / cnt + eps);
            for (int p = 0; p < HW; p++)
                for (int c = g * cg; c < (g + 1) * cg; c++) {
                    size_t i = (size_t)p * C + c;
                    double v = (xn[i] - mean) * rstd * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
                    if (scale) v = v * (1.0 + scale[(size_t)n * C + c]);
                    if (shift) v = v + shift[(size_t)n * C + c];
                    float f = (float)v;
                    yn[i] = silu ? f / (1.0f + expf(-f)) : f;
                }
        }
    }
}

// Pixel p of image n as a row of C floats: either a pointer into the tensor or the row assembled in buf.
typedef const float *(*gn_row_fn)(const void *ctx, int n, int p, float *buf);

typedef struct {
    const float *x;
    int HW, C;
} gn_plain;

static const float *gn_plain_row(const void *ctx, int n, int p, float *buf) {
    (void)buf;
    const gn_plain *g = (const gn_plain *)ctx;
    return g->x + ((size_t)n * g->HW + p) * g->C;
}

// The group statistics of image n: mean and 1/sqrt(var + eps) per group, in double.
static void gn_stats(int n, int HW, int C, int G, float eps, gn_row_fn row, const void *ctx, int nt, double *mean,
                     double *rstd) {
    int cg = C / G;
    int chunks = (HW + CK_GN_CHUNK - 1) / CK_GN_CHUNK;
    // Per chunk and group: the mean and M2 = Σ(x − mean)², both in double.
    double *part = (double *)__builtin_alloca((size_t)chunks * G * 2 * sizeof(double));
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int k = 0; k < chunks; k++) {
        // Per chunk: channel sums in float (vectorised across the contiguous channels), the chunk's group
        // means in double, then Σ(x − mean)² per channel in float and per group in double. Chunks are
        // combined with Chan et al.'s pairwise update below, in chunk order.
        double *pk = part + (size_t)k * G * 2;
        int pa = k * CK_GN_CHUNK, p1 = CK_MIN(HW, pa + CK_GN_CHUNK), np = p1 - pa;
        float acc[C], mu[C], buf[C];
        for (int c = 0; c < C; c++) acc[c] = 0.0f;
        for (int p = pa; p < p1; p++) {
            const float *xp = row(ctx, n, p, buf);
            for (int c = 0; c < C; c++) acc[c] += xp[c];
        }
        for (int g = 0; g < G; g++) {
            double s = 0;
            for (int c = g * cg; c < (g + 1) * cg; c++) s += acc[c];
            pk[2 * g] = s / ((double)np * cg);
            for (int c = g * cg; c < (g + 1) * cg; c++) mu[c] = (float)pk[2 * g];
        }
        for (int c = 0; c < C; c++) acc[c] = 0.0f;
        for (int p = pa; p < p1; p++) {
            const float *xp = row(ctx, n, p, buf);
            for (int c = 0; c < C; c++) {
                float d = xp[c] - mu[c];
                acc[c] += d * d;
            }
        }
        for (int g = 0; g < G; g++) {
            double m2 = 0;
            for (int c = g * cg; c < (g + 1) * cg; c++) m2 += acc[c];
            pk[2 * g + 1] = m2;
        }
    }
    for (int g = 0; g < G; g++) {
        // Chan, Golub & LeVeque (1979): merge (count, mean, M2) of chunk k into the running totals.
        double cnt = 0, m = 0, m2 = 0;
        for (int k = 0; k < chunks; k++) {
            double nk = (double)(CK_MIN(HW, (k + 1) * CK_GN_CHUNK) - k * CK_GN_CHUNK) * cg;
            double mk = part[((size_t)k * G + g) * 2], m2k = part[((size_t)k * G + g) * 2 + 1];
            double tot = cnt + nk, d = mk - m;
            m += d * nk / tot;
            m2 += m2k + d * d * cnt * nk / tot;
            cnt = tot;
        }
        mean[g] = m;
        rstd[g] = 1.0 / sqrt(m2 / cnt + eps);
    }
}

void ck_group_norm(int N, int HW, int C, int G, float eps, const float *x, const float *gamma, const float *beta,
                   const float *scale, const float *shift, int silu, float *y) {
    ck_sigmoid_gate_fn silu_gate = ck_dispatch_active()->sigmoid_gate;
    int nt = ck_get_threads();
    int chunks = (HW + CK_GN_CHUNK - 1) / CK_GN_CHUNK;
    double mean[G], rstd[G];
    float mu[C], a[C], b[C];
    gn_plain ctx = {x, HW, C};
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * HW * C;
        float *yn = y + (size_t)n * HW * C;
        gn_stats(n, HW, C, G, eps, gn_plain_row, &ctx, nt, mean, rstd);
        gn_affine(C, G, mean, rstd, gamma, beta, scale ? scale + (size_t)n * C : NULL,
                  shift ? shift + (size_t)n * C : NULL, mu, a, b);
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int k = 0; k < chunks; k++) {
            int p1 = CK_MIN(HW, (k + 1) * CK_GN_CHUNK);
            for (int p = k * CK_GN_CHUNK; p < p1; p++) {
                const float *xp = xn + (size_t)p * C;
                float *yp = yn + (size_t)p * C;
                for (int c = 0; c < C; c++) yp[c] = (xp[c] - mu[c]) * a[c] + b[c];
                if (silu) silu_gate((size_t)C, yp, 1.0f, yp);
            }
        }
    }
}

// The concatenation of up to two f32/f16 operands (+ a per-image channel bias), one pixel at a time.
typedef struct {
    const ck_act *src;
    int nsrc, HW, C;
    const float *cbias;
    ck_f16_to_f32_fn f16_to_f32;
} gn_concat;

void ck_act_load_pixel(const ck_act *src, int nsrc, size_t pixel, ck_f16_to_f32_fn cvt, float *o) {
    for (int s = 0; s < nsrc; s++) {
        int c = src[s].C;
        if (src[s].f16) cvt((size_t)c, (const uint16_t *)src[s].data + pixel * c, o);
        else memcpy(o, (const float *)src[s].data + pixel * c, (size_t)c * sizeof(float));
        o += c;
    }
}

static const float *gn_concat_row(const void *ctx, int n, int p, float *buf) {
    const gn_concat *g = (const gn_concat *)ctx;
    ck_act_load_pixel(g->src, g->nsrc, (size_t)n * g->HW + p, g->f16_to_f32, buf);
    if (g->cbias)
        for (int c = 0; c < g->C; c++) buf[c] = buf[c] + g->cbias[(size_t)n * g->C + c];
    return buf;
}

void ck_group_norm_fold(int N, int HW, const ck_act *src, int nsrc, const float *cbias, int G, float eps,
                        const float *gamma, const float *beta, const float *scale, const float *shift, float *mu,
                        float *a, float *b) {
    int C = 0;
    for (int s = 0; s < nsrc; s++) C += src[s].C;
    gn_concat ctx = {src, nsrc, HW, C, cbias, ck_dispatch_active()->f16_to_f32};
    double mean[G], rstd[G];
    for (int n = 0; n < N; n++) {
        gn_stats(n, HW, C, G, eps, gn_concat_row, &ctx, ck_get_threads(), mean, rstd);
        gn_affine(C, G, mean, rstd, gamma, beta, scale ? scale + (size_t)n * C : NULL,
                  shift ? shift + (size_t)n * C : NULL, mu + (size_t)n * C, a + (size_t)n * C, b + (size_t)n * C);
    }
}

void ck_layer_norm_ref(int rows, int C, float eps, const float *x, int ldx, const float *gamma,
                       const float *beta, float *y, int ldy) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *yr = y + (size_t)r * ldy;
        double s = 0, ss = 0;
        for (int c = 0; c < C; c++) s += xr[c];
        double m = s / C;
        for (int c = 0; c < C; c++) ss += (xr[c] - m) * (xr[c] - m);
        double rstd = 1.0 / sqrt(ss / C + eps);
        for (int c = 0; c < C; c++)
            yr[c] = (float)((xr[c] - m) * rstd * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f));
    }
}

void ck_layer_norm(int rows, int C, float eps, const float *x, int ldx, const float *gamma, const float *beta,
                   float *y, int ldy) {
#pragma omp parallel for schedule(static) num_threads(ck_get_threads()) if (rows > 16)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *yr = y + (size_t)r * ldy;
        double s = 0, ss = 0;
        for (int c = 0; c < C; c++) {
            double v = xr[c];
            s += v;
            ss += v * v;
        }
        double m = s / C, var = ss / C - m * m;
        float rs = (float)(1.0 / sqrt((var > 0 ? var : 0) + eps)), mf = (float)m;
        for (int c = 0; c < C; c++) {
            float v = (xr[c] - mf) * rs;
            yr[c] = (gamma ? v * gamma[c] : v) + (beta ? beta[c] : 0.0f);
        }
    }
}

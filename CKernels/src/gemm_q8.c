// int8 GEMM: weight quantization and packing, row quantization, reference, blocked driver, scalar kernel.
#include "internal.h"

#include <math.h>
#include <string.h>

// Rows of A per parallel unit: a multiple of every path's rows per kernel call (4, 4, 8, 32).
#define CK_Q8_MC 128

int ck_q8_padded_k(int K) { return CK_ROUND_UP(K < 1 ? 1 : K, CK_Q8_KB); }

size_t ck_q8_packed_size(int N, int K) {
    return (size_t)CK_ROUND_UP(N, CK_Q8_NR) * (size_t)ck_q8_padded_k(K);
}

static size_t packed_index(int Kp, int n, int k) { return ck_q8_row_offset(Kp, n) + ck_q8_k_offset(k); }

int32_t ck_q8_store_row(int8_t *row, int K, const int8_t *q) {
    int32_t s = 0;
    for (int k = 0; k < K; k++) {
        row[ck_q8_k_offset(k)] = q[k];
        s += q[k];
    }
    return s;
}

void ck_q8_zero_in_parallel(int8_t *packed, size_t bytes) {
#pragma omp for schedule(static)
    for (long i = 0; i < (long)(bytes / 4096 + 1); i++) {
        size_t lo = (size_t)i * 4096, hi = CK_MIN(bytes, lo + 4096);
        if (lo < hi) memset(packed + lo, 0, hi - lo);
    }
}

void ck_q8_colsum(int N, int K, const int8_t *packed, int32_t *colsum) {
    int Kp = ck_q8_padded_k(K);
    for (int n = 0; n < N; n++) colsum[n] = 0;
    for (int p = 0; p < CK_ROUND_UP(N, CK_Q8_NR) / CK_Q8_NR; p++) {
        const int8_t *panel = packed + (size_t)p * Kp * CK_Q8_NR;
        int nv = CK_MIN(CK_Q8_NR, N - p * CK_Q8_NR);
        for (int g = 0; g < Kp / 4; g++)      // K padding is zero, so whole groups can be summed
            for (int j = 0; j < nv; j++)
                for (int t = 0; t < 4; t++) colsum[p * CK_Q8_NR + j] += panel[(size_t)g * CK_Q8_NR * 4 + j * 4 + t];
    }
}

int8_t ck_q8_packed_at(const int8_t *packed, int K, int n, int k) {
    return packed[packed_index(ck_q8_padded_k(K), n, k)];
}

// One symmetric int8 value: round-half-even of v·inv, clamped to [-127, 127]. lrintf uses the current
// rounding mode (round-to-nearest-even by default), as vcvtps2dq does.
static inline int8_t quantize_one(float v, float inv) {
    long q = lrintf(v * inv);
    return (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
}

// Quantizes the n-th weight row given as a K-long gather function of k.
static void quantize_weight_row(int K, const float *row, size_t stride, int8_t *q, float *scale) {
    float amax = 0.0f;
    for (int k = 0; k < K; k++) amax = fmaxf(amax, fabsf(row[(size_t)k * stride]));
    if (amax == 0.0f) {
        memset(q, 0, (size_t)K);
        *scale = 0.0f;
        return;
    }
    float inv = 127.0f / amax;
    *scale = amax / 127.0f;
    for (int k = 0; k < K; k++) q[k] = quantize_one(row[(size_t)k * stride], inv);
}

void ck_q8_pack(int N, int K, const int8_t *q, int ldq, int8_t *packed, int32_t *colsum) {
    int Kp = ck_q8_padded_k(K);
    memset(packed, 0, ck_q8_packed_size(N, K));
    for (int n = 0; n < N; n++) {
        int32_t s = 0;
        for (int k = 0; k < K; k++) {
            int8_t v = q[(size_t)n * ldq + k];
            packed[packed_index(Kp, n, k)] = v;
            s += v;
        }
        colsum[n] = s;
    }
}

// Quantizes and packs output channels in parallel. Weight row n is W + n·ldw; for a convolution
// (conv_cin > 0) it is [Cin][kh·kw] and is reordered to k = tap·Cin + ci.
static void quantize_pack_rows(int N, int K, const float *W, int ldw, int conv_cin, int conv_kk, int8_t *packed,
                               float *scale, int32_t *colsum) {
    int Kp = ck_q8_padded_k(K);
    size_t total = ck_q8_packed_size(N, K);
#pragma omp parallel num_threads(ck_get_threads())
    {
        int8_t *qrow = (int8_t *)__builtin_alloca((size_t)(K > 0 ? K : 1));
        float *grow = conv_cin > 0 ? (float *)__builtin_alloca((size_t)K * sizeof(float)) : NULL;
        ck_q8_zero_in_parallel(packed, total);
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *src = W + (size_t)n * ldw;
            if (conv_cin > 0) {
                for (int ci = 0; ci < conv_cin; ci++)
                    for (int t = 0; t < conv_kk; t++) grow[t * conv_cin + ci] = src[(size_t)ci * conv_kk + t];
                src = grow;
            }
            quantize_weight_row(K, src, 1, qrow, &scale[n]);
            colsum[n] = ck_q8_store_row(packed + ck_q8_row_offset(Kp, n), K, qrow);
        }
    }
}

void ck_q8_error_stats(int N, int Cin, int kk, const float *W, const int8_t *packed, const float *scale, double *stats,
                       float *maxabs) {
    int K = Cin * kk, Kp = ck_q8_padded_k(K);
    double s_ww = 0, s_dd = 0, s_wq = 0, s_qq = 0;
    float mx = 0;
#pragma omp parallel for schedule(static) num_threads(ck_get_threads()) reduction(+ : s_ww, s_dd, s_wq, s_qq) reduction(max : mx)
    for (int n = 0; n < N; n++) {
        const int8_t *base = packed + ck_q8_row_offset(Kp, n);
        for (int ci = 0; ci < Cin; ci++)
            for (int t = 0; t < kk; t++) {
                int k = t * Cin + ci;  // packed column of source element [n][ci][t]
                double w = W[((size_t)n * Cin + ci) * kk + t];
                double q = (double)base[ck_q8_k_offset(k)] * scale[n];
                double d = w - q;
                s_ww += w * w;
                s_dd += d * d;
                s_wq += w * q;
                s_qq += q * q;
                if ((float)fabs(d) > mx) mx = (float)fabs(d);
            }
    }
    stats[0] = s_ww;
    stats[1] = s_dd;
    stats[2] = s_wq;
    stats[3] = s_qq;
    *maxabs = mx;
}

void ck_q8_quantize_pack(int N, int K, const float *W, int ldw, int8_t *packed, float *scale, int32_t *colsum) {
    quantize_pack_rows(N, K, W, ldw, 0, 0, packed, scale, colsum);
}

void ck_q8_quantize_pack_conv(int Cout, int Cin, int kh, int kw, const float *W, int8_t *packed, float *scale,
                              int32_t *colsum) {
    quantize_pack_rows(Cout, Cin * kh * kw, W, Cin * kh * kw, Cin, kh * kw, packed, scale, colsum);
}

// One activation row, asymmetric: the range [lo, hi] always contains 0 (so zero, e.g. a convolution's padding,
// is exact), inv = 255/(hi−lo) (scalar), zp = round-half-even(−lo·inv) ∈ [0, 255], u = clamp(round-half-even(a·inv) + zp,
// 0, 255); stored as qa = u − 128 (int8) with corr = 128 − zp, so a ≈ sa·(qa + corr). lrintf rounds half-even in
// the default rounding mode, as vcvtps2dq does.
void ck_q8_quantize_row_params(float lo, float hi, float *sa, float *inv, int32_t *zp) {
    if (!(hi > lo)) {           // an all-zero row: u = zp = 128, so qa = 0 and corr = 0
        *sa = 0.0f;
        *inv = 0.0f;
        *zp = 128;
        return;
    }
    *inv = 255.0f / (hi - lo);
    *sa = (hi - lo) / 255.0f;
    long z = lrintf(-lo * *inv);
    *zp = (int32_t)(z < 0 ? 0 : z > 255 ? 255 : z);
}

void ck_q8_quantize_rows_ref(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr) {
    int Kp = ck_q8_padded_k(K);
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * lda;
        int8_t *o = out + (size_t)m * Kp;
        float lo = 0.0f, hi = 0.0f, inv;
        int32_t zp;
        for (int k = 0; k < K; k++) {
            lo = fminf(lo, a[k]);
            hi = fmaxf(hi, a[k]);
        }
        ck_q8_quantize_row_params(lo, hi, &sa[m], &inv, &zp);
        for (int k = 0; k < K; k++) o[k] = ck_q8_quantize_act(a[k], inv, zp);
        memset(o + K, 0, (size_t)(Kp - K));
        corr[m] = 128 - zp;
    }
}

void ck_q8_quantize_rows(int M, int K, const float *A, int lda, int8_t *out, float *sa, int32_t *corr) {
    ck_dispatch_active()->q8_quantize_rows(M, K, A, lda, out, sa, corr);
}

void ck_gemm_q8_s32_ref(int M, int N, int K, const int8_t *qa, const int8_t *packed, int32_t *acc, int ldacc) {
    int Kp = ck_q8_padded_k(K);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            int32_t s = 0;
            for (int k = 0; k < K; k++) s += (int32_t)qa[(size_t)m * Kp + k] * packed[packed_index(Kp, n, k)];
            acc[(size_t)m * ldacc + n] = s;
        }
}

void ck_q8_kernel_ref(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                      int32_t *acc, int ldacc, int nvalid, void *scratch) {
    (void)colsum;
    (void)scratch;
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nvalid; j++) {
            int32_t s = 0;
            for (int g = 0; g < Kp / 4; g++)
                for (int t = 0; t < 4; t++)
                    s += (int32_t)qa[(size_t)r * ldqa + 4 * g + t] * panel[(size_t)g * CK_Q8_NR * 4 + j * 4 + t];
            acc[(size_t)r * ldacc + j] = s;
        }
}

void ck_gemm_q8_block(const ck_dispatch *d, int M, int N, int Kp, const int8_t *qa, int ldqa, const int8_t *packed,
                      const int32_t *colsum, int p0, int p1, int32_t *acc, int ldacc, void *kscratch) {
    ck_q8_kernel kern = d->q8_kernel;
    int mr = d->q8_mr;
    for (int p = p0; p < p1; p++) {
        int n0 = p * CK_Q8_NR;
        const int8_t *panel = packed + (size_t)p * Kp * CK_Q8_NR;
        for (int m = 0; m < M; m += mr)
            kern(CK_MIN(mr, M - m), Kp, qa + (size_t)m * ldqa, ldqa, panel, colsum + n0,
                 acc + (size_t)m * ldacc + (size_t)(p - p0) * CK_Q8_NR, ldacc, CK_MIN(CK_Q8_NR, N - n0), kscratch);
    }
}

void ck_gemm_q8_s32(int M, int N, int K, const int8_t *qa, const int8_t *packed, const int32_t *colsum,
                    int32_t *acc, int ldacc, void *scratch) {
    const ck_dispatch *d = ck_dispatch_active();
    int Kp = ck_q8_padded_k(K);
    int np = CK_ROUND_UP(N, CK_Q8_NR) / CK_Q8_NR;
    int mb = (M + CK_Q8_MC - 1) / CK_Q8_MC;
    size_t per_thread = CK_Q8_KERNEL_SCRATCH(Kp);
    char *s = (char *)CK_ALIGN_UP((uintptr_t)scratch);
#pragma omp parallel for schedule(static) num_threads(ck_get_threads())
    for (int u = 0; u < mb * np; u++) {
        int m0 = (u % mb) * CK_Q8_MC, p = u / mb;
        ck_gemm_q8_block(d, CK_MIN(CK_Q8_MC, M - m0), N, Kp, qa + (size_t)m0 * Kp, Kp, packed, colsum, p, p + 1,
                         acc + (size_t)m0 * ldacc + (size_t)p * CK_Q8_NR, ldacc, s + per_thread * ck_thread_index());
    }
}

void ck_q8_epilogue(int M, int N, const int32_t *acc, int ldacc, const float *sa, const int32_t *corr,
                    const float *scale, const int32_t *colsum, const float *bias, float *C, int ldc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            int32_t s = acc[(size_t)m * ldacc + n] + corr[m] * colsum[n];     // Σ (qa + corr)·q, exact
            C[(size_t)m * ldc + n] = ck_q8_dequantize(s, sa[m], scale[n], bias, n);
        }
}

size_t ck_gemm_q8_scratch_size(int M, int K, int nthreads) {
    int Kp = ck_q8_padded_k(K);
    size_t rows = CK_ALIGN_UP((size_t)CK_ROUND_UP(M, 32) * Kp);          // quantized A (+ AMX row padding)
    size_t sa = 2 * CK_ALIGN_UP((size_t)M * sizeof(float));              // sa[M], corr[M]
    size_t per_thread = CK_ALIGN_UP((size_t)CK_Q8_MC * CK_Q8_NR * 4)      // int32 accumulator tile
                        + CK_Q8_KERNEL_SCRATCH(Kp);     // kernel scratch
    return rows + sa + (size_t)nthreads * per_thread + CK_ALIGN;
}

void ck_gemm_q8_ref(int M, int N, int K, const float *A, int lda, const int8_t *packed, const float *scale,
                    const float *bias, float *C, int ldc) {
    int Kp = ck_q8_padded_k(K);
    int8_t qa[Kp];
    for (int m = 0; m < M; m++) {
        float sa;
        int32_t corr;
        ck_q8_quantize_rows_ref(1, K, A + (size_t)m * lda, lda, qa, &sa, &corr);
        for (int n = 0; n < N; n++) {
            int32_t s = 0;      // Σ (qa + corr)·q directly, without the column sums the fast paths use
            for (int k = 0; k < K; k++) s += ((int32_t)qa[k] + corr) * packed[packed_index(Kp, n, k)];
            C[(size_t)m * ldc + n] = ck_q8_dequantize(s, sa, scale[n], bias, n);
        }
    }
}

void ck_gemm_q8(int M, int N, int K, const float *A, int lda, const int8_t *packed, const float *scale,
                const int32_t *colsum, const float *bias, float *C, int ldc, void *scratch) {
    const ck_dispatch *d = ck_dispatch_active();
    int Kp = ck_q8_padded_k(K);
    char *s = (char *)CK_ALIGN_UP((uintptr_t)scratch);
    int8_t *qa = (int8_t *)s;
    size_t rows = CK_ALIGN_UP((size_t)CK_ROUND_UP(M, 32) * Kp);
    float *sa = (float *)(s + rows);
    int32_t *corr = (int32_t *)(s + rows + CK_ALIGN_UP((size_t)M * sizeof(float)));
    char *threads = s + rows + 2 * CK_ALIGN_UP((size_t)M * sizeof(float));
    size_t acc_bytes = CK_ALIGN_UP((size_t)CK_Q8_MC * CK_Q8_NR * 4);
    size_t per_thread = acc_bytes + CK_Q8_KERNEL_SCRATCH(Kp);
    int nt = ck_get_threads();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int m = 0; m < M; m++) d->q8_quantize_rows(1, K, A + (size_t)m * lda, lda, qa + (size_t)m * Kp, &sa[m], &corr[m]);
    memset(qa + (size_t)M * Kp, 0, (size_t)(CK_ROUND_UP(M, 32) - M) * Kp);

    int np = CK_ROUND_UP(N, CK_Q8_NR) / CK_Q8_NR;
    int mb = (M + CK_Q8_MC - 1) / CK_Q8_MC;
    // Unit u = (panel u / mb, M block u % mb): panel-major, so each thread's contiguous range of units covers
    // every M block (balanced when the last block is short) and reuses each panel across the M blocks.
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int u = 0; u < mb * np; u++) {
        int m0 = (u % mb) * CK_Q8_MC, p = u / mb, n0 = p * CK_Q8_NR;
        int rows_u = CK_MIN(CK_Q8_MC, M - m0);
        char *ts = threads + per_thread * ck_thread_index();
        int32_t *acc = (int32_t *)ts;
        ck_gemm_q8_block(d, rows_u, N, Kp, qa + (size_t)m0 * Kp, Kp, packed, colsum, p, p + 1, acc, CK_Q8_NR,
                         ts + acc_bytes);
        ck_q8_epilogue(rows_u, CK_MIN(CK_Q8_NR, N - n0), acc, CK_Q8_NR, sa + m0, corr + m0, scale + n0, colsum + n0,
                       bias ? bias + n0 : NULL, C + (size_t)m0 * ldc + n0, ldc);
    }
}

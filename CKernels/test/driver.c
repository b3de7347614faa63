// The kernels' test driver in C: every dispatched kernel on every path this CPU can run, against the scalar twins, on
// odd shapes and with 1, 2 and 3 threads — the cases and named tolerances of the Swift kernel tests (Tests/UnCLIPTests:
// GemmTests, ConvTests, FusedConvTests, WinogradTests, NormAttentionTests, ConvertTests), in C so that it runs where
// the Swift suite cannot: under qemu-aarch64 for the NEON, dot-product and i8mm paths (scripts/test-aarch64.sh). It
// builds and runs natively on x86 too (the AVX2/AVX-512/AMX paths), so it cannot rot.
//   cc -std=c11 -O2 -ffp-contract=off -fopenmp -ICKernels/include CKernels/src/*.c CKernels/test/driver.c -lm
//   ./a.out [path ...]            (default: every path the CPU runs; a named path it cannot run is a failure)
//   ./a.out --best                (only prints the best path the CPU runs)
// Prints one line per path with its pass and failure counts; exits 1 on any failure.
#define _POSIX_C_SOURCE 200112L
#include "ckernels.h"
#include "ckernels_testing.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Named tolerances, relative to the output's largest magnitude (rel_max_error), as Tests/UnCLIPTests/TestSupport.swift.
#define TOL_GEMM_F32 2e-5f     // FMA chains and a different summation order against the scalar reference
#define TOL_ATTENTION 2e-5f    // the vector exp (~2 ulp) and the online softmax against the two-pass reference
#define TOL_TORCH_F32 1e-5f    // norms and resampling (the same C on every path)
#define TOL_ACTIVATION 1e-6f   // vector exp-based activations against expf
#define TOL_SILU_INT8 2e-3f    // fused SiLU before int8 rounding: a vector-exp ulp can flip one int8 step of a row

static const char *g_path = "";
static int g_pass, g_fail;

static void check(int ok, const char *what) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    if (g_fail <= 40) printf("  FAIL [%s] %s\n", g_path, what);
}

// The Swift tests' generator (TestRNG): xorshift64* with the same seeding.
typedef struct { uint64_t s; } rng_t;
static rng_t rng_seed(uint64_t seed) { return (rng_t){seed * 0x9E3779B97F4A7C15ull | 1}; }
static uint64_t rng_next(rng_t *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}
static float rng_float(rng_t *r, float scale) { return ((float)(rng_next(r) >> 40) / (float)(1 << 24) * 2 - 1) * scale; }
static float *rand_array(rng_t *r, size_t n, float scale) {
    float *a = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = rng_float(r, scale);
    return a;
}
static void *alloc64(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) abort();
    return p;
}

// max |a − b| / max(max |b|, 1); NaN anywhere in a is an infinite error.
static float rel_max_error(const float *a, const float *b, size_t n) {
    float err = 0, mag = 1;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) != isnan(b[i])) return INFINITY;
        err = fmaxf(err, fabsf(a[i] - b[i]));
        mag = fmaxf(mag, fabsf(b[i]));
    }
    return err / mag;
}

static const int k_threads[3] = {1, 2, 3};

// ---------------------------------------------------------------------------------------------------------------
// GEMM
// ---------------------------------------------------------------------------------------------------------------
static const int k_gemm_shapes[][3] = {{1, 1, 1}, {5, 33, 17}, {13, 70, 129}, {37, 31, 300}, {200, 65, 257}, {3, 96, 64}, {6, 40, 90}};
#define N_GEMM_SHAPES (int)(sizeof k_gemm_shapes / sizeof k_gemm_shapes[0])

static void test_gemm_f32(void) {
    char what[160];
    for (int si = 0; si < N_GEMM_SHAPES; si++) {
        int M = k_gemm_shapes[si][0], N = k_gemm_shapes[si][1], K = k_gemm_shapes[si][2], lda = K + 3;
        rng_t r = rng_seed(100 + si);
        float *a = rand_array(&r, (size_t)M * lda, 1), *w = rand_array(&r, (size_t)N * K, 1), *bias = rand_array(&r, N, 1);
        float *ref = malloc(sizeof(float) * M * N), *c = malloc(sizeof(float) * M * N), *first = malloc(sizeof(float) * M * N);
        ck_gemm_f32_ref(M, N, K, a, lda, w, K, bias, ref, N);
        float *packed = alloc64(ck_gemm_f32_packed_size(N, K));
        ck_gemm_f32_pack(N, K, w, K, packed);
        for (int t = 0; t < 3; t++) {
            ck_set_threads(k_threads[t]);
            for (int i = 0; i < M * N; i++) c[i] = NAN;
            ck_gemm_f32(M, N, K, a, lda, packed, bias, c, N);
            snprintf(what, sizeof what, "f32 GEMM %dx%dx%d threads %d: rel error %g", M, N, K, k_threads[t], rel_max_error(c, ref, (size_t)M * N));
            check(rel_max_error(c, ref, (size_t)M * N) <= TOL_GEMM_F32, what);
            if (t == 0) memcpy(first, c, sizeof(float) * M * N);
            else {
                snprintf(what, sizeof what, "f32 GEMM %dx%dx%d: result changed with %d threads", M, N, K, k_threads[t]);
                check(memcmp(first, c, sizeof(float) * M * N) == 0, what);
            }
        }
        free(a); free(w); free(bias); free(ref); free(c); free(first); free(packed);
    }
}

static void test_gemm_q8_s32(void) {
    char what[160];
    for (int si = 0; si < N_GEMM_SHAPES; si++) {
        int M = k_gemm_shapes[si][0], N = k_gemm_shapes[si][1], K = k_gemm_shapes[si][2], Kp = ck_q8_padded_k(K);
        rng_t r = rng_seed(200 + si);
        // full-range operands (activations −128…127, weights −127…127) make any lost bit visible
        int8_t *qa = calloc((size_t)M * Kp, 1), *q = malloc((size_t)N * K);
        for (int m = 0; m < M; m++)
            for (int k = 0; k < K; k++) qa[(size_t)m * Kp + k] = (int8_t)((int)(rng_next(&r) % 256) - 128);
        for (int i = 0; i < N * K; i++) q[i] = (int8_t)((int)(rng_next(&r) % 255) - 127);
        int8_t *packed = alloc64(ck_q8_packed_size(N, K));
        int32_t *colsum = malloc(sizeof(int32_t) * N), *ref = malloc(sizeof(int32_t) * M * N), *acc = malloc(sizeof(int32_t) * M * N);
        ck_q8_pack(N, K, q, K, packed, colsum);
        ck_gemm_q8_s32_ref(M, N, K, qa, packed, ref, N);
        void *scratch = alloc64(ck_gemm_q8_scratch_size(M, K, 3));
        for (int t = 0; t < 3; t++) {
            ck_set_threads(k_threads[t]);
            for (int i = 0; i < M * N; i++) acc[i] = -1;
            ck_gemm_q8_s32(M, N, K, qa, packed, colsum, acc, N, scratch);
            snprintf(what, sizeof what, "int8 GEMM int32 sums %dx%dx%d threads %d differ from the reference", M, N, K, k_threads[t]);
            check(memcmp(acc, ref, sizeof(int32_t) * M * N) == 0, what);
        }
        free(qa); free(q); free(packed); free(colsum); free(ref); free(acc); free(scratch);
    }
}

static void test_q8_quantize_rows(void) {
    char what[160];
    static const int ks[] = {1, 15, 16, 17, 100, 333};
    rng_t r = rng_seed(7);
    for (int ki = 0; ki < 6; ki++) {
        int k = ks[ki], kp = ck_q8_padded_k(k);
        float *a = rand_array(&r, 3 * (size_t)k, 5);
        for (int i = k; i < 2 * k; i++) a[i] = fabsf(a[i]) + 1;   // row 1 one-sided and away from 0, as after SiLU
        int8_t *qref = malloc(3 * (size_t)kp), *qv = malloc(3 * (size_t)kp);
        float sref[3], s[3];
        int32_t cref[3], c[3];
        memset(qref, 1, 3 * (size_t)kp);
        ck_q8_quantize_rows_ref(3, k, a, k, qref, sref, cref);
        memset(qv, 1, 3 * (size_t)kp);
        ck_q8_quantize_rows(3, k, a, k, qv, s, c);
        snprintf(what, sizeof what, "row quantization k %d: bits differ from the reference", k);
        check(memcmp(qv, qref, 3 * (size_t)kp) == 0 && memcmp(s, sref, sizeof s) == 0 && memcmp(c, cref, sizeof c) == 0, what);
        free(a); free(qref); free(qv);
    }
    // exact ties round half to even: the range [−1, 254] gives 1 level per unit and zero point 1
    float ties[20] = {-1, 2.5f, 3.5f, -0.5f, 253.5f, 254};
    int8_t q[64];
    float s;
    int32_t c;
    ck_q8_quantize_rows(1, 20, ties, 20, q, &s, &c);
    static const int want[6] = {0, 3, 5, 1, 255, 255};
    int ok = s == 1.0f && c == 127;
    for (int i = 0; i < 6; i++) ok &= (int)q[i] + 128 == want[i];
    check(ok, "row quantization: ties do not round half to even");
    float zeros[20] = {0};
    ck_q8_quantize_rows(1, 20, zeros, 20, q, &s, &c);
    ok = s == 0.0f && c == 0;
    for (int i = 0; i < 64; i++) ok &= q[i] == 0;
    check(ok, "row quantization: a zero row is not zeros with scale 0");
}

static void test_gemm_q8(void) {
    char what[160];
    for (int si = 0; si < N_GEMM_SHAPES; si++)
        for (int one_sided = 0; one_sided < 2; one_sided++) {
            int M = k_gemm_shapes[si][0], N = k_gemm_shapes[si][1], K = k_gemm_shapes[si][2];
            rng_t r = rng_seed(300 + si);
            float *a = rand_array(&r, (size_t)M * K, 1), *w = rand_array(&r, (size_t)N * K, 0.2f), *bias = rand_array(&r, N, 1);
            if (one_sided)
                for (int i = 0; i < M * K; i++) a[i] = a[i] * 2 + 2.2f;   // in [0.2, 4.2]
            int8_t *packed = alloc64(ck_q8_packed_size(N, K));
            float *scale = malloc(sizeof(float) * N), *ref = malloc(sizeof(float) * M * N), *c = malloc(sizeof(float) * M * N);
            int32_t *colsum = malloc(sizeof(int32_t) * N);
            ck_q8_quantize_pack(N, K, w, K, packed, scale, colsum);
            ck_gemm_q8_ref(M, N, K, a, K, packed, scale, bias, ref, N);
            void *scratch = alloc64(ck_gemm_q8_scratch_size(M, K, 3));
            for (int t = 0; t < 3; t++) {
                ck_set_threads(k_threads[t]);
                for (int i = 0; i < M * N; i++) c[i] = NAN;
                ck_gemm_q8(M, N, K, a, K, packed, scale, colsum, bias, c, N, scratch);
                snprintf(what, sizeof what, "int8 linear %dx%dx%d one-sided %d threads %d is not the reference's bits", M, N, K, one_sided, k_threads[t]);
                check(memcmp(c, ref, sizeof(float) * M * N) == 0, what);
            }
            free(a); free(w); free(bias); free(packed); free(scale); free(ref); free(c); free(colsum); free(scratch);
        }
}

// ---------------------------------------------------------------------------------------------------------------
// Convolution: direct f32 and int8, fused int8, Winograd int8
// ---------------------------------------------------------------------------------------------------------------
static const int k_conv_cases[][8] = {
    // n, h, w, cin, cout, k, stride, pad
    {2, 5, 7, 13, 35, 3, 1, 1}, {1, 1, 1, 40, 33, 1, 1, 0}, {3, 1, 1, 7, 5, 3, 1, 1},
    {1, 28, 28, 3, 17, 14, 14, 0}, {2, 17, 19, 24, 70, 3, 1, 1}, {1, 9, 11, 64, 32, 1, 1, 0},
};

static ck_conv2d_params conv_params(const int *c) {
    ck_conv2d_params p = {c[0], c[1], c[2], c[3], c[4], c[5], c[5], c[6], c[7], 0, 0};
    if (ck_conv2d_shape(&p) != 0) abort();
    return p;
}

static void test_conv(void) {
    char what[160];
    for (int ci = 0; ci < 6; ci++) {
        const int *cc = k_conv_cases[ci];
        ck_conv2d_params p = conv_params(cc);
        size_t nx = (size_t)p.N * p.H * p.W * p.Cin, nw = (size_t)p.Cout * p.Cin * p.kh * p.kw, ny = (size_t)p.N * p.Ho * p.Wo * p.Cout;
        int K = p.Cin * p.kh * p.kw;
        for (int one_sided = 0; one_sided < 2; one_sided++) {
            rng_t r = rng_seed((one_sided ? 500 : 400) + ci);
            float *x = rand_array(&r, nx, 1), *w = rand_array(&r, nw, 0.3f), *b = rand_array(&r, p.Cout, 1);
            if (one_sided)
                for (size_t i = 0; i < nx; i++) x[i] = x[i] * 2 + 2.2f;
            float *ref = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny), *first = malloc(sizeof(float) * ny);
            if (!one_sided) {   // f32
                ck_conv2d_f32_ref(&p, x, w, b, ref);
                float *packed = alloc64(ck_gemm_f32_packed_size(p.Cout, K));
                ck_gemm_f32_pack_conv(p.Cout, p.Cin, p.kh, p.kw, w, packed);
                void *scratch = alloc64(ck_conv2d_f32_scratch_size(&p, 3));
                for (int t = 0; t < 3; t++) {
                    ck_set_threads(k_threads[t]);
                    for (size_t i = 0; i < ny; i++) y[i] = NAN;
                    ck_conv2d_f32(&p, x, packed, b, y, scratch);
                    snprintf(what, sizeof what, "f32 conv case %d threads %d: rel error %g", ci, k_threads[t], rel_max_error(y, ref, ny));
                    check(rel_max_error(y, ref, ny) <= TOL_GEMM_F32, what);
                    if (t == 0) memcpy(first, y, sizeof(float) * ny);
                    else {
                        snprintf(what, sizeof what, "f32 conv case %d: result changed with %d threads", ci, k_threads[t]);
                        check(memcmp(first, y, sizeof(float) * ny) == 0, what);
                    }
                }
                free(packed); free(scratch);
            }
            // int8
            int8_t *q = alloc64(ck_q8_packed_size(p.Cout, K));
            float *scale = malloc(sizeof(float) * p.Cout);
            int32_t *colsum = malloc(sizeof(int32_t) * p.Cout);
            ck_q8_quantize_pack_conv(p.Cout, p.Cin, p.kh, p.kw, w, q, scale, colsum);
            ck_conv2d_q8_ref(&p, x, q, scale, b, ref);
            void *scratch = alloc64(ck_conv2d_q8_scratch_size(&p, 3));
            for (int t = 0; t < 3; t++) {
                ck_set_threads(k_threads[t]);
                for (size_t i = 0; i < ny; i++) y[i] = NAN;
                ck_conv2d_q8(&p, x, q, scale, colsum, b, y, scratch);
                snprintf(what, sizeof what, "int8 conv case %d one-sided %d threads %d is not the reference's bits", ci, one_sided, k_threads[t]);
                check(memcmp(y, ref, sizeof(float) * ny) == 0, what);
            }
            free(x); free(w); free(b); free(ref); free(y); free(first); free(q); free(scale); free(colsum); free(scratch);
        }
    }
}

// The fused cases of FusedConvTests: operand channels, size, Cout, k, GroupNorm, channel bias, SiLU, resample, residual
// resample (−1: none).
typedef struct { int split[2], nsrc, h, w, cout, k, norm, bias, silu, resample, residual; } fused_case;
static const fused_case k_fused[] = {
    {{10, 14}, 2, 9, 13, 35, 3, 1, 0, 1, CK_RESAMPLE_NONE, CK_RESAMPLE_NONE},
    {{24, 0}, 1, 11, 12, 40, 3, 1, 1, 1, CK_RESAMPLE_NONE, -1},
    {{16, 0}, 1, 5, 7, 16, 3, 1, 0, 1, CK_RESAMPLE_UP, CK_RESAMPLE_UP},
    {{16, 0}, 1, 10, 14, 16, 3, 1, 0, 1, CK_RESAMPLE_DOWN, CK_RESAMPLE_DOWN},
    {{7, 33}, 2, 6, 30, 33, 1, 0, 0, 0, CK_RESAMPLE_NONE, -1},
    {{12, 0}, 1, 9, 7, 5, 1, 0, 0, 0, CK_RESAMPLE_DOWN, -1},
};

static uint16_t *to_f16(const float *x, size_t n) {
    uint16_t *h = malloc(2 * (n ? n : 1));
    ck_f32_to_f16_ref(n, x, h);
    return h;
}

static void test_fused_and_winograd(int isa) {
    char what[200];
    for (int ci = 0; ci < (int)(sizeof k_fused / sizeof k_fused[0]); ci++) {
        const fused_case *c = &k_fused[ci];
        const int N = 2, cin = c->split[0] + c->split[1], G = 4;
        rng_t r = rng_seed(80 + ci);
        float *src[2] = {NULL, NULL};
        for (int s = 0; s < c->nsrc; s++) {
            src[s] = rand_array(&r, (size_t)N * c->h * c->w * c->split[s], (float)(s + 1));
            for (size_t i = 0; i < (size_t)N * c->h * c->w * c->split[s]; i++) src[s][i] += 0.2f;
        }
        int ho = c->resample == CK_RESAMPLE_UP ? 2 * c->h : c->resample == CK_RESAMPLE_DOWN ? c->h / 2 : c->h;
        int wo = c->resample == CK_RESAMPLE_UP ? 2 * c->w : c->resample == CK_RESAMPLE_DOWN ? c->w / 2 : c->w;
        float *residual = NULL;
        int rh = ho, rw = wo;
        if (c->residual >= 0) {
            rh = c->residual == CK_RESAMPLE_UP ? ho / 2 : c->residual == CK_RESAMPLE_DOWN ? 2 * ho : ho;
            rw = c->residual == CK_RESAMPLE_UP ? wo / 2 : c->residual == CK_RESAMPLE_DOWN ? 2 * wo : wo;
            residual = rand_array(&r, (size_t)N * rh * rw * c->cout, 1);
        }
        float *cbias = rand_array(&r, (size_t)N * cin, 1), *gamma = rand_array(&r, cin, 1), *beta = rand_array(&r, cin, 1);
        for (int i = 0; i < cin; i++) gamma[i] += 1;
        float *w = rand_array(&r, (size_t)c->cout * cin * c->k * c->k, 0.3f), *bias = rand_array(&r, c->cout, 1);
        for (int f16 = 0; f16 < 2; f16++) {
            // f16: the first operand, the residual and the output in binary16, as the engine's small-memory plan
            uint16_t *src0h = f16 ? to_f16(src[0], (size_t)N * c->h * c->w * c->split[0]) : NULL;
            uint16_t *resh = f16 && residual ? to_f16(residual, (size_t)N * rh * rw * c->cout) : NULL;
            ck_conv_input in;
            memset(&in, 0, sizeof in);
            in.nsrc = c->nsrc;
            in.src[0] = (ck_act){f16 ? (const void *)src0h : src[0], c->split[0], f16};
            if (c->nsrc == 2) in.src[1] = (ck_act){src[1], c->split[1], 0};
            in.H = c->h;
            in.W = c->w;
            in.cbias = c->bias ? cbias : NULL;
            float *mu = malloc(sizeof(float) * N * cin), *fa = malloc(sizeof(float) * N * cin), *fb = malloc(sizeof(float) * N * cin);
            if (c->norm) {
                ck_group_norm_fold(N, c->h * c->w, in.src, in.nsrc, in.cbias, G, 1e-5f, gamma, beta, NULL, NULL, mu, fa, fb);
                in.mu = mu;
                in.a = fa;
                in.b = fb;
            }
            in.silu = c->silu;
            in.resample = c->resample;
            ck_conv_residual res = {f16 ? (const void *)resh : residual, f16, c->residual >= 0 ? c->residual : 0};
            const ck_conv_residual *rp = residual ? &res : NULL;
            ck_conv2d_params p = {N, ho, wo, cin, c->cout, c->k, c->k, 1, c->k / 2, 0, 0};
            if (ck_conv2d_shape(&p) != 0) abort();
            size_t ny = (size_t)N * p.Ho * p.Wo * c->cout;
            int K = cin * c->k * c->k;
            int8_t *q = alloc64(ck_q8_packed_size(c->cout, K));
            float *scale = malloc(sizeof(float) * c->cout);
            int32_t *colsum = malloc(sizeof(int32_t) * c->cout);
            ck_q8_quantize_pack_conv(c->cout, cin, c->k, c->k, w, q, scale, colsum);
            void *yref = malloc(4 * ny), *y = malloc(4 * ny);
            float *fref = malloc(4 * ny), *fy = malloc(4 * ny), *first = malloc(4 * ny);
            // exact where no vector exp runs (the scalar path, or no SiLU); else within one int8 step's effect
            float tol = (isa == CK_ISA_REF || !c->silu) ? 0.0f : TOL_SILU_INT8;
            for (int algo = 0; algo < 2; algo++) {
                if (algo == 1 && (c->k != 3 || !ck_conv2d_winograd_applies(&p))) continue;
                int16_t *wq = NULL;
                float *wscale = NULL;
                int32_t *wcolsum = NULL;
                void *scratch;
                if (algo == 0) {
                    ck_conv2d_q8_fused_ref(&p, &in, q, scale, bias, rp, yref, f16);
                    scratch = alloc64(ck_conv2d_q8_fused_scratch_size(&p, &in, 3));
                } else {
                    wq = alloc64(ck_winograd_packed_size(c->cout, cin));
                    wscale = malloc(sizeof(float) * c->cout);
                    wcolsum = malloc(sizeof(int32_t) * 16 * c->cout);
                    ck_winograd_pack(c->cout, cin, q, scale, wq, wscale, wcolsum);
                    ck_conv2d_q8_winograd_ref(&p, &in, wq, wscale, bias, rp, yref, f16);
                    scratch = alloc64(ck_conv2d_q8_winograd_scratch_size(&p, &in, 3));
                }
                if (f16) ck_f16_to_f32_ref(ny, yref, fref);
                else memcpy(fref, yref, 4 * ny);
                for (int t = 0; t < 3; t++) {
                    ck_set_threads(k_threads[t]);
                    memset(y, 0xff, 4 * ny);
                    if (algo == 0) ck_conv2d_q8_fused(&p, &in, q, scale, colsum, bias, rp, y, f16, scratch);
                    else ck_conv2d_q8_winograd(&p, &in, wq, wscale, wcolsum, bias, rp, y, f16, scratch);
                    if (f16) ck_f16_to_f32_ref(ny, y, fy);
                    else memcpy(fy, y, 4 * ny);
                    float e = rel_max_error(fy, fref, ny);
                    snprintf(what, sizeof what, "%s conv case %d f16 %d threads %d: rel error %g (allowed %g)",
                             algo ? "Winograd" : "fused", ci, f16, k_threads[t], e, tol);
                    check(tol == 0.0f ? memcmp(fy, fref, 4 * ny) == 0 : e <= tol, what);
                    if (algo == 1) {
                        // the streamed form, one CK_Q8_NR chunk at a time (two or more chunks, the last partial
                        // where Cout is not a multiple): the same bits as the whole transform
                        void *ss = alloc64(ck_conv2d_q8_winograd_streamed_scratch_size(&p, &in, CK_Q8_NR, 3));
                        void *ys = malloc(4 * ny);
                        memset(ys, 0xff, 4 * ny);
                        ck_conv2d_q8_winograd_streamed(&p, &in, q, scale, bias, rp, ys, f16, CK_Q8_NR, ss);
                        snprintf(what, sizeof what, "streamed Winograd conv case %d f16 %d threads %d: differs from the whole transform",
                                 ci, f16, k_threads[t]);
                        check(memcmp(ys, y, (f16 ? 2 : 4) * ny) == 0, what);
                        free(ss); free(ys);
                    }
                    if (t == 0) memcpy(first, fy, 4 * ny);
                    else {
                        snprintf(what, sizeof what, "%s conv case %d f16 %d: result changed with %d threads", algo ? "Winograd" : "fused", ci, f16, k_threads[t]);
                        check(memcmp(first, fy, 4 * ny) == 0, what);
                    }
                }
                free(scratch); free(wq); free(wscale); free(wcolsum);
            }
            free(src0h); free(resh); free(mu); free(fa); free(fb); free(q); free(scale); free(colsum);
            free(yref); free(y); free(fref); free(fy); free(first);
        }
        free(src[0]); free(src[1]); free(residual); free(cbias); free(gamma); free(beta); free(w); free(bias);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Attention, norms, activations, resampling, number formats
// ---------------------------------------------------------------------------------------------------------------
static void test_attention(void) {
    char what[160];
    // b, h, d, lq, l0, l1, mask (0 none, 1 key padding, 2 full), causal — NormAttentionTests' cases
    static const int cases[][8] = {
        {2, 3, 64, 37, 9, 37, 1, 0}, {1, 2, 64, 19, 19, 0, 0, 1}, {2, 1, 64, 17, 17, 0, 2, 0}, {1, 2, 40, 5, 3, 6, 1, 0},
        {1, 1, 12, 1, 1, 0, 0, 0}, {1, 2, 64, 150, 81, 150, 1, 0}, {1, 1, 64, 77, 77, 0, 0, 1}, {1, 2, 6, 9, 4, 3, 1, 0},
    };
    for (int ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++) {
        const int *c = cases[ci];
        int B = c[0], H = c[1], D = c[2], lq = c[3], l0 = c[4], l1 = c[5], hd = H * D, lk = l0 + l1;
        rng_t r = rng_seed(700 + ci);
        float *q = rand_array(&r, (size_t)B * lq * hd, 2), *k0 = rand_array(&r, (size_t)B * l0 * hd, 2), *v0 = rand_array(&r, (size_t)B * l0 * hd, 1);
        float *k1 = rand_array(&r, (size_t)B * l1 * hd, 2), *v1 = rand_array(&r, (size_t)B * l1 * hd, 1);
        float *mask = NULL;
        if (c[6] == 1) {
            mask = malloc(sizeof(float) * B * lk);
            for (int i = 0; i < B * lk; i++) mask[i] = i % 7 == 3 ? -10000.0f : 0.0f;
        } else if (c[6] == 2) {
            mask = malloc(sizeof(float) * B * lq * lk);
            for (int i = 0; i < B * lq * lk; i++) mask[i] = (i % lk) > (i / lk) % lq ? -10000.0f : rng_float(&r, 0.5f);
        }
        ck_attention_params p;
        memset(&p, 0, sizeof p);
        p.B = B; p.H = H; p.D = D; p.Lq = lq; p.L0 = l0; p.L1 = l1;
        p.scale = 1.0f / sqrtf((float)D);
        p.q = q; p.q_bs = (long)lq * hd; p.ldq = hd;
        p.k0 = k0; p.v0 = v0; p.kv0_bs = (long)l0 * hd; p.ldkv0 = hd;
        if (l1 > 0) { p.k1 = k1; p.v1 = v1; p.kv1_bs = (long)l1 * hd; p.ldkv1 = hd; }
        if (mask) { p.mask = mask; p.mask_bs = c[6] == 1 ? lk : (long)lq * lk; p.mask_qs = c[6] == 1 ? 0 : lk; }
        p.causal = c[7];
        p.o_bs = (long)lq * hd; p.ldo = hd;
        size_t no = (size_t)B * lq * hd;
        float *ref = malloc(4 * no), *o = malloc(4 * no), *first = malloc(4 * no);
        p.o = ref;
        ck_attention_ref(&p);
        void *scratch = alloc64(ck_attention_scratch_size(&p, 3));
        p.o = o;
        for (int t = 0; t < 3; t++) {
            ck_set_threads(k_threads[t]);
            for (size_t i = 0; i < no; i++) o[i] = NAN;
            ck_attention(&p, scratch);
            snprintf(what, sizeof what, "attention case %d (D %d) threads %d: rel error %g", ci, D, k_threads[t], rel_max_error(o, ref, no));
            check(rel_max_error(o, ref, no) <= TOL_ATTENTION, what);
            if (t == 0) memcpy(first, o, 4 * no);
            else {
                snprintf(what, sizeof what, "attention case %d: result changed with %d threads", ci, k_threads[t]);
                check(memcmp(first, o, 4 * no) == 0, what);
            }
        }
        free(q); free(k0); free(v0); free(k1); free(v1); free(mask); free(ref); free(o); free(first); free(scratch);
    }
}

static void test_norms_and_resampling(void) {
    char what[160];
    static const int gn[][4] = {{1, 1, 32, 32}, {2, 37, 96, 32}, {1, 300, 40, 8}, {3, 5, 64, 1}};
    for (int ci = 0; ci < 4; ci++) {
        int n = gn[ci][0], hw = gn[ci][1], c = gn[ci][2], g = gn[ci][3];
        size_t nx = (size_t)n * hw * c;
        rng_t r = rng_seed(600 + ci);
        float *x = rand_array(&r, nx, 3), *gamma = rand_array(&r, c, 1), *beta = rand_array(&r, c, 1);
        for (size_t i = 0; i < nx; i++) x[i] += 2;
        float *scale = rand_array(&r, (size_t)n * c, 0.5f), *shift = rand_array(&r, (size_t)n * c, 1);
        float *ref = malloc(4 * nx), *y = malloc(4 * nx);
        for (int v = 0; v < 4; v++) {
            int use_scale = v & 1, silu = v >> 1;
            ck_group_norm_ref(n, hw, c, g, 1e-5f, x, gamma, beta, use_scale ? scale : NULL, use_scale ? shift : NULL, silu, ref);
            for (int t = 0; t < 3; t++) {
                ck_set_threads(k_threads[t]);
                ck_group_norm(n, hw, c, g, 1e-5f, x, gamma, beta, use_scale ? scale : NULL, use_scale ? shift : NULL, silu, y);
                snprintf(what, sizeof what, "group norm case %d scale %d silu %d threads %d: rel error %g", ci, use_scale, silu, k_threads[t], rel_max_error(y, ref, nx));
                check(rel_max_error(y, ref, nx) <= TOL_TORCH_F32, what);
            }
        }
        free(x); free(gamma); free(beta); free(scale); free(shift); free(ref); free(y);
    }
    {
        rng_t r = rng_seed(11);
        int rows = 5, c = 77, ld = 80;
        float *x = rand_array(&r, (size_t)rows * ld, 4), *gamma = rand_array(&r, c, 1), *beta = rand_array(&r, c, 1);
        float ref[5 * 77], y[5 * 77];
        ck_layer_norm_ref(rows, c, 1e-5f, x, ld, gamma, beta, ref, c);
        ck_layer_norm(rows, c, 1e-5f, x, ld, gamma, beta, y, c);
        check(rel_max_error(y, ref, (size_t)rows * c) <= TOL_TORCH_F32, "layer norm with a row stride");
        free(x); free(gamma); free(beta);
    }
    static const int rs[][5] = {{8, 8, 32, 32, 3}, {16, 12, 5, 7, 4}, {1, 1, 3, 2, 2}, {64, 64, 256, 256, 3}};
    for (int ci = 0; ci < 4; ci++) {
        int h = rs[ci][0], w = rs[ci][1], ho = rs[ci][2], wo = rs[ci][3], c = rs[ci][4];
        rng_t r = rng_seed(800 + ci);
        float *x = rand_array(&r, 2 * (size_t)h * w * c, 1);
        size_t ny = 2 * (size_t)ho * wo * c;
        float *ref = malloc(4 * ny), *y = malloc(4 * ny);
        ck_resize_bicubic_aa_ref(2, h, w, c, x, ho, wo, ref);
        void *scratch = alloc64(ck_resize_bicubic_aa_scratch_size(h, w, ho, wo, c));
        for (int t = 0; t < 3; t++) {
            ck_set_threads(k_threads[t]);
            ck_resize_bicubic_aa(2, h, w, c, x, ho, wo, y, scratch);
            snprintf(what, sizeof what, "bicubic %dx%d → %dx%d threads %d: rel error %g", h, w, ho, wo, k_threads[t], rel_max_error(y, ref, ny));
            check(rel_max_error(y, ref, ny) <= TOL_TORCH_F32, what);
        }
        free(x); free(ref); free(y); free(scratch);
    }
}

static void test_activations(void) {
    char what[160];
    rng_t r = rng_seed(12);
    enum { N = 1000 + 9 + 40000 };   // past one parallel chunk (16 Ki values)
    float *x = malloc(4 * N), *s = malloc(4 * N), *g = malloc(4 * N);
    for (int i = 0; i < 1000; i++) x[i] = rng_float(&r, 12);
    static const float special[9] = {0, -0.0f, 1e-30f, -90, 90, -200, 200, 88.5f, -87.5f};
    memcpy(x + 1000, special, sizeof special);
    for (int i = 1009; i < N; i++) x[i] = rng_float(&r, 30);
    for (int t = 0; t < 3; t++) {
        ck_set_threads(k_threads[t]);
        ck_silu(N, x, s);
        ck_quick_gelu(N, x, g);
        int bad_s = -1, bad_g = -1;
        for (int i = 0; i < N; i++) {
            float ws = x[i] / (1 + expf(-x[i])), wg = x[i] / (1 + expf(-1.702f * x[i]));
            if (bad_s < 0 && !(fabsf(s[i] - ws) <= TOL_ACTIVATION * fmaxf(1, fabsf(ws)))) bad_s = i;
            if (bad_g < 0 && !(fabsf(g[i] - wg) <= TOL_ACTIVATION * fmaxf(1, fabsf(wg)))) bad_g = i;
        }
        snprintf(what, sizeof what, "silu threads %d: first bad value at x = %g", k_threads[t], bad_s >= 0 ? x[bad_s] : 0.0);
        check(bad_s < 0, what);
        snprintf(what, sizeof what, "quick_gelu threads %d: first bad value at x = %g", k_threads[t], bad_g >= 0 ? x[bad_g] : 0.0);
        check(bad_g < 0, what);
    }
    free(x); free(s); free(g);
}

static void test_convert(void) {
    char what[160];
    // every binary16 value → f32: the reference's bits (a NaN may come back quieted, still a NaN)
    uint16_t *all = malloc(2 * 65536);
    float *y = malloc(4 * 65536), *yr = malloc(4 * 65536);
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    ck_f16_to_f32_ref(65536, all, yr);
    ck_f16_to_f32(65536, all, y);
    int bad = -1;
    for (int i = 0; i < 65536 && bad < 0; i++)
        if (isnan(yr[i]) ? !isnan(y[i]) : memcmp(&y[i], &yr[i], 4) != 0) bad = i;
    snprintf(what, sizeof what, "binary16 → f32: value 0x%04x differs", bad);
    check(bad < 0, what);
    // f32 → binary16 over more than the threaded split (256 Ki values), specials first
    enum { N = 300000 + 13 };
    rng_t r = rng_seed(9);
    float *x = malloc(4 * N);
    uint16_t *h = malloc(2 * N), *hr = malloc(2 * N);
    static const float special[] = {0, -0.0f, 1, -1, 65504, 65519.99f, 65520, 1e-8f, 5.96e-8f, 2.98e-8f, 2.99e-8f, 6.1e-5f, INFINITY, -INFINITY, 1e30f, NAN};
    int ns = (int)(sizeof special / sizeof special[0]);
    memcpy(x, special, sizeof special);
    for (int i = ns; i < N; i++) x[i] = rng_float(&r, 1) * powf(2, (float)((int)(rng_next(&r) % 40) - 28));
    ck_f32_to_f16_ref(N, x, hr);
    for (int t = 0; t < 3; t++) {
        ck_set_threads(k_threads[t]);
        ck_f32_to_f16(N, x, h);
        bad = -1;
        for (int i = 0; i < N && bad < 0; i++)
            if (h[i] != hr[i]) bad = i;
        snprintf(what, sizeof what, "f32 → binary16 threads %d: %g gives 0x%04x, the reference 0x%04x", k_threads[t],
                 bad >= 0 ? x[bad] : 0.0, bad >= 0 ? h[bad] : 0, bad >= 0 ? hr[bad] : 0);
        check(bad < 0, what);
    }
    free(all); free(y); free(yr); free(x); free(h); free(hr);
}

// ---------------------------------------------------------------------------------------------------------------

static int run_path(ck_isa isa) {
    g_path = ck_isa_name(isa);
    g_pass = g_fail = 0;
    if (ck_isa_set(isa) != 0) {
        printf("%-8s cannot run on this CPU\n", g_path);
        return 1;
    }
    test_gemm_f32();
    test_gemm_q8_s32();
    test_q8_quantize_rows();
    test_gemm_q8();
    test_conv();
    test_fused_and_winograd(isa);
    test_attention();
    test_norms_and_resampling();
    test_activations();
    test_convert();
    printf("%-8s %d passed, %d failed\n", g_path, g_pass, g_fail);
    fflush(stdout);
    return g_fail != 0;
}

int main(int argc, char **argv) {
    int failed = 0;
    if (argc > 1 && strcmp(argv[1], "--best") == 0) {
        printf("best path on this CPU: %s\n", ck_isa_name(ck_isa_host_best()));
        return 0;
    }
    if (argc > 1) {
        for (int a = 1; a < argc; a++) {
            int found = 0;
            for (int i = 0; i < CK_ISA_COUNT; i++)
                if (strcmp(argv[a], ck_isa_name((ck_isa)i)) == 0) {
                    found = 1;
                    failed |= run_path((ck_isa)i);
                }
            if (!found) {
                printf("unknown path %s\n", argv[a]);
                failed = 1;
            }
        }
    } else {
        for (int i = 0; i < CK_ISA_COUNT; i++)
            if (ck_isa_supported((ck_isa)i)) failed |= run_path((ck_isa)i);
    }
    printf("best path on this CPU: %s\n", ck_isa_name(ck_isa_host_best()));
    return failed;
}

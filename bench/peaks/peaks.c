#define _GNU_SOURCE
#include "cpeaks.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckernels.h"
#include "ckernels_testing.h"  // ck_amx_tile_config

double cpk_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Runs `body(iters)` on every thread until `seconds` pass; returns total work units per second, where one
// call of body does `per_iter` units per iteration.
#define TIMED_LOOP(threads, seconds, per_iter, body)                                   \
    do {                                                                               \
        long iters = 1 << 16;                                                          \
        double t0, t1;                                                                 \
        for (;;) {                                                                     \
            t0 = cpk_now();                                                            \
            _Pragma("omp parallel num_threads(threads)") { body(iters); }              \
            t1 = cpk_now();                                                            \
            if (t1 - t0 > (seconds)) break;                                            \
            iters *= 2;                                                                \
        }                                                                              \
        return (double)iters * (per_iter) * (threads) / (t1 - t0) * 1e-9;             \
    } while (0)

// 12 independent accumulators cover FMA latency × issue width on current cores.
__attribute__((target("avx512f,fma"))) static void fma_zmm(long iters) {
    __m512 a[12], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    volatile float sink = 0;
    for (int i = 0; i < 12; i++) sink += _mm512_reduce_add_ps(a[i]);
    (void)sink;
}

__attribute__((target("avx2,fma"))) static void fma_ymm(long iters) {
    __m256 a[12], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    volatile float sink = 0;
    float t[8];
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(t, a[i]);
        sink += t[0];
    }
    (void)sink;
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void vnni_zmm(long iters) {
    __m512i a[12], b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(5);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_epi32(i);
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbusd_epi32(a[i], b, c);
    volatile int sink = 0;
    for (int i = 0; i < 12; i++) sink += _mm512_reduce_add_epi32(a[i]);
    (void)sink;
}

__attribute__((target("avx2"))) static void madd_ymm(long iters) {
    __m256i a[12], b = _mm256_set1_epi16(3), c = _mm256_set1_epi16(5);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_epi32(i);
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(b, c));
    volatile int sink = 0;
    int t[8];
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_si256((__m256i *)t, a[i]);
        sink += t[0];
    }
    (void)sink;
}

double cpk_fma_f32_zmm(int threads, double seconds) { TIMED_LOOP(threads, seconds, 12.0 * 16 * 2, fma_zmm); }
double cpk_fma_f32_ymm(int threads, double seconds) { TIMED_LOOP(threads, seconds, 12.0 * 8 * 2, fma_ymm); }
double cpk_vnni_zmm(int threads, double seconds) { TIMED_LOOP(threads, seconds, 12.0 * 64 * 2, vnni_zmm); }
// vpmaddwd: 16 16-bit products per ymm, i.e. 16 MACs.
double cpk_madd_ymm(int threads, double seconds) { TIMED_LOOP(threads, seconds, 12.0 * 16 * 2, madd_ymm); }

__attribute__((target("amx-tile,amx-int8"))) static void amx_loop(long iters) {
    ck_amx_tile_config();
    static __thread int8_t buf[16 * 64] __attribute__((aligned(64)));
    _tile_loadd(4, buf, 64);
    _tile_loadd(5, buf, 64);
    _tile_loadd(6, buf, 64);
    _tile_loadd(7, buf, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (long n = 0; n < iters; n++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    static __thread int32_t out[16 * 16] __attribute__((aligned(64)));
    _tile_stored(0, out, 64);
    _tile_release();
}

// One tdpbssd of 16×64 by 64×16 bytes: 16·16·64 MACs.
double cpk_amx_int8(int threads, double seconds) {
    if (!ck_isa_supported(CK_ISA_AMX)) return 0.0;
    TIMED_LOOP(threads, seconds, 4.0 * 16 * 16 * 64 * 2, amx_loop);
}

// Sums 64-byte lines with 4 independent zmm adds (called per chunk from the parallel loop: OpenMP's
// outlined bodies do not inherit target attributes).
__attribute__((target("avx512f"))) static float read_chunk(const float *a, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(a + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(a + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

double cpk_read_bandwidth(int threads, size_t bytes, double seconds) {
    size_t chunk = 1 << 16, n = bytes / sizeof(float) / chunk * chunk;
    float *a = aligned_alloc(64, n * sizeof(float));
    if (!a) return 0.0;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = 1.0f;
    double best = 0.0, start = cpk_now();
    volatile float sink = 0;
    do {
        double t0 = cpk_now();
        float total = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : total)
        for (size_t c = 0; c < n / chunk; c++) total += read_chunk(a + c * chunk, chunk);
        sink += total;
        double gbs = (double)(n * sizeof(float)) / (cpk_now() - t0) * 1e-9;
        if (gbs > best) best = gbs;
    } while (cpk_now() - start < seconds);
    free(a);
    return best;
}

double cpk_triad_bandwidth(int threads, size_t bytes, double seconds) {
    size_t n = bytes / sizeof(float) / 3;
    float *a = aligned_alloc(64, n * sizeof(float)), *b = aligned_alloc(64, n * sizeof(float)),
          *c = aligned_alloc(64, n * sizeof(float));
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return 0.0;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = b[i] = c[i] = 1.0f;
    double best = 0.0, start = cpk_now();
    do {
        double t0 = cpk_now();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 0.5f * c[i];
        double gbs = (double)(3 * n * sizeof(float)) / (cpk_now() - t0) * 1e-9;
        if (gbs > best) best = gbs;
    } while (cpk_now() - start < seconds);
    free(a);
    free(b);
    free(c);
    return best;
}

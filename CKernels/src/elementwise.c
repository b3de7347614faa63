// Elementwise activations, arithmetic and row softmax. SiLU and quick_gelu use the vector exp on AVX2/AVX-512/NEON.
#include "internal.h"
#include "vecmath.h"

#include <math.h>

#define CK_QUICK_GELU_ALPHA 1.702f  // transformers ACT2FN["quick_gelu"]: x * sigmoid(1.702 * x)

// y = x · σ(αx) = x / (1 + exp(−αx)), scalar.
void ck_sigmoid_gate_ref(size_t n, const float *x, float alpha, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-alpha * x[i]));
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,fma")))
void ck_sigmoid_gate_avx512(size_t n, const float *x, float alpha, float *y) {
    size_t i = 0;
    __m512 na = _mm512_set1_ps(-alpha), one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(y + i, _mm512_div_ps(v, _mm512_add_ps(one, ck_exp512(_mm512_mul_ps(na, v)))));
    }
    ck_sigmoid_gate_ref(n - i, x + i, alpha, y + i);
}

__attribute__((target("avx2,fma")))
void ck_sigmoid_gate_avx2(size_t n, const float *x, float alpha, float *y) {
    size_t i = 0;
    __m256 na = _mm256_set1_ps(-alpha), one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, ck_exp256(_mm256_mul_ps(na, v)))));
    }
    ck_sigmoid_gate_ref(n - i, x + i, alpha, y + i);
}
#endif

#if defined(__aarch64__)
void ck_sigmoid_gate_neon(size_t n, const float *x, float alpha, float *y) {
    size_t i = 0;
    float32x4_t na = vdupq_n_f32(-alpha), one = vdupq_n_f32(1.0f);
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        vst1q_f32(y + i, vdivq_f32(v, vaddq_f32(one, ck_exp128(vmulq_f32(na, v)))));
    }
    ck_sigmoid_gate_ref(n - i, x + i, alpha, y + i);
}
#endif

// Chunks of CK_EW_CHUNK elements are the parallel unit; each element is computed the same way on any split.
#define CK_EW_CHUNK 16384

static void sigmoid_gate(size_t n, const float *x, float alpha, float *y) {
    ck_sigmoid_gate_fn gate = ck_dispatch_active()->sigmoid_gate;
    long chunks = (long)((n + CK_EW_CHUNK - 1) / CK_EW_CHUNK);
#pragma omp parallel for schedule(static) num_threads(ck_get_threads()) if (chunks > 1)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * CK_EW_CHUNK;
        gate(CK_MIN((size_t)CK_EW_CHUNK, n - i0), x + i0, alpha, y + i0);
    }
}

void ck_silu(size_t n, const float *x, float *y) { sigmoid_gate(n, x, 1.0f, y); }
void ck_quick_gelu(size_t n, const float *x, float *y) { sigmoid_gate(n, x, CK_QUICK_GELU_ALPHA, y); }

void ck_gelu_erf(size_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static) num_threads(ck_get_threads()) if (n > CK_EW_CHUNK)
    for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752440f));
}

void ck_add(size_t n, const float *a, const float *b, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void ck_mul(size_t n, const float *a, const float *b, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

void ck_scale_add(size_t n, const float *x, float alpha, float beta, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta;
}

void ck_clamp(size_t n, const float *x, float lo, float hi, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}

void ck_add_bias(int rows, int C, const float *x, const float *bias, float *y) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) y[(size_t)r * C + c] = x[(size_t)r * C + c] + bias[c];
}

void ck_softmax_rows(int rows, int C, const float *x, int ldx, float *y, int ldy) {
#pragma omp parallel for schedule(static) num_threads(ck_get_threads()) if (rows > 64)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ldx;
        float *yr = y + (size_t)r * ldy;
        float m = -INFINITY;
        for (int c = 0; c < C; c++) m = fmaxf(m, xr[c]);
        double s = 0.0;
        for (int c = 0; c < C; c++) {
            yr[c] = expf(xr[c] - m);
            s += yr[c];
        }
        float inv = (float)(1.0 / s);
        for (int c = 0; c < C; c++) yr[c] *= inv;
    }
}

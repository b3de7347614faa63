// Attention rows, AVX2 + FMA: 8 keys per block.
#if defined(__x86_64__)
#include "internal.h"
#include "vecmath.h"

#define CK_ATT_FN ck_attention_rows_avx2
#define CK_ATT_TARGET __attribute__((target("avx2,fma")))
#define W 8
#define VEC __m256
#define VZERO _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VEXP(x) ck_exp256(x)
#define VHMAX(v) hmax256(v)
#define VHSUM(v) hsum256(v)
#define VLOAD_TAIL(p, n) _mm256_maskload_ps(p, lanes_below(n))
#define VKEEP(v, limit) _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, _mm256_castsi256_ps(lanes_below(limit)))

// all-ones in lanes whose index < n
__attribute__((target("avx2,fma"), always_inline)) static inline __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
__attribute__((target("avx2,fma"), always_inline)) static inline float hmax256(__m256 v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}
__attribute__((target("avx2,fma"), always_inline)) static inline float hsum256(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

#include "attention_keys.h"
#include "attention_simd.h"
#endif

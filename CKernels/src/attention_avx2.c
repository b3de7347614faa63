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
#define VEXP(x) ck_exp256(x)

#include "attention_keys.h"
#include "attention_simd.h"
#endif

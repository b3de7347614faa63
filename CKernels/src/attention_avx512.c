// Attention rows, AVX-512: 16 keys per block.
#if defined(__x86_64__)
#include "internal.h"
#include "vecmath.h"

#define CK_ATT_FN ck_attention_rows_avx512
#define CK_ATT_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define W 16
#define VEC __m512
#define VZERO _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VEXP(x) ck_exp512(x)
#define VHMAX(v) _mm512_reduce_max_ps(v)
#define VHSUM(v) _mm512_reduce_add_ps(v)
// the first n lanes of p (n ≤ 16), zero elsewhere; no read past them
#define VLOAD_TAIL(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
// lanes ≥ limit become -inf
#define VKEEP(v, limit) _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), (__mmask16)((limit) <= 0 ? 0 : ((1u << (limit)) - 1)), v)

#include "attention_keys.h"
#include "attention_simd.h"
#endif

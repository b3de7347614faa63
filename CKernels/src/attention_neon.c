// Attention rows, NEON (every AArch64 core): 4 keys per block.
#if defined(__aarch64__)
#include "internal.h"
#include "vecmath.h"

#define CK_ATT_FN ck_attention_rows_neon
#define CK_ATT_TARGET
#define W 4
#define VEC float32x4_t
#define VZERO vdupq_n_f32(0.0f)
#define VSET1(x) vdupq_n_f32(x)
#define VLOAD(p) vld1q_f32(p)
#define VSTORE(p, v) vst1q_f32(p, v)
#define VFMA(a, b, c) vfmaq_f32(c, a, b)
#define VMUL(a, b) vmulq_f32(a, b)
#define VSUB(a, b) vsubq_f32(a, b)
#define VADD(a, b) vaddq_f32(a, b)
#define VEXP(x) ck_exp128(x)
#define VHMAX(v) vmaxvq_f32(v)
#define VHSUM(v) vaddvq_f32(v)
#define VLOAD_TAIL(p, n) load_tail(p, n)
#define VKEEP(v, limit) vbslq_f32(lanes_below(limit), v, vdupq_n_f32(-INFINITY))

// all-ones in lanes whose index < n
__attribute__((always_inline)) static inline uint32x4_t lanes_below(int n) {
    const int32_t idx[4] = {0, 1, 2, 3};
    return vcltq_s32(vld1q_s32(idx), vdupq_n_s32(n));
}
// the first n (≤ 4) floats at p, zeros after them (NEON has no masked load)
__attribute__((always_inline)) static inline float32x4_t load_tail(const float *p, int n) {
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < n && i < 4; i++) t[i] = p[i];
    return vld1q_f32(t);
}

#include "attention_keys.h"
#include "attention_simd.h"
#endif

// Multi-head attention with a streaming (online) softmax: the reference and the driver.
#include "internal.h"
#include "attention_keys.h"

#include <math.h>


size_t ck_attention_scratch_size(const ck_attention_params *p, int nthreads) {
    size_t lk = (size_t)p->L0 + p->L1;
    size_t ref = lk;                                                            // scores of one row
    size_t vec = (size_t)p->D * CK_ATT_KB + (size_t)CK_ATT_QB * p->D + 2 * CK_ATT_QB + 8 * CK_ATT_KB;
    return (size_t)nthreads * CK_ALIGN_UP(CK_MAX(ref, vec) * sizeof(float)) + CK_ALIGN;
}

// Two-pass softmax per query row: the oracle.
void ck_attention_rows_ref(const ck_attention_params *p, int b, int h, int i0, int i1, float *s) {
    int lk = p->L0 + p->L1;
    for (int i = i0; i < i1; i++) {
        const float *q = p->q + (size_t)b * p->q_bs + (size_t)i * p->ldq + (size_t)h * p->D;
        float m = -INFINITY;
        for (int j = 0; j < lk; j++) {
            const float *k = key_row(p, b, h, j, 0);
            float d = 0.0f;
            for (int t = 0; t < p->D; t++) d += q[t] * k[t];
            d *= p->scale;
            if (p->mask) d += p->mask[(size_t)b * p->mask_bs + (size_t)i * p->mask_qs + j];
            if (p->causal && j > i) d = -INFINITY;
            s[j] = d;
            m = fmaxf(m, d);
        }
        double sum = 0.0;
        for (int j = 0; j < lk; j++) {
            s[j] = m == -INFINITY ? 0.0f : expf(s[j] - m);
            sum += s[j];
        }
        float *o = p->o + (size_t)b * p->o_bs + (size_t)i * p->ldo + (size_t)h * p->D;
        for (int t = 0; t < p->D; t++) {
            double acc = 0.0;
            for (int j = 0; j < lk; j++) acc += (double)s[j] * key_row(p, b, h, j, 1)[t];
            o[t] = sum > 0 ? (float)(acc / sum) : 0.0f;
        }
    }
}

void ck_attention_ref(const ck_attention_params *p) {
    float s[(p->L0 + p->L1) > 0 ? p->L0 + p->L1 : 1];
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++) ck_attention_rows_ref(p, b, h, 0, p->Lq, s);
}

void ck_attention(const ck_attention_params *p, void *scratch) {
    ck_attention_rows_fn rows = ck_dispatch_active()->attention_rows(p->D);
    int qblocks = (p->Lq + CK_ATT_QB - 1) / CK_ATT_QB;
    int units = p->B * p->H * qblocks;
    char *s = (char *)CK_ALIGN_UP((uintptr_t)scratch);
    size_t per_thread = (ck_attention_scratch_size(p, 1) - CK_ALIGN);
#pragma omp parallel for schedule(static) num_threads(ck_get_threads())
    for (int u = 0; u < units; u++) {
        int qb = u % qblocks, h = (u / qblocks) % p->H, b = u / (qblocks * p->H);
        int i0 = qb * CK_ATT_QB, i1 = CK_MIN(p->Lq, i0 + CK_ATT_QB);
        float *ts = (float *)(s + per_thread * ck_thread_index());
        rows(p, b, h, i0, i1, ts);
    }
}

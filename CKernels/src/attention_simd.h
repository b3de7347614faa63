// Streaming-softmax attention for one (batch, head, query block), written once over a vector type.
// Included by attention_avx512.c and attention_avx2.c, which define:
//   CK_ATT_FN (function name), CK_ATT_TARGET (target attribute), W (lanes), VEC, VZERO, VSET1(x), VLOAD(p),
//   VSTORE(p, v), VFMA(a, b, c) = a·b + c, VMUL, VSUB, VEXP.
// Per key block of W keys: the block is transposed to kt [D][W] once and shared by the block's queries;
// scores are a W-lane vector per query; running max m, running sum l and the output row o are rescaled
// by exp(m_old − m_new) as in FlashAttention (Dao et al., 2022), so memory is O(W·D) per thread.
#include <math.h>
#include <string.h>

CK_ATT_TARGET
void CK_ATT_FN(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch) {
    const int D = p->D, lk = p->L0 + p->L1;
    float *kt = scratch;                       // [D][W]
    float *o = kt + (size_t)D * W;             // [QB][D]
    float *m = o + (size_t)CK_ATT_QB * D;      // [QB]
    float *l = m + CK_ATT_QB;                  // [QB]
    float *sc = l + CK_ATT_QB;                 // [W]
    int nq = i1 - i0;
    for (int r = 0; r < nq; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(o, 0, (size_t)nq * D * sizeof(float));
    for (int j0 = 0; j0 < lk; j0 += W) {
        int nk = CK_MIN(W, lk - j0);
        if (p->causal && j0 > i1 - 1) break;   // every later key is in every row's future
        for (int jj = 0; jj < W; jj++) {
            const float *kr = jj < nk ? key_row(p, b, h, j0 + jj, 0) : NULL;
            for (int t = 0; t < D; t++) kt[(size_t)t * W + jj] = kr ? kr[t] : 0.0f;
        }
        for (int r = 0; r < nq; r++) {
            int i = i0 + r;
            const float *q = p->q + (size_t)b * p->q_bs + (size_t)i * p->ldq + (size_t)h * D;
            VEC s = VZERO;
            for (int t = 0; t < D; t++) s = VFMA(VSET1(q[t]), VLOAD(kt + (size_t)t * W), s);
            VSTORE(sc, s);
            const float *mrow = p->mask ? p->mask + (size_t)b * p->mask_bs + (size_t)i * p->mask_qs + j0 : NULL;
            float mb = -INFINITY;
            for (int jj = 0; jj < W; jj++) {
                float v = sc[jj] * p->scale;
                if (jj >= nk || (p->causal && j0 + jj > i)) v = -INFINITY;
                else if (mrow) v += mrow[jj];
                sc[jj] = v;
                mb = fmaxf(mb, v);
            }
            float mnew = fmaxf(m[r], mb);
            if (mnew == -INFINITY) continue;
            float alpha = expf(m[r] - mnew);
            VEC pv = VEXP(VSUB(VLOAD(sc), VSET1(mnew)));
            VSTORE(sc, pv);
            float ps = 0.0f;
            for (int jj = 0; jj < W; jj++) ps += sc[jj];
            l[r] = l[r] * alpha + ps;
            m[r] = mnew;
            float *orow = o + (size_t)r * D;
            VEC va = VSET1(alpha);
            for (int t = 0; t < D; t += W) VSTORE(orow + t, VMUL(VLOAD(orow + t), va));
            for (int jj = 0; jj < nk; jj++) {
                const float *vr = key_row(p, b, h, j0 + jj, 1);
                VEC pj = VSET1(sc[jj]);
                for (int t = 0; t < D; t += W) VSTORE(orow + t, VFMA(pj, VLOAD(vr + t), VLOAD(orow + t)));
            }
        }
    }
    for (int r = 0; r < nq; r++) {
        float *out = p->o + (size_t)b * p->o_bs + (size_t)(i0 + r) * p->ldo + (size_t)h * D;
        float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        for (int t = 0; t < D; t++) out[t] = o[(size_t)r * D + t] * inv;
    }
}

// Streaming-softmax attention for one (batch, head, query block), written once over a vector type.
// Included by attention_avx512.c and attention_avx2.c, which define:
//   CK_ATT_FN (function name), CK_ATT_TARGET (target attribute), W (lanes), VEC, VZERO, VSET1(x), VLOAD(p),
//   VSTORE(p, v), VFMA(a, b, c) = a·b + c, VMUL, VSUB, VADD, VMAX, VEXP, VHMAX(v), VHSUM(v),
//   VLT_IDX(limit) (lanes whose index < limit keep their value, others become -inf: VKEEP(v, limit)).
// Per key block of W keys: the block is transposed to kt [D][W] once and shared by the block's queries;
// queries go R at a time so that R independent FMA chains hide the FMA latency; the running max m, running
// sum l and output rows are rescaled by exp(m_old − m_new) as in FlashAttention (Dao et al., 2022), so memory
// is O(W·D) per thread.
#include <math.h>
#include <string.h>

#define R 8

CK_ATT_TARGET
void CK_ATT_FN(const ck_attention_params *p, int b, int h, int i0, int i1, float *scratch) {
    const int D = p->D, lk = p->L0 + p->L1;
    float *kt = scratch;                       // [D][W]
    float *o = kt + (size_t)D * W;             // [QB][D]
    float *m = o + (size_t)CK_ATT_QB * D;      // [QB]
    float *l = m + CK_ATT_QB;                  // [QB]
    float *pr = l + CK_ATT_QB;                 // [R][W] probabilities of the current block
    int nq = i1 - i0;
    for (int r = 0; r < nq; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(o, 0, (size_t)nq * D * sizeof(float));
    const VEC scale = VSET1(p->scale);
    for (int j0 = 0; j0 < lk; j0 += W) {
        int nk = CK_MIN(W, lk - j0);
        if (p->causal && j0 > i1 - 1) break;   // every later key is in every row's future
        for (int jj = 0; jj < W; jj++) {
            const float *kr = jj < nk ? key_row(p, b, h, j0 + jj, 0) : NULL;
            for (int t = 0; t < D; t++) kt[(size_t)t * W + jj] = kr ? kr[t] : 0.0f;
        }
        for (int r0 = 0; r0 < nq; r0 += R) {
            int rn = CK_MIN(R, nq - r0);
            const float *q[R];
            for (int r = 0; r < R; r++)
                q[r] = p->q + (size_t)b * p->q_bs + (size_t)(i0 + r0 + (r < rn ? r : 0)) * p->ldq + (size_t)h * D;
            VEC s[R];
            for (int r = 0; r < R; r++) {
                s[r] = VZERO;
                VSTORE(pr + (size_t)r * W, VZERO);   // rows with nothing to add contribute zeros below
            }
            for (int t = 0; t < D; t++) {
                VEC kv = VLOAD(kt + (size_t)t * W);
                for (int r = 0; r < R; r++) s[r] = VFMA(VSET1(q[r][t]), kv, s[r]);
            }
            for (int r = 0; r < rn; r++) {
                int i = i0 + r0 + r;
                VEC v = VMUL(s[r], scale);
                if (p->mask) v = VADD(v, VLOAD_TAIL(p->mask + (size_t)b * p->mask_bs + (size_t)i * p->mask_qs + j0, nk));
                // keys past the end, and (causal) keys after the query, are excluded
                int limit = p->causal ? CK_MIN(nk, i - j0 + 1) : nk;
                v = VKEEP(v, limit);
                float mb = VHMAX(v);
                float mold = m[r0 + r], mnew = fmaxf(mold, mb);
                float *pv = pr + (size_t)r * W;
                if (mnew == -INFINITY) continue;
                float alpha = expf(mold - mnew);
                VEC e = VEXP(VSUB(v, VSET1(mnew)));
                VSTORE(pv, e);
                l[r0 + r] = l[r0 + r] * alpha + VHSUM(e);
                m[r0 + r] = mnew;
                float *orow = o + (size_t)(r0 + r) * D;
                VEC va = VSET1(alpha);
                for (int t = 0; t < D; t += W) VSTORE(orow + t, VMUL(VLOAD(orow + t), va));
            }
            // O[r] += Σ_jj p[r][jj]·V[jj]: one W-wide column slice of the R output rows at a time, kept in
            // registers across the block's keys (R independent FMA chains).
            const float *vrow[W];
            for (int jj = 0; jj < nk; jj++) vrow[jj] = key_row(p, b, h, j0 + jj, 1);
            for (int t = 0; t < D; t += W) {
                VEC acc[R];
                for (int r = 0; r < R; r++) acc[r] = r < rn ? VLOAD(o + (size_t)(r0 + r) * D + t) : VZERO;
                for (int jj = 0; jj < nk; jj++) {
                    VEC vv = VLOAD(vrow[jj] + t);
                    for (int r = 0; r < R; r++) acc[r] = VFMA(VSET1(pr[(size_t)r * W + jj]), vv, acc[r]);
                }
                for (int r = 0; r < rn; r++) VSTORE(o + (size_t)(r0 + r) * D + t, acc[r]);
            }
        }
    }
    for (int r = 0; r < nq; r++) {
        float *out = p->o + (size_t)b * p->o_bs + (size_t)(i0 + r) * p->ldo + (size_t)h * D;
        float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        for (int t = 0; t < D; t++) out[t] = o[(size_t)r * D + t] * inv;
    }
}
#undef R

// Row j of the concatenated keys (value = 0) or values (value = 1) of head h: [k0 (L0 rows); k1 (L1 rows)].
#ifndef CK_ATTENTION_KEYS_H
#define CK_ATTENTION_KEYS_H
#include "ckernels.h"

static inline const float *key_row(const ck_attention_params *p, int b, int h, int j, int value) {
    if (j < p->L0)
        return (value ? p->v0 : p->k0) + (size_t)b * p->kv0_bs + (size_t)j * p->ldkv0 + (size_t)h * p->D;
    j -= p->L0;
    return (value ? p->v1 : p->k1) + (size_t)b * p->kv1_bs + (size_t)j * p->ldkv1 + (size_t)h * p->D;
}
#endif

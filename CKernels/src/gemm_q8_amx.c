// int8 GEMM inner kernel, AMX-INT8: a 32 × 32 block per call as 2×2 tiles of 16×16 int32 (tmm0–3),
// A tiles 16 rows × 64 bytes (tmm4–5), B tiles 16 k-groups × (16 columns × 4 bytes) (tmm6–7): the q8 panel's
// [k/4][32][4] layout gives a B tile directly with a row stride of 128 bytes. tdpbssd multiplies signed by
// signed bytes, so no correction is needed.
#if defined(__x86_64__)
#include "internal.h"

#include <immintrin.h>
#include <string.h>

#define CK_AMX_ATTR __attribute__((target("amx-tile,amx-int8,avx512f")))

typedef struct {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) amx_tilecfg;

CK_AMX_ATTR void ck_amx_tile_config(void) {
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

CK_AMX_ATTR void ck_amx_tile_release(void) { _tile_release(); }

CK_AMX_ATTR
void ck_q8_kernel_amx(int mr, int Kp, const int8_t *qa, int ldqa, const int8_t *panel, const int32_t *colsum,
                      int32_t *acc, int ldacc, int nvalid, void *scratch) {
    (void)colsum;
    int8_t *pad = (int8_t *)scratch;
    int32_t *out = (int32_t *)((char *)scratch + 32 * (size_t)Kp);
    if (mr < 32) {
        // Tiles always load 32 rows: copy the block and zero the rest rather than read past it.
        for (int r = 0; r < 32; r++) {
            if (r < mr) memcpy(pad + (size_t)r * Kp, qa + (size_t)r * ldqa, (size_t)Kp);
            else memset(pad + (size_t)r * Kp, 0, (size_t)Kp);
        }
        qa = pad;
        ldqa = Kp;
    }
    ck_amx_tile_config();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int k = 0; k < Kp; k += 64) {
        _tile_loadd(4, qa + k, ldqa);
        _tile_loadd(5, qa + (size_t)16 * ldqa + k, ldqa);
        _tile_loadd(6, panel + (size_t)(k / 4) * CK_Q8_NR * 4, CK_Q8_NR * 4);
        _tile_loadd(7, panel + (size_t)(k / 4) * CK_Q8_NR * 4 + 64, CK_Q8_NR * 4);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    _tile_stored(0, out, 32 * 4);
    _tile_stored(1, out + 16, 32 * 4);
    _tile_stored(2, out + 16 * 32, 32 * 4);
    _tile_stored(3, out + 16 * 32 + 16, 32 * 4);
    _tile_release();
    for (int r = 0; r < mr; r++) memcpy(acc + (size_t)r * ldacc, out + r * 32, (size_t)nvalid * 4);
}
#endif

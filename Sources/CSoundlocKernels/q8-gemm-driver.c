// Cache-blocked GEMM driver shared by the SIMD implementations: column blocks of ncp panels, row blocks of mc rows
// (activations converted once per block and K chunk into an L1-sized buffer), K chunks of kc with int32 partial
// sums kept in a stack tile, then one requantising pass per block. Weights stream once per row block.
#include <string.h>

#include "q8-gemm-internal.h"

size_t q8_packed_size_tiled(size_t n, size_t k, uint32_t nr, uint32_t kr) {
    const size_t kpad = (k + kr - 1) / kr * kr, panels = (n + nr - 1) / nr;
    return Q8_HEADER_BYTES + panels * (nr * sizeof(int32_t) + nr * kpad);
}

uint8_t *q8_pack_begin(size_t n, size_t k, const int8_t *w, const int32_t *bias, int32_t a_zp, int32_t shift,
                       uint32_t impl, uint32_t nr, uint32_t kr, void *packed) {
    if (!w || !packed || n == 0 || k == 0 || k > Q8_MAX_K || n > UINT32_MAX) return NULL;
    for (size_t i = 0; i < n * k; i++)
        if (w[i] == INT8_MIN) return NULL;  // −128·−128 pairs would overflow the s16 sums of the neon kernel
    const size_t kpad = (k + kr - 1) / kr * kr, panels = (n + nr - 1) / nr;
    const size_t panel_bytes = nr * sizeof(int32_t) + nr * kpad;
    q8_packed_header h = {Q8_PACKED_MAGIC, impl, (uint32_t)n, (uint32_t)k, (uint32_t)kpad, nr, kr, (uint32_t)panel_bytes};
    memcpy(packed, &h, sizeof h);
    uint8_t *first = (uint8_t *)packed + Q8_HEADER_BYTES;
    memset(first, 0, panels * panel_bytes);
    for (size_t j = 0; j < n; j++) {
        int32_t sum = 0;
        for (size_t i = 0; i < k; i++) sum += w[j * k + i];
        int32_t *b = (int32_t *)(first + (j / nr) * panel_bytes);
        b[j % nr] = (bias ? bias[j] : 0) + (shift - a_zp) * sum;
    }
    return first;
}

int q8_pack_weights_tiled(size_t n, size_t k, const int8_t *w, const int32_t *bias, int32_t a_zp, int32_t shift,
                          uint32_t impl, uint32_t nr, uint32_t kr, uint32_t group, void *packed) {
    uint8_t *panel = q8_pack_begin(n, k, w, bias, a_zp, shift, impl, nr, kr, packed);
    if (!panel) return SOUNDLOC_KERNELS_EINVAL;
    const size_t kpad = (k + kr - 1) / kr * kr, panel_bytes = nr * sizeof(int32_t) + nr * kpad;
    for (size_t j = 0; j < n; j++) {
        int8_t *dst = (int8_t *)(panel + (j / nr) * panel_bytes + nr * sizeof(int32_t)) + (j % nr) * group;
        for (size_t i = 0; i < k; i++) dst[(i / group) * nr * group + i % group] = w[j * k + i];
    }
    return SOUNDLOC_KERNELS_OK;
}

const q8_packed_header *q8_packed_check(const void *packed, uint32_t impl) {
    if (!packed) return NULL;
    const q8_packed_header *h = (const q8_packed_header *)packed;
    if (h->magic != Q8_PACKED_MAGIC || h->impl != impl) return NULL;
    return h;
}

int q8_gemm_drive(const q8_gemm_config *cfg, const void *packed, size_t m0, size_t m1, size_t n0, size_t n1,
                  const uint8_t *a, size_t lda, const soundloc_q8_requant *rq, uint8_t *c8, int32_t *c32, size_t ldc) {
    const q8_packed_header *h = q8_packed_check(packed, cfg->impl);
    if (!h || h->nr != cfg->nr || h->kr != cfg->kr) return SOUNDLOC_KERNELS_EPACKED;
    if (m0 > m1 || n0 > n1 || n1 > h->n) return SOUNDLOC_KERNELS_EINVAL;
    if (m0 == m1 || n0 == n1) return SOUNDLOC_KERNELS_OK;
    if (!a || !(c8 || c32) || (c8 && (!rq || !rq->scale))) return SOUNDLOC_KERNELS_EINVAL;

    _Alignas(64) uint8_t abuf[Q8_ABUF_BYTES];
    _Alignas(64) int32_t acc[Q8_ACC_ELEMS];
    const size_t nr = cfg->nr, mr = cfg->mr, k = h->k, kpad = h->kpad;
    const size_t acc_stride = (size_t)cfg->ncp * nr;
    const uint8_t *panels = (const uint8_t *)packed + Q8_HEADER_BYTES;

    for (size_t pb = n0 / nr, pend = (n1 + nr - 1) / nr; pb < pend; pb += cfg->ncp) {
        const size_t pe = pb + cfg->ncp < pend ? pb + cfg->ncp : pend;
        const size_t cs = n0 > pb * nr ? n0 : pb * nr, ce = n1 < pe * nr ? n1 : pe * nr;
        for (size_t mb = m0; mb < m1; mb += cfg->mc) {
            const size_t rows = m1 - mb < cfg->mc ? m1 - mb : cfg->mc;
            for (size_t k0 = 0; k0 < kpad; k0 += cfg->kc) {
                const size_t kcl = kpad - k0 < cfg->kc ? kpad - k0 : cfg->kc;
                const size_t kvalid = k - k0 < kcl ? k - k0 : kcl;
                cfg->pack_a(a + mb * lda, lda, rows, k0, kvalid, kcl, abuf);
                for (size_t p = pb; p < pe; p++) {
                    const uint8_t *panel = panels + p * h->panel_bytes;
                    const int32_t *bias = k0 == 0 ? (const int32_t *)panel : NULL;
                    const int8_t *w = (const int8_t *)(panel + nr * sizeof(int32_t) + k0 * nr);
                    for (size_t t = 0; t < rows; t += mr)
                        cfg->ukernel(rows - t < mr ? rows - t : mr, kcl, abuf + t * kcl * cfg->a_elem,
                                     kcl * cfg->a_elem, w, bias, acc + t * acc_stride + (p - pb) * nr, acc_stride);
                }
            }
            const int32_t *tile = acc + (cs - pb * nr);
            if (c8)
                cfg->requant(rows, ce - cs, tile, acc_stride, mb, cs, rq, c8 + mb * ldc + cs, ldc);
            else
                for (size_t i = 0; i < rows; i++)
                    memcpy(c32 + (mb + i) * ldc + cs, tile + i * acc_stride, (ce - cs) * sizeof(int32_t));
        }
    }
    return SOUNDLOC_KERNELS_OK;
}

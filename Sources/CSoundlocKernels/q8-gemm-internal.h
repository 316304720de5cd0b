// Internal to CSoundlocKernels: packed-weight header, the blocked GEMM driver shared by the SIMD implementations,
// and the scalar requantisation every implementation uses (the SIMD twins repeat its float operations lane-wise).
#ifndef SOUNDLOC_Q8_GEMM_INTERNAL_H
#define SOUNDLOC_Q8_GEMM_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "soundloc_kernels.h"

// Contraction would fuse a*b+c differently per compiler and ISA and break bit-exactness. Requantisation has one
// plain product and one explicit fmaf, so nothing is left to contract even under GCC's default -ffp-contract=fast;
// clang gets the pragma as well.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define Q8_PACKED_MAGIC 0x38715153u /* "SQq8" */
#define Q8_HEADER_BYTES 64u
#define Q8_MAX_K 32768u

enum { Q8_IMPL_REFERENCE = 1, Q8_IMPL_AVX2 = 2, Q8_IMPL_NEON = 3, Q8_IMPL_NEONDOT = 4, Q8_IMPL_AVX512VNNI = 5 };

typedef struct q8_packed_header {
    uint32_t magic, impl, n, k, kpad, nr, kr, panel_bytes;
} q8_packed_header;

// Stack scratch of the driver, per call.
#define Q8_ABUF_BYTES (24u * 1024u)
#define Q8_ACC_ELEMS (4u * 1024u)

// One SIMD implementation as the driver sees it. Panel p of the packed weights (p = n / nr) holds nr int32 bias
// terms then kpad·nr weight bytes, laid out so that columns' data for k in [k0, k0+kc) starts at byte k0·nr.
typedef struct q8_gemm_config {
    uint32_t impl, mr, nr, kr;
    uint32_t mc, kc, ncp;  // rows per block (multiple of mr), K per chunk (multiple of kr), panels per column block
    uint32_t a_elem;       // bytes per packed activation
    // Converts rows [0,rows) of A, columns [k0, k0+kvalid), to the microkernel's activation format, zero padding
    // each row to kcpad; row r lands at abuf + r·kcpad·a_elem.
    void (*pack_a)(const uint8_t *a, size_t lda, size_t rows, size_t k0, size_t kvalid, size_t kcpad, void *abuf);
    // acc[r·acc_stride + j] (r < mr, j < nr) = (bias ? bias[j] : acc[...]) + Σ_{k<kc} A[r,k]·W[j,k]; rows at or
    // beyond mr_valid reuse row mr_valid−1's data (their sums are ignored).
    void (*ukernel)(size_t mr_valid, size_t kc, const void *a, size_t a_stride, const int8_t *w, const int32_t *bias,
                    int32_t *acc, size_t acc_stride);
    // Requantises rows × cols accumulators (row stride acc_stride) for output rows m.. and columns n..
    void (*requant)(size_t rows, size_t cols, const int32_t *acc, size_t acc_stride, size_t m, size_t n,
                    const soundloc_q8_requant *rq, uint8_t *c, size_t ldc);
} q8_gemm_config;

int q8_gemm_drive(const q8_gemm_config *cfg, const void *packed, size_t m0, size_t m1, size_t n0, size_t n1,
                  const uint8_t *a, size_t lda, const soundloc_q8_requant *rq, uint8_t *c8, int32_t *c32, size_t ldc);

// The public entry points of a tiled implementation: its gemm_q8 and gemm_i32 are the shared driver over its
// configuration `config`; `prefix` names its packed_size/pack_weights functions (prefix##_packed_size, ...).
#define Q8_DEFINE_IMPL(symbol, name, prefix, config)                                                                \
    static int prefix##_gemm_q8(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a,   \
                                size_t lda, const soundloc_q8_requant *rq, uint8_t *c, size_t ldc) {                \
        return q8_gemm_drive(&config, packed, m0, m1, n0, n1, a, lda, rq, c, NULL, ldc);                           \
    }                                                                                                               \
    static int prefix##_gemm_i32(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a,  \
                                 size_t lda, int32_t *c, size_t ldc) {                                              \
        return q8_gemm_drive(&config, packed, m0, m1, n0, n1, a, lda, NULL, NULL, c, ldc);                         \
    }                                                                                                               \
    const soundloc_q8_gemm_impl symbol = {                                                                          \
        name, MR, NR, KR, prefix##_packed_size, prefix##_pack_weights, prefix##_gemm_q8, prefix##_gemm_i32,         \
    };

// Packing helpers shared by the layouts.
size_t q8_packed_size_tiled(size_t n, size_t k, uint32_t nr, uint32_t kr);
// Writes the header and each panel's bias terms: bias[n] − a_zp·Σw + shift·Σw (shift = 128 where activations are
// fed as a − 128). Returns the first panel, or NULL on bad arguments; the caller then fills the weights.
uint8_t *q8_pack_begin(size_t n, size_t k, const int8_t *w, const int32_t *bias, int32_t a_zp, int32_t shift,
                       uint32_t impl, uint32_t nr, uint32_t kr, void *packed);
// The whole packing of the tiled layouts: q8_pack_begin (K padded to kr), then each panel's weights as nr
// columns × K in groups of `group` ([n0k0 … n0k(group−1) n1k0 …] per group; group divides kr), zero-padded.
// Returns SOUNDLOC_KERNELS_OK or SOUNDLOC_KERNELS_EINVAL.
int q8_pack_weights_tiled(size_t n, size_t k, const int8_t *w, const int32_t *bias, int32_t a_zp, int32_t shift,
                          uint32_t impl, uint32_t nr, uint32_t kr, uint32_t group, void *packed);
const q8_packed_header *q8_packed_check(const void *packed, uint32_t impl);

// The one definition of requantisation (see soundloc_kernels.h); SIMD twins evaluate the same operations.
static inline uint8_t q8_requant_scalar(int32_t acc, float scale, const soundloc_q8_requant *rq, const uint8_t *r) {
    float t = (float)acc * scale;
    if (r) t = fmaf((float)((int32_t)*r - rq->residual_zp), rq->residual_mult, t);
    const float lo = (float)((int32_t)rq->qmin - rq->out_zp), hi = (float)((int32_t)rq->qmax - rq->out_zp);
    t = t < lo ? lo : t;  // same order and NaN-free semantics as maxps/minps on finite input
    t = t > hi ? hi : t;
    return (uint8_t)((int32_t)lrintf(t) + rq->out_zp);
}

void q8_requant_rows_scalar(size_t rows, size_t cols, const int32_t *acc, size_t acc_stride, size_t m, size_t n,
                            const soundloc_q8_requant *rq, uint8_t *c, size_t ldc);

#if defined(__x86_64__)
// q8_requant_rows_scalar with AVX2 (same results; the CPU must support AVX2 and FMA).
void q8_requant_rows_avx2(size_t rows, size_t cols, const int32_t *acc, size_t acc_stride, size_t m, size_t n,
                          const soundloc_q8_requant *rq, uint8_t *c, size_t ldc);
#endif

extern const soundloc_q8_gemm_impl q8_impl_reference;
#if defined(__x86_64__)
extern const soundloc_q8_gemm_impl q8_impl_avx2;
extern const soundloc_q8_gemm_impl q8_impl_avx512vnni;
#endif
#if defined(__aarch64__)
extern const soundloc_q8_gemm_impl q8_impl_neon;
extern const soundloc_q8_gemm_impl q8_impl_neondot;
#endif

#endif

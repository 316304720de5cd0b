// x86-64 AVX-512 VNNI q8 GEMM (Zen 4, Ice Lake and later), 4×64 tile, K by 4. vpdpbusd multiplies the uint8
// activations by the int8 weights and adds each group of four products into an int32 lane without intermediate
// saturation (|group| ≤ 4·255·127), unlike vpdpbusds or vpmaddubsw, so the sums are exact and activations need no
// shift. Per 4 K: four activation dword broadcasts, four zmm weight loads, 16 vpdpbusd into 16 accumulators.
// Packed panel (64 columns): 64 int32 bias terms, then per 4 K 256 bytes [n0k0..n0k3 n1k0..n1k3 … n63k0..n63k3].
#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#include "q8-gemm-internal.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define SL_VNNI __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))

// Tile chosen by measurement on Zen 4 (which runs zmm ops as two 256-bit halves, so zmm and ymm tiles of the same
// shape peak alike): 4×64, 4×32, 6×64, 8×32 zmm and 6×32, 8×16 ymm all reach about 85–94% of the vpdpbusd peak
// on the large ResNet-18-S5 GEMMs (Tools/kernels/bench.sh); 4×64 was fastest on the whole int8 model (~1.5%), and
// four rows keep the two-thread row split of the small late layers (M = 52, 196) balanced. Its 16 accumulators
// should also cover vpdpbusd's latency on cores with two 512-bit ports (not measured).
#define MR 4
#define NR 64
#define KR 4
#define MC 24    // 24 rows × 1024 K = 24 KiB of activations, reused across the column block's panels
#define KC 1024
#define NCP 2    // panels per column block: 24 × 2 × 64 int32 partial sums

#define ROWS(X) X(0) X(1) X(2) X(3)
#define COLS(X, r) X(r, 0) X(r, 1) X(r, 2) X(r, 3)
#define WCOLS(X) X(0) X(1) X(2) X(3)

_Static_assert(MC % MR == 0 && KC % KR == 0, "blocking must be whole tiles");
_Static_assert(MC * KC <= Q8_ABUF_BYTES, "activation block exceeds the driver's buffer");
_Static_assert(MC * NCP * NR <= Q8_ACC_ELEMS, "accumulator block exceeds the driver's buffer");

static size_t vnni_packed_size(size_t n, size_t k) { return q8_packed_size_tiled(n, k, NR, KR); }

static int vnni_pack_weights(size_t n, size_t k, const int8_t *w, const int32_t *bias, uint8_t a_zp, void *packed) {
    return q8_pack_weights_tiled(n, k, w, bias, a_zp, 0, Q8_IMPL_AVX512VNNI, NR, KR, KR, packed);
}

// Activations stay uint8: rows are copied and zero padded to kcpad (padded weights are zero as well).
static void vnni_pack_a(const uint8_t *a, size_t lda, size_t rows, size_t k0, size_t kvalid, size_t kcpad,
                        void *abuf) {
    for (size_t r = 0; r < rows; r++) {
        uint8_t *dst = (uint8_t *)abuf + r * kcpad;
        memcpy(dst, a + r * lda + k0, kvalid);
        memset(dst + kvalid, 0, kcpad - kvalid);
    }
}

static inline int32_t load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

SL_VNNI static void vnni_ukernel(size_t mr_valid, size_t kc, const void *a, size_t a_stride, const int8_t *w,
                                 const int32_t *bias, int32_t *acc, size_t acc_stride) {
    const uint8_t *ap[MR];
    for (size_t r = 0; r < MR; r++) ap[r] = (const uint8_t *)a + (r < mr_valid ? r : mr_valid - 1) * a_stride;
#define DECL1(r, v) __m512i c##r##_##v = _mm512_loadu_si512((const void *)(s##r + v * 16));
#define DECL(r)                                               \
    const uint8_t *a##r = ap[r];                              \
    const int32_t *s##r = bias ? bias : acc + r * acc_stride; \
    COLS(DECL1, r)
    ROWS(DECL)
#undef DECL
#undef DECL1
    for (size_t k = 0; k < kc; k += KR) {
#define WLOAD(v) const __m512i w##v = _mm512_loadu_si512((const void *)(w + v * 64));
        WCOLS(WLOAD)
#undef WLOAD
        w += NR * KR;
#define DOT1(r, v) c##r##_##v = _mm512_dpbusd_epi32(c##r##_##v, x##r, w##v);
#define STEP(r)                                                   \
    {                                                             \
        const __m512i x##r = _mm512_set1_epi32(load4(a##r + k)); \
        COLS(DOT1, r)                                             \
    }
        ROWS(STEP)
#undef STEP
#undef DOT1
    }
#define STORE1(r, v) _mm512_storeu_si512((void *)(acc + r * acc_stride + v * 16), c##r##_##v);
#define STORE(r) COLS(STORE1, r)
    ROWS(STORE)
#undef STORE
#undef STORE1
}

// Lane-wise twin of q8_requant_scalar, 16 columns at a time with masked tails: cvtdq2ps, mulps, vfmadd (one
// rounding, like fmaf), maxps, minps, cvtps2dq (round half to even under the default MXCSR), then the zero point.
SL_VNNI static void vnni_requant(size_t rows, size_t cols, const int32_t *acc, size_t acc_stride, size_t m, size_t n,
                                 const soundloc_q8_requant *rq, uint8_t *c, size_t ldc) {
    const __m512 lo = _mm512_set1_ps((float)((int32_t)rq->qmin - rq->out_zp));
    const __m512 hi = _mm512_set1_ps((float)((int32_t)rq->qmax - rq->out_zp));
    const __m512i zp = _mm512_set1_epi32(rq->out_zp), rzp = _mm512_set1_epi32(rq->residual_zp);
    const __m512 rmult = _mm512_set1_ps(rq->residual_mult);
    for (size_t i = 0; i < rows; i++) {
        const int32_t *src = acc + i * acc_stride;
        uint8_t *dst = c + i * ldc;
        const uint8_t *res = rq->residual ? rq->residual + (m + i) * rq->residual_stride + n : NULL;
        for (size_t j = 0; j < cols; j += 16) {
            const __mmask16 mk = cols - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - j)) - 1);
            __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(mk, src + j)),
                                     _mm512_maskz_loadu_ps(mk, rq->scale + n + j));
            if (res) {
                const __m512i r = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mk, res + j));
                t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(r, rzp)), rmult, t);
            }
            t = _mm512_min_ps(_mm512_max_ps(t, lo), hi);
            const __m128i q = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(t), zp));
            if (mk == 0xFFFF)
                _mm_storeu_si128((__m128i *)(dst + j), q);
            else
                _mm_mask_storeu_epi8(dst + j, mk, q);
        }
    }
}

static const q8_gemm_config vnni_config = {
    Q8_IMPL_AVX512VNNI, MR, NR, KR, MC, KC, NCP, 1, vnni_pack_a, vnni_ukernel, vnni_requant,
};

Q8_DEFINE_IMPL(q8_impl_avx512vnni, "avx512vnni", vnni, vnni_config)

#endif

// x86-64 AVX2 q8 GEMM, 6×16 register tile. Exact: activations widened to s16 once per row block, weights
// sign-extended to s16 in the loop, vpmaddwd sums u8·s8 pairs (|sum| ≤ 2·255·127) into int32 without saturation,
// unlike vpmaddubsw. Per K pair: six broadcast loads, two weight loads, 12 vpmaddwd + 12 vpaddd into 12 accumulators.
// Packed panel (16 columns): 16 int32 bias terms, then per K pair 32 bytes [n0k0 n0k1 n1k0 n1k1 … n15k0 n15k1].
#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#include "q8-gemm-internal.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define SL_AVX2 __attribute__((target("avx2,fma")))

#define MR 6
#define NR 16
#define KR 2
#define MC 24   // 24 rows × 512 K × s16 = 24 KiB of activations, reused across every 16-column panel
#define KC 512

_Static_assert(MC * KC * 2 <= Q8_ABUF_BYTES, "activation block exceeds the driver's buffer");
_Static_assert(MC * 8 * NR <= Q8_ACC_ELEMS, "accumulator block exceeds the driver's buffer");
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

static size_t avx2_packed_size(size_t n, size_t k) { return q8_packed_size_tiled(n, k, NR, KR); }

static int avx2_pack_weights(size_t n, size_t k, const int8_t *w, const int32_t *bias, uint8_t a_zp, void *packed) {
    return q8_pack_weights_tiled(n, k, w, bias, a_zp, 0, Q8_IMPL_AVX2, NR, KR, KR, packed);
}

SL_AVX2 static void avx2_pack_a(const uint8_t *a, size_t lda, size_t rows, size_t k0, size_t kvalid, size_t kcpad,
                                void *abuf) {
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *src = a + r * lda + k0;
        int16_t *dst = (int16_t *)abuf + r * kcpad;
        size_t i = 0;
        for (; i + 16 <= kvalid; i += 16)
            _mm256_storeu_si256((__m256i *)(dst + i), _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(src + i))));
        for (; i < kvalid; i++) dst[i] = src[i];
        for (; i < kcpad; i++) dst[i] = 0;
    }
}

SL_AVX2 static inline __m256i bcast_pair(const int16_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

SL_AVX2 static void avx2_ukernel(size_t mr_valid, size_t kc, const void *a, size_t a_stride, const int8_t *w,
                                 const int32_t *bias, int32_t *acc, size_t acc_stride) {
    const int16_t *ap[MR];
    for (size_t r = 0; r < MR; r++)
        ap[r] = (const int16_t *)((const uint8_t *)a + (r < mr_valid ? r : mr_valid - 1) * a_stride);
#define DECL(r)                                                                                   \
    const int16_t *a##r = ap[r];                                                                  \
    __m256i c##r##0, c##r##1;                                                                     \
    if (bias) {                                                                                   \
        c##r##0 = _mm256_loadu_si256((const __m256i *)bias);                                      \
        c##r##1 = _mm256_loadu_si256((const __m256i *)(bias + 8));                                \
    } else {                                                                                      \
        c##r##0 = _mm256_loadu_si256((const __m256i *)(acc + r * acc_stride));                    \
        c##r##1 = _mm256_loadu_si256((const __m256i *)(acc + r * acc_stride + 8));                \
    }
    ROWS(DECL)
#undef DECL
    for (size_t k = 0; k < kc; k += KR) {
        const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w));
        const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16)));
        w += NR * KR;
#define STEP(r)                                                      \
    {                                                                \
        const __m256i va = bcast_pair(a##r + k);                     \
        c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(va, w0)); \
        c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(va, w1)); \
    }
        ROWS(STEP)
#undef STEP
    }
#define STORE(r)                                                                      \
    _mm256_storeu_si256((__m256i *)(acc + r * acc_stride), c##r##0);                  \
    _mm256_storeu_si256((__m256i *)(acc + r * acc_stride + 8), c##r##1);
    ROWS(STORE)
#undef STORE
}

// Lane-wise twin of q8_requant_scalar: cvtdq2ps, mulps, vfmadd (one rounding, like fmaf), maxps, minps, cvtps2dq
// (round half to even under the default MXCSR), then the zero point.
SL_AVX2 void q8_requant_rows_avx2(size_t rows, size_t cols, const int32_t *acc, size_t acc_stride, size_t m, size_t n,
                                 const soundloc_q8_requant *rq, uint8_t *c, size_t ldc) {
    const __m256 lo = _mm256_set1_ps((float)((int32_t)rq->qmin - rq->out_zp));
    const __m256 hi = _mm256_set1_ps((float)((int32_t)rq->qmax - rq->out_zp));
    const __m256i zp = _mm256_set1_epi32(rq->out_zp), rzp = _mm256_set1_epi32(rq->residual_zp);
    const __m256 rmult = _mm256_set1_ps(rq->residual_mult);
    for (size_t i = 0; i < rows; i++) {
        const int32_t *src = acc + i * acc_stride;
        uint8_t *dst = c + i * ldc;
        const uint8_t *res = rq->residual ? rq->residual + (m + i) * rq->residual_stride + n : NULL;
        size_t j = 0;
        for (; j + 8 <= cols; j += 8) {
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(src + j))),
                                     _mm256_loadu_ps(rq->scale + n + j));
            if (res) {
                const __m256i r = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(res + j)));
                t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(r, rzp)), rmult, t);
            }
            t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
            const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(t), zp);
            const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
            _mm_storel_epi64((__m128i *)(dst + j), _mm_packus_epi16(q16, q16));
        }
        for (; j < cols; j++)
            dst[j] = q8_requant_scalar(src[j], rq->scale[n + j], rq, res ? res + j : NULL);
    }
}

static const q8_gemm_config avx2_config = {
    Q8_IMPL_AVX2, MR, NR, KR, MC, KC, 8, 2, avx2_pack_a, avx2_ukernel, q8_requant_rows_avx2,
};

Q8_DEFINE_IMPL(q8_impl_avx2, "avx2", avx2, avx2_config)

#endif

// aarch64 q8 GEMM with the dot-product extension (Cortex-A76 / Pi 5, A55, A78), 4×16 tile, 4 K per sdot lane.
// sdot is s8×s8 and usdot is absent on A76, so activations are fed as a − 128 and the packed bias terms carry
// +128·Σw; the int32 sums are exact. Per 8 K: four 8-byte activation loads, eight weight loads, 32 sdot.
// Packed panel (16 columns): 16 int32 bias terms, then per 8 K two 64-byte groups (K 0–3, then K 4–7), each
// holding columns 0…15 × 4 consecutive K.
#if defined(__aarch64__)

#include <arm_neon.h>

#include "q8-gemm-neon.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#define SL_DOTPROD __attribute__((target("dotprod")))
#else
#define SL_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

#define MR 4
#define NR 16
#define KR 8
#define MC 16
#define KC 1024

_Static_assert(MC * KC <= Q8_ABUF_BYTES, "activation block exceeds the driver's buffer");
_Static_assert(MC * 8 * NR <= Q8_ACC_ELEMS, "accumulator block exceeds the driver's buffer");

static size_t dot_packed_size(size_t n, size_t k) { return q8_packed_size_tiled(n, k, NR, KR); }

static int dot_pack_weights(size_t n, size_t k, const int8_t *w, const int32_t *bias, uint8_t a_zp, void *packed) {
    return q8_pack_weights_tiled(n, k, w, bias, a_zp, 128, Q8_IMPL_NEONDOT, NR, KR, 4, packed);
}

#define ROWS(X) X(0) X(1) X(2) X(3)

SL_DOTPROD static void dot_ukernel(size_t mr_valid, size_t kc, const void *a, size_t a_stride, const int8_t *w,
                                   const int32_t *bias, int32_t *acc, size_t acc_stride) {
    const int8_t *ap[MR];
    for (size_t r = 0; r < MR; r++) ap[r] = (const int8_t *)a + (r < mr_valid ? r : mr_valid - 1) * a_stride;
#define DECL(r)                                                        \
    const int8_t *a##r = ap[r];                                        \
    const int32_t *s##r = bias ? bias : acc + r * acc_stride;          \
    int32x4_t c##r##0 = vld1q_s32(s##r), c##r##1 = vld1q_s32(s##r + 4); \
    int32x4_t c##r##2 = vld1q_s32(s##r + 8), c##r##3 = vld1q_s32(s##r + 12);
    ROWS(DECL)
#undef DECL
    for (size_t k = 0; k < kc; k += KR) {
        const int8x16_t b0 = vld1q_s8(w), b1 = vld1q_s8(w + 16), b2 = vld1q_s8(w + 32), b3 = vld1q_s8(w + 48);
        const int8x16_t b4 = vld1q_s8(w + 64), b5 = vld1q_s8(w + 80), b6 = vld1q_s8(w + 96), b7 = vld1q_s8(w + 112);
        w += NR * KR;
#define STEP(r)                                        \
    {                                                  \
        const int8x8_t x = vld1_s8(a##r + k);          \
        c##r##0 = vdotq_lane_s32(c##r##0, b0, x, 0);   \
        c##r##1 = vdotq_lane_s32(c##r##1, b1, x, 0);   \
        c##r##2 = vdotq_lane_s32(c##r##2, b2, x, 0);   \
        c##r##3 = vdotq_lane_s32(c##r##3, b3, x, 0);   \
        c##r##0 = vdotq_lane_s32(c##r##0, b4, x, 1);   \
        c##r##1 = vdotq_lane_s32(c##r##1, b5, x, 1);   \
        c##r##2 = vdotq_lane_s32(c##r##2, b6, x, 1);   \
        c##r##3 = vdotq_lane_s32(c##r##3, b7, x, 1);   \
    }
        ROWS(STEP)
#undef STEP
    }
#define STORE(r)                                                                               \
    vst1q_s32(acc + r * acc_stride, c##r##0), vst1q_s32(acc + r * acc_stride + 4, c##r##1);    \
    vst1q_s32(acc + r * acc_stride + 8, c##r##2), vst1q_s32(acc + r * acc_stride + 12, c##r##3);
    ROWS(STORE)
#undef STORE
}

static const q8_gemm_config dot_config = {
    Q8_IMPL_NEONDOT, MR, NR, KR, MC, KC, 8, 1, q8_pack_a_s8_neon, dot_ukernel, q8_requant_neon,
};

Q8_DEFINE_IMPL(q8_impl_neondot, "neondot", dot, dot_config)

#endif

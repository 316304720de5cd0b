// aarch64 NEON q8 GEMM without the dot-product extension (Cortex-A72 / Pi 4), 2×8 tile, 16 K per step.
// Exact: activations fed as s8 (a − 128), weights in [−127, 127]; smull + smlal add two products of magnitude
// ≤ 128·127 into s16 (≤ 32512, no overflow), sadalp then widens into int32. Each accumulator holds four partial sums
// of one (row, column), reduced once per K chunk. Packed panel (8 columns): 8 int32 bias terms, then per 16 K
// 128 bytes: column 0's 16 weights, column 1's, … column 7's.
#if defined(__aarch64__)

#include <arm_neon.h>

#include "q8-gemm-neon.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define MR 2
#define NR 8
#define KR 16
#define MC 16
#define KC 1024

_Static_assert(MC * KC <= Q8_ABUF_BYTES, "activation block exceeds the driver's buffer");
_Static_assert(MC * 16 * NR <= Q8_ACC_ELEMS, "accumulator block exceeds the driver's buffer");

static size_t neon_packed_size(size_t n, size_t k) { return q8_packed_size_tiled(n, k, NR, KR); }

static int neon_pack_weights(size_t n, size_t k, const int8_t *w, const int32_t *bias, uint8_t a_zp, void *packed) {
    return q8_pack_weights_tiled(n, k, w, bias, a_zp, 128, Q8_IMPL_NEON, NR, KR, KR, packed);
}

static inline int32x4_t reduce4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

static void neon_ukernel(size_t mr_valid, size_t kc, const void *a, size_t a_stride, const int8_t *w,
                         const int32_t *bias, int32_t *acc, size_t acc_stride) {
    const int8_t *a0 = (const int8_t *)a;
    const int8_t *a1 = mr_valid > 1 ? a0 + a_stride : a0;
    int32x4_t v0[NR], v1[NR];
    for (int j = 0; j < NR; j++) v0[j] = v1[j] = vdupq_n_s32(0);
    for (size_t k = 0; k < kc; k += KR) {
        const int8x16_t x0 = vld1q_s8(a0 + k), x1 = vld1q_s8(a1 + k);
        for (int j = 0; j < NR; j++) {
            const int8x16_t b = vld1q_s8(w + j * KR);
            int16x8_t p0 = vmull_s8(vget_low_s8(x0), vget_low_s8(b));
            int16x8_t p1 = vmull_s8(vget_low_s8(x1), vget_low_s8(b));
            p0 = vmlal_high_s8(p0, x0, b);
            p1 = vmlal_high_s8(p1, x1, b);
            v0[j] = vpadalq_s16(v0[j], p0);
            v1[j] = vpadalq_s16(v1[j], p1);
        }
        w += NR * KR;
    }
    const int32_t *b0 = bias ? bias : acc, *b1 = bias ? bias : acc + acc_stride;
    vst1q_s32(acc, vaddq_s32(vld1q_s32(b0), reduce4(v0[0], v0[1], v0[2], v0[3])));
    vst1q_s32(acc + 4, vaddq_s32(vld1q_s32(b0 + 4), reduce4(v0[4], v0[5], v0[6], v0[7])));
    vst1q_s32(acc + acc_stride, vaddq_s32(vld1q_s32(b1), reduce4(v1[0], v1[1], v1[2], v1[3])));
    vst1q_s32(acc + acc_stride + 4, vaddq_s32(vld1q_s32(b1 + 4), reduce4(v1[4], v1[5], v1[6], v1[7])));
}

static const q8_gemm_config neon_config = {
    Q8_IMPL_NEON, MR, NR, KR, MC, KC, 16, 1, q8_pack_a_s8_neon, neon_ukernel, q8_requant_neon,
};

Q8_DEFINE_IMPL(q8_impl_neon, "neon", neon, neon_config)

#endif

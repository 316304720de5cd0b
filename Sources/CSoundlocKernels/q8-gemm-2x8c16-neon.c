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

#if defined(__GNUC__) && !defined(SOUNDLOC_NEON_C_UKERNEL)
// One K step (16 K × 8 columns × 2 rows) in inline assembly (GCC and clang). Written with intrinsics (the fallback
// below), clang -O2 hoists all 8 weight loads and all 16 SMULL/SMLAL2 pairs of a step ahead of their SADALPs: 16
// accumulators + 16 products + 2 activations + 8 weights exceed the 32 vector registers, and 8 accumulators went to
// the stack every step (81 instructions per step, 42.1 cycles in llvm-mca's Cortex-A72 model). Here each column's
// SMULL ×2, SMLAL2 ×2 and SADALP ×2 stay together, so at most 16 accumulators + 2 activations + 4 weights + 4
// products = 26 registers are live: 57 instructions per step under clang and gcc, no spills, 32.1 cycles in
// llvm-mca (the bound is 32: the 32 SMULL/SMLAL2 issue on F0 only). Products alternate between p0/p1 and p2/p3 so
// neighbouring columns do not share registers.
#define Q8_NEON_COL(b, c0, c1, p, q)                                                                                    \
    "smull  %[" #p "].8h, %[x0].8b, %[" #b "].8b\n\t"                                                                  \
    "smull  %[" #q "].8h, %[x1].8b, %[" #b "].8b\n\t"                                                                  \
    "smlal2 %[" #p "].8h, %[x0].16b, %[" #b "].16b\n\t"                                                                \
    "smlal2 %[" #q "].8h, %[x1].16b, %[" #b "].16b\n\t"                                                                \
    "sadalp %[" #c0 "].4s, %[" #p "].8h\n\t"                                                                           \
    "sadalp %[" #c1 "].4s, %[" #q "].8h\n\t"

// Four columns of one K step (the caller's x0, x1, w, b0-b3, p0-p3): their 64 bytes of weights by post-indexed LDP
// (advancing w), then per column SMULL ×2, SMLAL2 ×2, SADALP ×2. Two statements per K step because GCC allows 30 asm
// operands, a "+" operand counting twice: 8 accumulators + the weight pointer (18) + 8 scratch + 2 activations + the
// weights' memory = 29.
#define Q8_NEON_4COLS(r0c0, r0c1, r0c2, r0c3, r1c0, r1c1, r1c2, r1c3)                                                  \
    __asm__("ldp    %q[b0], %q[b1], [%[w]], #32\n\t"                                                                   \
            "ldp    %q[b2], %q[b3], [%[w]], #32\n\t"                                                                   \
            Q8_NEON_COL(b0, a0, a4, p0, p1)                                                                            \
            Q8_NEON_COL(b1, a1, a5, p2, p3)                                                                            \
            Q8_NEON_COL(b2, a2, a6, p0, p1)                                                                            \
            Q8_NEON_COL(b3, a3, a7, p2, p3)                                                                            \
            : [a0] "+w"(r0c0), [a1] "+w"(r0c1), [a2] "+w"(r0c2), [a3] "+w"(r0c3),                                      \
              [a4] "+w"(r1c0), [a5] "+w"(r1c1), [a6] "+w"(r1c2), [a7] "+w"(r1c3), [w] "+r"(w),                          \
              [b0] "=&w"(b0), [b1] "=&w"(b1), [b2] "=&w"(b2), [b3] "=&w"(b3),                                          \
              [p0] "=&w"(p0), [p1] "=&w"(p1), [p2] "=&w"(p2), [p3] "=&w"(p3)                                           \
            : [x0] "w"(x0), [x1] "w"(x1), "m"(*(const int8_t(*)[4 * KR])w))

static void neon_ukernel(size_t mr_valid, size_t kc, const void *a, size_t a_stride, const int8_t *w,
                         const int32_t *bias, int32_t *acc, size_t acc_stride) {
    const int8_t *a0 = (const int8_t *)a;
    const int8_t *a1 = mr_valid > 1 ? a0 + a_stride : a0;
    // cRJ: row R, column J.
    int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c05 = c00, c06 = c00, c07 = c00;
    int32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00, c14 = c00, c15 = c00, c16 = c00, c17 = c00;
    for (size_t k = 0; k < kc; k += KR) {
        const int8x16_t x0 = vld1q_s8(a0 + k), x1 = vld1q_s8(a1 + k);
        int8x16_t b0, b1, b2, b3;
        int16x8_t p0, p1, p2, p3;
        Q8_NEON_4COLS(c00, c01, c02, c03, c10, c11, c12, c13);
        Q8_NEON_4COLS(c04, c05, c06, c07, c14, c15, c16, c17);
    }
    const int32_t *b0 = bias ? bias : acc, *b1 = bias ? bias : acc + acc_stride;
    vst1q_s32(acc, vaddq_s32(vld1q_s32(b0), reduce4(c00, c01, c02, c03)));
    vst1q_s32(acc + 4, vaddq_s32(vld1q_s32(b0 + 4), reduce4(c04, c05, c06, c07)));
    vst1q_s32(acc + acc_stride, vaddq_s32(vld1q_s32(b1), reduce4(c10, c11, c12, c13)));
    vst1q_s32(acc + acc_stride + 4, vaddq_s32(vld1q_s32(b1 + 4), reduce4(c14, c15, c16, c17)));
}
#undef Q8_NEON_COL
#undef Q8_NEON_4COLS

#else
// Portable intrinsics (compilers without GNU inline assembly, or -DSOUNDLOC_NEON_C_UKERNEL): the same arithmetic.
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
#endif

static const q8_gemm_config neon_config = {
    Q8_IMPL_NEON, MR, NR, KR, MC, KC, 16, 1, q8_pack_a_s8_neon, neon_ukernel, q8_requant_neon,
};

Q8_DEFINE_IMPL(q8_impl_neon, "neon", neon, neon_config)

#endif

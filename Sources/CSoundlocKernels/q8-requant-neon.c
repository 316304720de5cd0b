// aarch64 requantisation shared by the neon and neondot GEMMs: the lane-wise twin of q8_requant_scalar.
// scvtf, fmul, fmla (one rounding, like fmaf), fmax, fmin, fcvtns (round half to even), then the zero point.
#if defined(__aarch64__)

#include <arm_neon.h>

#include "q8-gemm-neon.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

static inline float32x4_t requant_lanes(int32x4_t acc, const float *scale, const uint16_t *res4, int32x4_t rzp,
                                        float32x4_t rmult) {
    float32x4_t t = vmulq_f32(vcvtq_f32_s32(acc), vld1q_f32(scale));
    if (res4) {
        const int32x4_t r = vreinterpretq_s32_u32(vmovl_u16(vld1_u16(res4)));
        t = vfmaq_f32(t, vcvtq_f32_s32(vsubq_s32(r, rzp)), rmult);
    }
    return t;
}

void q8_requant_neon(size_t rows, size_t cols, const int32_t *acc, size_t acc_stride, size_t m, size_t n,
                     const soundloc_q8_requant *rq, uint8_t *c, size_t ldc) {
    const float32x4_t lo = vdupq_n_f32((float)((int32_t)rq->qmin - rq->out_zp));
    const float32x4_t hi = vdupq_n_f32((float)((int32_t)rq->qmax - rq->out_zp));
    const int32x4_t zp = vdupq_n_s32(rq->out_zp), rzp = vdupq_n_s32(rq->residual_zp);
    const float32x4_t rmult = vdupq_n_f32(rq->residual_mult);
    for (size_t i = 0; i < rows; i++) {
        const int32_t *src = acc + i * acc_stride;
        uint8_t *dst = c + i * ldc;
        const uint8_t *res = rq->residual ? rq->residual + (m + i) * rq->residual_stride + n : NULL;
        size_t j = 0;
        for (; j + 8 <= cols; j += 8) {
            uint16_t r16[8];
            if (res) vst1q_u16(r16, vmovl_u8(vld1_u8(res + j)));
            float32x4_t t0 = requant_lanes(vld1q_s32(src + j), rq->scale + n + j, res ? r16 : NULL, rzp, rmult);
            float32x4_t t1 = requant_lanes(vld1q_s32(src + j + 4), rq->scale + n + j + 4, res ? r16 + 4 : NULL, rzp, rmult);
            t0 = vminq_f32(vmaxq_f32(t0, lo), hi);
            t1 = vminq_f32(vmaxq_f32(t1, lo), hi);
            const int32x4_t q0 = vaddq_s32(vcvtnq_s32_f32(t0), zp), q1 = vaddq_s32(vcvtnq_s32_f32(t1), zp);
            vst1_u8(dst + j, vqmovn_u16(vcombine_u16(vqmovun_s32(q0), vqmovun_s32(q1))));
        }
        for (; j < cols; j++)
            dst[j] = q8_requant_scalar(src[j], rq->scale[n + j], rq, res ? res + j : NULL);
    }
}

// Activations enter the s8×s8 kernels as a − 128 (a ^ 0x80); the packed bias terms carry the +128·Σw back.
void q8_pack_a_s8_neon(const uint8_t *a, size_t lda, size_t rows, size_t k0, size_t kvalid, size_t kcpad, void *abuf) {
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *src = a + r * lda + k0;
        uint8_t *dst = (uint8_t *)abuf + r * kcpad;
        size_t i = 0;
        for (; i + 16 <= kvalid; i += 16) vst1q_u8(dst + i, veorq_u8(vld1q_u8(src + i), flip));
        for (; i < kvalid; i++) dst[i] = src[i] ^ 0x80;
        for (; i < kcpad; i++) dst[i] = 0;
    }
}

#endif

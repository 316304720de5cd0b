// Portable scalar reference: the definition the SIMD implementations must match bit for bit. Simple on purpose.
// Packed layout: header, int32 bias terms [N] (bias − a_zp·Σw), then W row-major N×K.
#include <string.h>

#include "q8-gemm-internal.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

static size_t ref_packed_size(size_t n, size_t k) { return Q8_HEADER_BYTES + n * sizeof(int32_t) + n * k; }

static int ref_pack_weights(size_t n, size_t k, const int8_t *w, const int32_t *bias, uint8_t a_zp, void *packed) {
    if (!w || !packed || n == 0 || k == 0 || k > Q8_MAX_K || n > UINT32_MAX) return SOUNDLOC_KERNELS_EINVAL;
    q8_packed_header h = {Q8_PACKED_MAGIC, Q8_IMPL_REFERENCE, (uint32_t)n, (uint32_t)k, (uint32_t)k, 1, 1, 0};
    memcpy(packed, &h, sizeof h);
    int32_t *b = (int32_t *)((uint8_t *)packed + Q8_HEADER_BYTES);
    int8_t *wp = (int8_t *)(b + n);
    for (size_t j = 0; j < n; j++) {
        int32_t sum = 0;
        for (size_t i = 0; i < k; i++) {
            if (w[j * k + i] == INT8_MIN) return SOUNDLOC_KERNELS_EINVAL;
            sum += w[j * k + i];
        }
        b[j] = (bias ? bias[j] : 0) - (int32_t)a_zp * sum;
    }
    memcpy(wp, w, n * k);
    return SOUNDLOC_KERNELS_OK;
}

static int32_t ref_dot(const q8_packed_header *h, size_t m, size_t j, const uint8_t *a, size_t lda) {
    const int32_t *b = (const int32_t *)((const uint8_t *)h + Q8_HEADER_BYTES);
    const int8_t *w = (const int8_t *)(b + h->n) + j * h->k;
    int32_t acc = b[j];
    for (size_t i = 0; i < h->k; i++) acc += (int32_t)a[m * lda + i] * (int32_t)w[i];
    return acc;
}

static int ref_check(const q8_packed_header *h, size_t m0, size_t m1, size_t n0, size_t n1, const void *a,
                     const void *c) {
    if (!h) return SOUNDLOC_KERNELS_EPACKED;
    if (m0 > m1 || n0 > n1 || n1 > h->n) return SOUNDLOC_KERNELS_EINVAL;
    if (m0 < m1 && n0 < n1 && (!a || !c)) return SOUNDLOC_KERNELS_EINVAL;
    return SOUNDLOC_KERNELS_OK;
}

static int ref_gemm_q8(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a, size_t lda,
                       const soundloc_q8_requant *rq, uint8_t *c, size_t ldc) {
    const q8_packed_header *h = q8_packed_check(packed, Q8_IMPL_REFERENCE);
    int rc = ref_check(h, m0, m1, n0, n1, a, c);
    if (rc) return rc;
    if (!rq || !rq->scale) return SOUNDLOC_KERNELS_EINVAL;
    for (size_t m = m0; m < m1; m++)
        for (size_t j = n0; j < n1; j++) {
            const uint8_t *r = rq->residual ? &rq->residual[m * rq->residual_stride + j] : NULL;
            c[m * ldc + j] = q8_requant_scalar(ref_dot(h, m, j, a, lda), rq->scale[j], rq, r);
        }
    return SOUNDLOC_KERNELS_OK;
}

static int ref_gemm_i32(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a, size_t lda,
                        int32_t *c, size_t ldc) {
    const q8_packed_header *h = q8_packed_check(packed, Q8_IMPL_REFERENCE);
    int rc = ref_check(h, m0, m1, n0, n1, a, c);
    if (rc) return rc;
    for (size_t m = m0; m < m1; m++)
        for (size_t j = n0; j < n1; j++) c[m * ldc + j] = ref_dot(h, m, j, a, lda);
    return SOUNDLOC_KERNELS_OK;
}

const soundloc_q8_gemm_impl q8_impl_reference = {
    "reference", 1, 1, 1, ref_packed_size, ref_pack_weights, ref_gemm_q8, ref_gemm_i32,
};

void q8_requant_rows_scalar(size_t rows, size_t cols, const int32_t *acc, size_t acc_stride, size_t m, size_t n,
                            const soundloc_q8_requant *rq, uint8_t *c, size_t ldc) {
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            const uint8_t *r = rq->residual ? &rq->residual[(m + i) * rq->residual_stride + n + j] : NULL;
            c[i * ldc + j] = q8_requant_scalar(acc[i * acc_stride + j], rq->scale[n + j], rq, r);
        }
}

size_t soundloc_conv_out_size(size_t in, size_t kernel, size_t stride, size_t pad_begin, size_t pad_end) {
    if (stride == 0 || in + pad_begin + pad_end < kernel) return 0;
    return (in + pad_begin + pad_end - kernel) / stride + 1;
}

// memcpy for the short runs of the stems' im2col (21 and 7 bytes a kernel row): fixed-size pieces the compiler turns
// into a few loads and stores, overlapping when the length is not a power of two, instead of a libc call per run.
static inline void copy_run(uint8_t *dst, const uint8_t *src, size_t n) {
    if (n > 32) {
        memcpy(dst, src, n);
    } else if (n >= 16) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = src[i];
    }
}

void soundloc_u8_im2col_nhwc(const uint8_t *x, size_t h, size_t w, size_t c, size_t kh, size_t kw, size_t stride_h,
                             size_t stride_w, size_t pad_top, size_t pad_left, size_t out_w, uint8_t pad_value,
                             size_t m0, size_t m1, uint8_t *out, size_t ldo) {
    for (size_t m = m0; m < m1; m++) {
        const ptrdiff_t oy = (ptrdiff_t)(m / out_w), ox = (ptrdiff_t)(m % out_w);
        uint8_t *dst = out + m * ldo;
        for (size_t ky = 0; ky < kh; ky++, dst += kw * c) {
            const ptrdiff_t iy = oy * (ptrdiff_t)stride_h + (ptrdiff_t)ky - (ptrdiff_t)pad_top;
            if (iy < 0 || iy >= (ptrdiff_t)h) {
                memset(dst, pad_value, kw * c);
                continue;
            }
            // Taps of one kernel row that fall inside the image are consecutive pixels: one copy.
            const ptrdiff_t ix0 = ox * (ptrdiff_t)stride_w - (ptrdiff_t)pad_left;
            size_t kx_lo = ix0 < 0 ? (size_t)(-ix0) : 0;
            size_t kx_hi = ix0 + (ptrdiff_t)kw > (ptrdiff_t)w ? (size_t)((ptrdiff_t)w - ix0) : kw;
            if (kx_lo > kw) kx_lo = kw;
            if (kx_hi < kx_lo) kx_hi = kx_lo;
            if (kx_lo) memset(dst, pad_value, kx_lo * c);
            if (kx_hi > kx_lo) copy_run(dst + kx_lo * c, x + ((size_t)iy * w + (size_t)(ix0 + (ptrdiff_t)kx_lo)) * c,
                                        (kx_hi - kx_lo) * c);
            if (kx_hi < kw) memset(dst + kx_hi * c, pad_value, (kw - kx_hi) * c);
        }
    }
}

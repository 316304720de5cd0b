// soundloc's compute kernels: each operation has a portable reference and architecture-specific twins
// (avx512vnni and avx2 on x86-64; neon and neondot on aarch64), chosen once at start-up and bit-exact against the
// reference.
//
// Quantised convolution as GEMM (NHWC): C[m,n] = requant(acc[m,n]) for m < M output pixels, n < N output channels,
//   acc[m,n] = bias[n] + Σ_{k<K} (A[m,k] − a_zp) · W[n,k]        (int32, exact)
// A: uint8 activations, per-tensor zero point a_zp (0 for post-ReLU tensors). K = kh·kw·Cin in (ky, kx, c) order.
// W: int8 weights, symmetric per output channel, values in [−127, 127] (−128 is not allowed), row-major N×K.
// Exactness needs K·255·127 plus |bias| below 2^31: K ≤ 32768 with |bias| < 2^30 is safe.
// Requantisation (per output element; lrintf = round half to even; lo = qmin − out_zp, hi = qmax − out_zp):
//   t = (float)acc · scale[n];                       then, with a residual R:  t = fmaf((float)(R[m,n] − r_zp), r_mult, t)
//   out = lrintf(min(max(t, lo), hi)) + out_zp       (= clamp(round(t) + out_zp, qmin, qmax); fused ReLU: qmin = out_zp)
// Every implementation evaluates exactly these float operations in this order, so results are bit-identical.
// Scales must be finite. Work splits: rows [m0, m1) and columns [n0, n1) are absolute indices into A, C, R, scale;
// two threads may run disjoint ranges of one GEMM on the same packed weights. Kernels allocate nothing and use
// under 64 KiB of stack. Packed weights belong to the implementation that packed them (checked at run time); give
// pack_weights a buffer aligned to 16 bytes or more (64 is best).
// Implementations (tile rows × columns, exact int32 scheme): reference (scalar); avx2 6×16 (u8/s8 widened to s16,
// vpmaddwd); avx512vnni 4×64, K by 4 (u8×s8 vpdpbusd, no saturation); neon 2×8, K by 16 (a−128 as s8, smull+smlal
// into s16, sadalp into s32); neondot 4×16, K by 4 (sdot).
#ifndef SOUNDLOC_KERNELS_H
#define SOUNDLOC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Version of the kernel interface; bumped when a signature changes.
#define SOUNDLOC_KERNELS_API 2

/// Return codes.
#define SOUNDLOC_KERNELS_OK 0
#define SOUNDLOC_KERNELS_EINVAL (-1)       /* bad argument (range, null pointer, K too large) */
#define SOUNDLOC_KERNELS_EPACKED (-2)      /* packed weights are not this implementation's, or corrupt */
#define SOUNDLOC_KERNELS_EUNKNOWN (-3)     /* no implementation by that name */
#define SOUNDLOC_KERNELS_EUNSUPPORTED (-4) /* implementation not built for, or not supported by, this CPU */

/// Requantisation parameters of one q8 GEMM (see the formula above).
typedef struct soundloc_q8_requant {
    const float *scale;        /* [N] per output channel: a_scale · w_scale[n] / out_scale */
    int32_t out_zp;            /* output zero point, 0..255 */
    uint8_t qmin, qmax;        /* output clamp; qmin = out_zp fuses ReLU */
    const uint8_t *residual;   /* NULL: none; else R[m·residual_stride + n], added before the clamp */
    size_t residual_stride;    /* elements between rows of R */
    int32_t residual_zp;       /* R's zero point */
    float residual_mult;       /* r_scale / out_scale */
} soundloc_q8_requant;

/// One implementation's entry points (tests call each directly; the engine uses the active one).
typedef struct soundloc_q8_gemm_impl {
    const char *name;          /* "reference", "avx2", "avx512vnni", "neon", "neondot" */
    uint32_t mr, nr, kr;       /* register tile rows × columns; K is padded to a multiple of kr */
    /// Bytes needed to pack an N×K weight matrix.
    size_t (*packed_size)(size_t n, size_t k);
    /// Packs W (row-major N×K, int8 in [−127,127]) and bias (NULL = zeros) for activations with zero point a_zp.
    int (*pack_weights)(size_t n, size_t k, const int8_t *w, const int32_t *bias, uint8_t a_zp, void *packed);
    /// Rows [m0,m1) × columns [n0,n1) of the requantised product into C[m·ldc + n]; A row m at a + m·lda.
    int (*gemm_q8)(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a, size_t lda,
                   const soundloc_q8_requant *rq, uint8_t *c, size_t ldc);
    /// Same product without requantisation: the raw int32 accumulators acc[m,n] into C[m·ldc + n].
    int (*gemm_i32)(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a, size_t lda,
                    int32_t *c, size_t ldc);
} soundloc_q8_gemm_impl;

/// Implementation by name, or NULL if this build has none by that name (it may still be unsupported by the CPU).
const soundloc_q8_gemm_impl *soundloc_kernels_impl(const char *name);
/// 1 if the named implementation is built in and this CPU can run it, else 0.
int soundloc_kernels_supported(const char *name);
/// The i-th implementation name of any architecture, best first ("avx512vnni", "avx2", "neondot", "neon",
/// "reference"); NULL past the end.
const char *soundloc_kernels_name(size_t i);
/// The CPU's SIMD features the implementations depend on, e.g. "avx2 fma no avx512bw no avx512vnni".
const char *soundloc_kernels_cpu_features(void);
/// The choice selecting with NULL falls back to when $SOUNDLOC_KERNELS is unset (a board config's engine.kernels);
/// NULL restores the best the CPU supports. Refuses (and keeps the old default) an unknown or unsupported name.
int soundloc_kernels_set_default(const char *name_or_null);
/// Selects the implementation: name, or NULL = $SOUNDLOC_KERNELS if set, else the configured default, else the best
/// this CPU supports.
/// Returns SOUNDLOC_KERNELS_OK or an error code (the previous selection stays); the message is in soundloc_kernels_error().
int soundloc_kernels_select(const char *name_or_null);
/// Message of the last failed soundloc_kernels_select on any thread ("" if none).
const char *soundloc_kernels_error(void);
/// The active implementation (selecting with NULL first if nothing was selected yet); never NULL.
const soundloc_q8_gemm_impl *soundloc_kernels_active(void);
/// Name of the active implementation.
const char *soundloc_kernels_active_name(void);

/// Active implementation's packed_size / pack_weights / gemm_q8 / gemm_i32 (see the struct above).
size_t soundloc_q8_gemm_packed_size(size_t n, size_t k);
int soundloc_q8_gemm_pack_weights(size_t n, size_t k, const int8_t *w, const int32_t *bias, uint8_t a_zp, void *packed);
int soundloc_q8_gemm(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a, size_t lda,
                     const soundloc_q8_requant *rq, uint8_t *c, size_t ldc);
int soundloc_q8_gemm_i32(const void *packed, size_t m0, size_t m1, size_t n0, size_t n1, const uint8_t *a, size_t lda,
                         int32_t *c, size_t ldc);

/// Winograd F(2×2,3×3) for 3×3 stride-1 pad-1 convolutions (q8-winograd-f2x2-3x3.c): the same output as the GEMM
/// path bit for bit (exact integer transforms, see the file), 2.25× fewer multiplications. Weights OHWI N×3×3×C.
/// Flavours: SOUNDLOC_WINO_BEST (AVX2 where the CPU has it, else portable C) or SOUNDLOC_WINO_SCALAR (portable C).
#define SOUNDLOC_WINO_BEST 0
#define SOUNDLOC_WINO_SCALAR 1
/// 1 when the engine should take this path for 3×3 stride-1 layers: the active GEMM is avx2 (no VNNI/NEON dot).
int soundloc_q8_wino_preferred(void);
size_t soundloc_q8_wino_packed_size(size_t n, size_t c);
int soundloc_q8_wino_pack_weights(size_t n, size_t c, const int8_t *w, const int32_t *bias, void *packed);
/// Bytes of workspace for an h×w×c input (any alignment; it is aligned inside).
size_t soundloc_q8_wino_workspace_size(size_t h, size_t w, size_t c, size_t n);
/// Output rows [2·ty0, min(2·ty1, h)) of y (h×w×N NHWC) from x (h×w×c, zero point a_zp); tile rows [ty0, ty1) of
/// ceil(h/2). Disjoint tile-row ranges may run concurrently on one workspace. rq as for soundloc_q8_gemm (residual
/// laid out like y).
int soundloc_q8_wino_conv(int flavor, const void *packed, const uint8_t *x, size_t h, size_t w, size_t c, uint8_t a_zp,
                          size_t ty0, size_t ty1, const soundloc_q8_requant *rq, uint8_t *y, void *workspace);
/// The same work in two phases split another way, for threads: first the input transform of tile rows [ty0, ty1)
/// (phase 1; every tile row must be done, by any split, before phase 2 starts), then output columns [n0, n1) of every
/// pixel (phase 2; n0 a multiple of 16 unless the range is empty, so each thread reads only its columns' weights).
/// Same result.
int soundloc_q8_wino_transform(int flavor, const void *packed, const uint8_t *x, size_t h, size_t w, size_t c,
                               uint8_t a_zp, size_t ty0, size_t ty1, void *workspace);
int soundloc_q8_wino_finish(int flavor, const void *packed, size_t h, size_t w, size_t n0, size_t n1,
                            const soundloc_q8_requant *rq, uint8_t *y, void *workspace);

/// NHWC uint8 im2col of output pixels [m0,m1) (m = oy·out_w + ox): row m, K = kh·kw·c in (ky,kx,c) order,
/// written to out + m·ldo; taps outside the input read pad_value (the activation zero point).
void soundloc_u8_im2col_nhwc(const uint8_t *x, size_t h, size_t w, size_t c, size_t kh, size_t kw, size_t stride_h,
                             size_t stride_w, size_t pad_top, size_t pad_left, size_t out_w, uint8_t pad_value,
                             size_t m0, size_t m1, uint8_t *out, size_t ldo);
/// Output size of a convolution along one axis: (in + pad_begin + pad_end − kernel) / stride + 1 (0 if it does not fit).
size_t soundloc_conv_out_size(size_t in, size_t kernel, size_t stride, size_t pad_begin, size_t pad_end);

#ifdef __cplusplus
}
#endif

#endif

// Exact int8 Winograd F(2×2, 3×3) for 3×3 stride-1 pad-1 convolutions: 16 multiplications per 2×2 output tile and
// channel pair instead of 36, so on AVX2 (no VNNI) the 3×3 layers need 2.25× fewer vpmaddwd than the direct GEMM.
//
// With d = x − a_zp (|d| ≤ 255, zero in the padding), V = Bᵀ d B (|V| ≤ 4·255 = 1020) and U4 = G₂ g G₂ᵀ where
// G₂ = 2G is integral (|U4| ≤ 9·127 = 1143), both fit int16. Per ξ of the 4×4 tile, M = Σ_c V·U4 (vpmaddwd pairs:
// |2·1020·1143| < 2^31, no saturation); Y = Aᵀ M A is 4× the direct convolution's sum, whose |4·K·255·127| < 2^31
// (K ≤ 9·C ≤ Q8_MAX_K). Every step is an integer ring operation, so computing M and Y with wrapping 32-bit
// arithmetic gives Y mod 2^32, which equals Y because Y fits; Y is divisible by 4 and Y/4 + bias is exactly the
// reference accumulator. Requantisation is q8_requant_scalar's. Hence bit-identical to the direct path.
//
// Packed weights: header, N int32 biases (padded to 16), then per ξ and 16-column panel, per channel pair,
// 16 columns × 2 channels of int16 [n0c0 n0c1 n1c0 n1c1 …]. Workspace (absolute tile index t = ty·tiles_w + tx, so
// threads with disjoint tile rows never overlap): V[ξ][t][cpad] int16, M[ξ][t][npad] int32, then the int32
// accumulators of the output pixels, [pixel][N].
#include <string.h>

#include "q8-gemm-internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define WINO_NR 16
#define WINO_MR 6
#define WINO_IMPL 0x57493233u /* packed-weight tag "23IW" */

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

size_t soundloc_q8_wino_packed_size(size_t n, size_t c) {
    const size_t npad = round_up(n, WINO_NR), cpad = round_up(c, 2);
    return Q8_HEADER_BYTES + npad * sizeof(int32_t) + 16 * npad * cpad * sizeof(int16_t);
}

int soundloc_q8_wino_pack_weights(size_t n, size_t c, const int8_t *w, const int32_t *bias, void *packed) {
    if (!w || !packed || n == 0 || c == 0 || 9 * c > Q8_MAX_K || n > UINT32_MAX) return SOUNDLOC_KERNELS_EINVAL;
    for (size_t i = 0; i < n * 9 * c; i++)
        if (w[i] == INT8_MIN) return SOUNDLOC_KERNELS_EINVAL;
    const size_t npad = round_up(n, WINO_NR), cpad = round_up(c, 2);
    q8_packed_header h = {Q8_PACKED_MAGIC, WINO_IMPL, (uint32_t)n, (uint32_t)c, (uint32_t)cpad, WINO_NR, 2, 0};
    memcpy(packed, &h, sizeof h);
    int32_t *b = (int32_t *)((uint8_t *)packed + Q8_HEADER_BYTES);
    int16_t *u = (int16_t *)(b + npad);
    memset(b, 0, npad * sizeof(int32_t) + 16 * npad * cpad * sizeof(int16_t));
    static const int g2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
    for (size_t j = 0; j < n; j++) {
        b[j] = bias ? bias[j] : 0;
        for (size_t ch = 0; ch < c; ch++) {
            int gt[4][3];  // G₂ g, g[ky][kx] = w[j][ky][kx][ch] (OHWI)
            for (int i = 0; i < 4; i++)
                for (int kx = 0; kx < 3; kx++) {
                    int s = 0;
                    for (int ky = 0; ky < 3; ky++) s += g2[i][ky] * w[((j * 3 + ky) * 3 + kx) * c + ch];
                    gt[i][kx] = s;
                }
            for (int i = 0; i < 4; i++)
                for (int k = 0; k < 4; k++) {
                    int s = 0;
                    for (int kx = 0; kx < 3; kx++) s += gt[i][kx] * g2[k][kx];
                    const size_t xi = (size_t)(i * 4 + k), panel = j / WINO_NR;
                    u[((xi * (npad / WINO_NR) + panel) * cpad + (ch & ~(size_t)1)) * WINO_NR + (j % WINO_NR) * 2 + (ch & 1)] =
                        (int16_t)s;
                }
        }
    }
    return SOUNDLOC_KERNELS_OK;
}

size_t soundloc_q8_wino_workspace_size(size_t h, size_t w, size_t c, size_t n) {
    const size_t tiles = round_up(h, 2) / 2 * (round_up(w, 2) / 2);
    return 16 * tiles * round_up(c, 2) * sizeof(int16_t) + 16 * tiles * round_up(n, WINO_NR) * sizeof(int32_t) +
           h * w * n * sizeof(int32_t) + 64;
}

// V for tiles of rows [ty0, ty1): Bᵀ d B per channel, d = x − zp with zeros outside the image.
static void input_transform(const uint8_t *x, size_t h, size_t w, size_t c, uint8_t zp, size_t ty0, size_t ty1,
                            size_t tiles, size_t tiles_w, size_t cpad, size_t cfirst, int16_t *v) {
    int16_t d[4][4][64], t[4][4][64];
    for (size_t ty = ty0; ty < ty1; ty++)
        for (size_t tx = 0; tx < tiles_w; tx++) {
            const size_t tile = ty * tiles_w + tx;
            for (size_t c0 = cfirst; c0 < cpad; c0 += 64) {
                const size_t cn = cpad - c0 < 64 ? cpad - c0 : 64;
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) {
                        const long yy = (long)(2 * ty) - 1 + i, xx = (long)(2 * tx) - 1 + j;
                        const int inside = yy >= 0 && yy < (long)h && xx >= 0 && xx < (long)w;
                        const uint8_t *src = inside ? x + ((size_t)yy * w + (size_t)xx) * c + c0 : NULL;
                        for (size_t k = 0; k < cn; k++)
                            d[i][j][k] = (inside && c0 + k < c) ? (int16_t)((int)src[k] - (int)zp) : 0;
                    }
                for (int j = 0; j < 4; j++)  // columns of Bᵀ d
                    for (size_t k = 0; k < cn; k++) {
                        const int16_t d0 = d[0][j][k], d1 = d[1][j][k], d2 = d[2][j][k], d3 = d[3][j][k];
                        t[0][j][k] = (int16_t)(d0 - d2);
                        t[1][j][k] = (int16_t)(d1 + d2);
                        t[2][j][k] = (int16_t)(d2 - d1);
                        t[3][j][k] = (int16_t)(d1 - d3);
                    }
                for (int i = 0; i < 4; i++) {  // rows of (Bᵀ d) B
                    int16_t *v0 = v + ((size_t)(i * 4 + 0) * tiles + tile) * cpad + c0;
                    int16_t *v1 = v + ((size_t)(i * 4 + 1) * tiles + tile) * cpad + c0;
                    int16_t *v2 = v + ((size_t)(i * 4 + 2) * tiles + tile) * cpad + c0;
                    int16_t *v3 = v + ((size_t)(i * 4 + 3) * tiles + tile) * cpad + c0;
                    for (size_t k = 0; k < cn; k++) {
                        const int16_t a0 = t[i][0][k], a1 = t[i][1][k], a2 = t[i][2][k], a3 = t[i][3][k];
                        v0[k] = (int16_t)(a0 - a2);
                        v1[k] = (int16_t)(a1 + a2);
                        v2[k] = (int16_t)(a2 - a1);
                        v3[k] = (int16_t)(a1 - a3);
                    }
                }
            }
        }
}

// m[r·ldm + j] = Σ_{k<cpad} v[r·cpad + k]·u[(k/2)·32 + 2j + k%2] (wrapping) for r < rows ≤ 6, j < 16.
typedef void (*wino_ukernel)(size_t rows, size_t cpad, const int16_t *v, const int16_t *u, int32_t *m, size_t ldm);

static void ukernel_scalar(size_t rows, size_t cpad, const int16_t *v, const int16_t *u, int32_t *m, size_t ldm) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < WINO_NR; j++) {
            uint32_t s = 0;
            for (size_t k = 0; k < cpad; k++)
                s += (uint32_t)((int32_t)v[r * cpad + k] * (int32_t)u[(k / 2) * 2 * WINO_NR + 2 * j + (k & 1)]);
            m[r * ldm + j] = (int32_t)s;
        }
}

#if defined(__x86_64__)
#define SL_AVX2 __attribute__((target("avx2,fma")))
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

// 6×16 tile over all channels: per channel pair six broadcasts, two weight loads, 12 vpmaddwd and 12 vpaddd.
SL_AVX2 static void ukernel_avx2(size_t rows, size_t cpad, const int16_t *v, const int16_t *u, int32_t *m, size_t ldm) {
    const int16_t *vp[WINO_MR];
    for (size_t r = 0; r < WINO_MR; r++) vp[r] = v + (r < rows ? r : rows - 1) * cpad;
#define DECL(r)                     \
    const int16_t *v##r = vp[r];    \
    __m256i c##r##0 = _mm256_setzero_si256(), c##r##1 = _mm256_setzero_si256();
    ROWS(DECL)
#undef DECL
    for (size_t k = 0; k < cpad; k += 2) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)u);
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(u + 16));
        u += 2 * WINO_NR;
#define STEP(r)                                                               \
    {                                                                         \
        int32_t pair;                                                         \
        memcpy(&pair, v##r + k, sizeof pair);                                 \
        const __m256i va = _mm256_set1_epi32(pair);                           \
        c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(va, w0));       \
        c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(va, w1));       \
    }
        ROWS(STEP)
#undef STEP
    }
    int32_t tmp[WINO_MR][WINO_NR];
#define STORE(r)                                                  \
    _mm256_storeu_si256((__m256i *)tmp[r], c##r##0);              \
    _mm256_storeu_si256((__m256i *)(tmp[r] + 8), c##r##1);
    ROWS(STORE)
#undef STORE
    for (size_t r = 0; r < rows; r++) memcpy(m + r * ldm, tmp[r], sizeof tmp[r]);
}

// input_transform for 16 channels at a time (the scalar one finishes the last c mod 16).
SL_AVX2 static void input_transform_avx2(const uint8_t *x, size_t h, size_t w, size_t c, uint8_t zp, size_t ty0,
                                         size_t ty1, size_t tiles, size_t tiles_w, size_t cpad, int16_t *v) {
    const __m256i z = _mm256_set1_epi16(zp);
    for (size_t ty = ty0; ty < ty1; ty++)
        for (size_t tx = 0; tx < tiles_w; tx++) {
            const size_t tile = ty * tiles_w + tx;
            const uint8_t *src[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    const long yy = (long)(2 * ty) - 1 + i, xx = (long)(2 * tx) - 1 + j;
                    src[i][j] = yy >= 0 && yy < (long)h && xx >= 0 && xx < (long)w ? x + ((size_t)yy * w + (size_t)xx) * c
                                                                                     : NULL;
                }
            for (size_t k = 0; k + 16 <= c; k += 16) {
                __m256i t[4][4];
                for (int j = 0; j < 4; j++) {
                    __m256i d[4];
                    for (int i = 0; i < 4; i++)
                        d[i] = src[i][j] ? _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(src[i][j] + k))), z)
                                         : _mm256_setzero_si256();
                    t[0][j] = _mm256_sub_epi16(d[0], d[2]);
                    t[1][j] = _mm256_add_epi16(d[1], d[2]);
                    t[2][j] = _mm256_sub_epi16(d[2], d[1]);
                    t[3][j] = _mm256_sub_epi16(d[1], d[3]);
                }
                for (int i = 0; i < 4; i++) {
                    int16_t *row = v + ((size_t)(i * 4) * tiles + tile) * cpad + k;
                    const size_t step = tiles * cpad;
                    _mm256_storeu_si256((__m256i *)row, _mm256_sub_epi16(t[i][0], t[i][2]));
                    _mm256_storeu_si256((__m256i *)(row + step), _mm256_add_epi16(t[i][1], t[i][2]));
                    _mm256_storeu_si256((__m256i *)(row + 2 * step), _mm256_sub_epi16(t[i][2], t[i][1]));
                    _mm256_storeu_si256((__m256i *)(row + 3 * step), _mm256_sub_epi16(t[i][1], t[i][3]));
                }
            }
        }
}

// output_transform for 8 columns at a time (the scalar one finishes the columns left over).
SL_AVX2 static void output_transform_avx2(const int32_t *m, const int32_t *bias, size_t n, size_t npad, size_t tiles,
                                          size_t tiles_w, size_t ty0, size_t ty1, size_t h, size_t w, size_t nfirst,
                                          size_t nlast, int32_t *acc) {
    for (size_t ty = ty0; ty < ty1; ty++)
        for (size_t tx = 0; tx < tiles_w; tx++) {
            const size_t tile = ty * tiles_w + tx;
            const int32_t *m0 = m + tile * npad;
            const size_t step = tiles * npad;
            const size_t y0 = 2 * ty, x0 = 2 * tx;
            int32_t *o00 = acc + (y0 * w + x0) * n, *o01 = o00 + n, *o10 = o00 + w * n, *o11 = o10 + n;
            const int has_x1 = x0 + 1 < w, has_y1 = y0 + 1 < h;
            for (size_t j = nfirst; j + 8 <= nlast; j += 8) {
                __m256i r0[4], r1[4];
                for (int k = 0; k < 4; k++) {
                    const __m256i a = _mm256_loadu_si256((const __m256i *)(m0 + (size_t)k * step + j));
                    const __m256i b = _mm256_loadu_si256((const __m256i *)(m0 + (size_t)(4 + k) * step + j));
                    const __m256i c = _mm256_loadu_si256((const __m256i *)(m0 + (size_t)(8 + k) * step + j));
                    const __m256i d = _mm256_loadu_si256((const __m256i *)(m0 + (size_t)(12 + k) * step + j));
                    r0[k] = _mm256_add_epi32(_mm256_add_epi32(a, b), c);
                    r1[k] = _mm256_sub_epi32(_mm256_sub_epi32(b, c), d);
                }
                const __m256i bj = _mm256_loadu_si256((const __m256i *)(bias + j));
#define OUT(dst, r, plus)                                                                                         \
    _mm256_storeu_si256((__m256i *)(dst + j),                                                                     \
                        _mm256_add_epi32(bj, _mm256_srai_epi32(plus ? _mm256_add_epi32(_mm256_add_epi32(r[0], r[1]), r[2]) \
                                                                    : _mm256_sub_epi32(_mm256_sub_epi32(r[1], r[2]), r[3]), 2)))
                OUT(o00, r0, 1);
                if (has_x1) OUT(o01, r0, 0);
                if (has_y1) OUT(o10, r1, 1);
                if (has_x1 && has_y1) OUT(o11, r1, 0);
#undef OUT
            }
        }
}
#endif

// The tiles [t0, t1) and panels [p0, p1) through every ξ: M[ξ][t][n] = Σ_c V[ξ][t][c]·U4[ξ][n][c].
static void multiply(wino_ukernel uk, const int16_t *u, size_t npanels, size_t cpad, const int16_t *v, size_t tiles,
                     size_t t0, size_t t1, size_t p0, size_t p1, int32_t *m) {
    const size_t npad = npanels * WINO_NR;
    for (size_t xi = 0; xi < 16; xi++)
        for (size_t p = p0; p < p1; p++) {
            const int16_t *up = u + (xi * npanels + p) * cpad * WINO_NR;
            for (size_t t = t0; t < t1; t += WINO_MR)
                uk(t1 - t < WINO_MR ? t1 - t : WINO_MR, cpad, v + (xi * tiles + t) * cpad, up,
                   m + (xi * tiles + t) * npad + p * WINO_NR, npad);
        }
}

// Aᵀ M A of every tile in rows [ty0, ty1), divided by 4, plus the bias: the int32 accumulators of those pixels.
static void output_transform(const int32_t *m, const int32_t *bias, size_t n, size_t npad, size_t tiles, size_t tiles_w,
                             size_t ty0, size_t ty1, size_t h, size_t w, size_t nfirst, size_t nlast, int32_t *acc) {
    for (size_t ty = ty0; ty < ty1; ty++)
        for (size_t tx = 0; tx < tiles_w; tx++) {
            const size_t tile = ty * tiles_w + tx;
            const int32_t *mx[16];
            for (size_t xi = 0; xi < 16; xi++) mx[xi] = m + (xi * tiles + tile) * npad;
            const size_t y0 = 2 * ty, x0 = 2 * tx;
            int32_t *o00 = acc + (y0 * w + x0) * n, *o01 = o00 + n, *o10 = o00 + w * n, *o11 = o10 + n;
            const int has_x1 = x0 + 1 < w, has_y1 = y0 + 1 < h;
            for (size_t j = nfirst; j < nlast; j++) {
                uint32_t r0[4], r1[4];  // rows of Aᵀ M (wrapping)
                for (int k = 0; k < 4; k++) {
                    const uint32_t a = (uint32_t)mx[k][j], b = (uint32_t)mx[4 + k][j], c = (uint32_t)mx[8 + k][j],
                                   d = (uint32_t)mx[12 + k][j];
                    r0[k] = a + b + c;
                    r1[k] = b - c - d;
                }
                const uint32_t bj = (uint32_t)bias[j];
                // Y is an exact multiple of 4 that fits int32, so the arithmetic shift of its two's-complement value is Y/4.
                o00[j] = (int32_t)(bj + (uint32_t)((int32_t)(r0[0] + r0[1] + r0[2]) >> 2));
                if (has_x1) o01[j] = (int32_t)(bj + (uint32_t)((int32_t)(r0[1] - r0[2] - r0[3]) >> 2));
                if (has_y1) o10[j] = (int32_t)(bj + (uint32_t)((int32_t)(r1[0] + r1[1] + r1[2]) >> 2));
                if (has_x1 && has_y1) o11[j] = (int32_t)(bj + (uint32_t)((int32_t)(r1[1] - r1[2] - r1[3]) >> 2));
            }
        }
}

// One call's view of the packed weights and the workspace.
typedef struct wino_run {
    wino_ukernel uk;
    size_t n, npad, cpad, tiles_h, tiles_w, tiles;
    const int32_t *bias;
    const int16_t *u;
    int16_t *v;
    int32_t *m, *acc;
} wino_run;

static int wino_begin(wino_run *r, int flavor, const void *packed, size_t h, size_t w, void *workspace) {
    const q8_packed_header *hd = q8_packed_check(packed, WINO_IMPL);
    if (!hd) return SOUNDLOC_KERNELS_EPACKED;
    if (!workspace || h == 0 || w == 0) return SOUNDLOC_KERNELS_EINVAL;
    if (flavor != SOUNDLOC_WINO_SCALAR && flavor != SOUNDLOC_WINO_BEST) return SOUNDLOC_KERNELS_EINVAL;
    r->uk = ukernel_scalar;
#if defined(__x86_64__)
    if (flavor == SOUNDLOC_WINO_BEST && soundloc_kernels_supported("avx2")) r->uk = ukernel_avx2;
#endif
    r->n = hd->n, r->cpad = hd->kpad, r->npad = round_up(r->n, WINO_NR);
    r->tiles_h = round_up(h, 2) / 2, r->tiles_w = round_up(w, 2) / 2, r->tiles = r->tiles_h * r->tiles_w;
    r->bias = (const int32_t *)((const uint8_t *)packed + Q8_HEADER_BYTES);
    r->u = (const int16_t *)(r->bias + r->npad);
    uint8_t *base = (uint8_t *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    r->v = (int16_t *)base;
    r->m = (int32_t *)(base + 16 * r->tiles * r->cpad * sizeof(int16_t));
    r->acc = r->m + 16 * r->tiles * r->npad;
    return SOUNDLOC_KERNELS_OK;
}

static void wino_transform(const wino_run *r, const uint8_t *x, size_t h, size_t w, size_t c, uint8_t zp, size_t ty0,
                           size_t ty1) {
    size_t cdone = 0;
#if defined(__x86_64__)
    if (r->uk == ukernel_avx2) {
        input_transform_avx2(x, h, w, c, zp, ty0, ty1, r->tiles, r->tiles_w, r->cpad, r->v);
        cdone = c / 16 * 16;
    }
#endif
    if (cdone < r->cpad) input_transform(x, h, w, c, zp, ty0, ty1, r->tiles, r->tiles_w, r->cpad, cdone, r->v);
}

// Tile rows [ty0, ty1), columns [n0, n1) (n0 a multiple of 16): products, output transform, requantisation.
static void wino_finish(const wino_run *r, size_t h, size_t w, size_t ty0, size_t ty1, size_t n0, size_t n1,
                        const soundloc_q8_requant *rq, uint8_t *y) {
    multiply(r->uk, r->u, r->npad / WINO_NR, r->cpad, r->v, r->tiles, ty0 * r->tiles_w, ty1 * r->tiles_w, n0 / WINO_NR,
             round_up(n1, WINO_NR) / WINO_NR, r->m);
    size_t ndone = n0;
    void (*requant)(size_t, size_t, const int32_t *, size_t, size_t, size_t, const soundloc_q8_requant *, uint8_t *,
                    size_t) = q8_requant_rows_scalar;
#if defined(__x86_64__)
    if (r->uk == ukernel_avx2) {
        output_transform_avx2(r->m, r->bias, r->n, r->npad, r->tiles, r->tiles_w, ty0, ty1, h, w, n0, n1, r->acc);
        ndone = n0 + (n1 - n0) / 8 * 8;
        requant = q8_requant_rows_avx2;
    }
#endif
    if (ndone < n1) output_transform(r->m, r->bias, r->n, r->npad, r->tiles, r->tiles_w, ty0, ty1, h, w, ndone, n1, r->acc);
    const size_t p0 = 2 * ty0 * w, p1 = (2 * ty1 < h ? 2 * ty1 : h) * w, n = r->n;
    requant(p1 - p0, n1 - n0, r->acc + p0 * n + n0, n, p0, n0, rq, y + p0 * n + n0, n);
}

int soundloc_q8_wino_conv(int flavor, const void *packed, const uint8_t *x, size_t h, size_t w, size_t c, uint8_t a_zp,
                          size_t ty0, size_t ty1, const soundloc_q8_requant *rq, uint8_t *y, void *workspace) {
    wino_run r;
    int rc = wino_begin(&r, flavor, packed, h, w, workspace);
    if (rc) return rc;
    if (((const q8_packed_header *)packed)->k != c || !x || !y || !rq || !rq->scale) return SOUNDLOC_KERNELS_EINVAL;
    if (ty0 > ty1 || ty1 > r.tiles_h) return SOUNDLOC_KERNELS_EINVAL;
    if (ty0 == ty1) return SOUNDLOC_KERNELS_OK;
    wino_transform(&r, x, h, w, c, a_zp, ty0, ty1);
    wino_finish(&r, h, w, ty0, ty1, 0, r.n, rq, y);
    return SOUNDLOC_KERNELS_OK;
}

int soundloc_q8_wino_transform(int flavor, const void *packed, const uint8_t *x, size_t h, size_t w, size_t c,
                               uint8_t a_zp, size_t ty0, size_t ty1, void *workspace) {
    wino_run r;
    int rc = wino_begin(&r, flavor, packed, h, w, workspace);
    if (rc) return rc;
    if (((const q8_packed_header *)packed)->k != c || !x) return SOUNDLOC_KERNELS_EINVAL;
    if (ty0 > ty1 || ty1 > r.tiles_h) return SOUNDLOC_KERNELS_EINVAL;
    if (ty0 < ty1) wino_transform(&r, x, h, w, c, a_zp, ty0, ty1);
    return SOUNDLOC_KERNELS_OK;
}

int soundloc_q8_wino_finish(int flavor, const void *packed, size_t h, size_t w, size_t n0, size_t n1,
                            const soundloc_q8_requant *rq, uint8_t *y, void *workspace) {
    wino_run r;
    int rc = wino_begin(&r, flavor, packed, h, w, workspace);
    if (rc) return rc;
    if (!y || !rq || !rq->scale || n0 > n1 || n1 > r.n || (n0 % WINO_NR && n0 < n1)) return SOUNDLOC_KERNELS_EINVAL;
    if (n0 < n1) wino_finish(&r, h, w, 0, r.tiles_h, n0, n1, rq, y);
    return SOUNDLOC_KERNELS_OK;
}

int soundloc_q8_wino_preferred(void) { return strcmp(soundloc_kernels_active_name(), "avx2") == 0; }

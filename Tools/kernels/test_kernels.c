// Bit-exactness checks of every CSoundlocKernels implementation this CPU supports against the reference, for
// native runs and for aarch64 under qemu (Tools/kernels/test_arm.sh). Prints "N passed, M failed" last.
//   test_kernels                       select from $SOUNDLOC_KERNELS (or auto) and test all supported implementations
//   test_kernels --expect-active NAME  also require that selection to be NAME
//   test_kernels --expect-refused      require the selection from $SOUNDLOC_KERNELS to be refused as unsupported
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soundloc_kernels.h"

static int passed, failed;

static void check(int ok, const char *what, const char *detail) {
    if (ok) {
        passed++;
    } else {
        failed++;
        if (failed <= 20) printf("FAIL %s: %s\n", what, detail);
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }

typedef struct {
    size_t m, n, k, lda, ldc;
    uint8_t a_zp;
    int residual;
    soundloc_q8_requant rq;
} gemm_case;

// Direct definition: bias + Σ (a − a_zp)·w, in 64 bits.
static int64_t naive_acc(const gemm_case *g, const uint8_t *a, const int8_t *w, const int32_t *bias, size_t m,
                         size_t j) {
    int64_t s = bias ? bias[j] : 0;
    for (size_t i = 0; i < g->k; i++) s += ((int64_t)a[m * g->lda + i] - g->a_zp) * w[j * g->k + i];
    return s;
}

// Runs one case on impl and the reference; compares the q8 and int32 outputs (the whole buffers, so stray writes
// show too) and the int32 result against the naive sum.
static void run_case(const soundloc_q8_gemm_impl *impl, const gemm_case *g, const uint8_t *a, const int8_t *w,
                     const int32_t *bias, const uint8_t *res, const char *label) {
    const soundloc_q8_gemm_impl *ref = soundloc_kernels_impl("reference");
    char detail[256];
    void *pr = malloc(ref->packed_size(g->n, g->k)), *pi = malloc(impl->packed_size(g->n, g->k));
    const size_t csz = g->m * g->ldc;
    uint8_t *cr = malloc(csz + 1), *ci = malloc(csz + 1);
    int32_t *ir = malloc((csz + 1) * 4), *ii = malloc((csz + 1) * 4);
    memset(cr, 0xA5, csz + 1), memset(ci, 0xA5, csz + 1);
    for (size_t i = 0; i <= csz; i++) ir[i] = ii[i] = 0x5A5A5A5A;
    soundloc_q8_requant rq = g->rq;
    rq.residual = g->residual ? res : NULL;
    int rc = ref->pack_weights(g->n, g->k, w, bias, g->a_zp, pr);
    rc |= impl->pack_weights(g->n, g->k, w, bias, g->a_zp, pi);
    // Split like two threads would: rows at mid, columns at an arbitrary (not tile-aligned) point.
    const size_t mid = g->m / 2, nmid = g->n / 3;
    rc |= ref->gemm_q8(pr, 0, g->m, 0, g->n, a, g->lda, &rq, cr, g->ldc);
    rc |= impl->gemm_q8(pi, 0, mid, 0, g->n, a, g->lda, &rq, ci, g->ldc);
    rc |= impl->gemm_q8(pi, mid, g->m, 0, nmid, a, g->lda, &rq, ci, g->ldc);
    rc |= impl->gemm_q8(pi, mid, g->m, nmid, g->n, a, g->lda, &rq, ci, g->ldc);
    rc |= ref->gemm_i32(pr, 0, g->m, 0, g->n, a, g->lda, ir, g->ldc);
    rc |= impl->gemm_i32(pi, 0, g->m, 0, nmid, a, g->lda, ii, g->ldc);
    rc |= impl->gemm_i32(pi, 0, g->m, nmid, g->n, a, g->lda, ii, g->ldc);
    snprintf(detail, sizeof detail, "%s %s M=%zu N=%zu K=%zu a_zp=%u out_zp=%d q=[%u,%u] res=%d", impl->name, label,
             g->m, g->n, g->k, g->a_zp, g->rq.out_zp, g->rq.qmin, g->rq.qmax, g->residual);
    check(rc == 0, "calls succeed", detail);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i <= csz; i++)
        if (cr[i] != ci[i] && !bad++) first = i;
    if (bad) {
        char d2[400];
        snprintf(d2, sizeof d2, "%s: %zu bytes differ, first at %zu (ref %u, impl %u)", detail, bad, first, cr[first],
                 ci[first]);
        check(0, "q8 bit-exact", d2);
    } else {
        check(1, "q8 bit-exact", detail);
    }
    check(memcmp(ir, ii, (csz + 1) * 4) == 0, "i32 equal", detail);
    int naive_ok = 1;
    for (size_t m = 0; m < g->m; m++)
        for (size_t j = 0; j < g->n; j++) naive_ok &= ir[m * g->ldc + j] == naive_acc(g, a, w, bias, m, j);
    check(naive_ok, "i32 equals naive sum", detail);
    free(pr), free(pi), free(cr), free(ci), free(ir), free(ii);
}

static void random_case(const soundloc_q8_gemm_impl *impl, int big) {
    gemm_case g;
    memset(&g, 0, sizeof g);
    g.m = big ? (size_t)rnd_in(20, 70) : (size_t)rnd_in(1, 40);
    g.n = big ? (size_t)rnd_in(40, 150) : (size_t)rnd_in(1, 70);
    g.k = big ? (size_t)rnd_in(500, 2400) : (size_t)rnd_in(1, 300);
    g.lda = g.k + (rnd() % 3 == 0 ? (size_t)rnd_in(1, 9) : 0);
    g.ldc = g.n + (rnd() % 3 == 0 ? (size_t)rnd_in(1, 9) : 0);
    g.a_zp = rnd() % 2 ? 0 : (uint8_t)rnd_in(1, 255);
    g.residual = rnd() % 2;
    g.rq.out_zp = rnd() % 2 ? 0 : rnd_in(0, 255);
    switch (rnd() % 3) {
        case 0: g.rq.qmin = 0, g.rq.qmax = 255; break;
        case 1: g.rq.qmin = (uint8_t)g.rq.out_zp, g.rq.qmax = 255; break;  // fused ReLU
        default: g.rq.qmin = (uint8_t)rnd_in(0, 127), g.rq.qmax = (uint8_t)rnd_in(128, 255); break;
    }
    g.rq.residual_zp = rnd_in(0, 255);
    g.rq.residual_mult = (float)rnd_in(1, 4000) / 1000.0f;
    uint8_t *a = malloc(g.m * g.lda), *res = malloc(g.m * g.ldc);
    int8_t *w = malloc(g.n * g.k);
    int32_t *bias = malloc(g.n * 4);
    float *scale = malloc(g.n * 4);
    for (size_t i = 0; i < g.m * g.lda; i++) a[i] = (uint8_t)rnd();
    for (size_t i = 0; i < g.m * g.ldc; i++) res[i] = (uint8_t)rnd();
    for (size_t i = 0; i < g.n * g.k; i++) w[i] = (int8_t)rnd_in(-127, 127);
    const int exact_ties = rnd() % 4 == 0;  // power-of-two scales hit exact .5 ties: round-half-even is tested
    for (size_t j = 0; j < g.n; j++) {
        bias[j] = rnd_in(-100000, 100000);
        scale[j] = exact_ties ? 1.0f / (float)(1u << rnd_in(1, 12))
                              : (float)rnd_in(1, 3000) / 1000.0f * 40.0f / (5400.0f * (float)(g.k < 4 ? 2 : g.k) * 0.1f);
    }
    g.rq.scale = scale;
    run_case(impl, &g, a, w, rnd() % 4 ? bias : NULL, res, big ? "random-big" : "random");
    free(a), free(res), free(w), free(bias), free(scale);
}

// All-255 activations against ±127 weights over a long K: the products that saturate vpmaddubsw.
static void extreme_case(const soundloc_q8_gemm_impl *impl, size_t k, uint8_t aval, uint8_t a_zp) {
    gemm_case g;
    memset(&g, 0, sizeof g);
    g.m = 7, g.n = 19, g.k = k, g.lda = k, g.ldc = g.n, g.a_zp = a_zp;
    g.rq.out_zp = 3, g.rq.qmin = 0, g.rq.qmax = 255;
    uint8_t *a = malloc(g.m * k);
    int8_t *w = malloc(g.n * k);
    float *scale = malloc(g.n * 4);
    memset(a, aval, g.m * k);
    for (size_t j = 0; j < g.n; j++) {
        for (size_t i = 0; i < k; i++) w[j * k + i] = j % 3 == 0 ? 127 : j % 3 == 1 ? -127 : (i % 2 ? 127 : -127);
        scale[j] = 1.0f / (255.0f * 127.0f * (float)k) * 100.0f;
    }
    g.rq.scale = scale;
    run_case(impl, &g, a, w, NULL, NULL, "extreme");
    free(a), free(w), free(scale);
}

static void error_paths(const soundloc_q8_gemm_impl *impl) {
    const soundloc_q8_gemm_impl *ref = soundloc_kernels_impl("reference");
    int8_t w[6] = {1, 2, 3, 4, 5, 6};
    uint8_t a[3] = {1, 2, 3}, c[2];
    float scale[2] = {1, 1};
    soundloc_q8_requant rq = {scale, 0, 0, 255, NULL, 0, 0, 0};
    void *pr = malloc(ref->packed_size(2, 3));
    ref->pack_weights(2, 3, w, NULL, 0, pr);
    if (impl != ref)
        check(impl->gemm_q8(pr, 0, 1, 0, 2, a, 3, &rq, c, 2) == SOUNDLOC_KERNELS_EPACKED,
              "foreign packed weights refused", impl->name);
    void *pi = malloc(impl->packed_size(2, 3));
    w[4] = -128;
    check(impl->pack_weights(2, 3, w, NULL, 0, pi) == SOUNDLOC_KERNELS_EINVAL, "weight -128 refused", impl->name);
    w[4] = 5;
    impl->pack_weights(2, 3, w, NULL, 0, pi);
    check(impl->gemm_q8(pi, 0, 1, 0, 3, a, 3, &rq, c, 2) == SOUNDLOC_KERNELS_EINVAL, "n1 > N refused", impl->name);
    free(pr), free(pi);
}

// im2col followed by the int32 GEMM equals a direct NHWC convolution.
static void conv_case(const soundloc_q8_gemm_impl *impl, size_t h, size_t wd, size_t cin, size_t cout, size_t kh,
                      size_t stride, size_t pad, uint8_t zp) {
    const size_t oh = soundloc_conv_out_size(h, kh, stride, pad, pad), ow = soundloc_conv_out_size(wd, kh, stride, pad, pad);
    const size_t m = oh * ow, k = kh * kh * cin;
    uint8_t *x = malloc(h * wd * cin), *col = malloc(m * k);
    int8_t *w = malloc(cout * k);
    int32_t *out = malloc(m * cout * 4);
    for (size_t i = 0; i < h * wd * cin; i++) x[i] = (uint8_t)rnd();
    for (size_t i = 0; i < cout * k; i++) w[i] = (int8_t)rnd_in(-127, 127);
    soundloc_u8_im2col_nhwc(x, h, wd, cin, kh, kh, stride, stride, pad, pad, ow, zp, 0, m / 2, col, k);
    soundloc_u8_im2col_nhwc(x, h, wd, cin, kh, kh, stride, stride, pad, pad, ow, zp, m / 2, m, col, k);
    void *p = malloc(impl->packed_size(cout, k));
    int rc = impl->pack_weights(cout, k, w, NULL, zp, p);
    rc |= impl->gemm_i32(p, 0, m, 0, cout, col, k, out, cout);
    int ok = rc == 0;
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++)
            for (size_t o = 0; o < cout; o++) {
                int64_t s = 0;
                for (size_t ky = 0; ky < kh; ky++)
                    for (size_t kx = 0; kx < kh; kx++) {
                        const long iy = (long)(oy * stride + ky) - (long)pad, ix = (long)(ox * stride + kx) - (long)pad;
                        if (iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)wd) continue;  // padding is zp: adds 0
                        for (size_t ci = 0; ci < cin; ci++)
                            s += ((int64_t)x[((size_t)iy * wd + (size_t)ix) * cin + ci] - zp) * w[o * k + (ky * kh + kx) * cin + ci];
                    }
                ok &= out[(oy * ow + ox) * cout + o] == s;
            }
    char d[160];
    snprintf(d, sizeof d, "%s %zux%zux%zu k%zu s%zu p%zu zp%u", impl->name, h, wd, cin, kh, stride, pad, zp);
    check(ok, "im2col+gemm equals direct convolution", d);
    free(x), free(col), free(w), free(out), free(p);
}

// Winograd F(2×2,3×3) (both flavours; on aarch64 BEST is the portable C) equals im2col + the reference GEMM with
// the same requantisation, split in tile rows as threads would run it.
static void winograd_case(size_t h, size_t wd, size_t c, size_t n, uint8_t zp, int extreme, int residual) {
    const soundloc_q8_gemm_impl *ref = soundloc_kernels_impl("reference");
    const size_t m = h * wd, k = 9 * c, tiles_h = (h + 1) / 2;
    uint8_t *x = malloc(m * c), *col = malloc(m * k), *res = malloc(m * n), *y0 = malloc(m * n), *y1 = malloc(m * n + 1);
    int8_t *w = malloc(n * k);
    int32_t *bias = malloc(n * 4);
    float *scale = malloc(n * 4);
    for (size_t i = 0; i < m * c; i++) x[i] = extreme ? (rnd() & 1 ? 255 : 0) : (uint8_t)rnd();
    for (size_t i = 0; i < n * k; i++) w[i] = extreme ? (rnd() & 1 ? 127 : -127) : (int8_t)rnd_in(-127, 127);
    for (size_t i = 0; i < m * n; i++) res[i] = (uint8_t)rnd();
    for (size_t j = 0; j < n; j++) bias[j] = rnd_in(-100000, 100000), scale[j] = (float)rnd_in(50, 400) / (float)(k * 255 * 64);
    soundloc_q8_requant rq = {scale, rnd_in(0, 255), 0, 255, residual ? res : NULL, n, rnd_in(0, 255), 0.37f};
    soundloc_u8_im2col_nhwc(x, h, wd, c, 3, 3, 1, 1, 1, 1, wd, zp, 0, m, col, k);
    void *pr = malloc(ref->packed_size(n, k)), *pw = malloc(soundloc_q8_wino_packed_size(n, c));
    void *ws = malloc(soundloc_q8_wino_workspace_size(h, wd, c, n));
    int rc = ref->pack_weights(n, k, w, bias, zp, pr) | ref->gemm_q8(pr, 0, m, 0, n, col, k, &rq, y0, n);
    rc |= soundloc_q8_wino_pack_weights(n, c, w, bias, pw);
    const int flavors[] = {SOUNDLOC_WINO_BEST, SOUNDLOC_WINO_SCALAR};
    for (int f = 0; f < 2; f++) {
        memset(y1, 0xA5, m * n + 1);
        rc |= soundloc_q8_wino_conv(flavors[f], pw, x, h, wd, c, zp, 0, tiles_h / 2, &rq, y1, ws);
        rc |= soundloc_q8_wino_conv(flavors[f], pw, x, h, wd, c, zp, tiles_h / 2, tiles_h, &rq, y1, ws);
        char d[160];
        snprintf(d, sizeof d, "%s %zux%zux%zu->%zu zp%u%s%s", f ? "scalar" : "best", h, wd, c, n, zp,
                 extreme ? " extreme" : "", residual ? " residual" : "");
        check(rc == 0 && !memcmp(y0, y1, m * n) && y1[m * n] == 0xA5, "winograd equals the reference convolution", d);
        // The two-phase form threads use: transform by tile rows, then the output in 16-column panels.
        memset(y1, 0xA5, m * n + 1);
        rc |= soundloc_q8_wino_transform(flavors[f], pw, x, h, wd, c, zp, 0, tiles_h / 2, ws);
        rc |= soundloc_q8_wino_transform(flavors[f], pw, x, h, wd, c, zp, tiles_h / 2, tiles_h, ws);
        for (size_t n0 = 0; n0 < n; n0 += 16)
            rc |= soundloc_q8_wino_finish(flavors[f], pw, h, wd, n0, n0 + 16 < n ? n0 + 16 : n, &rq, y1, ws);
        check(rc == 0 && !memcmp(y0, y1, m * n) && y1[m * n] == 0xA5, "two-phase winograd equals the reference", d);
    }
    free(x), free(col), free(res), free(y0), free(y1), free(w), free(bias), free(scale), free(pr), free(pw), free(ws);
}

int main(int argc, char **argv) {
    const char *expect_active = NULL;
    int expect_refused = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--expect-active") && i + 1 < argc) expect_active = argv[++i];
        else if (!strcmp(argv[i], "--expect-refused")) expect_refused = 1;
        else return fprintf(stderr, "usage: %s [--expect-active NAME] [--expect-refused]\n", argv[0]), 2;
    }
    const char *env = getenv("SOUNDLOC_KERNELS");
    int rc = soundloc_kernels_select(NULL);
    if (expect_refused) {
        printf("SOUNDLOC_KERNELS=%s: %s\n", env ? env : "", soundloc_kernels_error());
        check(rc == SOUNDLOC_KERNELS_EUNSUPPORTED, "forced unsupported implementation refused", env ? env : "(unset)");
        check(strstr(soundloc_kernels_error(), "not supported") != NULL, "refusal message", soundloc_kernels_error());
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 0;
    }
    if (rc != SOUNDLOC_KERNELS_OK) {
        printf("selection failed: %s\n0 passed, 1 failed\n", soundloc_kernels_error());
        return 1;
    }
    printf("active: %s\n", soundloc_kernels_active_name());
    if (expect_active) check(!strcmp(soundloc_kernels_active_name(), expect_active), "active implementation", expect_active);
    check(soundloc_kernels_select("no-such-kernels") == SOUNDLOC_KERNELS_EUNKNOWN, "unknown name refused", "");

    const char *names[] = {"reference", "avx2", "avx512vnni", "neon", "neondot"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!soundloc_kernels_supported(names[i])) continue;
        const soundloc_q8_gemm_impl *impl = soundloc_kernels_impl(names[i]);
        printf("testing %s (tile %ux%u, K step %u)\n", impl->name, impl->mr, impl->nr, impl->kr);
        for (int t = 0; t < 300; t++) random_case(impl, 0);
        for (int t = 0; t < 8; t++) random_case(impl, 1);
        extreme_case(impl, 4608, 255, 0);
        extreme_case(impl, 32768, 255, 0);
        extreme_case(impl, 4607, 0, 255);
        extreme_case(impl, 1153, 255, 128);
        error_paths(impl);
        conv_case(impl, 9, 7, 3, 5, 3, 1, 1, 0);
        conv_case(impl, 11, 8, 4, 17, 7, 2, 3, 37);
        conv_case(impl, 6, 6, 16, 33, 1, 2, 0, 0);
        conv_case(impl, 7, 9, 1, 4, 3, 1, 1, 5);     // 3-byte kernel-row runs (1 and 2 at the edges)
        conv_case(impl, 13, 10, 1, 6, 7, 2, 3, 0);   // the audio stem's 7
        conv_case(impl, 15, 14, 3, 8, 7, 2, 3, 11);  // the vision stem's 21
    }
    winograd_case(7, 5, 17, 33, 113, 0, 1);
    winograd_case(6, 6, 64, 64, 0, 0, 1);
    winograd_case(4, 4, 512, 20, 255, 1, 0);
    winograd_case(13, 4, 256, 48, 7, 1, 1);
    winograd_case(1, 1, 2, 1, 3, 0, 0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

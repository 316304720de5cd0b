// Single-thread GOPS (2·M·N·K per second) of the q8 GEMM implementations on ResNet-18-S5 shapes, beside OpenBLAS
// sgemm on the same shapes; then, on AVX2 machines, the 3×3 stride-1 layers through im2col + GEMM and Winograd. Built and run by Tools/kernels/bench.sh.
//   bench_kernels [IMPL ...]     default: every implementation this CPU supports except reference
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "soundloc_kernels.h"

// Thread CPU time, not wall time: on a shared 2-core machine other processes' time slices would count otherwise.
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Median of runs each at least ~50 ms of repetitions.
#define RUNS 7
static double time_it(void (*fn)(void *), void *ctx, double ops) {
    fn(ctx);
    int reps = 1;
    for (double t0 = now(); now() - t0 < 0.02; reps++) fn(ctx);
    reps = reps < 1 ? 1 : reps * 2;
    double best[RUNS];
    for (int r = 0; r < RUNS; r++) {
        const double t0 = now();
        for (int i = 0; i < reps; i++) fn(ctx);
        best[r] = (now() - t0) / reps;
    }
    for (int i = 0; i < RUNS; i++)
        for (int j = i + 1; j < RUNS; j++)
            if (best[j] < best[i]) { double t = best[i]; best[i] = best[j]; best[j] = t; }
    return ops / best[RUNS / 2] * 1e-9;
}

typedef struct {
    const soundloc_q8_gemm_impl *impl;
    size_t m, n, k;
    const void *packed;
    const uint8_t *a;
    uint8_t *c;
    const soundloc_q8_requant *rq;
    const float *fa, *fw;
    float *fc;
} bench_ctx;

static void run_q8(void *p) {
    bench_ctx *b = p;
    b->impl->gemm_q8(b->packed, 0, b->m, 0, b->n, b->a, b->k, b->rq, b->c, b->n);
}

typedef struct {
    size_t h, w, c, n;
    const void *packed;
    const uint8_t *x;
    uint8_t *col, *y;
    void *workspace;
    const soundloc_q8_requant *rq;
    const soundloc_q8_gemm_impl *impl;
} conv_ctx;

static void run_wino(void *p) {
    conv_ctx *b = p;
    soundloc_q8_wino_conv(SOUNDLOC_WINO_BEST, b->packed, b->x, b->h, b->w, b->c, 0, 0, (b->h + 1) / 2, b->rq, b->y, b->workspace);
}

static void run_im2col_gemm(void *p) {
    conv_ctx *b = p;
    const size_t m = b->h * b->w, k = 9 * b->c;
    soundloc_u8_im2col_nhwc(b->x, b->h, b->w, b->c, 3, 3, 1, 1, 1, 1, b->w, 0, 0, m, b->col, k);
    b->impl->gemm_q8(b->packed, 0, m, 0, b->n, b->col, k, b->rq, b->y, b->n);
}

// The 3×3 stride-1 layers of both trunks: im2col + the avx2 GEMM against Winograd F(2×2,3×3), in GOPS of the direct
// convolution (2·H·W·N·9C per second, so the columns compare times).
static void bench_winograd(void) {
    static const size_t layers[][4] = {
        {56, 56, 64, 64}, {28, 28, 128, 128}, {14, 14, 256, 256}, {14, 14, 256, 512}, {14, 14, 512, 512},
        {51, 16, 64, 64}, {26, 8, 128, 128}, {13, 4, 256, 256}, {13, 4, 512, 512},
    };
    const soundloc_q8_gemm_impl *avx2 = soundloc_kernels_impl("avx2");
    if (!avx2 || !soundloc_kernels_supported("avx2")) return;
    printf("\n%-18s %10s %10s  (3x3 stride 1, GOPS of the direct convolution, 1 thread)\n", "H x W x C -> N",
           "avx2 gemm", "winograd");
    for (size_t s = 0; s < sizeof layers / sizeof layers[0]; s++) {
        const size_t h = layers[s][0], w = layers[s][1], c = layers[s][2], n = layers[s][3], k = 9 * c;
        const double ops = 2.0 * (double)(h * w) * (double)n * (double)k;
        uint8_t *x = malloc(h * w * c), *col = malloc(h * w * k), *y = malloc(h * w * n);
        int8_t *wt = malloc(n * k);
        float *scale = malloc(n * 4);
        for (size_t i = 0; i < h * w * c; i++) x[i] = (uint8_t)(rand() & 255);
        for (size_t i = 0; i < n * k; i++) wt[i] = (int8_t)(rand() % 255 - 127);
        for (size_t j = 0; j < n; j++) scale[j] = 1e-4f;
        soundloc_q8_requant rq = {scale, 0, 0, 255, NULL, 0, 0, 0};
        void *pg = malloc(avx2->packed_size(n, k)), *pw = malloc(soundloc_q8_wino_packed_size(n, c));
        void *ws = malloc(soundloc_q8_wino_workspace_size(h, w, c, n));
        avx2->pack_weights(n, k, wt, NULL, 0, pg);
        soundloc_q8_wino_pack_weights(n, c, wt, NULL, pw);
        conv_ctx g = {h, w, c, n, pg, x, col, y, NULL, &rq, avx2}, v = {h, w, c, n, pw, x, col, y, ws, &rq, avx2};
        char label[40];
        snprintf(label, sizeof label, "%zux%zux%zu->%zu", h, w, c, n);
        printf("%-18s %10.1f", label, time_it(run_im2col_gemm, &g, ops));
        fflush(stdout);
        printf(" %10.1f\n", time_it(run_wino, &v, ops));
        free(x), free(col), free(y), free(wt), free(scale), free(pg), free(pw), free(ws);
    }
}

static void run_sgemm(void *p) {
    bench_ctx *b = p;  // C[M×N] = A[M×K] · W[N×K]ᵀ, the fp32 engine's im2col layout
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b->m, (int)b->n, (int)b->k, 1.0f, b->fa, (int)b->k, b->fw,
                (int)b->k, 0.0f, b->fc, (int)b->n);
}

int main(int argc, char **argv) {
    static const size_t shapes[][3] = {
        {3136, 64, 576}, {784, 128, 1152}, {196, 512, 2304}, {196, 512, 4608}, {52, 512, 4608},
        {12544, 64, 147}, {784, 128, 576},
    };
    const char *all[] = {"avx512vnni", "avx2", "neondot", "neon"};
    const char **names = argc > 1 ? (const char **)argv + 1 : all;
    const int nnames = argc > 1 ? argc - 1 : (int)(sizeof all / sizeof all[0]);
    printf("%-18s", "M x N x K");
    for (int i = 0; i < nnames; i++)
        if (soundloc_kernels_supported(names[i])) printf(" %10s", names[i]);
    printf(" %10s  (GOPS, 1 thread)\n", "sgemm");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        const double ops = 2.0 * (double)m * (double)n * (double)k;
        uint8_t *a = malloc(m * k), *c = malloc(m * n);
        int8_t *w = malloc(n * k);
        float *scale = malloc(n * 4), *fa = malloc(m * k * 4), *fw = malloc(n * k * 4), *fc = malloc(m * n * 4);
        for (size_t i = 0; i < m * k; i++) a[i] = (uint8_t)(rand() & 255), fa[i] = a[i] / 255.0f;
        for (size_t i = 0; i < n * k; i++) w[i] = (int8_t)(rand() % 255 - 127), fw[i] = w[i] / 127.0f;
        for (size_t j = 0; j < n; j++) scale[j] = 1e-4f;
        soundloc_q8_requant rq = {scale, 0, 0, 255, NULL, 0, 0, 0};
        char label[32];
        snprintf(label, sizeof label, "%zux%zux%zu", m, n, k);
        printf("%-18s", label);
        for (int i = 0; i < nnames; i++) {
            if (!soundloc_kernels_supported(names[i])) continue;
            const soundloc_q8_gemm_impl *impl = soundloc_kernels_impl(names[i]);
            void *packed = malloc(impl->packed_size(n, k));
            impl->pack_weights(n, k, w, NULL, 0, packed);
            bench_ctx b = {impl, m, n, k, packed, a, c, &rq, NULL, NULL, NULL};
            printf(" %10.1f", time_it(run_q8, &b, ops));
            fflush(stdout);
            free(packed);
        }
        bench_ctx b = {NULL, m, n, k, NULL, NULL, NULL, NULL, fa, fw, fc};
        printf(" %10.1f\n", time_it(run_sgemm, &b, ops));
        free(a), free(c), free(w), free(scale), free(fa), free(fw), free(fc);
    }
    bench_winograd();
    return 0;
}

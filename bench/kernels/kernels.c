// Micro-benchmark of the C kernels (Sources/CKernels) at the shapes ru-embed, ru-sim and
// ru-knn give them: ns per call, best of several runs (the machine may be shared). Built and
// run by bench/kernels; compare before and after a change to the kernels or their dispatch.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *randoms(size_t n, unsigned seed) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    srand(seed);
    for (size_t i = 0; i < n; i++) p[i] = (float)rand() / (float)RAND_MAX * 2 - 1;
    return p;
}

static volatile float sink;

// Runs `body` `calls` times per run, 7 runs, and prints the best run's ns per call.
#define MEASURE(label, calls, body)                                                     \
    do {                                                                                \
        double best = 1e30;                                                             \
        for (int run = 0; run < 7; run++) {                                             \
            double t0 = now();                                                          \
            for (long c = 0; c < (calls); c++) { body; }                                \
            double t = (now() - t0) / (calls);                                          \
            if (t < best) best = t;                                                     \
        }                                                                               \
        printf("%-58s %10.1f ns\n", label, best * 1e9);                               \
    } while (0)

int main(void) {
    const size_t dim = 768, rows = 64, n = 24, head = 64, hidden = 768, ff = 3072;
    float *a = randoms(dim * rows, 1), *b = randoms(dim * rows, 2), *w = randoms(ff, 3), *bias = randoms(ff, 4);
    float *q = randoms(n * hidden, 5), *k = randoms(n * hidden, 6), *v = randoms(n * hidden, 7);
    float *pos = randoms(2 * 256 * hidden, 8), *out = randoms(n * hidden, 9);
    float *scratch = randoms(ck_attend_scratch(n, head), 10);
    float *work = randoms(dim * rows, 11), *wide = randoms(ff * 32, 12), *wide_out = randoms(ff * 32, 13);
    int8_t *codes = malloc(dim * rows);
    uint8_t *ucodes = malloc(ck_int8_code_stride(ff) * 32);
    float *scales = randoms(4096, 14), *bounds = randoms(4096, 15), *heap = randoms(64, 16);
    int32_t *approx = malloc(4096 * sizeof(int32_t)), *zeros = calloc(64, sizeof(int32_t)), *sums = calloc(ff, sizeof(int32_t));
    int32_t *products = malloc(32 * ff * sizeof(int32_t));
    for (size_t i = 0; i < 4096; i++) approx[i] = (int32_t)(i * 7919 % 2000) - 1000;
    for (size_t i = 0; i < 32 * ff; i++) products[i] = (int32_t)(i * 31 % 5000) - 2500;

    MEASURE("ck_dot, 768", 2000000, sink += ck_dot(a, b + (c & 7) * dim, dim));
    MEASURE("ck_normalize_rows, 64 x 768", 20000, { memcpy(work, a, dim * rows * 4); ck_normalize_rows(work, rows, dim); });
    MEASURE("ck_quantize_rows, 64 x 768", 20000, ck_quantize_rows(a, rows, dim, codes, scales, bounds, 127));
    MEASURE("ck_next_candidate, 4096 (none passes)", 200000, sink += ck_next_candidate(approx, scales, bounds, 0, 4096, 1e-3f, 0.1f, 0.1f, 0, 1e9f));
    MEASURE("ck_kth_lower_bound, 4096, k = 10", 20000, sink += ck_kth_lower_bound(approx, scales, bounds, 4096, 1e-3f, 0.1f, 0.1f, 0, 10, heap));
    MEASURE("ck_layer_norm, 64 x 768", 20000, { memcpy(work, a, dim * rows * 4); ck_layer_norm(work, rows, dim, w, bias, 1e-7f); });
    MEASURE("ck_attend_one, n = 24, head 64", 100000, ck_attend_one(q, k, v, hidden, n, head, NULL, NULL, hidden, 0, out, hidden, scratch));
    MEASURE("ck_attend_one, n = 24, head 64, relative (DeBERTa)", 50000,
            ck_attend_one(q, k, v, hidden, n, head, pos, pos + 32, hidden, 256, out, hidden, scratch));
    MEASURE("ck_quantize_rows_u8, 32 x 3072", 10000,
            ck_quantize_rows_u8(wide, 32, ff, ucodes, ck_int8_code_stride(ff), scales, zeros, 255));
    struct ck_int8_epilogue plain = {scales, zeros, w, sums, bias, CK_PLAIN}, gelu = {scales, zeros, w, sums, bias, CK_GELU_ERF};
    MEASURE("ck_int8_dequantize, 32 x 3072, plain", 10000, ck_int8_dequantize(products, 32, ff, &plain, wide_out, ff));
    MEASURE("ck_int8_dequantize, 32 x 3072, GELU (erf)", 10000, ck_int8_dequantize(products, 32, ff, &gelu, wide_out, ff));
    return 0;
}

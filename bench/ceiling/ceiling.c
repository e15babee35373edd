// The int8 ceiling of this CPU for ru-embed --precision int8: how many u8×s8 multiply-adds
// VNNI (vpdpbusd) retires per second per core with no memory traffic, and how fast oneDNN's
// int8 matmul runs at the encoder's shapes (one thread, and all threads), and ru-embed's own
// kernel (products dequantised into floats) on one thread, in GOP/s (1 multiply-add = 2
// operations). Built and run by bench/int8-ceiling.
#include <immintrin.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckernels.h"
#include "peak.h" // ru-embed's own int8 kernel (Sources/CKernels/int8_linear.c), built alongside

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

PEAK_FUNCTION(vnni_loop, "vpdpbusd")

// One vpdpbusd is 16 lanes × 4 u8·s8 multiply-adds = 128 operations.
static double vnni_peak(void) { return vnni_loop(50000000, now) * 128 / 1e9; }

#define CHECK(x) do { if ((x) != dnnl_success) { fprintf(stderr, "oneDNN call failed: %s\n", #x); exit(2); } } while (0)

// The primitive of u8 [m × k] · s8 [k × n] → s32, weights in the layout it chooses (as ru-embed
// runs it), and the three memory descriptors.
static dnnl_primitive_t matmul_primitive(dnnl_engine_t engine, long m, long k, long n, dnnl_memory_desc_t *src,
                                         dnnl_memory_desc_t *weights, dnnl_memory_desc_t *dst) {
    dnnl_memory_desc_t wany;
    dnnl_dims_t sd = {m, k}, wd = {k, n}, dd = {m, n};
    CHECK(dnnl_memory_desc_init_by_tag(src, 2, sd, dnnl_u8, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&wany, 2, wd, dnnl_s8, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(dst, 2, dd, dnnl_s32, dnnl_ab));
    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, src, &wany, NULL, dst));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL));
    *weights = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_t prim;
    CHECK(dnnl_primitive_create(&prim, pd));
    dnnl_primitive_desc_destroy(pd);
    return prim;
}

// u8 [m × k] · s8 [k × n] → s32 on one shape, GOP/s.
static double matmul_gops(dnnl_engine_t engine, dnnl_stream_t stream, long m, long k, long n) {
    dnnl_memory_desc_t src, w, dst;
    dnnl_primitive_t prim = matmul_primitive(engine, m, k, n, &src, &w, &dst);
    size_t wsize = dnnl_memory_desc_get_size(&w);
    void *sb = aligned_alloc(64, (m * k + 63) / 64 * 64), *wb = aligned_alloc(64, (wsize + 63) / 64 * 64);
    void *db = aligned_alloc(64, (m * n * 4 + 63) / 64 * 64);
    memset(sb, 3, m * k);
    memset(wb, 1, wsize);
    dnnl_memory_t ms, mw, md;
    CHECK(dnnl_memory_create(&ms, &src, engine, sb));
    CHECK(dnnl_memory_create(&mw, &w, engine, wb));
    CHECK(dnnl_memory_create(&md, &dst, engine, db));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
    for (int i = 0; i < 3; i++) { CHECK(dnnl_primitive_execute(prim, stream, 3, args)); dnnl_stream_wait(stream); }
    int iterations = 0;
    double t0 = now(), t;
    do {
        CHECK(dnnl_primitive_execute(prim, stream, 3, args));
        dnnl_stream_wait(stream);
        iterations++;
        t = now() - t0;
    } while (t < 0.25);
    dnnl_primitive_destroy(prim);
    dnnl_memory_destroy(ms); dnnl_memory_destroy(mw); dnnl_memory_destroy(md);
    free(sb); free(wb); free(db);
    return 2.0 * m * k * n * iterations / t / 1e9;
}

// ru-embed's kernel on one thread: rows × k codes times packed weights, dequantised into
// floats with the layer's epilogue, as `ru-embed --precision int8` runs each 32-row chunk.
static double kernel_gops(long m, long k, long n, int epilogue) {
    size_t stride = ck_int8_code_stride(k);
    uint8_t *codes = malloc(m * stride);
    float *weights = malloc(sizeof(float) * n * k), *out = calloc(m * n, sizeof(float));
    float *x_scales = malloc(sizeof(float) * m), *w_scales = malloc(sizeof(float) * n), *bias = calloc(n, sizeof(float));
    int32_t *x_zeros = calloc(m, sizeof(int32_t)), *w_sums = malloc(sizeof(int32_t) * n);
    float *l1 = malloc(sizeof(float) * n);
    int8_t *packed = aligned_alloc(64, (ck_int8_packed_size(n, k) + 63) / 64 * 64);
    for (long i = 0; i < m * (long)stride; i++) codes[i] = rand();
    for (long i = 0; i < n * k; i++) weights[i] = rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < m; i++) { x_scales[i] = 1e-3f; x_zeros[i] = 128; }
    ck_int8_quantize_pack(weights, n, k, packed, w_scales, w_sums, l1);
    struct ck_int8_epilogue e = {x_scales, x_zeros, w_scales, w_sums, bias, epilogue};
    int iterations = 0;
    double t0 = now(), t;
    do {
        ck_int8_linear(codes, stride, m, k, packed, n, 0, ck_int8_panels(n), &e, out, n);
        iterations++;
        t = now() - t0;
    } while (t < 0.25);
    free(codes); free(weights); free(out); free(x_scales); free(w_scales); free(bias); free(x_zeros);
    free(w_sums); free(l1); free(packed);
    return 2.0 * m * k * n * iterations / t / 1e9;
}

// The encoder layer's four linear layers (inputs, outputs) and their epilogues: in_proj plain,
// attention output and FFN output added to the residual, FFN intermediate through GELU.
static const long shapes[4][2] = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
static const int epilogues[4] = {CK_PLAIN, CK_ACCUMULATE, CK_GELU_ERF, CK_ACCUMULATE};

// Operations (2 per multiply-add) of the encoder's 48 GEMMs over m rows.
static double encoder_ops(long m) {
    double per_layer = 0;
    for (int s = 0; s < 4; s++) per_layer += (double)shapes[s][0] * shapes[s][1];
    return 2.0 * m * per_layer * 12;
}

// ru-embed's kernel as the process runs it: the encoder's 48 GEMMs (12 layers × 4 shapes,
// each layer its own weights, 85 MB: more than a last-level cache) over `m` rows, 32-row
// chunks handed to `threads` threads as they free up, each chunk's activations quantised
// first. `shared`: every layer uses layer 0's weights instead (7 MB, cache-resident), to
// show what reading each layer's weights from memory costs. Best of five passes.
static double encoder_gops(long m, int threads, int shared) {
    int8_t *packed[12][4];
    float *w_scales[4], *bias = calloc(3072, sizeof(float)), *l1 = malloc(3072 * sizeof(float));
    int32_t *w_sums[4];
    for (int s = 0; s < 4; s++) {
        long k = shapes[s][0], n = shapes[s][1];
        float *w = malloc(sizeof(float) * n * k);
        for (long i = 0; i < n * k; i++) w[i] = rand() / (float)RAND_MAX - 0.5f;
        w_scales[s] = malloc(sizeof(float) * n);
        w_sums[s] = malloc(sizeof(int32_t) * n);
        for (int l = 0; l < 12; l++) {
            if (l > 0 && shared) { packed[l][s] = packed[0][s]; continue; }
            packed[l][s] = aligned_alloc(64, (ck_int8_packed_size(n, k) + 63) / 64 * 64);
            ck_int8_quantize_pack(w, n, k, packed[l][s], w_scales[s], w_sums[s], l1);
        }
        free(w);
    }
    float *x = malloc(sizeof(float) * m * 3072), *y = calloc(m * 3072, sizeof(float));
    for (long i = 0; i < m * 3072; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    long chunks = (m + 31) / 32;
    double best = 1e9;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = now();
        for (int l = 0; l < 12; l++)
            for (int s = 0; s < 4; s++) {
                long k = shapes[s][0], n = shapes[s][1];
                size_t stride = ck_int8_code_stride(k);
                #pragma omp parallel num_threads(threads)
                {
                    uint8_t *codes = malloc(32 * stride);
                    float x_scales[32];
                    int32_t x_zeros[32];
                    #pragma omp for schedule(dynamic, 1)
                    for (long c = 0; c < chunks; c++) {
                        long first = c * 32, rows = m - first < 32 ? m - first : 32;
                        ck_quantize_rows_u8(x + first * k, rows, k, codes, stride, x_scales, x_zeros, 255);
                        struct ck_int8_epilogue e = {x_scales, x_zeros, w_scales[s], w_sums[s], bias, epilogues[s]};
                        ck_int8_linear(codes, stride, rows, k, packed[l][s], n, 0, ck_int8_panels(n), &e,
                                       y + first * n, n);
                    }
                    free(codes);
                }
            }
        double t = now() - t0;
        if (t < best) best = t;
    }
    for (int s = 0; s < 4; s++) {
        for (int l = 0; l < (shared ? 1 : 12); l++) free(packed[l][s]);
        free(w_scales[s]); free(w_sums[s]);
    }
    free(bias); free(l1); free(x); free(y);
    return encoder_ops(m) / best / 1e9;
}

// oneDNN's int8 matmul over the same 48 GEMMs as encoder_gops (each layer its own weights, in
// the layout the primitive picks, `m` rows, all threads), int32 products only: no quantising,
// no dequantising. What the best library here reaches with the weights streamed as the process
// streams them — the comparison that showed ru-embed's kernel waiting on each panel's first
// tile (docs/EMBED.md). Best of five passes.
static double onednn_encoder_gops(dnnl_engine_t engine, dnnl_stream_t stream, long m) {
    dnnl_primitive_t prim[4];
    dnnl_memory_t src[4], dst[4], weights[12][4];
    void *buffers[2 + 12][4];
    for (int s = 0; s < 4; s++) {
        long k = shapes[s][0], n = shapes[s][1];
        dnnl_memory_desc_t sd, wd, dd;
        prim[s] = matmul_primitive(engine, m, k, n, &sd, &wd, &dd);
        size_t wsize = dnnl_memory_desc_get_size(&wd);
        buffers[0][s] = aligned_alloc(64, (m * k + 63) / 64 * 64);
        buffers[1][s] = aligned_alloc(64, (m * n * 4 + 63) / 64 * 64);
        memset(buffers[0][s], 3, m * k);
        CHECK(dnnl_memory_create(&src[s], &sd, engine, buffers[0][s]));
        CHECK(dnnl_memory_create(&dst[s], &dd, engine, buffers[1][s]));
        for (int l = 0; l < 12; l++) {
            buffers[2 + l][s] = aligned_alloc(64, (wsize + 63) / 64 * 64);
            for (size_t i = 0; i < wsize; i++) ((int8_t *)buffers[2 + l][s])[i] = (int8_t)(rand() % 255 - 127);
            CHECK(dnnl_memory_create(&weights[l][s], &wd, engine, buffers[2 + l][s]));
        }
    }
    double best = 1e9;
    for (int pass = 0; pass < 6; pass++) { // the first pass warms up (page faults, JIT)
        double t0 = now();
        for (int l = 0; l < 12; l++)
            for (int s = 0; s < 4; s++) {
                dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, src[s]}, {DNNL_ARG_WEIGHTS, weights[l][s]}, {DNNL_ARG_DST, dst[s]}};
                CHECK(dnnl_primitive_execute(prim[s], stream, 3, args));
                dnnl_stream_wait(stream);
            }
        double t = now() - t0;
        if (pass > 0 && t < best) best = t;
    }
    for (int s = 0; s < 4; s++) {
        dnnl_primitive_destroy(prim[s]);
        dnnl_memory_destroy(src[s]);
        dnnl_memory_destroy(dst[s]);
        for (int b = 0; b < 2 + 12; b++) free(buffers[b][s]);
        for (int l = 0; l < 12; l++) dnnl_memory_destroy(weights[l][s]);
    }
    return encoder_ops(m) / best / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (!__builtin_cpu_supports("avx512vnni")) {
        printf("no AVX-512 VNNI on this CPU: nothing to measure\n");
        return 0;
    }
    // On every core at once, the best of five (as the f32 and bf16 peaks): a shared machine
    // can lose a run to a neighbour, and two logical CPUs may share one core's units.
    double peak = 0;
    for (int run = 0; run < 5; run++) {
        double sum = 0;
        #pragma omp parallel num_threads(threads) reduction(+ : sum)
        sum += vnni_peak();
        if (sum > peak) peak = sum;
    }
    printf("vpdpbusd peak (zmm), %d cores, no memory traffic: %.0f GOP/s\n", threads, peak);
    if (argc > 2 && strcmp(argv[2], "--peak") == 0) return 0;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    for (int with = 0; with < 2; with++) {
        double ops = 0, seconds = 0;
        for (int s = 0; s < 4; s++) {
            double o = 2.0 * 32 * shapes[s][0] * shapes[s][1];
            ops += o;
            seconds += o / kernel_gops(32, shapes[s][0], shapes[s][1], with ? epilogues[s] : CK_PLAIN);
        }
        printf("ru-embed int8 kernel, 1 thread,  32 rows, the encoder layer's four shapes, %s: %.0f GOP/s\n",
               with ? "with their epilogues (GELU, residual add)" : "plain dequantisation", ops / seconds);
    }
    for (int shared = 0; shared < 2; shared++)
        printf("ru-embed int8 kernel, %d thread%s, 442 rows in 32-row chunks, the encoder's 48 GEMMs (%s): %.0f GOP/s\n",
               threads, threads > 1 ? "s" : "", shared ? "every layer with layer 0's weights, in cache"
                                                      : "each layer's own weights, 85 MB",
               encoder_gops(442, threads, shared));
    omp_set_num_threads(threads);
    printf("oneDNN int8 matmul, %d thread%s, 442 rows, the encoder's 48 GEMMs (each layer's own weights), int32 products only: %.0f GOP/s\n",
           threads, threads > 1 ? "s" : "", onednn_encoder_gops(engine, stream, 442));
    long rows[3] = {32, 128, 448};
    int counts[2] = {1, threads};
    for (int c = 0; c < 2; c++) {
        omp_set_num_threads(counts[c]);
        for (int r = 0; r < 3; r++) {
            double ops = 0, seconds = 0;
            for (int s = 0; s < 4; s++) {
                double g = matmul_gops(engine, stream, rows[r], shapes[s][0], shapes[s][1]);
                double o = 2.0 * rows[r] * shapes[s][0] * shapes[s][1];
                ops += o;
                seconds += o / g;
            }
            printf("oneDNN int8 matmul, %d thread%s, %3ld rows, the encoder layer's four shapes: %.0f GOP/s\n",
                   counts[c], counts[c] > 1 ? "s" : "", rows[r], ops / seconds);
        }
    }
    return 0;
}

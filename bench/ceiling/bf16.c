// The bf16 ceiling of this CPU for ru-embed --precision bf16: how many bf16 multiply-adds per
// second per core the CPU's two ways of multiplying bf16 with f32 accumulation retire with no
// memory traffic — vdpbf16ps, and vfmadd231ps on bf16 widened to f32 (exact) — the faster of
// the two being the bound; and how fast oneDNN's bf16 matmul (bf16 × bf16 → f32 with the bias)
// and ru-embed's two kernels (Sources/CKernels/bf16_linear.c: vdpbf16ps, FMA; bias and
// epilogue included) run the encoder's shapes, best of 5, on 1 and on THREADS threads, in
// GFLOP/s (1 multiply-add = 2 operations). Built and run by bench/bf16-ceiling.
#include <immintrin.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckernels.h"
#include "peak.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

PEAK_FUNCTION(bf16_loop, "vdpbf16ps")
PEAK_FUNCTION(fma_loop, "vfmadd231ps")

// One vdpbf16ps is 16 lanes × 2 multiply-adds = 64 operations; one vfmadd231ps 16 × 1 = 32.
static double bf16_peak(void) { return bf16_loop(50000000, now) * 64 / 1e9; }
static double fma_peak(void) { return fma_loop(50000000, now) * 32 / 1e9; }

#define CHECK(x) do { if ((x) != dnnl_success) { fprintf(stderr, "oneDNN call failed: %s\n", #x); exit(2); } } while (0)

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (!ck_bf16_available()) {
        printf("no AVX512_BF16 on this CPU: nothing to measure\n");
        return 0;
    }
    double dot_peak = 0, fma = 0;
    for (int run = 0; run < 5; run++) {
        double sum = 0, fsum = 0;
        #pragma omp parallel num_threads(threads) reduction(+ : sum)
        sum += bf16_peak();
        #pragma omp parallel num_threads(threads) reduction(+ : fsum)
        fsum += fma_peak();
        if (sum > dot_peak) dot_peak = sum;
        if (fsum > fma) fma = fsum;
    }
    double peak = dot_peak > fma ? dot_peak : fma;
    int fma_kernel = ck_bf16_fma_preferred();
    // bench/embed reads the first "no memory traffic: N GFLOP/s".
    printf("bf16 peak, %d cores, no memory traffic: %.0f GFLOP/s (the faster of vdpbf16ps, %.0f, and vfmadd231ps on "
           "widened bf16, %.0f; ru-embed's kernel here: %s)\n", threads, peak, dot_peak, fma, fma_kernel ? "FMA" : "vdpbf16ps");
    if (argc > 2 && strcmp(argv[2], "--peak") == 0) return 0;

    dnnl_engine_t engine;
    dnnl_stream_t stream;
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    // rows × inputs × outputs, and the epilogue ru-embed runs there: BERT-base's QKV (plain),
    // attention output and FFN down (added to the residual), FFN up (GELU), at 256 rows (a
    // batch) and 20 (one short text).
    long shapes[][4] = {{256, 768, 2304, CK_PLAIN}, {256, 768, 768, CK_ACCUMULATE}, {256, 768, 3072, CK_GELU_ERF},
                        {256, 3072, 768, CK_ACCUMULATE}, {20, 768, 2304, CK_PLAIN}, {20, 3072, 768, CK_ACCUMULATE},
                        {256, 1024, 4096, CK_GELU_ERF}, {256, 4096, 1024, CK_ACCUMULATE}};
    int count = sizeof shapes / sizeof shapes[0];
    printf("%5s %5s %5s  %8s %8s %8s   %8s %8s %8s   GFLOP/s, best of 5 (ours with its epilogue)\n", "rows", "in",
           "out", "oneDNN", "vdpbf16ps", "FMA", "oneDNN", "vdpbf16ps", "FMA");
    printf("%17s  %26s   %26s\n", "", "1 thread", "all threads");
    for (int s = 0; s < count; s++) {
        long m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        int epilogue = (int)shapes[s][3];
        dnnl_memory_desc_t a, w, c, b;
        dnnl_dims_t da = {m, k}, dw = {k, n}, dc = {m, n}, db = {1, n};
        CHECK(dnnl_memory_desc_init_by_tag(&a, 2, da, dnnl_bf16, dnnl_ab));
        CHECK(dnnl_memory_desc_init_by_tag(&w, 2, dw, dnnl_bf16, dnnl_format_tag_any));
        CHECK(dnnl_memory_desc_init_by_tag(&c, 2, dc, dnnl_f32, dnnl_ab));
        CHECK(dnnl_memory_desc_init_by_tag(&b, 2, db, dnnl_f32, dnnl_ab));
        dnnl_matmul_desc_t md;
        CHECK(dnnl_matmul_desc_init(&md, &a, &w, &b, &c));
        float *X = malloc(m * k * 4), *C = aligned_alloc(64, m * n * 4), *B = aligned_alloc(64, n * 4);
        float *plain = malloc(n * k * 4);
        for (long i = 0; i < m * k; i++) X[i] = 0.01f * (i % 13) - 0.06f;
        for (long i = 0; i < n * k; i++) plain[i] = 0.02f * (i % 7) - 0.06f;
        for (long i = 0; i < n; i++) B[i] = 0.1f;
        size_t stride = ck_bf16_stride(k), panels = ck_bf16_panels(n);
        uint16_t *A = aligned_alloc(64, (m * stride * 2 + 63) / 64 * 64);
        ck_bf16_convert_rows(X, m, k, k, A, stride);
        float *R = aligned_alloc(64, (m * stride * 4 + 63) / 64 * 64);
        ck_bf16_round_rows(X, m, k, k, R, stride);
        uint16_t *packed = aligned_alloc(64, (ck_bf16_packed_elements(n, k) * 2 + 63) / 64 * 64);
        ck_bf16_pack(plain, n, k, packed);
        double flop = 2.0 * m * k * n, rate[2][3];
        for (int pass = 0; pass < 2; pass++) {
            int t = pass == 0 ? 1 : threads;
            omp_set_num_threads(t);
            dnnl_primitive_desc_t pd;
            CHECK(dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL));
            const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
            size_t wsize = dnnl_memory_desc_get_size(wq);
            uint16_t *W = aligned_alloc(64, (wsize + 63) / 64 * 64);
            for (size_t i = 0; i < wsize / 2; i++) W[i] = 0x3c00 + (i % 7);
            dnnl_primitive_t p;
            CHECK(dnnl_primitive_create(&p, pd));
            dnnl_memory_t ma, mw, mb, mc;
            CHECK(dnnl_memory_create(&ma, &a, engine, A));
            CHECK(dnnl_memory_create(&mw, wq, engine, W));
            CHECK(dnnl_memory_create(&mb, &b, engine, B));
            CHECK(dnnl_memory_create(&mc, &c, engine, C));
            dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, mc}};
            int iterations = (int)(2e9 * t / flop) + 1;
            double best_dnnl = 1e9, best_ours = 1e9, best_fma = 1e9;
            for (int rep = 0; rep < 5; rep++) {
                double t0 = now();
                for (int i = 0; i < iterations; i++) {
                    CHECK(dnnl_primitive_execute(p, stream, 4, args));
                    dnnl_stream_wait(stream);
                }
                double dt = (now() - t0) / iterations;
                if (dt < best_dnnl) best_dnnl = dt;
                memset(C, 0, m * n * 4);
                t0 = now();
                for (int i = 0; i < iterations; i++) {
                    #pragma omp parallel
                    {
                        int id = omp_get_thread_num(), nt = omp_get_num_threads();
                        ck_bf16_linear(A, stride, m, k, packed, n, panels * id / nt, panels * (id + 1) / nt, B,
                                       epilogue, C, n);
                    }
                }
                dt = (now() - t0) / iterations;
                if (dt < best_ours) best_ours = dt;
                memset(C, 0, m * n * 4);
                t0 = now();
                for (int i = 0; i < iterations; i++) {
                    #pragma omp parallel
                    {
                        int id = omp_get_thread_num(), nt = omp_get_num_threads();
                        ck_bf16_linear_fma(R, stride, m, k, packed, n, panels * id / nt, panels * (id + 1) / nt, B,
                                           epilogue, C, n);
                    }
                }
                dt = (now() - t0) / iterations;
                if (dt < best_fma) best_fma = dt;
            }
            rate[pass][0] = flop / best_dnnl / 1e9;
            rate[pass][1] = flop / best_ours / 1e9;
            rate[pass][2] = flop / best_fma / 1e9;
            dnnl_primitive_destroy(p);
            dnnl_primitive_desc_destroy(pd);
            dnnl_memory_destroy(ma); dnnl_memory_destroy(mw); dnnl_memory_destroy(mb); dnnl_memory_destroy(mc);
            free(W);
        }
        printf("%5ld %5ld %5ld  %8.1f %8.1f %8.1f   %8.1f %8.1f %8.1f\n", m, k, n, rate[0][0], rate[0][1], rate[0][2],
               rate[1][0], rate[1][1], rate[1][2]);
        free(X); free(A); free(R); free(C); free(B); free(plain); free(packed);
    }
    return 0;
}

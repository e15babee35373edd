// The f32 ceiling of this CPU for ru-embed (f32): how many FMAs a core retires per second with
// no memory traffic (AVX2 ymm, and AVX-512 zmm where the CPU has it), and how fast oneDNN's f32
// matmul and ru-embed's own kernel (Sources/CKernels/f32_linear.c) run the encoder's shapes,
// best of 7, on 1 and on THREADS threads, in GFLOP/s (1 FMA lane = 2 operations). Built and
// run by bench/f32-ceiling.
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

// Ten independent accumulator chains (FMA latency 4 × 2 pipes needs 8). They start from
// different values: chains that start equal and do the same work are merged into one by the
// compiler (GCC did, and the "peak" it printed was one latency-bound chain counted ten times).
__attribute__((target("avx2,fma"))) static double fma_peak_avx2(void) {
    __m256 a = _mm256_set1_ps(1.0001f), b = _mm256_set1_ps(0.9999f);
    __m256 c0 = _mm256_set1_ps(0), c1 = _mm256_set1_ps(1), c2 = _mm256_set1_ps(2), c3 = _mm256_set1_ps(3);
    __m256 c4 = _mm256_set1_ps(4), c5 = _mm256_set1_ps(5), c6 = _mm256_set1_ps(6), c7 = _mm256_set1_ps(7);
    __m256 c8 = _mm256_set1_ps(8), c9 = _mm256_set1_ps(9);
    long n = 100000000;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        c0 = _mm256_fmadd_ps(a, b, c0); c1 = _mm256_fmadd_ps(a, b, c1); c2 = _mm256_fmadd_ps(a, b, c2);
        c3 = _mm256_fmadd_ps(a, b, c3); c4 = _mm256_fmadd_ps(a, b, c4); c5 = _mm256_fmadd_ps(a, b, c5);
        c6 = _mm256_fmadd_ps(a, b, c6); c7 = _mm256_fmadd_ps(a, b, c7); c8 = _mm256_fmadd_ps(a, b, c8);
        c9 = _mm256_fmadd_ps(a, b, c9);
        __asm__ volatile("" : "+x"(a));
    }
    double t = now() - t0;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(c8, c9));
    float o[8];
    _mm256_storeu_ps(o, s);
    volatile float sink = o[0];
    (void)sink;
    return 10.0 * n * 16 / t / 1e9;
}

PEAK_FUNCTION(fma_loop_avx512, "vfmadd231ps")

// One zmm FMA is 16 lanes × 1 multiply-add = 32 operations.
static double fma_peak_avx512(void) { return fma_loop_avx512(50000000, now) * 32 / 1e9; }

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int avx512 = __builtin_cpu_supports("avx512f");
    // The best of five: on a shared machine one run can lose a fifth to a neighbour.
    double peak = 0;
    for (int run = 0; run < 5; run++) {
        double sum = 0;
        #pragma omp parallel num_threads(threads) reduction(+ : sum)
        sum += avx512 ? fma_peak_avx512() : fma_peak_avx2();
        if (sum > peak) peak = sum;
    }
    printf("FMA peak (%s), %d cores, no memory traffic: %.0f GFLOP/s\n", avx512 ? "zmm" : "ymm", threads, peak);
    if (argc > 2 && strcmp(argv[2], "--peak") == 0) return 0;
    printf("ru-embed's kernel is %s on this CPU\n", ck_f32_kernel_preferred() ? "used" : "not used (oneDNN is)");

    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_engine_create(&engine, dnnl_cpu, 0);
    dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    // rows × inputs × outputs: a batch of 256 tokens and one short text of 20, through
    // BERT-base's (QKV, attention output, FFN up, FFN down) and XLM-R-large's FFN.
    long shapes[][3] = {{256, 768, 2304}, {256, 768, 768}, {256, 768, 3072}, {256, 3072, 768},
                        {20, 768, 2304}, {20, 3072, 768}, {256, 1024, 4096}, {256, 4096, 1024}};
    int count = sizeof shapes / sizeof shapes[0];
    printf("%5s %5s %5s  %8s %8s   %8s %8s   GFLOP/s, best of 7\n", "rows", "in", "out", "oneDNN", "ours",
           "oneDNN", "ours");
    printf("%17s  %17s   %17s\n", "", "1 thread", "all threads");
    for (int s = 0; s < count; s++) {
        long m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        dnnl_memory_desc_t a, w, c, b;
        dnnl_dims_t da = {m, k}, dw = {k, n}, dc = {m, n}, db = {1, n};
        dnnl_memory_desc_init_by_tag(&a, 2, da, dnnl_f32, dnnl_ab);
        dnnl_memory_desc_init_by_tag(&w, 2, dw, dnnl_f32, dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&c, 2, dc, dnnl_f32, dnnl_ab);
        dnnl_memory_desc_init_by_tag(&b, 2, db, dnnl_f32, dnnl_ab);
        dnnl_matmul_desc_t md;
        dnnl_matmul_desc_init(&md, &a, &w, &b, &c);
        float *A = aligned_alloc(64, m * k * 4), *C = aligned_alloc(64, m * n * 4), *B = aligned_alloc(64, n * 4);
        float *plain = malloc(n * k * 4);
        for (long i = 0; i < m * k; i++) A[i] = 0.01f * (i % 13);
        for (long i = 0; i < n * k; i++) plain[i] = 0.02f * (i % 7);
        for (long i = 0; i < n; i++) B[i] = 0.1f;
        size_t floats = ck_f32_packed_floats(n, k), panels = ck_f32_panels(n);
        float *packed = aligned_alloc(64, (floats * 4 + 63) / 64 * 64);
        ck_f32_pack(plain, n, k, packed);
        double flop = 2.0 * m * k * n, rate[2][2];
        for (int pass = 0; pass < 2; pass++) {
            int t = pass == 0 ? 1 : threads;
            omp_set_num_threads(t);
            // A primitive plans its split for the threads of its creation: one per pass.
            dnnl_primitive_desc_t pd;
            dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL);
            const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
            size_t wsize = dnnl_memory_desc_get_size(wq);
            float *W = aligned_alloc(64, (wsize + 63) / 64 * 64);
            for (size_t i = 0; i < wsize / 4; i++) W[i] = 0.02f * (i % 7);
            dnnl_primitive_t p;
            dnnl_primitive_create(&p, pd);
            dnnl_memory_t ma, mw, mb, mc;
            dnnl_memory_create(&ma, &a, engine, A);
            dnnl_memory_create(&mw, wq, engine, W);
            dnnl_memory_create(&mb, &b, engine, B);
            dnnl_memory_create(&mc, &c, engine, C);
            dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, mc}};
            int iterations = (int)(1e9 * t / flop) + 1;
            double best_dnnl = 1e9, best_ours = 1e9;
            for (int rep = 0; rep < 7; rep++) {
                double t0 = now();
                for (int i = 0; i < iterations; i++) {
                    dnnl_primitive_execute(p, stream, 4, args);
                    dnnl_stream_wait(stream);
                }
                double dt = (now() - t0) / iterations;
                if (dt < best_dnnl) best_dnnl = dt;
                t0 = now();
                for (int i = 0; i < iterations; i++) {
                    #pragma omp parallel
                    {
                        int id = omp_get_thread_num(), nt = omp_get_num_threads();
                        ck_f32_linear(A, k, m, k, packed, n, panels * id / nt, panels * (id + 1) / nt, B, CK_PLAIN, C, n);
                    }
                }
                dt = (now() - t0) / iterations;
                if (dt < best_ours) best_ours = dt;
            }
            rate[pass][0] = flop / best_dnnl / 1e9;
            rate[pass][1] = flop / best_ours / 1e9;
            dnnl_primitive_destroy(p);
            dnnl_primitive_desc_destroy(pd);
            dnnl_memory_destroy(ma); dnnl_memory_destroy(mw); dnnl_memory_destroy(mb); dnnl_memory_destroy(mc);
            free(W);
        }
        printf("%5ld %5ld %5ld  %8.1f %8.1f   %8.1f %8.1f\n", m, k, n, rate[0][0], rate[0][1], rate[1][0], rate[1][1]);
        free(A); free(C); free(B); free(plain); free(packed);
    }
    return 0;
}

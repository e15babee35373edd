// The f32 linear layer of ru-embed on AVX2 CPUs and Intel's AVX-512 ones: weights packed once
// into column panels of sixteen, and a register tile with the bias and the epilogue applied to
// it before it is stored: 6 × 16 on AVX2 (12 ymm accumulators, two panel loads and six
// broadcasts per input), 8 × 48 on AVX-512 (three panels side by side; below).
//
// Why our own kernel rather than oneDNN's f32 matmul there: on a Zen 3 (AVX2, 2 cores, FMA
// peak 179 GFLOP/s on both, bench/f32-ceiling), oneDNN 2.6's gemm:jit ran the encoder's shapes
// at 35–75 % of the peak (256 × 768 · 768 × 3072: 71 GFLOP/s) and ru-embed's BERT-base forward
// spent 90 % of its time inside it; this kernel runs the same shapes at 64–81 % (130 GFLOP/s
// there), which made the whole BERT-base process 1.3× faster. bench/f32-ceiling prints both.
// AMD's AVX-512 CPUs keep oneDNN (ck_f32_kernel_preferred says why).
//
// AVX2 blocking, for a 32 KiB L1 and a 512 KiB L2 per core: inputs in blocks of KC = 256, so a
// panel's block (256 × 16 floats, 16 KiB) stays in L1 while every 6-row strip of the rows
// block passes over it; rows in blocks of MC = 144, so the rows block (144 × 256 floats,
// 144 KiB) stays in L2 while the panels pass. Partial sums go to the output between input
// blocks; the first block starts from zero (or from the output itself when accumulating into
// a residual), the last adds the bias and applies the epilogue.
#include "ckernels.h"
#include "internal.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { F32_PANEL = 16, F32_TILE_ROWS = 6, F32_KC = 256, F32_MC = 144 };

size_t ck_f32_panels(size_t n) { return (n + F32_PANEL - 1) / F32_PANEL; }

size_t ck_f32_packed_floats(size_t n, size_t k) { return ck_f32_panels(n) * F32_PANEL * k; }

// Panel p holds columns 16p … 16p + 15 as k rows of sixteen floats (input i of those columns
// together); columns past n are zero.
void ck_f32_pack(const float *weights, size_t n, size_t k, float *packed) {
    size_t panels = ck_f32_panels(n);
    for (size_t p = 0; p < panels; p++) {
        float *panel = packed + p * F32_PANEL * k;
        for (size_t c = 0; c < F32_PANEL; c++) {
            size_t column = p * F32_PANEL + c;
            if (column < n) {
                const float *w = weights + column * k;
                for (size_t i = 0; i < k; i++) panel[i * F32_PANEL + c] = w[i];
            } else {
                for (size_t i = 0; i < k; i++) panel[i * F32_PANEL + c] = 0;
            }
        }
    }
}

int ck_f32_kernel_preferred(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    // AVX-512: Intel's cores only. On a Zen 5 oneDNN's AVX-512 JIT ran the encoder's shapes at
    // 92-95 % of the FMA peak and an earlier AVX-512 copy of this kernel (rows packed into strips,
    // no prefetching) lost to it, 6.1-7.8 s against 5.7-5.9 s on the batch workload (2026-12-04);
    // this one has not run on an AMD CPU yet (bench/f32-ceiling prints both side by side).
    if (__builtin_cpu_supports("avx512f")) return ck_cpu_is_intel();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#if defined(__x86_64__)
#define F32_TARGET __attribute__((target("avx2,fma")))

/// Sixteen outputs of one row after the last input block: GELU in place (bias already added).
static inline __attribute__((always_inline)) F32_TARGET void gelu16(float *o, int epilogue) {
    if (epilogue == CK_GELU_ERF) {
        for (int j = 0; j < 16; j++) o[j] = 0.5f * o[j] * (1.0f + ck_erff(o[j] * 0.70710678118654752f));
    } else if (epilogue == CK_GELU_TANH) {
        for (int j = 0; j < 16; j++) {
            float v = o[j], u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
            o[j] = 0.5f * v * (2.0f - 2.0f / (ck_expf(2.0f * u) + 1.0f)); // tanh(u) = 1 − 2 / (e^{2u} + 1)
        }
    }
}

/// c[rows × 16] (c_stride floats between rows) ← (start ? c : 0) + a[rows × kc] · panel[kc × 16],
/// plus bias and the epilogue when `last`. `rows` (1…6) is a constant at each call, so the
/// unused accumulators and broadcasts disappear.
static inline __attribute__((always_inline)) F32_TARGET
void f32_tile(const float *a, const float *panel, size_t kc, float *c, size_t c_stride, int rows,
              int from_output, int last, const float *bias, int epilogue) {
    __m256 acc[F32_TILE_ROWS][2];
    for (int r = 0; r < F32_TILE_ROWS; r++) {
        if (r < rows && from_output) {
            acc[r][0] = _mm256_loadu_ps(c + r * c_stride);
            acc[r][1] = _mm256_loadu_ps(c + r * c_stride + 8);
        } else {
            acc[r][0] = _mm256_setzero_ps();
            acc[r][1] = _mm256_setzero_ps();
        }
    }
#define F32_STEP(r)                                              \
    if (rows > r) {                                              \
        __m256 x = _mm256_broadcast_ss(a + r);                   \
        acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);           \
        acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);           \
    }
#if defined(__clang__)
#pragma clang loop unroll_count(4)
#endif
    for (size_t i = 0; i < kc; i++, a += F32_TILE_ROWS, panel += F32_PANEL) {
        __m256 w0 = _mm256_load_ps(panel), w1 = _mm256_load_ps(panel + 8);
        F32_STEP(0) F32_STEP(1) F32_STEP(2) F32_STEP(3) F32_STEP(4) F32_STEP(5)
    }
#undef F32_STEP
    if (last) {
        __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
        for (int r = 0; r < rows; r++) {
            _mm256_storeu_ps(c + r * c_stride, _mm256_add_ps(acc[r][0], b0));
            _mm256_storeu_ps(c + r * c_stride + 8, _mm256_add_ps(acc[r][1], b1));
            gelu16(c + r * c_stride, epilogue);
        }
    } else {
        for (int r = 0; r < rows; r++) {
            _mm256_storeu_ps(c + r * c_stride, acc[r][0]);
            _mm256_storeu_ps(c + r * c_stride + 8, acc[r][1]);
        }
    }
}

static inline __attribute__((always_inline)) F32_TARGET
void f32_tile_any(const float *a, const float *panel, size_t kc, float *c, size_t c_stride,
                  size_t rows, int from_output, int last, const float *bias, int epilogue) {
    switch (rows) {
    case 6: f32_tile(a, panel, kc, c, c_stride, 6, from_output, last, bias, epilogue); break;
    case 5: f32_tile(a, panel, kc, c, c_stride, 5, from_output, last, bias, epilogue); break;
    case 4: f32_tile(a, panel, kc, c, c_stride, 4, from_output, last, bias, epilogue); break;
    case 3: f32_tile(a, panel, kc, c, c_stride, 3, from_output, last, bias, epilogue); break;
    case 2: f32_tile(a, panel, kc, c, c_stride, 2, from_output, last, bias, epilogue); break;
    default: f32_tile(a, panel, kc, c, c_stride, 1, from_output, last, bias, epilogue); break;
    }
}

/// The rows block's inputs k0 ..< k0 + kc, as strips of six rows interleaved input by input
/// (strip s: kc groups of six floats), so the tile's six broadcasts per input read one line.
/// Rows past the block's last are zero.
static void pack_rows(const float *x, size_t x_stride, size_t rows, size_t k0, size_t kc, float *strips) {
    for (size_t r0 = 0; r0 < rows; r0 += F32_TILE_ROWS) {
        float *strip = strips + r0 * kc;
        for (size_t t = 0; t < F32_TILE_ROWS; t++) {
            if (r0 + t < rows) {
                const float *src = x + (r0 + t) * x_stride + k0;
                for (size_t i = 0; i < kc; i++) strip[i * F32_TILE_ROWS + t] = src[i];
            } else {
                for (size_t i = 0; i < kc; i++) strip[i * F32_TILE_ROWS + t] = 0;
            }
        }
    }
}

F32_TARGET static void f32_linear_avx2(const float *x, size_t x_stride, size_t rows, size_t k, const float *packed,
                                       size_t n, size_t panel_begin, size_t panel_end, const float *bias,
                                       int epilogue, float *out, size_t out_stride, float *strips) {
    static const float zeros[F32_PANEL];
    int accumulate = epilogue == CK_ACCUMULATE;
    for (size_t m0 = 0; m0 < rows; m0 += F32_MC) {
        size_t mc = rows - m0 < F32_MC ? rows - m0 : F32_MC;
        for (size_t k0 = 0; k0 < k; k0 += F32_KC) {
            size_t kc = k - k0 < F32_KC ? k - k0 : F32_KC;
            int first = k0 == 0, last = k0 + kc == k;
            pack_rows(x + m0 * x_stride, x_stride, mc, k0, kc, strips);
            for (size_t p = panel_begin; p < panel_end; p++) {
                size_t column = p * F32_PANEL, count = n - column < F32_PANEL ? n - column : F32_PANEL;
                const float *panel = packed + p * F32_PANEL * k + k0 * F32_PANEL;
                const float *b = bias ? bias + column : zeros;
                if (count == F32_PANEL) {
                    for (size_t r = 0; r < mc; r += F32_TILE_ROWS) {
                        size_t tile_rows = mc - r < F32_TILE_ROWS ? mc - r : F32_TILE_ROWS;
                        f32_tile_any(strips + r * kc, panel, kc, out + (m0 + r) * out_stride + column, out_stride,
                                     tile_rows, !first || accumulate, last, b, epilogue);
                    }
                } else {
                    // The last, narrower panel: through a 6 × 16 copy, so the tile never
                    // reads or writes past the output's columns.
                    float tile[F32_TILE_ROWS * F32_PANEL], b16[F32_PANEL] = {0};
                    memcpy(b16, b, count * sizeof(float));
                    for (size_t r = 0; r < mc; r += F32_TILE_ROWS) {
                        size_t tile_rows = mc - r < F32_TILE_ROWS ? mc - r : F32_TILE_ROWS;
                        float *o = out + (m0 + r) * out_stride + column;
                        memset(tile, 0, sizeof tile);
                        if (!first || accumulate)
                            for (size_t t = 0; t < tile_rows; t++) memcpy(tile + t * F32_PANEL, o + t * out_stride, count * sizeof(float));
                        f32_tile_any(strips + r * kc, panel, kc, tile, F32_PANEL, tile_rows, !first || accumulate,
                                     last, b16, epilogue);
                        for (size_t t = 0; t < tile_rows; t++) memcpy(o + t * out_stride, tile + t * F32_PANEL, count * sizeof(float));
                    }
                }
            }
        }
    }
}

// AVX-512: a tile of 8 rows × 48 columns (three panels side by side, 24 zmm accumulators), each
// input one line of each panel and eight broadcasts straight from the rows (no packed copy: a
// row's line serves sixteen inputs from L1). Rows in blocks of 128, inputs in blocks of 768
// (USER-base's attention and first feed-forward GEMMs in one), and, as in the bf16 kernel,
// panels outside the row tiles, so a panel triple (768 × 48 floats, 144 KiB) comes from
// L3 or memory once per rows block and from L2 for its other tiles. While a triple's tiles run
// they prefetch the next triple into L2 (each tile its share, ck_next_panel_share) and each
// step asks for the line 16 inputs ahead into L1. Intel Xeon model 207, one thread, the
// encoder's shapes: level with oneDNN 2.6's JIT at 256 rows (0.96–1.04×), 1.1–1.17× at 20
// rows; whole process 1–10 % less time than with oneDNN on the batch workload (five
// interleaved rounds) and 11–19 % one text at a time (bench/f32-ceiling, docs/EMBED.md).
// Packing the rows into strips as the AVX2 path does, and input blocks of 128–256, ran at
// 0.8–0.95× oneDNN there; the L1 prefetch gained ~3 % on one thread at 256 rows, the next
// triple's 2–7 % one text at a time (whole process, four interleaved rounds).
#define F32_AVX512 __attribute__((target("avx512f")))
enum { F32_ROWS512 = 8, F32_KC512 = 768, F32_MC512 = 128, F32_AHEAD512 = 16 };

/// c[stored rows × `count` columns] (c_stride floats between rows) ← (from_output ? c : 0) +
/// x[rows × kc] · the `vectors` panels (`panel_stride` floats apart), plus bias and the epilogue
/// when `last`. `rows` (8 or 4) and `vectors` (1…3) are constants at each call, so the unused
/// accumulators disappear; rows past `stored` repeat the last (computed, never stored, always
/// readable), columns past `count` are masked off.
static inline __attribute__((always_inline)) F32_AVX512
void f32_tile512(const float *x, size_t x_stride, const float *panel, size_t panel_stride, size_t kc, float *c,
                 size_t c_stride, int rows, size_t stored, int vectors, size_t count, int from_output, int last,
                 const float *bias, int epilogue, const struct ck_prefetch next[3]) {
    __mmask16 lanes[3];
    for (int v = 0; v < 3; v++) {
        size_t first = (size_t)v * 16;
        lanes[v] = count >= first + 16 ? (__mmask16)0xffff : count > first ? (__mmask16)((1u << (count - first)) - 1) : 0;
    }
    const float *a[F32_ROWS512];
    for (int r = 0; r < F32_ROWS512; r++) a[r] = x + ((size_t)r < stored ? (size_t)r : stored - 1) * x_stride;
    __m512 acc[F32_ROWS512][3];
#if defined(__clang__)
#pragma clang loop unroll(full)
#endif
    for (int r = 0; r < F32_ROWS512; r++)
#if defined(__clang__)
#pragma clang loop unroll(full)
#endif
        for (int v = 0; v < 3; v++)
            acc[r][v] = r < rows && (size_t)r < stored && v < vectors && from_output
                ? _mm512_maskz_loadu_ps(lanes[v], c + r * c_stride + v * 16) : _mm512_setzero_ps();
    const float *p0 = panel, *p1 = panel + panel_stride, *p2 = panel + 2 * panel_stride;
#define F32_STEP512(r)                                                  \
    if (rows > r) {                                                     \
        __m512 xr = _mm512_set1_ps(a[r][i]);                            \
        acc[r][0] = _mm512_fmadd_ps(xr, w0, acc[r][0]);                 \
        if (vectors > 1) acc[r][1] = _mm512_fmadd_ps(xr, w1, acc[r][1]); \
        if (vectors > 2) acc[r][2] = _mm512_fmadd_ps(xr, w2, acc[r][2]); \
    }
    for (size_t i = 0; i < kc; i++) {
        for (int v = 0; v < 3; v++)
            if (i < next[v].lines) _mm_prefetch(next[v].from + 64 * i, _MM_HINT_T1);
        _mm_prefetch((const char *)(p0 + (i + F32_AHEAD512) * F32_PANEL), _MM_HINT_T0);
        if (vectors > 1) _mm_prefetch((const char *)(p1 + (i + F32_AHEAD512) * F32_PANEL), _MM_HINT_T0);
        if (vectors > 2) _mm_prefetch((const char *)(p2 + (i + F32_AHEAD512) * F32_PANEL), _MM_HINT_T0);
        __m512 w0 = _mm512_load_ps(p0 + i * F32_PANEL);
        __m512 w1 = vectors > 1 ? _mm512_load_ps(p1 + i * F32_PANEL) : w0;
        __m512 w2 = vectors > 2 ? _mm512_load_ps(p2 + i * F32_PANEL) : w0;
        F32_STEP512(0) F32_STEP512(1) F32_STEP512(2) F32_STEP512(3)
        F32_STEP512(4) F32_STEP512(5) F32_STEP512(6) F32_STEP512(7)
    }
#undef F32_STEP512
#if defined(__clang__)
#pragma clang loop unroll(full)
#endif
    for (int v = 0; v < 3; v++) {
        if (v >= vectors) break;
        __m512 b = last ? _mm512_maskz_loadu_ps(lanes[v], bias + v * 16) : _mm512_setzero_ps();
        size_t left = count - (size_t)v * 16;
#if defined(__clang__)
#pragma clang loop unroll(full)
#endif
        for (int r = 0; r < F32_ROWS512; r++) {
            if (r >= rows || (size_t)r >= stored) break;
            float *o = c + r * c_stride + v * 16;
            _mm512_mask_storeu_ps(o, lanes[v], _mm512_add_ps(acc[r][v], b));
            if (last && (epilogue == CK_GELU_ERF || epilogue == CK_GELU_TANH)) {
                if (left >= 16) {
                    gelu16(o, epilogue);
                } else {
                    float t[16] = {0};
                    memcpy(t, o, left * sizeof(float));
                    gelu16(t, epilogue);
                    memcpy(o, t, left * sizeof(float));
                }
            }
        }
    }
}

#define F32_TILE512(R, V)                                                                                 \
    f32_tile512(x + (m0 + r) * x_stride + k0, x_stride, panel, panel_stride, kc,                          \
                out + (m0 + r) * out_stride + column, out_stride, R, tile_rows, V, count, from_output, last, b, \
                epilogue, next)

F32_AVX512 static void f32_linear_avx512(const float *x, size_t x_stride, size_t rows, size_t k, const float *packed,
                                         size_t n, size_t panel_begin, size_t panel_end, const float *bias,
                                         int epilogue, float *out, size_t out_stride) {
    static const float zeros[3 * F32_PANEL];
    int accumulate = epilogue == CK_ACCUMULATE;
    size_t panel_stride = F32_PANEL * k;
    for (size_t m0 = 0; m0 < rows; m0 += F32_MC512) {
        size_t mc = rows - m0 < F32_MC512 ? rows - m0 : F32_MC512, tiles = (mc + F32_ROWS512 - 1) / F32_ROWS512;
        for (size_t k0 = 0; k0 < k; k0 += F32_KC512) {
            size_t kc = k - k0 < F32_KC512 ? k - k0 : F32_KC512;
            int last = k0 + kc == k, from_output = k0 > 0 || accumulate;
            for (size_t p = panel_begin; p < panel_end; p += 3) {
                size_t vectors = panel_end - p < 3 ? panel_end - p : 3;
                size_t column = p * F32_PANEL, count = n - column < vectors * F32_PANEL ? n - column : vectors * F32_PANEL;
                size_t following = panel_end - p - vectors < 3 ? panel_end - p - vectors : 3;
                const float *panel = packed + p * panel_stride + k0 * F32_PANEL, *b = bias ? bias + column : zeros;
                for (size_t r = 0; r < mc; r += F32_ROWS512) {
                    size_t tile_rows = mc - r < F32_ROWS512 ? mc - r : F32_ROWS512;
                    // The next triple's lines: one per input per panel, this tile's share of each.
                    struct ck_prefetch next[3] = {{0, 0}, {0, 0}, {0, 0}};
                    for (size_t v = 0; v < following; v++)
                        next[v] = ck_next_panel_share(panel + (vectors + v) * panel_stride, kc, r / F32_ROWS512, tiles, kc);
                    switch (vectors + 3 * (tile_rows <= 4)) {
                    case 3: F32_TILE512(8, 3); break;
                    case 2: F32_TILE512(8, 2); break;
                    case 1: F32_TILE512(8, 1); break;
                    case 6: F32_TILE512(4, 3); break;
                    case 5: F32_TILE512(4, 2); break;
                    default: F32_TILE512(4, 1); break;
                    }
                }
            }
        }
    }
}
#undef F32_TILE512
#endif

void ck_f32_linear(const float *x, size_t x_stride, size_t rows, size_t k, const float *packed, size_t n,
                   size_t panel_begin, size_t panel_end, const float *bias, int epilogue, float *out,
                   size_t out_stride) {
    if (rows == 0 || k == 0 || panel_begin >= panel_end) return;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        f32_linear_avx512(x, x_stride, rows, k, packed, n, panel_begin, panel_end, bias, epilogue, out, out_stride);
        return;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        // The rows block in strips: 144 KiB at most, on the heap (a thread's stack may be small).
        size_t block = rows < F32_MC ? rows : F32_MC;
        float *strips = aligned_alloc(64, ((block + F32_TILE_ROWS - 1) / F32_TILE_ROWS * F32_TILE_ROWS *
                                           (k < F32_KC ? k : F32_KC) * sizeof(float) + 63) / 64 * 64);
        if (!strips) __builtin_trap();
        f32_linear_avx2(x, x_stride, rows, k, packed, n, panel_begin, panel_end, bias, epilogue, out, out_stride,
                        strips);
        free(strips);
        return;
    }
#endif
    __builtin_trap(); // a caller's bug: this kernel needs AVX2 and FMA (ck_f32_kernel_preferred)
}

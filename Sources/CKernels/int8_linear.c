// The int8 linear layer of `ru-embed --precision int8`: activations quantised per row (u8),
// weights per output channel (s8) and packed into column panels, and one kernel that
// multiplies a tile of rows by a panel in int32 registers and dequantises the tile from those
// registers into the float output (bias, GELU or residual add included). CPUs without
// AVX-512 VNNI get oneDNN's int8 matmul instead (OneDNNInt8Matmul.swift), whose int32
// products ck_int8_dequantize turns into the same outputs, bit for bit.
//
// Why our own kernel rather than oneDNN's int8 matmul: oneDNN writes int32 products to
// memory and a second sweep has to read them back to dequantise (7 % of an int8 run on the
// bench, bound by L2 traffic); here the products never leave the core. On the Zen 5 of
// 2026-12-04 the products alone ran the encoder's shapes at 94 % of the vpdpbusd peak, with
// their epilogues 83-98 % (GELU's erf the dearest).
#include "ckernels.h"
#include "internal.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { PANEL = 48, TILE_ROWS = 8 };

size_t ck_int8_code_stride(size_t k) { return (k + 3) & ~(size_t)3; }

static size_t padded_columns(size_t n) { return (n + 15) & ~(size_t)15; }

size_t ck_int8_panels(size_t n) { return (padded_columns(n) + PANEL - 1) / PANEL; }

size_t ck_int8_packed_size(size_t n, size_t k) { return ck_int8_code_stride(k) * padded_columns(n); }

// Panel p holds columns 48p … 48p + w − 1 (w = 48, or what is left of n rounded up to 16),
// as k/4 groups of w × 4 bytes: the four weights of column c for inputs 4q … 4q + 3 sit
// together, which is what one 32-bit lane of vpdpbusd multiplies by four u8 activations.
// Columns past n and inputs past k are zero.
void ck_int8_quantize_pack(const float *weights, size_t n, size_t k, int8_t *packed, float *scales,
                           int32_t *code_sums, float *code_l1) {
    size_t stride = ck_int8_code_stride(k), groups = stride / 4, columns = padded_columns(n);
    int8_t *row = malloc(stride);
    // Row by row (one output column each), quantised into `row` and spread over its lane:
    // the panel being filled stays in cache, and no [n × k] plain copy is written and read.
    for (size_t column = 0; column < columns; column++) {
        size_t first = column / PANEL * PANEL, width = columns - first < PANEL ? columns - first : PANEL;
        int8_t *lane = packed + first * stride + (column - first) * 4;
        memset(row, 0, stride);
        if (column < n)
            ck_quantize_weights_s8(weights + column * k, 1, k, row, scales + column, code_sums + column,
                                   code_l1 + column);
        for (size_t q = 0; q < groups; q++) memcpy(lane + q * width * 4, row + 4 * q, 4);
    }
    free(row);
}

typedef int32_t vi16 __attribute__((vector_size(64)));

// Macros, not functions, as internal.h's load16: a function taking v16 by value would have
// a different ABI in each instruction set's copy. Their arithmetic is strict (no reassociation,
// no fusing but the one written): the kernel's registers and the tile buffer / oneDNN products
// inline them into different code, and under the file's fast contract the optimiser had
// associated the two differently (a fifth of the outputs a rounding apart at -O2).

/// GELU of sixteen values (a constant trip count over a local array, which stays in registers).
#define GELU16(value, epilogue)                                                                    \
    ({                                                                                             \
        _Pragma("clang fp reassociate(off)") _Pragma("clang fp contract(off)")                     \
        float g_[16];                                                                              \
        store16(g_, (value));                                                                      \
        if ((epilogue) == CK_GELU_ERF) {                                                           \
            for (int j_ = 0; j_ < 16; j_++) g_[j_] = 0.5f * g_[j_] * (1.0f + ck_erff(g_[j_] * 0.70710678118654752f)); \
        } else {                                                                                   \
            for (int j_ = 0; j_ < 16; j_++) { /* tanh(u) = 1 − 2 / (e^{2u} + 1) */                \
                float u_ = 0.79788456080286536f * (g_[j_] + 0.044715f * g_[j_] * g_[j_] * g_[j_]); \
                g_[j_] = 0.5f * g_[j_] * (2.0f - 2.0f / (ck_expf(2.0f * u_) + 1.0f));             \
            }                                                                                      \
        }                                                                                          \
        load16(g_);                                                                                \
    })

/// Sixteen outputs of one row: fma(x_scale·w_scale, product − x_zero·w_sum, bias), then the
/// epilogue (`current`: the outputs CK_ACCUMULATE adds to). Every path that dequantises (the
/// kernel's registers, its tile buffer, oneDNN's products) goes through this one expression,
/// so they give the same bits.
#define DEQUANTIZE_VECTOR(product, x_scale, x_zero, w_scales, w_sums, bias, current, epilogue)        \
    ({                                                                                             \
        _Pragma("clang fp reassociate(off)") _Pragma("clang fp contract(off)")                     \
        int e_ = (epilogue);                                                                       \
        v16 scale_ = (x_scale) * (w_scales);                                                       \
        v16 v_ = __builtin_elementwise_fma(scale_, __builtin_convertvector((product) - (x_zero) * (w_sums), v16), (bias)); \
        e_ == CK_ACCUMULATE ? (current) + v_ : e_ == CK_GELU_ERF || e_ == CK_GELU_TANH ? GELU16(v_, e_) : v_; \
    })

/// Sixteen outputs of one row from memory: o[j] (=, or +=) DEQUANTIZE_VECTOR of product[j].
static inline __attribute__((always_inline))
void dequantize16(const int32_t *restrict product, float x_scale, int32_t x_zero, const float *restrict w_scales,
                  const int32_t *restrict w_sums, const float *restrict bias, float *restrict o, int epilogue) {
    vi16 p, sums;
    __builtin_memcpy(&p, product, sizeof p);
    __builtin_memcpy(&sums, w_sums, sizeof sums);
    v16 current = epilogue == CK_ACCUMULATE ? load16(o) : (v16){0};
    store16(o, DEQUANTIZE_VECTOR(p, x_scale, x_zero, load16(w_scales), sums, load16(bias), current, epilogue));
}

static const float zeros16[16];

/// out[0 ..< count] (=, or +=) the dequantised products of one row, bias and epilogue,
/// sixteen at a time; a last group of fewer goes through zero-padded copies, so every output
/// comes from the same instructions whatever the row's length or where the caller split it.
static inline __attribute__((always_inline))
void dequantize_row(const int32_t *product, size_t count, float x_scale, int32_t x_zero, const float *w_scales,
                    const int32_t *w_sums, const float *bias, float *out, int epilogue) {
    size_t n = 0;
    for (; n + 16 <= count; n += 16)
        dequantize16(product + n, x_scale, x_zero, w_scales + n, w_sums + n, bias ? bias + n : zeros16, out + n,
                     epilogue);
    if (n < count) {
        size_t lanes = count - n;
        int32_t p[16] = {0}, sums[16] = {0};
        float scales[16] = {0}, b[16] = {0}, o[16] = {0};
        memcpy(p, product + n, lanes * sizeof(int32_t));
        memcpy(sums, w_sums + n, lanes * sizeof(int32_t));
        memcpy(scales, w_scales + n, lanes * sizeof(float));
        if (bias) memcpy(b, bias + n, lanes * sizeof(float));
        memcpy(o, out + n, lanes * sizeof(float));
        dequantize16(p, x_scale, x_zero, scales, sums, b, o, epilogue);
        memcpy(out + n, o, lanes * sizeof(float));
    }
}

/// The tile's rows (`rows` of at most 8, from `first`) of one panel's products, dequantised into out.
static inline __attribute__((always_inline))
void finish_tile(const int32_t *tile, size_t rows, size_t first, size_t column, size_t count,
                 const struct ck_int8_epilogue *e, float *out, size_t out_stride) {
    for (size_t r = 0; r < rows; r++)
        dequantize_row(tile + r * PANEL, count, e->x_scales[first + r], e->x_zero_points[first + r],
                       e->w_scales + column, e->w_sums + column, e->bias ? e->bias + column : NULL,
                       out + (first + r) * out_stride + column, e->epilogue);
}

#if defined(__x86_64__)
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/// A full-width tile's products (`rows` of eight, `vectors` × 16 columns from `column`),
/// dequantised straight from the accumulators into out (DEQUANTIZE_VECTOR), with the
/// panel's scales, sums and bias loaded once for the eight rows. Through the 1.5 KiB tile
/// buffer (stored, then read back a row at a time with the panel's vectors reloaded per row)
/// the dequantisation took 9-10 % of the kernel's time at 768 inputs, 16 % with the GELU
/// (32 rows × 768 × 3,072: 1,032 GOP/s products only, 931 plain, 866 with GELU; Zen 5).
static inline __attribute__((always_inline)) VNNI
void finish_registers(__m512i acc[TILE_ROWS][3], size_t rows, size_t first, size_t column, int vectors,
                      const struct ck_int8_epilogue *e, float *out, size_t out_stride) {
    v16 scales[3], bias[3];
    vi16 sums[3];
    for (int v = 0; v < vectors; v++) {
        scales[v] = load16(e->w_scales + column + 16 * v);
        __builtin_memcpy(&sums[v], e->w_sums + column + 16 * v, sizeof sums[v]);
        if (e->bias) bias[v] = load16(e->bias + column + 16 * v);
        else bias[v] = (v16){0};
    }
    // Unrolled, so every accumulator is named by constants and stays a register (a loop over
    // the rows kept the 24 in a stack array, zeroed by memset and reloaded: 2 % of an int8 run).
#if defined(__clang__)
#pragma clang loop unroll(full)
#endif
    for (int r = 0; r < TILE_ROWS; r++) {
        if ((size_t)r >= rows) break;
        float x_scale = e->x_scales[first + r];
        int32_t x_zero = e->x_zero_points[first + r];
        float *o = out + (first + r) * out_stride + column;
        for (int v = 0; v < vectors; v++) {
            v16 current = e->epilogue == CK_ACCUMULATE ? load16(o + 16 * v) : (v16){0};
            store16(o + 16 * v, DEQUANTIZE_VECTOR((vi16)acc[r][v], x_scale, x_zero, scales[v], sums[v], bias[v],
                                                  current, e->epilogue));
        }
    }
}

// Eight rows × `vectors` × 16 columns, in 24 accumulators at most: per group of four inputs,
// the panel's vectors are loaded once and each row's four codes are broadcast against them;
// then the tile's `rows` are dequantised into out (`count` columns exist from `column`).
// `vectors` is a constant at each call, so the unused accumulators disappear. A group of four
// inputs also prefetches a line of the tile's share of the next panel (ck_next_panel_share).
static inline __attribute__((always_inline)) VNNI
void vnni_tile(const uint8_t *codes, size_t code_stride, size_t first, size_t rows, size_t groups,
               const int8_t *panel, int tile_rows, int vectors, int32_t *tile, size_t column, size_t count,
               const struct ck_int8_epilogue *e, float *out, size_t out_stride, struct ck_prefetch next) {
    // Rows past the tile's last repeat it: computed, never stored, always readable.
    const uint8_t *a[TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) a[r] = codes + (first + ((size_t)r < rows ? (size_t)r : rows - 1)) * code_stride;
    __m512i acc[TILE_ROWS][3];
    for (int r = 0; r < TILE_ROWS; r++)
        for (int v = 0; v < 3; v++) acc[r][v] = _mm512_setzero_si512();
    const int8_t *b = panel;
    size_t width = (size_t)vectors * 16;
    for (size_t q = 0; q < groups; q++, b += width * 4) {
        if (q < next.lines) _mm_prefetch(next.from + 64 * q, _MM_HINT_T1);
        __m512i w0 = _mm512_loadu_si512(b);
        __m512i w1 = vectors > 1 ? _mm512_loadu_si512(b + 64) : w0;
        __m512i w2 = vectors > 2 ? _mm512_loadu_si512(b + 128) : w0;
        for (int r = 0; r < tile_rows; r++) {
            int32_t four;
            memcpy(&four, a[r] + 4 * q, 4);
            __m512i x = _mm512_set1_epi32(four);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, w0);
            if (vectors > 1) acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, w1);
            if (vectors > 2) acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], x, w2);
        }
    }
    if (count == (size_t)vectors * 16) {
        finish_registers(acc, rows, first, column, vectors, e, out, out_stride);
        return;
    }
    // The last panel's columns past n: through the tile buffer, dequantize_row's zero-padded groups.
    for (int r = 0; r < tile_rows; r++)
        for (int v = 0; v < vectors; v++) _mm512_storeu_si512(tile + r * PANEL + 16 * v, acc[r][v]);
    finish_tile(tile, rows, first, column, count, e, out, out_stride);
}

VNNI static void linear_vnni(const uint8_t *codes, size_t code_stride, size_t rows, size_t k, const int8_t *packed,
                             size_t n, size_t panel_begin, size_t panel_end, const struct ck_int8_epilogue *e,
                             float *out, size_t out_stride) {
    size_t groups = ck_int8_code_stride(k) / 4, columns = padded_columns(n);
    int32_t tile[TILE_ROWS * PANEL] __attribute__((aligned(64)));
    // Panels outside, row tiles inside: a panel (k × 48 bytes) is read from memory once per
    // call and then from the core's caches for every other tile of rows, while the tiles
    // prefetch the next panel (ck_next_panel_share).
    size_t tiles = (rows + TILE_ROWS - 1) / TILE_ROWS;
    for (size_t p = panel_begin; p < panel_end; p++) {
        size_t column = p * PANEL, width = columns - column < PANEL ? columns - column : PANEL;
        size_t count = n - column < PANEL ? n - column : PANEL;
        const int8_t *panel = packed + column * groups * 4;
        // The next panel's lines: 64 bytes = 16 columns × 4 inputs.
        size_t next_width = p + 1 < panel_end ? columns - column - width : 0;
        size_t next_lines = groups * (next_width < PANEL ? next_width : PANEL) / 16;
        for (size_t first = 0; first < rows; first += TILE_ROWS) {
            size_t tile_rows = rows - first < TILE_ROWS ? rows - first : TILE_ROWS;
            struct ck_prefetch next = ck_next_panel_share(panel + groups * width * 4, next_lines, first / TILE_ROWS,
                                                          tiles, groups);
            // A last tile of four rows or fewer runs the four-row tile (as the bf16 kernel):
            // one text of 27 tokens is 8 + 8 + 8 + 4 rows of products rather than 4 × 8.
            int four = tile_rows <= 4;
#define VNNI_TILE(R, V) \
    vnni_tile(codes, code_stride, first, tile_rows, groups, panel, R, V, tile, column, count, e, out, out_stride, next)
            switch (width / 16 + 3 * four) {
            case 3: VNNI_TILE(8, 3); break;
            case 2: VNNI_TILE(8, 2); break;
            case 1: VNNI_TILE(8, 1); break;
            case 6: VNNI_TILE(4, 3); break;
            case 5: VNNI_TILE(4, 2); break;
            default: VNNI_TILE(4, 1); break;
            }
#undef VNNI_TILE
        }
    }
}
#endif

#define DEQUANTIZE_ROWS                                                                          \
    for (size_t r = 0; r < rows; r++)                                                            \
        dequantize_row(products + r * cols, cols, e->x_scales[r], e->x_zero_points[r], e->w_scales, \
                       e->w_sums, e->bias, out + r * out_stride, e->epilogue);

// The quantisers and the portable dequantisation, one copy per instruction set (variants.h).
#define CK_INCLUDING_VARIANTS "int8_variants.h"
#include "variants.h"

void ck_quantize_rows_u8(const float *rows, size_t count, size_t dim, uint8_t *codes, size_t code_stride,
                         float *scales, int32_t *zero_points, int max_code) {
    CK_DISPATCH(ck_quantize_rows_u8)(rows, count, dim, codes, code_stride, scales, zero_points, max_code);
}

void ck_quantize_weights_s8(const float *rows, size_t count, size_t dim, int8_t *codes,
                            float *scales, int32_t *code_sums, float *code_l1) {
    CK_DISPATCH(ck_quantize_weights_s8)(rows, count, dim, codes, scales, code_sums, code_l1);
}

#if defined(__x86_64__)
// Compiled for the kernel's own target, so a column comes out of the same instructions here
// as in the kernel's tiles (a scalar remainder and a vector lane may round differently).
VNNI static void dequantize_rows_vnni(const int32_t *products, size_t rows, size_t cols,
                                      const struct ck_int8_epilogue *e, float *out, size_t out_stride) {
    DEQUANTIZE_ROWS
}
#endif

void ck_int8_dequantize(const int32_t *products, size_t rows, size_t cols, const struct ck_int8_epilogue *e,
                        float *out, size_t out_stride) {
#if defined(__x86_64__)
    if (ck_int8_has_vnni()) {
        dequantize_rows_vnni(products, rows, cols, e, out, out_stride);
        return;
    }
#endif
    CK_DISPATCH(dequantize_rows)(products, rows, cols, e, out, out_stride);
}

int ck_int8_has_vnni(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

void ck_int8_linear(const uint8_t *codes, size_t code_stride, size_t rows, size_t k, const int8_t *packed,
                    size_t n, size_t panel_begin, size_t panel_end, const struct ck_int8_epilogue *e,
                    float *out, size_t out_stride) {
    if (rows == 0 || panel_begin >= panel_end) return;
#if defined(__x86_64__)
    if (ck_int8_has_vnni()) {
        linear_vnni(codes, code_stride, rows, k, packed, n, panel_begin, panel_end, e, out, out_stride);
        return;
    }
#endif
    __builtin_trap(); // a caller's bug: this kernel needs AVX-512 VNNI (ck_int8_has_vnni)
}

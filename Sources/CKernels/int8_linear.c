// The int8 linear layer of `ru-embed --precision int8`: activations quantised per row (u8),
// weights per output channel (s8) and packed into column panels, and one kernel that
// multiplies a tile of rows by a panel in int32 and dequantises the tile straight from
// registers into the float output (bias, GELU or residual add included).
//
// Why our own kernel rather than oneDNN's int8 matmul: oneDNN writes int32 products to
// memory and a second sweep has to read them back to dequantise (7 % of an int8 run on the
// bench, bound by L2 traffic); here the products never leave the core. The VNNI kernel also
// runs the encoder's shapes at 98 % of this CPU's vpdpbusd peak (oneDNN 2.6: 96 %).
#include "ckernels.h"
#include "internal.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { PANEL = 48, TILE_ROWS = 8 };

MULTIVERSION
void ck_quantize_rows_u8(const float *rows, size_t count, size_t dim, uint8_t *codes, size_t code_stride,
                         float *scales, int32_t *zero_points) {
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * dim;
        float lo = 0, hi = 0;
        for (size_t j = 0; j < dim; j++) {
            lo = fminf(lo, row[j]);
            hi = fmaxf(hi, row[j]);
        }
        float scale = (hi - lo) / 255.0f;
        if (!(scale > 0)) scale = 1;
        int32_t zero = (int32_t)nearbyintf(-lo / scale);
        if (zero < 0) zero = 0;
        if (zero > 255) zero = 255;
        float inverse = 1.0f / scale, shift = (float)zero;
        uint8_t *out = codes + r * code_stride;
        for (size_t j = 0; j < dim; j++) {
            float q = nearbyintf(row[j] * inverse) + shift;
            q = fminf(255.0f, fmaxf(0.0f, q));
            out[j] = (uint8_t)(int32_t)q;
        }
        // The kernel reads whole groups of four codes: the padding multiplies zero weights,
        // and zeroing it keeps the products exact whatever was there before.
        for (size_t j = dim; j < code_stride; j++) out[j] = 0;
        scales[r] = scale;
        zero_points[r] = zero;
    }
}

MULTIVERSION
void ck_quantize_weights_s8(const float *rows, size_t count, size_t dim, int8_t *codes,
                            float *scales, int32_t *code_sums, float *code_l1) {
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * dim;
        float max_abs = 0;
        for (size_t j = 0; j < dim; j++) max_abs = fmaxf(max_abs, fabsf(row[j]));
        float scale = max_abs > 0 ? max_abs / 127.0f : 1.0f;
        float inverse = 1.0f / scale;
        int32_t sum = 0, l1 = 0;
        for (size_t j = 0; j < dim; j++) {
            float q = fminf(127.0f, fmaxf(-127.0f, nearbyintf(row[j] * inverse)));
            int32_t code = (int32_t)q;
            codes[r * dim + j] = (int8_t)code;
            sum += code;
            l1 += code < 0 ? -code : code;
        }
        scales[r] = scale;
        code_sums[r] = sum;
        code_l1[r] = (float)l1;
    }
}

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

/// out[0 ..< count] (=, or +=) the dequantised products of one row, bias and epilogue:
/// x_scale·w_scale[n]·(product[n] − x_zero·w_sum[n]) + bias[n].
static inline __attribute__((always_inline))
void dequantize_row(const int32_t *product, size_t count, float x_scale, int32_t x_zero, const float *w_scales,
                    const int32_t *w_sums, const float *bias, float *out, int epilogue) {
    switch (epilogue) {
    case CK_ACCUMULATE:
        for (size_t n = 0; n < count; n++)
            out[n] += x_scale * w_scales[n] * (float)(product[n] - x_zero * w_sums[n]) + (bias ? bias[n] : 0.0f);
        break;
    case CK_GELU_ERF:
        for (size_t n = 0; n < count; n++) {
            float v = x_scale * w_scales[n] * (float)(product[n] - x_zero * w_sums[n]) + (bias ? bias[n] : 0.0f);
            out[n] = 0.5f * v * (1.0f + ck_erff(v * 0.70710678118654752f));
        }
        break;
    case CK_GELU_TANH:
        for (size_t n = 0; n < count; n++) {
            float v = x_scale * w_scales[n] * (float)(product[n] - x_zero * w_sums[n]) + (bias ? bias[n] : 0.0f);
            // tanh(u) = 1 − 2 / (e^{2u} + 1)
            float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
            out[n] = 0.5f * v * (2.0f - 2.0f / (ck_expf(2.0f * u) + 1.0f));
        }
        break;
    default:
        for (size_t n = 0; n < count; n++)
            out[n] = x_scale * w_scales[n] * (float)(product[n] - x_zero * w_sums[n]) + (bias ? bias[n] : 0.0f);
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

// Eight rows × `vectors` × 16 columns, in 24 accumulators at most: per group of four inputs,
// the panel's vectors are loaded once and each row's four codes are broadcast against them.
// `vectors` is a constant at each call, so the unused accumulators disappear.
static inline __attribute__((always_inline)) VNNI
void vnni_tile(const uint8_t *codes, size_t code_stride, size_t first, size_t rows, size_t groups,
               const int8_t *panel, int vectors, int32_t *tile) {
    // Rows past the tile's last repeat it: computed, never stored, always readable.
    const uint8_t *a[TILE_ROWS];
    for (size_t r = 0; r < TILE_ROWS; r++) a[r] = codes + (first + (r < rows ? r : rows - 1)) * code_stride;
    __m512i acc[TILE_ROWS][3];
    for (int r = 0; r < TILE_ROWS; r++)
        for (int v = 0; v < 3; v++) acc[r][v] = _mm512_setzero_si512();
    const int8_t *b = panel;
    size_t width = (size_t)vectors * 16;
    for (size_t q = 0; q < groups; q++, b += width * 4) {
        __m512i w0 = _mm512_loadu_si512(b);
        __m512i w1 = vectors > 1 ? _mm512_loadu_si512(b + 64) : w0;
        __m512i w2 = vectors > 2 ? _mm512_loadu_si512(b + 128) : w0;
        for (int r = 0; r < TILE_ROWS; r++) {
            int32_t four;
            memcpy(&four, a[r] + 4 * q, 4);
            __m512i x = _mm512_set1_epi32(four);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, w0);
            if (vectors > 1) acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, w1);
            if (vectors > 2) acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], x, w2);
        }
    }
    for (int r = 0; r < TILE_ROWS; r++)
        for (int v = 0; v < vectors; v++) _mm512_storeu_si512(tile + r * PANEL + 16 * v, acc[r][v]);
}

VNNI static void linear_vnni(const uint8_t *codes, size_t code_stride, size_t rows, size_t k, const int8_t *packed,
                             size_t n, size_t panel_begin, size_t panel_end, const struct ck_int8_epilogue *e,
                             float *out, size_t out_stride) {
    size_t groups = ck_int8_code_stride(k) / 4, columns = padded_columns(n);
    int32_t tile[TILE_ROWS * PANEL] __attribute__((aligned(64)));
    // Panels outside, row tiles inside: a panel (k × 48 bytes) is read from memory once per
    // call and then from the core's caches for every other tile of rows.
    for (size_t p = panel_begin; p < panel_end; p++) {
        size_t column = p * PANEL, width = columns - column < PANEL ? columns - column : PANEL;
        size_t count = n - column < PANEL ? n - column : PANEL;
        const int8_t *panel = packed + column * groups * 4;
        for (size_t first = 0; first < rows; first += TILE_ROWS) {
            size_t tile_rows = rows - first < TILE_ROWS ? rows - first : TILE_ROWS;
            switch (width / 16) {
            case 3: vnni_tile(codes, code_stride, first, tile_rows, groups, panel, 3, tile); break;
            case 2: vnni_tile(codes, code_stride, first, tile_rows, groups, panel, 2, tile); break;
            default: vnni_tile(codes, code_stride, first, tile_rows, groups, panel, 1, tile); break;
            }
            finish_tile(tile, tile_rows, first, column, count, e, out, out_stride);
        }
    }
}
#endif

// Any CPU: the same tiles in plain C (the compiler vectorises over the panel's columns).
// Exact int32 arithmetic, so its outputs are the VNNI kernel's bit for bit.
MULTIVERSION
static void linear_portable(const uint8_t *codes, size_t code_stride, size_t rows, size_t k, const int8_t *packed,
                            size_t n, size_t panel_begin, size_t panel_end, const struct ck_int8_epilogue *e,
                            float *out, size_t out_stride) {
    size_t groups = ck_int8_code_stride(k) / 4, columns = padded_columns(n);
    int32_t tile[TILE_ROWS * PANEL];
    for (size_t p = panel_begin; p < panel_end; p++) {
        size_t column = p * PANEL, width = columns - column < PANEL ? columns - column : PANEL;
        size_t count = n - column < PANEL ? n - column : PANEL;
        const int8_t *panel = packed + column * groups * 4;
        for (size_t first = 0; first < rows; first += TILE_ROWS) {
            size_t tile_rows = rows - first < TILE_ROWS ? rows - first : TILE_ROWS;
            for (size_t r = 0; r < tile_rows; r++) {
                const uint8_t *a = codes + (first + r) * code_stride;
                int32_t *t = tile + r * PANEL;
                for (size_t c = 0; c < width; c++) t[c] = 0;
                for (size_t q = 0; q < groups; q++) {
                    const int8_t *b = panel + q * width * 4;
                    int32_t a0 = a[4 * q], a1 = a[4 * q + 1], a2 = a[4 * q + 2], a3 = a[4 * q + 3];
                    for (size_t c = 0; c < width; c++)
                        t[c] += a0 * b[4 * c] + a1 * b[4 * c + 1] + a2 * b[4 * c + 2] + a3 * b[4 * c + 3];
                }
            }
            finish_tile(tile, tile_rows, first, column, count, e, out, out_stride);
        }
    }
}

static bool force_portable = false;

void ck_int8_force_portable(int on) { force_portable = on != 0; }

int ck_int8_uses_vnni(void) {
#if defined(__x86_64__)
    return !force_portable && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
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
    if (ck_int8_uses_vnni()) {
        linear_vnni(codes, code_stride, rows, k, packed, n, panel_begin, panel_end, e, out, out_stride);
        return;
    }
#endif
    linear_portable(codes, code_stride, rows, k, packed, n, panel_begin, panel_end, e, out, out_stride);
}

// The bf16 linear layer of `ru-embed --precision bf16`: weights rounded once to bfloat16 and
// packed into column panels, activations rounded per chunk of rows, and one kernel that
// multiplies a tile of rows by a panel with AVX512_BF16's vdpbf16ps (two bf16 products per
// f32 lane, accumulated in f32) and applies bias and epilogue to the f32 accumulators before
// the single store.
//
// Why our own kernel rather than oneDNN's bf16 matmul: bench/bf16-ceiling prints both side by
// side at the encoder's shapes (oneDNN 2.6 on a Xeon with AVX512_BF16: see docs/EMBED.md for
// the figures that decided it), and oneDNN would need the activations in bf16 in memory first
// (a conversion sweep per layer) where this kernel's caller converts a chunk that stays in L1/L2.
#include "ckernels.h"
#include "internal.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { BF_PANEL = 48, BF_TILE_ROWS = 8 };

size_t ck_bf16_stride(size_t k) { return (k + 1) & ~(size_t)1; }

static size_t bf_padded_columns(size_t n) { return (n + 15) & ~(size_t)15; }

size_t ck_bf16_panels(size_t n) { return (bf_padded_columns(n) + BF_PANEL - 1) / BF_PANEL; }

size_t ck_bf16_packed_elements(size_t n, size_t k) { return ck_bf16_stride(k) * bf_padded_columns(n); }

/// f32 → bf16, rounding to nearest even; NaN stays NaN (quiet), infinities stay infinite.
static inline uint16_t bf16_round(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);
    bits += 0x7fffu + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

float ck_bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

// Panel p holds columns 48p … 48p + w − 1 (w = 48, or what is left of n rounded up to 16) as
// k/2 pairs of w × 2 bf16: the weights of column c for inputs 2q and 2q + 1 side by side, which
// is what one 32-bit lane of vdpbf16ps multiplies by a pair of activations. Columns past n and
// the input past an odd k are zero.
void ck_bf16_pack_portable(const float *weights, size_t n, size_t k, uint16_t *packed) {
    size_t stride = ck_bf16_stride(k), pairs = stride / 2, columns = bf_padded_columns(n);
    for (size_t column = 0; column < columns; column++) {
        size_t first = column / BF_PANEL * BF_PANEL, width = columns - first < BF_PANEL ? columns - first : BF_PANEL;
        uint16_t *lane = packed + first * stride + (column - first) * 2;
        const float *w = column < n ? weights + column * k : NULL;
        for (size_t q = 0; q < pairs; q++) {
            size_t i = 2 * q;
            lane[q * width * 2] = w ? bf16_round(w[i]) : 0;
            lane[q * width * 2 + 1] = w && i + 1 < k ? bf16_round(w[i + 1]) : 0;
        }
    }
}

#if defined(__x86_64__)
#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

BF16 static void convert_rows_avx512(const float *rows, size_t count, size_t dim, size_t row_stride, uint16_t *out,
                                     size_t stride) {
    for (size_t r = 0; r < count; r++) {
        const float *x = rows + r * row_stride;
        uint16_t *o = out + r * stride;
        size_t j = 0;
        for (; j + 32 <= dim; j += 32) {
            __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + j + 16), _mm512_loadu_ps(x + j));
            _mm512_storeu_si512(o + j, (__m512i)h);
        }
        for (; j < dim; j++) o[j] = bf16_round(x[j]);
        if (dim < stride) o[dim] = 0;
    }
}
#endif

int ck_bf16_available(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

void ck_bf16_convert_rows(const float *rows, size_t count, size_t dim, size_t row_stride, uint16_t *out,
                          size_t stride) {
#if defined(__x86_64__)
    if (ck_bf16_available()) {
        convert_rows_avx512(rows, count, dim, row_stride, out, stride);
        return;
    }
#endif
    for (size_t r = 0; r < count; r++) {
        for (size_t j = 0; j < dim; j++) out[r * stride + j] = bf16_round(rows[r * row_stride + j]);
        if (dim < stride) out[r * stride + dim] = 0;
    }
}

#if defined(__x86_64__)
/// Sixteen outputs of one row, v = the products plus bias: stored, added to the output, or
/// through GELU, `lanes` of them (1…16).
static inline __attribute__((always_inline)) AVX512 void bf16_finish16(__m512 v, float *o, __mmask16 lanes,
                                                                      int epilogue) {
    if (epilogue == CK_ACCUMULATE) {
        _mm512_mask_storeu_ps(o, lanes, _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, o), v));
    } else if (epilogue == CK_GELU_ERF || epilogue == CK_GELU_TANH) {
        float t[16] __attribute__((aligned(64)));
        _mm512_store_ps(t, v);
        if (epilogue == CK_GELU_ERF) {
            for (int j = 0; j < 16; j++) t[j] = 0.5f * t[j] * (1.0f + ck_erff(t[j] * 0.70710678118654752f));
        } else {
            for (int j = 0; j < 16; j++) {
                float x = t[j], u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
                t[j] = 0.5f * x * (2.0f - 2.0f / (ck_expf(2.0f * u) + 1.0f)); // tanh(u) = 1 − 2 / (e^{2u} + 1)
            }
        }
        _mm512_mask_storeu_ps(o, lanes, _mm512_load_ps(t));
    } else {
        _mm512_mask_storeu_ps(o, lanes, v);
    }
}

/// A tile's accumulators plus bias, through the epilogue, into out: `rows` rows (of `tile_rows`)
/// × `count` columns from `column` (both kernels' tiles end here).
static inline __attribute__((always_inline)) AVX512
void bf16_store_tile(__m512 acc[BF_TILE_ROWS][3], int tile_rows, int vectors, size_t rows, size_t first,
                     const float *bias, size_t column, size_t count, int epilogue, float *out, size_t out_stride) {
    // Unrolled, so every accumulator is named by constants and stays a register (as loops the
    // SwiftPM build kept the 24 in a stack array, zeroed by memset, stored and read back).
#if defined(__clang__)
#pragma clang loop unroll(full)
#endif
    for (int v = 0; v < 3; v++) {
        size_t c = (size_t)v * 16;
        if (v >= vectors || c >= count) break;
        __mmask16 lanes = count - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - c)) - 1);
        __m512 bv = bias ? _mm512_maskz_loadu_ps(lanes, bias + column + c) : _mm512_setzero_ps();
#if defined(__clang__)
#pragma clang loop unroll(full)
#endif
        for (int r = 0; r < BF_TILE_ROWS; r++) {
            if (r >= tile_rows || (size_t)r >= rows) break;
            bf16_finish16(_mm512_add_ps(acc[r][v], bv), out + (first + r) * out_stride + column + c, lanes, epilogue);
        }
    }
}

// `tile_rows` (8 or 4) rows × `vectors` × 16 columns in 24 f32 accumulators at most: per pair
// of inputs the panel's vectors are loaded once and each row's pair is broadcast against them.
// `tile_rows` and `vectors` are constants at each call, so the unused accumulators disappear.
// Rows past the last (`rows` of them are real) repeat it: computed, never stored, always readable.
// A pair of inputs also prefetches a line of the tile's share of the next panel (ck_next_panel_share).
static inline __attribute__((always_inline)) BF16
void bf16_tile(const uint16_t *x, size_t x_stride, size_t first, size_t rows, size_t pairs, const uint16_t *panel,
               int tile_rows, int vectors, const float *bias, size_t column, size_t count, int epilogue, float *out,
               size_t out_stride, struct ck_prefetch next) {
    const uint16_t *a[BF_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) a[r] = x + (first + ((size_t)r < rows ? (size_t)r : rows - 1)) * x_stride;
    __m512 acc[BF_TILE_ROWS][3];
    for (int r = 0; r < tile_rows; r++)
        for (int v = 0; v < 3; v++) acc[r][v] = _mm512_setzero_ps();
    const uint16_t *b = panel;
    size_t width = (size_t)vectors * 16;
    for (size_t q = 0; q < pairs; q++, b += width * 2) {
        if (q < next.lines) _mm_prefetch(next.from + 64 * q, _MM_HINT_T1);
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(b);
        __m512bh w1 = vectors > 1 ? (__m512bh)_mm512_loadu_si512(b + 32) : w0;
        __m512bh w2 = vectors > 2 ? (__m512bh)_mm512_loadu_si512(b + 64) : w0;
        for (int r = 0; r < tile_rows; r++) {
            int32_t pair;
            memcpy(&pair, a[r] + 2 * q, 4);
            __m512bh xv = (__m512bh)_mm512_set1_epi32(pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xv, w0);
            if (vectors > 1) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xv, w1);
            if (vectors > 2) acc[r][2] = _mm512_dpbf16_ps(acc[r][2], xv, w2);
        }
    }
    bf16_store_tile(acc, tile_rows, vectors, rows, first, bias, column, count, epilogue, out, out_stride);
}

/// Sixteen floats rounded to bf16 as bf16_round rounds them (integer arithmetic: nearest even,
/// NaN quieted: exponent all ones and mantissa not zero), each in the upper half of its 32-bit
/// lane, the lower half not yet cleared.
static inline __attribute__((always_inline)) AVX512 __m512i round16_high(__m512i bits) {
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i up = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    return _mm512_mask_or_epi32(up, nan, bits, _mm512_set1_epi32(0x400000));
}

/// ck_bf16_pack_portable's panels, sixteen columns × sixteen pairs of inputs at a time: each
/// column's 32 weights rounded and their bf16 halves gathered into sixteen pairs (one vector a
/// column), the 16 × 16 block transposed in registers, and each pair's sixteen columns stored as
/// one 64-byte line. The portable loop, a column at a time with its stores 192 bytes apart, was a
/// quarter of `--precision bf16`'s cold start (perf, Xeon model 207: 26 % of 0.23 s); this one
/// packs a warm 768 × 3,072 in 0.8 ms against 3.6.
AVX512 static void pack_avx512(const float *weights, size_t n, size_t k, uint16_t *packed) {
    size_t stride = ck_bf16_stride(k), pairs = stride / 2, columns = bf_padded_columns(n);
    // Word m of a column's vector ← bf16 of its input m: the high (odd) words of a's sixteen
    // lanes (inputs 0-15), then of b's (16-31; indices from 32 pick b).
    __m512i gather = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
                                      31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (size_t c0 = 0; c0 < columns; c0 += 16) {
        size_t first = c0 / BF_PANEL * BF_PANEL, width = columns - first < BF_PANEL ? columns - first : BF_PANEL;
        uint16_t *base = packed + first * stride + (c0 - first) * 2;
        for (size_t q0 = 0; q0 < pairs; q0 += 16) {
            size_t i0 = 2 * q0, inputs = k - i0 < 32 ? k - i0 : 32;
            __mmask16 lo = inputs >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << inputs) - 1);
            __mmask16 hi = inputs <= 16 ? 0 : inputs >= 32 ? (__mmask16)0xffff : (__mmask16)((1u << (inputs - 16)) - 1);
            v16 t[16];
            for (int c = 0; c < 16; c++) {
                __m512i v = _mm512_setzero_si512();
                if (c0 + c < n) {
                    const float *w = weights + (c0 + c) * k + i0;
                    __m512i a = round16_high(_mm512_maskz_loadu_epi32(lo, w));
                    __m512i b = round16_high(_mm512_maskz_loadu_epi32(hi, w + 16));
                    v = _mm512_permutex2var_epi16(a, gather, b);
                }
                __builtin_memcpy(&t[c], &v, sizeof v);
            }
            CK_TRANSPOSE16(t);
            for (size_t q = 0; q < 16 && q0 + q < pairs; q++) store16(base + (q0 + q) * width * 2, t[q]);
        }
    }
}

/// Rows rounded to bf16 as convert_rows_avx512 rounds them (nearest even), kept as f32: what
/// the FMA kernel broadcasts. Integer arithmetic only, so any AVX-512 CPU gives the same bits.
AVX512 static void round_rows_avx512(const float *rows, size_t count, size_t dim, size_t row_stride, float *out,
                                     size_t stride) {
    for (size_t r = 0; r < count; r++) {
        const float *x = rows + r * row_stride;
        float *o = out + r * stride;
        size_t j = 0;
        for (; j + 16 <= dim; j += 16) {
            __m512i q = round16_high(_mm512_loadu_si512(x + j));
            _mm512_storeu_si512(o + j, _mm512_and_si512(q, _mm512_set1_epi32((int)0xffff0000u)));
        }
        for (; j < dim; j++) o[j] = ck_bf16_to_float(bf16_round(x[j]));
        if (dim < stride) o[dim] = 0;
    }
}

// The FMA kernel's tile: as bf16_tile, but each panel vector's pair of bf16 weights is widened
// to two f32 vectors (the low halves shifted up, the high halves masked: exact) and each row's
// two activations, already f32, are broadcast from memory into vfmadd231ps. The odd input goes
// first, as vdpbf16ps adds it (Intel's SDM: srcdest += odd product, then += even product, each
// rounded once like an FMA), so the two kernels give the same bits short of denormal operands,
// which vdpbf16ps flushes to zero.
static inline __attribute__((always_inline)) AVX512
void fma_tile(const float *x, size_t x_stride, size_t first, size_t rows, size_t pairs, const uint16_t *panel,
              int tile_rows, int vectors, const float *bias, size_t column, size_t count, int epilogue, float *out,
              size_t out_stride, struct ck_prefetch next) {
    const float *a[BF_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) a[r] = x + (first + ((size_t)r < rows ? (size_t)r : rows - 1)) * x_stride;
    __m512 acc[BF_TILE_ROWS][3];
    for (int r = 0; r < tile_rows; r++)
        for (int v = 0; v < 3; v++) acc[r][v] = _mm512_setzero_ps();
    const uint16_t *b = panel;
    size_t width = (size_t)vectors * 16;
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (size_t q = 0; q < pairs; q++, b += width * 2) {
        if (q < next.lines) _mm_prefetch(next.from + 64 * q, _MM_HINT_T1);
        __m512i p0 = _mm512_loadu_si512(b);
        __m512i p1 = vectors > 1 ? _mm512_loadu_si512(b + 32) : p0;
        __m512i p2 = vectors > 2 ? _mm512_loadu_si512(b + 64) : p0;
        __m512 odd0 = _mm512_castsi512_ps(_mm512_and_si512(p0, high));
        __m512 odd1 = _mm512_castsi512_ps(_mm512_and_si512(p1, high));
        __m512 odd2 = _mm512_castsi512_ps(_mm512_and_si512(p2, high));
        __m512 even0 = _mm512_castsi512_ps(_mm512_slli_epi32(p0, 16));
        __m512 even1 = _mm512_castsi512_ps(_mm512_slli_epi32(p1, 16));
        __m512 even2 = _mm512_castsi512_ps(_mm512_slli_epi32(p2, 16));
        for (int r = 0; r < tile_rows; r++) {
            __m512 xo = _mm512_set1_ps(a[r][2 * q + 1]);
            acc[r][0] = _mm512_fmadd_ps(xo, odd0, acc[r][0]);
            if (vectors > 1) acc[r][1] = _mm512_fmadd_ps(xo, odd1, acc[r][1]);
            if (vectors > 2) acc[r][2] = _mm512_fmadd_ps(xo, odd2, acc[r][2]);
        }
        for (int r = 0; r < tile_rows; r++) {
            __m512 xe = _mm512_set1_ps(a[r][2 * q]);
            acc[r][0] = _mm512_fmadd_ps(xe, even0, acc[r][0]);
            if (vectors > 1) acc[r][1] = _mm512_fmadd_ps(xe, even1, acc[r][1]);
            if (vectors > 2) acc[r][2] = _mm512_fmadd_ps(xe, even2, acc[r][2]);
        }
    }
    bf16_store_tile(acc, tile_rows, vectors, rows, first, bias, column, count, epilogue, out, out_stride);
}

// Both kernels' loop over a call's panels and row tiles: panels outside, row tiles inside, so a
// panel (k × 48 bf16) is read from memory once per call and then from the core's caches for
// every other tile of rows, while the tiles prefetch the next panel (ck_next_panel_share). A
// last tile of four rows or fewer runs the four-row tile: twenty rows (one short text) as
// 8 + 8 + 4 rather than 8 + 8 + 8, a sixth less work (bench/bf16-ceiling).
#define BF16_PANEL_TILE(TILE, R, V) \
    TILE(x, x_stride, first, tile_rows, pairs, panel, R, V, bias, column, count, epilogue, out, out_stride, next)
#define BF16_PANELS(TILE)                                                                          \
    size_t tiles = (rows + BF_TILE_ROWS - 1) / BF_TILE_ROWS;                                        \
    for (size_t p = panel_begin; p < panel_end; p++) {                                              \
        size_t column = p * BF_PANEL, width = columns - column < BF_PANEL ? columns - column : BF_PANEL; \
        size_t count = n - column < BF_PANEL ? n - column : BF_PANEL;                               \
        const uint16_t *panel = packed + column * stride;                                           \
        /* The next panel's lines: 64 bytes = 16 columns × 2 inputs. */                             \
        size_t next_width = p + 1 < panel_end ? columns - column - width : 0;                       \
        size_t next_lines = pairs * (next_width < BF_PANEL ? next_width : BF_PANEL) / 16;           \
        for (size_t first = 0; first < rows; first += BF_TILE_ROWS) {                               \
            size_t tile_rows = rows - first < BF_TILE_ROWS ? rows - first : BF_TILE_ROWS;           \
            struct ck_prefetch next = ck_next_panel_share(panel + width * stride, next_lines,       \
                                                          first / BF_TILE_ROWS, tiles, pairs);      \
            switch (width / 16 + 3 * (tile_rows <= 4)) {                                            \
            case 3: BF16_PANEL_TILE(TILE, 8, 3); break;                                             \
            case 2: BF16_PANEL_TILE(TILE, 8, 2); break;                                             \
            case 1: BF16_PANEL_TILE(TILE, 8, 1); break;                                             \
            case 6: BF16_PANEL_TILE(TILE, 4, 3); break;                                             \
            case 5: BF16_PANEL_TILE(TILE, 4, 2); break;                                             \
            default: BF16_PANEL_TILE(TILE, 4, 1); break;                                            \
            }                                                                                       \
        }                                                                                           \
    }

AVX512 static void linear_fma(const float *x, size_t x_stride, size_t rows, size_t k, const uint16_t *packed,
                              size_t n, size_t panel_begin, size_t panel_end, const float *bias, int epilogue,
                              float *out, size_t out_stride) {
    size_t stride = ck_bf16_stride(k), pairs = stride / 2, columns = bf_padded_columns(n);
    BF16_PANELS(fma_tile);
}

BF16 static void linear_bf16(const uint16_t *x, size_t x_stride, size_t rows, size_t k, const uint16_t *packed,
                             size_t n, size_t panel_begin, size_t panel_end, const float *bias, int epilogue,
                             float *out, size_t out_stride) {
    size_t stride = ck_bf16_stride(k), pairs = stride / 2, columns = bf_padded_columns(n);
    BF16_PANELS(bf16_tile);
}
#endif

void ck_bf16_linear(const uint16_t *x, size_t x_stride, size_t rows, size_t k, const uint16_t *packed, size_t n,
                    size_t panel_begin, size_t panel_end, const float *bias, int epilogue, float *out,
                    size_t out_stride) {
    if (rows == 0 || panel_begin >= panel_end) return;
#if defined(__x86_64__)
    if (ck_bf16_available()) {
        linear_bf16(x, x_stride, rows, k, packed, n, panel_begin, panel_end, bias, epilogue, out, out_stride);
        return;
    }
#endif
    __builtin_trap(); // a caller's bug: this kernel needs AVX512_BF16 (ck_bf16_available)
}

int ck_bf16_fma_available(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

int ck_bf16_fma_preferred(void) {
#if defined(__x86_64__)
    // Intel's cores run vdpbf16ps at a quarter of vfmadd231ps's rate (half its multiply-adds):
    // on a Xeon (family 6, model 207) of 2026-12-04, register-only loops retired 1.33 G
    // vdpbf16ps/s against 5.3 G vfmadd231ps/s per core, and ru-embed's vdpbf16ps kernel ran the
    // encoder at 83 GFLOP/s per core where the FMA peak is 170. AMD's Zen 5 runs vdpbf16ps at
    // twice the FMA's multiply-adds (2026-12-03, both vCPUs: 1,043 against 524 GFLOP/s). Chosen
    // by vendor, not by a timing at start-up, so a CPU always runs the same kernel.
    return ck_cpu_is_intel() && ck_bf16_available();
#else
    return 0;
#endif
}

void ck_bf16_round_rows(const float *rows, size_t count, size_t dim, size_t row_stride, float *out, size_t stride) {
#if defined(__x86_64__)
    if (ck_bf16_fma_available()) {
        round_rows_avx512(rows, count, dim, row_stride, out, stride);
        return;
    }
#endif
    for (size_t r = 0; r < count; r++) {
        for (size_t j = 0; j < dim; j++) out[r * stride + j] = ck_bf16_to_float(bf16_round(rows[r * row_stride + j]));
        if (dim < stride) out[r * stride + dim] = 0;
    }
}

void ck_bf16_linear_fma(const float *x, size_t x_stride, size_t rows, size_t k, const uint16_t *packed, size_t n,
                        size_t panel_begin, size_t panel_end, const float *bias, int epilogue, float *out,
                        size_t out_stride) {
    if (rows == 0 || panel_begin >= panel_end) return;
#if defined(__x86_64__)
    if (ck_bf16_fma_available()) {
        linear_fma(x, x_stride, rows, k, packed, n, panel_begin, panel_end, bias, epilogue, out, out_stride);
        return;
    }
#endif
    __builtin_trap(); // a caller's bug: this kernel needs AVX-512 (ck_bf16_fma_available)
}

void ck_bf16_pack(const float *weights, size_t n, size_t k, uint16_t *packed) {
#if defined(__x86_64__)
    if (ck_bf16_fma_available()) {
        pack_avx512(weights, n, k, packed);
        return;
    }
#endif
    ck_bf16_pack_portable(weights, n, k, packed);
}

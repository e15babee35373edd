// Small vector kernels in C, compiled for several instruction sets at once (AVX-512, AVX2
// and baseline copies, the one for the CPU at hand picked at run time: internal.h), because
// Swift compiles for baseline x86-64 and its SIMD types then run on SSE only.
#ifndef RU_EMBED_CKERNELS_H
#define RU_EMBED_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// The f32 dot product of two vectors of n floats.
float ck_dot(const float *a, const float *b, size_t n);

/// Scales each of `count` rows of `dim` floats to unit L2 norm; all-zero rows stay zero.
void ck_normalize_rows(float *rows, size_t count, size_t dim);
/// out[r·count + c] = rows[r] · cands[c] for r < count_rows consecutive rows and c < count
/// (1…8), n floats each (k-means++ candidates against the seeding pool).
void ck_dots8(const float *rows, size_t count_rows, const float *const *cands, size_t count, size_t n, float *out);
/// The sum of |row[j]|, and the least and greatest row[j] with 0 included (int8 error bounds).
void ck_l1_range(const float *row, size_t n, float *l1, float *lo, float *hi);
/// k-means bounds: upper[g] += drift[g]; returns how many fail !(own − margin ≥ upper[g] + margin).
size_t ck_grow_bounds(float *upper, const float *drift, size_t groups, float own, float margin);
/// upper[j] = estimate[j] + bound[j] + margin; returns max over j of estimate[j] − bound[j] − margin.
float ck_screen_bounds(const float *estimate, const float *bound, size_t n, float margin, float *upper);
/// out[0 ..< dim] += points[members[p] · dim …] for p < count, in order (k-means updates).
void ck_sum_rows(const float *points, const int64_t *members, size_t count, size_t dim, float *out);

/// Symmetric per-row int8 quantisation: codes = round(x / s), s = max|x| / max_code
/// (127, or 63 where the product would go through saturating int16 pairs).
/// Writes s to scales[r] and s * sum|code| to bounds[r] (the error-bound term).
void ck_quantize_rows(const float *rows, size_t count, size_t dim, int8_t *codes,
                      float *scales, float *bounds, int max_code);

/// The first i in [start, count) whose upper bound on the true score,
///   scales[i] * (approx[i] * query_scale + half_l1) + bounds[i] * half_query_scale + margin,
/// reaches `threshold`; `count` when none does.
size_t ck_next_candidate(const int32_t *approx, const float *scales, const float *bounds,
                         size_t start, size_t count, float query_scale, float half_l1,
                         float half_query_scale, float margin, float threshold);

/// The k-th largest lower bound on the true scores of a block,
///   scales[i] * (approx[i] * query_scale - half_l1) - bounds[i] * half_query_scale - margin:
/// k documents of the block score at least this, so no document whose upper bound is below it
/// can be among the k best. -INFINITY when the block has fewer than k documents.
/// `heap` is scratch space for k floats.
float ck_kth_lower_bound(const int32_t *approx, const float *scales, const float *bounds,
                         size_t count, float query_scale, float half_l1, float half_query_scale,
                         float margin, size_t k, float *heap);

/// In place, each row: x ← (x − mean) / sqrt(var + eps) · weight + bias (biased variance,
/// eps inside the square root: DebertaLayerNorm and torch.nn.LayerNorm).
void ck_layer_norm(float *rows, size_t count, size_t dim, const float *weight, const float *bias, float eps);

/// Attention of one text and one head over its exact length n. q, k, v point at the head's
/// first query, key and value; consecutive tokens are `stride` floats apart. With DeBERTa's
/// relative attention, position_keys / position_queries (either may be NULL) point at the
/// head's slice of row 0 of their [2·span × hidden] tables (rows `hidden` apart), indexed by
/// clamp(i − j + span, 0, 2·span − 1). Writes n rows of head_dim floats to out (rows
/// `out_stride` apart); `scratch` holds ck_attend_scratch(n, head_dim) floats.
void ck_attend_one(const float *q, const float *k, const float *v, size_t stride, size_t n, size_t head_dim,
                   const float *position_keys, const float *position_queries, size_t hidden, long span,
                   float *out, size_t out_stride, float *scratch);

/// softmax over n floats in place (max subtracted, ck_attend_one's exponential): the score
/// rows of long texts' attention, whose products oneDNN computes.
void ck_softmax_row(float *s, size_t n);

/// The scratch ck_attend_one needs for a text of n tokens: keys transposed plus the scores.
static inline size_t ck_attend_scratch(size_t n, size_t head_dim) {
    return (head_dim + n) * ((n + 15) & ~(size_t)15);
}

#endif

#ifndef RU_EMBED_CKERNELS_INT8_H
#define RU_EMBED_CKERNELS_INT8_H
// int8_linear.c: the int8 linear layer of --precision int8.

/// Asymmetric per-row u8 quantisation of activations: x ≈ scale·(code − zero_point), codes in
/// 0…max_code (255, or 127 where the products would go through int16 pairs and saturate).
/// The range always includes 0, so zero is exact; a constant row gets scale 1. Rows of
/// codes are `code_stride` bytes apart (ck_int8_code_stride(dim)), the padding zeroed.
void ck_quantize_rows_u8(const float *rows, size_t count, size_t dim, uint8_t *codes, size_t code_stride,
                         float *scales, int32_t *zero_points, int max_code);

/// Symmetric per-row int8 weights: w ≈ scale·code with scale = max|w| / 127; also writes
/// the sum of each row's codes (for the zero-point correction of u8 activations) and their
/// absolute sum (for the error bound).
void ck_quantize_weights_s8(const float *rows, size_t count, size_t dim, int8_t *codes,
                            float *scales, int32_t *code_sums, float *code_l1);

/// Bytes between rows of u8 codes for k inputs: k rounded up to 4.
size_t ck_int8_code_stride(size_t k);
/// Column panels of n outputs (48 columns each, the last one 16, 32 or 48 wide).
size_t ck_int8_panels(size_t n);
/// Bytes of the packed weights of n outputs × k inputs.
size_t ck_int8_packed_size(size_t n, size_t k);
/// Quantises weights [n × k] (row-major f32, a Linear's weight) as ck_quantize_weights_s8
/// does, writing the codes straight into the kernel's panels (ck_int8_packed_size bytes).
void ck_int8_quantize_pack(const float *weights, size_t n, size_t k, int8_t *packed, float *scales,
                           int32_t *code_sums, float *code_l1);

/// What follows the dequantisation of an int8 product.
enum ck_epilogue { CK_PLAIN = 0, CK_GELU_ERF = 1, CK_ACCUMULATE = 2, CK_GELU_TANH = 3 };

/// How products become outputs: out[m, n] (=, or += for CK_ACCUMULATE)
/// x_scales[m]·w_scales[n]·(product[m, n] − x_zero_points[m]·w_sums[n]) + bias[n], then GELU
/// for CK_GELU_ERF (exact erf) or CK_GELU_TANH (tanh form). bias may be NULL.
struct ck_int8_epilogue {
    const float *x_scales;
    const int32_t *x_zero_points;
    const float *w_scales;
    const int32_t *w_sums;
    const float *bias;
    int epilogue;
};

/// out rows 0 ..< rows, columns of panels panel_begin ..< panel_end: codes [rows × k]
/// (rows code_stride bytes apart) times the packed weights, in int32, dequantised as `e`
/// says. Output rows are out_stride floats apart. Single-threaded; needs AVX-512 VNNI
/// (ck_int8_has_vnni).
void ck_int8_linear(const uint8_t *codes, size_t code_stride, size_t rows, size_t k, const int8_t *packed,
                    size_t n, size_t panel_begin, size_t panel_end, const struct ck_int8_epilogue *e,
                    float *out, size_t out_stride);

/// Whether this CPU runs ck_int8_linear (AVX-512 with VNNI, BW and VL).
int ck_int8_has_vnni(void);

/// out rows (out_stride floats apart) ← int32 products [rows × cols] dequantised as `e` says
/// (x_scales and x_zero_points per row of this call): what ck_int8_linear does to each tile.
void ck_int8_dequantize(const int32_t *products, size_t rows, size_t cols, const struct ck_int8_epilogue *e,
                        float *out, size_t out_stride);
#endif

#ifndef RU_EMBED_CKERNELS_BF16_H
#define RU_EMBED_CKERNELS_BF16_H
// bf16_linear.c: the bf16 linear layer of --precision bf16 (AVX512_BF16).

/// Whether this CPU runs ck_bf16_linear (AVX-512 with BF16, BW and VL).
int ck_bf16_available(void);
/// bf16 elements between rows of converted activations for k inputs: k rounded up to 2.
size_t ck_bf16_stride(size_t k);
/// Column panels of n outputs (48 columns each, the last one 16, 32 or 48 wide).
size_t ck_bf16_panels(size_t n);
/// bf16 elements of the packed weights of n outputs × k inputs.
size_t ck_bf16_packed_elements(size_t n, size_t k);
/// Rounds weights [n × k] (row-major f32, a Linear's weight) to bf16 (nearest even) into the
/// kernel's panels (ck_bf16_packed_elements, 64-byte aligned).
void ck_bf16_pack(const float *weights, size_t n, size_t k, uint16_t *packed);
/// ck_bf16_pack's portable loop, a column at a time (any CPU; the AVX-512 one gives the same bits).
void ck_bf16_pack_portable(const float *weights, size_t n, size_t k, uint16_t *packed);
/// Rows of `dim` floats (row_stride apart) rounded to bf16 (nearest even), rows `stride`
/// elements apart (ck_bf16_stride(dim)), the padding zeroed. Any CPU.
void ck_bf16_convert_rows(const float *rows, size_t count, size_t dim, size_t row_stride, uint16_t *out,
                          size_t stride);
/// One bf16 value widened to f32 (exact).
float ck_bf16_to_float(uint16_t h);
/// out rows 0 ..< rows, columns of panels panel_begin ..< panel_end (=, or += for
/// CK_ACCUMULATE): bf16 activations [rows × k] (x_stride elements apart) times the packed
/// weights, accumulated in f32, plus bias (may be NULL), then GELU for CK_GELU_ERF/TANH.
/// Single-threaded; needs ck_bf16_available().
void ck_bf16_linear(const uint16_t *x, size_t x_stride, size_t rows, size_t k, const uint16_t *packed, size_t n,
                    size_t panel_begin, size_t panel_end, const float *bias, int epilogue, float *out,
                    size_t out_stride);
/// Whether this CPU runs ck_bf16_linear_fma (AVX-512 with BW and VL; no BF16 instructions).
int ck_bf16_fma_available(void);
/// Whether bf16 products run faster here as f32 FMAs (ck_bf16_linear_fma) than with
/// vdpbf16ps (ck_bf16_linear): Intel's cores with AVX512_BF16.
int ck_bf16_fma_preferred(void);
/// Rows rounded to bf16 as ck_bf16_convert_rows rounds them, kept as f32 (the FMA kernel's
/// activations), `stride` floats apart (ck_bf16_stride(dim)), the padding zeroed. Any CPU.
void ck_bf16_round_rows(const float *rows, size_t count, size_t dim, size_t row_stride, float *out, size_t stride);
/// ck_bf16_linear with the products as f32 FMAs: activations rounded by ck_bf16_round_rows,
/// the same packed weights widened in registers. The same bits as ck_bf16_linear where
/// vdpbf16ps adds the odd product before the even one (Intel), short of denormal operands.
/// Single-threaded; needs ck_bf16_fma_available().
void ck_bf16_linear_fma(const float *x, size_t x_stride, size_t rows, size_t k, const uint16_t *packed, size_t n,
                        size_t panel_begin, size_t panel_end, const float *bias, int epilogue, float *out,
                        size_t out_stride);
#endif

#ifndef RU_EMBED_CKERNELS_F32_H
#define RU_EMBED_CKERNELS_F32_H
// f32_linear.c: the f32 linear layer on AVX2 CPUs.

/// Whether ru-embed's f32 kernel is the one to use here: AVX2 and FMA without AVX-512 (where
/// oneDNN's AVX-512 kernels are kept).
int ck_f32_kernel_preferred(void);
/// Column panels of n outputs (16 columns each, the last one zero-padded).
size_t ck_f32_panels(size_t n);
/// Floats of the packed weights of n outputs × k inputs.
size_t ck_f32_packed_floats(size_t n, size_t k);
/// Packs weights [n × k] (row-major, a Linear's weight) into the kernel's panels
/// (ck_f32_packed_floats floats, 32-byte aligned).
void ck_f32_pack(const float *weights, size_t n, size_t k, float *packed);
/// out[rows × columns of panels panel_begin ..< panel_end] (=, or += for CK_ACCUMULATE)
/// x[rows × k] · Wᵀ + bias, then GELU for CK_GELU_ERF / CK_GELU_TANH. x rows are x_stride
/// floats apart, out rows out_stride; bias may be NULL. Single-threaded; needs AVX2 and FMA.
void ck_f32_linear(const float *x, size_t x_stride, size_t rows, size_t k, const float *packed, size_t n,
                   size_t panel_begin, size_t panel_end, const float *bias, int epilogue, float *out,
                   size_t out_stride);

/// A graph index as the kernels see it (ru-index, docs/INDEX.md): `count` nodes, each an int8
/// code of `stride` bytes (dim rounded up to 32, zero padded) with its scale, and `degree`
/// neighbour slots (UINT32_MAX ends a short list). Format version 2 codes x − μ (μ a fixed
/// mean) and keeps each node's offset b = μ·x and |μ|²: the similarity of two nodes is then
/// s_a·s_b·(code_a · code_b) + b_a + b_b − |μ|². `offsets` NULL (version 1): codes of x, no offsets.
struct ck_graph {
    const int8_t *codes;
    const float *scales;
    const uint32_t *neighbors;
    size_t count, dim, stride, degree;
    const float *offsets;
    float mean_norm2;
};

/// What a search did: similarities computed, and whether it met a neighbour or entry past
/// `count` (a corrupt file: the search stops).
struct ck_search_stats {
    uint64_t distances;
    int bad_node;
};

/// Beam search for the `ef` nodes most similar to the int8 `query` (stride bytes; the code of
/// q − μ in version 2, with its scale `query_scale`), from the entry nodes: their ids and
/// similarities query_scale·s_node·(code · query) + b_node in out_ids/out_sims, best first, and
/// how many (≤ ef). In version 2 that is q·x − q·μ + |μ|²: the cosine less a constant of the query. `visited` has `count` bytes; a node is visited when its byte
/// equals `epoch` (a fresh epoch per search saves clearing). `expanded` holds ef bytes.
size_t ck_graph_search(const struct ck_graph *g, const int8_t *query, float query_scale, const uint32_t *entries, size_t entry_count,
                       size_t ef, uint8_t *visited, uint8_t epoch, uint32_t *out_ids, float *out_sims,
                       uint8_t *expanded, struct ck_search_stats *stats);

/// Vamana's α-pruning: from `count` candidates sorted by similarity `sims` to a node (best
/// first, the node itself left out), up to `degree` neighbours into `out`; returns how many.
size_t ck_graph_prune(const struct ck_graph *g, const uint32_t *cand, const float *sims, size_t count,
                      size_t degree, float alpha, uint32_t *out);

/// Similarities of an f32 query (q − μ in version 2) to stored codes: scale · (query · code) + b.
void ck_graph_rerank_codes(const struct ck_graph *g, const float *query, const uint32_t *ids, size_t count, float *sims);

/// int8 · int8 over n bytes, n a multiple of 32.
int32_t ck_dot_s8(const int8_t *a, const int8_t *b, size_t n);

/// CRC-32C (Castagnoli) of n bytes, continuing from `crc` (0 to start).
uint32_t ck_crc32c(uint32_t crc, const void *data, size_t n);
#endif

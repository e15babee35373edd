// Small vector kernels in C, compiled for several instruction sets at once
// (target_clones: the loader picks AVX-512, AVX2 or baseline code for the CPU at hand),
// because Swift compiles for baseline x86-64 and its SIMD types then run on SSE only.
#ifndef RU_EMBED_CKERNELS_H
#define RU_EMBED_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// The f32 dot product of two vectors of n floats.
float ck_dot(const float *a, const float *b, size_t n);

/// Scales each of `count` rows of `dim` floats to unit L2 norm; all-zero rows stay zero.
void ck_normalize_rows(float *rows, size_t count, size_t dim);

/// Symmetric per-row int8 quantisation: codes = round(x / s), s = max|x| / 127.
/// Writes s to scales[r] and s * sum|code| to bounds[r] (the error-bound term).
void ck_quantize_rows(const float *rows, size_t count, size_t dim, int8_t *codes,
                      float *scales, float *bounds);

/// The first i in [start, count) whose upper bound on the true score,
///   scales[i] * (approx[i] * query_scale + half_l1) + bounds[i] * half_query_scale + margin,
/// reaches `threshold`; `count` when none does.
size_t ck_next_candidate(const int32_t *approx, const float *scales, const float *bounds,
                         size_t start, size_t count, float query_scale, float half_l1,
                         float half_query_scale, float margin, float threshold);

#endif

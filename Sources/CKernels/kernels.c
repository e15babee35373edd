// The vector kernels, compiled for AVX-512, AVX2 and baseline x86-64 (kernels_variants.h, once
// per target) and dispatched at run time by internal.h's CK_DISPATCH.
#include "ckernels.h"
#include "internal.h"

int ck_isa_cached;

int ck_isa_detect(void) {
    int isa = CK_ISA_BASELINE;
#if CK_MULTIVERSION
    // The constructor of compiler-rt / libgcc that fills __cpu_model may not have run yet when
    // the first kernel is called from another constructor; initialising twice is harmless.
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) isa = CK_ISA_AVX512;
    else if (__builtin_cpu_supports("avx2")) isa = CK_ISA_AVX2;
#endif
    __atomic_store_n(&ck_isa_cached, isa, __ATOMIC_RELAXED);
    return isa;
}

#define CK_INCLUDING_VARIANTS "kernels_variants.h"
#include "variants.h"

float ck_dot(const float *a, const float *b, size_t n) { return CK_DISPATCH(ck_dot)(a, b, n); }
void ck_normalize_rows(float *rows, size_t count, size_t dim) { CK_DISPATCH(ck_normalize_rows)(rows, count, dim); }
void ck_quantize_rows(const float *rows, size_t count, size_t dim, int8_t *codes, float *scales, float *bounds, int max_code) { CK_DISPATCH(ck_quantize_rows)(rows, count, dim, codes, scales, bounds, max_code); }
size_t ck_next_candidate(const int32_t *approx, const float *scales, const float *bounds, size_t start, size_t count, float query_scale, float half_l1, float half_query_scale, float margin, float threshold) { return CK_DISPATCH(ck_next_candidate)(approx, scales, bounds, start, count, query_scale, half_l1, half_query_scale, margin, threshold); }
float ck_kth_lower_bound(const int32_t *approx, const float *scales, const float *bounds, size_t count, float query_scale, float half_l1, float half_query_scale, float margin, size_t k, float *heap) { return CK_DISPATCH(ck_kth_lower_bound)(approx, scales, bounds, count, query_scale, half_l1, half_query_scale, margin, k, heap); }
void ck_layer_norm(float *rows, size_t count, size_t dim, const float *weight, const float *bias, float eps) { CK_DISPATCH(ck_layer_norm)(rows, count, dim, weight, bias, eps); }
void ck_attend_one(const float *q, const float *k, const float *v, size_t stride, size_t n, size_t head_dim, const float *position_keys, const float *position_queries, size_t hidden, long span, float *out, size_t out_stride, float *scratch) { CK_DISPATCH(ck_attend_one)(q, k, v, stride, n, head_dim, position_keys, position_queries, hidden, span, out, out_stride, scratch); }
void ck_softmax_row(float *s, size_t n) { CK_DISPATCH(ck_softmax_row)(s, n); }
void ck_dots8(const float *rows, size_t count_rows, const float *const *cands, size_t count, size_t n, float *out) { CK_DISPATCH(ck_dots8)(rows, count_rows, cands, count, n, out); }
void ck_l1_range(const float *row, size_t n, float *l1, float *lo, float *hi) { CK_DISPATCH(ck_l1_range)(row, n, l1, lo, hi); }
size_t ck_grow_bounds(float *upper, const float *drift, size_t groups, float own, float margin) { return CK_DISPATCH(ck_grow_bounds)(upper, drift, groups, own, margin); }
float ck_screen_bounds(const float *estimate, const float *bound, size_t n, float margin, float *upper) { return CK_DISPATCH(ck_screen_bounds)(estimate, bound, n, margin, upper); }
void ck_sum_rows(const float *points, const int64_t *members, size_t count, size_t dim, float *out) { CK_DISPATCH(ck_sum_rows)(points, members, count, dim, out); }

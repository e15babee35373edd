// The bodies of kernels.c's kernels, compiled once per instruction set: kernels.c includes this
// file once for each (variants.h, which sets CK_VARIANT and the target) and
// dispatches between the copies. No include guard: included several times on purpose.

static float CK_VARIANT(ck_dot)(const float *a, const float *b, size_t n) {
    // Sixteen partial sums so the compiler can keep one vector register of them.
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t l = 0; l < 16; l++) acc[l] += a[i + l] * b[i + l];
    float sum = 0;
    for (size_t l = 0; l < 16; l++) sum += acc[l];
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static void CK_VARIANT(ck_normalize_rows)(float *rows, size_t count, size_t dim) {
    for (size_t r = 0; r < count; r++) {
        float *row = rows + r * dim;
        double sum = 0;
        float acc[16] = {0};
        size_t j = 0;
        for (; j + 16 <= dim; j += 16)
            for (size_t l = 0; l < 16; l++) acc[l] += row[j + l] * row[j + l];
        for (size_t l = 0; l < 16; l++) sum += acc[l];
        for (; j < dim; j++) sum += (double)row[j] * row[j];
        if (sum > 0) {
            float inverse = (float)(1.0 / sqrt(sum));
            for (j = 0; j < dim; j++) row[j] *= inverse;
        }
    }
}

static void CK_VARIANT(ck_quantize_rows)(const float *rows, size_t count, size_t dim, int8_t *codes,
                      float *scales, float *bounds, int max_code) {
    const float top = (float)max_code;
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * dim;
        int8_t *out = codes + r * dim;
        float max_abs = 0;
        for (size_t j = 0; j < dim; j++) max_abs = fmaxf(max_abs, fabsf(row[j]));
        if (!(max_abs > 0)) {
            for (size_t j = 0; j < dim; j++) out[j] = 0;
            scales[r] = 0;
            bounds[r] = 0;
            continue;
        }
        float inverse = top / max_abs;
        int32_t l1 = 0;
        for (size_t j = 0; j < dim; j++) {
            // nearbyintf rounds to nearest even in the default rounding mode and vectorises.
            float q = nearbyintf(row[j] * inverse);
            q = fminf(top, fmaxf(-top, q));
            int32_t code = (int32_t)q;
            out[j] = (int8_t)code;
            l1 += code < 0 ? -code : code;
        }
        float scale = max_abs / top;
        scales[r] = scale;
        bounds[r] = scale * (float)l1;
    }
}

static size_t CK_VARIANT(ck_next_candidate)(const int32_t *approx, const float *scales, const float *bounds,
                         size_t start, size_t count, float query_scale, float half_l1,
                         float half_query_scale, float margin, float threshold) {
    size_t i = start;
    // Blocks of 16 tested without branches; a block with a candidate is searched one by one.
    for (; i + 16 <= count; i += 16) {
        int any = 0;
        for (size_t l = 0; l < 16; l++) {
            float upper = scales[i + l] * ((float)approx[i + l] * query_scale + half_l1)
                        + bounds[i + l] * half_query_scale + margin;
            any |= upper >= threshold;
        }
        if (any) break;
    }
    for (; i < count; i++) {
        float upper = scales[i] * ((float)approx[i] * query_scale + half_l1)
                    + bounds[i] * half_query_scale + margin;
        if (upper >= threshold) return i;
    }
    return count;
}

static float CK_VARIANT(ck_kth_lower_bound)(const int32_t *approx, const float *scales, const float *bounds,
                         size_t count, float query_scale, float half_l1, float half_query_scale,
                         float margin, size_t k, float *heap) {
    if (k == 0 || count < k) return -INFINITY;
    // A min-heap of the k largest lower bounds seen; its root is the answer at the end.
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        float lower = scales[i] * ((float)approx[i] * query_scale - half_l1)
                    - bounds[i] * half_query_scale - margin;
        if (n < k) {
            size_t c = n++;
            heap[c] = lower;
            while (c > 0 && heap[(c - 1) / 2] > heap[c]) {
                float t = heap[c]; heap[c] = heap[(c - 1) / 2]; heap[(c - 1) / 2] = t;
                c = (c - 1) / 2;
            }
        } else if (lower > heap[0]) {
            heap[0] = lower;
            size_t p = 0;
            for (;;) {
                size_t l = 2 * p + 1, r = l + 1, m = p;
                if (l < k && heap[l] < heap[m]) m = l;
                if (r < k && heap[r] < heap[m]) m = r;
                if (m == p) break;
                float t = heap[p]; heap[p] = heap[m]; heap[m] = t;
                p = m;
            }
        }
    }
    return heap[0];
}

static void CK_VARIANT(ck_layer_norm)(float *rows, size_t count, size_t dim, const float *weight, const float *bias, float eps) {
    for (size_t r = 0; r < count; r++) {
        float *row = rows + r * dim;
        // Sixteen partial sums each, so the reductions vectorise without -ffast-math's help.
        float acc[16] = {0};
        size_t j = 0;
        for (; j + 16 <= dim; j += 16)
            for (size_t l = 0; l < 16; l++) acc[l] += row[j + l];
        float sum = 0;
        for (size_t l = 0; l < 16; l++) sum += acc[l];
        for (; j < dim; j++) sum += row[j];
        float mean = sum / (float)dim;
        float sq[16] = {0};
        for (j = 0; j + 16 <= dim; j += 16)
            for (size_t l = 0; l < 16; l++) { float d = row[j + l] - mean; sq[l] += d * d; }
        float squares = 0;
        for (size_t l = 0; l < 16; l++) squares += sq[l];
        for (; j < dim; j++) { float d = row[j] - mean; squares += d * d; }
        float inverse = 1.0f / sqrtf(squares / (float)dim + eps);
        for (j = 0; j < dim; j++) row[j] = (row[j] - mean) * inverse * weight[j] + bias[j];
    }
}

// softmax in place over n scores: the rows of long texts' scores (ck_attend_one's padded rows
// take ck_softmax_padded below).
static void CK_VARIANT(ck_softmax_row)(float *s, size_t n) {
    if (n == 0) return;
    float max_score = s[0];
    for (size_t j = 1; j < n; j++) max_score = fmaxf(max_score, s[j]);
    float total = 0;
    for (size_t j = 0; j < n; j++) {
        float e = ck_expf(s[j] - max_score);
        s[j] = e;
        total += e;
    }
    float inverse = 1.0f / total;
    for (size_t j = 0; j < n; j++) s[j] *= inverse;
}

// softmax in place over a row of n scores padded to np (a multiple of 16), as ck_attend_one
// holds them: every loop runs whole vectors, the lanes past n left out of the maximum and the
// sum by selects and set to 0 (never read afterwards; exactly 0 rather than a tiny exponential,
// whose product with the inverse sum would be a denormal, each a slow microcode assist on
// Intel's cores). Over n alone a short text's row (n < 16) never reached the vector loops and
// took its exponentials one by one: a scratch harness of ck_attend_one (32 texts × 12 heads,
// one thread, Intel Xeon model 207) went from 2.3–2.4 to 1.7–1.9 µs per (text, head) at 14
// tokens, 3–8 % faster at 20–32, the same at 8.
static void CK_VARIANT(ck_softmax_padded)(float *s, size_t n, size_t np) {
    float max_score = s[0];
    for (size_t j = 0; j < np; j++) max_score = fmaxf(max_score, j < n ? s[j] : s[0]);
    float total = 0;
    for (size_t j = 0; j < np; j++) {
        float e = j < n ? ck_expf(s[j] - max_score) : 0.0f;
        s[j] = e;
        total += e;
    }
    float inverse = 1.0f / total;
    for (size_t j = 0; j < np; j++) s[j] *= inverse;
}

static void CK_VARIANT(ck_attend_one)(const float *q, const float *k, const float *v, size_t stride, size_t n, size_t head_dim,
                   const float *position_keys, const float *position_queries, size_t hidden, long span,
                   float *out, size_t out_stride, float *scratch) {
    if (n == 0) return;
    // Keys transposed into kt [head_dim × np] (np = n rounded up to 16, zero padded), so a
    // query's scores are one vector loop over keys per dimension instead of n dot products
    // each ending in a horizontal sum (the short texts of a batch make n ~ 10–30). Scores
    // and outputs are computed four queries at a time: each key or value vector loaded once
    // serves four queries, and the sums stay in registers.
    size_t np = (n + 15) & ~(size_t)15;
    float *kt = scratch, *scores = scratch + head_dim * np; // scores [n × np]
    // This head's slices of Q, K and V (a few cache lines per token, 3·hidden floats apart)
    // come from L3, where the batch's in_proj left them: asked for ahead, the misses overlap
    // instead of each load waiting for its own. K and Q now, V once the keys are transposed.
    for (size_t j = 0; j < n; j++)
        for (size_t d = 0; d < head_dim; d += 16) {
            __builtin_prefetch(k + j * stride + d);
            __builtin_prefetch(q + j * stride + d);
        }
    if (head_dim % 16 == 0) {
        // Sixteen keys × sixteen dimensions at a time, transposed in registers (CK_TRANSPOSE16):
        // element by element this was a quarter of the attention's time (perf annotate, int8
        // bench run, Zen 5), each strided store a line of its own. Keys past n are zero rows.
        for (size_t jb = 0; jb < np; jb += 16)
            for (size_t d = 0; d < head_dim; d += 16) {
                v16 t[16];
                for (size_t r = 0; r < 16; r++) {
                    v16 zero = {0};
                    t[r] = jb + r < n ? load16(k + (jb + r) * stride + d) : zero;
                }
                CK_TRANSPOSE16(t);
                for (size_t r = 0; r < 16; r++) store16(kt + (d + r) * np + jb, t[r]);
            }
    } else {
        for (size_t j = 0; j < n; j++) {
            // Plain moves: vectorised, this loop becomes scatters, slower than scalar stores.
#pragma clang loop vectorize(disable)
            for (size_t d = 0; d < head_dim; d++) kt[d * np + j] = k[j * stride + d];
        }
        for (size_t d = 0; d < head_dim; d++)
            for (size_t j = n; j < np; j++) kt[d * np + j] = 0;
    }
    for (size_t j = 0; j < n; j++)
        for (size_t d = 0; d < head_dim; d += 16) __builtin_prefetch(v + j * stride + d);

    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *q0 = q + i * stride, *q1 = q0 + stride, *q2 = q1 + stride, *q3 = q2 + stride;
        for (size_t jb = 0; jb < np; jb += 16) {
            v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            const float *col = kt + jb;
            for (size_t d = 0; d < head_dim; d++) {
                v16 key = load16(col + d * np);
                a0 += q0[d] * key; a1 += q1[d] * key; a2 += q2[d] * key; a3 += q3[d] * key;
            }
            float *s = scores + i * np + jb;
            store16(s, a0); store16(s + np, a1); store16(s + 2 * np, a2); store16(s + 3 * np, a3);
        }
    }
    for (; i < n; i++) {
        const float *qi = q + i * stride;
        for (size_t jb = 0; jb < np; jb += 16) {
            v16 a0 = {0}, a1 = {0};
            const float *col = kt + jb;
            size_t d = 0;
            for (; d + 2 <= head_dim; d += 2) {
                a0 += qi[d] * load16(col + d * np);
                a1 += qi[d + 1] * load16(col + (d + 1) * np);
            }
            for (; d < head_dim; d++) a0 += qi[d] * load16(col + d * np);
            store16(scores + i * np + jb, a0 + a1);
        }
    }

    // DeBERTa's relative terms, then a softmax per row (weights normalised in place).
    for (i = 0; i < n; i++) {
        float *s = scores + i * np;
        if (position_keys || position_queries) {
            const float *qi = q + i * stride;
            for (size_t j = 0; j < n; j++) {
                long r = (long)i - (long)j + span;
                if (r < 0) r = 0;
                if (r > 2 * span - 1) r = 2 * span - 1;
                if (position_keys) {
                    const float *pk = position_keys + (size_t)r * hidden;
                    float t = 0;
                    for (size_t d = 0; d < head_dim; d++) t += qi[d] * pk[d];
                    s[j] += t;
                }
                if (position_queries) {
                    const float *pq = position_queries + (size_t)r * hidden, *kj = k + j * stride;
                    float t = 0;
                    for (size_t d = 0; d < head_dim; d++) t += kj[d] * pq[d];
                    s[j] += t;
                }
            }
        }
        CK_VARIANT(ck_softmax_padded)(s, n, np);
    }

    // out[i] = Σ_j weight[i][j] · v[j]: 16 dimensions × four queries per pass over the values.
    for (size_t d = 0; d < head_dim; d += 16) {
        if (d + 16 > head_dim) {
            for (size_t r = 0; r < n; r++) {
                for (size_t e = d; e < head_dim; e++) {
                    float t = 0;
                    for (size_t j = 0; j < n; j++) t += scores[r * np + j] * v[j * stride + e];
                    out[r * out_stride + e] = t;
                }
            }
            break;
        }
        for (i = 0; i + 4 <= n; i += 4) {
            v16 o0 = {0}, o1 = {0}, o2 = {0}, o3 = {0};
            const float *w = scores + i * np;
            for (size_t j = 0; j < n; j++) {
                v16 value = load16(v + j * stride + d);
                o0 += w[j] * value; o1 += w[np + j] * value; o2 += w[2 * np + j] * value; o3 += w[3 * np + j] * value;
            }
            float *o = out + i * out_stride + d;
            store16(o, o0); store16(o + out_stride, o1); store16(o + 2 * out_stride, o2); store16(o + 3 * out_stride, o3);
        }
        for (; i < n; i++) {
            v16 o0 = {0};
            const float *w = scores + i * np;
            for (size_t j = 0; j < n; j++) o0 += w[j] * load16(v + j * stride + d);
            store16(out + i * out_stride + d, o0);
        }
    }
}

// Up to eight dot products per row, for `count_rows` consecutive rows (`n` floats each):
// out[r * count + c] = rows[r] · cands[c], c < count ≤ 8. Sixteen lanes per step; where the
// registers hold sixteen accumulators (AVX-512), two rows a step, so each candidate's sixteen
// floats are loaded once for both (10 loads per 16 multiply-adds; one row a step is 9 per 8,
// and was bound by loads: ru-cluster's k-means++ seeding, 7 candidates a step over a
// 4,096-record pool, 0.09 s one row a step, 0.065 s two, bench/cluster on a Zen 5). The sums
// are in a fixed order (lane, then the lanes added 0…15) whichever way a row is taken, so the
// same rows give the same floats on any thread.
static inline void CK_VARIANT(ck_dots8_finish)(v16 *acc, const float *row, const float *const *c, size_t count,
                                              size_t i, size_t n, float *out) {
    for (size_t q = 0; q < count; q++) {
        float sum = 0;
        for (size_t l = 0; l < 16; l++) sum += acc[q][l];
        for (size_t j = i; j < n; j++) sum += row[j] * c[q][j];
        out[q] = sum;
    }
}

static void CK_VARIANT(ck_dots8)(const float *restrict rows, size_t count_rows, const float *const *cands,
                                 size_t count, size_t n, float *out) {
    const float *c[8];
    for (size_t q = 0; q < 8; q++) c[q] = cands[q < count ? q : 0];
    size_t r = 0;
    for (; CK_VECTOR_REGISTERS >= 32 && r + 2 <= count_rows; r += 2) {
        const float *row0 = rows + r * n, *row1 = row0 + n;
        v16 a[8] = {{0}}, b[8] = {{0}};
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            v16 x = load16(row0 + i), y = load16(row1 + i);
            for (size_t q = 0; q < 8; q++) {
                v16 w = load16(c[q] + i);
                a[q] += x * w;
                b[q] += y * w;
            }
        }
        CK_VARIANT(ck_dots8_finish)(a, row0, c, count, i, n, out + r * count);
        CK_VARIANT(ck_dots8_finish)(b, row1, c, count, i, n, out + (r + 1) * count);
    }
    for (; r < count_rows; r++) {
        const float *row = rows + r * n;
        v16 a[8] = {{0}};
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            v16 x = load16(row + i);
            for (size_t q = 0; q < 8; q++) a[q] += x * load16(c[q] + i);
        }
        CK_VARIANT(ck_dots8_finish)(a, row, c, count, i, n, out + r * count);
    }
}

// The sum of a row's absolute values, and its least and greatest value (0 included).
static void CK_VARIANT(ck_l1_range)(const float *row, size_t n, float *l1, float *lo, float *hi) {
    float s[16] = {0}, mn[16] = {0}, mx[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t l = 0; l < 16; l++) {
            float v = row[i + l];
            s[l] += v < 0 ? -v : v;
            mn[l] = v < mn[l] ? v : mn[l];
            mx[l] = v > mx[l] ? v : mx[l];
        }
    float sum = 0, least = 0, most = 0;
    for (size_t l = 0; l < 16; l++) {
        sum += s[l];
        least = mn[l] < least ? mn[l] : least;
        most = mx[l] > most ? mx[l] : most;
    }
    for (; i < n; i++) {
        float v = row[i];
        sum += v < 0 ? -v : v;
        least = v < least ? v : least;
        most = v > most ? v : most;
    }
    *l1 = sum;
    *lo = least;
    *hi = most;
}

// out[0 ..< dim] += the rows points[members[p]], p < count, in that order.
static void CK_VARIANT(ck_sum_rows)(const float *points, const int64_t *members, size_t count, size_t dim,
                                    float *restrict out) {
    for (size_t p = 0; p < count; p++) {
        const float *restrict row = points + (size_t)members[p] * dim;
        for (size_t t = 0; t < dim; t++) out[t] += row[t];
    }
}

// k-means bounds: upper[g] += drift[g] for g < groups; returns how many no longer stay below
// `own` (those with !(own − margin ≥ upper + margin), NaN included).
static size_t CK_VARIANT(ck_grow_bounds)(float *upper, const float *drift, size_t groups, float own, float margin) {
    size_t failing = 0;
    const float floor = own - margin;
    for (size_t g = 0; g < groups; g++) {
        float u = upper[g] + drift[g];
        upper[g] = u;
        failing += !(floor >= u + margin);
    }
    return failing;
}

// The int8 screen of one row: upper[j] = estimate[j] + bound[j] + margin; returns the greatest
// estimate[j] − bound[j] − margin (the least the best cosine can be).
static float CK_VARIANT(ck_screen_bounds)(const float *estimate, const float *bound, size_t n, float margin,
                                          float *restrict upper) {
    float lows[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (size_t l = 0; l < 8; l++) {
            float b = bound[j + l] + margin;
            upper[j + l] = estimate[j + l] + b;
            float low = estimate[j + l] - b;
            lows[l] = low > lows[l] ? low : lows[l];
        }
    float best = -INFINITY;
    for (size_t l = 0; l < 8; l++) best = lows[l] > best ? lows[l] : best;
    for (; j < n; j++) {
        float b = bound[j] + margin;
        upper[j] = estimate[j] + b;
        float low = estimate[j] - b;
        best = low > best ? low : best;
    }
    return best;
}

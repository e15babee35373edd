// The graph index's kernels (ann.c), included once per instruction set by variants.h: the
// int8 dot products inline into the search and the pruning, so each copy runs its own ISA's
// code in the inner loops. No include guard: included once per target.

// int8 · int8 over n bytes (n a multiple of 32, the padding zero), codes in [-127, 127]: exact.
// (ann.c: AVX2 intrinsics for the AVX2 and AVX-512 copies, a plain loop for the baseline.)
static inline int32_t CK_VARIANT(ann_dot_s8)(const int8_t *a, const int8_t *b, size_t n) {
    return CK_VARIANT(ann_dot_s8_impl)(a, b, n);
}

// f32 · int8 over n values (the query in f32, a stored code): the re-ranking score when no
// f32 vectors are kept.
static inline float CK_VARIANT(ann_dot_f32_s8)(const float *a, const int8_t *b, size_t n) {
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t l = 0; l < 16; l++) acc[l] += a[i + l] * (float)b[i + l];
    float sum = 0;
    for (size_t l = 0; l < 16; l++) sum += acc[l];
    for (; i < n; i++) sum += a[i] * (float)b[i];
    return sum;
}

// How many neighbours ahead the beam search fetches codes. bench/ann, 100,000 × 768, --ef 24,
// 2 threads, interleaved runs: on the AMD EPYC Zen 5 of 2026-12-03, 2 ahead 0.46–0.48 s, 4 ahead
// 0.39–0.41, 6 ahead 0.36–0.38, 8 ahead 0.35–0.45, 12 ahead 0.37–0.40 (with the row prefetch
// below); a second, farther prefetch into L2 (T1 hint, 8–14 ahead) did not help. On the Zen 3
// of 2026-12-02, one thread, 4 ahead had been 5–10 % slower than 2: the deeper queue of Zen 5
// takes more lines in flight, and 6 is the knee there.
#ifndef CK_ANN_PREFETCH_AHEAD
#define CK_ANN_PREFETCH_AHEAD 6
#endif

// The offset b = μ·x of a node (version 2), 0 without.
static inline float CK_VARIANT(ann_offset)(const struct ck_graph *g, uint32_t node) {
    return g->offsets ? g->offsets[node] : 0.0f;
}

static inline float CK_VARIANT(ann_sim)(const struct ck_graph *g, const int8_t *code, float code_scale, uint32_t node) {
    return code_scale * g->scales[node] * (float)CK_VARIANT(ann_dot_s8)(code, g->codes + (size_t)node * g->stride, g->stride) +
           CK_VARIANT(ann_offset)(g, node);
}

// Beam search (the best-first search of HNSW's layers and Vamana): a list of the `ef` best
// nodes found, sorted best first, each expanded once; ends when every node in the list has
// been expanded. Similarities are s_query·s_node·(code_node · code_query) + b_node: the int8
// cosine, less q·μ − |μ|² (the same for every node) in version 2.
static size_t CK_VARIANT(ck_graph_search)(const struct ck_graph *g, const int8_t *query, float query_scale, const uint32_t *entries,
                                          size_t entry_count, size_t ef, uint8_t *visited, uint8_t epoch,
                                          uint32_t *out_ids, float *out_sims, uint8_t *expanded,
                                          struct ck_search_stats *stats) {
    size_t size = 0;
    const size_t degree = g->degree;
    for (size_t e = 0; e < entry_count; e++) {
        uint32_t node = entries[e];
        if (node >= g->count) { stats->bad_node = 1; return 0; }
        if (visited[node] == epoch) continue;
        visited[node] = epoch;
        float s = CK_VARIANT(ann_sim)(g, query, query_scale, node);
        stats->distances++;
        size_t pos = size;
        while (pos > 0 && out_sims[pos - 1] < s) pos--;
        if (pos >= ef) continue;
        size_t last = size < ef ? size : ef - 1;
        for (size_t j = last; j > pos; j--) { out_sims[j] = out_sims[j - 1]; out_ids[j] = out_ids[j - 1]; expanded[j] = expanded[j - 1]; }
        out_sims[pos] = s; out_ids[pos] = node; expanded[pos] = 0;
        if (size < ef) size++;
    }
    size_t next = 0;
    uint32_t fresh[256];
    while (next < size) {
        expanded[next] = 1;
        const uint32_t *row = g->neighbors + (size_t)out_ids[next] * degree;
        // Collect the unvisited neighbours, then score them with their codes prefetched
        // CK_ANN_PREFETCH_AHEAD ahead: the codes are random reads from memory (a 768-d code is
        // 12 cache lines), and overlapping them with the arithmetic is most of what the search
        // costs (perf: 43 % of the samples on the first load of a code without any prefetch).
        size_t m = 0;
        for (size_t j = 0; j < degree && m < 256; j++) {
            uint32_t nb = row[j];
            if (nb == UINT32_MAX) break;
            if (nb >= g->count) { stats->bad_node = 1; return 0; }
            if (visited[nb] == epoch) continue;
            visited[nb] = epoch;
            fresh[m++] = nb;
        }
        // The node likely expanded next (the best unexpanded one after this) has its
        // neighbour list fetched now, while this one's neighbours are scored: otherwise
        // collecting its neighbours starts with a wait on memory (3 % faster, bench/ann as below).
        for (size_t n2 = next + 1; n2 < size; n2++) {
            if (expanded[n2]) continue;
            const char *r = (const char *)(g->neighbors + (size_t)out_ids[n2] * degree);
            for (size_t b = 0; b < degree * sizeof(uint32_t); b += 64) __builtin_prefetch(r + b);
            break;
        }
        for (size_t j = 0; j < m && j < CK_ANN_PREFETCH_AHEAD; j++) {
            const char *p = (const char *)(g->codes + (size_t)fresh[j] * g->stride);
            for (size_t b = 0; b < g->stride; b += 64) __builtin_prefetch(p + b);
        }
        size_t lowest = size;  // the first position that changed, where expansion resumes
        for (size_t j = 0; j < m; j++) {
            uint32_t nb = fresh[j];
            if (j + CK_ANN_PREFETCH_AHEAD < m) {
                const char *p = (const char *)(g->codes + (size_t)fresh[j + CK_ANN_PREFETCH_AHEAD] * g->stride);
                for (size_t b = 0; b < g->stride; b += 64) __builtin_prefetch(p + b);
                __builtin_prefetch(g->scales + fresh[j + CK_ANN_PREFETCH_AHEAD]);
                if (g->offsets) __builtin_prefetch(g->offsets + fresh[j + CK_ANN_PREFETCH_AHEAD]);
            }
            float s = CK_VARIANT(ann_sim)(g, query, query_scale, nb);
            stats->distances++;
            if (size == ef && !(s > out_sims[size - 1])) continue;
            size_t lo = 0, hi = size;
            while (lo < hi) { size_t mid = (lo + hi) / 2; if (out_sims[mid] >= s) lo = mid + 1; else hi = mid; }
            size_t pos = lo;
            size_t last = size < ef ? size : ef - 1;
            for (size_t t = last; t > pos; t--) { out_sims[t] = out_sims[t - 1]; out_ids[t] = out_ids[t - 1]; expanded[t] = expanded[t - 1]; }
            out_sims[pos] = s; out_ids[pos] = nb; expanded[pos] = 0;
            if (size < ef) size++;
            if (pos < lowest) lowest = pos;
        }
        next = lowest < next ? lowest : next + 1;
        while (next < size && expanded[next]) next++;
    }
    return size;
}

// The α-pruning of Vamana (DiskANN's RobustPrune) on cosine distances d = 1 − s: candidates
// in order of similarity to the node, a candidate kept unless a kept one, c', is closer to it
// by the factor α: α·d(c', c) ≤ d(node, c). α = 1 is HNSW's neighbour heuristic; α > 1 keeps
// some longer edges, which shortens paths across clusters.
static size_t CK_VARIANT(ck_graph_prune)(const struct ck_graph *g, const uint32_t *cand, const float *sims,
                                         size_t count, size_t degree, float alpha, uint32_t *out) {
    size_t kept = 0;
    for (size_t i = 0; i < count && kept < degree; i++) {
        uint32_t c = cand[i];
        float dc = 1.0f - sims[i];
        int ok = 1;
        for (size_t j = 0; j < kept; j++) {
            if (out[j] == c) { ok = 0; break; }
            float s = g->scales[out[j]] * g->scales[c] *
                      (float)CK_VARIANT(ann_dot_s8)(g->codes + (size_t)out[j] * g->stride, g->codes + (size_t)c * g->stride, g->stride);
            if (g->offsets) s += g->offsets[out[j]] + g->offsets[c] - g->mean_norm2;
            if (alpha * (1.0f - s) <= dc) { ok = 0; break; }
        }
        if (ok) out[kept++] = c;
    }
    return kept;
}

static void CK_VARIANT(ck_graph_rerank_codes)(const struct ck_graph *g, const float *query, const uint32_t *ids,
                                              size_t count, float *sims) {
    for (size_t i = 0; i < count; i++)
        sims[i] = g->scales[ids[i]] * CK_VARIANT(ann_dot_f32_s8)(query, g->codes + (size_t)ids[i] * g->stride, g->dim) +
                  CK_VARIANT(ann_offset)(g, ids[i]);
}

static int32_t CK_VARIANT(ck_dot_s8)(const int8_t *a, const int8_t *b, size_t n) {
    return CK_VARIANT(ann_dot_s8)(a, b, n);
}

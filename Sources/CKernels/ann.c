// The graph index's kernels: beam search and α-pruning over int8 codes (ann_variants.h, once
// per instruction set), and CRC-32C for the index file's checksums.
#include "ckernels.h"
#include "internal.h"

#if CK_MULTIVERSION
#include <immintrin.h>

// The int8 dot product with AVX2 (also the AVX-512 copy's: 32 bytes a step is what these
// dimensions need). maddubs multiplies unsigned by signed bytes, so |a| times b with a's sign
// moved onto b; |a|·|b| ≤ 127·127 and a pair of them stays below 2^15, so no saturation;
// madd by ones widens the pairs to 32 bits. Five instructions per 32 bytes against ten for
// the compiler's sign-extend and pmaddwd (which it emitted at 128 bits); the build's profile
// was ~80 % in the search and the pruning, nearly all of it these dot products.
// The sum of a register's eight int32 lanes.
__attribute__((target("avx2"))) static inline int32_t ann_sum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

__attribute__((target("avx2"))) static inline int32_t ann_dot_s8_wide(const int8_t *a, const int8_t *b, size_t n) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(a + i)), y0 = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(a + i + 32)), y1 = _mm256_loadu_si256((const __m256i *)(b + i + 32));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x0, x0), _mm256_sign_epi8(y0, x0)), ones));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x1, x1), _mm256_sign_epi8(y1, x1)), ones));
    }
    for (; i < n; i += 32) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(a + i)), y0 = _mm256_loadu_si256((const __m256i *)(b + i));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x0, x0), _mm256_sign_epi8(y0, x0)), ones));
    }
    return ann_sum_epi32(_mm256_add_epi32(acc0, acc1));
}
#define ann_dot_s8_impl_avx512 ann_dot_s8_wide
#define ann_dot_s8_impl_avx2 ann_dot_s8_wide

// With AVX-512 VNNI (a fourth copy of the kernels, picked by ann_has_vnni): vpdpbusd multiplies
// unsigned by signed bytes, so a's bytes are flipped to a + 128 (xor 0x80) and the excess,
// 128·Σb, is taken off with a second vpdpbusd of 0x80 bytes against b: three instructions per
// 64 bytes against the AVX2 form's twelve per two 32-byte halves. Exact: |(a + 128)·b| ≤
// 255·127 per byte, under 2^31 summed over the 65,536 bytes of the widest code. On bench/ann's
// 100,000 × 768 (AMD EPYC Zen 5, 2026-12-03, 2 threads): 10,000 queries at --ef 24 in
// 0.29–0.31 s against 0.31–0.32 s (six interleaved runs; the search waits on memory more than
// it computes), the build in 19.4 s of CPU against 25.1 s (the pruning computes more); the same
// index byte for byte and the same hits.
#define CK_ANN_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
CK_ANN_VNNI static inline int32_t ann_dot_s8_dpbusd(const int8_t *a, const int8_t *b, size_t n) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i acc = _mm512_setzero_si512(), excess = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i x = _mm512_xor_si512(_mm512_loadu_si512(a + i), flip), y = _mm512_loadu_si512(b + i);
        acc = _mm512_dpbusd_epi32(acc, x, y);
        excess = _mm512_dpbusd_epi32(excess, flip, y);
    }
    __m256i acc256 = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
    __m256i excess256 = _mm256_add_epi32(_mm512_castsi512_si256(excess), _mm512_extracti64x4_epi64(excess, 1));
    for (; i < n; i += 32) {
        __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a + i)), _mm512_castsi512_si256(flip));
        __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
        acc256 = _mm256_dpbusd_epi32(acc256, x, y);
        excess256 = _mm256_dpbusd_epi32(excess256, _mm512_castsi512_si256(flip), y);
    }
    return ann_sum_epi32(_mm256_sub_epi32(acc256, excess256));
}
#define ann_dot_s8_impl_vnni ann_dot_s8_dpbusd
#endif

// A plain loop: integer sums may be reordered, so the compiler vectorises what it can.
static inline int32_t ann_dot_s8_impl_baseline(const int8_t *a, const int8_t *b, size_t n) {
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

#define CK_INCLUDING_VARIANTS "ann_variants.h"
#define CK_VARIANTS_WITH_VNNI
#include "variants.h"

#if CK_MULTIVERSION
// The VNNI copy where the ISA level is AVX-512 and the CPU has VNNI (checked once).
static int ann_vnni_cached = -1;
static inline int ann_has_vnni(void) {
    int v = __atomic_load_n(&ann_vnni_cached, __ATOMIC_RELAXED);
    if (__builtin_expect(v < 0, 0)) {
        v = ck_isa() == CK_ISA_AVX512 && ck_int8_has_vnni();
        __atomic_store_n(&ann_vnni_cached, v, __ATOMIC_RELAXED);
    }
    return v;
}
#define ANN_DISPATCH(name) (ann_has_vnni() ? name##_vnni : CK_DISPATCH(name))
#else
#define ANN_DISPATCH(name) CK_DISPATCH(name)
#endif

size_t ck_graph_search(const struct ck_graph *g, const int8_t *query, float query_scale, const uint32_t *entries, size_t entry_count,
                       size_t ef, uint8_t *visited, uint8_t epoch, uint32_t *out_ids, float *out_sims,
                       uint8_t *expanded, struct ck_search_stats *stats) {
    return ANN_DISPATCH(ck_graph_search)(g, query, query_scale, entries, entry_count, ef, visited, epoch, out_ids, out_sims, expanded, stats);
}

size_t ck_graph_prune(const struct ck_graph *g, const uint32_t *cand, const float *sims, size_t count,
                      size_t degree, float alpha, uint32_t *out) {
    return ANN_DISPATCH(ck_graph_prune)(g, cand, sims, count, degree, alpha, out);
}

void ck_graph_rerank_codes(const struct ck_graph *g, const float *query, const uint32_t *ids, size_t count, float *sims) {
    ANN_DISPATCH(ck_graph_rerank_codes)(g, query, ids, count, sims);
}

int32_t ck_dot_s8(const int8_t *a, const int8_t *b, size_t n) { return ANN_DISPATCH(ck_dot_s8)(a, b, n); }

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial and final XOR 0xFFFFFFFF): the
// SSE4.2 instruction where the CPU has it (≈ 8 bytes a cycle), a table otherwise.
static uint32_t crc_table[8][256];
static int crc_table_ready;

static void crc_init_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
    __atomic_store_n(&crc_table_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t crc_soft(uint32_t c, const uint8_t *p, size_t n) {
    if (!__atomic_load_n(&crc_table_ready, __ATOMIC_ACQUIRE)) crc_init_table();
    for (; n > 0; n--, p++) c = (c >> 8) ^ crc_table[0][(c ^ *p) & 0xFF];
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hard(uint32_t c, const uint8_t *p, size_t n) {
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        __builtin_memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
    }
    uint32_t c32 = (uint32_t)c64;
    for (; n > 0; n--, p++) c32 = __builtin_ia32_crc32qi(c32, *p);
    return c32;
}
#endif

uint32_t ck_crc32c(uint32_t crc, const void *data, size_t n) {
    uint32_t c = ~crc;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) return ~crc_hard(c, (const uint8_t *)data, n);
#endif
    return ~crc_soft(c, (const uint8_t *)data, n);
}

// What the kernel files share: run-time dispatch between copies of a kernel compiled for
// several instruction sets, the CPU's vendor, a sixteen-float vector type, the kernels' share
// of the next weight panel to prefetch, and exp / erf written in plain arithmetic. Not part of
// the module's public header.
#ifndef CKERNELS_INTERNAL_H
#define CKERNELS_INTERNAL_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

/// Whether the CPU says "GenuineIntel": where a kernel's choice follows a measurement that
/// differs by vendor (bf16: vdpbf16ps against FMA; f32: ours against oneDNN's AVX-512 JIT).
static inline int ck_cpu_is_intel(void) {
#if defined(__x86_64__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    __get_cpuid(0, &eax, &ebx, &ecx, &edx);
    return ebx == 0x756e6547 && edx == 0x49656e69 && ecx == 0x6c65746e;
#else
    return 0;
#endif
}

// The kernels' floating-point contract, stated here instead of -O3 -ffast-math on the command
// line (SwiftPM refuses a dependency whose manifest has unsafe flags): the sums in the
// kernels' loops may be reassociated (vectorised reductions) and multiplies and adds fused.
// That is what the kernels needed of -ffast-math; they do not depend on -ffinite-math-only
// (NaN and infinity are handled explicitly). The optimisation level is the build's:
// SwiftPM's release builds compile C with -O3 (bench/kernels, bench/int8-ceiling: as fast
// as with the flags).
#if defined(__clang__)
#pragma float_control(precise, off)
#pragma clang fp reassociate(on)
#pragma clang fp contract(fast)
#endif

// Swift compiles for baseline x86-64, where its SIMD types run on SSE only: each kernel is
// compiled for AVX-512, AVX2 and the baseline (variants.h includes the kernels' bodies once per
// target) and CK_DISPATCH(name) picks the copy for this CPU at each call, from an ISA level
// detected once. This replaced GCC/clang target_clones: those dispatch through ifunc
// resolvers that the dynamic loader runs before any sanitizer runtime is initialised, so
// ThreadSanitizer's instrumentation of the resolvers crashed every TSan build at start. A
// relaxed atomic load and a predictable branch per call cost no more than the ifunc's
// indirect call did (bench/kernels: before/after within noise).
#if defined(__x86_64__)
#define CK_MULTIVERSION 1
#else
#define CK_MULTIVERSION 0
#endif

enum { CK_ISA_BASELINE = 1, CK_ISA_AVX2 = 2, CK_ISA_AVX512 = 3 };

/// The detected level, 0 until the first kernel call (kernels.c). Atomic so that threads
/// racing on the first call are not a data race (they all store the same value).
extern int ck_isa_cached;
int ck_isa_detect(void);

static inline int ck_isa(void) {
    int isa = __atomic_load_n(&ck_isa_cached, __ATOMIC_RELAXED);
    return __builtin_expect(isa != 0, 1) ? isa : ck_isa_detect();
}

#if CK_MULTIVERSION
#define CK_DISPATCH(name) \
    ({ int isa_ = ck_isa(); isa_ == CK_ISA_AVX512 ? name##_avx512 : isa_ == CK_ISA_AVX2 ? name##_avx2 : name##_baseline; })
#else
#define CK_DISPATCH(name) name##_baseline
#endif

/// Sixteen floats as one value: AVX-512 one register, AVX2 two, SSE four, per compiled copy.
typedef float v16 __attribute__((vector_size(64)));
// Macros, not functions: a function passing v16 by value would have a different ABI per copy.
#define load16(p) ({ v16 r_; __builtin_memcpy(&r_, (p), sizeof r_); r_; })
#define store16(p, x) do { v16 t_ = (x); __builtin_memcpy((p), &t_, sizeof t_); } while (0)
// Transposes sixteen v16 rows in place (t[r][l] ← t[l][r]): four rounds of swapping blocks of
// 8, 4, 2 and 1 lanes between rows b apart, sixteen two-vector shuffles a round (vpermt2ps on
// AVX-512; the compiler splits them on narrower targets).
#define CK_SWAP16(t, b, ...)                                                                      \
    for (int i_ = 0; i_ < 16; i_++)                                                               \
        if (!(i_ & (b))) {                                                                        \
            v16 x_ = t[i_], y_ = t[i_ + (b)];                                                     \
            t[i_] = __builtin_shufflevector(x_, y_, __VA_ARGS__);                                 \
            t[i_ + (b)] = CK_SWAP16_HIGH_##b(x_, y_);                                             \
        }
#define CK_SWAP16_HIGH_8(x, y) __builtin_shufflevector(x, y, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31)
#define CK_SWAP16_HIGH_4(x, y) __builtin_shufflevector(x, y, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31)
#define CK_SWAP16_HIGH_2(x, y) __builtin_shufflevector(x, y, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31)
#define CK_SWAP16_HIGH_1(x, y) __builtin_shufflevector(x, y, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31)
#define CK_TRANSPOSE16(t)                                                                         \
    do {                                                                                          \
        CK_SWAP16(t, 8, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)                   \
        CK_SWAP16(t, 4, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27)                 \
        CK_SWAP16(t, 2, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29)                 \
        CK_SWAP16(t, 1, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30)                \
    } while (0)

// The int8 and bf16 kernels' panels are read once per call from wherever they are, then from
// the core's caches for every other tile of rows. A layer's packed weights (1.7-4.7 MB) do not
// stay in L2 from one chunk of rows to the next, so while a panel's tiles run they prefetch the
// next panel into L2: tile `tile` of `tiles` takes its share of the next panel's `lines` cache
// lines, one line a step of its loop (`steps` of them: groups of inputs), and the first tile of
// the next panel no longer waits on L3. With fewer than three tiles a share is capped at the
// steps and the panel's tail is left to the hardware prefetcher. Intel Xeon model 207, 2
// threads, the encoder's 48 int8 GEMMs over 442 rows in 32-row chunks: 940-964 -> 1,099-1,107
// GOP/s with the chunks' quantisation, 1,030-1,055 -> 1,241-1,245 without (oneDNN's int8 matmul
// on the same 48 GEMMs, int32 products only: 1,225-1,264; the vpdpbusd peak 1,507).
struct ck_prefetch {
    const char *from;
    size_t lines;
};

static inline struct ck_prefetch ck_next_panel_share(const void *next, size_t lines, size_t tile, size_t tiles,
                                                     size_t steps) {
    size_t share = (lines + tiles - 1) / tiles;
    share = share < steps ? share : steps;
    size_t done = tile * share, left = done < lines ? lines - done : 0;
    return (struct ck_prefetch){(const char *)next + 64 * done, left < share ? left : share};
}

// exp and erf from plain arithmetic, so the GELU loop vectorises (libm's erff is a scalar call
// per element and took a sixth of an int8 forward pass).

/// e^x for x in about [-87, 88]: 2^k · e^r with |r| ≤ ln2/2, r's exponential by a degree-6
/// Taylor polynomial (relative error < 2e-7).
static inline float ck_expf(float x) {
    x = fminf(88.0f, fmaxf(-87.0f, x));
    float k = nearbyintf(x * 1.44269504088896341f);
    float r = x - k * 0.693145751953125f - k * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f + r * (0.008333334f + r * 0.0013888889f)))));
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/// erf by Abramowitz & Stegun 7.1.28: 1 − 1/(1 + a₁x + … + a₆x⁶)¹⁶ for x ≥ 0 (absolute error
/// ≤ 3e-7; GELU's measured ≤ 7.5e-7). No exponential: 30 % faster than 7.1.26 here, and the
/// GELU sweep of the int8 layers is most of their dequantisation time.
static inline float ck_erff(float x) {
    // |x| capped at 6, where erf is 1.0f already (1 − 2e-17): beyond about 12.7 the sixteenth
    // power overflows to infinity, and the reciprocal that the fast-math contract lets the
    // compiler compute as vrcpps + a Newton step turns 1/∞ into NaN (seen: GELU(18.0) = NaN in
    // an optimised build). Below 6 nothing changes, above it the result is the same 1.0f.
    float a = fminf(fabsf(x), 6.0f);
    float p = 1.0f + a * (0.0705230784f + a * (0.0422820123f + a * (0.0092705272f +
              a * (0.0001520143f + a * (0.0002765672f + a * 0.0000430638f)))));
    p *= p; p *= p; p *= p; p *= p;
    float y = 1.0f - 1.0f / p;
    return x < 0 ? -y : y;
}

#endif

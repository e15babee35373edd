// Includes the file named by CK_INCLUDING_VARIANTS once per instruction set: the targets
// target_clones("avx512f", "avx2", "default") compiled before, each time with CK_VARIANT(name)
// naming that copy (name_avx512, name_avx2, name_baseline) and the target attribute applied
// to every function the file defines. The copies are static; the including file defines the
// public functions with CK_DISPATCH (internal.h). No include guard: included once per kernel file.
// With CK_VARIANTS_WITH_VNNI defined, a fourth copy, name_vnni, for AVX-512 with VNNI (the
// including file picks it at run time itself). CK_VECTOR_REGISTERS: how many v16 values (16
// floats) the copy's registers hold, for kernels that block more accumulators where they fit.
#if CK_MULTIVERSION
#ifdef CK_VARIANTS_WITH_VNNI
#define CK_VARIANT(name) name##_vnni
#define CK_VECTOR_REGISTERS 32
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include CK_INCLUDING_VARIANTS
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#undef CK_VARIANT
#undef CK_VECTOR_REGISTERS
#endif

#define CK_VARIANT(name) name##_avx512
#define CK_VECTOR_REGISTERS 32
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif
#include CK_INCLUDING_VARIANTS
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#undef CK_VARIANT
#undef CK_VECTOR_REGISTERS

#define CK_VARIANT(name) name##_avx2
#define CK_VECTOR_REGISTERS 8
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2")
#endif
#include CK_INCLUDING_VARIANTS
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#undef CK_VARIANT
#undef CK_VECTOR_REGISTERS
#endif

#define CK_VARIANT(name) name##_baseline
#define CK_VECTOR_REGISTERS 4
#include CK_INCLUDING_VARIANTS
#undef CK_VARIANT
#undef CK_VECTOR_REGISTERS

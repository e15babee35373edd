// One core's multiply-add peak for the ceiling benches (ceiling.c: vpdpbusd, bf16.c: vdpbf16ps,
// f32.c: vfmadd231ps), zmm only: sixteen independent accumulators per loop trip, written as
// inline assembly so that the compiler can neither merge chains nor add register copies.
//
// Why sixteen and why assembly (2026-12-03, AMD EPYC Zen 5, 2 cores): the earlier C loops with
// twelve chains printed a vdpbf16ps peak of 766 GFLOP/s while ru-embed's bf16 kernel ran the
// encoder's shapes at 832 (109 % of "peak"), and a vpdpbusd peak of 1,495 GOP/s below the int8
// kernel's 1,552; with sixteen chains the same loops gave 838–931 and 1,511–1,630. GCC turned
// array-based loops into one with a register copy per chain, so the instructions are spelled out.
#ifndef RU_CEILING_PEAK_H
#define RU_CEILING_PEAK_H

#define PEAK_CHAIN(op, r) op " %%zmm31, %%zmm30, %%zmm" #r "\n\t"
#define PEAK_16(op)                                                                                          \
    PEAK_CHAIN(op, 0) PEAK_CHAIN(op, 1) PEAK_CHAIN(op, 2) PEAK_CHAIN(op, 3) PEAK_CHAIN(op, 4)                 \
    PEAK_CHAIN(op, 5) PEAK_CHAIN(op, 6) PEAK_CHAIN(op, 7) PEAK_CHAIN(op, 8) PEAK_CHAIN(op, 9)                 \
    PEAK_CHAIN(op, 10) PEAK_CHAIN(op, 11) PEAK_CHAIN(op, 12) PEAK_CHAIN(op, 13) PEAK_CHAIN(op, 14)            \
    PEAK_CHAIN(op, 15)
#define PEAK_CLOBBERS                                                                                         \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",          \
    "xmm12", "xmm13", "xmm14", "xmm15", "xmm30", "xmm31"

// Instructions retired per second by one thread running `op` (all operands zero: no
// denormals, no infinities) for `n` trips of sixteen; `now` is the caller's monotonic clock.
#define PEAK_FUNCTION(name, op)                                                                               \
    __attribute__((target("avx512f"))) static double name(long n, double (*clock)(void)) {                    \
        __asm__ volatile("vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31\n\t"           \
                         PEAK_16("vpxord") ::: PEAK_CLOBBERS);                                   \
        double t0 = clock();                                                                                  \
        for (long i = 0; i < n; i++) __asm__ volatile(PEAK_16(op) ::: PEAK_CLOBBERS);                         \
        return 16.0 * n / (clock() - t0);                                                                     \
    }

#endif

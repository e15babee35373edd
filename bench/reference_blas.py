"""The BLAS under the Python references, set up as fast as this CPU allows.

faiss-cpu's wheels bundle an OpenBLAS (0.3.15 in faiss-cpu 1.15.1) that does not know newer CPUs:
on an Intel Xeon of family 6 model 207 (AVX-512, AMX-era) it fell back to its Prescott (SSE3)
kernels and FAISS's k-means on 200,000 × 768 took 15.7 s instead of 4.2 s with the SkylakeX
kernels (bench/cluster, 2026-12-02). A reference must run at its best: unless the caller set
OPENBLAS_CORETYPE, name the kernel family the CPU's instruction set supports (SkylakeX for
AVX-512, Haswell for AVX2), before numpy or faiss load. Import this module first.
"""
import os


def _flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def core_type():
    flags = _flags()
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


if "OPENBLAS_CORETYPE" not in os.environ and core_type():
    os.environ["OPENBLAS_CORETYPE"] = core_type()

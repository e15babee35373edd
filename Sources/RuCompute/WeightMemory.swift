#if canImport(Glibc)
import Glibc
#endif

/// Memory for a layer's pre-arranged weights (int8 panels, bf16 panels, oneDNN's blocked f32):
/// written once at load, read by every call. Large buffers are 2 MiB-aligned and asked for
/// transparent huge pages (`MADV_HUGEPAGE`; honoured where THP is `always` or `madvise`).
///
/// Why: these are fresh pages, and faulting them in 4 KiB at a time was most of a cold start.
/// On the 2-vCPU Zen 5 guest (THP `madvise`), first-touching 170 MiB took 0.055–0.063 s in
/// 4 KiB pages and 0.008 s in 2 MiB pages; `perf` of `ru-embed --precision f32` on one text put
/// 38 % of all samples in the kernel's `clear_page_erms` and 10 % more in the fault path.
enum WeightMemory {
    static let hugePage = 2 << 20

    /// `byteCount` bytes (at least 64), 64-byte aligned; release with `deallocate`.
    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let count = max(byteCount, 64), huge = count >= hugePage
        var memory: UnsafeMutableRawPointer?
        guard posix_memalign(&memory, huge ? hugePage : 64, count) == 0, let memory else {
            fatalError("out of memory: \(count) bytes of weights")
        }
        #if os(Linux)
        // The whole huge pages inside the buffer; the tail stays in small pages (rounding every
        // buffer up to 2 MiB cost 45-60 MB of resident set over USER-base's 48 layers).
        if huge { _ = madvise(memory, count / hugePage * hugePage, MADV_HUGEPAGE) } // ignored where THP is off
        #endif
        return memory
    }

    /// Releases what `allocate` returned.
    static func deallocate(_ memory: UnsafeMutableRawPointer) { free(memory) }
}

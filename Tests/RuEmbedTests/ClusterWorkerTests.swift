import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import ru_cluster

/// ru-cluster's second pass hands blocks to a thread of its own (`BackgroundWorker`): each
/// submission is worked on exactly once, and a slot is never worked on after `wait` gave it
/// back to the caller (who refills it).
@Suite struct ClusterWorkerTests {
    /// The caller submits one slot and waits on the other, with a pause in between so the
    /// worker finishes first (what a loaded machine did to ru-cluster): the worker once took
    /// the slot it had just finished again, because the caller had not yet waited on it, and
    /// worked on it while the caller refilled it (wrong clusters for part of a block).
    @Test func everySubmissionRunsOnceEvenWhenTheWorkerIsAhead() throws {
        let worker = try BackgroundWorker { _ in }
        let rounds = 60
        for round in 0..<rounds {
            let slot = round % 2
            worker.submit(slot)
            usleep(2_000)
            worker.wait(slot ^ 1)
        }
        worker.wait(0)
        worker.wait(1)
        worker.stop()
        #expect(worker.runs == [rounds / 2, rounds / 2], "runs per slot: \(worker.runs)")
    }

    /// A slot the caller is refilling is not touched: the work sees the slot's contents as they
    /// were when submitted.
    @Test func workSeesTheSubmittedContents() throws {
        // Pointers, not a Swift array: the caller writes one element while the worker reads the other.
        final class Slots: @unchecked Sendable {
            let value = UnsafeMutablePointer<Int>.allocate(capacity: 2)
            var seen: [[Int]] = [[], []] // the worker's alone until stop()
            deinit { value.deallocate() }
        }
        let slots = Slots()
        slots.value.initialize(repeating: 0, count: 2)
        let worker = try BackgroundWorker { slot in slots.seen[slot].append(slots.value[slot]) }
        for round in 0..<40 {
            let slot = round % 2
            slots.value[slot] = round
            worker.submit(slot)
            usleep(1_000)
            worker.wait(slot ^ 1)
            slots.value[slot ^ 1] = -1 // the caller refills the slot it got back
        }
        worker.wait(0)
        worker.wait(1)
        worker.stop()
        for slot in 0..<2 {
            let right = slots.seen[slot] == Array(stride(from: slot, to: 40, by: 2))
            #expect(right, "slot \(slot): \(slots.seen[slot].count) runs, first \(slots.seen[slot].prefix(12))")
        }
    }
}

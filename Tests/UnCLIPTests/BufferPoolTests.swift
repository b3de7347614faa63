import CKernels
import XCTest
@testable import UnCLIP

/// The activation buffer pool: reuse by size, and under the small memory plan nothing held across a miss.
final class BufferPoolTests: XCTestCase {
    func withPlan(_ plan: MemoryPlan, _ body: () throws -> Void) rethrows {
        let saved = MemoryPlan.active
        defer { MemoryPlan.set(saved) }
        MemoryPlan.set(plan)
        try body()
    }

    func testReusesAFreedBufferOfTheSameSize() {
        withPlan(.small) {
            let pool = BufferPool.shared, size = 3 << 20
            let a = pool.take(size)
            pool.give(a, size)
            XCTAssertGreaterThanOrEqual(pool.heldBytes, size)
            let b = pool.take(size)
            XCTAssertEqual(a, b, "a held buffer of the same size is handed out again")
            pool.give(b, size)
        }
    }

    /// A take that misses under .small gives every held buffer back first (they would only add to the peak);
    /// under .fast they stay held for the next step.
    func testAMissUnderTheSmallPlanDrainsTheHeldBuffers() {
        let pool = BufferPool.shared, size = 3 << 20, other = 5 << 20
        withPlan(.small) {
            let a = pool.take(size)
            pool.give(a, size)
            XCTAssertGreaterThan(pool.heldBytes, 0)
            let b = pool.take(other)
            XCTAssertEqual(pool.heldBytes, 0)
            pool.give(b, other)
            let c = pool.take(size)    // drains `other`
            pool.give(c, size)
        }
        withPlan(.fast) {
            let a = pool.take(size)
            pool.give(a, size)
            let held = pool.heldBytes
            XCTAssertGreaterThan(held, 0)
            let b = pool.take(other)
            XCTAssertEqual(pool.heldBytes, held)
            pool.give(b, other)
        }
    }

    func testTheMmapThresholdIsFixedOnGlibc() {
        #if canImport(Glibc)
        XCTAssertEqual(ck_malloc_fix_mmap_threshold(BufferPool.minBytes), 1)
        #endif
    }
}

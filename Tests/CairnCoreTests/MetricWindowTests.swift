import CairnTestSupport
import Foundation
import Testing
@testable import MonitorController

/// The monitors' sliding window (issue 15 groundwork): aggregates against hand-computed values,
/// expiry, rejections and the memory bound. Windows of 600 s, so buckets of 10 s; the start is
/// a multiple of 10 s so that bucket edges fall on round seconds.
@Suite struct MetricWindowTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    /// 3, 1, 4, 1, 5, 9, 2, 6 at start + 0, 10, …, 70 s, added out of order.
    static func digits(_ aggregate: MetricWindow.Aggregate) -> MetricWindow {
        var window = MetricWindow(window: 600, aggregate: aggregate)
        let samples: [(offset: TimeInterval, value: Double)] = [(0, 3), (10, 1), (20, 4), (30, 1), (40, 5), (50, 9), (60, 2), (70, 6)]
        for index in [3, 0, 7, 1, 5, 2, 6, 4] {
            #expect(window.add(samples[index].value, at: start + samples[index].offset) == .accepted)
        }
        return window
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var aggregate: MetricWindow.Aggregate
        var at: TimeInterval
        var count: Int
        var value: Double?
        var testDescription: String { "\(aggregate.rawValue) at +\(Int(at)) s" }
    }

    @Test(arguments: [
        // All eight samples: sum 31.
        Case(aggregate: .mean, at: 70, count: 8, value: 31.0 / 8),
        Case(aggregate: .max, at: 70, count: 8, value: 9),
        Case(aggregate: .min, at: 70, count: 8, value: 1),
        Case(aggregate: .last, at: 70, count: 8, value: 6),          // newest by time, not by arrival
        Case(aggregate: .p95, at: 70, count: 8, value: 9),           // rank ⌈7.6⌉ = 8 of 1 1 2 3 4 5 6 9
        // At +605 the window starts after +5: the first sample (3) is out.
        Case(aggregate: .mean, at: 605, count: 7, value: 4),
        Case(aggregate: .min, at: 605, count: 7, value: 1),
        Case(aggregate: .p95, at: 605, count: 7, value: 9),          // rank ⌈6.65⌉ = 7 of 1 1 2 4 5 6 9
        // At +655 only +60 (2) and +70 (6) are left.
        Case(aggregate: .mean, at: 655, count: 2, value: 4),
        Case(aggregate: .max, at: 655, count: 2, value: 6),
        Case(aggregate: .min, at: 655, count: 2, value: 2),
        Case(aggregate: .p95, at: 655, count: 2, value: 6),
        // At +660 the 9 is gone from max: only +70 (6) is left.
        Case(aggregate: .max, at: 660, count: 1, value: 6),
        Case(aggregate: .last, at: 669, count: 1, value: 6),
        // At +670 nothing.
        Case(aggregate: .mean, at: 670, count: 0, value: nil),
        Case(aggregate: .last, at: 670, count: 0, value: nil),
        Case(aggregate: .p95, at: 700, count: 0, value: nil),
    ])
    func aggregatesMatchHandComputedValues(_ c: Case) {
        let window = Self.digits(c.aggregate)
        #expect(window.count(at: Self.start + c.at) == c.count)
        #expect(window.value(at: Self.start + c.at) == c.value)
    }

    @Test func p95IsTheNearestRank() {
        var hundred = MetricWindow(window: 600, aggregate: .p95)
        var twenty = MetricWindow(window: 600, aggregate: .p95)
        for step in 0..<100 {
            let value = Double((step * 37) % 100 + 1)                // 1…100, shuffled
            hundred.add(value, at: Self.start + Double(step))
            if value <= 20 { twenty.add(value, at: Self.start + Double(step)) }
        }
        #expect(hundred.value(at: Self.start + 100) == 95)
        #expect(twenty.value(at: Self.start + 100) == 19)
    }

    @Test func rejectsWhatItCannotCount() {
        var window = MetricWindow(window: 600, aggregate: .mean)
        #expect(window.add(.nan, at: Self.start) == .notFinite)
        #expect(window.add(.infinity, at: Self.start) == .notFinite)
        #expect(window.add(-.infinity, at: Self.start) == .notFinite)
        #expect(window.add(10, at: Self.start + 1_000) == .accepted)
        // The window at +1000 starts at +410: +400 is too old, +410 is late but inside.
        #expect(window.add(99, at: Self.start + 400) == .tooOld(edge: Self.start + 410))
        #expect(window.add(20, at: Self.start + 410) == .accepted)
        #expect(window.count(at: Self.start + 1_000) == 2)
        #expect(window.value(at: Self.start + 1_000) == 15)
    }

    @Test func expiringForgetsAQuietWindowButNotItsEdge() {
        var window = MetricWindow(window: 600, aggregate: .max)
        window.add(5, at: Self.start)
        window.add(7, at: Self.start + 30)
        window.expire(at: Self.start + 2_000)
        #expect(window.buckets.isEmpty)
        #expect(window.value(at: Self.start + 2_000) == nil)
        #expect(window.add(1, at: Self.start - 600) != .accepted)
    }

    /// A million samples, at 64 a second and at one every 128 s (spacings exact in binary): what
    /// the window holds stays within its bound, and the count and mean are right at the end.
    @Test(arguments: [MetricWindow.Aggregate.mean, .p95], [1.0 / 64, 128.0])
    func memoryStaysBounded(_ aggregate: MetricWindow.Aggregate, spacing: TimeInterval) {
        var window = MetricWindow(window: 600, aggregate: aggregate)
        var largest = 0
        for step in 0..<1_000_000 {
            window.add(Double(step % 1_000), at: Self.start + Double(step) * spacing)
            if step % 1_000 == 0 { largest = max(largest, window.storedCount) }
        }
        largest = max(largest, window.storedCount)
        #expect(largest <= MetricWindow.maximumStored)
        #expect(largest <= 4_000)
        let end = Self.start + 999_999 * spacing
        // At 64/s the window starts at +15030 s, the sample of step 961,920; at one per 128 s it
        // starts at +127,999,280 s, so holds the last 5 samples.
        let first = spacing < 1 ? 961_920 : 999_995
        #expect(window.count(at: end) == 1_000_000 - first)
        if aggregate == .mean {
            let sum = (first..<1_000_000).reduce(0.0) { $0 + Double($1 % 1_000) }
            #expect(window.value(at: end) == sum / Double(1_000_000 - first))
        }
    }

    /// The p95 of 100,000 samples in one window, far past the per-bucket cap: the answer's rank
    /// is within one point of 95%.
    @Test func downsampledP95StaysNearTheTrueRank() throws {
        var window = MetricWindow(window: 600, aggregate: .p95)
        var generator = UInt64(42)
        var values: [Double] = []
        for step in 0..<100_000 {
            generator = generator &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let value = Double(generator >> 40) / Double(1 << 24)
            let skewed = value * value * 100                          // a latency-like long tail
            values.append(skewed)
            window.add(skewed, at: Self.start + Double(step) * 0.005)
        }
        let now = Self.start + 500
        let answer = try #require(window.value(at: now))
        let rank = Double(values.filter { $0 <= answer }.count) / Double(values.count)
        #expect(abs(rank - 0.95) < 0.01, "rank \(rank)")
        #expect(window.storedCount <= MetricWindow.maximumStored)
    }
}

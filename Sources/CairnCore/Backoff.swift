import Foundation

/// Exponential backoff with jitter, as a pure function of the failure count: the caller keeps
/// the count and the clock, so tests need no sleeping.
public struct Backoff: Sendable, Hashable {
    public var base: Double
    public var factor: Double
    public var maximum: Double
    /// The share of the delay that is randomised, so that many failing objects spread out.
    public var jitter: Double

    /// Between retries of a failed run (a pipeline stage's, a training's): 5 s, doubling, at
    /// most 10 minutes, no jitter (the run's end time spreads them already).
    public static let runRetries = Backoff(base: 5, factor: 2, maximum: 600, jitter: 0)

    public init(base: Double = 1, factor: Double = 2, maximum: Double = 300, jitter: Double = 0.2) {
        self.base = base
        self.factor = factor
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The delay before the next attempt after `failures` consecutive failures (1 or more).
    /// `random` is a number in 0..<1; the delay is the nominal one scaled by 1 ± jitter/2.
    public func delay(afterFailures failures: Int, random: Double = Double.random(in: 0..<1)) -> Double {
        let exponent = Double(max(0, failures - 1))
        let nominal = min(maximum, base * pow(factor, min(exponent, 64)))
        return nominal * (1 - jitter / 2 + jitter * random)
    }
}

public import Foundation

/// One threshold's alert state, as a Prometheus alerting rule keeps it.
///
/// Pure: no I/O and no clock; each evaluation brings the window's aggregate, its sample count
/// and the time. Codable, so the controller can keep it across daemon restarts: a restart in
/// the middle of `pending` keeps `since`, as Prometheus restores `for` state, and fires at the
/// time it would have fired without the restart.
///
/// - inactive, condition true: `pending(since: now)`, or straight to `firing` when `for` is 0.
/// - pending, condition true: `firing(since: now)` once `now - since >= for`.
/// - pending, condition false: back to inactive (``Transition/cleared``).
/// - firing, condition false: stays firing until the condition has been false for
///   `keepFiringFor` (counted from the first false evaluation), then inactive
///   (``Transition/resolved``). A true evaluation in between starts the count again.
/// - No value, or fewer samples than `minSamples`: nothing changes, whatever the state
///   (``Transition/insufficientData``); a thin window neither fires nor resolves.
public struct AlertState: Sendable, Codable, Hashable {
    public enum Phase: Sendable, Codable, Hashable {
        case inactive
        case pending(since: Date)
        case firing(since: Date)
    }

    /// A threshold and its timing, from a Monitor's spec.
    public struct Rule: Sendable, Codable, Hashable {
        public enum Threshold: Sendable, Codable, Hashable {
            /// The condition holds while the value is strictly below this.
            case below(Double)
            /// The condition holds while the value is strictly above this.
            case above(Double)
        }

        public var threshold: Threshold
        /// How long the condition must hold before the alert fires (Prometheus `for`).
        public var holdFor: TimeInterval
        /// How long the condition must have been false before a firing alert resolves.
        public var keepFiringFor: TimeInterval
        /// Fewer samples in the window than this: the evaluation changes nothing.
        public var minSamples: Int

        public init(_ threshold: Threshold, for holdFor: TimeInterval = 0, keepFiringFor: TimeInterval = 0,
                    minSamples: Int = 1) {
            self.threshold = threshold
            self.holdFor = holdFor
            self.keepFiringFor = keepFiringFor
            self.minSamples = minSamples
        }

        public func isMet(by value: Double) -> Bool {
            switch threshold {
            case .below(let limit): value < limit
            case .above(let limit): value > limit
            }
        }
    }

    /// What one evaluation did, for the controller to record and act on.
    public enum Transition: Sendable, Hashable {
        /// The state did not change (it may be counting towards `for` or `keepFiringFor`).
        case none
        /// No value, or fewer than `minSamples` samples: the state holds.
        case insufficientData
        /// inactive → pending.
        case becamePending
        /// pending → firing, or inactive → firing when `for` is 0.
        case fired
        /// firing → inactive, after `keepFiringFor` of the condition being false.
        case resolved
        /// pending → inactive: the condition stopped holding before `for`.
        case cleared
    }

    public private(set) var phase: Phase
    /// While firing: when the condition was first seen false since it last held; nil otherwise.
    public private(set) var falseSince: Date?

    public init() {
        phase = .inactive
        falseSince = nil
    }

    public var isFiring: Bool {
        if case .firing = phase { true } else { false }
    }

    public mutating func evaluate(value: Double?, samples: Int, at now: Date, rule: Rule) -> Transition {
        guard let value, value.isFinite, samples >= max(rule.minSamples, 1) else { return .insufficientData }
        let met = rule.isMet(by: value)
        switch (phase, met) {
        case (.inactive, true):
            if rule.holdFor <= 0 {
                phase = .firing(since: now)
                return .fired
            }
            phase = .pending(since: now)
            return .becamePending
        case (.inactive, false):
            return .none
        case (.pending(let since), true):
            guard now.timeIntervalSince(since) >= rule.holdFor else { return .none }
            phase = .firing(since: now)
            return .fired
        case (.pending, false):
            phase = .inactive
            return .cleared
        case (.firing, true):
            falseSince = nil
            return .none
        case (.firing, false):
            let since = falseSince ?? now
            guard now.timeIntervalSince(since) >= rule.keepFiringFor else {
                falseSince = since
                return .none
            }
            phase = .inactive
            falseSince = nil
            return .resolved
        }
    }
}

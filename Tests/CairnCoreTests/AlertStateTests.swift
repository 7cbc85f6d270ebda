import CairnTestSupport
import Foundation
import Testing
@testable import MonitorController

/// The monitors' alert state machine (issue 15 groundwork), driven by a manual clock: values
/// come in at given seconds after the start, each with its window's sample count.
@Suite struct AlertStateTests {
    struct Step: Sendable {
        var at: TimeInterval
        var value: Double?
        var samples = 10
        var expect: AlertState.Transition
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var rule: AlertState.Rule
        var steps: [Step]
        var testDescription: String { name }
    }

    /// accuracy below 0.9, held 10 minutes.
    static let accuracy = AlertState.Rule(.below(0.9), for: 600)

    @Test(arguments: [
        Case(name: "pending, then firing after exactly `for`", rule: accuracy, steps: [
            Step(at: 0, value: 0.8, expect: .becamePending),
            Step(at: 300, value: 0.8, expect: .none),
            Step(at: 599, value: 0.85, expect: .none),
            Step(at: 600, value: 0.8, expect: .fired),
            Step(at: 660, value: 0.8, expect: .none),
        ]),
        Case(name: "a dip back before `for` clears pending, and pending starts again", rule: accuracy, steps: [
            Step(at: 0, value: 0.8, expect: .becamePending),
            Step(at: 540, value: 0.95, expect: .cleared),
            Step(at: 600, value: 0.8, expect: .becamePending),
            Step(at: 1_140, value: 0.8, expect: .none),
            Step(at: 1_200, value: 0.8, expect: .fired),
        ]),
        Case(name: "the threshold itself is not below it", rule: accuracy, steps: [
            Step(at: 0, value: 0.9, expect: .none),
        ]),
        Case(name: "above, with `for` 0, fires at once and resolves at once",
             rule: AlertState.Rule(.above(250)), steps: [
                Step(at: 0, value: 300, expect: .fired),
                Step(at: 30, value: 200, expect: .resolved),
                Step(at: 60, value: 200, expect: .none),
             ]),
        Case(name: "keepFiringFor holds firing through a short recovery and resolves after it",
             rule: AlertState.Rule(.below(0.9), for: 60, keepFiringFor: 300), steps: [
                Step(at: 0, value: 0.8, expect: .becamePending),
                Step(at: 60, value: 0.8, expect: .fired),
                Step(at: 120, value: 0.95, expect: .none),           // false since 120
                Step(at: 360, value: 0.95, expect: .none),           // 240 s: still firing
                Step(at: 400, value: 0.8, expect: .none),            // held again: the count restarts
                Step(at: 460, value: 0.95, expect: .none),           // false since 460
                Step(at: 759, value: 0.95, expect: .none),
                Step(at: 760, value: 0.95, expect: .resolved),       // 300 s after 460
             ]),
        Case(name: "minSamples blocks firing", rule: AlertState.Rule(.below(0.9), for: 60, minSamples: 5), steps: [
            Step(at: 0, value: 0.8, samples: 4, expect: .insufficientData),
            Step(at: 30, value: 0.8, samples: 5, expect: .becamePending),
            Step(at: 90, value: 0.8, samples: 4, expect: .insufficientData),   // due, but too thin
            Step(at: 120, value: nil, samples: 0, expect: .insufficientData),
            Step(at: 150, value: 0.8, samples: 5, expect: .fired),
        ]),
        Case(name: "minSamples blocks resolving and clearing",
             rule: AlertState.Rule(.below(0.9), for: 60, keepFiringFor: 0, minSamples: 5), steps: [
                Step(at: 0, value: 0.8, expect: .becamePending),
                Step(at: 60, value: 0.8, expect: .fired),
                Step(at: 90, value: 0.99, samples: 1, expect: .insufficientData),
                Step(at: 120, value: nil, samples: 0, expect: .insufficientData),
                Step(at: 150, value: 0.99, expect: .resolved),
                Step(at: 180, value: 0.8, expect: .becamePending),
                Step(at: 190, value: 0.99, samples: 2, expect: .insufficientData),
                Step(at: 240, value: 0.8, expect: .fired),
             ]),
    ])
    func transitions(_ c: Case) {
        let clock = ManualClock()
        let start = clock.now
        var state = AlertState()
        for step in c.steps {
            clock.advance(by: start.addingTimeInterval(step.at).timeIntervalSince(clock.now))
            let transition = state.evaluate(value: step.value, samples: step.samples, at: clock.now, rule: c.rule)
            #expect(transition == step.expect, "at +\(Int(step.at)) s")
        }
    }

    /// A daemon restart in the middle of pending: the state read back fires at the original time.
    @Test func aStateReadBackMidPendingFiresAtTheOriginalTime() throws {
        let clock = ManualClock()
        let start = clock.now
        var state = AlertState()
        #expect(state.evaluate(value: 0.8, samples: 10, at: clock.now, rule: Self.accuracy) == .becamePending)
        clock.advance(by: 400)
        #expect(state.evaluate(value: 0.8, samples: 10, at: clock.now, rule: Self.accuracy) == .none)

        let saved = try JSONEncoder().encode(state)
        var restored = try JSONDecoder().decode(AlertState.self, from: saved)
        #expect(restored == state)
        #expect(restored.phase == .pending(since: start))

        clock.advance(by: 199)                                        // +599, after the restart
        #expect(restored.evaluate(value: 0.8, samples: 10, at: clock.now, rule: Self.accuracy) == .none)
        clock.advance(by: 1)                                          // +600: `for` after the first pending
        #expect(restored.evaluate(value: 0.8, samples: 10, at: clock.now, rule: Self.accuracy) == .fired)
        #expect(restored.phase == .firing(since: start.addingTimeInterval(600)))
    }
}

/// Cooldown and de-duplication of a threshold's action.
@Suite struct ActionGateTests {
    @Test func aFiringActsOnceAndANewOneWaitsForTheCooldown() {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var gate = ActionGate(cooldown: 900)
        #expect(gate.decide(firingSince: start, at: start) == .act)
        #expect(gate.decide(firingSince: start, at: start.addingTimeInterval(60)) == .duplicate)
        #expect(gate.decide(firingSince: start, at: start.addingTimeInterval(3_600)) == .duplicate)
        let second = start.addingTimeInterval(120)
        #expect(gate.decide(firingSince: second, at: second) == .coolingDown(until: start.addingTimeInterval(900)))
        #expect(gate.decide(firingSince: second, at: start.addingTimeInterval(899)) != .act)
        #expect(gate.decide(firingSince: second, at: start.addingTimeInterval(900)) == .act)
        // A clock set back is within the cooldown.
        let third = start.addingTimeInterval(1_000)
        #expect(gate.decide(firingSince: third, at: start.addingTimeInterval(100)) != .act)
        // Kept across a restart.
        var restored = (try? JSONDecoder().decode(ActionGate.self, from: JSONEncoder().encode(gate))) ?? ActionGate(cooldown: 0)
        #expect(restored.decide(firingSince: second, at: start.addingTimeInterval(5_000)) == .duplicate)
    }

    /// A metric flapping around the threshold every 30 s for an hour, `for: 0`, cooldown 15
    /// minutes: sixty firings, four actions, 15 minutes apart.
    @Test func aFlappingMetricActsOncePerCooldown() {
        let clock = ManualClock()
        let start = clock.now
        let rule = AlertState.Rule(.below(0.9), for: 0)
        var state = AlertState()
        var gate = ActionGate(cooldown: 15 * 60)
        var fired = 0
        var actions: [TimeInterval] = []
        for tick in 0..<120 {                                         // an hour of 30 s ticks
            let value = tick.isMultiple(of: 2) ? 0.85 : 0.95
            if state.evaluate(value: value, samples: 10, at: clock.now, rule: rule) == .fired { fired += 1 }
            if case .firing(let since) = state.phase, gate.decide(firingSince: since, at: clock.now) == .act {
                actions.append(clock.now.timeIntervalSince(start))
            }
            clock.advance(by: 30)
        }
        #expect(fired == 60)
        #expect(actions == [0, 900, 1_800, 2_700])
    }
}

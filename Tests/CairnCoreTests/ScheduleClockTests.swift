import CairnManifests
import CairnTestSupport
import Foundation
import Testing
@testable import TrainingScheduleController

/// The schedule state machine driven by a manual clock: what is due, dropped and missed.
@Suite struct ScheduleClockTests {
    /// A schedule, its zone and state, moved along by a manual clock.
    struct Driver {
        let schedule: CronSchedule
        let zone: TimeZone
        let catchup: TrainingScheduleSpec.Catchup
        let clock: ManualClock
        var state = ScheduleState()

        init(_ text: String, in zone: String = "UTC", catchup: TrainingScheduleSpec.Catchup, at start: String) throws {
            schedule = try CronSchedule(parsing: text)
            self.zone = try #require(TimeZone(identifier: zone))
            self.catchup = catchup
            clock = ManualClock(try instant(start))
        }

        mutating func advance(by seconds: TimeInterval = 0) -> ScheduleAdvance {
            clock.advance(by: seconds)
            return ScheduleClock.advance(&state, schedule: schedule, timeZone: zone, catchup: catchup, now: clock.now)
        }
    }

    @Test func theFirstEvaluationFiresNothing() throws {
        var driver = try Driver("@hourly", catchup: .all, at: "2026-06-01T10:00:00Z")   // even exactly on a tick
        let result = driver.advance()
        #expect(result.newlyDue.isEmpty && result.dropped == 0 && result.missed == 0)
        #expect(driver.state == ScheduleState(through: try instant("2026-06-01T10:00:00Z")))
        #expect(result.nextTick.map(iso) == "2026-06-01T11:00:00Z")
    }

    @Test func anOnTimeTickIsDueAndTakenOnce() throws {
        var driver = try Driver("@hourly", catchup: .none, at: "2026-06-01T09:58:00Z")
        _ = driver.advance()
        #expect(driver.advance(by: 60).newlyDue.isEmpty)                  // 09:59
        let result = driver.advance(by: 6 * 60)                           // 10:05: five minutes late is on time
        #expect(result.newlyDue.map(iso) == ["2026-06-01T10:00:00Z"])
        #expect(result.dropped == 0 && result.missed == 0)
        #expect(result.nextTick.map(iso) == "2026-06-01T11:00:00Z")
        #expect(ScheduleClock.take(&driver.state).map(iso) == "2026-06-01T10:00:00Z")
        #expect(ScheduleClock.take(&driver.state) == nil)
        #expect(driver.advance(by: 60).newlyDue.isEmpty)                  // not again
    }

    struct DownCase: Sendable, CustomTestStringConvertible {
        var catchup: TrainingScheduleSpec.Catchup
        var backAt: String
        var due: [String]
        var dropped: Int
        var missed: Int
        var testDescription: String { "catchup: \(catchup.rawValue), back at \(backAt)" }
    }

    /// Down from 09:58 across the ticks of 10:00, 11:00 and 12:00.
    @Test(arguments: [
        DownCase(catchup: .none, backAt: "2026-06-01T12:30:00Z", due: [], dropped: 3, missed: 3),
        DownCase(catchup: .latest, backAt: "2026-06-01T12:30:00Z", due: ["2026-06-01T12:00:00Z"], dropped: 2, missed: 3),
        DownCase(catchup: .all, backAt: "2026-06-01T12:30:00Z",
                 due: ["2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z", "2026-06-01T12:00:00Z"], dropped: 0, missed: 3),
        // Back within five minutes of the last tick: that one is on time, so even `none` runs it.
        DownCase(catchup: .none, backAt: "2026-06-01T12:05:00Z", due: ["2026-06-01T12:00:00Z"], dropped: 2, missed: 2),
    ])
    func theDaemonWasDown(_ c: DownCase) throws {
        var driver = try Driver("@hourly", catchup: c.catchup, at: "2026-06-01T09:58:00Z")
        _ = driver.advance()
        let result = driver.advance(by: try instant(c.backAt).timeIntervalSince(driver.clock.now))
        #expect(result.newlyDue.map(iso) == c.due)
        #expect(driver.state.pending.map(iso) == c.due)
        #expect(result.dropped == c.dropped)
        #expect(result.missed == c.missed)
        #expect(driver.state.through == (try instant(c.backAt)))
        #expect(result.nextTick.map(iso) == "2026-06-01T13:00:00Z")
    }

    @Test func catchupAllKeepsTheNewestTen() throws {
        var driver = try Driver("@hourly", catchup: .all, at: "2026-06-01T09:58:00Z")
        _ = driver.advance()
        let result = driver.advance(by: 30 * 3_600)                      // 30 ticks: 10:00 on the 1st to 15:00 on the 2nd
        #expect(result.missed == 30)
        #expect(result.dropped == 20)
        #expect(result.newlyDue.count == 10)
        #expect(driver.state.pending.map(iso).first == "2026-06-02T06:00:00Z")
        #expect(driver.state.pending.map(iso).last == "2026-06-02T15:00:00Z")
        // The bound is on pending as a whole: five more ticks push out the five oldest.
        let more = driver.advance(by: 5 * 3_600)
        #expect(more.newlyDue.count == 5 && more.dropped == 5)
        #expect(driver.state.pending.count == ScheduleClock.catchupBound)
        #expect(driver.state.pending.map(iso).first == "2026-06-02T11:00:00Z")
    }

    @Test func aRunInFlightLeavesOnePendingUnderLatest() throws {
        // Forbid: the controller does not take the tick while a run is in flight.
        var driver = try Driver("@hourly", catchup: .latest, at: "2026-06-01T09:58:00Z")
        _ = driver.advance()
        #expect(driver.advance(by: 3 * 60).newlyDue.map(iso) == ["2026-06-01T10:00:00Z"])
        let second = driver.advance(by: 3_600)                            // 11:01, nothing taken
        #expect(second.newlyDue.map(iso) == ["2026-06-01T11:00:00Z"])
        #expect(second.dropped == 1)                                      // the 10:00 one it replaced
        #expect(driver.state.pending.map(iso) == ["2026-06-01T11:00:00Z"])
        // Under `all` they queue up instead.
        var queued = try Driver("@hourly", catchup: .all, at: "2026-06-01T09:58:00Z")
        _ = queued.advance()
        _ = queued.advance(by: 3 * 60)
        #expect(queued.advance(by: 3_600).dropped == 0)
        #expect(queued.state.pending.map(iso) == ["2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z"])
    }

    @Test func theClockGoingBackChangesNothing() throws {
        var driver = try Driver("@hourly", catchup: .all, at: "2026-06-01T09:58:00Z")
        _ = driver.advance()
        _ = driver.advance(by: 3 * 60)                                    // 10:01: 10:00 due
        let before = driver.state
        let back = driver.advance(by: -2 * 3_600)                         // 08:01
        #expect(back.newlyDue.isEmpty && back.dropped == 0 && back.missed == 0)
        #expect(driver.state == before)
        #expect(back.nextTick.map(iso) == "2026-06-01T11:00:00Z")         // 09:00 and 10:00 were handled already
        _ = driver.advance(by: 2 * 3_600)                                 // 10:01 again
        #expect(driver.state == before)
        let later = driver.advance(by: 3_600)                             // 11:01
        #expect(later.newlyDue.map(iso) == ["2026-06-01T11:00:00Z"])
        #expect(driver.state.pending.map(iso) == ["2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z"])
    }

    @Test func theStateSurvivesEncoding() throws {
        let state = ScheduleState(through: try instant("2026-06-01T10:01:00Z"), pending: [try instant("2026-06-01T10:00:00Z")])
        let data = try JSONEncoder().encode(state)
        #expect(try JSONDecoder().decode(ScheduleState.self, from: data) == state)
    }

    struct DaylightCase: Sendable, CustomTestStringConvertible {
        var schedule: String
        var zone: String
        var from: String
        var hours: Int
        var due: [String]
        var testDescription: String { "\(schedule) in \(zone) from \(from)" }
    }

    /// A day of daylight saving change, driven every five minutes (so each tick is on time and
    /// `none` would drop nothing late): exactly these ticks come due, each once.
    @Test(arguments: [
        // 02:30 does not exist on 2026-03-29 in Berlin: it runs at 03:00 CEST, then 02:30 CEST the next day.
        DaylightCase(schedule: "30 2 * * *", zone: "Europe/Berlin", from: "2026-03-28T12:00:00Z", hours: 48,
                     due: ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        // 02:30 happens twice on 2026-10-25 in Berlin: it runs at the first.
        DaylightCase(schedule: "30 2 * * *", zone: "Europe/Berlin", from: "2026-10-24T12:00:00Z", hours: 48,
                     due: ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        DaylightCase(schedule: "@hourly", zone: "Europe/Berlin", from: "2026-10-24T22:30:00Z", hours: 4,
                     due: ["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"]),
        DaylightCase(schedule: "30 2 * * *", zone: "America/New_York", from: "2026-03-07T12:00:00Z", hours: 48,
                     due: ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
        DaylightCase(schedule: "@hourly", zone: "America/New_York", from: "2026-03-08T05:30:00Z", hours: 3,
                     due: ["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"]),
        DaylightCase(schedule: "30 1 * * *", zone: "America/New_York", from: "2026-10-31T12:00:00Z", hours: 48,
                     due: ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        DaylightCase(schedule: "@hourly", zone: "America/New_York", from: "2026-11-01T04:30:00Z", hours: 3,
                     due: ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"]),
    ])
    func aDaylightSavingDayTickByTick(_ c: DaylightCase) throws {
        var driver = try Driver(c.schedule, in: c.zone, catchup: .none, at: c.from)
        _ = driver.advance()
        var ran: [String] = []
        var missed = 0
        for _ in 0..<(c.hours * 12) {
            let result = driver.advance(by: 300)
            missed += result.missed
            if let next = result.nextTick { #expect(next > driver.clock.now) }
            while let tick = ScheduleClock.take(&driver.state) { ran.append(iso(tick)) }
        }
        #expect(ran == c.due)
        #expect(missed == 0)
    }
}

private func instant(_ text: String) throws -> Date {
    try #require(ISO8601DateFormatter().date(from: text), "not ISO 8601: \(text)")
}

private func iso(_ date: Date) -> String {
    ISO8601DateFormatter().string(from: date)
}

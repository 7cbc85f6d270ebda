import CairnManifests
import Foundation
import Testing

/// Cron read on the wall clock of an IANA zone. Every expectation is a UTC instant, so a case
/// says exactly which instant fires, whatever the local clock showed.
@Suite struct CronTimeZoneTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var schedule: String
        var zone: String
        var after: String
        /// The ticks `nextTick` gives one after another, starting after `after`.
        var next: [String]
        var testDescription: String { "\(schedule) in \(zone) after \(after)" }
    }

    static let utcBasics: [Case] = [
        Case(schedule: "@hourly", zone: "UTC", after: "2026-11-26T10:30:00Z", next: ["2026-11-26T11:00:00Z", "2026-11-26T12:00:00Z"]),
        Case(schedule: "0 * * * *", zone: "UTC", after: "2026-11-26T10:00:00Z", next: ["2026-11-26T11:00:00Z"]),   // strictly after
        Case(schedule: "0 3 * * 1", zone: "UTC", after: "2026-11-24T04:00:00Z", next: ["2026-11-30T03:00:00Z"]),      // Tuesday → Monday
        Case(schedule: "*/15 * * * *", zone: "UTC", after: "2026-12-31T23:59:00Z", next: ["2027-01-01T00:00:00Z", "2027-01-01T00:15:00Z"]),
        Case(schedule: "0 0 1 6 *", zone: "UTC", after: "2026-11-26T00:00:00Z", next: ["2027-06-01T00:00:00Z"]),
        Case(schedule: "0 0 29 2 *", zone: "UTC", after: "2026-03-01T00:00:00Z", next: ["2028-02-29T00:00:00Z"]),       // a leap day is found
        Case(schedule: "5 4 * jan,jul mon-fri", zone: "UTC", after: "2026-06-30T23:00:00Z", next: ["2026-07-01T04:05:00Z", "2026-07-02T04:05:00Z", "2026-07-03T04:05:00Z", "2026-07-06T04:05:00Z"]),
        Case(schedule: "0 9 * * *", zone: "Asia/Kolkata", after: "2026-05-01T00:00:00Z", next: ["2026-05-01T03:30:00Z", "2026-05-02T03:30:00Z"]),
    ]

    static let macros: [Case] = [
        Case(schedule: "@daily", zone: "UTC", after: "2026-05-01T00:00:00Z", next: ["2026-05-02T00:00:00Z"]),
        Case(schedule: "@midnight", zone: "Europe/Berlin", after: "2026-05-01T00:00:00Z", next: ["2026-05-01T22:00:00Z"]),
        Case(schedule: "@weekly", zone: "UTC", after: "2026-03-10T00:00:00Z", next: ["2026-03-15T00:00:00Z", "2026-03-22T00:00:00Z"]),   // Sundays
        Case(schedule: "@monthly", zone: "America/New_York", after: "2026-02-15T00:00:00Z", next: ["2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z"]),
        Case(schedule: "@yearly", zone: "UTC", after: "2026-01-01T00:00:00Z", next: ["2027-01-01T00:00:00Z"]),
        Case(schedule: "@annually", zone: "Europe/Berlin", after: "2026-06-01T00:00:00Z", next: ["2026-12-31T23:00:00Z"]),
        // After the last change of the year (found in a demo): the next Monday, 03:00 CET.
        Case(schedule: "0 3 * * 1", zone: "Europe/Berlin", after: "2026-11-26T15:29:00Z", next: ["2026-11-30T02:00:00Z", "2026-12-07T02:00:00Z"]),
        Case(schedule: "0 3 * * 1", zone: "UTC", after: "2026-11-26T15:29:00Z", next: ["2026-11-30T03:00:00Z"]),
    ]

    static let dayRules: [Case] = [
        // Both day fields restricted: the 15th OR a Monday (2026-03-15 is a Sunday).
        Case(schedule: "0 0 15 * 1", zone: "UTC", after: "2026-03-10T00:00:00Z", next: ["2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z"]),
        // One restricted: that one alone decides.
        Case(schedule: "0 0 15 * *", zone: "UTC", after: "2026-03-10T00:00:00Z", next: ["2026-03-15T00:00:00Z", "2026-04-15T00:00:00Z"]),
        Case(schedule: "0 0 * * 1", zone: "UTC", after: "2026-03-10T00:00:00Z", next: ["2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z"]),
        // As in cron, a day field written from `*` ("*/2": Sun, Tue, Thu, Sat) is not restricted, so both must match.
        Case(schedule: "0 0 1 * */2", zone: "UTC", after: "2026-03-29T12:00:00Z", next: ["2026-08-01T00:00:00Z"]),
    ]

    static let daylightSaving: [Case] = [
        // America/New_York, 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00Z.
        Case(schedule: "30 2 * * *", zone: "America/New_York", after: "2026-03-07T12:00:00Z", next: ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
        Case(schedule: "0 2,3 * * *", zone: "America/New_York", after: "2026-03-08T05:00:00Z", next: ["2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z", "2026-03-09T07:00:00Z"]),
        Case(schedule: "*/30 * * * *", zone: "America/New_York", after: "2026-03-08T06:00:00Z", next: ["2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"]),
        Case(schedule: "@hourly", zone: "America/New_York", after: "2026-03-08T05:30:00Z", next: ["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"]),
        Case(schedule: "30 2 * * *", zone: "America/New_York", after: "2026-03-08T07:00:00Z", next: ["2026-03-09T06:30:00Z"]),
        // America/New_York, 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00Z.
        Case(schedule: "30 1 * * *", zone: "America/New_York", after: "2026-10-31T12:00:00Z", next: ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        Case(schedule: "30 1 * * *", zone: "America/New_York", after: "2026-11-01T05:30:00Z", next: ["2026-11-02T06:30:00Z"]),
        Case(schedule: "0 1-2 * * *", zone: "America/New_York", after: "2026-11-01T04:00:00Z", next: ["2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-02T06:00:00Z"]),
        Case(schedule: "@hourly", zone: "America/New_York", after: "2026-11-01T04:30:00Z", next: ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"]),
        Case(schedule: "*/30 * * * *", zone: "America/New_York", after: "2026-11-01T04:50:00Z", next: ["2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"]),
        // Europe/Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z.
        Case(schedule: "30 2 * * *", zone: "Europe/Berlin", after: "2026-03-28T12:00:00Z", next: ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        Case(schedule: "@hourly", zone: "Europe/Berlin", after: "2026-03-28T23:30:00Z", next: ["2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"]),
        // Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z.
        Case(schedule: "30 2 * * *", zone: "Europe/Berlin", after: "2026-10-24T12:00:00Z", next: ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        Case(schedule: "*/30 * * * *", zone: "Europe/Berlin", after: "2026-10-24T23:50:00Z", next: ["2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"]),
        // A weekly schedule stays at 03:00 local across the change: 08:00Z in EST, 07:00Z in EDT.
        Case(schedule: "0 3 * * 1", zone: "America/New_York", after: "2026-03-01T00:00:00Z", next: ["2026-03-02T08:00:00Z", "2026-03-09T07:00:00Z"]),
        Case(schedule: "0 3 * * 1", zone: "Europe/Berlin", after: "2026-03-22T00:00:00Z", next: ["2026-03-23T02:00:00Z", "2026-03-30T01:00:00Z"]),
        // Australia/Lord_Howe, 2026-04-05: 02:00 (+11) becomes 01:30 (+10:30) at 15:00Z; half an hour repeats.
        Case(schedule: "*/15 1 * * *", zone: "Australia/Lord_Howe", after: "2026-04-04T13:50:00Z", next: ["2026-04-04T14:00:00Z", "2026-04-04T14:15:00Z", "2026-04-04T14:30:00Z", "2026-04-04T14:45:00Z", "2026-04-05T14:30:00Z"]),
        // Australia/Lord_Howe, 2026-10-04: 02:00 (+10:30) becomes 02:30 (+11) at 15:30Z; half an hour is lost.
        Case(schedule: "15 2 * * *", zone: "Australia/Lord_Howe", after: "2026-10-03T12:00:00Z", next: ["2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"]),
        Case(schedule: "*/15 * * * *", zone: "Australia/Lord_Howe", after: "2026-04-04T14:20:00Z", next: ["2026-04-04T14:30:00Z", "2026-04-04T14:45:00Z", "2026-04-04T15:00:00Z", "2026-04-04T15:15:00Z", "2026-04-04T15:30:00Z"]),
    ]

    @Test(arguments: utcBasics + macros + dayRules + daylightSaving)
    func nextTicks(_ c: Case) throws {
        let schedule = try CronSchedule(parsing: c.schedule)
        let zone = try #require(TimeZone(identifier: c.zone))
        var found: [String] = []
        var date = try instant(c.after)
        while found.count < c.next.count, let tick = schedule.nextTick(after: date, in: zone) {
            found.append(iso(tick))
            date = tick
        }
        #expect(found == c.next)
        // The same ticks come from `ticks`, through the last one expected.
        let listed = schedule.ticks(after: try instant(c.after), through: try instant(try #require(c.next.last)), in: zone, limit: 100)
        #expect(listed.ticks.map(iso) == c.next)
        #expect(listed.total == c.next.count)
    }

    @Test func aFractionalInstantStillGivesTheNextWholeMinute() throws {
        let schedule = try CronSchedule(parsing: "* * * * *")
        let after = try instant("2026-05-01T10:00:00Z").addingTimeInterval(0.5)
        #expect(schedule.nextTick(after: after, in: .gmt).map(iso) == "2026-05-01T10:01:00Z")
    }

    @Test func anImpossibleScheduleAnswersNilQuickly() throws {
        let schedule = try CronSchedule(parsing: "0 0 30 2 *")
        let zone = try #require(TimeZone(identifier: "Europe/Berlin"))
        let start = ContinuousClock.now
        #expect(schedule.nextTick(after: try instant("2026-01-01T00:00:00Z"), in: zone) == nil)
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(schedule.ticks(after: try instant("2026-01-01T00:00:00Z"), through: try instant("2036-01-01T00:00:00Z"), in: zone, limit: 10).total == 0)
    }

    struct YearCase: Sendable, CustomTestStringConvertible {
        var schedule: String
        var zone: String
        var total: Int
        var testDescription: String { "\(schedule) in \(zone): \(total) in 2026" }
    }

    /// The whole local year 2026: the counts show each daylight saving rule at once.
    @Test(arguments: [
        YearCase(schedule: "* * * * *", zone: "UTC", total: 525_600),
        YearCase(schedule: "* * * * *", zone: "America/New_York", total: 525_600),   // every minute that happened
        YearCase(schedule: "@hourly", zone: "America/New_York", total: 8_760),         // 23 hours in March, 25 in November
        YearCase(schedule: "0 0-23 * * *", zone: "America/New_York", total: 8_759),    // restricted: 02:00 folds into 03:00, 01:00 once
        YearCase(schedule: "30 2 * * *", zone: "America/New_York", total: 365),        // once a day, the spring day included
        YearCase(schedule: "30 1 * * *", zone: "America/New_York", total: 365),        // once a day, the fall day included
        YearCase(schedule: "30 2 * * *", zone: "Europe/Berlin", total: 365),
        YearCase(schedule: "*/30 2 * * *", zone: "Europe/Berlin", total: 729),         // 2 a day; one on the spring day
        YearCase(schedule: "*/30 */2 * * *", zone: "Europe/Berlin", total: 8_760),     // `*/2` runs by elapsed time: 2 fewer in March, 2 more in October
    ])
    func aYearIsCountedWithoutListingIt(_ c: YearCase) throws {
        let schedule = try CronSchedule(parsing: c.schedule)
        let zone = try #require(TimeZone(identifier: c.zone))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        // (local 2026-01-01 00:00 - 1s, local 2027-01-01 00:00 - 1s]: exactly the instants of the local year.
        let from = try #require(calendar.date(from: DateComponents(year: 2026, month: 1, day: 1))).addingTimeInterval(-1)
        let through = try #require(calendar.date(from: DateComponents(year: 2027, month: 1, day: 1))).addingTimeInterval(-1)
        let start = ContinuousClock.now
        let result = schedule.ticks(after: from, through: through, in: zone, limit: 10)
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(result.total == c.total)
        #expect(result.ticks.count == 10)
        #expect(result.ticks == result.ticks.sorted())
        // The ten are the newest: the last is the last tick of the year, and none follows it.
        let last = try #require(result.ticks.last)
        #expect(schedule.nextTick(after: last, in: zone).map { $0 > through } == true)
        #expect(schedule.nextTick(after: result.ticks[0], in: zone) == result.ticks[1])
    }

    @Test func ticksKeepTheNewestWhenThereAreMore() throws {
        let schedule = try CronSchedule(parsing: "*/30 * * * *")
        let zone = try #require(TimeZone(identifier: "America/New_York"))
        let found = schedule.ticks(after: try instant("2026-11-01T04:00:00Z"), through: try instant("2026-11-01T06:30:00Z"), in: zone, limit: 3)
        #expect(found.ticks.map(iso) == ["2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z"])
        #expect(found.total == 5)   // 04:30, 05:00, 05:30, 06:00, 06:30: after is out, through is in
        #expect(schedule.ticks(after: try instant("2026-11-01T04:00:00Z"), through: try instant("2026-11-01T06:30:00Z"), in: zone, limit: 0) == ([], 5))
        let none = schedule.ticks(after: try instant("2026-11-01T06:30:00Z"), through: try instant("2026-11-01T04:00:00Z"), in: zone, limit: 3)
        #expect(none.ticks.isEmpty && none.total == 0)
        // A gap tick is listed where it falls among the others.
        let spring = try CronSchedule(parsing: "0 2,3,4 * * *")
        let around = spring.ticks(after: try instant("2026-03-07T12:00:00Z"), through: try instant("2026-03-09T12:00:00Z"), in: zone, limit: 4)
        #expect(around.total == 5)   // the 8th: 03:00 EDT (once, for 02:00 and 03:00), 04:00; the 9th: 02:00, 03:00, 04:00
        #expect(around.ticks.map(iso) == ["2026-03-08T08:00:00Z", "2026-03-09T06:00:00Z", "2026-03-09T07:00:00Z", "2026-03-09T08:00:00Z"])
        let all = spring.ticks(after: try instant("2026-03-07T12:00:00Z"), through: try instant("2026-03-09T12:00:00Z"), in: zone, limit: 5)
        #expect(all.ticks.map(iso).first == "2026-03-08T07:00:00Z")
    }

    /// `ticks` and a chain of `nextTick` agree minute for minute across every change of 2026.
    @Test(arguments: ["*/7 * * * *", "15 1-3 * * *", "0,30 2 * * *", "@hourly", "59 23 * * 6,0", "*/20 */3 * * *"])
    func ticksAndNextTickAgree(_ text: String) throws {
        let schedule = try CronSchedule(parsing: text)
        for name in ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"] {
            let zone = try #require(TimeZone(identifier: name))
            for (from, through) in [("2026-03-06T00:00:00Z", "2026-03-31T00:00:00Z"), ("2026-04-03T00:00:00Z", "2026-04-06T00:00:00Z"),
                                    ("2026-10-02T00:00:00Z", "2026-10-06T00:00:00Z"),
                                    ("2026-10-23T00:00:00Z", "2026-11-03T00:00:00Z")] {
                let (start, end) = (try instant(from), try instant(through))
                var chain: [Date] = []
                var date = start
                while let tick = schedule.nextTick(after: date, in: zone), tick <= end {
                    chain.append(tick)
                    date = tick
                }
                let listed = schedule.ticks(after: start, through: end, in: zone, limit: .max)
                #expect(listed.ticks == chain, "\(text) in \(name) from \(from)")
                #expect(listed.total == chain.count, "\(text) in \(name) from \(from)")
            }
        }
    }

    private func instant(_ text: String) throws -> Date {
        try #require(ISO8601DateFormatter().date(from: text), "not ISO 8601: \(text)")
    }

    private func iso(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}

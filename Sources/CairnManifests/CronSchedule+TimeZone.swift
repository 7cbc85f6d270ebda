public import Foundation

// A schedule is read on the local wall clock of an IANA time zone. Between two offset changes
// of the zone the wall clock is the instant shifted by a constant offset, so the ticks of such
// a stretch ("segment") are the matching whole minutes of a plain calendar with no zone,
// shifted back. Only where two segments meet does daylight saving need a rule:
//
// - Spring forward (a gap: the offset grows, the wall clock jumps ahead). A schedule whose
//   hour field is restricted fires once, at the first instant after the gap, when any wall
//   time inside the gap matches; it never fires twice at that instant. A schedule whose hour
//   field is `*` or `*/n` has no ticks in the gap: those minutes never happened.
// - Fall back (an overlap: the offset shrinks, a stretch of wall clock repeats). A restricted
//   schedule fires at the first occurrence of a wall time only; a `*` or `*/n` hour schedule
//   fires in both passes, running by elapsed time.
//
// "Restricted" is cron's own test (cronie, Vixie cron): the hour field does not begin with `*`.

extension CronSchedule {
    /// The first tick strictly after `date` when the schedule is read in `timeZone`; nil when none within about 4 years.
    ///
    /// The schedule matches the local wall-clock time in `timeZone`. Around daylight saving
    /// changes it behaves as cronie and Vixie cron users expect:
    /// - Spring forward (a local hour does not exist): a schedule whose hour field is
    ///   restricted (not written `*` or `*/n`) and that matches a local time inside the gap
    ///   fires once, at the first instant after the gap ("30 2 * * *" in America/New_York on
    ///   2026-03-08 fires at 03:00 EDT, 07:00 UTC), and not a second time if it also matches
    ///   that instant. A schedule whose hour field is `*` or `*/n` ("*/15 * * * *", `@hourly`)
    ///   has no ticks in the gap: those minutes never happened.
    /// - Fall back (a local hour repeats): a restricted schedule fires once, at the first
    ///   occurrence ("30 1 * * *" in America/New_York on 2026-11-01 fires at 01:30 EDT, 05:30
    ///   UTC, only). A schedule whose hour field is `*` or `*/n` fires in both passes of the
    ///   repeated hour (`@hourly` fires at 05:00 and at 06:00 UTC that night).
    ///
    /// The search skips whole months, days and hours that cannot match, so a schedule that
    /// never fires ("0 0 30 2 *") answers nil after a few hundred steps.
    public func nextTick(after date: Date, in timeZone: TimeZone) -> Date? {
        let zone = ZonedCron(self, timeZone)
        let after = date.timeIntervalSince1970
        let horizon = after + Self.searchHorizon
        var segment = zone.segment(containing: after)
        while true {
            if let start = segment.start, Double(start) > after, zone.hasGapTick(segment) {
                return Date(timeIntervalSince1970: Double(start))
            }
            let low = max(zone.lowestWall(of: segment), wallMinute(strictlyAfter: after + Double(segment.offset)))
            let high = min(segment.end.map { $0 + segment.offset } ?? .max, Int(horizon) + segment.offset)
            if low < high, let wall = zone.clock.first(from: low, before: high) {
                return Date(timeIntervalSince1970: Double(wall - segment.offset))
            }
            guard let next = zone.segment(following: segment), let start = next.start, Double(start) < horizon else {
                return nil
            }
            segment = next
        }
    }

    /// The ticks in (after, through], oldest first, at most `limit` (the NEWEST `limit` when there are more), and how many there were in all.
    ///
    /// Ticks are those of ``nextTick(after:in:)``, daylight saving rules included. The total is
    /// exact and cheap: whole matching days are counted at once and the rest an hour at a time,
    /// never listed, so a year of "* * * * *" takes a few hundred steps and builds only `limit`
    /// dates. An empty range (`through` not after `after`) has no ticks.
    public func ticks(after: Date, through: Date, in timeZone: TimeZone, limit: Int) -> (ticks: [Date], total: Int) {
        let (from, to) = (after.timeIntervalSince1970, through.timeIntervalSince1970)
        guard from < to else { return ([], 0) }
        let zone = ZonedCron(self, timeZone)

        // The segments that meet the range, each with the walls of its ticks inside the range.
        var parts: [(segment: ZonedCron.Segment, gapTick: Bool, low: Int, high: Int)] = []
        var segment = zone.segment(containing: from)
        while true {
            let gapTick = segment.start.map { Double($0) > from && zone.hasGapTick(segment) } ?? false
            let low = max(zone.lowestWall(of: segment), wallMinute(strictlyAfter: from + Double(segment.offset)))
            let high = min(segment.end.map { $0 + segment.offset } ?? .max, wallMinute(strictlyAfter: to + Double(segment.offset)))
            parts.append((segment, gapTick, low, high))
            guard let next = zone.segment(following: segment), let start = next.start, Double(start) <= to else { break }
            segment = next
        }

        let total = parts.reduce(0) { sum, part in
            sum + (part.gapTick ? 1 : 0) + (part.low < part.high ? zone.clock.count(from: part.low, before: part.high) : 0)
        }
        var newest: [Date] = []   // newest first
        collecting: for part in parts.reversed() {
            var high = part.high
            while newest.count < limit, part.low < high, let wall = zone.clock.last(from: part.low, before: high) {
                newest.append(Date(timeIntervalSince1970: Double(wall - part.segment.offset)))
                high = wall
            }
            if newest.count < limit, part.gapTick, let start = part.segment.start {
                newest.append(Date(timeIntervalSince1970: Double(start)))
            }
            if newest.count >= limit { break collecting }
        }
        return (newest.reversed(), total)
    }

    /// How far ``nextTick(after:in:)`` looks: four years and a day, so a leap day is found.
    static let searchHorizon: TimeInterval = (4 * 366 + 1) * 86_400

    /// Whether the hour field is written `*` or `*/n`, cron's test for a job that runs by elapsed time across daylight saving changes.
    var hourFieldIsWildcard: Bool {
        let trimmed = text.trimmedOfWhitespace
        if trimmed.hasPrefix("@") { return hours.count == 24 }   // of the macros only @hourly has every hour
        let fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
        return fields.count == 5 && fields[1].hasPrefix("*")
    }
}

/// The first whole wall minute (seconds, a multiple of 60) strictly after `wall`.
private func wallMinute(strictlyAfter wall: Double) -> Int {
    Int((wall / 60).rounded(.down)) * 60 + 60
}

/// A schedule read in one time zone: the zone's offset segments and the rules where they meet.
private struct ZonedCron {
    /// A stretch of time with one offset: instants in [start, end). `start` is nil when the
    /// stretch began before the look-back window (no rule at its start can matter then), `end`
    /// nil when the zone has no later change.
    struct Segment {
        var start: Int?
        var end: Int?
        var offset: Int
        var previousOffset: Int
    }

    /// How far back to look for the change that began the segment holding an instant: longer
    /// than any repeated stretch of wall clock in the tz database.
    static let lookBack: TimeInterval = 2 * 86_400

    let clock: WallClock
    let zone: TimeZone
    let hourIsWildcard: Bool

    init(_ schedule: CronSchedule, _ zone: TimeZone) {
        clock = WallClock(schedule)
        self.zone = zone
        hourIsWildcard = schedule.hourFieldIsWildcard
    }

    func segment(containing instant: TimeInterval) -> Segment {
        var start: Int?
        var change = nextChange(after: instant - Self.lookBack)
        while let at = change, Double(at) <= instant {
            start = at
            change = nextChange(after: Double(at))
        }
        let current = zone.secondsFromGMT(for: Date(timeIntervalSince1970: instant))
        return Segment(start: start, end: change, offset: current,
                       previousOffset: start.map { offset(at: $0 - 1) } ?? current)
    }

    func segment(following segment: Segment) -> Segment? {
        guard let start = segment.end else { return nil }
        return Segment(start: start, end: nextChange(after: Double(start)), offset: offset(at: start),
                       previousOffset: segment.offset)
    }

    /// The lowest wall time whose tick belongs to `segment`: after a fall back, a restricted
    /// schedule skips the wall times the previous segment already showed.
    func lowestWall(of segment: Segment) -> Int {
        guard let start = segment.start else { return .min }
        let first = start + (hourIsWildcard ? segment.offset : max(segment.offset, segment.previousOffset))
        // The gap tick stands for the first instant of the segment; its wall time must not fire again.
        return hasGapTick(segment) ? max(first, start + segment.offset + 1) : first
    }

    /// Whether a restricted schedule fires at the start of `segment` for wall times lost in a spring-forward gap.
    func hasGapTick(_ segment: Segment) -> Bool {
        guard !hourIsWildcard, let start = segment.start, segment.offset > segment.previousOffset else { return false }
        return clock.first(from: start + segment.previousOffset, before: start + segment.offset) != nil
    }

    private func offset(at instant: Int) -> Int {
        zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant)))
    }

    /// The next change of the zone's offset or daylight saving state strictly after `instant`.
    private func nextChange(after instant: TimeInterval) -> Int? {
        guard let date = zone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: instant)) else { return nil }
        let at = Int(date.timeIntervalSince1970.rounded(.up))
        return Double(at) > instant ? at : Int(instant.rounded(.down)) + 1
    }
}

/// Cron matching on a wall clock with no zone: a time is seconds since 1970-01-01 00:00 on
/// that clock, every day has 86,400 seconds, and the calendar is the Gregorian one.
private struct WallClock {
    static let day = 86_400, hour = 3_600, minute = 60

    let schedule: CronSchedule
    let minutes: [Int]   // ascending
    let calendar: Calendar

    init(_ schedule: CronSchedule) {
        self.schedule = schedule
        minutes = schedule.minutes.sorted()
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        self.calendar = calendar
    }

    /// The first matching whole minute in [low, high).
    func first(from low: Int, before high: Int) -> Int? {
        var wall = Self.floor(low + Self.minute - 1, Self.minute)
        while wall < high {
            let (year, month, day) = date(of: wall)
            let dayStart = Self.floor(wall, Self.day), hourStart = Self.floor(wall, Self.hour)
            if !schedule.months.contains(month) {
                wall = monthStart(year: year, month: month + 1) ?? .max
            } else if !dayMatches(day: day, dayStart: dayStart) {
                wall = dayStart + Self.day
            } else if !schedule.hours.contains((wall - dayStart) / Self.hour) {
                wall = hourStart + Self.hour
            } else if let minute = minutes.first(where: { hourStart + $0 * Self.minute >= wall }) {
                let match = hourStart + minute * Self.minute
                return match < high ? match : nil
            } else {
                wall = hourStart + Self.hour
            }
        }
        return nil
    }

    /// The last matching whole minute in [low, high).
    func last(from low: Int, before high: Int) -> Int? {
        var wall = Self.floor(high - 1, Self.minute)
        while wall >= low {
            let (year, month, day) = date(of: wall)
            let dayStart = Self.floor(wall, Self.day), hourStart = Self.floor(wall, Self.hour)
            if !schedule.months.contains(month) {
                wall = monthStart(year: year, month: month).map { $0 - Self.minute } ?? .min
            } else if !dayMatches(day: day, dayStart: dayStart) {
                wall = dayStart - Self.minute
            } else if !schedule.hours.contains((wall - dayStart) / Self.hour) {
                wall = hourStart - Self.minute
            } else if let minute = minutes.last(where: { hourStart + $0 * Self.minute <= wall }) {
                let match = hourStart + minute * Self.minute
                return match >= low ? match : nil
            } else {
                wall = hourStart - Self.minute
            }
        }
        return nil
    }

    /// How many whole minutes in [low, high) match, counting whole days and hours at once.
    func count(from low: Int, before high: Int) -> Int {
        var total = 0
        var wall = Self.floor(low + Self.minute - 1, Self.minute)
        while wall < high {
            let (year, month, day) = date(of: wall)
            let dayStart = Self.floor(wall, Self.day), hourStart = Self.floor(wall, Self.hour)
            if !schedule.months.contains(month) {
                wall = monthStart(year: year, month: month + 1) ?? .max
            } else if !dayMatches(day: day, dayStart: dayStart) {
                wall = dayStart + Self.day
            } else if wall == dayStart, wall + Self.day <= high {
                total += schedule.hours.count * minutes.count
                wall += Self.day
            } else if !schedule.hours.contains((wall - dayStart) / Self.hour) {
                wall = hourStart + Self.hour
            } else {
                let end = min(hourStart + Self.hour, high)
                total += minutes.count(where: { hourStart + $0 * Self.minute >= wall && hourStart + $0 * Self.minute < end })
                wall = hourStart + Self.hour
            }
        }
        return total
    }

    /// Day of month and day of week: both must match, or either when both fields are restricted (as in cron).
    private func dayMatches(day: Int, dayStart: Int) -> Bool {
        let weekday = ((dayStart / Self.day) % 7 + 7 + 4) % 7   // 1970-01-01 was a Thursday; 0 is Sunday
        let ofMonth = schedule.daysOfMonth.contains(day), ofWeek = schedule.daysOfWeek.contains(weekday)
        return schedule.dayFieldsBothRestricted ? ofMonth || ofWeek : ofMonth && ofWeek
    }

    private func date(of wall: Int) -> (year: Int, month: Int, day: Int) {
        let parts = calendar.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: Double(wall)))
        return (parts.year ?? 1970, parts.month ?? 1, parts.day ?? 1)
    }

    /// The first second of a month; `month` may be 13 (January of the next year).
    private func monthStart(year: Int, month: Int) -> Int? {
        let components = month > 12 ? DateComponents(year: year + 1, month: 1, day: 1) : DateComponents(year: year, month: month, day: 1)
        return calendar.date(from: components).map { Int($0.timeIntervalSince1970) }
    }

    /// `value / divisor` rounded down, times `divisor` (times before 1970 are negative).
    private static func floor(_ value: Int, _ divisor: Int) -> Int {
        let quotient = value / divisor
        return (value % divisor < 0 ? quotient - 1 : quotient) * divisor
    }
}

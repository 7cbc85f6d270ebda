public import CairnManifests
public import Foundation

/// What a schedule has handled so far; the controller keeps it with the object's status.
public struct ScheduleState: Codable, Hashable, Sendable {
    /// Ticks at or before this instant were handled (run, queued or dropped). nil: never evaluated.
    public var through: Date?
    /// Ticks due and not yet started (oldest first), e.g. under Forbid while a run is in flight, or catchup: all.
    public var pending: [Date]

    public init(through: Date? = nil, pending: [Date] = []) {
        self.through = through
        self.pending = pending
    }
}

/// What one ``ScheduleClock/advance(_:schedule:timeZone:catchup:now:)`` found.
public struct ScheduleAdvance: Hashable, Sendable {
    /// Ticks that became due in this call, oldest first; they were appended to `pending`.
    public var newlyDue: [Date]
    /// Ticks dropped by the catchup policy or the bound: missed ticks the policy does not run,
    /// due ticks beyond the bound, and pending ticks a newer one replaced.
    public var dropped: Int
    /// Ticks found in this call that were late (older than ``ScheduleClock/lateness``), whatever became of them.
    public var missed: Int
    /// The next tick after `now`, for the requeue; nil when the schedule has none within about 4 years.
    public var nextTick: Date?

    public init(newlyDue: [Date] = [], dropped: Int = 0, missed: Int = 0, nextTick: Date? = nil) {
        self.newlyDue = newlyDue
        self.dropped = dropped
        self.missed = missed
        self.nextTick = nextTick
    }
}

/// The schedule's state machine: which ticks are due at `now`, under a catchup policy. Pure:
/// no I/O and no reading of the clock; time comes in as `now`.
///
/// - The first evaluation (`through == nil`) makes nothing due: a new schedule does not fire
///   for the past. It records `through = now`.
/// - Later evaluations look at the ticks in (through, now]. A tick with `now - tick <=
///   lateness` is on time; an older one was missed (Cairn was down, or the object suspended).
///   - `none`: missed ticks are dropped, on-time ticks are due.
///   - `latest`: when any tick was found, exactly one is due, the newest; the others are dropped.
///   - `all`: every tick is due, and `pending` keeps at most the newest ``catchupBound``.
///   Under `none` and `latest` `pending` holds at most one tick: a newer due tick replaces an
///   older pending one, which counts as dropped. Due ticks are appended to `pending` (never
///   twice) and `through` becomes `now`.
/// - When `now` is before `through` (the wall clock was set back), nothing is due and the state
///   does not change: the ticks up to `through` were handled already, and `nextTick` is the
///   first tick after `through`.
public enum ScheduleClock {
    /// A tick handled within 5 minutes of its time is on time.
    public static let lateness: TimeInterval = 300
    /// catchup: all keeps at most the newest 10 missed ticks.
    public static let catchupBound = 10

    public static func advance(_ state: inout ScheduleState, schedule: CronSchedule, timeZone: TimeZone,
                               catchup: TrainingScheduleSpec.Catchup, now: Date) -> ScheduleAdvance {
        guard let through = state.through else {
            state.through = now
            return ScheduleAdvance(nextTick: schedule.nextTick(after: now, in: timeZone))
        }
        guard now >= through else {
            return ScheduleAdvance(nextTick: schedule.nextTick(after: through, in: timeZone))
        }

        // The newest ticks are enough: at most 6 can be on time, and `all` keeps only the bound.
        let found = schedule.ticks(after: through, through: now, in: timeZone, limit: catchupBound + 16)
        let onTime = found.ticks.filter { now.timeIntervalSince($0) <= lateness }
        let missed = found.total - onTime.count
        let due: [Date] = switch catchup {
        case .none: onTime
        case .latest: found.ticks.last.map { [$0] } ?? []
        case .all: found.ticks
        }
        var dropped = found.total - due.count

        let fresh = due.filter { !state.pending.contains($0) }
        state.pending.append(contentsOf: fresh)
        let keep = catchup == .all ? catchupBound : 1
        if state.pending.count > keep {
            dropped += state.pending.count - keep
            state.pending.removeFirst(state.pending.count - keep)
        }
        state.through = now
        return ScheduleAdvance(newlyDue: fresh.filter { state.pending.contains($0) }, dropped: dropped, missed: missed,
                               nextTick: schedule.nextTick(after: now, in: timeZone))
    }

    /// The oldest pending tick, taken out of `state`; nil when none is pending.
    public static func take(_ state: inout ScheduleState) -> Date? {
        state.pending.isEmpty ? nil : state.pending.removeFirst()
    }
}

public import Foundation

/// Cooldown and de-duplication for one threshold's action (retrain, rollback, alert): at most
/// one action per `cooldown`, however often the metric flaps, and one action per firing.
///
/// Pure and Codable, kept beside the ``AlertState`` across restarts. The controller asks it on
/// every evaluation that finds the alert firing, passing the firing's `since`:
/// - a firing that already acted is a ``Decision/duplicate`` (the same firing seen again, after
///   a restart or on the next tick), never a second action;
/// - a new firing within `cooldown` of the last action waits (``Decision/coolingDown(until:)``);
///   if it is still firing when the cooldown ends, it acts then;
/// - otherwise it acts, and the gate records the time and the firing.
/// A clock set back (now before the last action) counts as within the cooldown.
public struct ActionGate: Sendable, Codable, Hashable {
    public enum Decision: Sendable, Hashable {
        case act
        case duplicate
        case coolingDown(until: Date)
    }

    public var cooldown: TimeInterval
    public private(set) var lastAction: Date?
    /// The `since` of the firing the last action was for.
    public private(set) var lastFiring: Date?

    public init(cooldown: TimeInterval) {
        self.cooldown = cooldown
    }

    public mutating func decide(firingSince: Date, at now: Date) -> Decision {
        if lastFiring == firingSince { return .duplicate }
        if let lastAction {
            let elapsed = now.timeIntervalSince(lastAction)
            if elapsed < 0 || elapsed < cooldown { return .coolingDown(until: lastAction.addingTimeInterval(cooldown)) }
        }
        lastAction = now
        lastFiring = firingSince
        return .act
    }
}

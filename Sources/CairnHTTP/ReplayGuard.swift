import Synchronization

/// The delivery ids seen lately, so a replayed delivery is not acted on twice. Bounded: it
/// keeps the newest `capacity` ids (forges retry within hours, and a daemon sees far fewer
/// pushes than that), forgetting the oldest first. Held in memory: a restarted daemon has
/// passed over the branch anyway, so a delivery replayed after it costs at most one pass.
public final class ReplayGuard: Sendable {
    private struct State {
        var seen: Set<String> = []
        var order: [String] = []
        /// Where the oldest id is in `order`, used as a ring once it is full.
        var oldest = 0
    }

    private let state = Mutex(State())
    public let capacity: Int

    public init(capacity: Int = 10_000) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// Records `id`; false when it was already recorded.
    public func firstSight(of id: String) -> Bool {
        state.withLock { state in
            guard state.seen.insert(id).inserted else { return false }
            if state.order.count < capacity {
                state.order.append(id)
            } else {
                state.seen.remove(state.order[state.oldest])
                state.order[state.oldest] = id
                state.oldest = (state.oldest + 1) % capacity
            }
            return true
        }
    }

    public var count: Int { state.withLock { $0.seen.count } }
}

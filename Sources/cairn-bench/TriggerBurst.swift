import CairnEngine
import Foundation
import Logging

/// Counts passes, from whichever thread the engine loop runs on.
final class PassCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}

extension CairnBench {
    /// Runs the daemon's engine loop over the reconciled repository and sends it 10,000
    /// triggers at once, as a storm of webhooks would: how many passes do they cost?
    func measureTriggerBurst(engine: Engine, logger: Logger) async throws -> Result {
        let triggers = Triggers()
        let passes = PassCount()
        let service = EngineService(engine: engine, triggers: triggers, interval: .seconds(3600), logger: logger,
                                    onPass: { _ in passes.increment() })
        let loop = Task { try await service.run() }
        // The loop's own first pass (on start) comes before the burst.
        while passes.value == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let started = Date()
        for _ in 0..<10_000 { triggers.send(.webhook) }
        triggers.finish()
        try await loop.value
        let elapsed = Date().timeIntervalSince(started)
        return Result(name: "10,000 triggers in a burst", seconds: elapsed, target: nil,
                      note: "\(passes.value - 1) pass(es) run for them (single flight, bursts coalesce)")
    }
}

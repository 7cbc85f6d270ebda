import CairnCLI
import CairnCore
import CairnEngine
import CairnManifests
import CairnTestSupport
import Foundation
import Logging
import Testing

/// A FeaturePipeline controller that holds its pass until the test lets it go.
struct GatedController: Controller {
    static let kind = Kind.featurePipeline
    let entered: AsyncStream<Void>.Continuation
    let release: AsyncStream<Void>

    func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        entered.yield()
        for await _ in release { break }
        return .notImplemented("gated")
    }
}

final class PassCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}

@Suite struct EngineLoopTests {
    /// Single flight and coalescing: 10,000 triggers that arrive while a pass is in flight
    /// cost exactly one more pass, not 10,000.
    @Test func aBurstOfTriggersDuringAPassCostsOneMorePass() async throws {
        let setup = try Setup()
        let (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
        let gated = GatedController(entered: enteredContinuation, release: release)
        let engine = try Setup.engine(setup.repository.url, setup.state.url,
                                      controllers: Controllers.all.filter { type(of: $0).kind != .featurePipeline } + [gated])
        let triggers = Triggers()
        let passes = PassCounter()
        let service = EngineService(engine: engine, triggers: triggers, interval: .seconds(3600), logger: Logger(label: "test"),
                                    onPass: { _ in passes.increment() })
        let loop = Task { try await service.run() }

        for await _ in entered { break }  // the first pass is inside the controller now
        for _ in 0..<10_000 { triggers.send(.webhook) }
        #expect(passes.value == 0)
        releaseContinuation.finish()
        triggers.finish()
        try await loop.value
        #expect(passes.value == 2, "the pass in flight, then one for the whole burst")
        #expect(try setup.statusSubjects().count == 5)
    }
}

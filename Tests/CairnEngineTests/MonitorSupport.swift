import CairnCLI
import CairnCore
import CairnEngine
import CairnManifests
import CairnRun
import CairnStore
import CairnTestSupport
import Foundation
import Logging
import MonitorController
import Synchronization

/// A Monitor in the real engine: a git repository with a Model, a ModelDeployment served by a
/// deployer double, a TrainingSchedule (no executor unless given one), and a Monitor with one
/// threshold; a real `MetricHub`; a clock that moves only when the test moves it.
final class MonitorBench: @unchecked Sendable {
    static let monitor = ObjectRef(.monitor, "churn-quality")
    static let deployment = ObjectRef(.modelDeployment, "churn-prod")
    static let schedule = ObjectRef(.trainingSchedule, "churn-weekly")

    let repository: GitFixture
    let state: TemporaryDirectory
    /// In the past: `reconcileUntilSettled` sleeps until a retry falls due by the wall clock.
    let clock = ManualClock(Date(timeIntervalSince1970: 1_700_000_000))
    let deployer = DeployerDouble()
    let prometheus: PrometheusDouble
    let alerts: AlertRecorder?
    let usePrometheus: Bool
    private(set) var hub = MetricHub()
    private(set) var engine: Engine!
    private(set) var store: Store!
    var execution: Execution?

    static func monitorYAML(_ threshold: String, source: String = "{push: {}}") -> String {
        """
        apiVersion: cairn/v1
        kind: Monitor
        metadata: {name: churn-quality}
        spec:
          deployment: churn-prod
          interval: 30s
          thresholds:
            - \(threshold)
          source: \(source)

        """
    }

    static func modelYAML(production: Int?) -> String {
        """
        apiVersion: cairn/v1
        kind: Model
        metadata: {name: churn}
        spec:
          stages: [production]
          assignments: \(production.map { "{production: \($0)}" } ?? "{}")
          policy: {requireGate: false, strictOrder: false}

        """
    }

    static let deploymentYAML = """
        apiVersion: cairn/v1
        kind: ModelDeployment
        metadata: {name: churn-prod}
        spec:
          model: churn
          stage: production
          target:
            process: {command: [python3, serve.py], port: 8601}

        """

    static let trainingYAML = """
        apiVersion: cairn/v1
        kind: TrainingSchedule
        metadata: {name: churn-weekly}
        spec:
          model: churn
          command: [python3, train.py, model.json, metrics.json]
          outputs: {model: model.json, metrics: metrics.json}

        """

    /// `threshold` is one flow-style threshold; versions 1 to 3 of churn are in the registry,
    /// trained by churn-weekly, and `serving` holds production.
    init(threshold: String, source: String = "{push: {}}", serving: Int = 3, prometheus: Bool = false,
         alerts: AlertRecorder? = nil) throws {
        repository = try GitFixture()
        state = try TemporaryDirectory("cairn-monitor-engine")
        self.prometheus = PrometheusDouble(clock: clock)
        usePrometheus = prometheus
        self.alerts = alerts
        try repository.commit(["model.yaml": Self.modelYAML(production: serving), "deployment.yaml": Self.deploymentYAML,
                               "training.yaml": Self.trainingYAML, "monitor.yaml": Self.monitorYAML(threshold, source: source),
                               "serve.py": "print('serving')\n", "train.py": "print('training')\n"],
                              message: "a monitored deployment")
        try makeEngine()
        for number in 1...3 { try register(number) }
    }

    /// For a bench whose repository the test commits itself (a real training).
    init(execution: Bool) throws {
        repository = try GitFixture()
        state = try TemporaryDirectory("cairn-monitor-engine")
        prometheus = PrometheusDouble(clock: clock)
        usePrometheus = false
        alerts = nil
        try makeEngine(withExecution: execution)
    }

    func register(_ number: Int) throws {
        let lineage = Lineage(schedule: Self.schedule.name, sourceCommit: "c", runID: "r\(number)", runKey: "k\(number)", trigger: "inputs",
                              triggerID: nil, command: ["true"], params: "{}", environment: [], featurePipeline: nil, features: [:],
                              code: [:], data: [:], program: nil, startedAt: nil, finishedAt: nil)
        try store.register(ModelVersion(model: "churn", version: number,
                                        artifact: Artifact(kind: .file, digest: ContentHash.sha256(of: Data([UInt8(number)])), size: 1),
                                        artifactPath: "model.json", metrics: [:], gate: GateVerdict(rules: []),
                                        lineage: lineage, registeredAt: clock.now))
    }

    private func makeEngine(withExecution: Bool = false) throws {
        let store = try Store(directory: state.url)
        if withExecution {
            let artifacts = try ArtifactStore(root: state.appending("artifacts"))
            let policy = ExecutionPolicy(maxRuns: 2)
            let executor = try LocalExecutor(stateDirectory: state.url, ledger: store, artifacts: artifacts,
                                             source: GitCheckout(repository: repository.url), policy: policy,
                                             supervisor: [try cairnExecutable(), "_supervise"], environment: ProcessInfo.processInfo.environment,
                                             logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            execution = Execution(executor: executor, artifacts: artifacts, hostFiles: LocalHostFiles(policy: policy, cache: store), policy: policy)
        }
        let services = MonitorServices(hub: hub, prometheus: usePrometheus ? prometheus : nil, alerts: alerts)
        let clock = self.clock
        engine = try Engine(source: .local(repository.url), stateDirectory: state.url, configuration: ReconcilerConfiguration(),
                            controllers: try ControllerRegistry(Controllers.all(monitors: services)), execution: execution,
                            deployer: deployer, store: store, push: false,
                            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), now: { clock.now }) { _, _ in }
        self.store = store
    }

    /// A restarted daemon: a new engine on the same state directory and repository, and a new
    /// (empty) hub, as the samples are held in memory only.
    func restart() throws {
        hub = MetricHub()
        try makeEngine()
    }

    /// One pass at the clock's time.
    func pass() async throws {
        try await engine.reconcileOnce()
    }

    /// Moves the clock, pushes `samples` (each at the new time), and passes.
    func tick(_ seconds: TimeInterval = 30, samples: [Double] = [], version: Int? = nil) async throws {
        clock.advance(by: seconds)
        if !samples.isEmpty { _ = push(samples, version: version) }
        try await pass()
    }

    @discardableResult
    func push(_ values: [Double], metric: String = "accuracy", version: Int? = nil, deployment: String = "churn-prod") -> MetricIngestResult {
        let labels = version.map { ["version": String($0)] } ?? [:]
        return hub.ingest(deployment: deployment, samples: values.map { MetricSample(metric: metric, value: $0, time: clock.now, labels: labels) },
                          receivedAt: clock.now)
    }

    func status(_ ref: ObjectRef = MonitorBench.monitor) throws -> ObjectStatus {
        guard let status = try store.object(ref) else { throw BenchError(description: "\(ref) has no status") }
        return status
    }

    var reason: String { (try? status().reason) ?? "none" }
    var message: String { (try? status().primaryMessage) ?? "" }

    /// The Monitor's status commits' subjects, oldest first.
    func monitorSubjects() throws -> [String] {
        try repository.git(["log", "--reverse", "--format=%s", "cairn/status", "--", "Monitor/churn-quality.yaml"])
            .split(separator: "\n").map(String.init)
    }

    /// The monitor's retrain requests still waiting on the schedule (no executor consumes them).
    func retrainRequests() throws -> [TriggerRequest] {
        try store.triggers(of: Self.schedule).filter { $0.source == TriggerRequest.monitorSource }
    }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
}

/// A Prometheus that answers what the test says: a value (timestamped now), an empty vector,
/// or an error, as a server that is down would.
final class PrometheusDouble: PrometheusQuerying {
    enum Answer: Sendable {
        case value(Double)
        case empty
        case down(String)
    }

    private let answer = Mutex<Answer>(.empty)
    private let queries = Mutex<[String]>([])
    let clock: ManualClock

    init(clock: ManualClock) {
        self.clock = clock
    }

    func answer(_ new: Answer) { answer.withLock { $0 = new } }
    var asked: [String] { queries.withLock { $0 } }

    func instantQuery(url: String, query: String, timeout: Duration) async throws -> (value: Double, time: Date)? {
        queries.withLock { $0.append(query) }
        switch answer.withLock({ $0 }) {
        case .value(let value): return (value, clock.now)
        case .empty: return nil
        case .down(let message): throw MetricSourceError(message)
        }
    }
}

/// Records the alerts a Monitor sends.
final class AlertRecorder: AlertSending {
    private let sent = Mutex<[MonitorAlert]>([])

    func send(_ alert: MonitorAlert) -> Bool {
        sent.withLock { $0.append(alert) }
        return true
    }

    var alerts: [MonitorAlert] { sent.withLock { $0 } }
}

import ArgumentParser
import AsyncHTTPClient
import CairnCore
import CairnEngine
import CairnGit
import CairnManifests
import CairnRun
import CairnServe
import CairnStore
import CairnCLI
import Foundation
import Logging
import NIOCore

/// Issue 13's figures: how long a merged assignment takes to serve beyond the server's own
/// start, how many requests fail across blue/green switches under load, and what Cairn's
/// proxy adds to a request.
struct DeployBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Time rollouts of a process deployment, count failed requests across switches, and measure the proxy's overhead.",
        discussion: """
        Makes a local repository with a Model (production assigned to version 1) and a process \
        ModelDeployment serving it with a small standard-library Python server, registers two \
        versions in a fresh state directory, and runs a real engine with the real serving \
        targets (no training: the versions are registered as a training would). Then measures:
          start        the server's own start, spawned directly: from spawn until it listens (a connect \
        tried every millisecond) and answers /healthz
          rollout      from the commit that moves production to the other version until the \
        proxy answers from it, as the engine does it (pass, blue/green switch, status commits), \
        --rollouts times without load; Cairn's part is rollout minus start (target < 100 ms)
          switches     --switches rollouts while --concurrency clients call POST /predict through \
        the proxy without pause: requests that failed (target 0)
          overhead     --requests sequential keep-alive requests through the proxy and straight \
        to a server of the same kind, interleaved in batches: the difference of the medians (target < 1 ms)

        Example:
          cairn-bench deploy --switches 20 --format json
        """)

    @Option(help: "Rollouts timed without load.")
    var rollouts: Int = 5

    @Option(help: "Blue/green switches under load.")
    var switches: Int = 20

    @Option(help: "Clients calling the proxy at once during the switches.")
    var concurrency: Int = 4

    @Option(help: "Requests per path (proxy, direct) for the overhead.")
    var requests: Int = 2_000

    @Option(help: "text or json.")
    var format: String = "text"

    @Flag(help: "Keep the fixture (repository and state) and print where it is.")
    var keep = false

    func validate() throws {
        if rollouts < 1 || switches < 1 || concurrency < 1 || requests < 10 {
            throw ValidationError("--rollouts, --switches and --concurrency must be at least 1, --requests at least 10")
        }
        if !["json", "text"].contains(format) { throw ValidationError("--format is json or text") }
    }

    func run() async throws {
        let fixture = try DeployFixture(keep: keep)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var report = DeployReport()
        do {
            try await fixture.start()
            progress("deploy: version 1 serves at 127.0.0.1:\(fixture.port)")
            report.serverStart = try await fixture.serverStartTimes(client: client, count: 5)
            progress("deploy: the server's own start, median \(milliseconds(median(report.serverStart)))")
            for round in 1...rollouts {
                report.rollouts.append(try await fixture.rollout(client: client))
                progress("deploy: rollout \(round)/\(rollouts): \(milliseconds(report.rollouts.last ?? 0))")
            }
            let load = LoadGenerator(client: client, port: fixture.port, concurrency: concurrency)
            load.start()
            for round in 1...switches {
                report.switchTimes.append(try await fixture.rollout(client: client))
                if round.isMultiple(of: 5) || round == switches { progress("deploy: switch \(round)/\(switches) under load, \(load.failed) failed so far") }
            }
            let tally = await load.stop()
            report.loadRequests = tally.total
            report.loadFailures = tally.failed
            report.loadFailureExample = tally.example
            (report.proxied, report.direct) = try await fixture.overhead(client: client, requests: requests)
        } catch {
            await fixture.stop()
            try? await client.shutdown()
            throw error
        }
        await fixture.stop()
        try await client.shutdown()
        report.fixture = keep ? fixture.root.path : nil
        if !keep { try? FileManager.default.removeItem(at: fixture.root) }
        try report.emit(format: format)
    }
}

/// The repository, state and engine the deploy benchmark drives.
final class DeployFixture: @unchecked Sendable {
    let root: URL
    let repositoryURL: URL
    let port: Int
    private let repository: Repository
    private let store: Store
    private let engine: Engine
    private let deployer: ServingDeployer
    private var production = 1
    private let signature = Signature(name: "Bench", email: "bench@example.com")

    static let server = """
        import json, math, os, sys
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        model = json.load(open(sys.argv[1]))
        version = os.environ.get("CAIRN_MODEL_VERSION", "?")
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            def reply(self, body):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            def do_GET(self):
                self.reply({"status": "ok", "version": version})
            def do_POST(self):
                features = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))["features"]
                z = model["bias"] + sum(w * v for w, v in zip(model["weights"], features))
                self.reply({"p": 1 / (1 + math.exp(-z)), "version": version})
            def log_message(self, *args):
                pass
        ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()

        """

    init(keep: Bool) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-bench-deploy-\(UUID().uuidString.prefix(8))")
        repositoryURL = root.appendingPathComponent("repo")
        let state = root.appendingPathComponent("state")
        port = try Loopback.freePort()
        try FileManager.default.createDirectory(at: repositoryURL, withIntermediateDirectories: true)
        repository = try Repository.create(at: repositoryURL, bare: false)
        store = try Store(directory: state)
        let artifacts = try ArtifactStore(root: state.appendingPathComponent("artifacts"))
        for version in 1...2 {
            let file = root.appendingPathComponent("model-\(version).json")
            try Data("{\"bias\": \(Double(version) / 10), \"weights\": [0.5, -0.25, 0.125]}".utf8).write(to: file)
            let artifact = try artifacts.store(file)
            let lineage = Lineage(schedule: "bench", sourceCommit: String(repeating: "0", count: 40), runID: "bench-\(version)",
                                  runKey: "sha256:bench\(version)", trigger: "manual", triggerID: nil, command: ["true"], params: "{}",
                                  environment: [], featurePipeline: nil, features: [:], code: [:], data: [:], program: nil,
                                  startedAt: nil, finishedAt: nil)
            try store.register(ModelVersion(model: "churn", version: version, artifact: artifact, artifactPath: "model.json",
                                            metrics: ["auc": 0.9], gate: GateVerdict(rules: []), lineage: lineage, registeredAt: Date()))
        }
        let logger = Logger(label: "cairn-bench", factory: { _ in SwiftLogNoOpLogHandler() })
        deployer = try ServingDeployer(environment: ServingEnvironment(
            directory: state.appendingPathComponent("serving"), artifacts: artifacts, source: GitCheckout(repository: repositoryURL),
            repositoryRoot: repositoryURL, dataRoots: [], processes: true, logger: logger))
        engine = try Engine(source: .local(repositoryURL), stateDirectory: state, configuration: ReconcilerConfiguration(),
                            controllers: try Controllers.registry(), deployer: deployer, store: store, push: false, logger: logger) { _, _ in }
    }

    private func manifests(production: Int) -> [String: Data?] {
        [
            "serve.py": Data(Self.server.utf8),
            "model.yaml": Data("""
                apiVersion: cairn/v1
                kind: Model
                metadata: {name: churn}
                spec:
                  stages: [production]
                  assignments: {production: \(production)}
                  policy: {requireGate: false, strictOrder: false}

                """.utf8),
            "deployment.yaml": Data("""
                apiVersion: cairn/v1
                kind: ModelDeployment
                metadata: {name: churn-prod}
                spec:
                  model: churn
                  stage: production
                  target:
                    process:
                      command: [python3, serve.py, "${CAIRN_MODEL_PATH}", "${CAIRN_PORT}"]
                      port: \(port)
                      health: {path: /healthz, timeout: 30s}

                """.utf8),
        ]
    }

    private func commit(production: Int) throws {
        let parent = try? repository.referenceTarget("refs/heads/main")
        var signature = signature
        signature.time = Date()
        let changes = parent == nil ? manifests(production: production) : ["model.yaml": manifests(production: production)["model.yaml"]!]
        let commit = try repository.createCommit(parent: parent, changes: changes, message: "production: \(production)\n", author: signature)
        try repository.updateReference("refs/heads/main", to: commit, expected: parent, logMessage: "bench")
    }

    func start() async throws {
        try commit(production: 1)
        let (_, settled) = try await engine.reconcileUntilSettled(timeout: .seconds(120))
        let status = try store.object(ObjectRef(.modelDeployment, "churn-prod"))
        guard settled, status?.isReady == true else {
            throw ValidationError("the deployment did not become Ready: \(status?.reason ?? "no status"): \(status?.primaryMessage ?? "")")
        }
    }

    /// Seconds from the commit that moves production to the other version until the proxy answers from it.
    func rollout(client: HTTPClient) async throws -> Double {
        production = production == 1 ? 2 : 1
        let started = ContinuousClock.now
        try commit(production: production)
        let (_, settled) = try await engine.reconcileUntilSettled(timeout: .seconds(120))
        guard settled, try await servedVersion(client: client) == "\(production)" else {
            let status = try store.object(ObjectRef(.modelDeployment, "churn-prod"))
            throw ValidationError("version \(production) did not serve: \(status?.reason ?? "no status"): \(status?.primaryMessage ?? "")")
        }
        return (ContinuousClock.now - started).seconds
    }

    private func servedVersion(client: HTTPClient) async throws -> String? {
        let response = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/healthz"), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 16)
        return (try? JSONSerialization.jsonObject(with: Data(String(buffer: body).utf8)) as? [String: Any])?["version"] as? String
    }

    /// The server's own start, spawned directly: seconds from spawn until /healthz answers.
    func serverStartTimes(client: HTTPClient, count: Int) async throws -> [Double] {
        var samples: [Double] = []
        for _ in 1...count {
            let (process, port, started) = try spawnServer()
            defer { process.stop(grace: .seconds(1)) }
            // A connect every millisecond until it listens (an HTTP client's refused connection
            // costs far more than that), then one health request to see it answer.
            while !Loopback.accepts(port: port) {
                if !process.isRunning { throw ValidationError("the server exited before it answered") }
                try await Task.sleep(for: .milliseconds(1))
            }
            guard try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/healthz"), timeout: .seconds(5)).status == .ok else {
                throw ValidationError("the server did not answer its health check")
            }
            samples.append((ContinuousClock.now - started).seconds)
        }
        return samples
    }

    private func spawnServer() throws -> (RunningProcess, Int, ContinuousClock.Instant) {
        let port = try Loopback.freePort()
        let model = root.appendingPathComponent("model-1.json").path
        // The same server as the deployment's, written beside the fixture (the repository's
        // commits are made in its object database, not its working tree).
        let script = root.appendingPathComponent("serve.py")
        if !FileManager.default.fileExists(atPath: script.path) { try Data(Self.server.utf8).write(to: script) }
        let started = ContinuousClock.now
        // The python3 the deployment runs: looked up on the runs' PATH, as the serving target does.
        let process = try Command(try LocalExecutor.resolve("python3", in: root), [script.path, model, "\(port)"], standardOutput: .discard,
                                  standardError: .discard).start()
        return (process, port, started)
    }

    /// Per-request seconds through the proxy and straight to a server of the same kind,
    /// sequential on one keep-alive connection each, interleaved in batches of 100.
    func overhead(client: HTTPClient, requests: Int) async throws -> (proxied: [Double], direct: [Double]) {
        let (process, directPort, _) = try spawnServer()
        defer { process.stop(grace: .seconds(1)) }
        var ready = false
        for _ in 0..<2_000 where !ready {
            ready = (try? await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(directPort)/healthz"), timeout: .seconds(1)))?.status == .ok
            if !ready { try await Task.sleep(for: .milliseconds(5)) }
        }
        var proxied: [Double] = []
        var direct: [Double] = []
        progress("overhead: \(requests) requests through the proxy and \(requests) straight to a server, in batches of 100")
        while proxied.count < requests {
            for _ in 0..<100 { proxied.append(try await timedPredict(client: client, port: port)) }
            for _ in 0..<100 { direct.append(try await timedPredict(client: client, port: directPort)) }
        }
        return (proxied, direct)
    }

    private func timedPredict(client: HTTPClient, port: Int) async throws -> Double {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/predict")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: "{\"features\": [1, 2, 3]}"))
        let started = ContinuousClock.now
        let response = try await client.execute(request, timeout: .seconds(5))
        _ = try await response.body.collect(upTo: 1 << 16)
        guard response.status == .ok else { throw ValidationError("a request for the overhead failed: HTTP \(response.status.code)") }
        return (ContinuousClock.now - started).seconds
    }

    func stop() async {
        await deployer.shutdown()
    }
}

/// Clients that call POST /predict through the proxy without pause, counting failures.
final class LoadGenerator: @unchecked Sendable {
    let client: HTTPClient
    let port: Int
    let concurrency: Int
    private let lock = NSLock()
    private var _total = 0
    private var _failed = 0
    private var example: String?
    private var tasks: [Task<Void, Never>] = []

    init(client: HTTPClient, port: Int, concurrency: Int) {
        self.client = client
        self.port = port
        self.concurrency = concurrency
    }

    var failed: Int { lock.withLock { _failed } }

    func start() {
        for _ in 0..<concurrency {
            tasks.append(Task { [self] in
                while !Task.isCancelled {
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/predict")
                    request.method = .POST
                    request.body = .bytes(ByteBuffer(string: "{\"features\": [1, 2, 3]}"))
                    var problem: String?
                    do {
                        let response = try await client.execute(request, timeout: .seconds(10))
                        _ = try await response.body.collect(upTo: 1 << 16)
                        if response.status != .ok { problem = "HTTP \(response.status.code)" }
                    } catch {
                        if Task.isCancelled { return }
                        problem = "\(error)"
                    }
                    lock.withLock {
                        _total += 1
                        if let problem {
                            _failed += 1
                            example = example ?? problem
                        }
                    }
                }
            })
        }
    }

    func stop() async -> (total: Int, failed: Int, example: String?) {
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        return lock.withLock { (_total, _failed, example) }
    }
}

struct DeployReport: TextReport {
    var machine = Machine.current
    var serverStart: [Double] = []
    var rollouts: [Double] = []
    var switchTimes: [Double] = []
    var loadRequests = 0
    var loadFailures = 0
    var loadFailureExample: String?
    var proxied: [Double] = []
    var direct: [Double] = []
    var fixture: String?

    var cairnPart: Double { max(0, median(rollouts) - median(serverStart)) }
    var overhead: Double { median(proxied) - median(direct) }

    enum CodingKeys: String, CodingKey {
        case machine, serverStart, rollouts, switchTimes, loadRequests, loadFailures, loadFailureExample, fixture
        case proxiedMedian, directMedian, overheadMedian, cairnPartMedian
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(machine, forKey: .machine)
        try container.encode(serverStart, forKey: .serverStart)
        try container.encode(rollouts, forKey: .rollouts)
        try container.encode(switchTimes, forKey: .switchTimes)
        try container.encode(loadRequests, forKey: .loadRequests)
        try container.encode(loadFailures, forKey: .loadFailures)
        try container.encodeIfPresent(loadFailureExample, forKey: .loadFailureExample)
        try container.encodeIfPresent(fixture, forKey: .fixture)
        try container.encode(median(proxied), forKey: .proxiedMedian)
        try container.encode(median(direct), forKey: .directMedian)
        try container.encode(overhead, forKey: .overheadMedian)
        try container.encode(cairnPart, forKey: .cairnPartMedian)
    }

    var text: String {
        var lines = ["Deployments (\(machine.build))"]
        lines.append("  server's own start (spawn → /healthz), median of \(serverStart.count)      \(milliseconds(median(serverStart)))")
        lines.append("  rollout (commit → proxy answers from the new version), median of \(rollouts.count)   \(milliseconds(median(rollouts)))")
        lines.append(String(format: "  Cairn's part of a rollout (rollout − start)              %@   target < 100 ms (%.0f%% of it)",
                            milliseconds(cairnPart), cairnPart / 0.1 * 100))
        lines.append("  \(switchTimes.count) switches under load: \(loadRequests) requests, \(loadFailures) failed   target 0"
                     + (loadFailureExample.map { " (first: \($0))" } ?? ""))
        lines.append("  per request, median: through the proxy \(milliseconds(median(proxied))), straight \(milliseconds(median(direct)))")
        lines.append(String(format: "  proxy overhead (difference of medians)                   %@   target < 1 ms (%.0f%% of it); ratio %.2f×",
                            milliseconds(overhead), overhead / 0.001 * 100, median(proxied) / max(median(direct), 1e-9)))
        if let fixture { lines.append("fixture kept in \(fixture)") }
        return lines.joined(separator: "\n")
    }
}

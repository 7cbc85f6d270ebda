import AsyncHTTPClient
import CairnCore
import CairnManifests
import CairnRun
@testable import CairnServe
import CairnTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// The model server the tests deploy: Python's standard library only. Flags make it slow to
/// start, never healthy, exit before it listens, crash after some requests, or
/// fail its health check (alive) after some requests.
let modelServer = #"""
import http.server, json, os, sys, time, argparse, hashlib

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--version", required=True)
parser.add_argument("--slow-start", type=float, default=0)
parser.add_argument("--never-healthy", action="store_true")
parser.add_argument("--exit-at-start", type=int, default=None)
parser.add_argument("--crash-after", type=int, default=0)
parser.add_argument("--sick-after", type=int, default=0)
args = parser.parse_args()

print(f"model server {args.version} starting on {args.port}", flush=True)
if args.exit_at_start is not None:
    print("refusing to start: the model is broken", flush=True)
    sys.exit(args.exit_at_start)
time.sleep(args.slow_start)
with open(args.model, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
served = 0

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle and delayed ACKs add 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        global served
        if self.path == "/healthz":
            sick = args.never_healthy or (args.sick_after and served >= args.sick_after)
            self.answer(503 if sick else 200, {"ok": not sick})
            return
        served += 1
        if args.crash_after and served > args.crash_after:
            print("crashing on purpose", flush=True)
            os._exit(7)
        self.answer(200, {"version": int(args.version), "sha256": digest, "path": self.path,
                          "token": os.environ.get("CAIRN_SERVE_TOKEN", "")})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.answer(200, {"version": int(args.version), "echo": body.decode()})

server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
print("listening", flush=True)
server.serve_forever()
"""#

/// One test's world: a temporary state directory, an artifact store holding a model, a
/// checkout that writes the model server, a target with fast timings, and an HTTP client.
final class ServeFixture: Sendable {
    let directory: TemporaryDirectory
    let environment: ServingEnvironment
    let artifact: Artifact
    let target: ProcessTarget
    let client: HTTPClient
    let notified = Shared<[String]>([])

    static var fastTuning: ProcessTarget.Tuning {
        var tuning = ProcessTarget.Tuning()
        tuning.checkInterval = .milliseconds(100)
        tuning.healthTimeout = .seconds(10)
        tuning.restartBackoff = Backoff(base: 0.1, factor: 2, maximum: 1, jitter: 0)
        tuning.drainTimeout = .seconds(5)
        tuning.stopGrace = .seconds(1)
        return tuning
    }

    init(processes: Bool = true, tuning: ProcessTarget.Tuning = ServeFixture.fastTuning, reusing: ServeFixture? = nil) throws {
        directory = try reusing?.directory ?? TemporaryDirectory("cairn-serve")
        let artifacts = try ArtifactStore(root: directory.appending("artifacts"))
        let model = try directory.write("model.bin", "weights \(UUID())")
        artifact = try reusing?.artifact ?? artifacts.store(model)
        environment = ServingEnvironment(
            directory: directory.appending("serving"), artifacts: artifacts, source: FilesCheckout(["serve.py": modelServer]),
            repositoryRoot: nil, dataRoots: [], processes: processes, logger: Logger(label: "test"))
        try FileManager.default.createDirectory(at: environment.directory, withIntermediateDirectories: true)
        let notified = notified
        target = try ProcessTarget(environment: environment, notify: { name in notified.withLock { $0.append(name) } },
                                   tuning: tuning)
        client = HTTPClient(eventLoopGroupProvider: .singleton)
    }

    func request(_ version: Int, port: Int? = nil, health: String? = "/healthz", timeout: String? = nil,
                 flags: [String] = []) throws -> DeploymentRequest {
        let served = ServedVersion(model: "churn", version: version, artifact: artifact, artifactPath: "model.bin")
        let command = ["python3", "serve.py", "--port", "${CAIRN_PORT}", "--model", "${CAIRN_MODEL_PATH}",
                       "--version", "${CAIRN_MODEL_VERSION}"] + flags
        // Health has no public initializer: it is made the way a manifest's JSON would make it.
        let check = try health.map { path in
            let json = try JSONSerialization.data(withJSONObject: ["path": path, "timeout": timeout].compactMapValues { $0 })
            return try JSONDecoder().decode(ModelDeploymentSpec.Health.self, from: json)
        }
        return DeploymentRequest(deployment: "web", version: served, target: .process(command: command, port: port, health: check),
                                 sourceCommit: "0123456789abcdef0123456789abcdef01234567")
    }

    /// Asks until the observation is in `phase` (or the time is up), and returns the last one.
    func ensure(_ request: DeploymentRequest, until phase: DeploymentObservation.Phase, retry: Bool = false,
                within limit: Duration = .seconds(20)) async throws -> DeploymentObservation {
        let deadline = ContinuousClock.now + limit
        var observation = try await target.ensure(request, retry: retry)
        while observation.phase != phase, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            observation = try await target.ensure(request, retry: retry)
        }
        return observation
    }

    /// GET through the proxy: the status and the decoded JSON body.
    func get(_ port: Int, _ path: String = "/predict") async throws -> (status: UInt, body: [String: Any]) {
        let response = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let body = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
        return (response.status.code, body)
    }

    var record: ProcessRecord? { try? ProcessRecord.load(from: environment.directory.appendingPathComponent("web")) }

    /// Stops everything the test started, whatever happened, and any process still carrying
    /// a token of this fixture's deployments.
    func tearDown() async {
        await target.shutdown()
        if let record { await target.stopLeftovers(of: record, keeping: nil) }
        try? await client.shutdown()
    }
}

/// A value tasks share under a lock.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}

/// Runs `body` with a fixture and tears it down even when the body throws.
func withFixture(processes: Bool = true, tuning: ProcessTarget.Tuning = ServeFixture.fastTuning,
                 _ body: (ServeFixture) async throws -> Void) async throws {
    let fixture = try ServeFixture(processes: processes, tuning: tuning)
    do {
        try await body(fixture)
    } catch {
        await fixture.tearDown()
        throw error
    }
    await fixture.tearDown()
}

/// Polls `condition` until it holds or the time is up; returns whether it held.
func eventually(within limit: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// The public port an observation's message names (`serves at 127.0.0.1:PORT`).
func publicPort(in message: String) -> Int? {
    guard let range = message.range(of: "127.0.0.1:") else { return nil }
    return Int(message[range.upperBound...].prefix(while: \.isNumber))
}

/// The pid a message names (`pid 1234`).
func pid(in message: String) -> Int32? {
    guard let range = message.range(of: "pid ") else { return nil }
    return Int32(message[range.upperBound...].prefix(while: \.isNumber))
}

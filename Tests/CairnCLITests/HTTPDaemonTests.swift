import AsyncHTTPClient
import CairnRun
import CairnTestSupport
import Crypto
import Foundation
import Testing

/// `cairn run --listen`: the real binary, real HTTP on 127.0.0.1. Every child is awaited and
/// every wait is a `Task.sleep` poll, never a blocked thread of the two-thread pool.
@Suite(.serialized) struct HTTPDaemonTests {
    // MARK: 1. The API answers what the CLI prints

    /// On the repository `cairn init` writes, once its pipeline has run and its training has
    /// registered churn@1: each API answer is byte for byte what the matching command prints.
    @Test func theAPIAnswersWhatTheCLIPrints() async throws {
        let root = try TemporaryDirectory("cairn-http-api")
        let repository = root.appending("churn"), state = root.appending("state")
        let initialized = try await cairnAsync(["init", repository.path])
        #expect(initialized.status == 0, "\(initialized.stderr)")
        let daemon = try await HTTPDaemon(["run", "--repo", repository.path, "--state-dir", state.path, "--interval", "1h"],
                                          log: root.appending("log"))
        #expect(await until(60) { await daemon.get("/readyz")?.status == 200 }, "\(daemon.output)")
        // The training runs after the first pass; its end wakes the daemon, which registers the version.
        #expect(await until(180) { await daemon.get("/api/v1/models/churn")?.status == 200 }, "\(daemon.output)")

        let pairs: [(path: String, command: [String])] = [
            ("/api/v1/status", ["status"]),
            ("/api/v1/status/Model/churn", ["status", "Model/churn"]),
            ("/api/v1/status/FeaturePipeline/churn-features", ["status", "FeaturePipeline/churn-features"]),
            ("/api/v1/models", ["models"]),
            ("/api/v1/models/churn", ["models", "churn"]),
        ]
        for (path, command) in pairs {
            let (api, printed) = try await settled(daemon, path, command + ["--state-dir", state.path, "--format", "json"])
            #expect(api.status == 200, "\(path): \(api.body)")
            #expect(api.body == printed, "\(path) differs from cairn \(command.joined(separator: " ")) --format json")
            #expect(api.body.count > 3, "\(path) answered an empty list: \(api.body)")
            print("\(path): \(api.status), \(api.body.utf8.count) bytes, \(api.body == printed ? "identical to" : "NOT the same as") "
                  + "`cairn \(command.joined(separator: " ")) --format json` (\(printed.utf8.count) bytes)")
        }
        let registry = try #require(await daemon.get("/api/v1/models")).body
        let models = try #require(try JSONSerialization.jsonObject(with: Data(registry.utf8)) as? [Any])
        #expect(models.count == 1, "the example registers one model, churn")

        let unknown = try #require(await daemon.get("/api/v1/status/Model/nope"))
        #expect(unknown.status == 404 && unknown.body.contains("Model/nope is not known"), "\(unknown.body)")
        #expect(try await cairnAsync(["status", "Model/nope", "--state-dir", state.path]).status == 1)
        #expect(await daemon.get("/readyz")?.status == 200)
        #expect(await daemon.get("/healthz")?.status == 200)
        let metrics = try #require(await daemon.get("/metrics"))
        #expect(metrics.status == 200 && metrics.body.contains("cairn_passes_total"), "\(metrics.body)")
        #expect(await daemon.stop() == .exited(0), "\(daemon.output)")
    }

    // MARK: 2. A webhook wakes the daemon at once

    enum Forge: String, CaseIterable, CustomTestStringConvertible, Sendable {
        /// GitHub, the secret in CAIRN_WEBHOOK_SECRET.
        case githubWithEnvironmentSecret
        /// GitLab's token, the secret in --webhook-secret-file (mode 600, ending in a newline).
        case gitlabWithSecretFile
        var testDescription: String { rawValue }
    }

    /// With a 1 h interval only a request can make the daemon look again: a forged push is
    /// refused (401) and a while later the new model is still unknown; the genuine push is
    /// accepted (202) and the new model shows in the API and in `cairn status` within seconds.
    @Test(arguments: Forge.allCases) func aVerifiedPushWakesTheDaemonAndAForgedOneDoesNot(_ forge: Forge) async throws {
        let repository = try largeRepository(objects: 2)
        let root = try TemporaryDirectory("cairn-http-hook")
        let state = root.appending("state")
        let secret = "hook-\(UUID().uuidString)"
        var arguments = ["run", "--repo", repository.path, "--state-dir", state.path, "--interval", "1h"]
        var environment = ProcessInfo.processInfo.environment
        environment[secretVariable] = nil
        switch forge {
        case .githubWithEnvironmentSecret:
            environment[secretVariable] = secret
        case .gitlabWithSecretFile:
            let file = try root.write("webhook-secret", secret + "\n")
            #expect(chmod(file.path, 0o600) == 0)
            arguments += ["--webhook-secret-file", file.path]
        }
        let daemon = try await HTTPDaemon(arguments, log: root.appending("log"), environment: environment)
        #expect(await until(30) { await daemon.get("/api/v1/status/Model/m1")?.status == 200 }, "\(daemon.output)")
        try repository.commit(["models/m2.yaml": """
            apiVersion: cairn/v1
            kind: Model
            metadata: {name: m2}
            spec:
              stages: [staging, production]

            """], message: "a third model")

        let body = #"{"ref":"refs/heads/main","after":"0123"}"#
        func push(secret: String, delivery: String) -> [(String, String)] {
            switch forge {
            case .githubWithEnvironmentSecret:
                [("X-GitHub-Event", "push"), ("X-GitHub-Delivery", delivery), ("X-Hub-Signature-256", "sha256=" + hmacHex(body, secret))]
            case .gitlabWithSecretFile:
                [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Event-UUID", delivery), ("X-Gitlab-Token", secret)]
            }
        }
        let provider = forge == .githubWithEnvironmentSecret ? "github" : "gitlab"
        let path = "/api/v1/webhooks/\(provider)"

        let forged = try #require(await daemon.post(path, headers: push(secret: secret + "x", delivery: "forged-1"), body: body))
        #expect(forged.status == 401, "\(forged.body)")
        // Nothing can make it show now; what this checks is that it has not after a while.
        try await Task.sleep(for: .seconds(3))
        #expect(await daemon.get("/api/v1/status/Model/m2")?.status == 404, "a forged push made the daemon look")
        #expect(try await cairnAsync(["status", "Model/m2", "--state-dir", state.path]).status == 1)
        #expect(!daemon.output.contains("cairn.trigger=webhook"), "\(daemon.output)")

        let sent = ContinuousClock.now
        let genuine = try #require(await daemon.post(path, headers: push(secret: secret, delivery: "genuine-1"), body: body))
        #expect(genuine.status == 202 && genuine.body.contains(#""result":"triggered""#), "\(genuine.body)")
        #expect(await until(10) { await daemon.get("/api/v1/status/Model/m2")?.status == 200 }, "\(daemon.output)")
        print("\(forge): Model/m2 showed in the status API \(ContinuousClock.now - sent) after the push was sent")
        let status = try await cairnAsync(["status", "Model/m2", "--state-dir", state.path])
        #expect(status.status == 0 && status.stdout.contains("Model/m2"), "\(status.stdout)\(status.stderr)")
        #expect(daemon.output.contains("cairn.trigger=webhook"), "\(daemon.output)")
        #expect(!daemon.output.contains("chmod 600"), "a file of mode 600 is not reported as readable by others")
        #expect(await daemon.stop() == .exited(0), "\(daemon.output)")
    }

    // MARK: 3. The secret never shows

    /// At debug level, through accepted, refused and replayed deliveries of every forge, the
    /// daemon's log names the webhooks (so they were logged about) and never holds the secret,
    /// nor a forged token.
    @Test func theSecretNeverShowsInTheLog() async throws {
        let repository = try largeRepository(objects: 1)
        let root = try TemporaryDirectory("cairn-http-secret")
        let secret = "never-log-\(UUID().uuidString)", forgedToken = "forged-\(UUID().uuidString)"
        var environment = ProcessInfo.processInfo.environment
        environment[secretVariable] = secret
        let daemon = try await HTTPDaemon(["run", "--repo", repository.path, "--state-dir", root.appending("state").path,
                                           "--interval", "1h", "--log-level", "debug"], log: root.appending("log"), environment: environment)
        #expect(await until(30) { await daemon.get("/readyz")?.status == 200 }, "\(daemon.output)")
        let push = #"{"ref":"refs/heads/main"}"#
        let deliveries: [(provider: String, headers: [(String, String)], expected: UInt)] = [
            ("github", [("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d1"), ("X-Hub-Signature-256", "sha256=" + hmacHex(push, secret))], 202),
            ("github", [("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d1"), ("X-Hub-Signature-256", "sha256=" + hmacHex(push, secret))], 200),
            ("github", [("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d2"), ("X-Hub-Signature-256", "sha256=" + hmacHex(push, forgedToken))], 401),
            ("github", [("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d3")], 401),
            ("gitlab", [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Event-UUID", "d4"), ("X-Gitlab-Token", secret)], 202),
            ("gitlab", [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Event-UUID", "d5"), ("X-Gitlab-Token", forgedToken)], 401),
            ("gitea", [("X-Gitea-Event", "push"), ("X-Gitea-Delivery", "d6"), ("X-Gitea-Signature", hmacHex(push, secret))], 202),
            ("generic", [("X-Cairn-Signature", "sha256=" + hmacHex(push, secret))], 202),
        ]
        for (provider, headers, expected) in deliveries {
            let answer = try #require(await daemon.post("/api/v1/webhooks/\(provider)", headers: headers, body: push))
            #expect(answer.status == expected, "\(provider) \(headers): \(answer.body)")
            #expect(!answer.body.contains(secret))
        }
        // Nothing changed, so the passes they started are idle ones: counted, not logged.
        var metrics = ""
        #expect(await until(10) {
            metrics = await daemon.get("/metrics")?.body ?? ""
            return metrics.split(separator: "\n").contains { $0.hasPrefix("cairn_passes_total") && $0.contains(#"trigger="webhook""#) }
        }, "\(metrics)")
        #expect(!metrics.contains(secret))
        #expect(await daemon.stop() == .exited(0), "\(daemon.output)")
        let log = daemon.output
        #expect(log.contains("cairn.webhook=github") && log.contains("webhook refused"), "debug and refusal lines were written: \(log)")
        #expect(!log.contains(secret), "the secret is in the log")
        #expect(!log.contains(forgedToken), "a forged token is in the log")
        print("log: \(log.split(separator: "\n").count) lines at debug level, \(log.utf8.count) bytes, no secret")
    }

    /// The daemon takes CAIRN_WEBHOOK_SECRET out of its environment before it starts anything:
    /// the fetch helper it starts for a remote (which inherits the daemon's environment, for
    /// credentials) does not have it. The remote accepts connections and never answers, so the
    /// helper lives long enough to be read. (/proc/PID/environ of the daemon itself shows the
    /// environment it was started with, so there it still is: the control.)
    @Test func processesTheDaemonStartsDoNotInheritTheSecret() async throws {
        let remote = try SilentServer()
        let root = try TemporaryDirectory("cairn-http-environ")
        var environment = ProcessInfo.processInfo.environment
        environment[secretVariable] = "inherit-\(UUID().uuidString)"
        environment["CAIRN_HTTP_TEST_MARK"] = "present"
        let daemon = try await HTTPDaemon(["run", "--repo", "git://127.0.0.1:\(remote.port)/silent.git", "--state-dir",
                                           root.appending("state").path, "--interval", "1h", "--fetch-timeout", "5s"],
                                          log: root.appending("log"), environment: environment)
        let pid = daemon.process.process.processID
        var helper: Int32?
        _ = await until(10) {
            helper = children(of: pid).first { commandLine(of: $0).contains("fetch-helper") }
            return helper != nil
        }
        let found = try #require(helper, "no fetch helper started: \(daemon.output)")
        let inherited = environmentNames(of: found)
        #expect(inherited.contains("CAIRN_HTTP_TEST_MARK"), "the helper inherits the daemon's environment: \(inherited)")
        #expect(!inherited.contains(secretVariable), "the fetch helper inherited the webhook secret")
        #expect(environmentNames(of: pid).contains(secretVariable), "the control: the daemon was started with it")
        #expect(await daemon.stop() == .exited(0), "\(daemon.output)")
    }

    // MARK: 4. A port in use

    /// A port something else listens on: the daemon says so and exits 3 before any pass.
    @Test func aPortInUseStopsTheDaemonBeforeAnyPass() async throws {
        let holder = try ListeningSocket()
        defer { holder.close() }
        let repository = try largeRepository(objects: 2)
        let root = try TemporaryDirectory("cairn-http-inuse")
        let state = root.appending("state")
        let (termination, stderr, elapsed) = try await runBounded(
            ["run", "--repo", repository.path, "--state-dir", state.path, "--interval", "1h", "--listen", "127.0.0.1:\(holder.port)"],
            log: root.appending("log"))
        #expect(termination == .exited(3), "\(stderr)")
        #expect(elapsed < .seconds(5), "it took \(elapsed)")
        #expect(stderr.contains("cannot listen on 127.0.0.1:\(holder.port): the address is already in use"), "\(stderr)")
        print("port \(holder.port) in use: exit \(termination.map { "\($0)" } ?? "none: still running") after \(elapsed)")
        #expect(!stderr.contains("cairn.changed="), "a pass ran: \(stderr)")
        #expect(try repository.git(["branch", "--list", "cairn/status"]).isEmpty, "a status branch was written")
        let status = try await cairnAsync(["status", "--state-dir", state.path, "--format", "json"])
        #expect(!status.stdout.contains("Model/m"), "objects were reconciled: \(status.stdout)")
    }

    // MARK: 5. SIGTERM with requests in flight

    /// 50 connections keep asking for the status and the health while SIGTERM arrives: each
    /// request is answered 200 or refused or closed cleanly, none hangs, and the daemon exits 0
    /// within seconds.
    @Test func sigtermWithRequestsInFlightEndsCleanly() async throws {
        let repository = try largeRepository(objects: 100)
        let root = try TemporaryDirectory("cairn-http-sigterm")
        let daemon = try await HTTPDaemon(["run", "--repo", repository.path, "--state-dir", root.appending("state").path,
                                           "--interval", "1h"], log: root.appending("log"))
        #expect(await until(60) { await daemon.get("/readyz")?.status == 200 }, "\(daemon.output)")

        // One curl, 50 transfers at a time, each reported on its own line as it ends.
        let requests = 20_000
        let urls = (0..<requests).map { index in
            "url = \"http://127.0.0.1:\(daemon.port)/\(index.isMultiple(of: 2) ? "api/v1/status" : "healthz")?i=\(index)\""
        }
        let config = try root.write("curl.config", urls.joined(separator: "\n") + "\n")
        let results = root.appending("curl.log")
        let curl = try BackgroundProcess(try which("curl"), [
            "--parallel", "--parallel-max", "50", "--silent", "--no-progress-meter", "--max-time", "10", "--config", config.path,
            "--write-out", "%{stderr}%{http_code} %{exitcode}\n",
        ], logTo: results)
        func finished() -> Int { curl.output.split(separator: "\n").count }
        #expect(await until(60) { finished() >= 1_000 }, "\(curl.output.suffix(500))")
        let beforeSignal = finished()
        let signalled = ContinuousClock.now
        daemon.process.process.terminate(signal: SIGTERM, wholeGroup: false)
        #expect(await until(10) { !daemon.process.process.isRunning }, "the daemon did not exit within 10 s of SIGTERM")
        let stopTime = ContinuousClock.now - signalled
        #expect(await until(60) { !curl.process.isRunning }, "curl still runs: a request hangs")
        // It has exited: awaiting its outcome only waits for its log to be read.
        #expect(await daemon.process.process.wait().termination == .exited(0), "\(daemon.output)")

        var answered = 0, refused = 0, closed = 0, hung = 0, other: [String] = []
        let lines = curl.output.split(separator: "\n")
        for line in lines {
            switch line.split(separator: " ").map(String.init) {
            case ["200", "0"]: answered += 1
            case ["000", "7"]: refused += 1  // could not connect
            case ["000", "52"], ["000", "55"], ["000", "56"]: closed += 1  // empty reply, send or receive failed: closed or reset
            case ["000", "28"]: hung += 1
            default: other.append(String(line))
            }
        }
        print("SIGTERM after \(beforeSignal) of \(requests) requests; the daemon exited 0 after \(stopTime); "
              + "answered 200: \(answered), refused: \(refused), closed or reset: \(closed), hung: \(hung), other: \(other.count)")
        #expect(lines.count == requests, "every request ended and was reported")
        #expect(hung == 0)
        #expect(other.isEmpty, "\(Set(other))")
        #expect(answered >= beforeSignal && refused > 0, "answered \(answered), refused \(refused)")
        #expect(stopTime < .seconds(5))
    }

    // MARK: 6. Bad options

    struct BadStart: CustomTestStringConvertible, Sendable {
        let name: String
        /// After `run --repo R --state-dir S --interval 1h`; "{dir}" is a fresh directory.
        let arguments: [String]
        var secretFile: String?
        var environmentSecret: String?
        let status: Int32
        let says: String
        var testDescription: String { name }
    }

    static let badStarts = [
        BadStart(name: "--listen bogus", arguments: ["--listen", "bogus"], status: 2, says: "--listen bogus is not ADDR:PORT"),
        BadStart(name: "--listen out of range", arguments: ["--listen", "127.0.0.1:70000"], status: 2, says: "--listen 127.0.0.1:70000"),
        BadStart(name: "a secret file without --listen", arguments: ["--webhook-secret-file", "x"], status: 2,
                 says: "--webhook-secret-file needs --listen"),
        BadStart(name: "an empty secret file", arguments: ["--listen", "127.0.0.1:0", "--webhook-secret-file", "{dir}/secret"],
                 secretFile: "", status: 2, says: "--webhook-secret-file {dir}/secret is empty"),
        BadStart(name: "a secret file of blank lines", arguments: ["--listen", "127.0.0.1:0", "--webhook-secret-file", "{dir}/secret"],
                 secretFile: "\n  \n", status: 2, says: "--webhook-secret-file {dir}/secret is empty"),
        BadStart(name: "a missing secret file", arguments: ["--listen", "127.0.0.1:0", "--webhook-secret-file", "{dir}/missing"],
                 status: 3, says: "cannot read --webhook-secret-file {dir}/missing"),
        BadStart(name: "an empty CAIRN_WEBHOOK_SECRET", arguments: ["--listen", "127.0.0.1:0"], environmentSecret: " ",
                 status: 2, says: "CAIRN_WEBHOOK_SECRET is empty"),
        BadStart(name: "a bad --webhook-max-body", arguments: ["--listen", "127.0.0.1:0", "--webhook-max-body", "lots"],
                 status: 2, says: "--webhook-max-body lots is not a size"),
    ]

    /// Each exits at once with its status and a sentence naming the option or the file, and
    /// reconciles nothing.
    @Test(arguments: badStarts) func aBadOptionStopsTheDaemonAtOnce(_ bad: BadStart) async throws {
        let repository = try largeRepository(objects: 1)
        let root = try TemporaryDirectory("cairn-http-bad")
        if let content = bad.secretFile {
            let file = try root.write("secret", content)
            #expect(chmod(file.path, 0o600) == 0)
        }
        var environment = ProcessInfo.processInfo.environment
        environment[secretVariable] = bad.environmentSecret
        let arguments = ["run", "--repo", repository.path, "--state-dir", root.appending("state").path, "--interval", "1h"]
            + bad.arguments.map { $0.replacingOccurrences(of: "{dir}", with: root.path) }
        let (termination, stderr, elapsed) = try await runBounded(arguments, log: root.appending("log"), environment: environment)
        #expect(termination == .exited(bad.status), "\(stderr)")
        #expect(stderr.contains(bad.says.replacingOccurrences(of: "{dir}", with: root.path)), "\(stderr)")
        #expect(!stderr.contains("listening") && !stderr.contains("cairn.changed="), "\(stderr)")
        #expect(try repository.git(["branch", "--list", "cairn/status"]).isEmpty, "a status branch was written")
        print("\(bad.name): exit \(termination.map { "\($0)" } ?? "none: still running") after \(elapsed): \(stderr.split(separator: "\n").first { $0.hasPrefix("error:") } ?? "")")
    }
}

// MARK: - Support

private let secretVariable = "CAIRN_WEBHOOK_SECRET"

/// A `cairn run --listen 127.0.0.1:0` and the port it logged.
final class HTTPDaemon: Sendable {
    let process: BackgroundProcess
    let port: Int

    /// Starts `arguments` plus `--listen 127.0.0.1:0` and waits until it logs where it listens.
    init(_ arguments: [String], log: URL, environment: [String: String]? = nil) async throws {
        process = try BackgroundProcess(try cairnExecutable(), arguments + ["--listen", "127.0.0.1:0"], logTo: log,
                                        environment: environment)
        var port: Int?
        _ = await until(30) { [process] in
            port = listeningPort(in: process.output)
            return port != nil || !process.process.isRunning
        }
        guard let port else { throw DaemonDidNotListen(log: process.output) }
        self.port = port
    }

    var output: String { process.output }

    func get(_ path: String) async -> HTTPReply? {
        await request(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"))
    }

    func post(_ path: String, headers: [(String, String)], body: String) async -> HTTPReply? {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(Array(body.utf8))
        return await self.request(request)
    }

    /// nil when the request fails (nothing listens, the connection dropped).
    private func request(_ request: HTTPClientRequest) async -> HTTPReply? {
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 16 << 20)
            return HTTPReply(status: response.status.code, body: String(buffer: body))
        } catch {
            return nil
        }
    }

    /// SIGTERM, and how it ended (nil when it was still running 20 s later).
    func stop() async -> Termination? {
        process.process.terminate(signal: SIGTERM)
        _ = await until(20) { [process] in !process.process.isRunning }
        return await until(1) { [process] in process.termination != nil } ? process.termination : nil
    }
}

struct DaemonDidNotListen: Error, CustomStringConvertible {
    let log: String
    var description: String { "the daemon did not log where it listens: \(log)" }
}

struct HTTPReply: Sendable {
    let status: UInt
    let body: String
}

/// The port in `listening ... cairn.http=127.0.0.1:PORT`.
func listeningPort(in log: String) -> Int? {
    for line in log.split(separator: "\n") where line.contains("listening") {
        guard let range = line.range(of: "cairn.http=127.0.0.1:") else { continue }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }
    return nil
}

/// Polls `check` every 100 ms until it holds or `seconds` pass, awaiting between tries.
@discardableResult
func until(_ seconds: Double, _ check: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await check() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return try await check()
}

/// An API answer and what `cairn` printed for it, taken while the daemon's state held still:
/// the API is asked before and after the command, until both answers agree.
private func settled(_ daemon: HTTPDaemon, _ path: String, _ command: [String]) async throws -> (HTTPReply, String) {
    var last: (HTTPReply, String)?
    for _ in 0..<50 {
        let before = await daemon.get(path)
        let printed = try await cairnAsync(command)
        let after = await daemon.get(path)
        if let before, let after {
            last = (after, printed.stdout)
            if before.status == after.status, before.body == after.body { return (after, printed.stdout) }
        }
        try await Task.sleep(for: .milliseconds(500))
    }
    return try #require(last, "\(path) never answered")
}

/// Runs `cairn ARGUMENTS` for at most 20 s (killed then): how it ended, its standard error, how long it took.
private func runBounded(_ arguments: [String], log: URL, environment: [String: String]? = nil) async throws
    -> (termination: Termination?, stderr: String, elapsed: Duration) {
    let started = ContinuousClock.now
    let child = try BackgroundProcess(try cairnExecutable(), arguments, logTo: log, environment: environment)
    await until(20) { !child.process.isRunning }
    let elapsed = ContinuousClock.now - started
    await until(1) { child.termination != nil }
    return (child.termination, child.output, elapsed)
}

/// GitHub's (and Gitea's and the generic receiver's) signature: hex HMAC-SHA256 of the body.
private func hmacHex(_ body: String, _ secret: String) -> String {
    HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        .map { String(format: "%02x", $0) }.joined()
}

/// The pids whose parent is `parent`.
private func children(of parent: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        // After "pid (comm)": state, then the parent's pid.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == parent
    }
}

private func commandLine(of pid: Int32) -> String {
    FileManager.default.contents(atPath: "/proc/\(pid)/cmdline").map { String(decoding: $0, as: UTF8.self) } ?? ""
}

/// The names in a process's environment as it was started (/proc/PID/environ).
private func environmentNames(of pid: Int32) -> Set<String> {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [] }
    return Set(data.split(separator: 0).compactMap { entry in
        String(decoding: entry, as: UTF8.self).split(separator: "=", maxSplits: 1).first.map(String.init)
    })
}

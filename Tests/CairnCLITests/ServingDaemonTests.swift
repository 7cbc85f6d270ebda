import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// `cairn run` serving a process deployment end to end: a training registers versions, a
/// commit promotes one, the daemon's proxy serves it; the daemon is killed with SIGKILL and
/// restarted, and exactly one server serves afterwards; removing the manifest takes it down.
@Suite(.serialized) struct ServingDaemonTests {
    /// A repository that trains a tiny model in well under a second, and serves it with the
    /// example's serve.py behind `port`.
    static func repository(port: UInt16) throws -> GitFixture {
        let fixture = try GitFixture()
        let serve = try #require(try exampleRepositoryFiles()["serve.py"])
        try fixture.commit([
            "serve.py": serve,
            "train.py": """
                import json, os
                params = json.loads(os.environ.get("CAIRN_PARAMS", "{}"))
                json.dump({"format": 1, "bias": params.get("bias", 0.0), "weights": [1.0]}, open("model.json", "w"))
                json.dump({"auc": 0.9}, open("metrics.json", "w"))

                """,
            "training.yaml": """
                apiVersion: cairn/v1
                kind: TrainingSchedule
                metadata: {name: churn-train}
                spec:
                  model: churn
                  command: [python3, train.py]
                  params: {bias: 0.1}
                  outputs: {model: model.json, metrics: metrics.json}

                """,
            "model.yaml": Self.model(nil),
            "deployment.yaml": """
                apiVersion: cairn/v1
                kind: ModelDeployment
                metadata: {name: churn-prod}
                spec:
                  model: churn
                  stage: production
                  target:
                    process:
                      command: [python3, serve.py, --model, "${CAIRN_MODEL_PATH}", --port, "${CAIRN_PORT}"]
                      port: \(port)
                      health: {path: /healthz, timeout: 20s}

                """,
        ], message: "a model that trains and serves")
        return fixture
    }

    static func model(_ production: Int?) -> String {
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

    /// The version the proxy's server says it is, or nil when nothing answers.
    static func served(port: UInt16) async -> String? {
        let script = "import json, sys, urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1], timeout=2))['version'])"
        guard let result = try? await runAsync("/usr/bin/env", ["python3", "-c", script, "http://127.0.0.1:\(port)/healthz"], check: false),
              result.status == 0 else { return nil }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Polls `check` every 200 ms until it holds or `seconds` pass.
    static func eventually(_ seconds: Double = 60, _ check: () async throws -> Bool) async rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await check() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return try await check()
    }

    /// The serve.py processes whose command line names `state` (their model is in its artifact store).
    static func servers(under state: URL) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let line = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\0", with: " ")
            return line.contains("serve.py") && line.contains(state.path)
        }
    }

    @Test func theDaemonServesSwitchesSurvivesAKillAndPrunes() async throws {
        let port = try freePort()
        let repository = try Self.repository(port: port)
        let state = try TemporaryDirectory("cairn-serving")
        defer { for pid in Self.servers(under: state.url) { kill(pid, SIGKILL) } }
        let arguments = ["run", "--repo", repository.path, "--state-dir", state.path, "--interval", "300ms"]
        var daemon: BackgroundProcess? = try BackgroundProcess(try cairnExecutable(), arguments, logTo: state.appending("log-1"))
        #expect(await Self.eventually { daemon?.output.contains("Registered") == true }, "\(daemon?.output ?? "")")

        try repository.commit(["model.yaml": Self.model(1)], message: "promote churn@1")
        #expect(await Self.eventually { await Self.served(port: port) == "1" }, "\(daemon?.output ?? "")")
        #expect(Self.servers(under: state.url).count == 1)

        // A second version, then production moves to it: the old server is stopped after the switch.
        try repository.commit(["training.yaml": try #require(try repository.git(["show", "HEAD:training.yaml"]))
            .replacingOccurrences(of: "bias: 0.1", with: "bias: 0.2")], message: "train version 2")
        #expect(await Self.eventually { daemon?.output.components(separatedBy: "Registered").count ?? 0 >= 3 }, "\(daemon?.output ?? "")")
        try repository.commit(["model.yaml": Self.model(2)], message: "promote churn@2")
        #expect(await Self.eventually { await Self.served(port: port) == "2" }, "\(daemon?.output ?? "")")
        #expect(await Self.eventually(10) { Self.servers(under: state.url).count == 1 }, "the old version's server was not stopped")
        let server = try #require(Self.servers(under: state.url).first)

        // kill -9 the daemon alone: its server goes on, the public port goes quiet.
        daemon?.process.terminate(signal: SIGKILL, wholeGroup: false)
        _ = await daemon?.process.wait()
        daemon = nil
        #expect(kill(server, 0) == 0, "the server died with the daemon")
        #expect(await Self.served(port: port) == nil)

        // A new daemon adopts it: the same process serves again, and no second one starts.
        daemon = try BackgroundProcess(try cairnExecutable(), arguments, logTo: state.appending("log-2"))
        #expect(await Self.eventually { await Self.served(port: port) == "2" }, "\(daemon?.output ?? "")")
        #expect(Self.servers(under: state.url) == [server], "the server was not adopted, or another one started")

        // A fix to serve.py rolls version 2 out again; the new server takes 3 s to start, and
        // the daemon is killed while it starts. Restarted, it stops that half-started server,
        // starts the new code again, switches, and one server serves: the new one.
        try repository.commit(["serve.py": "import time\ntime.sleep(3)\n" + (try #require(try exampleRepositoryFiles()["serve.py"]))],
                              message: "serve.py: warm up first")
        // Wait for the new server to exist, not for two at once: on a loaded machine the poll can
        // miss the 3 s in which both run, and the kill below is meant for any moment after the start.
        #expect(await Self.eventually(20) { Self.servers(under: state.url).contains { $0 != server } }, "\(daemon?.output ?? "")")
        daemon?.process.terminate(signal: SIGKILL, wholeGroup: false)
        _ = await daemon?.process.wait()
        daemon = try BackgroundProcess(try cairnExecutable(), arguments, logTo: state.appending("log-3"))
        #expect(await Self.eventually(30) {
            let servers = Self.servers(under: state.url)
            return servers.count == 1 && servers != [server]
        }, "\(Self.servers(under: state.url)) \(daemon?.output ?? "")")
        #expect(await Self.served(port: port) == "2")

        // Removing the manifest takes the deployment down.
        try repository.commit(["deployment.yaml": nil], message: "stop serving churn")
        #expect(await Self.eventually(20) { Self.servers(under: state.url).isEmpty }, "\(daemon?.output ?? "")")
        #expect(await Self.served(port: port) == nil)
        // SIGTERM, waited for without holding a thread of the cooperative pool.
        let stopping = try #require(daemon)
        stopping.process.terminate(signal: SIGTERM)
        #expect(await stopping.process.wait().termination.shellStatus == 0, "\(stopping.output)")
        let subjects = try repository.git(["log", "--format=%s", "cairn/status", "--", "ModelDeployment/churn-prod.yaml"])
        #expect(subjects.hasPrefix("ModelDeployment/churn-prod: Deleted\n"), "\(subjects)")
        #expect(subjects.contains("ModelDeployment/churn-prod: Serving"), "\(subjects)")
    }
}

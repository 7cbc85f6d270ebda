import ArgumentParser
import CairnCore
import CairnCLI
import CairnEngine
import CairnGit
import CairnManifests
import CairnRun
import Foundation
import Logging

/// Measures Cairn on a generated repository and prints the figures with the machine's own.
/// Figures are printed, never asserted: this machine is shared and noisy, so compare ratios
/// measured in one run.
struct CairnBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifests",
        abstract: "Measure reading, validating and diffing manifests on a generated repository.",
        discussion: """
        Generates a bare repository with N manifests (N/5 each of the five kinds, all valid and \
        cross-referenced), then a second commit that changes one manifest, and measures:
          read+validate  every manifest from a commit, through the object database (target < 0.6 s at 10,000)
          diff           the two commits' trees, one manifest apart (target < 5 ms)
        With --hash FILE it only stores FILE in a fresh artifact store (SHA-256, copy, fsync) \
        and hashes it once more without writing, and prints both throughputs (target ≥ 1 GB/s); \
        Scripts/bench-pipelines uses it.
        Build in release mode for meaningful figures: swift run -c release cairn-bench
        """)

    @Option(help: "How many manifests to generate (a multiple of 5).")
    var manifests: Int = 10_000

    @Option(help: "How many times to repeat each measurement; the median is reported.")
    var repeats: Int = 5

    @Option(help: "text or json.")
    var format: String = "text"

    @Option(help: ArgumentHelp("Only measure storing FILE in a fresh artifact store (and hashing it), then exit.", valueName: "FILE"))
    var hash: String?

    func run() async throws {
        if let hash {
            let result = try HashThroughput.measure(file: URL(fileURLWithPath: hash), repeats: repeats)
            if format == "json" {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            } else {
                print(result.text)
            }
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-bench-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = try Repository.create(at: directory, bare: true)
        let signature = Signature(name: "bench", email: "bench@localhost")
        let groups = max(1, manifests / 5)
        var files: [String: Data?] = [:]
        for group in 0..<groups {
            for (path, text) in Generated.group(group) { files[path] = Data(text.utf8) }
        }
        var started = Date()
        let first = try repository.createCommit(parent: nil, changes: files, message: "generated", author: signature)
        let generation = Date().timeIntervalSince(started)
        let changed = Generated.group(groups / 2).first { $0.0.hasPrefix("training/") }
        guard let (changedPath, changedText) = changed else { throw ValidationError("nothing to change") }
        let second = try repository.createCommit(
            parent: first, changes: [changedPath: Data(changedText.replacingOccurrences(of: "max_iter: 200", with: "max_iter: 300").utf8)],
            message: "change one", author: signature)

        var loads: [Double] = []
        var objects = 0
        var valid = false
        for _ in 0..<repeats {
            started = Date()
            let set = try ManifestLoader.load(from: repository, commit: first)
            loads.append(Date().timeIntervalSince(started))
            objects = set.manifests.count
            valid = set.isValid
        }
        // Where the time goes, one phase at a time (single-threaded parse, for comparison).
        started = Date()
        let entries = try repository.listFiles(in: first)
        let blobs = try entries.map { ($0.path, try repository.blob($0.blob)) }
        let readTime = Date().timeIntervalSince(started)
        started = Date()
        let parsed = blobs.map { ManifestParser.parse($0.1, file: $0.0) }
        let parseTime = Date().timeIntervalSince(started)
        started = Date()
        _ = ManifestSet(files: parsed)
        let checkTime = Date().timeIntervalSince(started)

        var diffs: [Double] = []
        var changes = 0
        for _ in 0..<(repeats * 40) {
            started = Date()
            changes = try repository.diff(from: first, to: second).count
            diffs.append(Date().timeIntervalSince(started))
        }
        let results: [Result] = [
            Result(name: "read+validate \(objects) manifests from a commit", seconds: median(loads), target: 0.6,
                   note: valid ? "all valid" : "INVALID"),
            Result(name: "diff two commits, one manifest apart", seconds: median(diffs), target: 0.005, note: "\(changes) change"),
        ]
        let phases: [Result] = [
            Result(name: "  of which: list tree and read blobs", seconds: readTime, target: nil, note: "one run"),
            Result(name: "  of which: parse and check each file, one core", seconds: parseTime, target: nil, note: "one run"),
            Result(name: "  of which: cross-object checks and graph", seconds: checkTime, target: nil, note: "one run"),
        ]
        try repository.updateReference("refs/heads/main", to: first, expected: nil, logMessage: "bench")
        let daemon = try await measureDaemon(repository: repository, directory: directory, signature: signature, groups: groups)
        let machine = Machine.current
        if format == "json" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(Report(machine: machine, results: results + phases + daemon)), as: UTF8.self))
            return
        }
        print("machine: \(machine.cpu), \(machine.cores) cores, \(machine.memoryGiB) GiB; build: \(machine.build)")
        print("repository: \(manifests) manifests generated and committed in \(String(format: "%.2f", generation)) s; median of \(repeats) runs (diff: \(repeats * 40))")
        for result in [results[0]] + phases + [results[1]] + daemon {
            let figure = result.seconds == 0 ? String(repeating: " ", count: 11)
                : result.seconds < 0.1 ? String(format: "%8.3f ms", result.seconds * 1000) : String(format: "%8.3f s ", result.seconds)
            var line = "  \(result.name.padding(toLength: 50, withPad: " ", startingAt: 0)) \(figure)"
            if let goal = result.target {
                let target = goal < 0.1 ? String(format: "%.0f ms", goal * 1000) : String(format: "%g s", goal)
                line += "   target < \(target)  (\(String(format: "%.0f", result.seconds / goal * 100))% of it; \(result.note))"
            } else {
                line += "   (\(result.note))"
            }
            print(line)
        }
    }
}

extension CairnBench {
    /// The reconciler over the same repository: a full first pass (every object gets a status
    /// commit), passes over an unchanged tip, passes after a one-manifest commit, and the
    /// resident memory of a real `cairn run` idling over it.
    func measureDaemon(repository: Repository, directory: URL, signature: Signature, groups: Int) async throws -> [Result] {
        let state = directory.appendingPathComponent("state")
        let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let engine = try Engine(source: .local(directory), stateDirectory: state, configuration: ReconcilerConfiguration(),
                                controllers: try ControllerRegistry(Controllers.all), push: false, logger: logger) { _, _ in }
        var started = Date()
        let first = try await engine.passWithoutDrain()
        let firstPass = Date().timeIntervalSince(started)
        started = Date()
        let written = try await engine.drain()
        let drainTime = Date().timeIntervalSince(started)

        var unchanged: [Double] = []
        for _ in 0..<(repeats * 200) {
            started = Date()
            _ = try await engine.reconcileOnce()
            unchanged.append(Date().timeIntervalSince(started))
        }
        var changed: [Double] = []
        var changedObjects = 0
        for round in 0..<(repeats * 4) {
            guard let tip = try repository.referenceTarget("refs/heads/main"),
                  let (path, text) = Generated.group(round % groups).first(where: { $0.0.hasPrefix("training/") }) else { break }
            let edited = text.replacingOccurrences(of: "max_iter: 200", with: "max_iter: \(1000 + round)")
            let commit = try repository.createCommit(parent: tip, changes: [path: Data(edited.utf8)], message: "tune", author: signature)
            try repository.updateReference("refs/heads/main", to: commit, expected: tip, logMessage: "bench")
            started = Date()
            let outcome = try await engine.reconcileOnce()
            changed.append(Date().timeIntervalSince(started))
            changedObjects = outcome.changed.count
        }
        var results = [
            Result(name: "first pass over every object (no git writes)", seconds: firstPass, target: nil, note: "\(first.objects) objects, one run"),
            Result(name: "status commits written per second", seconds: drainTime, target: nil,
                   note: String(format: "%.0f commits/s (target ≥ 500): %d commits", Double(written) / max(drainTime, 1e-9), written)),
            Result(name: "pass over an unchanged ref", seconds: median(unchanged), target: 0.001, note: "fetch-free local repository"),
            Result(name: "pass after a commit changing one manifest", seconds: median(changed), target: 0.020,
                   note: "\(changedObjects) status change(s) written, note included"),
        ]
        results.append(try await measureTriggerBurst(engine: engine, logger: logger))
        if let rss = try idleResidentMemory(directory: directory, state: state, repository: repository, signature: signature) {
            results.append(Result(name: "cairn run, resident memory while idle", seconds: 0, target: nil,
                                  note: String(format: "%.1f MiB (target < 100 MiB), after reconciling a change", Double(rss) / 1024)))
        }
        return results
    }

    /// Starts the real daemon over the repository, makes it reconcile one change (so it holds
    /// the parsed manifests), lets it idle, and reads its VmRSS in KiB.
    func idleResidentMemory(directory: URL, state: URL, repository: Repository, signature: Signature) throws -> Int? {
        guard let binary = try? Sampling.cairnBinary(nil) else {
            print("note: no cairn binary beside cairn-bench (swift build -c release builds both); memory not measured")
            return nil
        }
        let daemon = try Command(binary, ["run", "--repo", directory.path, "--state-dir", state.path, "--interval", "1s", "--log-level", "error"],
                                 standardOutput: .discard, standardError: .discard).start()
        defer {
            daemon.stop()
            _ = daemon.waitUntilExit()
        }
        guard let tip = try repository.referenceTarget("refs/heads/main"),
              let (path, text) = Generated.group(0).first(where: { $0.0.hasPrefix("models/") }) else { return nil }
        let commit = try repository.createCommit(parent: tip, changes: [path: Data((text + "  suspend: false\n").utf8)],
                                                 message: "touch", author: signature)
        try repository.updateReference("refs/heads/main", to: commit, expected: tip, logMessage: "bench")
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let status = try? Repository.open(at: directory).referenceTarget("refs/notes/cairn").flatMap { notes in
                try Repository.open(at: directory).note(on: commit, notesRef: "refs/notes/cairn")
            }
            if status != nil { break }
            usleep(200_000)
        }
        sleep(3)
        let procStatus = try String(contentsOfFile: "/proc/\(daemon.processID)/status", encoding: .utf8)
        let line = procStatus.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }
}

struct Result: Encodable {
    var name: String
    var seconds: Double
    var target: Double?
    var note: String
}

struct Report: Encodable {
    var machine: Machine
    var results: [Result]
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

struct Machine: Encodable {
    var cpu: String
    var cores: Int
    var memoryGiB: Int
    var build: String

    static var current: Machine {
        let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuInfo.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        #if DEBUG
        let build = "debug (use -c release for real figures)"
        #else
        let build = "release"
        #endif
        return Machine(cpu: model, cores: ProcessInfo.processInfo.activeProcessorCount,
                       memoryGiB: Int(ProcessInfo.processInfo.physicalMemory >> 30), build: build)
    }
}

/// One group of five cross-referenced manifests, as realistic in size as the example's.
enum Generated {
    static func group(_ index: Int) -> [(String, String)] {
        let name = "m\(index)"
        return [
            ("features/\(name).yaml", """
            apiVersion: cairn/v1
            kind: FeaturePipeline
            metadata: {name: \(name)-features, labels: {team: t\(index % 17)}}
            spec:
              stages:
                - name: ingest
                  command: [python3, pipelines/ingest.py, --out, data/\(name)/raw.csv]
                  deps: [pipelines/ingest.py]
                  outs: [data/\(name)/raw.csv]
                - name: featurize
                  command: [python3, pipelines/featurize.py, data/\(name)/raw.csv, features/\(name).csv]
                  deps: [pipelines/featurize.py, data/\(name)/raw.csv]
                  outs: [features/\(name).csv]

            """),
            ("training/\(name).yaml", """
            apiVersion: cairn/v1
            kind: TrainingSchedule
            metadata: {name: \(name)-weekly}
            spec:
              model: \(name)
              features: \(name)-features
              schedule: "0 3 * * 1"
              command: [python3, train.py, --features, features/\(name).csv]
              deps: [train.py]
              params: {C: 1.0, max_iter: 200}
              outputs: {model: models/\(name).bin, metrics: metrics/\(name).json}
              gate:
                - {metric: auc, atLeast: 0.75}
              timeout: 10m
              retries: 1

            """),
            ("models/\(name).yaml", """
            apiVersion: cairn/v1
            kind: Model
            metadata: {name: \(name)}
            spec:
              stages: [staging, production]
              assignments: {staging: 2, production: 1}

            """),
            ("deployments/\(name).yaml", """
            apiVersion: cairn/v1
            kind: ModelDeployment
            metadata: {name: \(name)-prod}
            spec:
              model: \(name)
              stage: production
              target:
                process:
                  command: [python3, serve.py, --model, "${CAIRN_MODEL_PATH}", --port, "${CAIRN_PORT}"]
                  health: {path: /healthz, timeout: 30s}

            """),
            ("monitors/\(name).yaml", """
            apiVersion: cairn/v1
            kind: Monitor
            metadata: {name: \(name)-quality}
            spec:
              deployment: \(name)-prod
              thresholds:
                - {metric: accuracy, below: 0.7, for: 10m, action: retrain}
                - {metric: error_rate, above: 0.05, for: 5m, action: rollback}
              source: {push: {}}

            """),
        ]
    }
}

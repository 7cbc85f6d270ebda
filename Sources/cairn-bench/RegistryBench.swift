import ArgumentParser
import CairnCore
import CairnStore
import Foundation

/// The registry side of issue 11: fills a store with versions as TrainingSchedules write them,
/// and times the three calls the registry benchmark compares with GTO and MLflow, in process.
/// Scripts/bench-registry runs it and times the `cairn models` commands around it.
struct RegistryBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Fill a model registry, or time listing it, one model's history and registering a version.",
        discussion: """
        With --populate: registers --models × --versions versions into a fresh state \
        directory, each in its own transaction as `Store.register` writes it, with metrics, \
        a gate verdict and lineage (code and feature hashes) like a training's. Models are \
        m000, m001, …; versions 1 to --versions.

        Without it: opens the populated store and times, in this process, after one warm-up \
        call each and --repeats times each:
          list      Store.registeredModels(): every model's newest version and count (target < 50 ms)
          history   Store.versions(of: --model): one model's versions (target < 10 ms)
          register  Store.register of the next version of --register-model (target < 20 ms)
        Registrations go to another model than --model, so the history read stays the \
        populated one however often this runs. Prints every sample as JSON.

        Example (Scripts/bench-registry does this):
          cairn-bench registry --state-dir /tmp/reg --populate
          cairn-bench registry --state-dir /tmp/reg --repeats 50
        """)

    @Option(help: "The state directory: a new or empty one with --populate, a populated one without.")
    var stateDir: String

    @Flag(help: "Fill a fresh store with --models × --versions versions, then exit.")
    var populate = false

    @Option(help: "How many models to populate.")
    var models: Int = 100

    @Option(help: "How many versions each model gets when populating.")
    var versions: Int = 10

    @Option(help: "The model whose history is timed.")
    var model: String = "m042"

    @Option(help: "The model that timed registrations add versions to.")
    var registerModel: String = "m007"

    @Option(help: "How many times to time each call (after one warm-up call).")
    var repeats: Int = 50

    @Option(help: "json or text.")
    var format: String = "json"

    func validate() throws {
        if models < 1 || models > 1000 { throw ValidationError("--models must be between 1 and 1000") }
        if versions < 1 { throw ValidationError("--versions must be at least 1") }
        if repeats < 1 { throw ValidationError("--repeats must be at least 1") }
        if !["json", "text"].contains(format) { throw ValidationError("--format is json or text") }
        if !populate, model == registerModel {
            throw ValidationError("--register-model must differ from --model, so the history timed is the populated one")
        }
    }

    func run() throws {
        let directory = URL(fileURLWithPath: stateDir)
        if populate {
            let database = directory.appendingPathComponent("cairn.sqlite")
            if FileManager.default.fileExists(atPath: database.path) {
                throw ValidationError("\(database.path) exists; --populate fills a fresh state directory (remove it, or give another)")
            }
            try Self.populate(Store(directory: directory), models: models, versions: versions).emit(format: format)
            return
        }
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("cairn.sqlite").path) else {
            throw ValidationError("no store in \(directory.path); fill one first with --populate")
        }
        try Self.time(Store(directory: directory), model: model, registerModel: registerModel, repeats: repeats).emit(format: format)
    }
}

extension RegistryBench {
    struct Population: TextReport {
        var models: Int
        var versions: Int
        var seconds: Double
        var text: String {
            String(format: "registered %d versions of %d models in %.2f s (%.2f ms each)",
                   versions, models, seconds, seconds / Double(max(versions, 1)) * 1000)
        }
    }

    struct Timings: TextReport {
        var machine: Machine
        var models: Int
        var historyModel: String
        var historyVersions: Int
        var registerModel: String
        var repeats: Int
        var listSeconds: [Double]
        var historySeconds: [Double]
        var registerSeconds: [Double]
        var text: String {
            func line(_ name: String, _ samples: [Double], _ target: Double) -> String {
                "  " + name.padding(toLength: 44, withPad: " ", startingAt: 0)
                    + String(format: " %8.3f ms   target < %.0f ms", median(samples) * 1000, target * 1000)
            }
            return """
            registry of \(models) models, median of \(repeats) after one warm-up, in process (\(machine.build))
            \(line("list: registeredModels()", listSeconds, 0.050))
            \(line("history: versions(of: \(historyModel)), \(historyVersions) versions", historySeconds, 0.010))
            \(line("register: the next version of \(registerModel)", registerSeconds, 0.020))
            """
        }
    }

    /// Registers every version, model by model, oldest first; a model's versions are dated a week apart.
    static func populate(_ store: Store, models: Int, versions: Int) throws -> Population {
        let started = ContinuousClock.now
        let origin = Date(timeIntervalSince1970: 1_767_225_600)   // 2026-01-01, so the figures do not depend on today
        for index in 0..<models {
            for number in 1...versions {
                let at = origin.addingTimeInterval(Double(number * 7 * 86_400 + index * 60))
                try store.register(RegistryFixture.version(model: RegistryFixture.name(index), number: number, at: at))
            }
        }
        return Population(models: models, versions: models * versions, seconds: (ContinuousClock.now - started).seconds)
    }

    static func time(_ store: Store, model: String, registerModel: String, repeats: Int) throws -> Timings {
        var listed = 0, history = 0
        let list = try Sampling.inProcess(repeats: repeats) { listed = try store.registeredModels().count }
        let versions = try Sampling.inProcess(repeats: repeats) { history = try store.versions(of: model).count }
        guard history > 0 else { throw ValidationError("\(model) has no version in \(store.path.path); --model names a populated model") }
        // Each registration is the next number of registerModel; the record is made before the
        // clock starts, so what is timed is `register`: encoding the record, the number check, the insert, the commit.
        var next = try store.latestVersionNumber(of: registerModel) + 1
        var register: [Double] = []
        for round in 0...repeats {   // round 0 is the warm-up
            let version = RegistryFixture.version(model: registerModel, number: next, at: Date(), unique: true)
            next += 1
            let started = ContinuousClock.now
            try store.register(version)
            if round > 0 { register.append((ContinuousClock.now - started).seconds) }
        }
        return Timings(machine: .current, models: listed, historyModel: model, historyVersions: history, registerModel: registerModel,
                       repeats: repeats, listSeconds: list, historySeconds: versions, registerSeconds: register)
    }
}

import CairnCore
import CairnManifests
import Foundation

/// What the Monitor controller keeps between passes (as JSON in the store), so a restart
/// keeps every threshold's pending and firing state, its cooldown, and where the feedback
/// loop stands. Samples are not kept: the windows refill after a restart, and until they hold
/// `minSamples` a threshold neither fires nor resolves.
struct MonitorMemory: Codable, Equatable {
    /// The deployment this state is about: a Monitor pointed at another starts afresh.
    var deployment: String?
    /// When a polled source was last read (at most once per interval, whatever else wakes the Monitor).
    var lastPolled: Date?
    /// What the last poll found wrong, said again until the next poll.
    var lastSourceProblem: String?
    /// By ``MonitorMemory/ruleID(_:)``: a threshold whose spec changes starts afresh.
    var rules: [String: RuleMemory] = [:]
    /// The last retrain asked for, and what became of it.
    var retrain: RetrainRequest?
    /// The version a retrain registered that passed its gate, on its way to the stage.
    var candidate: Candidate?
    /// Where a file source's last read stopped (a `jsonl` file's offset; a `json` file's identity).
    var fileCursor: FileCursor?

    struct RuleMemory: Codable, Equatable {
        var state = AlertState()
        var gate: ActionGate
        /// The aggregate, its sample count and the serving version at the last transition.
        var value: Double?
        var samples: Int?
        var version: Int?
        /// What its action did last, in words, and when.
        var acted: String?
    }

    struct RetrainRequest: Codable, Equatable {
        var triggerID: String
        var schedule: String
        var model: String
        var requestedAt: Date
        var reason: String
        /// Set once the request is answered: `no new inputs`, or the run it started.
        var runID: String?
        var answer: String?
        var settled = false
    }

    struct Candidate: Codable, Equatable {
        var model: String
        var version: Int
        /// The stages a proposal was written for (each once).
        var proposed: [String] = []
        var serves = false
    }

    /// What an older Cairn kept, or a damaged row, starts afresh rather than stalls (a store
    /// that cannot be read at all is the caller's error, retried: the state is not lost).
    static func load(_ data: Data?) -> MonitorMemory {
        guard let data else { return MonitorMemory() }
        return (try? JSONDecoder().decode(MonitorMemory.self, from: data)) ?? MonitorMemory()
    }

    var encoded: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)) ?? Data()
    }

    /// A threshold's identity: everything in its spec, so an edited threshold is a new one.
    static func ruleID(_ threshold: MonitorSpec.Threshold) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(threshold)) ?? Data(threshold.metric.utf8)
        return String(ContentHash.sha256(of: data).hex.prefix(16))
    }
}

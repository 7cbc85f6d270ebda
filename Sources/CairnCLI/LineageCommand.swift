import ArgumentParser
import CairnCore
import CairnManifests
import CairnStore
import Foundation

extension Cairn {
    struct Lineage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lineage",
            abstract: "What produced a model version, back to the commit and the data, as a tree.",
            discussion: """
            Shows the version's model file and gate verdict, the training run (trigger, why, \
            command, params, key, timings), the source commit, the code and data files its key \
            covered with their SHA-256, and each feature artifact it consumed with the pipeline \
            run that produced it, and that run's own inputs, back to the stages that read only \
            the repository or data under a --data-root.

            Exit code 0 when shown; 1 when the version does not exist; 3 when the state cannot be read.

            Examples:
              cairn lineage churn@2
              cairn lineage churn@2 --format json
            """)

        @Argument(help: "MODEL@VERSION, such as churn@2.")
        var version: String

        @OptionGroup var location: StateOptions

        @Option(help: "text or json.")
        var format: OutputFormat = .text

        func validate() throws {
            if ModelText.parse(version) == nil { throw ValidationError("\(version) is not MODEL@VERSION, such as churn@2") }
        }

        func run() async throws {
            let store = try location.openStore()
            let found = try ModelText.find(version, in: store)
            let tree = try LineageTree(store: store).tree(of: found)
            if format == .json {
                struct Document: Encodable {
                    var version: ModelVersion
                    var tree: LineageTree.Node
                }
                print(Document(version: found, tree: tree).jsonText())
                return
            }
            print(tree.rendered())
        }
    }
}

/// The lineage of a version as a tree of labelled nodes.
final class LineageTree {
    let store: Store
    /// The producers already drawn, by path and digest: stages sharing an input show it once.
    private var shown: Set<String> = []

    init(store: Store) {
        self.store = store
    }
    /// How deep the walk back through pipeline runs goes at most.
    static let depthLimit = 12

    struct Node: Encodable {
        var label: String
        var children: [Node] = []

        /// The tree drawn with box characters, as `tree` draws directories.
        func rendered() -> String {
            var lines = [label]
            for (index, child) in children.enumerated() {
                lines += child.lines(prefix: "", last: index == children.count - 1)
            }
            return lines.joined(separator: "\n")
        }

        private func lines(prefix: String, last: Bool) -> [String] {
            var lines = [prefix + (last ? "└─ " : "├─ ") + label]
            for (index, child) in children.enumerated() {
                lines += child.lines(prefix: prefix + (last ? "   " : "│  "), last: index == children.count - 1)
            }
            return lines
        }
    }

    func tree(of version: ModelVersion) throws -> Node {
        let lineage = version.lineage
        var root = Node(label: "\(version.name)  \(version.artifactPath) \(short(version.artifact.digest.description)) "
                        + "(\(RunText.bytes(Int64(version.artifact.size))))  gate \(version.gate.summary)")
        if !version.metrics.isEmpty { root.children.append(Node(label: "metrics: " + ModelText.metrics(version.metrics))) }
        var run = Node(label: "run \(lineage.runID)  trigger \(lineage.trigger)" + (lineage.triggerID.map { " (\($0))" } ?? "")
                       + (lineage.duration.map { ", ran \(RunText.duration($0))" } ?? "") + ", registered \(RunText.when(version.registeredAt))")
        if let record = try store.run(id: lineage.runID), let reason = record.reason { run.children.append(Node(label: "why: \(reason)")) }
        run.children.append(Node(label: "command: \(RunText.commandLine(lineage.command))"))
        run.children.append(Node(label: "params: \(lineage.params)"))
        run.children.append(Node(label: "key: \(lineage.runKey)"))
        root.children.append(run)
        root.children.append(Node(label: "commit \(lineage.sourceCommit)  (TrainingSchedule/\(lineage.schedule))"))
        root.children += files(code: lineage.code, data: lineage.data, program: lineage.program)
        if !lineage.features.isEmpty {
            var features = Node(label: "features" + (lineage.featurePipeline.map { " (FeaturePipeline/\($0))" } ?? ""))
            let producers = try lineage.featurePipeline.map { try store.recentRuns(of: ObjectRef(.featurePipeline, $0), in: [.succeeded], limit: 5_000) } ?? []
            let training = try store.run(id: lineage.runID)
            for (path, artifact) in lineage.features.sorted(by: { $0.key < $1.key }) {
                features.children.append(try produced(path, digest: artifact.digest.description, by: producers,
                                                      preferring: lineage.featureRuns?[path], consumer: training, depth: 0))
            }
            root.children.append(features)
        }
        return root
    }

    /// A consumed output, with the pipeline run that produced it and, in turn, its own inputs.
    /// The producer is the run the consumer recorded, when it did (a training records the runs
    /// its pipeline's status reported); otherwise, of the runs that made these bytes, the one of
    /// the consumer's commit, or else the newest submitted before the consumer (runs of other
    /// code can make the same bytes: the one whose code was at that commit is the answer).
    private func produced(_ path: String, digest: String, by runs: [RunRecord], preferring preferred: String?, consumer: RunRecord?,
                          depth: Int) throws -> Node {
        var node = Node(label: "\(path) \(short(digest))")
        guard shown.insert(path + " " + digest).inserted else {
            node.label += "  (its lineage is shown above)"
            return node
        }
        let candidates = runs.filter { $0.outputs[path]?.digest.description == digest }
        let recorded = try preferred.flatMap { id in try candidates.first { $0.id == id } ?? store.run(id: id) }
            .flatMap { $0.outputs[path]?.digest.description == digest ? $0 : nil }
        let chosen = recorded
            ?? candidates.first { $0.sourceCommit == consumer?.sourceCommit }
            ?? candidates.first { candidate in consumer.map { candidate.submittedAt <= $0.submittedAt } ?? true }
            ?? candidates.first
        guard let producer = chosen else {
            node.label += "  (no run that produced it is recorded)"
            return node
        }
        node.label += "  ← stage \(producer.stage ?? "?"), run \(producer.id), commit \(producer.sourceCommit.prefix(10))"
        guard depth < Self.depthLimit else {
            node.children.append(Node(label: "… (deeper inputs left out)"))
            return node
        }
        node.children += files(code: RunKey.paths(in: producer.inputs, prefixes: ["dep:", "code:"]),
                               data: RunKey.paths(in: producer.inputs, prefixes: ["data:"]), program: producer.inputs["program"])
        for (part, upstream) in producer.inputs.sorted(by: { $0.key < $1.key }) where part.hasPrefix("input:") {
            node.children.append(try produced(String(part.dropFirst("input:".count)), digest: upstream, by: runs, preferring: nil,
                                              consumer: producer, depth: depth + 1))
        }
        return node
    }

    private func files(code: [String: String], data: [String: String], program: String?) -> [Node] {
        var nodes: [Node] = []
        if !code.isEmpty {
            nodes.append(Node(label: "code", children: code.sorted { $0.key < $1.key }.map { Node(label: "\($0.key) \(short($0.value))") }))
        }
        if !data.isEmpty {
            nodes.append(Node(label: "data", children: data.sorted { $0.key < $1.key }.map { Node(label: "\($0.key) \(short($0.value))") }))
        }
        if let program {
            let parts = program.split(separator: " ")
            nodes.append(Node(label: "program \(parts.first ?? "")" + (parts.count > 1 ? " \(short(String(parts[1])))" : "")))
        }
        return nodes
    }

    private func short(_ digest: String) -> String {
        let hex = digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : digest
        return "sha256:" + hex.prefix(12)
    }
}

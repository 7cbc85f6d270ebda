import Foundation
public import CairnManifests
public import CairnCore

/// How an object's status reads on the status branch: `<Kind>/<name>.yaml`, YAML written in a
/// fixed order so that an unchanged status is an unchanged file.
public enum StatusDocument {
    public static func path(of ref: ObjectRef) -> String { "\(ref.kind.rawValue)/\(ref.name).yaml" }

    public static func render(_ status: ObjectStatus, statusBranch: String = "cairn/status") -> String {
        var lines = [
            "# Status of \(status.ref), written by Cairn. History: git log \(statusBranch) -- \(path(of: status.ref))",
            "apiVersion: cairn/v1",
            "kind: \(status.ref.kind.rawValue)",
            "name: \(status.ref.name)",
            "manifest: \(quoted(status.manifestPath))",
            "observedCommit: \(status.observedCommit)",
            "observedGeneration: \(status.generation)",
            "ready: \(status.ready.rawValue.lowercased())",
            "reason: \(quoted(status.reason))",
            "conditions:",
        ]
        for condition in status.conditions {
            lines += [
                "  - type: \(condition.type)",
                "    status: \"\(condition.status.rawValue)\"",
                "    reason: \(quoted(condition.reason))",
                "    message: \(quoted(condition.message))",
                "    lastTransitionTime: \(timestamp(condition.lastTransitionTime))",
            ]
        }
        if let runs = status.runs, !runs.isEmpty {
            lines.append("runs:")
            lines += runs.map { "  - \(quoted($0))" }
        }
        if let stages = status.stages { lines += render(stages) }
        if let serving = status.serving { lines.append("serving: \(serving)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A Model's stages: who holds each now (since when, by whose commit), and which versions
    /// have held each, which is what `cairn plan` reads from a plain clone to judge strictOrder.
    static func render(_ stages: StageMap) -> [String] {
        var lines = [stages.holders.isEmpty ? "stages: {}" : "stages:"]
        for stage in stages.holders.keys.sorted() {
            guard let holding = stages.holders[stage] else { continue }
            lines += [
                "  \(stage):",
                "    version: \(holding.version)",
                "    since: \(timestamp(holding.since))",
                "    commit: \(holding.commit)",
                "    author: \(quoted(holding.author))",
            ]
        }
        lines.append(stages.held.isEmpty ? "held: {}" : "held:")
        for stage in stages.held.keys.sorted() {
            lines.append("  \(stage): [" + (stages.held[stage] ?? []).map(String.init).joined(separator: ", ") + "]")
        }
        return lines
    }

    /// A JSON string is a valid YAML double-quoted scalar, with every character escaped safely.
    static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        // "\/" is an escape YAML 1.1 readers (PyYAML, for one) do not know.
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let data = try? encoder.encode(text) else { return "\"\"" }
        return String(decoding: data, as: UTF8.self)
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// The README at the root of the status branch, naming the branches actually in use.
    public static func readme(statusBranch: String, trackedBranch: String) -> String {
        """
        # Cairn status

        This branch (\(statusBranch)) is written by Cairn. It holds one file per object,
        `<Kind>/<name>.yaml`, with the object's conditions (Ready, Reconciling, Stalled), the source
        commit of \(trackedBranch) it was last reconciled at, and its spec's hash. Ready is true only
        when Cairn checked that the actual state matches the spec; it is unknown, with reason
        NotImplemented, where Cairn cannot do that kind's work yet. Every change of status is one
        commit whose subject is `<Kind>/<name>: <Reason>` and whose trailers link it back:

            Cairn-Object: Model/churn
            Cairn-Source-Commit: <the commit of \(trackedBranch)>

        A deployment that rolled back by itself proposes the reverse assignment as a commit on a
        branch of its own, cairn/proposals/<model>-rollback-<n>, for people to merge into
        \(trackedBranch); its status commit names that branch in a `Cairn-Proposal:` trailer.

        Read it with plain git, in the repository Cairn tracks:

            git log \(statusBranch)                                   # every status change, newest first
            git log \(statusBranch) -- Model/churn.yaml               # one object's history
            git show \(statusBranch):ModelDeployment/churn-prod.yaml  # one object's status now
            git log --notes=cairn \(trackedBranch)                     # what Cairn did with each commit

        From a clone, fetch the branch and the notes (git fetches neither by default), then read
        them as origin's:

            git fetch origin \(statusBranch) refs/notes/cairn:refs/notes/cairn
            git log origin/\(statusBranch)
            git log --notes=cairn origin/\(trackedBranch)

        """
    }
}

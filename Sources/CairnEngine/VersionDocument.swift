import Foundation
public import CairnCore

/// How a model version reads on the status branch: `ModelVersion/<model>/<version>.yaml`,
/// written once when the version is registered, in the same commit as the status of the
/// training that registered it. Fields come in a fixed order; strings are JSON-quoted (valid
/// YAML), numbers in their shortest exact form, so the file can be read back by any YAML
/// reader from a plain clone, without Cairn's state.
public enum VersionDocument {
    public static func path(of version: ModelVersion) -> String { path(model: version.model, version: version.version) }

    public static func path(model: String, version: Int) -> String { "ModelVersion/\(model)/\(version).yaml" }

    public static func render(_ version: ModelVersion, statusBranch: String = "cairn/status") -> String {
        let q = StatusDocument.quoted
        let lineage = version.lineage
        var lines = [
            "# \(version.name), registered by Cairn. All versions: git log \(statusBranch) -- ModelVersion/\(version.model)/",
            "apiVersion: cairn/v1",
            "kind: ModelVersion",
            "model: \(version.model)",
            "version: \(version.version)",
            "registeredAt: \(StatusDocument.timestamp(version.registeredAt))",
            "artifact:",
            "  path: \(q(version.artifactPath))",
        ] + artifact(version.artifact, indent: "  ")
        lines.append(version.metrics.isEmpty ? "metrics: {}" : "metrics:")
        lines += version.metrics.keys.sorted().map { "  \(q($0)): \((version.metrics[$0] ?? 0).shortText)" }
        lines += ["gate:", "  passed: \(version.gate.passed)", "  summary: \(q(version.gate.summary))"]
        lines.append(version.gate.rules.isEmpty ? "  rules: []" : "  rules:")
        for rule in version.gate.rules {
            lines.append("    - rule: \(q(rule.rule))")
            lines.append("      metric: \(q(rule.metric))")
            if let value = rule.value { lines.append("      value: \(value.shortText)") }
            if let threshold = rule.threshold { lines.append("      threshold: \(threshold.shortText)") }
            lines.append("      passed: \(rule.passed)")
            if let champion = rule.champion { lines.append("      champion: \(champion)") }
            if let same = rule.sameFeatures { lines.append("      sameFeatures: \(same)") }
            lines.append("      verdict: \(q(rule.verdict))")
        }
        lines += [
            "lineage:",
            "  schedule: \(q(lineage.schedule))",
            "  sourceCommit: \(lineage.sourceCommit)",
            "  run: \(q(lineage.runID))",
            "  runKey: \(q(lineage.runKey))",
            "  trigger: \(q(lineage.trigger))",
        ]
        if let id = lineage.triggerID { lines.append("  triggerID: \(q(id))") }
        if let reason = lineage.reason { lines.append("  reason: \(q(reason))") }
        lines.append("  command: [" + lineage.command.map(q).joined(separator: ", ") + "]")
        if lineage.shell == true { lines.append("  shell: true") }
        lines.append("  params: \(q(lineage.params))")
        if !lineage.environment.isEmpty { lines.append("  environment: [" + lineage.environment.map(q).joined(separator: ", ") + "]") }
        if let program = lineage.program { lines.append("  program: \(q(program))") }
        if let pipeline = lineage.featurePipeline { lines.append("  featurePipeline: \(q(pipeline))") }
        lines.append(lineage.features.isEmpty ? "  features: {}" : "  features:")
        for path in lineage.features.keys.sorted() {
            guard let artifact = lineage.features[path] else { continue }
            lines.append("    \(q(path)):")
            lines += self.artifact(artifact, indent: "      ")
            if let run = lineage.featureRuns?[path] { lines.append("      run: \(q(run))") }
        }
        lines.append(lineage.code.isEmpty ? "  code: {}" : "  code:")
        lines += lineage.code.keys.sorted().map { "    \(q($0)): \(q(lineage.code[$0] ?? ""))" }
        lines.append(lineage.data.isEmpty ? "  data: {}" : "  data:")
        lines += lineage.data.keys.sorted().map { "    \(q($0)): \(q(lineage.data[$0] ?? ""))" }
        if let started = lineage.startedAt { lines.append("  startedAt: \(StatusDocument.timestamp(started))") }
        if let finished = lineage.finishedAt { lines.append("  finishedAt: \(StatusDocument.timestamp(finished))") }
        if let duration = lineage.duration { lines.append("  durationSeconds: \(((duration * 1000).rounded() / 1000).shortText)") }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func artifact(_ artifact: Artifact, indent: String) -> [String] {
        ["\(indent)kind: \(artifact.kind.rawValue)", "\(indent)sha256: \(artifact.digest.hex)", "\(indent)size: \(artifact.size)"]
    }
}

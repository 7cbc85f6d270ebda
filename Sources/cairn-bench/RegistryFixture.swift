import CairnCore
import Foundation

/// Versions as a TrainingSchedule registers them (Controllers/TrainingSchedule/Registration.swift):
/// metrics, a gate verdict, lineage back to a commit with the hashes of the code and features
/// the run's key covered. Deterministic for populated versions, so two stores filled with the
/// same sizes hold the same records.
enum RegistryFixture {
    /// `m000`, `m001`, … `m999`: the names the GTO and MLflow registries of the benchmark use too.
    static func name(_ index: Int) -> String {
        "m" + String(repeating: "0", count: max(0, 3 - String(index).count)) + String(index)
    }

    /// Version `number` of `model`. With `unique`, the run id gets a random suffix, so a
    /// timed registration never collides with one made by an earlier run of the benchmark.
    static func version(model: String, number: Int, at date: Date, unique: Bool = false) -> ModelVersion {
        let seed = "\(model)@\(number)"
        func hash(_ what: String) -> ContentHash { .sha256(of: Data("\(seed) \(what)".utf8)) }
        // Metrics that wander with the version; every seventh version misses the gate.
        let wobble = Double(Int(hash("wobble").hex.prefix(4), radix: 16) ?? 0) / 65_535
        func rounded(_ value: Double) -> Double { (value * 10_000).rounded() / 10_000 }
        let auc = rounded(number % 7 == 0 ? 0.70 + wobble * 0.04 : 0.76 + wobble * 0.15)
        let metrics = ["auc": auc, "accuracy": rounded(auc - 0.05), "f1": rounded(auc - 0.09), "log_loss": rounded(1.1 - auc),
                       "train_rows": 120_000 + Double(number * 500)]
        let rule = GateRuleResult(rule: "auc >= 0.75", metric: "auc", value: auc, threshold: 0.75, passed: auc >= 0.75,
                                  verdict: String(format: "auc %.4g", auc) + (auc >= 0.75 ? " >= 0.75" : " < 0.75"))
        let features = ["features/\(model).csv": Artifact(kind: .file, digest: hash("features"), size: 48_000_000 + number * 1_000)]
        let code = [
            "train.py": hash("train.py").hex,
            "pipelines/featurize.py": hash("featurize.py").hex,
            "lib/\(model)/model.py": hash("model.py").hex,
            "params.yaml": hash("params").hex,
        ]
        var lineage = Lineage(
            schedule: "\(model)-weekly", sourceCommit: String(hash("commit").hex.prefix(40)),
            runID: "run-\(model)-\(number)" + (unique ? "-\(UUID().uuidString.prefix(8).lowercased())" : ""),
            runKey: hash("key").hex, trigger: number == 1 ? "commit" : "schedule", triggerID: nil,
            command: ["python3", "train.py", "--features", "features/\(model).csv"],
            params: #"{"C":1.0,"max_iter":\#(200 + number * 10)}"#, environment: ["CAIRN_PARAMS"],
            featurePipeline: "\(model)-features", features: features, code: code, data: [:],
            program: "/usr/bin/python3 \(hash("python3").hex)", startedAt: date.addingTimeInterval(-95), finishedAt: date)
        lineage.metricsPath = "metrics/\(model).json"
        lineage.metricsArtifact = Artifact(kind: .file, digest: hash("metrics"), size: 160)
        lineage.timeout = 600
        return ModelVersion(model: model, version: number, artifact: Artifact(kind: .file, digest: hash("model"), size: 2_400_000 + number),
                            artifactPath: "models/\(model).bin", metrics: metrics, gate: GateVerdict(rules: [rule]),
                            lineage: lineage, registeredAt: date)
    }
}

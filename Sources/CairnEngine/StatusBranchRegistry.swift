public import CairnCore
public import CairnGit
import CairnManifests
import Foundation
import Yams

/// The registry as the status branch holds it (`ModelVersion/<model>/<n>.yaml` and the stage
/// map in `Model/<model>.yaml`), for readers with a clone and no state directory: `cairn plan`
/// in CI. Read through the object database at one commit of the branch; every file is bounded
/// in size, and a file that cannot be read is an error that names it, never a guess.
public final class StatusBranchRegistry: ModelVersions {
    let repository: Repository
    let tip: ObjectID
    /// The branch as it was found (`origin/cairn/status`), and its commit.
    public let branch: String
    private var versions: [String: ModelVersion?] = [:]
    private var maps: [String: StageMap] = [:]

    static let fileLimit = 1 << 20

    init(repository: Repository, branch: String, tip: ObjectID) {
        self.repository = repository
        self.branch = branch
        self.tip = tip
    }

    /// The status branch, local or fetched from origin; nil when neither is there. With both,
    /// the local one unless it is behind origin's: a branch someone checked out once and never
    /// pulled would judge by an old registry, whereas a daemon's own branch is ahead or level.
    public static func find(in repository: Repository, statusBranch: String) throws -> StatusBranchRegistry? {
        let local = try repository.referenceTarget("refs/heads/\(statusBranch)")
        let remote = try repository.referenceTarget("refs/remotes/origin/\(statusBranch)")
        switch (local, remote) {
        case (let local?, let remote?) where local != remote && repository.isAncestor(local, of: remote):
            return StatusBranchRegistry(repository: repository, branch: "origin/\(statusBranch)", tip: remote)
        case (let local?, _):
            return StatusBranchRegistry(repository: repository, branch: statusBranch, tip: local)
        case (nil, let remote?):
            return StatusBranchRegistry(repository: repository, branch: "origin/\(statusBranch)", tip: remote)
        case (nil, nil):
            return nil
        }
    }

    public var commit: String { tip.hex }

    public func version(_ model: String, _ number: Int) throws -> ModelVersion? {
        let path = VersionDocument.path(model: model, version: number)
        if let known = versions[path] { return known }
        let found = try document(at: path).map { try Self.version(from: $0, path: path) }
        versions[path] = .some(found)
        return found
    }

    public func version(registeredBy runID: String) throws -> ModelVersion? { nil }

    public func latestVersionNumber(of model: String) throws -> Int {
        try repository.listFiles(in: tip, under: "ModelVersion/\(model)").compactMap { entry in
            Int(entry.path.split(separator: "/").last?.dropLast(".yaml".count) ?? "")
        }.max() ?? 0
    }

    public func stageMap(of model: String) throws -> StageMap {
        if let known = maps[model] { return known }
        let path = StatusDocument.path(of: ObjectRef(.model, model))
        var map = StageMap()
        if let document = try document(at: path) {
            for (stage, value) in document["stages"] as? [String: Any] ?? [:] {
                guard let holding = value as? [String: Any], let version = holding["version"] as? Int else {
                    throw RegistryReadError("\(branch):\(path): stages.\(stage) has no version")
                }
                map.holders[stage] = StageHolding(version: version, since: Self.date(holding["since"]) ?? .distantPast,
                                                  commit: holding["commit"] as? String ?? "", author: holding["author"] as? String ?? "")
            }
            for (stage, value) in document["held"] as? [String: Any] ?? [:] {
                map.held[stage] = (value as? [Any] ?? []).compactMap { $0 as? Int }.sorted()
            }
        }
        maps[model] = map
        return map
    }

    public func stageChangeCount(of model: String, stage: String) throws -> Int { 0 }

    /// A YAML mapping read from the branch; nil when there is no such file.
    private func document(at path: String) throws -> [String: Any]? {
        guard let data = try repository.file(at: path, in: tip) else { return nil }
        guard data.count <= Self.fileLimit else {
            throw RegistryReadError("\(branch):\(path) is \(data.count) bytes, more than a registry file can be (\(Self.fileLimit))")
        }
        do {
            guard let mapping = try Yams.load(yaml: String(decoding: data, as: UTF8.self)) as? [String: Any] else {
                throw RegistryReadError("\(branch):\(path) is not a YAML mapping")
            }
            return mapping
        } catch let error as RegistryReadError {
            throw error
        } catch {
            throw RegistryReadError("\(branch):\(path) is not YAML Cairn wrote: \(error)")
        }
    }

    private static func version(from document: [String: Any], path: String) throws -> ModelVersion {
        guard let model = document["model"] as? String, let number = document["version"] as? Int,
              let gate = document["gate"] as? [String: Any], let passed = gate["passed"] as? Bool else {
            throw RegistryReadError("\(path) lacks model, version or gate.passed")
        }
        var metrics: [String: Double] = [:]
        for (name, value) in document["metrics"] as? [String: Any] ?? [:] {
            if let number = value as? Double { metrics[name] = number } else if let number = value as? Int { metrics[name] = Double(number) }
        }
        let rules = (gate["rules"] as? [Any] ?? []).compactMap { $0 as? [String: Any] }.map { rule in
            GateRuleResult(rule: rule["rule"] as? String ?? "", metric: rule["metric"] as? String ?? "", value: Self.number(rule["value"]),
                           threshold: Self.number(rule["threshold"]), passed: rule["passed"] as? Bool ?? false, champion: rule["champion"] as? Int,
                           sameFeatures: rule["sameFeatures"] as? Bool, verdict: rule["verdict"] as? String ?? "")
        }
        var verdict = GateVerdict(rules: rules)
        verdict.passed = passed
        let artifactFields = document["artifact"] as? [String: Any] ?? [:]
        let lineageFields = document["lineage"] as? [String: Any] ?? [:]
        let lineage = Lineage(schedule: lineageFields["schedule"] as? String ?? "", sourceCommit: lineageFields["sourceCommit"] as? String ?? "",
                              runID: lineageFields["run"] as? String ?? "", runKey: lineageFields["runKey"] as? String ?? "",
                              trigger: lineageFields["trigger"] as? String ?? "", triggerID: lineageFields["triggerID"] as? String,
                              command: (lineageFields["command"] as? [Any] ?? []).compactMap { $0 as? String },
                              params: lineageFields["params"] as? String ?? "{}", environment: [], featurePipeline: lineageFields["featurePipeline"] as? String,
                              features: [:], code: lineageFields["code"] as? [String: String] ?? [:], data: lineageFields["data"] as? [String: String] ?? [:],
                              program: lineageFields["program"] as? String, startedAt: date(lineageFields["startedAt"]),
                              finishedAt: date(lineageFields["finishedAt"]))
        let artifact = Artifact(kind: .file, digest: ContentHash(hex: artifactFields["sha256"] as? String ?? ""), size: artifactFields["size"] as? Int ?? 0)
        return ModelVersion(model: model, version: number, artifact: artifact, artifactPath: artifactFields["path"] as? String ?? "",
                            metrics: metrics, gate: verdict, lineage: lineage, registeredAt: date(document["registeredAt"]) ?? .distantPast)
    }

    private static func number(_ value: Any?) -> Double? {
        if let double = value as? Double { return double }
        return (value as? Int).map(Double.init)
    }

    private static func date(_ value: Any?) -> Date? {
        if let date = value as? Date { return date }
        guard let text = value as? String else { return nil }
        return ISO8601DateFormatter().date(from: text)
    }
}

/// A registry file on the status branch that cannot be read as Cairn writes it.
public struct RegistryReadError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

import CairnCore
import CairnGit
import CairnStore
import Foundation

/// What `cairn-bench plan` plans: the generated repository of the default benchmark (N/5
/// groups of five cross-referenced manifests, `Generated.group`) with the code its commands
/// name, a second commit that touches a tenth of the manifests the ways a pull request does,
/// and a state directory whose registry can judge the promotions among them.
///
/// At 10,000 manifests (2,000 groups) the change touches 1,000: 250 trainings' params (so
/// their run keys change), 50 trainings' timeouts, 150 pipelines (a stage's timeout), 200
/// deployments (the health check's timeout), 200 monitors (a threshold), 100 Models (20
/// promotions, 80 policy changes), 25 manifests created (5 groups, their Models assigning no
/// stage yet) and 25 deleted (5 groups).
/// Base is `main`, head `change`, in a bare repository.
struct PlanFixture {
    var repository: URL
    var state: URL
    var manifests: Int
    var changedFiles: Int
    var expected: PlanSummary
    let base = "main"
    let head = "change"

    /// How a group's manifests change at head, in the order the groups are given them.
    private enum Edit: CaseIterable {
        case params, trainingTimeout, pipelineTimeout, deployment, monitor, model

        /// How many groups of `groups` get this edit.
        func count(of groups: Int) -> Int {
            switch self {
            case .params: groups / 8
            case .trainingTimeout: groups / 40
            case .pipelineTimeout: groups * 3 / 40
            case .deployment, .monitor: groups / 10
            case .model: groups / 20
            }
        }
    }

    /// The promotions, by the position of the Model among the changed ones: what head assigns
    /// and what the registry's policy says. Base assigns {staging: 2, production: 1}; the
    /// registry has versions 1 to 8 (7 failed its gate) and has accepted staging 1, production
    /// 1, staging 2.
    private static let promotions: [(assignments: String, decision: String, rule: String?)] =
        Array(repeating: ("{staging: 3, production: 1}", "accepted", nil), count: 12)
        + Array(repeating: ("{staging: 2, production: 2}", "accepted", nil), count: 4)
        + Array(repeating: ("{staging: 7, production: 1}", "refused", PromotionPolicy.gateFailed), count: 2)
        + [("{staging: 2, production: 3}", "refused", PromotionPolicy.orderViolated),
           ("{staging: 99, production: 1}", "refused", PromotionPolicy.versionNotFound)]

    /// The files every command of the generated manifests names, so that run keys can be made.
    private static let code: [String: String] = [
        "train.py": "import json\nimport sys\n\nprint(json.dumps({'auc': 0.8}))\n",
        "pipelines/ingest.py": "import sys\n\nopen(sys.argv[-1], 'w').write('id,label\\n')\n",
        "pipelines/featurize.py": "import sys\n\nopen(sys.argv[2], 'w').write(open(sys.argv[1]).read())\n",
        "serve.py": "import sys\n",
    ]

    static func make(in directory: URL, manifests: Int) throws -> PlanFixture {
        let groups = manifests / 5
        let repositoryURL = directory.appendingPathComponent("repo.git")
        let state = directory.appendingPathComponent("state")
        let repository = try Repository.create(at: repositoryURL, bare: true)
        let signature = Signature(name: "bench", email: "bench@localhost")

        progress("plan: committing \(manifests) manifests (base, branch main)")
        var files: [String: Data?] = code.mapValues { Data($0.utf8) }
        for group in 0..<groups {
            for (path, text) in Generated.group(group) { files[path] = Data(text.utf8) }
        }
        let base = try repository.createCommit(parent: nil, changes: files, message: "generated", author: signature)
        try repository.updateReference("refs/heads/main", to: base, expected: nil, logMessage: "bench")

        var changes: [String: Data?] = [:]
        var summary = PlanSummary(acceptable: false, invalid: 0)
        var group = 0
        var promoted: [String] = []
        for edit in Edit.allCases {
            for _ in 0..<edit.count(of: groups) {
                let (path, text) = try edited(group, edit, promotion: promoted.count)
                changes[path] = Data(text.utf8)
                summary.changed += 1
                if edit == .params { summary.runs += 1 }
                if edit == .model, promoted.count < promotions.count {
                    let promotion = promotions[promoted.count]
                    summary.promotions[promotion.decision, default: 0] += 1
                    if let rule = promotion.rule { summary.refusals[rule, default: 0] += 1 }
                    promoted.append("m\(group)")
                }
                group += 1
            }
        }
        // The last groups go, as many new ones come: each new training and pipeline stage runs for the first time.
        let replaced = max(1, groups / 400)
        for index in (groups - replaced)..<groups {
            for (path, _) in Generated.group(index) { changes[path] = .some(nil) }
            summary.deleted += 5
        }
        for index in groups..<(groups + replaced) {
            // A new model has no version yet, so its manifest assigns no stage.
            for (path, text) in Generated.group(index) {
                changes[path] = Data(text.replacingOccurrences(of: "\n  assignments: {staging: 2, production: 1}", with: "").utf8)
            }
            summary.created += 5
            summary.runs += 3   // the training, and each of its pipeline's two stages
        }
        progress("plan: committing the change of \(changes.count) manifests (head, branch change)")
        let head = try repository.createCommit(parent: base, changes: changes, message: "change \(changes.count) manifests", author: signature)
        try repository.updateReference("refs/heads/change", to: head, expected: nil, logMessage: "bench")

        progress("plan: a registry that can judge the \(promoted.count) promotions, in \(state.path)")
        try fillRegistry(Store(directory: state), models: promoted)
        return PlanFixture(repository: repositoryURL, state: state, manifests: manifests, changedFiles: changes.count, expected: summary)
    }

    /// The file of group `index` that `edit` changes, as head has it.
    private static func edited(_ index: Int, _ edit: Edit, promotion: Int) throws -> (String, String) {
        let name = "m\(index)"
        let files = Dictionary(uniqueKeysWithValues: Generated.group(index))
        func replacing(_ path: String, _ old: String, _ new: String) throws -> (String, String) {
            guard let text = files[path], text.contains(old) else {
                throw BenchFixtureError("the generated \(path) no longer holds \(old.debugDescription); PlanFixture edits it")
            }
            return (path, text.replacingOccurrences(of: old, with: new))
        }
        switch edit {
        case .params:
            return try replacing("training/\(name).yaml", "params: {C: 1.0, max_iter: 200}",
                                 index.isMultiple(of: 2) ? "params: {C: 0.5, max_iter: 200}" : "params: {C: 1.0, max_iter: 300}")
        case .trainingTimeout:
            return try replacing("training/\(name).yaml", "timeout: 10m", "timeout: 20m")
        case .pipelineTimeout:
            return try replacing("features/\(name).yaml", "outs: [features/\(name).csv]", "outs: [features/\(name).csv]\n      timeout: 30m")
        case .deployment:
            return try replacing("deployments/\(name).yaml", "timeout: 30s", "timeout: 45s")
        case .monitor:
            return try replacing("monitors/\(name).yaml", "below: 0.7,", "below: 0.72,")
        case .model:
            let old = "assignments: {staging: 2, production: 1}"
            if promotion < promotions.count { return try replacing("models/\(name).yaml", old, "assignments: " + promotions[promotion].assignments) }
            return try replacing("models/\(name).yaml", old, old + "\n  policy: {requireGate: true, strictOrder: false}")
        }
    }

    /// Versions 1 to 8 of each promoted model, and the stage changes the Model controller
    /// would have recorded for base's assignments: staging 1, production 1, then staging 2.
    private static func fillRegistry(_ store: Store, models: [String]) throws {
        let origin = Date(timeIntervalSince1970: 1_767_225_600)   // 2026-01-01
        for model in models {
            for number in 1...8 {
                try store.register(RegistryFixture.version(model: model, number: number, at: origin.addingTimeInterval(Double(number) * 86_400)))
            }
            var previous: [String: Int] = [:]
            for (step, (stage, version)) in [("staging", 1), ("production", 1), ("staging", 2)].enumerated() {
                let at = origin.addingTimeInterval(Double(10 + step) * 86_400)
                try store.recordStageChange(StageChange(
                    model: model, stage: stage, version: version, previous: previous[stage],
                    sourceCommit: String(ContentHash.sha256(of: Data("\(model) \(step)".utf8)).hex.prefix(40)),
                    author: "bench <bench@localhost>", committedAt: at.addingTimeInterval(-120), appliedAt: at,
                    ordinal: try store.stageChangeCount(of: model, stage: stage) + 1))
                previous[stage] = version
            }
        }
    }
}

/// What a plan says, in counts: what the harness checks of every answer it times.
struct PlanSummary: Codable, Equatable, CustomStringConvertible {
    var acceptable: Bool
    var invalid: Int
    var created = 0
    var changed = 0
    var deleted = 0
    var moved = 0
    /// By decision (`accepted`, `refused`, …), and refusals by rule.
    var promotions: [String: Int] = [:]
    var refusals: [String: Int] = [:]
    var runs = 0

    var description: String {
        "\(created) created, \(changed) changed, \(deleted) deleted, \(moved) moved; promotions "
            + promotions.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            + " (" + refusals.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + "); "
            + "\(runs) run keys changed; \(invalid) invalid; " + (acceptable ? "acceptable" : "not acceptable")
    }
}

struct BenchFixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

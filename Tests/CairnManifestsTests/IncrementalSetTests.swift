@testable import CairnManifests
import Testing

/// Updating a set file by file must give exactly what checking all files afresh gives.
@Suite struct IncrementalSetTests {
    static let base: [String: String] = [
        "features.yaml": Fixtures.pipeline, "training.yaml": Fixtures.training, "model.yaml": Fixtures.model,
        "deployment.yaml": Fixtures.deployment, "monitor.yaml": Fixtures.monitor,
    ]

    /// Each step replaces (or, with nil, deletes) some files.
    static let steps: [(String, [String: String?])] = [
        ("break a reference", ["training.yaml": Fixtures.training.replacingOccurrences(of: "model: churn", with: "model: chrun")]),
        ("fix it", ["training.yaml": Fixtures.training]),
        ("delete the model", ["model.yaml": nil]),
        ("bring it back under another file name", ["registry/model.yaml": Fixtures.model]),
        ("define it twice", ["model.yaml": Fixtures.model]),
        ("drop the duplicate", ["registry/model.yaml": nil]),
        ("rename a stage the deployment uses", ["model.yaml": Fixtures.model.replacingOccurrences(of: "production", with: "prod")]),
        ("restore", ["model.yaml": Fixtures.model]),
        ("delete the schedule (the monitor's retrain has nothing to run)", ["training.yaml": nil]),
        ("break the schedule instead of deleting it", ["training.yaml": Fixtures.training.replacingOccurrences(of: "command:", with: "comand:")]),
        ("restore the schedule", ["training.yaml": Fixtures.training]),
        ("a second pipeline reading the first's output", ["other.yaml": Fixtures.pipeline
            .replacingOccurrences(of: "name: feats", with: "name: other")
            .replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [data/raw.csv]")
            .replacingOccurrences(of: "outs: [data/raw.csv]", with: "outs: [other/out.csv]")]),
        ("close a cycle between the pipelines", ["features.yaml": Fixtures.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [other]")]),
        ("open it again", ["features.yaml": Fixtures.pipeline]),
        ("a file that is not YAML", ["junk.yaml": "a: [b"]),
        ("remove everything", ["features.yaml": nil, "training.yaml": nil, "model.yaml": nil, "deployment.yaml": nil,
                               "monitor.yaml": nil, "other.yaml": nil, "junk.yaml": nil]),
    ]

    @Test func updatesMatchAFreshCheckAfterEveryStep() {
        var contents = Self.base
        var incremental = Fixtures.set(contents)
        for (name, edits) in Self.steps {
            var updates: [(path: String, file: ParsedFile?)] = []
            for (path, text) in edits {
                contents[path] = text
                updates.append((path, text.map { Fixtures.parse($0, file: path) }))
            }
            incremental.update(updates)
            let fresh = Fixtures.set(contents.compactMapValues { $0 })
            #expect(incremental.diagnostics == fresh.diagnostics, "after \(name)")
            #expect(Set(incremental.manifests.keys) == Set(fresh.manifests.keys), "after \(name)")
            #expect(Set(incremental.broken.keys) == Set(fresh.broken.keys), "after \(name)")
            #expect(incremental.graph.dependencies == fresh.graph.dependencies, "after \(name)")
            #expect(incremental.isValid == fresh.isValid, "after \(name)")
        }
    }

    @Test func anUpdateReportsWhatItTouches() {
        var set = Fixtures.set(Self.base)
        let touched = set.update([("model.yaml", Fixtures.parse(Fixtures.model.replacingOccurrences(of: "production", with: "prod"), file: "model.yaml"))])
        #expect(touched.contains(ObjectRef(.model, "churn")))
        #expect(touched.contains(ObjectRef(.modelDeployment, "prod")), "the deployment names the model's stage")
        #expect(!touched.contains(ObjectRef(.featurePipeline, "feats")))
    }
}

@testable import CairnManifests
import Testing

@Suite struct ManifestSetTests {
    static let valid = ["a.yaml": Fixtures.all]

    @Test func theExampleSetIsValidAndOrderedByDependencies() {
        let set = Fixtures.set(Self.valid)
        #expect(set.isValid, "\(set.diagnostics)")
        #expect(set.ordered.map(\.ref.description) ==
                ["FeaturePipeline/feats", "TrainingSchedule/weekly", "Model/churn", "ModelDeployment/prod", "Monitor/quality"])
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var files: [String: String]
        var object: String
        var message: String
        var location: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "missing model", files: ["a.yaml": Fixtures.all.replacingOccurrences(of: "  model: churn\n  features", with: "  model: chrun\n  features")],
             object: "TrainingSchedule/weekly", message: "spec.model refers to Model/chrun, which does not exist", location: "a.yaml:15:10"),
        Case(name: "missing features", files: ["a.yaml": Fixtures.all.replacingOccurrences(of: "features: feats", with: "features: nope")],
             object: "TrainingSchedule/weekly", message: "spec.features refers to FeaturePipeline/nope", location: "a.yaml:16:13"),
        Case(name: "missing deployment", files: ["a.yaml": Fixtures.all.replacingOccurrences(of: "deployment: prod", with: "deployment: staging")],
             object: "Monitor/quality", message: "refers to ModelDeployment/staging", location: "a.yaml:40:15"),
        Case(name: "undeclared stage assignment", files: ["a.yaml": Fixtures.all.replacingOccurrences(of: "{staging: 2,", with: "{canary: 2,")],
             object: "Model/churn", message: "stage \"canary\" is assigned but not declared", location: "a.yaml:25:17"),
        Case(name: "deployment of an unknown stage", files: ["a.yaml": Fixtures.all.replacingOccurrences(of: "stage: production", with: "stage: prod")],
             object: "ModelDeployment/prod", message: "Model/churn has no stage \"prod\"", location: "a.yaml:32:10"),
        Case(name: "duplicate across files", files: ["a.yaml": Fixtures.all, "b.yaml": Fixtures.model],
             object: "Model/churn", message: "Model/churn is defined twice; the other definition is at a.yaml:20:1", location: "b.yaml:1:1"),
        Case(name: "stage cycle", files: ["a.yaml": Fixtures.pipeline + "\n    - name: loop\n      command: [x]\n      deps: [data/raw.csv]\n      outs: [ingest.py]\n"],
             object: "FeaturePipeline/feats", message: "stages ingest → loop → ingest form a cycle", location: "a.yaml:8:14"),
        Case(name: "retrain without a schedule", files: ["a.yaml": [Fixtures.model, Fixtures.deployment, Fixtures.monitor].joined(separator: "\n---\n")],
             object: "Monitor/quality", message: "action retrain needs a TrainingSchedule for Model/churn", location: "a.yaml:23:56"),
    ]

    @Test(arguments: cases)
    func crossObjectProblemsStallOnlyTheirObject(_ bad: Case) throws {
        let set = Fixtures.set(bad.files)
        #expect(!set.isValid)
        let diagnostic = try #require(set.diagnostics.first { $0.message.contains(bad.message) }, "\(set.diagnostics)")
        #expect(diagnostic.location.description == bad.location)
        #expect(diagnostic.object == bad.object)
        #expect(Set(set.broken.keys.map(\.description)) == [bad.object])
    }

    @Test func pipelinesReadingEachOthersOutputsInALoopAreACycle() {
        let first = Fixtures.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [other/out.csv]")
        let second = Fixtures.pipeline.replacingOccurrences(of: "name: feats", with: "name: other")
            .replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [data]")
            .replacingOccurrences(of: "outs: [data/raw.csv]", with: "outs: [other/out.csv]")
        let set = Fixtures.set(["a.yaml": first, "b.yaml": second])
        #expect(set.diagnostics.filter { $0.message.contains("dependency cycle") }.count == 2)
    }

    @Test func theGraphSaysWhatAChangeTouches() {
        let set = Fixtures.set(Self.valid)
        let affected = set.graph.affected(by: [ObjectRef(.model, "churn")]).map(\.description)
        #expect(affected == ["Model/churn", "ModelDeployment/prod", "Monitor/quality"])
        let fromFeatures = set.graph.affected(by: [ObjectRef(.featurePipeline, "feats")]).count
        #expect(fromFeatures == 5)
        #expect(set.graph.affected(by: [ObjectRef(.monitor, "quality")]).map(\.description) == ["Monitor/quality"])
    }
}

@testable import CairnManifests
import Foundation
import Testing

private func spec(_ stages: String) throws -> FeaturePipelineSpec {
    let file = Fixtures.parse("apiVersion: cairn/v1\nkind: FeaturePipeline\nmetadata: {name: feats}\nspec:\n  stages:\n" + stages)
    guard case .featurePipeline(let spec)? = file.manifests.first?.spec else { throw ValueError("\(file.diagnostics)") }
    return spec
}

@Suite struct StageGraphTests {
    @Test func stagesRunAfterWhatTheyReadAndOtherwiseInDeclarationOrder() throws {
        let pipeline = try spec("""
            - name: featurize
              command: [python3, featurize.py, data/raw.csv]
              outs: [features/out.csv]
            - name: ingest
              command: [python3, ingest.py, --out, data/raw.csv]
              outs: [data/raw.csv]
            - name: report
              command: [python3, report.py]
            - name: train
              command: [python3, train.py, --features=features/]
              deps: [/srv/data/labels.csv]
              outs: [model.bin]

        """)
        let graph = StageGraph(pipeline)
        #expect(graph.cycle == nil)
        #expect(graph.order == [1, 0, 2, 3])
        #expect(graph.upstream(of: 0) == [1] && graph.upstream(of: 3) == [0])
        #expect(graph.downstream(of: 1) == [0] && graph.downstream(of: 2).isEmpty)
        #expect(graph.downstreamClosure(of: 1) == [1, 0, 3])
        // The edge says why: a plain argument, and the value of --flag=dir holding an output.
        #expect(graph.edges.first { $0.downstream == 0 }?.via == .argument(2))
        let train = try #require(graph.edges.first { $0.downstream == 3 })
        #expect(train.via == .argument(2) && train.path.value == "features" && train.out.value == "features/out.csv")
        // ingest names its own output in its command: no edge to itself.
        #expect(graph.upstream(of: 1).isEmpty)
    }

    @Test func depsUnderAnOutputMakeAnEdgeExternalDepsNone() throws {
        let pipeline = try spec("""
            - name: fetch
              command: [fetch]
              outs: [data]
            - name: use
              command: [use]
              deps: [/srv/data, data/part-1.csv]

        """)
        let graph = StageGraph(pipeline)
        #expect(graph.edges.map(\.via) == [.dep(1)])
        #expect(graph.order == [0, 1])
    }

    @Test func pathArgumentsFollowTheDocumentedRule() {
        let command = ["./run.sh", "train.py", "--rows", "2000", "--rate=0.5", "--input=data/x.csv", "-o", "out/", "/abs/file",
                       "http://example.com/a", "README", "v1.2", ".env", "-o=model.bin", "--verbose", "lib/"]
        #expect(StageGraph.pathArguments(of: command) == ["train.py", "data/x.csv", "out/", "/abs/file", "model.bin", "lib/"])
        #expect(StageGraph.pathArguments(of: ["scripts/x.sh"]).isEmpty)
        #expect(StageGraph.pathArguments(of: []).isEmpty)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var message: String
        var location: String
        var hint: String? = nil
        var testDescription: String { name }
    }

    static let twoStageCycle = """
    apiVersion: cairn/v1
    kind: FeaturePipeline
    metadata: {name: feats}
    spec:
      stages:
        - name: a
          command: [python3, a.py, --in=b/out.csv]
          outs: [a/out.csv]
        - name: b
          command: [python3, b.py, a/out.csv]
          outs: [b/out.csv]
    """

    static let threeStageCycle = """
    apiVersion: cairn/v1
    kind: FeaturePipeline
    metadata: {name: feats}
    spec:
      stages:
        - name: c
          command: [c]
          deps: [b.csv]
          outs: [c.csv]
        - name: a
          command: [a, c.csv]
          outs: [a.csv]
        - name: b
          command: [b]
          deps: [a.csv]
          outs: [b.csv]
    """

    static let cases: [Case] = [
        Case(name: "the same out in two stages",
             yaml: Fixtures.pipeline + "\n    - name: again\n      command: [x]\n      outs: [data/raw.csv]\n",
             message: "data/raw.csv is already an output of stage \"ingest\"", location: "a.yaml:12:14"),
        Case(name: "one stage lists an out twice",
             yaml: Fixtures.pipeline.replacingOccurrences(of: "outs: [data/raw.csv]", with: "outs: [data/raw.csv, data/raw.csv]"),
             message: "data/raw.csv is listed twice in the outputs of stage \"ingest\"", location: "a.yaml:9:28"),
        Case(name: "an out holding another stage's out",
             yaml: Fixtures.pipeline + "\n    - name: again\n      command: [x]\n      outs: [data]\n",
             message: "data holds data/raw.csv, which is already an output of stage \"ingest\"", location: "a.yaml:12:14"),
        Case(name: "an out inside another stage's out",
             yaml: Fixtures.pipeline.replacingOccurrences(of: "outs: [data/raw.csv]", with: "outs: [data]")
                + "\n    - name: again\n      command: [x]\n      outs: [data/raw.csv]\n",
             message: "data/raw.csv lies inside data, which is already an output of stage \"ingest\"", location: "a.yaml:12:14"),
        Case(name: "deps including the stage's own outs",
             yaml: Fixtures.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [ingest.py, data]"),
             message: "stage \"ingest\" reads data, which overlaps its own output data/raw.csv", location: "a.yaml:8:25"),
        Case(name: "a cycle through deps",
             yaml: Fixtures.pipeline + "\n    - name: loop\n      command: [x]\n      deps: [data/raw.csv]\n      outs: [ingest.py]\n",
             message: "stages ingest → loop → ingest form a cycle", location: "a.yaml:8:14",
             hint: "loop reads data/raw.csv, which ingest writes (data/raw.csv); ingest reads ingest.py, which loop writes (ingest.py)"),
        Case(name: "a cycle through command arguments", yaml: twoStageCycle,
             message: "stages a → b → a form a cycle", location: "a.yaml:7:32",
             hint: "b reads a/out.csv, which a writes (a/out.csv); a reads b/out.csv, which b writes (b/out.csv)"),
        Case(name: "a cycle of three, named from its first-declared stage", yaml: threeStageCycle,
             message: "stages c → a → b → c form a cycle", location: "a.yaml:8:14"),
        Case(name: "an environment variable asked for twice",
             yaml: Fixtures.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: "env: [A, B, A]"),
             message: "spec.stages[0].env lists A twice", location: "a.yaml:8:19"),
        Case(name: "two stages of one name",
             yaml: Fixtures.pipeline + "\n    - name: ingest\n      command: [x]\n",
             message: "stage \"ingest\" appears twice in this pipeline", location: "a.yaml:10:13"),
    ]

    @Test(arguments: cases)
    func graphProblemsPointAtTheOffendingField(_ bad: Case) throws {
        let set = Fixtures.set(["a.yaml": bad.yaml])
        #expect(!set.isValid)
        let diagnostic = try #require(set.diagnostics.first { $0.message.contains(bad.message) }, "\(set.diagnostics)")
        #expect(diagnostic.location.description == bad.location, "\(diagnostic)")
        #expect(diagnostic.object == "FeaturePipeline/feats")
        if let hint = bad.hint { #expect(diagnostic.hint?.contains(hint) == true, "\(String(describing: diagnostic.hint))") }
    }

    @Test func aStageNamingItsOwnOutputInItsCommandIsValid() {
        let yaml = Fixtures.pipeline.replacingOccurrences(of: "command: [python3, ingest.py]",
                                                          with: "command: [python3, ingest.py, --out=data/raw.csv]")
        let set = Fixtures.set(["a.yaml": yaml])
        #expect(set.isValid, "\(set.diagnostics)")
    }
}

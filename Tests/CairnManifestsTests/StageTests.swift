@testable import CairnManifests
import Foundation
import Testing

/// A pipeline of the stages given as YAML list items (each starting `    - name: ...`).
private func pipeline(_ stages: String) -> String {
    "apiVersion: cairn/v1\nkind: FeaturePipeline\nmetadata: {name: feats}\nspec:\n  stages:\n" + stages
}

private func stages(of yaml: String) throws -> [FeaturePipelineSpec.Stage] {
    let file = Fixtures.parse(yaml)
    let manifest = try #require(file.manifests.first, "\(file.diagnostics)")
    guard case .featurePipeline(let spec) = manifest.spec else { throw ValueError("not a pipeline") }
    return spec.stages
}

@Suite struct StageFieldTests {
    @Test func newFieldsDecodeAndTakeDefaultsWhenAbsent() throws {
        let decoded = try stages(of: pipeline("""
            - name: full
              command: [python3, featurize.py]
              deps: [featurize.py, /srv/data/raw.csv]
              outs: [features/out.csv]
              params: {rows: 2000, rate: 0.5, mode: fast, strict: true}
              env: [HF_TOKEN, _PRIVATE_2]
              timeout: 10m
              retries: 2
              resources: {cpus: 4}
            - name: bare
              command: [make]

        """))
        let full = decoded[0]
        #expect(full.deps == [.repository(try RepositoryPath("featurize.py")), .external("/srv/data/raw.csv")])
        #expect(full.params == ["rows": .integer(2000), "rate": .number(0.5), "mode": .string("fast"), "strict": .boolean(true)])
        #expect(full.env == ["HF_TOKEN", "_PRIVATE_2"])
        #expect(full.timeout?.milliseconds == 600_000)
        #expect(full.retries == 2 && full.resources.cpus == 4)
        let bare = decoded[1]
        #expect(bare.params.isEmpty && bare.env.isEmpty && bare.timeout == nil && bare.retries == 0 && bare.resources.cpus == 1)
        #expect(bare.deps.isEmpty && bare.outs.isEmpty && !bare.shell)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var line: String
        var message: String
        var column: Int
        var replacing = "deps: [ingest.py]"
        var testDescription: String { name }
    }

    /// Each line replaces the stage's `deps: [ingest.py]` (line 8), or the field it names, in the fixture.
    static let badFields: [Case] = [
        Case(name: "env name with a dash", line: "env: [HF-TOKEN]", message: "\"HF-TOKEN\" is not an environment variable name", column: 13),
        Case(name: "env name starting with a digit", line: "env: [1X]", message: "\"1X\" is not an environment variable name", column: 13),
        Case(name: "negative retries", line: "retries: -1", message: "retries must be at least 0, not -1", column: 16),
        Case(name: "no cpus", line: "resources: {cpus: 0}", message: "resources.cpus must be at least 1, not 0", column: 25),
        Case(name: "unknown resource", line: "resources: {cpu: 2}", message: "unknown field \"cpu\"", column: 19),
        Case(name: "bad timeout", line: "timeout: soon", message: "\"soon\" is not a duration", column: 16),
        Case(name: "params that are not scalars", line: "params: {a: [1]}", message: "params.a must be a string, number or boolean", column: 19),
        Case(name: "absolute dep through ..", line: "deps: [/srv/data/../secrets]", message: "has a '..' component", column: 14),
        Case(name: "absolute dep with .", line: "deps: [/srv/./data]", message: "has a '.' component", column: 14),
        Case(name: "absolute dep with //", line: "deps: [/srv//data]", message: "has an empty component ('//')", column: 14),
        Case(name: "absolute dep with a trailing slash", line: "deps: [/srv/data/]", message: "ends with '/'", column: 14),
        Case(name: "absolute dep with a control character", line: "deps: [\"/srv/da\\tta\"]", message: "contains a control character (U+9)", column: 14),
        Case(name: "absolute dep with NUL", line: "deps: [\"/srv/\\0\"]", message: "contains a NUL character", column: 14),
        Case(name: "the file system root", line: "deps: [/]", message: "names the whole file system", column: 14),
        Case(name: "absolute out", line: "outs: [/srv/out.csv]", message: "\"/srv/out.csv\" is absolute", column: 14,
             replacing: "outs: [data/raw.csv]"),
    ]

    @Test(arguments: badFields)
    func badStageFieldsNameLineAndColumn(_ bad: Case) throws {
        let yaml = Fixtures.pipeline.replacingOccurrences(of: bad.replacing, with: bad.line)
        let file = Fixtures.parse(yaml)
        #expect(file.manifests.isEmpty)
        let diagnostic = try #require(file.diagnostics.first { $0.message.contains(bad.message) }, "\(file.diagnostics)")
        let line = bad.replacing.hasPrefix("outs") ? 9 : 8
        #expect(diagnostic.location == SourceLocation(file: "m.yaml", line: line, column: bad.column), "\(diagnostic)")
    }

    @Test func trainingDepsMayBeAbsoluteToo() throws {
        let yaml = Fixtures.training + "\n  deps: [train.py, /srv/data/churn]"
        let file = Fixtures.parse(yaml)
        guard case .trainingSchedule(let spec)? = file.manifests.first?.spec else { Issue.record("\(file.diagnostics)"); return }
        #expect(spec.deps.repositoryPaths.map(\.value) == ["train.py"])
        #expect(spec.deps.externalPaths == ["/srv/data/churn"])
        let bad = Fixtures.parse(Fixtures.training + "\n  deps: [/srv/data/../etc]")
        #expect(bad.diagnostics.first?.message.contains("has a '..' component") == true, "\(bad.diagnostics)")
    }

    /// The store keeps last-good specs as JSON; those written before the new fields existed
    /// must still decode, with the defaults.
    @Test func specsStoredBeforeTheNewFieldsStillDecode() throws {
        let stored = #"{"suspend":false,"stages":[{"name":"ingest","command":["python3","ingest.py"],"shell":false,"deps":["ingest.py"],"outs":["data/raw.csv"]}]}"#
        let spec = try JSONDecoder().decode(FeaturePipelineSpec.self, from: Data(stored.utf8))
        let stage = try #require(spec.stages.first)
        #expect(stage.deps == [.repository(try RepositoryPath("ingest.py"))])
        #expect(stage.params.isEmpty && stage.env.isEmpty && stage.timeout == nil && stage.retries == 0 && stage.resources.cpus == 1)
        // Written back, a stage at its defaults is what it was: no new keys.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let written = try String(decoding: encoder.encode(spec), as: UTF8.self)
        #expect(written == #"{"stages":[{"command":["python3","ingest.py"],"deps":["ingest.py"],"name":"ingest","outs":["data\/raw.csv"],"shell":false}],"suspend":false}"#)
    }

    @Test func aStageWithEveryFieldSurvivesTheStore() throws {
        let original = try stages(of: pipeline("""
            - name: full
              command: [python3, featurize.py]
              deps: [featurize.py, /srv/data/raw.csv]
              params: {rows: 2000, rate: 0.5}
              env: [HF_TOKEN]
              timeout: 1h30m
              retries: 3
              resources: {cpus: 2}

        """))
        let data = try JSONEncoder().encode(original)
        #expect(try JSONDecoder().decode([FeaturePipelineSpec.Stage].self, from: data) == original)
        // A stored external path that is not normal is refused on the way back in, too.
        let corrupt = #"[{"name":"a","command":["x"],"deps":["/srv/../etc"]}]"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([FeaturePipelineSpec.Stage].self, from: Data(corrupt.utf8)) }
    }
}

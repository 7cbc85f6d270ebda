import CairnCore
import CairnManifests
import CairnTestSupport
import Foundation
import Testing

@Suite struct ContentKeyTests {
    // MARK: Generations of manifests

    static let training = """
    apiVersion: cairn/v1
    kind: TrainingSchedule
    metadata: {name: churn-weekly}
    spec:
      model: churn
      schedule: "0 3 * * 1"
      command: [python3, train.py]
      params: {C: 1.5, max_iter: 200, solver: lbfgs, nested: false}
      outputs: {model: model.bin, metrics: metrics.json}
      gate: [{metric: auc, atLeast: 0.85}]
      timeout: 1h
    """

    static let deployment = """
    apiVersion: cairn/v1
    kind: ModelDeployment
    metadata: {name: churn-prod}
    spec:
      model: churn
      stage: production
      target:
        process:
          command: [python3, serve.py]
          port: 8601
          health: {path: /healthz, timeout: 30s}
    """

    @Test(arguments: [
        // Top-level spec fields in another order, params and outputs reordered inside.
        (training, """
        apiVersion: cairn/v1
        metadata: {name: churn-weekly}
        kind: TrainingSchedule
        spec:
          timeout: 1h
          gate: [{atLeast: 0.85, metric: auc}]
          outputs: {metrics: metrics.json, model: model.bin}
          params: {nested: false, solver: lbfgs, max_iter: 200, C: 1.5}
          command: [python3, train.py]
          schedule: "0 3 * * 1"
          model: churn
        """),
        // The target's fields and the health check's fields reordered, block and flow style mixed.
        (deployment, """
        apiVersion: cairn/v1
        kind: ModelDeployment
        metadata: {name: churn-prod}
        spec:
          target:
            process:
              health:
                timeout: 30s
                path: /healthz
              port: 8601
              command:
                - python3
                - serve.py
          stage: production
          model: churn
        """),
    ])
    func reorderedFieldsGiveTheSameGeneration(original: String, reordered: String) throws {
        let first = try manifest(original), second = try manifest(reordered)
        #expect(try ContentKey.generation(of: first.spec) == ContentKey.generation(of: second.spec))
        #expect(try ContentKey.generation(of: first.spec).description.hasPrefix("sha256:"))
    }

    @Test(arguments: [
        ("max_iter: 200", "max_iter: 201"),
        ("C: 1.5", "C: 1.25"),
        ("solver: lbfgs", "solver: saga"),
        ("nested: false", "nested: true"),
        ("max_iter: 200", "max_iter: \"200\""),
        ("[python3, train.py]", "[python3, train2.py]"),
        ("[python3, train.py]", "[train.py, python3]"),
        ("timeout: 1h", "timeout: 2h"),
        ("\"0 3 * * 1\"", "\"0 4 * * 1\""),
        ("atLeast: 0.85", "atMost: 0.85"),
        ("metrics: metrics.json", "metrics: scores.json"),
    ])
    func aChangedValueGivesADifferentGeneration(before: String, after: String) throws {
        let changed = Self.training.replacingOccurrences(of: before, with: after)
        #expect(changed != Self.training)
        #expect(try generation(Self.training) != generation(changed))
    }

    @Test func theSameValueAsAnotherKindHasAnotherKey() throws {
        #expect(try ContentKey.of(["a": 1], kind: "spec/Model") != ContentKey.of(["a": 1], kind: "run/TrainingSchedule"))
    }

    @Test(arguments: [
        ("C: 1.5", "C: 1.50"),
        ("max_iter: 200", "max_iter: 200.0"),
        ("max_iter: 200", "max_iter: 2.0e2"),
        ("max_iter: 200", "max_iter: 200.000"),
    ])
    func oneNumberHasOneSpelling(written: String, rewritten: String) throws {
        #expect(try generation(Self.training) == generation(Self.training.replacingOccurrences(of: written, with: rewritten)))
    }

    @Test(arguments: [("1h", "60m"), ("1h", "3600s"), ("1h", "3600000ms"), ("1h", "59m60s")])
    func durationsAreKeyedByTheirLength(written: String, rewritten: String) throws {
        let changed = Self.training.replacingOccurrences(of: "timeout: \(written)", with: "timeout: \(rewritten)")
        #expect(try generation(Self.training) == generation(changed))
        let monitor = """
        apiVersion: cairn/v1
        kind: Monitor
        metadata: {name: quality}
        spec:
          deployment: prod
          thresholds: [{metric: accuracy, below: 0.8, for: 10m, action: retrain}]
          source: {push: {}}
        """
        #expect(try generation(monitor) == generation(monitor.replacingOccurrences(of: "10m", with: "600s")))
        #expect(try generation(monitor) != generation(monitor.replacingOccurrences(of: "10m", with: "11m")))
    }

    @Test(arguments: [("@daily", "0 0 * * *"), ("@daily", "0 0 * * 0-6"), ("0 3 * * 1", "0 3 * * MON"),
                      ("0 0 * * 0", "0 0 * * 7"), ("*/15 * * * *", "0,15,30,45 * * * *")])
    func cronSchedulesAreKeyedByTheTimesTheyMatch(written: String, rewritten: String) throws {
        let original = Self.training.replacingOccurrences(of: "\"0 3 * * 1\"", with: "\"\(written)\"")
        #expect(try generation(original) == generation(original.replacingOccurrences(of: "\"\(written)\"", with: "\"\(rewritten)\"")))
    }

    @Test func theJSONOfASpecStillShowsDurationsAsWritten() throws {
        let spec = try manifest(Self.training.replacingOccurrences(of: "timeout: 1h", with: "timeout: 60m")).spec
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(spec), as: UTF8.self)
        #expect(json.contains("\"timeout\":\"60m\"") && json.contains("\"schedule\":\"0 3 * * 1\""), "\(json)")
    }

    @Test func aNumberTooLargeForADoubleIsAManifestError() throws {
        let file = ManifestParser.parse(Data(Self.training.replacingOccurrences(of: "C: 1.5", with: "C: 1.0e999").utf8), file: "t.yaml")
        #expect(file.manifests.isEmpty)
        #expect(file.diagnostics.first?.message.contains("spec.params.C is too large to be a number") == true, "\(file.diagnostics)")
    }

    // MARK: The canonical form

    @Test func stringsUseTheFewestEscapes() throws {
        let text = "q\" b\\ /\u{8}\u{C}\n\r\t\u{0}\u{1F}\u{7F} é 😀 \u{2028}"
        let expected = #""q\" b\\ /\b\f\n\r\t\u0000\u001f"# + "\u{7F} é 😀 \u{2028}\""
        #expect(try CanonicalJSON.encode(text) == Data(expected.utf8))
        #expect(try CanonicalJSON.encode(["\u{1}": 1]) == Data(#"{"\u0001":1}"#.utf8))
    }

    @Test func keysAreSortedByUTF16CodeUnits() throws {
        // By code point U+FF61 comes before U+1F600; in UTF-16 the surrogate D83D comes first.
        let object: [String: Int] = ["b": 1, "a": 2, "B": 3, "é": 4, "\u{FF61}": 5, "😀": 6, "aa": 7]
        #expect(try CanonicalJSON.encode(object) == Data(#"{"B":3,"a":2,"aa":7,"b":1,"é":4,"😀":6,"｡":5}"#.utf8))
    }

    @Test(arguments: [
        (1.0, "1"), (-0.0, "0"), (0.0, "0"), (-3.0, "-3"), (1.5, "1.5"), (0.1, "0.1"), (0.1 + 0.2, "0.30000000000000004"),
        (4.35, "4.35"), (123456789012.5, "123456789012.5"), (0.000001, "0.000001"), (0.0000015, "0.0000015"),
        (1e-7, "1e-7"), (-2.5e-8, "-2.5e-8"), (1e20, "100000000000000000000"), (1e21, "1e+21"), (1.5e300, "1.5e+300"),
        (0x1p60, "1152921504606846976"), (0x1p53 + 2, "9007199254740994"), (0x1p63, "9223372036854775808"),
        (0x1.fffffffffffffp68, "590295810358705586176"), (Double.leastNonzeroMagnitude, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ])
    func numbersHaveOneSpelling(value: Double, text: String) throws {
        let written = String(decoding: try CanonicalJSON.encode(value), as: UTF8.self)
        #expect(written == text)
    }

    @Test func integersAreExact() throws {
        #expect(try CanonicalJSON.encode([Int64.max, Int64.min, 0]) == Data("[9223372036854775807,-9223372036854775808,0]".utf8))
        #expect(try CanonicalJSON.encode(UInt64.max) == Data("18446744073709551615".utf8))
    }

    @Test func absentValuesAreOmittedAndNullsInArraysKept() throws {
        struct Value: Encodable {
            var present: Int? = 1
            var absent: Int?
            var explicitNull: Int?
            var items: [Int?] = [1, nil]
            var empty: [String] = []
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encodeIfPresent(present, forKey: .present)
                try container.encodeIfPresent(absent, forKey: .absent)
                try container.encode(explicitNull, forKey: .explicitNull)
                try container.encode(items, forKey: .items)
                try container.encode(empty, forKey: .empty)
            }
            enum CodingKeys: CodingKey { case present, absent, explicitNull, items, empty }
        }
        #expect(try CanonicalJSON.encode(Value()) == Data(#"{"empty":[],"items":[1,null],"present":1}"#.utf8))
    }

    @Test func nonFiniteNumbersAreRejectedWithTheirPath() throws {
        struct Holder: Encodable { var values: [String: [Double]] }
        let error = try #require(throws: CanonicalJSONError.self) {
            try ContentKey.of(Holder(values: ["x": [1, .nan]]), kind: "test")
        }
        #expect(error.code == .nonFiniteNumber)
        #expect(error.path == "values.x[1]", "\(error)")
        #expect(throws: CanonicalJSONError.self) { try CanonicalJSON.encode(-Double.infinity) }
    }

    // MARK: Pinned keys

    /// The worked example of Docs/content-keys.md.
    @Test func theDocumentedExampleKeepsItsKey() throws {
        let spec = try manifest("""
        apiVersion: cairn/v1
        kind: Model
        metadata: {name: churn}
        spec:
          stages: [staging, production]
          assignments: {staging: 8, production: 7}
        """).spec
        guard case .model(let model) = spec else { Issue.record("not a model"); return }
        let bytes = try ContentKey.canonicalBytes(of: model, kind: "spec/Model")
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"format":"cairn.key/v1","kind":"spec/Model","value":{"assignments":{"production":7,"staging":8},"policy":{"requireGate":true,"strictOrder":true},"stages":["staging","production"],"suspend":false}}"#)
        #expect(try ContentKey.generation(of: spec).description == "sha256:e4452d785292dc6a3636b1a1ec55b200a4bc1985cda8a3cf349e1be7f4e45b30")
    }

    /// Durations, cron, numbers, enums with payloads: a change to any rule changes this key.
    @Test func pinnedKeysOfRicherSpecs() throws {
        let training = try manifest(Self.training).spec
        #expect(try canonicalText(training) == #"{"format":"cairn.key/v1","kind":"spec/TrainingSchedule","value":{"catchup":"latest","command":["python3","train.py"],"concurrencyPolicy":"Forbid","deps":[],"gate":[{"atLeast":0.85,"metric":"auc"}],"model":"churn","outputs":{"metrics":"metrics.json","model":"model.bin"},"params":{"C":1.5,"max_iter":200,"nested":false,"solver":"lbfgs"},"retries":0,"schedule":{"dayFieldsBothRestricted":false,"daysOfMonth":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31],"daysOfWeek":[1],"hours":[3],"minutes":[0],"months":[1,2,3,4,5,6,7,8,9,10,11,12]},"shell":false,"suspend":false,"timeZone":"UTC","timeout":3600000}}"#)
        #expect(try ContentKey.generation(of: training).description == "sha256:85d6e6003a46c7b5cfa47c3dbc71cf0c11f8e1f63b48b58a2821af1f0ffee37c")
        let deployment = try manifest(Self.deployment).spec
        #expect(try canonicalText(deployment) == #"{"format":"cairn.key/v1","kind":"spec/ModelDeployment","value":{"model":"churn","rollbackOnFailedHealth":true,"selector":{"stage":"production"},"suspend":false,"target":{"process":{"command":["python3","serve.py"],"health":{"path":"/healthz","timeout":30000},"port":8601}}}}"#)
        #expect(try ContentKey.generation(of: deployment).description == "sha256:8b2ad2e69996cfe2a05a622216da188f565ea0416afa588d0ffde5b5e716132f")
    }

    @Test func keysReadBackAsWritten() throws {
        let key = try ContentKey.of("x", kind: "test")
        #expect(ContentKey(key.description) == key)
        #expect(key.description.count == 71)
        #expect(try JSONDecoder().decode(ContentKey.self, from: JSONEncoder().encode(key)) == key)
        #expect(ContentKey("sha256:" + String(repeating: "A", count: 64)) == nil)
        #expect(ContentKey(key.hex) == nil)
    }

    // MARK: An independent implementation

    /// Python's json module, sorting keys and printing no whitespace, reaches the same bytes
    /// and the same hash from the parsed canonical form: for ASCII keys and integral numbers
    /// its rules and ours agree.
    @Test func pythonRecomputesTheKey() throws {
        let spec = try manifest("""
        apiVersion: cairn/v1
        kind: TrainingSchedule
        metadata: {name: churn-weekly}
        spec:
          model: churn
          features: churn-features
          schedule: "@weekly"
          command: [python3, train.py, --note, "tab\\there, quote \\" backslash \\\\ bell \\a escape \\x1b del \\x7f é 😀"]
          deps: [./train.py, lib//util.py]
          params: {max_iter: 200, C: 1.0, seed: -42, solver: lbfgs, big: 9007199254740993, warm: true}
          outputs: {model: out/model.bin, metrics: out/metrics.json}
          gate: [{metric: auc, atLeast: 1}]
          timeout: 1h30m
          retries: 2
        """).spec
        let bytes = try ContentKey.canonicalBytes(of: spec)
        let directory = try TemporaryDirectory()
        let file = try directory.write("canonical.json", bytes)
        let script = """
        import hashlib, json, sys
        raw = open(sys.argv[1], 'rb').read()
        again = json.dumps(json.loads(raw), sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
        print(hashlib.sha256(again).hexdigest(), again == raw)
        """
        let result = try run("python3", ["-c", script, file.path])
        #expect(result.stdout == "\(try ContentKey.generation(of: spec).hex) True\n", "\(String(decoding: bytes, as: UTF8.self))")
    }

    // MARK: Helpers

    private func manifest(_ yaml: String) throws -> Manifest {
        let file = ManifestParser.parse(Data(yaml.utf8), file: "m.yaml")
        #expect(file.diagnostics.isEmpty, "\(file.diagnostics)")
        return try #require(file.manifests.first)
    }

    private func generation(_ yaml: String) throws -> ContentKey {
        try ContentKey.generation(of: manifest(yaml).spec)
    }

    private func canonicalText(_ spec: Spec) throws -> String {
        String(decoding: try ContentKey.canonicalBytes(of: spec), as: UTF8.self)
    }
}

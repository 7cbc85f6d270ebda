import CairnManifests
import CairnTestSupport
import Foundation
import Testing

@Suite struct SchemaTests {
    /// The committed schemas are exactly what the decoder's shapes generate.
    @Test func committedSchemasMatchTheSwiftTypes() throws {
        let directory = packageRoot.appendingPathComponent("Manifests/schema")
        let files = JSONSchema.files()
        let committed = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        #expect(Set(committed) == Set(files.keys), "regenerate with: cairn schema --write Manifests/schema")
        for (name, data) in files {
            let onDisk = try Data(contentsOf: directory.appendingPathComponent(name))
            #expect(onDisk == data, "Manifests/schema/\(name) is stale; regenerate with: cairn schema --write Manifests/schema")
        }
    }

    @Test func schemasAreJSONWithEveryKindAndNoUnknownFields() throws {
        for kind in Kind.allCases {
            let schema = try #require(try JSONSerialization.jsonObject(with: JSONSchema.document(for: kind)) as? [String: Any])
            #expect(schema["additionalProperties"] as? Bool == false)
            let properties = try #require(schema["properties"] as? [String: Any])
            #expect(Set(properties.keys) == ["apiVersion", "kind", "metadata", "spec"])
        }
    }

    /// An independent JSON Schema validator (Python's jsonschema) agrees with the Swift decoder
    /// on the example manifests and on structural mistakes.
    @Test func anIndependentValidatorAgrees() throws {
        // Never skipped: Scripts/test installs the validator, and its absence is a failure.
        try #require(pythonHasJSONSchema(), "python3 cannot import jsonschema and yaml; run Scripts/test, which installs them")
        let directory = try TemporaryDirectory()
        try directory.write("cairn.json", JSONSchema.combinedDocument())
        let documents: [(String, Bool)] = [
            (Fixtures.all, true),
            (Fixtures.training.replacingOccurrences(of: "  command:", with: "  comand:"), false),
            (Fixtures.deployment.replacingOccurrences(of: "stage: production", with: "stage: production\n  version: 3"), false),
            (Fixtures.model.replacingOccurrences(of: "name: churn", with: "name: Churn"), false),
            (Fixtures.monitor.replacingOccurrences(of: "action: retrain", with: "action: reboot"), false),
            // What the schema says beyond types, so an editor flags it as people type.
            (Fixtures.all.replacingOccurrences(of: "stages: [staging, production]", with: "stages: [staging, production, staging]"), false),
            (Fixtures.all.replacingOccurrences(of: "  stages:\n    - name: ingest", with: "  schedule: every day\n  stages:\n    - name: ingest"), false),
            (Fixtures.all.replacingOccurrences(of: "  stages:\n    - name: ingest", with: "  schedule: \"0 3 * * 1\"\n  stages:\n    - name: ingest"), true),
            (Fixtures.all.replacingOccurrences(of: "  outputs: {model: model.bin}", with: "  outputs: {model: model.bin}\n  timeout: 10 minutes"), false),
            // Stage fields and absolute deps.
            (Fixtures.all.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [ingest.py, /srv/data/raw.csv]\n      env: [HF_TOKEN]\n      resources: {cpus: 2}\n      retries: 1"), true),
            (Fixtures.all.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [/srv/data/../etc]"), false),
            (Fixtures.all.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [/srv//data]"), false),
            (Fixtures.all.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [/srv/data/]"), false),
            (Fixtures.all.replacingOccurrences(of: "deps: [ingest.py]", with: "env: [HF-TOKEN]"), false),
            (Fixtures.all.replacingOccurrences(of: "deps: [ingest.py]", with: "resources: {cpus: 0}"), false),
            (Fixtures.all.replacingOccurrences(of: "outs: [data/raw.csv]", with: "outs: [/srv/raw.csv]"), false),
        ]
        for (index, (yaml, valid)) in documents.enumerated() {
            try directory.write("doc\(index).yaml", yaml)
            // Whole files are checked as Cairn checks them: each document, then across objects.
            let swiftValid = ManifestSet(files: [ManifestParser.parse(Data(yaml.utf8), file: "doc")]).isValid
            #expect(swiftValid == valid, "document \(index)")
        }
        let script = """
        import json, sys, yaml, jsonschema
        schema = json.load(open(sys.argv[1]))
        for path in sys.argv[2:]:
            ok = all(jsonschema.Draft7Validator(schema).is_valid(d) for d in yaml.safe_load_all(open(path)) if d is not None)
            print("valid" if ok else "invalid")
        """
        let result = try run("python3", ["-c", script, directory.appending("cairn.json").path]
                             + documents.indices.map { directory.appending("doc\($0).yaml").path })
        #expect(result.stdout.split(separator: "\n").map(String.init) == documents.map { $0.1 ? "valid" : "invalid" })
    }
}

func pythonHasJSONSchema() -> Bool {
    (try? run("python3", ["-c", "import jsonschema, yaml"], check: false).status) == 0
}

@Suite struct ReferenceDocumentTests {
    /// Docs/manifests.md carries the generated field tables; they must match the code.
    @Test func theManifestReferenceIsCurrent() throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("Docs/manifests.md"), encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- BEGIN GENERATED REFERENCE -->\n"))
        let end = try #require(text.range(of: "<!-- END GENERATED REFERENCE -->"))
        #expect(String(text[begin.upperBound..<end.lowerBound]) == ManifestReference.markdown(),
                "Docs/manifests.md is stale: replace the generated part with the output of cairn schema --reference")
    }
}

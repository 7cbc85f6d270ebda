import CairnCore
import CairnManifests
import Foundation
import Testing

@Suite struct RunKeyTests {
    static let pipeline = """
    apiVersion: cairn/v1
    kind: FeaturePipeline
    metadata: {name: feats}
    spec:
      stages:
        - name: ingest
          command: [python3, ingest.py]
          deps: [ingest.py]
          outs: [data/raw.csv]
    """

    func spec(_ yaml: String) throws -> Spec {
        try #require(ManifestParser.parse(Data(yaml.utf8), file: "m.yaml").manifests.first).spec
    }

    /// A pipeline that uses none of the stage fields added for issue 10 hashes as it did
    /// before they existed, so an upgrade does not make every pipeline a new generation.
    @Test func stagesWithoutTheNewFieldsKeepTheirGeneration() throws {
        let bytes = try ContentKey.canonicalBytes(of: spec(Self.pipeline))
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"format":"cairn.key/v1","kind":"spec/FeaturePipeline","value":{"stages":[{"command":["python3","ingest.py"],"deps":["ingest.py"],"name":"ingest","outs":["data/raw.csv"],"shell":false}],"suspend":false}}"#)
        for field in ["params: {rows: 10}", "env: [HF_TOKEN]", "timeout: 10m", "retries: 1", "resources: {cpus: 2}", "deps: [/srv/raw.csv]"] {
            let changed = Self.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: field.hasPrefix("deps") ? field : "deps: [ingest.py]\n      \(field)")
            #expect(try ContentKey.generation(of: spec(changed)) != ContentKey.generation(of: spec(Self.pipeline)), "\(field)")
        }
        // Written at their defaults, the new fields are the same as absent.
        let defaults = Self.pipeline.replacingOccurrences(of: "deps: [ingest.py]", with: "deps: [ingest.py]\n      params: {}\n      env: []\n      retries: 0\n      resources: {cpus: 1}")
        #expect(try ContentKey.generation(of: spec(defaults)) == ContentKey.generation(of: spec(Self.pipeline)))
    }
}

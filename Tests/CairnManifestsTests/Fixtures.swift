@testable import CairnManifests
import Foundation

/// A valid manifest of each kind, as small as the kind allows.
enum Fixtures {
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

    static let training = """
    apiVersion: cairn/v1
    kind: TrainingSchedule
    metadata: {name: weekly}
    spec:
      model: churn
      features: feats
      command: [python3, train.py]
      outputs: {model: model.bin}
    """

    static let model = """
    apiVersion: cairn/v1
    kind: Model
    metadata: {name: churn}
    spec:
      stages: [staging, production]
      assignments: {staging: 2, production: 1}
    """

    static let deployment = """
    apiVersion: cairn/v1
    kind: ModelDeployment
    metadata: {name: prod}
    spec:
      model: churn
      stage: production
      target:
        process: {command: [python3, serve.py]}
    """

    static let monitor = """
    apiVersion: cairn/v1
    kind: Monitor
    metadata: {name: quality}
    spec:
      deployment: prod
      thresholds:
        - {metric: accuracy, below: 0.8, for: 10m, action: retrain}
      source: {push: {}}
    """

    static let all = [pipeline, training, model, deployment, monitor].joined(separator: "\n---\n")

    static func parse(_ text: String, file: String = "m.yaml") -> ParsedFile {
        ManifestParser.parse(Data(text.utf8), file: file)
    }

    static func set(_ files: [String: String]) -> ManifestSet {
        ManifestSet(files: files.sorted { $0.key < $1.key }.map { parse($0.value, file: $0.key) })
    }
}

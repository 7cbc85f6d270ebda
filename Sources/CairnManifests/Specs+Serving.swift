// MARK: ModelDeployment

public struct ModelDeploymentSpec: Hashable, Sendable, Codable {
    public enum Selector: Hashable, Sendable, Codable {
        case stage(String)
        case version(Int)
    }

    public struct Health: Hashable, Sendable, Codable {
        public var path: String
        public var timeout: ManifestDuration?
    }

    public enum Target: Hashable, Sendable, Codable {
        /// A supervised local serving process.
        case process(command: [String], port: Int?, health: Health?)
        /// A directory of versions, `<path>/<version>/`, for a server that watches it (TF Serving
        /// layout), keeping the newest `keep` versions.
        case directory(path: String, layout: String, keep: Int)
        /// Commands that hand the version to another system; `check` (optional) says whether it
        /// serves the version now. `remove` and `check` are empty when not given.
        case command(apply: [String], remove: [String], check: [String], timeout: ManifestDuration?)
    }

    public var model: String
    public var selector: Selector
    public var target: Target
    public var rollbackOnFailedHealth: Bool
    public var suspend: Bool

    static let shape = Shape.object(ObjectShape(fields: [
        .required("model", .string(.dnsLabel), "the name of the Model whose version is served"),
        .optional("stage", .string(.dnsLabel), "serve whichever version holds this stage of the model"),
        .optional("version", .integer(minimum: 1), "serve exactly this version"),
        .required("target", .object(ObjectShape(fields: [
            .optional("process", .object(ObjectShape(fields: [
                CommonFields.command,
                .optional("port", .integer(minimum: 1), "the public port on 127.0.0.1, served by Cairn's proxy; each version's process listens on a port Cairn picks, passed as CAIRN_PORT (default: a free port, named in the status)"),
                .optional("health", .object(ObjectShape(fields: [
                    .required("path", .string(.httpPath), "the HTTP path that answers 200 when the server is healthy"),
                    .optional("timeout", .string(.duration), "how long a new version's server may take to become healthy (default 30s)"),
                ])), "how to tell that the server is up"),
            ])), "run the model as a supervised local process"),
            .optional("directory", .object(ObjectShape(fields: [
                .required("path", .string(.text), "the base directory, versions in <path>/<version>/: absolute under a --data-root of the daemon, or relative to the repository's working tree"),
                .optional("layout", .string(.oneOf(["tfserving", "plain"])), "tfserving (default): <path>/<version>/; plain: <path>/ holds one version"),
                .optional("keep", .integer(minimum: 1), "how many versions stay in a tfserving directory, the served one included (default 2); older ones are removed"),
            ])), "copy the model into a directory a model server watches"),
            .optional("command", .object(ObjectShape(fields: [
                .required("apply", .array(.string(.text), minItems: 1), "the command that rolls a version out"),
                .optional("remove", .array(.string(.text), minItems: 1), "the command that takes it down"),
                .optional("check", .array(.string(.text), minItems: 1), "a command that exits 0 when the version is served (run after apply, and again to find drift)"),
                .optional("timeout", .string(.duration), "how long apply, remove or check may take (default 5m)"),
            ])), "hand the version over to another system with commands"),
        ], exactlyOne: [["process", "directory", "command"]])), "where the model is served"),
        .optional("rollback", .object(ObjectShape(fields: [
            .optional("onFailedHealth", .boolean, "roll back to the previous version when the new one fails its health check (default true)"),
        ])), "what to do when a rollout fails"),
        CommonFields.suspend,
    ], exactlyOne: [["stage", "version"]]))

    init(_ node: YAMLNode) {
        model = node["model"]?.text ?? ""
        selector = node["version"]?.int.map { .version($0) } ?? .stage(node["stage"]?.text ?? "")
        let target = node["target"]
        if let process = target?["process"] {
            self.target = .process(
                command: process["command"]?.strings ?? [], port: process["port"]?.int,
                health: process["health"].map { Health(path: $0["path"]?.text ?? "/", timeout: $0["timeout"]?.duration) })
        } else if let directory = target?["directory"] {
            self.target = .directory(path: directory["path"]?.text ?? "", layout: directory["layout"]?.text ?? "tfserving",
                                     keep: directory["keep"]?.int ?? 2)
        } else {
            let command = target?["command"]
            self.target = .command(apply: command?["apply"]?.strings ?? [], remove: command?["remove"]?.strings ?? [],
                                   check: command?["check"]?.strings ?? [], timeout: command?["timeout"]?.duration)
        }
        rollbackOnFailedHealth = node["rollback"]?["onFailedHealth"]?.bool ?? true
        suspend = node["suspend"]?.bool ?? false
    }
}

// MARK: Monitor

public struct MonitorSpec: Hashable, Sendable, Codable {
    public enum Action: String, Hashable, Sendable, Codable, CaseIterable { case retrain, rollback, alert }
    /// How a threshold's window is summarised into the one value compared with it.
    public enum Aggregate: String, Hashable, Sendable, Codable, CaseIterable { case mean, max, min, last, p95 }

    public struct Threshold: Hashable, Sendable, Codable {
        public var metric: String
        public var below: Double?
        public var above: Double?
        /// The window the aggregate is taken over (default 5m).
        public var window: ManifestDuration
        public var aggregate: Aggregate
        /// How long the condition must hold before the threshold fires (Prometheus `for`; default 0).
        public var holdFor: ManifestDuration?
        /// How long a firing threshold keeps firing once the condition stops holding (default 0).
        public var keepFiringFor: ManifestDuration?
        /// Fewer samples in the window than this: the threshold neither fires nor resolves (default 1).
        public var minSamples: Int
        /// At most one action per this long, however often the metric flaps (default 1h).
        public var cooldown: ManifestDuration
        public var action: Action
    }

    public enum Source: Hashable, Sendable, Codable {
        /// Samples are POSTed to the daemon's `/api/v1/metrics`.
        case push
        /// An instant query per metric against a Prometheus-compatible HTTP API, every interval.
        case prometheus(url: String, queries: [String: String])
        /// A file under a data root, read every interval: one JSON object of metric to number
        /// (`json`), or JSON lines appended by the serving process (`jsonl`).
        case file(path: String, format: FileFormat)
    }

    public enum FileFormat: String, Hashable, Sendable, Codable, CaseIterable { case json, jsonl }

    public var deployment: String
    public var thresholds: [Threshold]
    public var source: Source
    /// How often the thresholds are evaluated and a polled source is read (default 30s).
    public var interval: ManifestDuration
    public var suspend: Bool

    public static let defaultWindow = try! ManifestDuration(parsing: "5m")
    public static let defaultCooldown = try! ManifestDuration(parsing: "1h")
    public static let defaultInterval = try! ManifestDuration(parsing: "30s")

    static let thresholdShape = Shape.object(ObjectShape(fields: [
        .required("metric", .string(.metricName), "the metric to watch, such as accuracy"),
        .optional("below", .number(minimum: nil, maximum: nil), "fire when the window's aggregate stays below this"),
        .optional("above", .number(minimum: nil, maximum: nil), "fire when the window's aggregate stays above this"),
        .optional("window", .string(.duration), "the window the aggregate is taken over, at most 24h (default 5m)"),
        .optional("aggregate", .string(.oneOf(Aggregate.allCases.map(\.rawValue))),
                  "how the window is summarised: mean (default), max, min, last or p95"),
        .optional("for", .string(.duration), "how long the condition must hold before it fires, such as 10m (default 0: at once)"),
        .optional("keepFiringFor", .string(.duration), "how long it keeps firing once the condition stops holding (default 0)"),
        .optional("minSamples", .integer(minimum: 1), "a window with fewer samples neither fires nor resolves (default 1)"),
        .optional("cooldown", .string(.duration), "at most one action per this long, however often the metric flaps (default 1h)"),
        .required("action", .string(.oneOf(Action.allCases.map(\.rawValue))), "what to do: retrain, rollback or alert"),
    ], exactlyOne: [["below", "above"]]))

    static let shape = Shape.object(ObjectShape(fields: [
        .required("deployment", .string(.dnsLabel), "the ModelDeployment whose metrics are watched"),
        .required("thresholds", .array(thresholdShape, minItems: 1), "the conditions that trigger an action"),
        .required("source", .object(ObjectShape(fields: [
            .optional("push", .object(ObjectShape(fields: [])), "metrics are POSTed to the daemon's /api/v1/metrics"),
            .optional("prometheus", .object(ObjectShape(fields: [
                .required("url", .string(.url), "the Prometheus server, such as http://127.0.0.1:9090"),
                .required("queries", .map(key: .metricName, value: .string(.text)),
                          "for each metric a threshold watches, the PromQL instant query whose single value it is"),
            ])), "read metrics from Prometheus every interval"),
            .optional("file", .object(ObjectShape(fields: [
                .required("path", .string(.text), "an absolute path under a --data-root of the daemon"),
                .optional("format", .string(.oneOf(FileFormat.allCases.map(\.rawValue))),
                          "json (default): one object of metric name to number, read whole; jsonl: lines of "
                            + "{\"metric\", \"value\", \"timestamp\"} appended by the serving process, read from where the last read stopped"),
            ])), "read metrics from a file every interval"),
        ], exactlyOne: [["push", "prometheus", "file"]])), "where the metrics come from"),
        .optional("interval", .string(.duration), "how often the thresholds are evaluated and a polled source is read, at least 1s (default 30s)"),
        CommonFields.suspend,
    ]))

    init(_ node: YAMLNode) {
        deployment = node["deployment"]?.text ?? ""
        thresholds = (node["thresholds"]?.items ?? []).map {
            Threshold(metric: $0["metric"]?.text ?? "", below: $0["below"]?.double, above: $0["above"]?.double,
                      window: $0["window"]?.duration ?? Self.defaultWindow,
                      aggregate: $0["aggregate"]?.text.flatMap(Aggregate.init(rawValue:)) ?? .mean,
                      holdFor: $0["for"]?.duration, keepFiringFor: $0["keepFiringFor"]?.duration,
                      minSamples: $0["minSamples"]?.int ?? 1, cooldown: $0["cooldown"]?.duration ?? Self.defaultCooldown,
                      action: $0["action"]?.text.flatMap(Action.init(rawValue:)) ?? .alert)
        }
        let source = node["source"]
        if let prometheus = source?["prometheus"] {
            var queries: [String: String] = [:]
            if case .mapping(let pairs)? = prometheus["queries"]?.value {
                for pair in pairs { if let query = pair.value.text { queries[pair.key.text ?? ""] = query } }
            }
            self.source = .prometheus(url: prometheus["url"]?.text ?? "", queries: queries)
        } else if let file = source?["file"] {
            self.source = .file(path: file["path"]?.text ?? "", format: file["format"]?.text.flatMap(FileFormat.init(rawValue:)) ?? .json)
        } else {
            self.source = .push
        }
        interval = node["interval"]?.duration ?? Self.defaultInterval
        suspend = node["suspend"]?.bool ?? false
    }
}

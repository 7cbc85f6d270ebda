/// Fields shared by several kinds.
enum CommonFields {
    static let suspend = Field.optional("suspend", .boolean, "true pauses this object; Cairn leaves it as it is until set back to false")
    static let command = Field.required("command", .array(.string(.text), minItems: 1),
                                        "the program and its arguments as a list, such as [python3, train.py]; never a shell string")
    static let shell = Field.optional("shell", .boolean,
                                      "run command[0] through /bin/sh -c; only where the daemon's configuration allows it")
    static let deps = Field.optional("deps", .array(.string(.dependencyPath), minItems: 0),
                                     "files or directories the command reads, in the repository or absolute under a --data-root; "
                                     + "their content is part of the run's key")
    static let params = Field.optional("params", .map(key: .metricName, value: .scalar),
                                       "parameters, passed as CAIRN_PARAMS and part of the run's key")
    static let timeout = Field.optional("timeout", .string(.duration), "how long one run may take, such as 1h")
    static let retries = Field.optional("retries", .integer(minimum: 0), "how many times a failed run is retried (default 0)")
    static let outs = Field.optional("outs", .array(.string(.repoPath), minItems: 0), "files or directories the command writes")
    static let resources = Field.optional("resources", RunResources.shape,
                                          "what one run needs, such as {cpus: 4, memory: 16GiB, gpus: 1, time: 2h}")
    static let executor = Field.optional("executor", .string(.oneOf(RunExecutorName.allCases.map(\.rawValue))),
                                         "where runs go: local (processes on the daemon's machine) or slurm (sbatch); "
                                         + "the daemon's --executor when absent")
}

extension YAMLNode {
    var paths: [RepositoryPath] { strings.compactMap { try? RepositoryPath($0) } }
    var dependencyPaths: [DependencyPath] { strings.compactMap { try? DependencyPath($0) } }
    /// A map of parameters; values that are not scalars were reported by the shape checker.
    var parameters: [String: ParameterValue] {
        var params: [String: ParameterValue] = [:]
        for (key, value) in pairs {
            if let name = key.text, let parameter = ParameterValue(value) { params[name] = parameter }
        }
        return params
    }
    var path: RepositoryPath? { text.flatMap { try? RepositoryPath($0) } }
    var duration: ManifestDuration? { text.flatMap { try? ManifestDuration(parsing: $0) } }
    var cron: CronSchedule? { text.flatMap { try? CronSchedule(parsing: $0) } }
}

// MARK: FeaturePipeline

public struct FeaturePipelineSpec: Hashable, Sendable, Codable {
    public struct Stage: Hashable, Sendable, Codable {
        public var name: String
        public var command: [String]
        public var shell: Bool
        public var deps: [DependencyPath]
        public var outs: [RepositoryPath]
        /// Passed to the command as CAIRN_PARAMS (JSON) and part of the run's key.
        public var params: [String: ParameterValue]
        /// Names of environment variables the stage asks to receive from the daemon's
        /// environment; whether the daemon allows each is decided when the stage runs.
        public var env: [String]
        public var timeout: ManifestDuration?
        public var retries: Int
        public var resources: Resources
        /// Where its runs go; nil for the daemon's `--executor`.
        public var executor: RunExecutorName?

        public init(name: String, command: [String], shell: Bool = false, deps: [DependencyPath] = [], outs: [RepositoryPath] = [],
                    params: [String: ParameterValue] = [:], env: [String] = [], timeout: ManifestDuration? = nil, retries: Int = 0,
                    resources: Resources = Resources(), executor: RunExecutorName? = nil) {
            self.name = name
            self.command = command
            self.shell = shell
            self.deps = deps
            self.outs = outs
            self.params = params
            self.env = env
            self.timeout = timeout
            self.retries = retries
            self.resources = resources
            self.executor = executor
        }
    }

    /// What one run of a stage needs (the same for a training).
    public typealias Resources = RunResources

    public var schedule: CronSchedule?
    public var suspend: Bool
    public var stages: [Stage]

    static let stageShape = Shape.object(ObjectShape(fields: [
        .required("name", .string(.dnsLabel), "the stage's name, unique in this pipeline"),
        CommonFields.command, CommonFields.shell, CommonFields.deps,
        .optional("outs", .array(.string(.repoPath), minItems: 0),
                  "files or directories in the repository the command writes; no two stages write the same path or one inside another"),
        CommonFields.params,
        .optional("env", .array(.string(.environmentName), minItems: 0, unique: true),
                  "names of environment variables the stage receives from the daemon's environment, where the daemon allows them"),
        CommonFields.timeout, CommonFields.retries,
        CommonFields.resources, CommonFields.executor,
    ]))

    static let shape = Shape.object(ObjectShape(fields: [
        .optional("schedule", .string(.cron), "when to re-hash external inputs and rerun stale stages, such as \"@hourly\""),
        CommonFields.suspend,
        .required("stages", .array(stageShape, minItems: 1), "the pipeline's stages; each lists its command, deps and outs"),
    ]))

    init(_ node: YAMLNode) {
        schedule = node["schedule"]?.cron
        suspend = node["suspend"]?.bool ?? false
        stages = (node["stages"]?.items ?? []).map { stage in
            Stage(name: stage["name"]?.text ?? "", command: stage["command"]?.strings ?? [],
                  shell: stage["shell"]?.bool ?? false, deps: stage["deps"]?.dependencyPaths ?? [], outs: stage["outs"]?.paths ?? [],
                  params: stage["params"]?.parameters ?? [:], env: stage["env"]?.strings ?? [],
                  timeout: stage["timeout"]?.duration, retries: stage["retries"]?.int ?? 0,
                  resources: RunResources(stage["resources"]), executor: stage["executor"]?.text.flatMap(RunExecutorName.init(rawValue:)))
        }
    }
}

// MARK: TrainingSchedule

public struct TrainingScheduleSpec: Hashable, Sendable, Codable {
    public enum ConcurrencyPolicy: String, Hashable, Sendable, Codable, CaseIterable { case Forbid, Replace, Allow }
    public enum Catchup: String, Hashable, Sendable, Codable, CaseIterable { case none, latest, all }

    public struct Outputs: Hashable, Sendable, Codable {
        public var model: RepositoryPath
        public var metrics: RepositoryPath?
    }

    /// What starts a training (besides `cairn trigger` and, with `always`, every tick).
    public enum RetrainOn: String, Hashable, Sendable, Codable, CaseIterable {
        /// Any change of the run key: a commit, or new feature data.
        case inputs
        /// Only key changes a commit made; new feature data alone waits for the next commit or tick.
        case commit
        /// Only cron ticks, which train when the key changed since the last success.
        case schedule
    }

    public struct GateRule: Hashable, Sendable, Codable {
        public var metric: String
        public var atLeast: Double?
        public var atMost: Double?
        /// Champion–challenger: the new version must beat the version that holds this stage
        /// of the Model (as of the commit reconciled when the version is registered) by at least `by`.
        public var beats: String?
        public var by: Double?

        public init(metric: String, atLeast: Double? = nil, atMost: Double? = nil, beats: String? = nil, by: Double? = nil) {
            self.metric = metric
            self.atLeast = atLeast
            self.atMost = atMost
            self.beats = beats
            self.by = by
        }

        /// The rule as people write it: `auc >= 0.75`, `auc beats production by 0.01`.
        public var text: String {
            if let atLeast { return "\(metric) >= \(atLeast.shortText)" }
            if let atMost { return "\(metric) <= \(atMost.shortText)" }
            if let beats { return "\(metric) beats \(beats)" + ((by ?? 0) == 0 ? "" : " by \((by ?? 0).shortText)") }
            return metric
        }
    }

    public var model: String
    public var features: String?
    public var schedule: CronSchedule?
    public var timeZone: String
    public var concurrencyPolicy: ConcurrencyPolicy
    public var catchup: Catchup
    public var command: [String]
    public var shell: Bool
    public var deps: [DependencyPath]
    public var params: [String: ParameterValue]
    public var outputs: Outputs
    public var gate: [GateRule]
    public var timeout: ManifestDuration?
    public var retries: Int
    public var suspend: Bool
    public var retrainOn: RetrainOn
    /// Every cron tick trains, even when the key has a successful run (a forced training).
    public var always: Bool
    /// Names of environment variables the training receives from the daemon's environment.
    public var env: [String]
    /// What one training needs, and where it runs (nil: the daemon's `--executor`).
    public var resources: RunResources
    public var executor: RunExecutorName?

    static let gateShape = Shape.object(ObjectShape(fields: [
        .required("metric", .string(.metricName), "the metric from the metrics output, such as auc"),
        .optional("atLeast", .number(minimum: nil, maximum: nil), "the metric must be at least this"),
        .optional("atMost", .number(minimum: nil, maximum: nil), "the metric must be at most this"),
        .optional("beats", .string(.dnsLabel),
                  "champion–challenger: the metric must be higher than that of the version holding this stage of the Model, such as production"),
        .optional("by", .number(minimum: 0, maximum: nil), "with beats: the margin the new version must win by (default 0)"),
    ], exactlyOne: [["atLeast", "atMost", "beats"]]))

    static let shape = Shape.object(ObjectShape(fields: [
        .required("model", .string(.dnsLabel), "the name of the Model this schedule trains versions of"),
        .optional("features", .string(.dnsLabel), "the FeaturePipeline whose outputs are inputs of training"),
        .optional("schedule", .string(.cron), "when to retrain, as 5-field cron or a macro such as @daily"),
        .optional("timeZone", .string(.timeZone), "the time zone the schedule is read in; UTC when absent"),
        .optional("concurrencyPolicy", .string(.oneOf(ConcurrencyPolicy.allCases.map(\.rawValue))),
                  "what to do when a run is due while one is running: Forbid (default), Replace or Allow"),
        .optional("catchup", .string(.oneOf(Catchup.allCases.map(\.rawValue))),
                  "runs missed while Cairn was down: none, latest (default) or all (bounded)"),
        CommonFields.command, CommonFields.shell, CommonFields.deps,
        CommonFields.params,
        .required("outputs", .object(ObjectShape(fields: [
            .required("model", .string(.repoPath), "the file the command writes the trained model to"),
            .optional("metrics", .string(.repoPath), "a JSON file of metric name to number that the gate reads"),
        ])), "where the command writes the model and its metrics"),
        .optional("gate", .array(gateShape, minItems: 0), "rules every new version must pass to be registered as passed"),
        CommonFields.timeout, CommonFields.retries,
        CommonFields.suspend,
        .optional("retrainOn", .string(.oneOf(RetrainOn.allCases.map(\.rawValue))),
                  "what starts a training: inputs (default: any change of the run key), commit (only changes a commit made) "
                  + "or schedule (only cron ticks)"),
        .optional("always", .boolean, "with schedule: every tick trains, even when nothing changed since the last success"),
        .optional("env", .array(.string(.environmentName), minItems: 0, unique: true),
                  "names of environment variables the training receives from the daemon's environment, where the daemon allows them"),
        CommonFields.resources, CommonFields.executor,
    ]))

    private enum CodingKeys: String, CodingKey {
        case model, features, schedule, timeZone, concurrencyPolicy, catchup, command, shell, deps, params, outputs, gate, timeout,
             retries, suspend, retrainOn, always, env, resources, executor
    }

    // Coded by hand so that the fields added with training (`retrainOn`, `always`, `env`) are
    // left out at their defaults: a spec that does not use them keeps the content key it had
    // before they existed, and last good specs stored before them still decode.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        features = try c.decodeIfPresent(String.self, forKey: .features)
        schedule = try c.decodeIfPresent(CronSchedule.self, forKey: .schedule)
        timeZone = try c.decode(String.self, forKey: .timeZone)
        concurrencyPolicy = try c.decode(ConcurrencyPolicy.self, forKey: .concurrencyPolicy)
        catchup = try c.decode(Catchup.self, forKey: .catchup)
        command = try c.decode([String].self, forKey: .command)
        shell = try c.decode(Bool.self, forKey: .shell)
        deps = try c.decode([DependencyPath].self, forKey: .deps)
        params = try c.decode([String: ParameterValue].self, forKey: .params)
        outputs = try c.decode(Outputs.self, forKey: .outputs)
        gate = try c.decode([GateRule].self, forKey: .gate)
        timeout = try c.decodeIfPresent(ManifestDuration.self, forKey: .timeout)
        retries = try c.decode(Int.self, forKey: .retries)
        suspend = try c.decode(Bool.self, forKey: .suspend)
        retrainOn = try c.decodeIfPresent(RetrainOn.self, forKey: .retrainOn) ?? .inputs
        always = try c.decodeIfPresent(Bool.self, forKey: .always) ?? false
        env = try c.decodeIfPresent([String].self, forKey: .env) ?? []
        resources = try c.decodeIfPresent(RunResources.self, forKey: .resources) ?? RunResources()
        executor = try c.decodeIfPresent(RunExecutorName.self, forKey: .executor)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encodeIfPresent(features, forKey: .features)
        try c.encodeIfPresent(schedule, forKey: .schedule)
        try c.encode(timeZone, forKey: .timeZone)
        try c.encode(concurrencyPolicy, forKey: .concurrencyPolicy)
        try c.encode(catchup, forKey: .catchup)
        try c.encode(command, forKey: .command)
        try c.encode(shell, forKey: .shell)
        try c.encode(deps, forKey: .deps)
        try c.encode(params, forKey: .params)
        try c.encode(outputs, forKey: .outputs)
        try c.encode(gate, forKey: .gate)
        try c.encodeIfPresent(timeout, forKey: .timeout)
        try c.encode(retries, forKey: .retries)
        try c.encode(suspend, forKey: .suspend)
        if retrainOn != .inputs { try c.encode(retrainOn, forKey: .retrainOn) }
        if always { try c.encode(always, forKey: .always) }
        if !env.isEmpty { try c.encode(env, forKey: .env) }
        if resources != RunResources() { try c.encode(resources, forKey: .resources) }
        try c.encodeIfPresent(executor, forKey: .executor)
    }

    init(_ node: YAMLNode) {
        model = node["model"]?.text ?? ""
        features = node["features"]?.text
        schedule = node["schedule"]?.cron
        timeZone = node["timeZone"]?.text ?? "UTC"
        concurrencyPolicy = node["concurrencyPolicy"]?.text.flatMap(ConcurrencyPolicy.init(rawValue:)) ?? .Forbid
        catchup = node["catchup"]?.text.flatMap(Catchup.init(rawValue:)) ?? .latest
        command = node["command"]?.strings ?? []
        shell = node["shell"]?.bool ?? false
        deps = node["deps"]?.dependencyPaths ?? []
        params = node["params"]?.parameters ?? [:]
        let outputs = node["outputs"]
        self.outputs = Outputs(model: outputs?["model"]?.path ?? RepositoryPath(unchecked: "model.bin"),
                               metrics: outputs?["metrics"]?.path)
        gate = (node["gate"]?.items ?? []).map {
            GateRule(metric: $0["metric"]?.text ?? "", atLeast: $0["atLeast"]?.double, atMost: $0["atMost"]?.double,
                     beats: $0["beats"]?.text, by: $0["by"]?.double)
        }
        timeout = node["timeout"]?.duration
        retries = node["retries"]?.int ?? 0
        suspend = node["suspend"]?.bool ?? false
        retrainOn = node["retrainOn"]?.text.flatMap(RetrainOn.init(rawValue:)) ?? .inputs
        always = node["always"]?.bool ?? false
        env = node["env"]?.strings ?? []
        resources = RunResources(node["resources"])
        executor = node["executor"]?.text.flatMap(RunExecutorName.init(rawValue:))
    }
}


// MARK: Model

public struct ModelSpec: Hashable, Sendable, Codable {
    public struct Policy: Hashable, Sendable, Codable {
        public var requireGate: Bool
        public var strictOrder: Bool
    }

    public var stages: [String]
    public var assignments: [String: Int]
    public var policy: Policy
    public var suspend: Bool

    static let shape = Shape.object(ObjectShape(fields: [
        .required("stages", .array(.string(.dnsLabel), minItems: 1, unique: true), "the stages in promotion order, such as [staging, production]"),
        .optional("assignments", .map(key: .dnsLabel, value: .integer(minimum: 1)), "which version holds each stage, such as {production: 7}"),
        .optional("policy", .object(ObjectShape(fields: [
            .optional("requireGate", .boolean, "a version must have passed its evaluation gate to hold a stage (default true)"),
            .optional("strictOrder", .boolean, "a version must have held the previous stage before the next (default true)"),
        ])), "rules a change of assignments must follow"),
        CommonFields.suspend,
    ]))

    init(_ node: YAMLNode) {
        stages = node["stages"]?.strings ?? []
        var assignments: [String: Int] = [:]
        for (key, value) in node["assignments"]?.pairs ?? [] {
            if let stage = key.text, let version = value.int { assignments[stage] = version }
        }
        self.assignments = assignments
        policy = Policy(requireGate: node["policy"]?["requireGate"]?.bool ?? true,
                        strictOrder: node["policy"]?["strictOrder"]?.bool ?? true)
        suspend = node["suspend"]?.bool ?? false
    }
}

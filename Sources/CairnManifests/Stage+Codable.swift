/// A stage's stored form. The store keeps last-good specs as JSON, and content keys hash the
/// same encoding, so:
/// - fields added after a spec was stored take their defaults when it is read back;
/// - fields at their default are left out when written, so a pipeline that does not use a
///   newer field has the same encoding, and the same generation key, as before the field
///   existed (an upgrade does not make every pipeline look changed).
extension FeaturePipelineSpec.Stage {
    private enum CodingKeys: String, CodingKey {
        case name, command, shell, deps, outs, params, env, timeout, retries, resources, executor
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try container.decode(String.self, forKey: .name),
            command: try container.decode([String].self, forKey: .command),
            shell: try container.decodeIfPresent(Bool.self, forKey: .shell) ?? false,
            deps: try container.decodeIfPresent([DependencyPath].self, forKey: .deps) ?? [],
            outs: try container.decodeIfPresent([RepositoryPath].self, forKey: .outs) ?? [],
            params: try container.decodeIfPresent([String: ParameterValue].self, forKey: .params) ?? [:],
            env: try container.decodeIfPresent([String].self, forKey: .env) ?? [],
            timeout: try container.decodeIfPresent(ManifestDuration.self, forKey: .timeout),
            retries: try container.decodeIfPresent(Int.self, forKey: .retries) ?? 0,
            resources: try container.decodeIfPresent(FeaturePipelineSpec.Resources.self, forKey: .resources)
                ?? FeaturePipelineSpec.Resources(),
            executor: try container.decodeIfPresent(RunExecutorName.self, forKey: .executor))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        // The fields stages had from the start, always written.
        try container.encode(name, forKey: .name)
        try container.encode(command, forKey: .command)
        try container.encode(shell, forKey: .shell)
        try container.encode(deps, forKey: .deps)
        try container.encode(outs, forKey: .outs)
        // Later fields, only when they differ from their defaults.
        if !params.isEmpty { try container.encode(params, forKey: .params) }
        if !env.isEmpty { try container.encode(env, forKey: .env) }
        try container.encodeIfPresent(timeout, forKey: .timeout)
        if retries != 0 { try container.encode(retries, forKey: .retries) }
        if resources != FeaturePipelineSpec.Resources() { try container.encode(resources, forKey: .resources) }
        try container.encodeIfPresent(executor, forKey: .executor)
    }
}

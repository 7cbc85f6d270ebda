import ArgumentParser

/// `cairn-bench`: manifests and the daemon over a generated repository (the default, so
/// `cairn-bench --manifests N` and `cairn-bench --hash FILE` work as they did), `registry`,
/// issue 12's `plan` and `stages`, issue 13's `deploy`, issue 14's `http`, issue 15's `metrics`, or
/// issue 16's `slurm`.
@main
struct CairnBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-bench",
        abstract: "Cairn's benchmarks: manifests and the daemon (the default), the model registry, plans and stage history, deployments, the HTTP face, pushed metrics, the Slurm executor.",
        subcommands: [CairnBench.self, RegistryBench.self, PlanBench.self, StagesBench.self, DeployBench.self, HTTPBench.self, MetricsBench.self,
                      SlurmBench.self],
        defaultSubcommand: CairnBench.self)
}

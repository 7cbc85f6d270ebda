import ArgumentParser

/// `cairn-bench`: manifests and the daemon over a generated repository (the default, so
/// `cairn-bench --manifests N` and `cairn-bench --hash FILE` work as they did), `registry`,
/// or issue 12's `plan`.
@main
struct CairnBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-bench",
        abstract: "Cairn's benchmarks: manifests and the daemon (the default), the model registry, plans.",
        subcommands: [CairnBench.self, RegistryBench.self, PlanBench.self],
        defaultSubcommand: CairnBench.self)
}

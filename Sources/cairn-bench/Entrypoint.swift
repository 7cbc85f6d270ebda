import ArgumentParser

/// `cairn-bench`: manifests and the daemon over a generated repository (the default, so
/// `cairn-bench --manifests N` and `cairn-bench --hash FILE` work as they did), or `registry`.
@main
struct CairnBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-bench",
        abstract: "Cairn's benchmarks: manifests and the daemon (the default), or the model registry.",
        subcommands: [CairnBench.self, RegistryBench.self],
        defaultSubcommand: CairnBench.self)
}

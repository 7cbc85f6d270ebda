import ArgumentParser
import CairnRun
import Foundation

extension Cairn {
    /// The run supervisor (see `RunSupervisor`): started by the local executor for each run,
    /// in its own process group, so the run and its result outlive the daemon.
    struct Supervise: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "_supervise",
            abstract: "Internal: run one job from RUN_DIR/job.json and write RUN_DIR/result.json (started by the daemon).",
            shouldDisplay: false)

        @Argument(help: "The run's directory.")
        var runDirectory: String

        func run() throws {
            Foundation.exit(RunSupervisor.main(runDirectory: URL(fileURLWithPath: runDirectory)))
        }
    }
}

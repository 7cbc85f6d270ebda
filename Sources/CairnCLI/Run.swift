import ArgumentParser
import CairnCore
import CairnGit
import CairnManifests
import Foundation
import Logging

extension Cairn {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The daemon: reconcile the branch tip every interval, and write status back to git.",
            discussion: """
            Each pass fetches (for a URL), compares the manifests at the tip with the store, \
            reconciles what changed (and what depends on it), writes one status commit per \
            change to the status branch, a note on the reconciled commit, and pushes with --push. \
            An unchanged tip costs one ref read. When the remote does not answer, Cairn backs off \
            (exponentially, with jitter) and keeps its last known state. `cairn reconcile Kind/name` \
            wakes it ahead of the interval. SIGTERM or SIGINT stops it after the current step.

            Logs go to standard error, one line each, with cairn.object and cairn.commit.

            Examples:
              cairn run --repo ~/src/churn --interval 30s
              CAIRN_GIT_PASSWORD_FILE=/run/secrets/token cairn run --repo https://git.example.com/ml/churn.git --push
            """)

        @OptionGroup var options: EngineOptions

        @Option(help: "How often to look at the branch, such as 30s.")
        var interval: String = "30s"

        @Option(help: "Log level: trace, debug, info, notice, warning, error.")
        var logLevel: String = "info"

        func validate() throws {
            guard (try? ManifestDuration(parsing: interval))?.milliseconds ?? 0 > 0 else {
                throw ValidationError("--interval \(interval) is not a duration such as 30s or 5m")
            }
            guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is not a log level") }
        }

        func run() throws {
            Logs.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info)
            var logger = Logger(label: "cairn")
            logger[metadataKey: "cairn.repo"] = "\(isLocalPath(options.repo) ? options.repo : redactedURL(options.repo))"
            let stop = StopSignal()
            let engine = try options.makeEngine(logger: logger)
            let period = (try? ManifestDuration(parsing: interval))?.seconds ?? 30
            logger.info("started", metadata: ["cairn.state": "\(options.stateDirectory.path)", "cairn.interval": "\(interval)"])
            var failures = 0
            while !stop.requested {
                var wait = period
                do {
                    let outcome = try engine.reconcileOnce()
                    if failures > 0 { logger.notice("recovered", metadata: ["cairn.commit": "\(outcome.commit.short)"]) }
                    failures = 0
                    if outcome.ran {
                        logger.info("pass", metadata: ["cairn.commit": "\(outcome.commit.short)", "cairn.objects": "\(outcome.objects)",
                                                       "cairn.changed": "\(outcome.changed.count)", "cairn.notReady": "\(outcome.notReady.count)"])
                    }
                } catch {
                    failures += 1
                    wait = Backoff(base: min(period, 2), maximum: max(period, 300)).delay(afterFailures: failures)
                    logger.error("pass failed; keeping the last known state", metadata: [
                        "cairn.error": "\(error)", "cairn.failures": "\(failures)", "cairn.retry": "\(String(format: "%.1f", wait))s"])
                }
                // Sleep in short steps: a stop signal or a queued request cuts the wait short.
                let until = Date().addingTimeInterval(wait)
                while !stop.requested, Date() < until {
                    Thread.sleep(forTimeInterval: 0.1)
                    if (try? engine.store.hasRequests()) == true { break }
                }
            }
            logger.info("stopped")
        }
    }
}

/// Turns SIGTERM and SIGINT into a flag the loop checks between steps.
final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    private var sources: [any DispatchSourceSignal] = []

    init() {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.set() }
            source.resume()
            sources.append(source)
        }
    }

    private func set() {
        lock.lock()
        flag = true
        lock.unlock()
    }

    var requested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return flag
    }
}

import ArgumentParser
import CairnCore
import CairnEngine
import CairnGit
import CairnHTTP
import CairnManifests
import Foundation
import Logging
import MonitorController
import ServiceLifecycle

extension Cairn {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "The daemon: reconcile the branch tip every interval, and write status back to git.",
            discussion: """
            Each pass fetches (for a URL), compares the manifests at the tip with the store, \
            reconciles what changed (and what depends on it), writes one status commit per \
            change to the status branch, a note on the reconciled commit, and pushes with --push. \
            A rolled-back deployment's reverse assignment is written as a commit on its own \
            branch, cairn/proposals/<model>-rollback-<n>, for people to merge (signed with \
            --signing-key, pushed with --push); Cairn never commits to the tracked branch. \
            An unchanged tip costs one ref read. When the remote does not answer, Cairn backs off \
            (exponentially, with jitter) and keeps its last known state. `cairn reconcile Kind/name` \
            wakes it ahead of the interval. SIGTERM or SIGINT stops it after the pass in flight.

            With --listen, it serves HTTP (127.0.0.1 unless told otherwise): /healthz, /readyz \
            (200 once a pass has completed), /metrics for Prometheus, GET /api/v1/status[/Kind/name] \
            and /api/v1/models[/NAME] (the JSON of `cairn status` and `cairn models --format json`), \
            POST /api/v1/webhooks/{github,gitlab,gitea,generic}: a push to the tracked branch, \
            verified with the secret from --webhook-secret-file or CAIRN_WEBHOOK_SECRET, starts a \
            pass at once; and POST /api/v1/metrics, the samples Monitors with a push source read. \
            Docs/operations.md shows how to register the webhook and scrape the metrics.

            Monitors are evaluated every spec.interval: thresholds that fire retrain (new inputs \
            only), roll back or alert (--alert-url); a retrained version that passes its gate is \
            proposed on cairn/proposals/<model>-promote-<n>, with `cairn plan`'s verdict in the \
            commit, for people (or CI) to merge.

            With --slurm-shared-dir, runs may go to a Slurm cluster as batch jobs (a stage or \
            training that says executor: slurm, or every run with --executor slurm), their \
            directories on a file system the nodes share; a probe job checks that before the first \
            pass. Docs/operations.md, "Running on Slurm", has the options and how jobs read.

            One daemon per state directory: a second one exits, naming the first one's pid.
            Logs go to standard error, one line each, with cairn.object and cairn.commit.

            Examples:
              # inside a repository, such as one made by `cairn init churn && cd churn`
              cairn run --interval 10s
              cairn run --verify-commits head --allowed-signers ~/.config/cairn/allowed_signers
              cairn run --signing-key ~/.config/cairn/signing_ed25519   # rollback proposals signed, as git -S does
              cairn run --listen 127.0.0.1:8480 --webhook-secret-file /run/secrets/cairn-webhook   # see Docs/operations.md
              cairn run --listen 8480 --alert-url https://hooks.example.com/cairn   # monitors: samples in, alerts out
              cairn run --slurm-shared-dir /shared/cairn --executor slurm --slurm-partition gpu   # runs as sbatch jobs
              CAIRN_GIT_PASSWORD_FILE=/run/secrets/token cairn run --repo https://git.example.com/ml/churn.git --push   # your own URL
            """)

        @OptionGroup var options: EngineOptions

        @OptionGroup var runOptions: RunOptions

        @OptionGroup var signing: SigningOptions

        @OptionGroup var http: HTTPOptions

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

        func run() async throws {
            Logs.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info)
            var logger = Logger(label: "cairn")
            logger[metadataKey: "cairn.repo"] = "\(isLocalPath(options.repo) ? options.repo : redactedURL(options.repo))"
            let signer = try signing.signer()
            // First, before the engine's executor takes a copy of the environment.
            let webhookSecret = try http.webhookSecret(logger: logger)
            try FileManager.default.createDirectory(at: options.stateDirectory, withIntermediateDirectories: true)
            // Listening for requests before the lock publishes the pid that `cairn reconcile` signals.
            let triggers = Triggers()
            let requests = await ManualRequestService(triggers: triggers)
            let lock: DaemonLock
            do {
                lock = try DaemonLock(stateDirectory: options.stateDirectory)
            } catch {
                throw CairnExit.unreadable(error.description)
            }
            try await runOptions.probeSlurm(logger: logger)
            let metrics = DaemonMetrics()
            // Pushed samples (POST /api/v1/metrics) and polled ones meet in one set of windows.
            let alerts = try http.alertSender(logger: logger, metrics: metrics)
            let monitors = MonitorServices(hub: MetricHub(), prometheus: PrometheusClient(), alerts: alerts)
            let engine = try options.makeEngine(logger: logger, runs: runOptions, serveProcesses: true, signer: signer,
                                                metrics: metrics.engine, monitors: monitors)
            let server = http.server(engine: engine, triggers: triggers, metrics: metrics, secret: webhookSecret, samples: monitors.hub,
                                     logger: logger)
            let milliseconds = (try? ManifestDuration(parsing: interval))?.milliseconds ?? 30_000
            let period = Duration.milliseconds(milliseconds)
            let pushes = engine.pushes ? Triggers() : nil
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
            // Stopped last: health and status answer while the last pass finishes.
            if let server { services.append(.init(service: server.service, serviceName: "http")) }
            if let pushes {
                services.append(.init(service: StatusPushService(engine: engine, pushes: pushes, logger: logger), serviceName: "pusher"))
            }
            // After the last pass, the alerts it queued are delivered (a short drain).
            if let alerts { services.append(.init(service: alerts, serviceName: "alerts")) }
            // Shut down in reverse order: no more ticks or requests, then the pass in flight
            // ends, then the last push.
            services += [
                // With --listen, the first pass waits until the port is bound: one in use stops the
                // daemon before it does anything.
                .init(service: EngineService(engine: engine, triggers: triggers, interval: period, logger: logger, pushes: pushes,
                                             startAfter: { _ = try await server?.listening() },
                                             onPass: { outcome in server?.passEnded(outcome) }),
                      serviceName: "engine"),
                .init(service: requests, serviceName: "requests"),
                .init(service: RunCompletionService(engine: engine, triggers: triggers), serviceName: "runs"),
                .init(service: WatcherService(interval: period, triggers: triggers), serviceName: "watcher"),
            ]
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger.withLevel(.warning)))
            logger.info("starting", metadata: ["cairn.state": "\(options.stateDirectory.path)", "cairn.interval": "\(interval)",
                                              "cairn.pid": "\(getpid())"])
            do {
                try await group.run()
            } catch let failure as ListenFailure {
                throw CairnExit.unreadable(failure.description)
            }
            logger.info("stopped")
            withExtendedLifetime(lock) {}
        }
    }
}

extension Logger {
    /// A copy that logs at `level` and above, for chatty libraries.
    func withLevel(_ level: Logger.Level) -> Logger {
        var copy = self
        copy.logLevel = max(level, logLevel)
        return copy
    }
}

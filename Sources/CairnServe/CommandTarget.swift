import Foundation
import CairnCore
import CairnRun
import Logging

/// Hands a version to another system (Kubernetes, KServe, a cloud endpoint) with the
/// manifest's `apply`, `check` and `remove` commands, run as argv in a checkout of the
/// request's commit (see `CommandLaunch` for their environment).
///
/// It never makes the controller wait: the first `ensure` for a version starts `apply` in the
/// background and says `Applying`; when it ends (and `check`, if given, after it) the
/// deployment's name goes to `notify`, and the next `ensure` reports the result. A failed
/// `apply` or `check` stays failed until `retry` or another version. Once a version was
/// applied and checked, each `ensure` runs `check` again in the background (and asks to be
/// rechecked after 60 s); when it no longer agrees, someone changed the other system by hand:
/// that is drift, and the version is applied again.
actor CommandTarget: ServingTarget {
    private let launch: CommandLaunch
    private let notify: @Sendable (String) -> Void
    private let now: @Sendable () -> Date
    private var deployments: [String: Deployment] = [:]
    /// Numbers each started command, so the end of one that was superseded is ignored.
    private var started = 0

    static let recheck = Duration.seconds(60)
    /// A check that ended this recently is not run again: the engine looks at a deployment on
    /// every change (the check's own end among them), and each look need not run `check`.
    static let recheckGap: TimeInterval = 30

    /// One deployment as this process knows it.
    struct Deployment {
        var request: DeploymentRequest
        var stage: Stage
        /// Drift found and being put back; reported until the version serves again.
        var drift: [String] = []
        var running: RunningProcess?
        var run = 0
        /// When `check` last agreed; nil for a deployment taken from a record, checked at once.
        var checkedAt: Date?
    }

    enum Stage: Equatable {
        case applying
        /// `check` after a successful `apply`.
        case checking
        case serving
        /// Serving, with a `check` running to find drift.
        case rechecking
        case failed(reason: String, message: String)
    }

    init(environment: ServingEnvironment, notify: @escaping @Sendable (String) -> Void,
         now: @escaping @Sendable () -> Date = Date.init) throws {
        launch = CommandLaunch(environment: environment)
        self.notify = notify
        self.now = now
    }

    func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation {
        guard case .command(_, _, let check, _) = request.target else {
            throw ReconcileError(.terminal, reason: "InternalError", message: "the command target was sent \(request.deployment), which is not a command deployment; this is a bug in Cairn")
        }
        let name = request.deployment
        if deployments[name] == nil, let record = try? launch.record(of: name), record.covers(request) {
            // Applied and checked by an earlier daemon: recheck it rather than apply it again.
            deployments[name] = Deployment(request: request, stage: .serving)
        }
        if let deployment = deployments[name], Self.same(deployment.request, request) {
            switch deployment.stage {
            case .failed where retry: try start(.apply, for: request)
            case .serving where !check.isEmpty && isDue(deployment): try start(.recheck, for: deployment.request)
            default: break
            }
        } else {
            try start(.apply, for: request)
        }
        let observation = observe(name)
        // Drift is reported until the version serves again, then once more with it, then forgotten.
        if observation.phase == .serving { deployments[name]?.drift = [] }
        return observation
    }

    private func isDue(_ deployment: Deployment) -> Bool {
        guard let checkedAt = deployment.checkedAt else { return true }
        return now().timeIntervalSince(checkedAt) >= Self.recheckGap
    }

    /// Whether two requests apply the same thing: version, artifact and commands.
    static func same(_ first: DeploymentRequest, _ second: DeploymentRequest) -> Bool {
        first.version == second.version && first.target == second.target && first.codeKey == second.codeKey
    }

    /// Where the deployment stands, as an observation.
    private func observe(_ name: String) -> DeploymentObservation {
        guard let deployment = deployments[name] else {
            return DeploymentObservation(phase: .progressing, version: 0, serving: nil, reason: "Applying", message: "")
        }
        let version = deployment.request.version
        let commands = CommandLaunch.commands(of: deployment.request)
        func progressing(_ reason: String, _ message: String) -> DeploymentObservation {
            DeploymentObservation(phase: .progressing, version: version.version, serving: nil, reason: reason,
                                  message: message, drift: deployment.drift)
        }
        switch deployment.stage {
        case .applying:
            return progressing("Applying", "applying \(version) with `\(commands.apply.joined(separator: " "))`")
        case .checking:
            return progressing("Checking", "`apply` of \(version) exited 0; checking it with `\(commands.check.joined(separator: " "))`")
        case .serving, .rechecking:
            let checked = commands.check.isEmpty ? "" : " and `check` agreed"
            return DeploymentObservation(phase: .serving, version: version.version, serving: version.version, reason: "Serving",
                                         message: "\(version) was handed over: `apply` exited 0\(checked)", drift: deployment.drift,
                                         recheckAfter: commands.check.isEmpty ? nil : Self.recheck)
        case .failed(let reason, let message):
            return DeploymentObservation(phase: .failed, version: version.version, serving: nil, reason: reason, message: message,
                                         drift: deployment.drift)
        }
    }

    // MARK: - Running the commands

    enum Step: String {
        case apply, check, recheck
        var log: String { self == .apply ? "apply" : "check" }
    }

    /// Starts `step` for the request in the background, stopping whatever the deployment was
    /// running. A command that cannot start throws a transient error, and the next ensure
    /// tries again.
    private func start(_ step: Step, for request: DeploymentRequest) throws {
        let name = request.deployment
        var deployment = deployments[name] ?? Deployment(request: request, stage: .applying)
        if step == .apply, !Self.same(deployment.request, request) { deployment.drift = [] }
        deployment.running?.stop()
        deployment.request = request
        let commands = CommandLaunch.commands(of: request)
        let process: RunningProcess
        do {
            process = try launch.start(step == .apply ? commands.apply : commands.check, for: request, timeout: commands.timeout)
        } catch {
            deployment.running = nil
            if step == .recheck {
                deployments[name] = deployment
            } else {
                deployments[name] = nil
            }
            throw ReconcileError(.transient, reason: step == .apply ? "ApplyNotStarted" : "CheckNotStarted",
                                 message: "could not start `\(step.log)` for \(request.version): \(error)")
        }
        started += 1
        let run = started
        deployment.running = process
        deployment.run = run
        deployment.stage = switch step {
        case .apply: .applying
        case .check: .checking
        case .recheck: .rechecking
        }
        deployments[name] = deployment
        Task { [weak self] in
            let outcome = await process.wait()
            await self?.ended(name, run: run, step: step, outcome: outcome)
        }
    }

    /// A command of the deployment ended: move on, and tell the engine when that changed
    /// what it would see (a recheck that agrees changes nothing, and says nothing).
    private func ended(_ name: String, run: Int, step: Step, outcome: ProcessOutcome) {
        guard var deployment = deployments[name], deployment.run == run else { return }
        deployment.running = nil
        deployments[name] = deployment
        launch.writeLog(outcome, named: step.log, deployment: name)
        let version = deployment.request.version
        let commands = CommandLaunch.commands(of: deployment.request)
        switch (step, outcome.succeeded) {
        case (.apply, true) where !commands.check.isEmpty:
            startOrFail(.check, deployment)
        case (.apply, true), (.check, true):
            served(name)
        case (.apply, false):
            fail(name, "ApplyFailed", "`apply` of \(version) \(CommandLaunch.describe(outcome))")
        case (.check, false):
            fail(name, "CheckFailed", "`apply` of \(version) exited 0, but `check` disagreed: it \(CommandLaunch.describe(outcome))")
        case (.recheck, true):
            deployments[name]?.stage = .serving
            deployments[name]?.checkedAt = now()
            return
        case (.recheck, false):
            deployments[name]?.drift.append("`check` no longer found \(version) served (it \(CommandLaunch.describe(outcome))); applied it again")
            startOrFail(.apply, deployments[name] ?? deployment)
        }
        notify(name)
    }

    private func startOrFail(_ step: Step, _ deployment: Deployment) {
        do {
            try start(step, for: deployment.request)
        } catch {
            var failed = deployment
            failed.stage = .failed(reason: step == .apply ? "ApplyFailed" : "CheckFailed", message: (error as? ReconcileError)?.message ?? "\(error)")
            deployments[deployment.request.deployment] = failed
        }
    }

    private func served(_ name: String) {
        guard let deployment = deployments[name] else { return }
        deployments[name]?.stage = .serving
        deployments[name]?.checkedAt = now()
        do {
            try launch.save(CommandRecord(deployment.request), deployment: name)
        } catch {
            launch.environment.logger.error("could not record that \(deployment.request.version) was applied: \(error); a restarted daemon will apply it again",
                                            metadata: ["cairn.deployment": "\(name)"])
        }
    }

    private func fail(_ name: String, _ reason: String, _ message: String) {
        deployments[name]?.stage = .failed(reason: reason, message: message)
        launch.environment.logger.warning("\(message)", metadata: ["cairn.deployment": "\(name)"])
    }

    // MARK: - Remove and recover

    /// Stops what runs, then runs `remove` (if the last applied spec has one) with the
    /// environment of the last applied version, and forgets the deployment. A failing
    /// `remove` throws with its output and keeps the record, so the caller can try again.
    func remove(deployment name: String) async throws {
        if let running = deployments.removeValue(forKey: name)?.running {
            running.stop()
            _ = await running.wait()
        }
        guard let record = try launch.record(of: name) else {
            launch.forget(name)
            return
        }
        var request = record.request
        request.deployment = name
        let commands = CommandLaunch.commands(of: request)
        if !commands.remove.isEmpty {
            let outcome: ProcessOutcome
            do {
                outcome = try await launch.command(commands.remove, for: request, timeout: commands.timeout).run()
            } catch let error as CancellationError {
                throw error
            } catch {
                throw ReconcileError(.transient, reason: "RemoveFailed", message: "could not start `remove` for \(record.version): \(error)")
            }
            launch.writeLog(outcome, named: "remove", deployment: name)
            guard outcome.succeeded else {
                throw ReconcileError(.transient, reason: "RemoveFailed", message: "`remove` of \(record.version) \(CommandLaunch.describe(outcome))")
            }
        }
        launch.forget(name)
    }

    /// The deployments an earlier daemon applied; they are rechecked on their next ensure.
    func recover() async throws -> [String] {
        launch.recorded()
    }

    func inFlight() async -> [String] {
        deployments.filter { $0.value.stage == .applying || $0.value.stage == .checking }.keys.sorted()
    }
}

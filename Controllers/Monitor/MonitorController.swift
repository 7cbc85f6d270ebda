public import CairnCore
public import CairnManifests
import Foundation

/// Monitor: watches a deployment's metrics and closes the loop when they degrade.
///
/// Each pass, in small steps:
/// 1. find what serves: the deployment's checked serving version, its model and stage;
/// 2. register the thresholds' windows with the ``MetricHub`` for that version, and read a
///    polled source (Prometheus, a file) into them;
/// 3. evaluate every threshold as a Prometheus alerting rule does (``AlertState``): pending,
///    firing after `for`, resolved after `keepFiringFor`, nothing with too few samples;
/// 4. act on a firing threshold at most once per firing and per `cooldown` (``ActionGate``):
///    `retrain` asks the schedule that trained the serving version for new inputs (its
///    features are looked at first), `rollback` asks the deployment for its previous healthy
///    version, `alert` posts to the daemon's alert URL;
/// 5. follow a retrain: no new inputs, a failed run, a version that failed its gate, or one
///    that passed, which is then proposed for the stage on `cairn/proposals/<model>-promote-<n>`
///    (one stage at a time when the Model's policy is strictOrder) until it serves;
/// 6. one place (`MonitorReport`) summarises. The message changes only when something
///    happens (a transition, an action, a step of the loop), so each is one status commit.
///
/// Ready means the monitor is evaluating as its spec says, whatever the metrics say; a
/// source that cannot be read makes it Ready=False (`SourceUnavailable`), keeping its state.
public struct MonitorController: Controller {
    public static let kind = Kind.monitor
    let services: MonitorServices?

    /// Without services (a process that serves no HTTP and polls nothing, such as
    /// `cairn reconcile --once`), the controller says it does not evaluate.
    public init(services: MonitorServices? = nil) {
        self.services = services
    }

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .monitor(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        guard let services else {
            return Outcome(.notImplemented, reason: "NotEvaluated",
                           message: "this process evaluates no monitors (`cairn run` does): the \(spec.thresholds.count) threshold(s) on "
                               + "ModelDeployment/\(spec.deployment) are not evaluated here")
        }
        var pass = MonitorPass(object: object, spec: spec, context: context, services: services,
                               memory: MonitorMemory.load(try context.memory.memory(of: object.ref)))
        return try await pass.run()
    }
}

/// One pass over one Monitor.
struct MonitorPass {
    let object: Manifest
    let spec: MonitorSpec
    let context: ReconcileContext
    let services: MonitorServices
    var memory: MonitorMemory
    let remembered: MonitorMemory
    var report = MonitorReport()

    init(object: Manifest, spec: MonitorSpec, context: ReconcileContext, services: MonitorServices, memory: MonitorMemory) {
        self.object = object
        self.spec = spec
        self.context = context
        self.services = services
        self.memory = memory
        remembered = memory
        // Pointed at another deployment: its states, cooldowns and candidate are another model's.
        if memory.deployment != spec.deployment {
            self.memory = MonitorMemory()
            self.memory.deployment = spec.deployment
        }
    }

    var deploymentRef: ObjectRef { ObjectRef(.modelDeployment, spec.deployment) }

    mutating func run() async throws -> Outcome {
        // 1. What serves.
        let deployment: ModelDeploymentSpec?
        if case .modelDeployment(let found)? = context.relatedManifests[deploymentRef]?.spec { deployment = found } else { deployment = nil }
        let serving = context.dependencies[deploymentRef]?.serving
        report.serving = serving.map { "\(deployment?.model ?? "?")@\($0)" }

        // 2. The windows, and a polled source.
        // Pointed at another deployment since the last pass: the old one's windows are not its own.
        if remembered.deployment != spec.deployment { services.hub.unwatch(monitor: object.ref.name, except: spec.deployment) }
        services.hub.watch(monitor: object.ref.name, deployment: spec.deployment, thresholds: spec.thresholds, serving: serving,
                           interval: spec.interval.seconds, push: spec.source == .push, now: context.now)
        await readSource(serving: serving)

        // 3 and 4. Evaluate, and act.
        let live = Set(spec.thresholds.map(MonitorMemory.ruleID))
        memory.rules = memory.rules.filter { live.contains($0.key) }
        for (index, threshold) in spec.thresholds.enumerated() {
            evaluate(threshold, index: index, serving: serving, deployment: deployment)
        }

        // 5. The loop.
        if let deployment { try follow(deployment: deployment, serving: serving) }

        // 6.
        if memory != remembered { report.effects.append(.remember(object.ref, memory.encoded)) }
        return report.outcome(spec: spec, memory: memory, now: context.now)
    }

    // MARK: Step 2: sources

    private mutating func readSource(serving: Int?) async {
        switch spec.source {
        case .push:
            return
        case .prometheus(let url, let queries):
            guard let prometheus = services.prometheus else {
                report.sourceProblem = "this daemon cannot query Prometheus"
                return
            }
            // Once per interval, whatever else wakes the Monitor (a commit, a deployment's
            // recheck), and every metric at once: a Prometheus that does not answer holds the
            // pass for at most one timeout.
            if let last = memory.lastPolled, context.now.timeIntervalSince(last) < spec.interval.seconds * 0.9 {
                report.sourceProblem = memory.lastSourceProblem
                return
            }
            memory.lastPolled = context.now
            let metrics = Set(spec.thresholds.map(\.metric)).sorted().compactMap { metric in queries[metric].map { (metric, $0) } }
            let results = await withTaskGroup(of: (String, Result<(value: Double, time: Date)?, any Error>).self) { group in
                for (metric, query) in metrics {
                    group.addTask {
                        do { return (metric, .success(try await prometheus.instantQuery(url: url, query: query, timeout: Self.queryTimeout))) }
                        catch { return (metric, .failure(error)) }
                    }
                }
                var results: [(String, Result<(value: Double, time: Date)?, any Error>)] = []
                for await result in group { results.append(result) }
                return results.sorted { $0.0 < $1.0 }
            }
            var samples: [MetricSample] = []
            var problems: [String] = []
            for (metric, result) in results {
                switch result {
                case .success(let answer?): samples.append(MetricSample(metric: metric, value: answer.value, time: answer.time))
                case .success(nil): break
                case .failure(let error): problems.append("Prometheus query for \(metric) failed: \(error)")
                }
            }
            report.sourceProblem = problems.isEmpty ? nil : problems.joined(separator: "; ")
            memory.lastSourceProblem = report.sourceProblem
            ingest(samples)
        case .file(let path, let format):
            guard let execution = context.execution else {
                report.sourceProblem = "this process reads no files outside the repository"
                return
            }
            if let refusal = execution.hostFiles.refusal(ofDataPath: path) {
                report.sourceProblem = "\(object.location(of: "spec.source.file.path")): \(path) may not be read: \(refusal)"
                return
            }
            do {
                let read = try MetricFileReader.read(path: path, format: format, roots: execution.policy.dataRoots,
                                                     cursor: memory.fileCursor, now: context.now)
                memory.fileCursor = read.cursor
                ingest(read.samples)
                if let bad = read.firstBadLine {
                    // Said in the log, not the status: a status message that changed with every
                    // bad line would be a status commit per read.
                    context.logger.warning("skipped lines of the metrics file", metadata: [
                        "cairn.file": "\(path)", "cairn.skipped": "\(read.badLines)", "cairn.line": "\(bad.number)", "cairn.reason": "\(bad.reason)"])
                }
                if read.more { report.requeueBy(1) }
            } catch {
                report.sourceProblem = "\(path): \(error.message)"
            }
        }
    }

    /// Prometheus' own default query timeout is 2 minutes; a monitor waits far less, since the
    /// pass waits for it.
    static let queryTimeout: Duration = .seconds(5)

    private mutating func ingest(_ samples: [MetricSample]) {
        guard !samples.isEmpty else { return }
        var valid: [MetricSample] = []
        var refused: (count: Int, first: String)?
        for sample in samples {
            if let time = sample.time, let problem = MetricTimeBounds.problem(with: time, now: context.now) {
                refused = (count: (refused?.count ?? 0) + 1, first: refused?.first ?? "\(sample.metric): \(problem)")
                continue
            }
            valid.append(sample)
        }
        if let refused {
            context.logger.warning("refused samples from the source", metadata: ["cairn.refused": "\(refused.count)", "cairn.first": "\(refused.first)"])
        }
        _ = services.hub.ingest(deployment: spec.deployment, samples: valid, receivedAt: context.now, polledBy: object.ref.name)
    }

    // MARK: Steps 3 and 4: evaluate, act

    private mutating func evaluate(_ threshold: MonitorSpec.Threshold, index: Int, serving: Int?, deployment: ModelDeploymentSpec?) {
        let id = MonitorMemory.ruleID(threshold)
        var rule = memory.rules[id] ?? MonitorMemory.RuleMemory(gate: ActionGate(cooldown: threshold.cooldown.seconds))
        // A pending count is about the version that was serving: another one starts its own.
        if case .pending = rule.state.phase, rule.version != serving { rule.state = AlertState() }
        let source = spec.source == .push ? MetricHub.WindowKey.pushed : MetricHub.WindowKey.polled(by: object.ref.name)
        let reading = services.hub.read(deployment: spec.deployment, key: MetricHub.WindowKey(threshold, source: source), serving: serving,
                                        now: context.now)
        let firedSince: Date? = if case .firing(let since) = rule.state.phase { since } else { nil }
        let transition = rule.state.evaluate(value: reading.value, samples: reading.samples, at: context.now, rule: Self.rule(threshold))
        switch transition {
        case .becamePending, .fired, .resolved, .cleared:
            rule.value = reading.value
            rule.samples = reading.samples
            rule.version = serving
            context.logger.notice("\(transition)", metadata: [
                "cairn.metric": "\(threshold.metric)", "cairn.value": "\(reading.value.map(Self.figure) ?? "-")",
                "cairn.samples": "\(reading.samples)"])
        case .none, .insufficientData:
            break
        }
        // Only the firing the alert was sent for resolves out loud: one the cooldown kept
        // quiet resolves quietly too, or a flapping metric would send a resolved alert per flap.
        if transition == .resolved, threshold.action == .alert, let firedSince, rule.gate.lastFiring == firedSince {
            rule.acted = send(alert: threshold, status: "resolved", value: reading.value, since: context.now, serving: serving,
                              deployment: deployment) ?? rule.acted
        }
        if case .firing(let since) = rule.state.phase {
            switch rule.gate.decide(firingSince: since, at: context.now) {
            case .act:
                rule.acted = act(threshold, value: rule.value, since: since, serving: serving, deployment: deployment)
            case .duplicate:
                break
            case .coolingDown(let until):
                report.requeueBy(until.timeIntervalSince(context.now))
                let note = "cooling down until \(MonitorReport.time(until)) (cooldown \(threshold.cooldown))"
                if rule.acted?.hasSuffix(note) != true { rule.acted = "fired again; " + note }
            }
        }
        if case .pending(let since) = rule.state.phase, let holdFor = threshold.holdFor {
            report.requeueBy(since.addingTimeInterval(holdFor.seconds).timeIntervalSince(context.now))
        }
        report.rules.append(MonitorReport.Rule(index: index, threshold: threshold, memory: rule, insufficient: reading.samples < threshold.minSamples))
        memory.rules[id] = rule
    }

    /// An aggregate as people read it: 4 significant digits (0.6193, 251.4), not 0.6193333333333333.
    static func figure(_ value: Double) -> String { String(format: "%.4g", value) }

    static func rule(_ threshold: MonitorSpec.Threshold) -> AlertState.Rule {
        AlertState.Rule(threshold.below.map { .below($0) } ?? .above(threshold.above ?? 0), for: threshold.holdFor?.seconds ?? 0,
                        keepFiringFor: threshold.keepFiringFor?.seconds ?? 0, minSamples: threshold.minSamples)
    }

    /// `accuracy (mean over 5m) below 0.7`.
    static func describe(_ threshold: MonitorSpec.Threshold) -> String {
        "\(threshold.metric) (\(threshold.aggregate.rawValue) over \(threshold.window)) " + condition(threshold)
    }

    static func condition(_ threshold: MonitorSpec.Threshold) -> String {
        threshold.below.map { "below \($0.shortText)" } ?? "above \((threshold.above ?? 0).shortText)"
    }

    /// What firing `threshold` makes happen, in words for the status.
    private mutating func act(_ threshold: MonitorSpec.Threshold, value: Double?, since: Date, serving: Int?,
                              deployment: ModelDeploymentSpec?) -> String {
        let valueText = value.map(Self.figure) ?? "?"
        let rule = "\(threshold.metric) \(threshold.aggregate.rawValue) \(valueText) \(Self.condition(threshold))"
            + (threshold.holdFor.map { " for \($0)" } ?? "") + (serving.map { " while \(deployment?.model ?? "?")@\($0) served" } ?? "")
        let why = "\(object.ref): \(rule)"
        let when = MonitorReport.time(context.now)
        switch threshold.action {
        case .retrain:
            if let retrain = memory.retrain, !retrain.settled {
                return "fired again at \(when); the retrain asked at \(MonitorReport.time(retrain.requestedAt)) is still under way"
            }
            guard let deployment, let serving else { return "retrain not asked at \(when): no version of the deployment serves" }
            guard let version = try? context.versions.version(deployment.model, serving) else {
                return "retrain not asked at \(when): \(deployment.model)@\(serving) is not in the registry"
            }
            let schedule = ObjectRef(.trainingSchedule, version.lineage.schedule)
            guard case .trainingSchedule(let training)? = context.manifest(schedule)?.spec else {
                return "retrain not asked at \(when): \(schedule), which trained \(version.name), has no valid manifest"
            }
            let request = TriggerRequest(id: Self.requestID(object.ref, "retrain", context.now), object: schedule,
                                         source: TriggerRequest.monitorSource, reason: why, requestedAt: context.now)
            report.effects.append(.addTrigger(request))
            // The features first: their data may have changed since they last ran.
            if let features = training.features { report.wake.append(ObjectRef(.featurePipeline, features)) }
            report.wake.append(schedule)
            memory.retrain = MonitorMemory.RetrainRequest(triggerID: request.id, schedule: schedule.name, model: deployment.model,
                                                          requestedAt: context.now, reason: rule)
            context.logger.notice("asked for a retrain", metadata: ["cairn.schedule": "\(schedule)", "cairn.trigger": "\(request.id)"])
            return "asked \(schedule) to retrain at \(when)"
        case .rollback:
            if case .modelDeployment(let target)? = context.relatedManifests[deploymentRef]?.spec, !target.rollbackOnFailedHealth {
                return "no rollback asked at \(when): \(deploymentRef) has rollback.onFailedHealth off"
            }
            let request = TriggerRequest(id: Self.requestID(object.ref, "rollback", context.now), object: deploymentRef,
                                         source: TriggerRequest.monitorSource, reason: why, requestedAt: context.now)
            report.effects.append(.addTrigger(request))
            report.wake.append(deploymentRef)
            context.logger.notice("asked for a rollback", metadata: ["cairn.trigger": "\(request.id)"])
            return "asked \(deploymentRef) to roll back at \(when)"
        case .alert:
            return send(alert: threshold, status: "firing", value: value, since: since, serving: serving, deployment: deployment)
                ?? "no alert sent at \(when): the daemon has no --alert-url"
        }
    }

    /// Queues an alert; nil when there is nowhere to send it.
    private func send(alert threshold: MonitorSpec.Threshold, status: String, value: Double?, since: Date, serving: Int?,
                      deployment: ModelDeploymentSpec?) -> String? {
        let measured = "\(threshold.metric) \(threshold.aggregate.rawValue) \(value.map(Self.figure) ?? "?")"
        let summary = "\(object.ref) \(status): "
            + (status == "resolved" ? "\(measured), no longer \(Self.condition(threshold))" : "\(measured) \(Self.condition(threshold))")
            + " on \(deploymentRef)" + (serving.map { " (\(deployment?.model ?? "?")@\($0))" } ?? "")
        let alert = MonitorAlert(status: status, monitor: object.ref.name, deployment: spec.deployment, model: deployment?.model,
                                 version: serving, metric: threshold.metric, aggregate: threshold.aggregate.rawValue,
                                 threshold: Self.condition(threshold), value: value, since: since, action: threshold.action.rawValue,
                                 summary: summary, sourceCommit: context.sourceCommit)
        guard services.alerts?.send(alert) == true else { return nil }
        return "queued a \(status) alert for --alert-url at \(MonitorReport.time(context.now))"
    }

    static func requestID(_ ref: ObjectRef, _ action: String, _ now: Date) -> String {
        "monitor-\(ref.name)-\(action)-\(Int64((now.timeIntervalSince1970 * 1000).rounded()))-\(UInt32.random(in: 0...UInt32.max))"
    }

    // MARK: Step 5: the loop

    /// Follows the last retrain to its end, and a candidate version to the stage.
    private mutating func follow(deployment: ModelDeploymentSpec, serving: Int?) throws {
        if var retrain = memory.retrain, !retrain.settled {
            let schedule = ObjectRef(.trainingSchedule, retrain.schedule)
            // Asked in this pass, the request is not in the store until the pass is recorded.
            let pending = try retrain.requestedAt == context.now || context.memory.triggers(of: schedule).contains { $0.id == retrain.triggerID }
            if !pending {
                if let run = try context.runs.runs(of: schedule, limit: 50).first(where: { $0.triggerID == retrain.triggerID }) {
                    retrain.runID = run.id
                    switch run.state {
                    case .succeeded:
                        if let version = try context.versions.version(registeredBy: run.id) {
                            retrain.settled = true
                            if version.gate.passed {
                                retrain.answer = "\(version.name) registered, gate \(version.gate.summary)"
                                memory.candidate = MonitorMemory.Candidate(model: version.model, version: version.version)
                            } else {
                                retrain.answer = "\(version.name) registered, gate \(version.gate.summary); nothing is proposed"
                            }
                        } else {
                            retrain.answer = "run \(run.id) succeeded; waiting for its version"
                        }
                    case .failed, .cancelled, .interrupted, .skipped:
                        retrain.settled = true
                        retrain.answer = "run \(run.id) \(run.state.rawValue)" + (run.message.map { ": \($0.prefix(200))" } ?? "")
                    case .submitted, .running:
                        retrain.answer = "run \(run.id) is under way"
                    }
                } else {
                    retrain.settled = true
                    retrain.answer = "no new inputs: \(schedule) had trained these already, so nothing was retrained"
                }
            } else {
                retrain.answer = nil
            }
            memory.retrain = retrain
        }
        guard var candidate = memory.candidate else { return }
        if serving == candidate.version {
            candidate.serves = true
            memory.candidate = candidate
            return
        }
        if case .stage(let target) = deployment.selector,
           let holder = try (context.status(ObjectRef(.model, candidate.model))?.stages ?? context.versions.stageMap(of: candidate.model)).holders[target],
           holder.version > candidate.version {
            // A newer version got there (by hand, or by a later loop): this one is history.
            report.loopNote = "\(candidate.model)@\(candidate.version) was not promoted: \(target) holds \(candidate.model)@\(holder.version) now"
            memory.candidate = nil
            return
        }
        if case .stage(let target) = deployment.selector {
            try propose(candidate: &candidate, deployment: deployment, stage: target)
        } else {
            try propose(candidate: &candidate, deployment: deployment, stage: nil)
        }
        memory.candidate = candidate
    }

    /// Writes the next promotion proposal of `candidate` towards `target` (nil: the
    /// deployment's own `version`), once per stage.
    private mutating func propose(candidate: inout MonitorMemory.Candidate, deployment: ModelDeploymentSpec, stage target: String?) throws {
        let name = "\(candidate.model)@\(candidate.version)"
        let edit: ManifestEdit
        let stageName: String
        let policyNote: String
        if let target {
            let modelRef = ObjectRef(.model, candidate.model)
            guard let model = context.manifest(modelRef), case .model(let modelSpec) = model.spec,
                  let targetIndex = modelSpec.stages.firstIndex(of: target) else { return }
            // As accepted after this pass when the Model was judged in it (a merge is seen at once).
            let stages = try context.status(modelRef)?.stages ?? context.versions.stageMap(of: candidate.model)
            // Under strictOrder a version reaches a stage only from the one before it, in an
            // earlier commit: propose the first stage on the way that it has not held.
            var index = targetIndex
            while modelSpec.policy.strictOrder, index > 0, !stages.hasHeld(candidate.version, modelSpec.stages[index - 1]) { index -= 1 }
            stageName = modelSpec.stages[index]
            guard !candidate.proposed.contains(stageName), stages.holders[stageName]?.version != candidate.version,
                  modelSpec.assignments[stageName] != candidate.version else { return }
            guard let current = modelSpec.assignments[stageName] else {
                report.loopNote = "\(name) cannot be proposed for \(stageName): \(modelRef) assigns nothing to it, and a proposal "
                    + "only changes an existing assignment; assign \(stageName) once by hand"
                return
            }
            edit = ManifestEdit(file: model.location.file, object: modelRef, field: ["spec", "assignments", stageName],
                                expected: String(current), value: String(candidate.version))
            policyNote = index == targetIndex ? "" : " (\(modelRef)'s policy is strictOrder, so it holds \(stageName) first; "
                + "\(target) is proposed once that is accepted)"
        } else {
            guard let manifest = context.relatedManifests[deploymentRef], case .version(let current) = deployment.selector,
                  !candidate.proposed.contains("version") else { return }
            stageName = "version"
            edit = ManifestEdit(file: manifest.location.file, object: deploymentRef, field: ["spec", "version"],
                                expected: String(current), value: String(candidate.version))
            policyNote = ""
        }
        candidate.proposed.append(stageName)
        let retrain = memory.retrain
        let body = """
            \(object.ref) fired (\(retrain?.reason ?? "a threshold")) and retrained \(retrain.map { "with \(ObjectRef(.trainingSchedule, $0.schedule))" } ?? ""); \
            the new version \(name) passed its gate\(policyNote).

            Merge this branch (as a pull request) to serve \(name) on \(deploymentRef); Cairn never changes the tracked \
            branch itself. A CI job may merge it when the plan below says it is acceptable.
            """
        var proposal = Proposal(slug: "\(candidate.model)-promote", baseCommit: context.sourceCommit, edits: [edit],
                                subject: stageName == "version" ? "Serve \(name) on \(deploymentRef)" : "Promote \(name) to \(stageName)",
                                body: body)
        proposal.withPlan = true
        report.proposal = proposal
        report.proposedStage = stageName
    }
}

public import CairnCore
public import CairnManifests
import Foundation

/// ModelDeployment: serves the version its selector names (whichever holds a stage, or a
/// fixed one) on its target, through the daemon's `Deployer`.
///
/// Steps: resolve the desired version from the registry; if that request (version, target
/// spec, code) failed here before and git has not changed it since, hold it back (serving
/// the last healthy version when `rollback.onFailedHealth`); otherwise ask the target for
/// it; then report. Ready only when the target was checked and serves the desired version.
/// When the desired version fails and rollback is on, the last healthy version is put back,
/// the failed one is held (no retry, no flapping) until git changes the version, the target
/// or the code it runs, or a person asks with `cairn trigger`, and once the rollback serves
/// the reverse assignment is proposed on a branch for people to merge.
public struct ModelDeploymentController: Controller {
    public static let kind = Kind.modelDeployment

    public init() {}

    public func reconcile(_ object: Manifest, in context: ReconcileContext) async throws -> Outcome {
        guard case .modelDeployment(let spec) = object.spec else { throw ReconcileError.wrongKind(object, Self.kind) }
        guard let deployer = context.deployer else {
            return .notImplemented("this process deploys nothing (no serving was configured); `cairn run` and `cairn reconcile` do")
        }
        var memory = try DeploymentMemory.load(context.memory.memory(of: object.ref))
        let before = memory
        var step = Step(object: object, spec: spec, context: context, deployer: deployer)

        guard let desired = try step.desiredVersion() else {
            return try await step.nothingAssigned(memory: &memory, before: before)
        }
        // A manual trigger asks for the held version to be tried again; a Monitor's asks for a
        // rollback of the version that serves.
        let triggers = try context.memory.triggers(of: object.ref)
        let rollbacks = triggers.filter { $0.source == TriggerRequest.monitorSource }
        if triggers.count > rollbacks.count, memory.held != nil {
            memory.held = nil
            step.retry = true
        }
        step.consumed = triggers.map(\.id)
        let request = try step.request(for: desired)
        let identity = Step.identity(of: request)
        // Git changed what failed (another version, another target spec, other code to run):
        // the hold has done its job.
        if let held = memory.held, held.version != desired.version || held.identity != identity { memory.held = nil }
        if let rollback = rollbacks.last, memory.held == nil, memory.lastHealthy?.version == desired.version {
            if !spec.rollbackOnFailedHealth {
                step.note = "a Monitor asked for a rollback (\(rollback.reason.prefix(300))), and rollback.onFailedHealth is off"
            } else if let previous = memory.previousHealthy, previous.version != desired.version {
                // The version that serves is held as if it had failed on its target, and the
                // one before it goes back: the same path, and the same proposal, as a failed rollout.
                memory.lastHealthy = previous
                memory.previousHealthy = nil
                memory.held = DeploymentMemory.Held(version: desired.version, identity: identity, reason: DeploymentMemory.monitorReason,
                                                    message: rollback.reason, sourceCommit: context.sourceCommit, proposed: false)
            } else {
                step.note = "a Monitor asked for a rollback (\(rollback.reason.prefix(300))), and there is no earlier healthy version to go back to"
            }
        }
        if let held = memory.held {
            return try await step.holding(held, desired: desired, memory: &memory, before: before)
        }
        if memory.lastRequested != identity {
            memory.lastRequested = identity
            step.retry = true
        }
        let observation = try await deployer.ensure(request, retry: step.retry)
        switch observation.phase {
        case .serving:
            if let last = memory.lastHealthy, last.version != desired.version { memory.previousHealthy = last }
            memory.lastHealthy = desired
            return step.finish(.ready(reason: "Serving", message: step.describe(observation)), observation, memory: memory, before: before)
        case .progressing:
            return step.finish(.reconciling(reason: observation.reason, message: step.describe(observation)), observation,
                               memory: memory, before: before)
        case .refused:
            return step.finish(.stalled(reason: observation.reason, message: observation.message), observation, memory: memory, before: before)
        case .failed:
            let held = DeploymentMemory.Held(version: desired.version, identity: identity, reason: observation.reason,
                                             message: observation.message, sourceCommit: context.sourceCommit, proposed: false)
            memory.held = held
            return try await step.holding(held, desired: desired, memory: &memory, before: before, failure: observation)
        }
    }
}

/// What the controller keeps about a deployment between passes (as JSON in the store).
struct DeploymentMemory: Codable, Equatable {
    /// The last version the target was checked to serve: what a rollback goes back to.
    var lastHealthy: ServedVersion?
    /// The healthy version before `lastHealthy`: what a Monitor's rollback goes back to.
    var previousHealthy: ServedVersion?
    /// What the controller last asked of the target (`Step.identity`: the version, the
    /// target's spec and the code its commands run); anything new is a fresh attempt.
    var lastRequested: String?
    /// A version that failed and is not tried again until git changes it or a person asks.
    var held: Held?

    struct Held: Codable, Equatable {
        var version: Int
        /// The request that failed (`Step.identity`): a change to any part of it lifts the hold.
        var identity: String?
        var reason: String
        var message: String
        /// The commit at which it failed.
        var sourceCommit: String
        /// Whether the rollback's proposal was written (once per hold, once the rollback serves).
        var proposed: Bool
        /// Whether the last healthy version was asked for as a fresh attempt: once per hold,
        /// so a rollback that fails too is not tried again and again.
        var rollbackRequested = false
    }

    /// A hold a Monitor asked for (its rollback action), rather than a failure on the target.
    static let monitorReason = "MonitorFiring"

    static func load(_ data: Data?) throws -> DeploymentMemory {
        guard let data else { return DeploymentMemory() }
        // What an older Cairn kept, or a damaged row, starts afresh rather than stalls.
        return (try? JSONDecoder().decode(DeploymentMemory.self, from: data)) ?? DeploymentMemory()
    }

    var encoded: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)) ?? Data()
    }
}

/// One reconcile of one deployment: the pieces the steps share.
private struct Step {
    let object: Manifest
    let spec: ModelDeploymentSpec
    let context: ReconcileContext
    let deployer: any Deployer
    var retry = false
    var consumed: [String] = []
    /// Something to add to the message (a rollback that could not be done).
    var note: String?

    init(object: Manifest, spec: ModelDeploymentSpec, context: ReconcileContext, deployer: any Deployer) {
        self.object = object
        self.spec = spec
        self.context = context
        self.deployer = deployer
    }

    /// The version the selector names, as registered; nil when no version holds the stage.
    /// A version the registry does not have stalls the object (until git or a training changes that).
    func desiredVersion() throws -> ServedVersion? {
        let number: Int
        switch spec.selector {
        case .stage(let stage):
            // The Model's status from this pass when it was judged before this object (a
            // promotion merged in this commit is served in the same pass); else as stored.
            let stages = try context.dependencies[ObjectRef(.model, spec.model)]?.stages ?? context.versions.stageMap(of: spec.model)
            guard let holder = stages.holders[stage] else { return nil }
            number = holder.version
        case .version(let version):
            number = version
        }
        guard let version = try context.versions.version(spec.model, number) else {
            throw ReconcileError(.terminal, reason: "VersionNotFound",
                                 message: "\(spec.model)@\(number) is not registered; nothing was deployed")
        }
        return ServedVersion(version)
    }

    func request(for version: ServedVersion) throws -> DeploymentRequest {
        DeploymentRequest(deployment: object.ref.name, version: version, target: spec.target, sourceCommit: context.sourceCommit,
                          codeKey: try codeKey())
    }

    /// What makes two requests the same attempt: the version (and its artifact), the target's
    /// spec and the code its commands run. The source commit is not part of it: a commit that
    /// changes none of these is not a new attempt.
    static func identity(of request: DeploymentRequest) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let target = (try? encoder.encode(request.target)) ?? Data()
        return ContentHash.sha256(of: Data("\(request.version.version) \(request.version.artifact.digest) \(request.codeKey ?? "-") ".utf8) + target).description
    }

    /// The hash of the repository files the target's commands depend on (see
    /// `DeploymentRequest.codeKey`); nil for a directory target or commands that name none.
    func codeKey() throws -> String? {
        let commands: [[String]]
        switch spec.target {
        case .process(let command, _, _): commands = [command]
        case .command(let apply, let remove, let check, _): commands = [apply, remove, check].filter { !$0.isEmpty }
        case .directory: return nil
        }
        var lines: [String] = []
        for command in commands {
            for path in try CodeDependencies.find(command: command, outs: [], in: context.files).paths {
                lines.append("\(path) \(try context.files.contentHash(of: path)?.hex ?? "missing")")
            }
        }
        guard !lines.isEmpty else { return nil }
        return ContentHash.sha256(of: Data(Set(lines).sorted().joined(separator: "\n").utf8)).description
    }

    /// Nothing holds the stage: whatever was served is taken down.
    func nothingAssigned(memory: inout DeploymentMemory, before: DeploymentMemory) async throws -> Outcome {
        try await deployer.remove(deployment: object.ref.name)
        memory = DeploymentMemory()
        let stage = if case .stage(let stage) = spec.selector { stage } else { "" }
        var outcome = Outcome.ready(reason: "NothingToServe",
                                    message: "no version of \(spec.model) holds \(stage); nothing is served")
        outcome.effects = effects(memory: memory, before: before)
        return outcome
    }

    /// The desired version is held after a failure: serve the last healthy one instead (with
    /// rollback on and an earlier version to go back to), asked for as a fresh attempt once
    /// per hold, and propose the reverse assignment once it serves.
    func holding(_ held: DeploymentMemory.Held, desired: ServedVersion, memory: inout DeploymentMemory, before: DeploymentMemory,
                 failure: DeploymentObservation? = nil) async throws -> Outcome {
        let failed = held.reason == DeploymentMemory.monitorReason
            ? "\(desired) was found unhealthy by a Monitor (\(held.message))"
            : "\(desired) failed on its target (\(held.reason): \(held.message))"
        let notRetried = "it is not tried again until git changes the version, the target or the code it runs, "
            + "or `cairn trigger \(object.ref)` asks"
        guard spec.rollbackOnFailedHealth, let fallback = memory.lastHealthy else {
            let why = spec.rollbackOnFailedHealth ? "there is no earlier healthy version to go back to" : "rollback.onFailedHealth is off"
            return finish(Outcome(.notReady, reason: held.reason, message: "\(failed); \(why); \(notRetried)"), failure,
                          memory: memory, before: before)
        }
        guard fallback.version != desired.version else {
            // The same version with a new spec or new code failed: what served it before was
            // never switched away from, and there is no assignment to reverse.
            return finish(Outcome(.notReady, reason: held.reason,
                                  message: "\(failed); \(desired) as it was deployed before goes on serving; \(notRetried)"),
                          failure, memory: memory, before: before)
        }
        let fresh = !held.rollbackRequested
        memory.held?.rollbackRequested = true
        let observation = try await deployer.ensure(try request(for: fallback), retry: fresh)
        var outcome: Outcome
        switch observation.phase {
        case .serving:
            outcome = Outcome(.notReady, reason: "RolledBack",
                              message: "\(failed); rolled back to \(fallback), which serves and is healthy; \(notRetried)")
            if !held.proposed, let proposal = proposal(back: fallback, from: desired, held: held) {
                outcome.proposal = proposal
                memory.held?.proposed = true
            }
        case .progressing:
            outcome = .reconciling(reason: "RollingBack", message: "\(failed); rolling back to \(fallback): \(observation.message)")
        case .failed, .refused:
            outcome = Outcome(.notReady, reason: "RollbackFailed",
                              message: "\(failed); the rollback to \(fallback) failed too (\(observation.reason): \(observation.message)); "
                                  + "neither is tried again until git changes or `cairn trigger \(object.ref)` asks")
        }
        return finish(outcome, observation, memory: memory, before: before)
    }

    /// The reverse assignment, as an edit of the manifest that chose the failed version: the
    /// Model's `assignments.<stage>`, or this deployment's own `version`.
    func proposal(back fallback: ServedVersion, from failed: ServedVersion, held: DeploymentMemory.Held) -> Proposal? {
        let edit: ManifestEdit
        let what: String
        switch spec.selector {
        case .stage(let stage):
            let modelRef = ObjectRef(.model, spec.model)
            guard let model = context.relatedManifests[modelRef] else { return nil }
            edit = ManifestEdit(file: model.location.file, object: modelRef, field: ["spec", "assignments", stage],
                                expected: String(failed.version), value: String(fallback.version))
            what = "\(spec.model) \(stage)"
        case .version:
            edit = ManifestEdit(file: object.location.file, object: object.ref, field: ["spec", "version"],
                                expected: String(failed.version), value: String(fallback.version))
            what = "\(object.ref)"
        }
        let why = held.reason == DeploymentMemory.monitorReason
            ? "a Monitor found \(failed) unhealthy at commit \(String(held.sourceCommit.prefix(10))) (\(held.message))"
            : "\(failed) failed on its target at commit \(String(held.sourceCommit.prefix(10))) (\(held.reason): \(held.message))"
        let body = """
            \(object.ref) rolled back from \(failed) to \(fallback) by itself: \(why).

            Cairn serves \(fallback) now and will not try \(failed) again until git changes. Merge this \
            branch to make git say what serves; or fix \(failed)'s problem and assign a new version.
            """
        return Proposal(slug: "\(spec.model)-rollback", baseCommit: context.sourceCommit, edits: [edit],
                        subject: "Roll back \(what) to \(fallback)", body: body)
    }

    /// The observation in words, with any drift Cairn put back.
    func describe(_ observation: DeploymentObservation) -> String {
        observation.drift.isEmpty ? observation.message
            : observation.message + "; put back: " + observation.drift.joined(separator: "; ")
    }

    func finish(_ outcome: Outcome, _ observation: DeploymentObservation?, memory: DeploymentMemory, before: DeploymentMemory) -> Outcome {
        var outcome = outcome
        if let note { outcome.message += "; " + note }
        outcome.serving = memory.lastHealthy?.version
        if let recheck = observation?.recheckAfter { outcome.requeueAfter = recheck }
        outcome.effects += effects(memory: memory, before: before)
        return outcome
    }

    func effects(memory: DeploymentMemory, before: DeploymentMemory) -> [StoreEffect] {
        var effects: [StoreEffect] = consumed.map(StoreEffect.consumeTrigger)
        if memory != before { effects.append(.remember(object.ref, memory == DeploymentMemory() ? nil : memory.encoded)) }
        return effects
    }
}

import Foundation
import CairnCore
import CairnGit
import CairnStore
import Logging

/// Writes the registry as annotated git tags in GTO's grammar (`--registry-tags`), driven by
/// the store, right after each drain of the outbox; and pushes them with the status branch.
///
/// Crash-safe in three steps, like the status branch: a tag is planned in the store (named,
/// numbered, timed) before git sees it; then written; then recorded as written. A crash after
/// the write finds the tag in git with the planned name and commit on the next drain and adopts
/// it, so nothing is lost, named twice, or stuck. A tag of that name that is not Cairn's (a
/// person's, at another commit, or a lightweight one GTO would not read) is never moved: the
/// tag is held, logged, listed by `cairn status`, and looked at again on every drain.
final class RegistryTagger {
    let repository: Repository
    let store: Store
    let configuration: ReconcilerConfiguration
    private let logger: Logger
    /// Tags the remote refused are offered again once per process, not on every push.
    private var retriedRejected = false

    init(repository: Repository, store: Store, configuration: ReconcilerConfiguration, logger: Logger) {
        self.repository = repository
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    /// Plans tags for what the registry recorded since the last plan and writes what is
    /// planned or held. With nothing to do it costs one read of the store.
    func sync() throws {
        guard try store.registryTagsNeedWork() else { return }
        if let backlog = try store.registryTagBacklog() { try plan(backlog) }
        try write()
    }

    // MARK: Planning

    private func plan(_ backlog: Store.RegistryTagBacklog) throws {
        // GTO numbers a model's tags after the highest counter of any of its tags, people's too.
        // One listing for all models: a backfill may cover many.
        var counters: [String: Int] = [:]
        for name in try repository.tagNames() {
            guard let parsed = GTOTag.parse(name), backlog.models.contains(parsed.artifact), let counter = parsed.counter else { continue }
            counters[parsed.artifact] = max(counters[parsed.artifact] ?? 0, counter)
        }
        let cairn = "\(configuration.author.name) <\(configuration.author.email)>"
        var planner = RegistryTagPlanner(existing: try store.registryTags(of: backlog.models), repositoryCounters: counters, cairn: cairn)
        let tags = planner.plan(backlog.events)
        try store.planRegistryTags(tags, from: backlog.from, through: backlog.through)
        for tag in tags where tag.state == .skipped {
            logger.notice("registry tag skipped", metadata: ["cairn.tag": "\(tag.label)", "cairn.reason": "\(tag.problem ?? "")"])
        }
    }

    // MARK: Writing

    private func write() throws {
        for var tag in try store.registryTagsToWrite() {
            let before = tag
            try place(&tag)
            guard tag != before else { continue }
            if tag.state == .held, tag.problem != before.problem {
                logger.warning("registry tag held", metadata: ["cairn.tag": "\(tag.label)", "cairn.reason": "\(tag.problem ?? "")"])
            }
            try store.updateRegistryTag(tag)
            if tag.state == .created {
                logger.info("wrote registry tag", metadata: ["cairn.tag": "\(tag.label)", "cairn.commit": "\(tag.target.prefix(12))"])
            }
        }
    }

    /// Writes one planned (or held) tag, adopts it when git has it already, or holds it.
    private func place(_ tag: inout RegistryTag) throws {
        guard let name = tag.name else { return }
        if tag.action != .register {
            // A stage tag names the version by its commit: only once the version's own tag is
            // in git does GTO know which version that commit is.
            let registration = try store.registrationTag(of: tag.model, version: tag.version)
            guard let registration, registration.state == .created else {
                return hold(&tag, "it waits for \(registration?.label ?? GTOTag.registration(model: tag.model, version: tag.version)), "
                            + "which is not written (\(registration?.problem ?? "not planned"))")
            }
        }
        guard Repository.isValidTagName(name) else {
            return hold(&tag, "\(name) is not a name git allows for a tag")
        }
        guard let target = ObjectID(hex: tag.target), repository.contains(target) else {
            return hold(&tag, "the commit \(tag.target.prefix(12)) is not in the repository (was the tracked branch rewritten?)")
        }
        if try adoptOrRefuse(&tag, name: name, target: target) { return }
        do {
            let object = try repository.createAnnotatedTag(name, target: target, message: tag.message + "\n", tagger: signature(of: tag))
            FaultPoint.hit("after-registry-tag")
            tag.state = .created
            tag.object = object.hex
            tag.problem = nil
        } catch let error as GitError where error.code == .alreadyExists {
            // Made by someone else between the look and the write.
            if try !adoptOrRefuse(&tag, name: name, target: target) { throw error }
        } catch let error as GitError {
            throw GitError(error.code, "writing the registry tag \(name) on \(target.short): \(error.message)", function: error.function)
        }
    }

    /// When `name` exists: adopts it if it is an annotated tag of `target` (Cairn's own from
    /// before a crash, or the same tag made by hand), holds the tag otherwise. False when no
    /// tag of that name exists.
    private func adoptOrRefuse(_ tag: inout RegistryTag, name: String, target: ObjectID) throws -> Bool {
        guard let existing = try repository.tag(named: name) else { return false }
        if existing.isAnnotated, existing.commit == target {
            tag.state = .created
            tag.object = existing.object.hex
            tag.problem = nil
            return true
        }
        let what = existing.isAnnotated
            ? "points at \(existing.commit.map { "commit \($0.short)" } ?? "no commit")"
            : "is a lightweight tag, which GTO does not read"
        hold(&tag, "a tag named \(name) exists and \(what), not at \(target.short); Cairn never moves a tag: "
             + "if it is not meant to be there, delete it (git tag -d '\(name)') and Cairn writes its own")
        return true
    }

    private func hold(_ tag: inout RegistryTag, _ why: String) {
        tag.state = .held
        tag.problem = why
    }

    /// The tagger: `Name <email>` as planned, at the planned time.
    private func signature(of tag: RegistryTag) -> Signature {
        var name = configuration.author.name, email = configuration.author.email
        if let open = tag.tagger.lastIndex(of: "<"), tag.tagger.hasSuffix(">") {
            name = tag.tagger[..<open].trimmingCharacters(in: .whitespaces)
            email = String(tag.tagger[tag.tagger.index(after: open)..<tag.tagger.index(before: tag.tagger.endIndex)])
        }
        return Signature(name: name, email: email, time: tag.taggedAt)
    }

    // MARK: Pushing

    /// Pushes the tags written since the last push with `send` (the status pusher's push: one
    /// refspec per tag, never forced). A tag the remote refuses (it has another of that name)
    /// is recorded as rejected and reported; the others go on. Network failures throw.
    func push(_ send: ([String]) throws -> Void) throws {
        var tags = try store.registryTagsToPush(retrying: !retriedRejected)
        retriedRejected = true
        // A fetch into the mirror brings the remote's tags, and a remote tag of the same name
        // replaces Cairn's there: that tag is not Cairn's to push.
        tags = try tags.filter { tag in
            guard let name = tag.name else { return false }
            if try repository.referenceTarget("refs/tags/" + name)?.hex == tag.object { return true }
            var held = tag
            hold(&held, "the remote has a tag named \(name) that is not Cairn's (it replaced Cairn's in the mirror when fetched); "
                 + "Cairn never moves a tag: delete the remote's if it is not meant to be there")
            logger.warning("registry tag held", metadata: ["cairn.tag": "\(name)", "cairn.reason": "\(held.problem ?? "")"])
            try store.updateRegistryTag(held)
            return false
        }
        guard !tags.isEmpty else { return }
        do {
            try send(tags.compactMap(\.name).map { "refs/tags/\($0):refs/tags/\($0)" })
            for var tag in tags {
                tag.push = .pushed
                tag.problem = nil
                try store.updateRegistryTag(tag)
            }
            logger.info("pushed registry tags", metadata: ["cairn.tags": "\(tags.count)"])
        } catch let error as GitError where !Self.isTransport(error) {
            // One of them was refused: push them one by one to learn which.
            for var tag in tags {
                guard let name = tag.name else { continue }
                do {
                    try send(["refs/tags/\(name):refs/tags/\(name)"])
                    tag.push = .pushed
                    tag.problem = nil
                } catch let error as GitError where !Self.isTransport(error) {
                    tag.push = .rejected
                    tag.problem = "the remote refused it (it may have a tag of that name already): \(error.message)"
                    logger.warning("registry tag refused by the remote", metadata: ["cairn.tag": "\(name)", "cairn.error": "\(error.message)"])
                }
                try store.updateRegistryTag(tag)
            }
        }
    }

    private static func isTransport(_ error: GitError) -> Bool {
        error.code == .network || error.code == .timeout || error.code == .authentication
    }
}

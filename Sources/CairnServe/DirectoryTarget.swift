import Foundation
import Glibc
import CairnCore
import CairnRun
import Logging

/// Serves a version by placing its artifact in a directory a model server watches (see
/// `DirectoryLayout`), and checks on every `ensure` that the directory still holds it, by
/// SHA-256: what was edited or deleted by hand is put back and reported as drift, and the
/// observation asks to be rechecked after 30 s, since nothing tells Cairn when someone edits
/// a directory.
///
/// Placement is finished when `ensure` returns (nothing is in flight), but copying and hashing
/// a model can take seconds, so the work runs on a serial queue of its own rather than on a
/// thread of the cooperative pool; the queue also keeps two calls from interleaving. What was
/// placed is kept on disk in each deployment's `directory.json`, never only in memory, so a
/// restarted daemon prunes and removes exactly what Cairn placed, and nothing else.
actor DirectoryTarget: ServingTarget {
    private let placer: DirectoryPlacer
    private let queue = DispatchQueue(label: "cairn.serve.directory")

    init(environment: ServingEnvironment, notify: @escaping @Sendable (String) -> Void) throws {
        placer = DirectoryPlacer(environment: environment)
    }

    func ensure(_ request: DeploymentRequest, retry: Bool) async throws -> DeploymentObservation {
        try await onQueue { [placer] in try placer.ensure(request) }
    }

    func remove(deployment: String) async throws {
        try await onQueue { [placer] in try placer.remove(deployment: deployment) }
    }

    func recover() async throws -> [String] {
        try await onQueue { [placer] in placer.recorded() }
    }

    func inFlight() async -> [String] { [] }

    private func onQueue<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Swift.Result { try work() }) }
        }
    }
}

/// The directory target's work, one synchronous step list per call.
struct DirectoryPlacer: Sendable {
    let environment: ServingEnvironment
    /// How often an unchanged directory is checked again for hand edits.
    static let recheck = Duration.seconds(30)

    func folder(of deployment: String) -> URL { environment.directory.appendingPathComponent(deployment) }

    func ensure(_ request: DeploymentRequest) throws -> DeploymentObservation {
        guard case .directory(let path, let layoutName, let keep) = request.target else {
            throw ReconcileError(.terminal, reason: "InternalError", message: "the directory target was sent \(request.deployment), which is not a directory deployment; this is a bug in Cairn")
        }
        let version = request.version
        guard let layout = DirectoryLayout(rawValue: layoutName) else {
            return refused(version, "the directory layout \(layoutName) is not known; use tfserving or plain")
        }
        let base: URL
        switch resolve(path, layout: layout) {
        case .success(let url): base = url
        case .failure(let refusal): return refused(version, refusal.description)
        }
        let paths = DirectoryPaths(base: base, layout: layout)
        let folder = folder(of: request.deployment)
        var record = try writing(folder.path) { try DirectoryRecord.load(from: folder) } ?? DirectoryRecord(base: base.path, layout: layout)
        if record.base != base.path || record.layout != layout {
            // The spec moved the directory: what Cairn placed at the old one goes.
            try tearDown(&record, in: folder)
            record = DirectoryRecord(base: base.path, layout: layout)
        }
        guard environment.artifacts.contains(version.artifact) else {
            throw ReconcileError(.transient, reason: "ArtifactMissing",
                                 message: "the artifact store no longer holds \(version)'s model (\(version.artifact.digest)); it must be trained again before it can be placed")
        }
        let drift = try place(version, in: paths, record: &record, folder: folder)
        try prune(&record, in: paths, keep: keep, folder: folder)
        let location = layout == .tfserving ? base.appendingPathComponent(String(version.version)).path
            : "\(base.path) (a link to \(paths.linkText(of: version.version)))"
        environment.logger.info("\(version) is in \(location)", metadata: ["cairn.deployment": "\(request.deployment)"])
        return DeploymentObservation(phase: .serving, version: version.version, serving: version.version, reason: "Serving",
                                     message: "\(version) is in \(location) (\(DirectoryFiles.short(version.artifact.digest)))"
                                         + shadowWarning(paths, serving: version.version, record: record),
                                     drift: drift, recheckAfter: Self.recheck)
    }

    /// Makes the version's place hold the artifact, and for `plain` makes `<base>` point at
    /// it; records it. Returns the drift it put back.
    private func place(_ version: ServedVersion, in paths: DirectoryPaths, record: inout DirectoryRecord, folder: URL) throws -> [String] {
        let target = paths.directory(of: version.version)
        var drift: [String] = []
        try writing(paths.staging.path) {
            try DirectoryFiles.makeDirectory(paths.staging)
            DirectoryFiles.removeLeftovers(in: paths)
            let ours = record.holds(version.version)
            switch DirectoryFiles.inspect(target, for: version) {
            case .matches:
                break
            case .missing:
                if ours { drift.append("\(paths.display(version.version)) was deleted by hand; put back") }
                try stage(version, at: target, in: paths)
            case .differs(let what):
                guard ours else { throw occupied(target, version, what) }
                drift.append("\(paths.display(version.version)) was edited by hand (\(what)); put back")
                try stage(version, at: target, in: paths)
            }
            if paths.layout == .plain, let moved = try link(paths, to: version.version, record: record) { drift.append(moved) }
        }
        record.add(version.version, digest: version.artifact.digest.hex)
        record.serving = version.version
        try writing(folder.path) { try record.save(in: folder) }
        return drift
    }

    private func stage(_ version: ServedVersion, at target: URL, in paths: DirectoryPaths) throws {
        let staged = try DirectoryFiles.stage(version, from: environment.artifacts, in: paths)
        try DirectoryFiles.install(staged, at: target)
        environment.logger.debug("placed \(version) in \(staged.path), then renamed it to \(target.path)")
    }

    /// Points `<base>` at the version's hidden directory (`plain`); returns drift when it had
    /// been changed by hand from the version it served.
    private func link(_ paths: DirectoryPaths, to version: Int, record: DirectoryRecord) throws -> String? {
        let wanted = paths.linkText(of: version)
        var info = stat()
        let exists = lstat(paths.base.path, &info) == 0
        let current = exists ? try? FileManager.default.destinationOfSymbolicLink(atPath: paths.base.path) : nil
        if exists, info.st_mode & S_IFMT != S_IFLNK {
            throw ReconcileError(.transient, reason: "PathOccupied",
                                 message: "\(paths.base.path) exists and is not the symlink Cairn keeps there for the plain layout; Cairn does not replace what it did not make: move it away")
        }
        if current == wanted { return nil }
        if let current, paths.version(ofLink: current) == nil {
            throw ReconcileError(.transient, reason: "PathOccupied",
                                 message: "\(paths.base.path) is a symlink to \(current), which Cairn did not make; move it away")
        }
        try DirectoryFiles.point(paths.base, at: wanted)
        guard record.serving == version else { return nil }
        return current.map { "\(paths.base.path) was pointed at \($0) by hand; put back" } ?? "\(paths.base.path) was deleted by hand; put back"
    }

    private func occupied(_ target: URL, _ version: ServedVersion, _ what: String) -> ReconcileError {
        ReconcileError(.transient, reason: "PathOccupied",
                       message: "\(target.path) exists and was not placed by Cairn (\(what), not \(version)'s \(DirectoryFiles.short(version.artifact.digest))); Cairn does not replace what it did not place: move it away")
    }

    /// Keeps the served version and the newest versions below it that Cairn placed, `keep` in
    /// all, and removes the rest of Cairn's. Versions above the served one go too: TF Serving's
    /// default policy serves the highest number present, so a kept newer version would be
    /// served in place of a rollback's.
    private func prune(_ record: inout DirectoryRecord, in paths: DirectoryPaths, keep: Int, folder: URL) throws {
        guard let serving = record.serving else { return }
        let older = record.placed.map(\.version).filter { $0 < serving }.sorted(by: >)
        let kept = Set([serving] + older.prefix(max(0, keep - 1)))
        let doomed = record.placed.map(\.version).filter { !kept.contains($0) }
        guard !doomed.isEmpty else { return }
        defer { try? record.save(in: folder) }
        for version in doomed {
            try writing(paths.directory(of: version).path) { try DirectoryFiles.remove(paths.directory(of: version)) }
            record.drop(version)
            environment.logger.info("removed \(paths.directory(of: version).path), beyond the \(keep) versions kept")
        }
    }

    /// Notes numbered directories above the served version that Cairn did not place: TF
    /// Serving would serve them instead, and the status should say so.
    private func shadowWarning(_ paths: DirectoryPaths, serving: Int, record: DirectoryRecord) -> String {
        guard paths.layout == .tfserving, let names = try? FileManager.default.contentsOfDirectory(atPath: paths.base.path) else { return "" }
        let strangers = names.compactMap(Int.init).filter { $0 > serving && !record.holds($0) }.sorted()
        guard !strangers.isEmpty else { return "" }
        return "; note: \(strangers.map { paths.base.appendingPathComponent(String($0)).path }.joined(separator: ", ")) were not placed by Cairn, and a server that loads the highest version (TF Serving's default) serves those instead"
    }

    // MARK: - Remove and recover

    func remove(deployment: String) throws {
        let folder = folder(of: deployment)
        guard var record = try writing(folder.path, { try DirectoryRecord.load(from: folder) }) else { return }
        try tearDown(&record, in: folder)
        try writing(folder.path) { try DirectoryRecord.delete(in: folder) }
    }

    /// Removes every version Cairn placed under the record's base (and `plain`'s link),
    /// keeping the record up to date as it goes, so a failure halfway loses track of nothing.
    private func tearDown(_ record: inout DirectoryRecord, in folder: URL) throws {
        let paths = DirectoryPaths(base: URL(fileURLWithPath: record.base), layout: record.layout)
        defer { try? record.save(in: folder) }
        if paths.layout == .plain, let text = try? FileManager.default.destinationOfSymbolicLink(atPath: paths.base.path),
           paths.version(ofLink: text) != nil {
            try writing(paths.base.path) { try DirectoryFiles.remove(paths.base) }
        }
        for placement in record.placed {
            try writing(paths.directory(of: placement.version).path) { try DirectoryFiles.remove(paths.directory(of: placement.version)) }
            record.drop(placement.version)
        }
        record.serving = nil
    }

    /// The deployments with a directory target's record.
    func recorded() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: environment.directory.path)) ?? []
        return names.sorted().filter { (try? DirectoryRecord.load(from: folder(of: $0))) != nil }
    }

    // MARK: - Paths and errors

    /// The absolute base path the spec's `path` names, or why it may not be used: a relative
    /// path stays inside the repository's working directory (no `..`, no symlink out, not in
    /// `.git`); an absolute one lies under a `--data-root`, by the same rule runs' data obeys.
    func resolve(_ path: String, layout: DirectoryLayout) -> Result<URL, Refusal> {
        guard path.hasPrefix("/") else { return resolveInRepository(path) }
        let use = "Cairn may not write a serving directory there; start the daemon with --data-root naming a directory above it"
        if let refusal = LocalHostFiles.refusal(ofPath: path, roots: environment.dataRoots, use: use) { return .failure(Refusal(refusal)) }
        let base = URL(fileURLWithPath: path).standardizedFileURL
        // A plain layout writes beside its base, in the parent: that must be allowed too.
        if layout == .plain, let refusal = LocalHostFiles.refusal(ofPath: base.deletingLastPathComponent().path, roots: environment.dataRoots, use: use) {
            return .failure(Refusal("the plain layout keeps its versions beside \(path), in its parent, and \(refusal)"))
        }
        return .success(base)
    }

    private func resolveInRepository(_ path: String) -> Result<URL, Refusal> {
        guard let root = environment.repositoryRoot else {
            return .failure(Refusal("\(path) is relative to the repository, but this daemon follows a remote through a mirror with no working directory; name an absolute path under a --data-root"))
        }
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !components.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }), components.first != ".git" else {
            return .failure(Refusal("\(path) leaves the repository or names its .git directory; a relative path must name a directory inside the repository with plain components"))
        }
        let realRoot = LocalHostFiles.resolve(root.standardizedFileURL.path)
        let resolved = LocalHostFiles.resolve(root.appendingPathComponent(path).standardizedFileURL.path)
        guard resolved.hasPrefix(realRoot + "/") else {
            return .failure(Refusal("\(path) resolves to \(resolved) through a symlink, outside the repository \(realRoot); Cairn does not follow a link out of the repository"))
        }
        return .success(root.appendingPathComponent(path).standardizedFileURL)
    }

    struct Refusal: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    private func refused(_ version: ServedVersion, _ message: String) -> DeploymentObservation {
        DeploymentObservation(phase: .refused, version: version.version, serving: nil, reason: "PathNotAllowed", message: message)
    }

    /// Runs `body`, turning a file error into a transient `DirectoryNotWritable` that names
    /// `path` and the system's reason, so the object backs off and tries again.
    private func writing<Result>(_ path: String, _ body: () throws -> Result) throws -> Result {
        do {
            return try body()
        } catch let error as ReconcileError {
            throw error
        } catch {
            throw ReconcileError(.transient, reason: "DirectoryNotWritable",
                                 message: "could not write the serving directory \(path): \(DirectoryFiles.reason(error)); Cairn will try again")
        }
    }
}

public import Foundation
import CLibGit2

extension Repository {
    /// The commit a reference points at (following symbolic references), or nil if the
    /// reference does not exist. `name` is a full name such as `refs/heads/main`.
    public func referenceTarget(_ name: String) throws -> ObjectID? {
        var oid = git_oid()
        let result = git_reference_name_to_id(&oid, handle, name)
        if result == GIT_ENOTFOUND.rawValue {
            git_error_clear()
            return nil
        }
        try check(result, "git_reference_name_to_id")
        return ObjectID(oid)
    }

    /// Moves `name` to `target` only if it still points at `expected` (nil: only if it does
    /// not exist yet). The losing side of a race gets `GitError.refMoved` and nothing changes.
    public func updateReference(_ name: String, to target: ObjectID, expected: ObjectID?, logMessage: String) throws {
        var targetOID = target.raw
        var reference: OpaquePointer?
        if let expected {
            var expectedOID = expected.raw
            let result = git_reference_create_matching(&reference, handle, name, &targetOID, 1, &expectedOID, logMessage)
            if result == GIT_ENOTFOUND.rawValue {
                git_error_clear()
                throw GitError(.refMoved, "\(name) no longer exists; expected it at \(expected.short)", function: "git_reference_create_matching")
            }
            try translateRace(result, name: name, expected: expected.short)
        } else {
            let result = git_reference_create(&reference, handle, name, &targetOID, 0, logMessage)
            if result == GIT_EEXISTS.rawValue {
                git_error_clear()
                throw GitError(.refMoved, "\(name) was created by someone else in the meantime", function: "git_reference_create")
            }
            try translateRace(result, name: name, expected: "nothing")
        }
        git_reference_free(reference)
    }

    /// Deletes a reference if it still points at `expected`.
    public func deleteReference(_ name: String, expected: ObjectID) throws {
        var reference: OpaquePointer?
        let lookup = git_reference_lookup(&reference, handle, name)
        if lookup == GIT_ENOTFOUND.rawValue {
            git_error_clear()
            throw GitError(.refMoved, "\(name) no longer exists", function: "git_reference_lookup")
        }
        try check(lookup, "git_reference_lookup")
        defer { git_reference_free(reference) }
        guard let current = git_reference_target(reference), ObjectID(current) == expected else {
            throw GitError(.refMoved, "\(name) moved away from \(expected.short)", function: "deleteReference")
        }
        try check(git_reference_delete(reference), "git_reference_delete")
    }

    /// All references whose full name starts with `prefix`, with the commits they point at.
    public func references(withPrefix prefix: String) throws -> [String: ObjectID] {
        var iterator: OpaquePointer?
        try check(git_reference_iterator_glob_new(&iterator, handle, prefix + "*"), "git_reference_iterator_glob_new")
        defer { git_reference_iterator_free(iterator) }
        var result: [String: ObjectID] = [:]
        while true {
            var reference: OpaquePointer?
            let status = git_reference_next(&reference, iterator)
            if status == GIT_ITEROVER.rawValue { git_error_clear(); break }
            try check(status, "git_reference_next")
            defer { git_reference_free(reference) }
            var resolved: OpaquePointer?
            guard git_reference_resolve(&resolved, reference) == 0 else { git_error_clear(); continue }
            defer { git_reference_free(resolved) }
            if let name = git_reference_name(reference), let target = git_reference_target(resolved) {
                result[String(cString: name)] = ObjectID(target)
            }
        }
        return result
    }

    private func translateRace(_ result: Int32, name: String, expected: String) throws {
        if result == GIT_EMODIFIED.rawValue || result == GIT_ELOCKED.rawValue {
            git_error_clear()
            throw GitError(.refMoved, "\(name) moved (expected it at \(expected)); someone else updated it first", function: "updateReference")
        }
        try check(result, "git_reference_create_matching")
    }
}

extension Repository {
    /// Whether `ancestor` is `commit` or one of its ancestors; false when either is missing.
    public func isAncestor(_ ancestor: ObjectID, of commit: ObjectID) -> Bool {
        if ancestor == commit { return true }
        var a = commit.raw, b = ancestor.raw
        let result = git_graph_descendant_of(handle, &a, &b)
        if result < 0 { git_error_clear() }
        return result == 1
    }

    /// Whether the object database holds `id`.
    public func contains(_ id: ObjectID) -> Bool {
        var odb: OpaquePointer?
        guard git_repository_odb(&odb, handle) == 0 else { git_error_clear(); return false }
        defer { git_odb_free(odb) }
        var oid = id.raw
        return git_odb_exists(odb, &oid) == 1
    }

    /// The git blob id `data` would have: a content hash that needs no writing.
    public static func blobID(of data: Data) -> ObjectID {
        var oid = git_oid()
        _ = data.withUnsafeBytes { git_odb_hash(&oid, $0.baseAddress, $0.count, GIT_OBJECT_BLOB) }
        return ObjectID(oid)
    }
}

extension Repository {
    /// The best common ancestor of two commits, or nil when they share no history.
    public func mergeBase(_ a: ObjectID, _ b: ObjectID) -> ObjectID? {
        var out = git_oid()
        var left = a.raw, right = b.raw
        guard git_merge_base(&out, handle, &left, &right) == 0 else {
            git_error_clear()
            return nil
        }
        return ObjectID(out)
    }

    /// The commits reachable from `tip` by first parents, newest first, stopping before `base`.
    public func firstParentChain(from tip: ObjectID, until base: ObjectID?, limit: Int = 100_000) throws -> [Commit] {
        var result: [Commit] = []
        var current: ObjectID? = tip
        while let id = current, id != base, result.count < limit {
            let commit = try commit(id)
            result.append(commit)
            current = commit.parents.first
        }
        return result
    }
}

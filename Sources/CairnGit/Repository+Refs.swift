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

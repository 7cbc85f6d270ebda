import Foundation
import CLibGit2

/// A tag as `refs/tags/<name>` holds it.
public struct Tag: Sendable, Hashable {
    /// What an annotated tag says besides its target.
    public struct Annotation: Sendable, Hashable {
        public let message: String
        public let tagger: Signature?
    }

    /// The short name, without `refs/tags/`.
    public let name: String
    /// What the reference points at: the tag object of an annotated tag, the commit itself of
    /// a lightweight one.
    public let object: ObjectID
    /// The commit the tag names in the end (annotated tags peeled); nil when it names no commit
    /// (a tag of a tree or a blob).
    public let commit: ObjectID?
    /// nil for a lightweight tag.
    public let annotation: Annotation?

    public var isAnnotated: Bool { annotation != nil }
}

extension Repository {
    /// Whether `name` may be a tag's short name (`churn@v1.0.0`, `churn#production#3`).
    public static func isValidTagName(_ name: String) -> Bool {
        LibGit2.ensureInitialised()
        var valid: Int32 = 0
        guard !name.isEmpty, git_reference_name_is_valid(&valid, "refs/tags/" + name) == 0 else {
            git_error_clear()
            return false
        }
        return valid == 1
    }

    /// The tag `name`, or nil when the repository has none of that name.
    public func tag(named name: String) throws -> Tag? {
        guard Self.isValidTagName(name) else {
            throw GitError(.invalidSpec, "'\(name)' is not a valid tag name", function: "tag(named:)")
        }
        var oid = git_oid()
        let result = git_reference_name_to_id(&oid, handle, "refs/tags/" + name)
        if result == GIT_ENOTFOUND.rawValue {
            git_error_clear()
            return nil
        }
        try check(result, "git_reference_name_to_id")
        let object = ObjectID(oid)
        var tagObject: OpaquePointer?
        let lookup = git_tag_lookup(&tagObject, handle, &oid)
        if lookup == GIT_ENOTFOUND.rawValue {
            // Not a tag object: a lightweight tag names its target directly.
            git_error_clear()
            return Tag(name: name, object: object, commit: try peeledCommit(object), annotation: nil)
        }
        try check(lookup, "git_tag_lookup")
        defer { git_tag_free(tagObject) }
        let message = git_tag_message(tagObject).map { String(cString: $0) } ?? ""
        let tagger = git_tag_tagger(tagObject).map { Signature($0) }
        return Tag(name: name, object: object, commit: try peeledCommit(object),
                   annotation: Tag.Annotation(message: message, tagger: tagger))
    }

    /// The short names of the tags that match a glob `pattern` (`churn@*`; `*` for all), sorted.
    public func tagNames(matching pattern: String = "*") throws -> [String] {
        var names = git_strarray()
        try check(git_tag_list_match(&names, pattern, handle), "git_tag_list_match")
        defer { git_strarray_dispose(&names) }
        var result: [String] = []
        result.reserveCapacity(names.count)
        for index in 0..<names.count {
            if let name = names.strings?[index] { result.append(String(cString: name)) }
        }
        return result.sorted()
    }

    /// Writes an annotated tag `name` on the commit `target`, with `message` and `tagger` (whose
    /// time is the tag's time). Never moves a tag: when `refs/tags/<name>` exists, whatever it
    /// points at, nothing is written and `GitError.alreadyExists` is thrown. Returns the new
    /// tag object's id.
    @discardableResult
    public func createAnnotatedTag(_ name: String, target: ObjectID, message: String, tagger: Signature) throws -> ObjectID {
        guard Self.isValidTagName(name) else {
            throw GitError(.invalidSpec, "'\(name)' is not a valid tag name", function: "createAnnotatedTag")
        }
        var targetOID = target.raw
        var commit: OpaquePointer?
        try check(git_object_lookup(&commit, handle, &targetOID, GIT_OBJECT_COMMIT), "git_object_lookup",
                  notFoundMessage: "the commit \(target.short) to tag as \(name) is not in \(gitDirectory.path)")
        defer { git_object_free(commit) }
        var out = git_oid()
        let result = try tagger.withGitSignature { signature in
            git_tag_create(&out, handle, name, commit, signature, message, 0)
        }
        if result == GIT_EEXISTS.rawValue {
            git_error_clear()
            throw GitError(.alreadyExists, "the tag \(name) exists already; Cairn never moves a tag", function: "git_tag_create")
        }
        try check(result, "git_tag_create")
        return ObjectID(out)
    }

    /// The commit an object names after peeling tags; nil when it is no commit in the end.
    private func peeledCommit(_ id: ObjectID) throws -> ObjectID? {
        var oid = id.raw
        var object: OpaquePointer?
        let lookup = git_object_lookup(&object, handle, &oid, GIT_OBJECT_ANY)
        if lookup == GIT_ENOTFOUND.rawValue {
            git_error_clear()
            return nil
        }
        try check(lookup, "git_object_lookup")
        defer { git_object_free(object) }
        var peeled: OpaquePointer?
        guard git_object_peel(&peeled, object, GIT_OBJECT_COMMIT) == 0 else {
            git_error_clear()
            return nil
        }
        defer { git_object_free(peeled) }
        return git_object_id(peeled).map { ObjectID($0) }
    }
}

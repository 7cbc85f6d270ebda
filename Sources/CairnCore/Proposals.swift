public import Foundation
public import CairnManifests

/// A change Cairn proposes to the tracked branch, never commits there: a commit on its own
/// branch, `cairn/proposals/<slug>-<n>`, that a person (or a CI job) merges as a pull request.
/// A rollback proposes the reverse assignment, so that git and what serves agree again.
///
/// Written by the status writer with the status commit that tells of it (the same outbox
/// entry, so a crash between the two loses neither and writes neither twice). `n` is the
/// first number whose branch does not exist yet: a branch people made or pushed to is never
/// moved.
public struct Proposal: Codable, Sendable, Hashable {
    /// `churn-rollback`: the branch is `cairn/proposals/churn-rollback-<n>`.
    public var slug: String
    /// The commit of the tracked branch the proposal starts from (hex).
    public var baseCommit: String
    /// What to change in the manifests at `baseCommit`.
    public var edits: [ManifestEdit]
    /// The commit's subject: `Roll back churn production to churn@2`.
    public var subject: String
    /// The commit's body: why, and what merging it does.
    public var body: String
    /// Run `cairn plan`'s checks on the proposal and put the Markdown verdict in the commit
    /// message (a monitor's promotion, which a CI job may merge when the plan passes).
    public var withPlan: Bool?

    public init(slug: String, baseCommit: String, edits: [ManifestEdit], subject: String, body: String) {
        self.slug = slug
        self.baseCommit = baseCommit
        self.edits = edits
        self.subject = subject
        self.body = body
    }

    /// The prefix under `refs/heads/` every proposal branch has.
    public static let branchPrefix = "cairn/proposals/"
}

/// One scalar of one manifest, set to a new value: in the document of `object` in `file`,
/// the value at `field` (such as `spec`, `assignments`, `production`) becomes `value`. The
/// writer replaces that scalar's text and nothing else, so comments and layout stay.
public struct ManifestEdit: Codable, Sendable, Hashable {
    public var file: String
    public var object: ObjectRef
    public var field: [String]
    /// The value as it is now (the writer refuses the edit when the file says otherwise).
    public var expected: String
    public var value: String

    public init(file: String, object: ObjectRef, field: [String], expected: String, value: String) {
        self.file = file
        self.object = object
        self.field = field
        self.expected = expected
        self.value = value
    }
}

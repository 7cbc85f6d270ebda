import Foundation
import CairnCore
import CairnGit
import CairnManifests
import CairnStore
import Logging

/// Writes a proposal (a rollback's reverse assignment) as one commit on its own branch,
/// `cairn/proposals/<slug>-<n>`, for people to merge: Cairn never commits to the tracked branch.
///
/// The commit starts from the proposal's base commit and changes only the scalars it edits.
/// Its `Cairn-Proposal-Id` is derived from the outbox entry, so a drain that crashed after
/// making the branch and before clearing the entry finds that branch on the next drain and
/// adopts it instead of writing a second one. A branch is only ever created, never moved: `n`
/// is the first number no branch (here, or on the remote) has, and a branch a person made or
/// pushed to is left as it is.
struct ProposalWriter {
    let repository: Repository
    let configuration: ReconcilerConfiguration
    let sign: CommitSigning?
    let logger: Logger
    /// How many numbers are tried before giving up (each taken by a branch that exists).
    static let maximumNumber = 1_000

    enum Written: Equatable {
        /// On `branch` (short name), written now or adopted from a drain that crashed.
        case branch(String, adopted: Bool)
        /// Not written, and why (the status commit says so).
        case skipped(String)
    }

    /// Writes `proposal`, carried by `entry` of the store `storeIdentity`, or finds it written.
    func write(_ proposal: Proposal, carriedBy entry: OutboxEntry, store storeIdentity: String, author: Signature,
               registry: PlanRegistry? = nil) throws -> Written {
        let id = Self.proposalID(of: entry, proposal: proposal, store: storeIdentity)
        guard Self.isBranchComponent(proposal.slug) else {
            return .skipped("'\(proposal.slug)' cannot name a branch")
        }
        if let branch = try existingBranch(of: proposal, id: id) { return .branch(branch, adopted: true) }
        guard let base = ObjectID(hex: proposal.baseCommit), repository.contains(base) else {
            return .skipped("its base commit \(proposal.baseCommit.prefix(12)) is not in the repository")
        }
        let changes: [String: Data?]
        switch try edited(proposal, at: base) {
        case .success(let files): changes = files
        case .failure(let error): return .skipped(error.description)
        }
        var text = "\(proposal.subject)\n\n\(proposal.body)\n\n"
        if proposal.withPlan == true, let registry {
            text += try verdict(of: changes, on: base, subject: proposal.subject, registry: registry) + "\n\n"
        }
        let message = text + "Cairn-Proposal-For: \(entry.ref.map(\.description) ?? "")\n" + "Cairn-Proposal-Id: \(id)\n"
        let commit = try repository.createCommit(parent: base, changes: changes, message: message, author: author, sign: sign)
        let branch = try createBranch(slug: proposal.slug, at: commit)
        logger.notice("wrote a proposal branch", metadata: ["cairn.branch": "\(branch)", "cairn.commit": "\(commit.short)",
                                                           "cairn.object": "\(entry.ref.map(\.description) ?? "")"])
        return .branch(branch, adopted: false)
    }

    /// `cairn plan`'s Markdown for the proposal: its change is committed without a branch (an
    /// object nothing points to, which git's gc collects) and planned against `base`, with the
    /// same checks a pull request gets.
    private func verdict(of changes: [String: Data?], on base: ObjectID, subject: String, registry: PlanRegistry) throws -> String {
        let draft = try repository.createCommit(parent: base, changes: changes, message: subject + "\n",
                                                author: Signature(name: "Cairn", email: "cairn@localhost"))
        do {
            let plan = try Planner.plan(repository: repository, base: base.hex, head: draft.hex, path: configuration.path, registry: registry)
            return PlanText.markdown(plan).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            return "`cairn plan` could not check this proposal: \(error)"
        }
    }

    /// The files at `base` with every edit made, or the first edit that could not be.
    private func edited(_ proposal: Proposal, at base: ObjectID) throws -> Result<[String: Data?], ProposalEditError> {
        var files: [String: String] = [:]
        for edit in proposal.edits {
            if files[edit.file] == nil {
                guard let data = try repository.file(at: edit.file, in: base) else {
                    return .failure(ProposalEditError("\(edit.file) is not in commit \(base.short)"))
                }
                files[edit.file] = String(decoding: data, as: UTF8.self)
            }
            do {
                files[edit.file] = try ManifestEditor.replace(in: files[edit.file] ?? "", file: edit.file, object: edit.object,
                                                              field: edit.field, expected: edit.expected, with: edit.value)
            } catch {
                return .failure(ProposalEditError(error.description))
            }
        }
        guard !files.isEmpty else { return .failure(ProposalEditError("it changes nothing")) }
        return .success(files.mapValues { Data($0.utf8) })
    }

    /// The branch of an earlier drain that wrote this very proposal (same id), when there is
    /// one: its proposal commit sits just above the base, under anything people added.
    private func existingBranch(of proposal: Proposal, id: String) throws -> String? {
        let base = ObjectID(hex: proposal.baseCommit)
        for (name, tip) in try repository.references(withPrefix: Self.refPrefix(proposal.slug)).sorted(by: { $0.key < $1.key }) {
            guard Self.number(in: name, slug: proposal.slug) != nil else { continue }
            for commit in try repository.firstParentChain(from: tip, until: base, limit: 100)
            where commit.message.contains("\nCairn-Proposal-Id: \(id)\n") {
                return String(name.dropFirst("refs/heads/".count))
            }
        }
        return nil
    }

    /// Creates `cairn/proposals/<slug>-<n>` at `commit` for the first `n` no branch has, here
    /// or on the remote; creation is compare-and-swap (only if absent), so a branch made in
    /// the meantime is passed over, never moved.
    private func createBranch(slug: String, at commit: ObjectID) throws -> String {
        let taken = try takenNumbers(slug: slug)
        for number in 1...Self.maximumNumber where !taken.contains(number) {
            let branch = "\(Proposal.branchPrefix)\(slug)-\(number)"
            do {
                try repository.updateReference("refs/heads/" + branch, to: commit, expected: nil, logMessage: "cairn: proposal")
                FaultPoint.hit("after-proposal-branch")
                return branch
            } catch let error as GitError where error.code == .refMoved {
                continue
            }
        }
        throw GitError(.alreadyExists, "every branch \(Proposal.branchPrefix)\(slug)-1 to -\(Self.maximumNumber) exists; delete merged ones",
                       function: "createBranch")
    }

    /// The numbers of `<slug>-<n>` branches that exist locally, or on the remote as fetched.
    private func takenNumbers(slug: String) throws -> Set<Int> {
        var prefixes = [Self.refPrefix(slug)]
        if configuration.remoteTracking { prefixes.append("refs/remotes/origin/\(Proposal.branchPrefix)\(slug)-") }
        var numbers: Set<Int> = []
        for prefix in prefixes {
            for name in try repository.references(withPrefix: prefix).keys {
                if let number = Self.number(in: name, slug: slug) { numbers.insert(number) }
            }
        }
        return numbers
    }

    static func refPrefix(_ slug: String) -> String { "refs/heads/\(Proposal.branchPrefix)\(slug)-" }

    /// `n` of a ref ending in `cairn/proposals/<slug>-<n>` (not `<slug>-<n>-more`, another slug's).
    static func number(in name: String, slug: String) -> Int? {
        guard let range = name.range(of: "\(Proposal.branchPrefix)\(slug)-", options: .backwards) else { return nil }
        let digits = name[range.upperBound...]
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.first != "0" else { return nil }
        return Int(digits)
    }

    /// A slug git accepts as one path component of a branch name.
    static func isBranchComponent(_ slug: String) -> Bool {
        !slug.isEmpty && slug.count <= 100 && !slug.hasPrefix(".") && !slug.hasPrefix("-") && !slug.hasSuffix(".lock")
            && !slug.contains("..") && slug.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    /// The same for every drain of one outbox entry, and different for every other: the store,
    /// the object, the source commit and the moment the pass wrote it.
    static func proposalID(of entry: OutboxEntry, proposal: Proposal, store: String) -> String {
        let milliseconds = Int64((entry.createdAt.timeIntervalSince1970 * 1000).rounded())
        let material = [store, entry.ref.map(\.description) ?? "", entry.sourceCommit, String(milliseconds), proposal.slug, proposal.baseCommit]
            .joined(separator: "\n")
        return String(ContentHash.sha256(of: Data(material.utf8)).hex.prefix(24))
    }
}

/// Why a proposal's edits could not be made (the file changed, the field is gone).
struct ProposalEditError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

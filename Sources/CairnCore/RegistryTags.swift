public import Foundation

/// One annotated git tag Cairn writes for its registry in GTO's grammar (`--registry-tags`):
/// what it is, where it points, and how far it got. Planned in the store before it is written
/// to git, so a crash in between neither loses it nor names it twice.
public struct RegistryTag: Hashable, Sendable {
    public enum Action: String, Sendable {
        /// `churn@v3.0.0`: version 3 was registered.
        case register
        /// `churn#production#4`: a version took a stage.
        case assign
        /// `churn#production!#5`: a version left a stage (unassigned, or replaced by another).
        case unassign
    }

    public enum State: String, Sendable {
        /// Named and recorded; written to git next (or written, and not yet recorded so).
        case planned
        /// In git, Cairn's own (written by Cairn, or found there with the same name and commit).
        case created
        /// Not written: a tag of that name that is not Cairn's is in the way, the commit is
        /// missing, or the version's own tag is not written. Looked at again on every drain.
        case held
        /// Never written: GTO could not read it as Cairn means it (`problem` says why).
        case skipped
    }

    public enum Push: String, Sendable {
        case pending, pushed, rejected
    }

    /// The store's row id; nil until planned.
    public var id: Int64?
    /// The tag's short name; nil for a tag skipped before it was named.
    public var name: String?
    public var model: String
    /// The version registered, assigned or unassigned.
    public var version: Int
    public var action: Action
    public var stage: String?
    /// GTO's counter (`#4`), for a stage tag.
    public var counter: Int?
    /// The stage change it records (the store's id), for a stage tag.
    public var stageChange: Int64?
    /// The commit it points at (hex): the version's source commit.
    public var target: String
    public var message: String
    /// `Name <email>`: Cairn for a registration, the author of the commit that moved the stage
    /// for a stage tag.
    public var tagger: String
    /// The tag's time, in whole seconds (what git keeps).
    public var taggedAt: Date
    public var state: State
    /// The tag object's id once in git.
    public var object: String?
    /// Why it is held, skipped, or was refused by the remote.
    public var problem: String?
    public var push: Push

    public init(id: Int64? = nil, name: String?, model: String, version: Int, action: Action, stage: String? = nil,
                counter: Int? = nil, stageChange: Int64? = nil, target: String, message: String, tagger: String, taggedAt: Date,
                state: State, object: String? = nil, problem: String? = nil, push: Push = .pending) {
        self.id = id
        self.name = name
        self.model = model
        self.version = version
        self.action = action
        self.stage = stage
        self.counter = counter
        self.stageChange = stageChange
        self.target = target
        self.message = message
        self.tagger = tagger
        self.taggedAt = taggedAt
        self.state = state
        self.object = object
        self.problem = problem
        self.push = push
    }

    /// The name, or what it is about when it has none: `churn@v3.0.0`, `churn production → 3`.
    public var label: String {
        if let name { return name }
        switch action {
        case .register: return GTOTag.registration(model: model, version: version)
        case .assign: return "\(model)#\(stage ?? "?") (assigning \(GTOTag.semver(version)))"
        case .unassign: return "\(model)#\(stage ?? "?")! (unassigning \(GTOTag.semver(version)))"
        }
    }
}

/// Something the registry recorded that a tag stands for, as the store hands it over.
public enum RegistryEvent: Sendable {
    case registered(ModelVersion)
    /// A stage change and its id in the store.
    case stageChanged(StageChange, id: Int64)

    var model: String {
        switch self {
        case .registered(let version): version.model
        case .stageChanged(let change, _): change.model
        }
    }

    var time: Date {
        switch self {
        case .registered(let version): version.registeredAt
        case .stageChanged(let change, _): change.appliedAt
        }
    }
}

/// Names the tags for new registry events, GTO's way (see `GTOTag`), given what was named
/// before. Pure: the tagger reads the store and the repository's tag names, plans, and has
/// the store record the plan before anything is written to git.
///
/// - A registration gets `<model>@v<n>.0.0` at the version's source commit, unless another
///   version of the model already has a tag at that commit (a retraining at the same commit):
///   GTO knows one version per commit, so that one is skipped, and so are its stage tags.
/// - A stage change from version A to B gets `<model>#<stage>!#k` at A's commit, then
///   `<model>#<stage>#k+1` at B's. A stage holds one version in Cairn; the unassignment tells
///   GTO that A left it, so `gto show` agrees whichever way it sorts.
/// - k is one more than the highest counter of any tag of the model, planned by Cairn or
///   found in the repository (`gto/tag.py`, `name_tag`).
/// - Each tag of a model is at least a second after the one before: GTO orders a model's
///   events by the tag's time, which git keeps in whole seconds.
public struct RegistryTagPlanner {
    private var counters: [String: Int] = [:]
    private var lastTimes: [String: Int64] = [:]
    /// By model and version: the registration tag, if it was planned (whatever its state).
    private var registrations: [String: [Int: RegistryTag]] = [:]
    private let cairn: String

    /// `existing`: the tags Cairn planned before for the models concerned; `repositoryCounters`:
    /// by model, the highest counter of the repository's tags GTO reads as that model's;
    /// `cairn`: Cairn's own identity, `Name <email>`.
    public init(existing: [RegistryTag], repositoryCounters: [String: Int], cairn: String) {
        self.cairn = cairn
        counters = repositoryCounters
        for tag in existing {
            if tag.action == .register { registrations[tag.model, default: [:]][tag.version] = tag }
            guard tag.state != .skipped else { continue }
            if let counter = tag.counter { counters[tag.model] = max(counters[tag.model] ?? 0, counter) }
            lastTimes[tag.model] = max(lastTimes[tag.model] ?? .min, Int64(tag.taggedAt.timeIntervalSince1970.rounded(.down)))
        }
    }

    /// The tags for `events`, in the order they happened (registrations first at equal times).
    public mutating func plan(_ events: [RegistryEvent]) -> [RegistryTag] {
        let ordered = events.enumerated().sorted { a, b in
            if a.element.time != b.element.time { return a.element.time < b.element.time }
            if a.element.isRegistration != b.element.isRegistration { return a.element.isRegistration }
            return a.offset < b.offset
        }
        var tags: [RegistryTag] = []
        for (_, event) in ordered {
            switch event {
            case .registered(let version): tags.append(plan(version))
            case .stageChanged(let change, let id): tags += plan(change, id: id)
            }
        }
        return tags
    }

    private mutating func plan(_ version: ModelVersion) -> RegistryTag {
        let model = version.model
        var tag = RegistryTag(name: GTOTag.registration(model: model, version: version.version), model: model, version: version.version,
                              action: .register, target: version.lineage.sourceCommit,
                              message: GTOTag.registrationMessage(model: model, version: version.version), tagger: cairn,
                              taggedAt: version.registeredAt, state: .planned)
        if !GTOTag.isValidName(model) {
            skip(&tag, "\(model) is not a name GTO reads (letters, digits, '-', '_' and '/')")
        } else if !isCommitID(tag.target) {
            skip(&tag, "its source commit '\(tag.target)' is not a commit id")
        } else if let other = registrations[model]?.values.filter({ $0.target == tag.target && $0.state != .skipped })
                    .min(by: { $0.version < $1.version }) {
            skip(&tag, "\(model)@\(version.version) was trained from the same commit (\(tag.target.prefix(12))) as "
                 + "\(model)@\(other.version), and GTO knows one version per commit: \(other.label) stands for that commit")
        } else {
            tag.taggedAt = nextTime(model, tag.taggedAt)
        }
        registrations[model, default: [:]][version.version] = tag
        return tag
    }

    private mutating func plan(_ change: StageChange, id: Int64) -> [RegistryTag] {
        var moves: [(version: Int, assigned: Bool)] = []
        if let previous = change.previous { moves.append((previous, false)) }
        if let version = change.version { moves.append((version, true)) }
        let author = Self.isIdentity(change.author) ? change.author : cairn
        return moves.map { move in
            let model = change.model, stage = change.stage
            var tag = RegistryTag(name: nil, model: model, version: move.version, action: move.assigned ? .assign : .unassign, stage: stage,
                                  stageChange: id, target: "",
                                  message: move.assigned ? GTOTag.assignmentMessage(model: model, stage: stage, version: move.version)
                                      : GTOTag.unassignmentMessage(model: model, stage: stage, version: move.version),
                                  tagger: author, taggedAt: change.appliedAt, state: .planned)
            guard GTOTag.isValidName(stage) else {
                skip(&tag, "the stage \(stage) is not a name GTO reads (letters, digits, '-', '_' and '/')")
                return tag
            }
            guard let registration = registrations[model]?[move.version] else {
                skip(&tag, "\(model)@\(move.version) has no registration tag")
                return tag
            }
            tag.target = registration.target
            guard registration.state != .skipped else {
                skip(&tag, "\(model)@\(move.version) has no tag of its own (\(registration.problem ?? "skipped"))")
                return tag
            }
            let counter = (counters[model] ?? 0) + 1
            counters[model] = counter
            tag.counter = counter
            tag.name = GTOTag.stage(model: model, stage: stage, assigned: move.assigned, counter: counter)
            tag.taggedAt = nextTime(model, tag.taggedAt)
            return tag
        }
    }

    private func skip(_ tag: inout RegistryTag, _ why: String) {
        tag.state = .skipped
        tag.problem = why
        tag.name = nil
        tag.counter = nil
    }

    /// `time` in whole seconds, at least one second after the model's last tag.
    private mutating func nextTime(_ model: String, _ time: Date) -> Date {
        var seconds = Int64(time.timeIntervalSince1970.rounded(.down))
        if let last = lastTimes[model], seconds <= last { seconds = last + 1 }
        lastTimes[model] = seconds
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    private func isCommitID(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { $0.isHexDigit }
    }

    /// `Name <email>`, as a stage change records its author.
    static func isIdentity(_ text: String) -> Bool {
        guard let open = text.lastIndex(of: "<"), text.hasSuffix(">"), open > text.startIndex else { return false }
        return !text[..<open].trimmingCharacters(in: .whitespaces).isEmpty
    }
}

extension RegistryEvent {
    var isRegistration: Bool {
        if case .registered = self { return true }
        return false
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
    }
}

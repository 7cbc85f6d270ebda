import Foundation
import CairnCore
import CairnManifests
import CairnRun

/// What a command target last applied for one deployment, and checked: in
/// `<state>/serving/<deployment>/command.json`. A restarted daemon takes an ensure for the same
/// version and commands as already done (rechecking it, not applying it again), and `remove`
/// needs the version and commands even after the manifest that named them is gone.
struct CommandRecord: Codable, Equatable {
    var target = CommandRecord.kind
    var version: ServedVersion
    var sourceCommit: String
    var spec: ModelDeploymentSpec.Target
    var codeKey: String?
    var appliedAt: Date

    static let kind = "command"

    init(_ request: DeploymentRequest, appliedAt: Date = Date()) {
        version = request.version
        sourceCommit = request.sourceCommit
        spec = request.target
        codeKey = request.codeKey
        self.appliedAt = appliedAt
    }

    var request: DeploymentRequest { DeploymentRequest(deployment: "", version: version, target: spec, sourceCommit: sourceCommit, codeKey: codeKey) }

    /// Whether applying `request` would apply the same thing: the same version (by number and
    /// artifact) with the same commands. A commit that changes nothing else is not a reason
    /// to apply again; one that changes `apply` is.
    func covers(_ request: DeploymentRequest) -> Bool {
        CommandTarget.same(self.request, request)
    }

    private static let fileName = "command.json"

    /// The record in `folder`, if there is one and it is a command target's.
    static func load(from folder: URL) throws -> CommandRecord? {
        let url = folder.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data = try Data(contentsOf: url)
        struct Kind: Decodable { var target: String? }
        guard (try? JSONDecoder().decode(Kind.self, from: data))?.target == kind else { return nil }
        return try decoder.decode(CommandRecord.self, from: data)
    }

    func save(in folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try RunFiles.writeAtomically(try Self.encoder.encode(self), to: folder.appendingPathComponent(Self.fileName))
    }

    /// Deletes the record if it is a command target's (another target's is left alone).
    static func delete(in folder: URL) throws {
        guard try load(from: folder) != nil else { return }
        try FileManager.default.removeItem(at: folder.appendingPathComponent(fileName))
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

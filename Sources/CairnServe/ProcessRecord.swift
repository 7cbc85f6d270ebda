import CairnCore
import CairnManifests
import CairnRun
import Foundation

/// What `<serving>/<deployment>/process.json` keeps, so a daemon that restarts can take back
/// the process that serves and stop what an interrupted switch left behind.
struct ProcessRecord: Codable, Sendable, Equatable {
    /// The port the proxy listens on (the spec's, or the one picked when it names none).
    var publicPort: Int?
    /// Every token of this deployment starts with it: a process whose environment carries
    /// such a token and is not the one adopted is a leftover and is stopped.
    var tokenPrefix: String
    var serving: Entry?
    /// The version being started (a blue/green candidate or a restart), written before it is spawned.
    var candidate: Entry?

    struct Entry: Codable, Sendable, Equatable {
        var version: ServedVersion
        var command: [String]
        var health: ModelDeploymentSpec.Health?
        var commit: String
        var codeKey: String?
        var token: String
        var port: Int
        /// Nil until the process is spawned.
        var pid: Int32?
        var startTicks: UInt64?

        var digest: String { version.artifact.digest.hex }
    }

    static let fileName = "process.json"

    static func load(from directory: URL) throws -> ProcessRecord? {
        let url = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try JSONDecoder().decode(ProcessRecord.self, from: Data(contentsOf: url))
    }

    /// Writes a temporary file and renames it over the record, so a crash leaves the old
    /// record or the new one, never half of one.
    func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let temporary = directory.appendingPathComponent(".\(Self.fileName).tmp")
        let data = try encoder.encode(self)
        try data.write(to: temporary)
        guard rename(temporary.path, directory.appendingPathComponent(Self.fileName).path) == 0 else {
            throw ExecutorError("could not write \(directory.appendingPathComponent(Self.fileName).path): \(String(cString: strerror(errno)))")
        }
    }
}

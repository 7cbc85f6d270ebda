public import ArgumentParser
import Foundation

/// The `cairn` command: GitOps reconciliation for machine-learning operations.
public struct Cairn: AsyncParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "GitOps for ML: keep feature pipelines, training, the model registry, serving and monitoring in git.",
        discussion: """
        Manifests (apiVersion: cairn/v1) in a git repository describe the desired state of an ML \
        system. Cairn checks them, reconciles the actual state and writes what it observed back to git.

        Start with `cairn demo`, or `cairn init` in a repository of your own; `cairn help COMMAND` \
        explains each command, with examples.

        Exit codes: 0 success; 1 something is invalid, stalled or refused (manifests that do not \
        check, an object that cannot work as written, an untrusted commit); 2 usage error; 3 the \
        repository, a file or the state could not be read, or the daemon cannot start; 4 \
        `reconcile --once --timeout` ran out while runs were still under way.
        """,
        version: version,
        subcommands: [FetchHelper.self, Supervise.self],
        groupedSubcommands: [
            CommandGroup(name: "Set up", subcommands: [Init.self, Demo.self, Schema.self]),
            CommandGroup(name: "Check", subcommands: [Validate.self, Plan.self]),
            CommandGroup(name: "Run", subcommands: [Run.self, Reconcile.self, Trigger.self, Reproduce.self]),
            CommandGroup(name: "Inspect", subcommands: [Status.self, History.self, Runs.self, LogsCommand.self, Models.self, Lineage.self]),
            CommandGroup(name: "Maintain", subcommands: [GarbageCollect.self]),
        ]
    )

    public init() {}

    /// Runs the command line and exits with Cairn's documented codes (usage errors are 2,
    /// not ArgumentParser's 64).
    public static func runMain() async -> Never {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch let failure as CairnExit {
            if !failure.message.isEmpty { FileHandle.standardError.write(Data((failure.message + "\n").utf8)) }
            Foundation.exit(failure.code)
        } catch let error as CocoaError {
            // A file Cairn could not read or write: a sentence, never Foundation's dump.
            FileHandle.standardError.write(Data(("error: " + describe(error) + "\n").utf8))
            Foundation.exit(CairnExit.unreadable)
        } catch {
            let code = exitCode(for: error)
            // ArgumentParser says "Error:"; Cairn's own messages say "error:", as compilers do.
            var message = fullMessage(for: error)
            if message.hasPrefix("Error: ") { message = "error: " + message.dropFirst("Error: ".count) }
            if code == .success {
                print(message)
                Foundation.exit(0)
            }
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            // Parse and validate() failures are usage errors; anything else thrown is a
            // failure to read what the command needed.
            Foundation.exit(code == .validationFailure ? CairnExit.usage : CairnExit.unreadable)
        }
    }
}

/// Ends a command with one of Cairn's exit codes and a message for standard error.
struct CairnExit: Error {
    static let invalid: Int32 = 1
    static let usage: Int32 = 2
    static let unreadable: Int32 = 3
    /// `reconcile --once --timeout` ran out with runs still under way.
    static let timedOut: Int32 = 4

    let code: Int32
    let message: String

    static func invalid(_ message: String = "") -> CairnExit { CairnExit(code: invalid, message: message) }
    static func usage(_ message: String) -> CairnExit { CairnExit(code: usage, message: "error: \(message)") }
    static func unreadable(_ message: String) -> CairnExit { CairnExit(code: unreadable, message: "error: \(message)") }
}

/// How a command prints what a script or a person reads.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

extension Encodable {
    /// Pretty JSON with sorted keys, followed by a newline.
    func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// An error as a sentence for people: what could not be done to which file, and the system's
/// reason, instead of Foundation's `Error Domain=NSCocoaErrorDomain Code=4 ...`.
func describe(_ error: any Error) -> String {
    guard let cocoa = error as? CocoaError else { return "\(error)" }
    let path = cocoa.filePath ?? cocoa.url?.path ?? "a file"
    let underlying = (cocoa.underlying ?? cocoa.userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
    let reason = underlying.map { String(cString: strerror(Int32($0.code))) }
        ?? (cocoa.code == .fileNoSuchFile ? "No such file or directory" : cocoa.localizedDescription)
    let action: String
    switch cocoa.code {
    case .fileNoSuchFile:
        action = "create or open"
    case .fileReadNoSuchFile, .fileReadNoPermission, .fileReadCorruptFile, .fileReadUnknown, .fileReadInvalidFileName:
        action = "read"
    case .fileWriteNoPermission, .fileWriteOutOfSpace, .fileWriteVolumeReadOnly, .fileWriteUnknown, .fileWriteInvalidFileName,
         .fileWriteFileExists:
        action = "write"
    default:
        action = "use"
    }
    return "could not \(action) \(path): \(reason)"
}

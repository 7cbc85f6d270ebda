import ArgumentParser
import CairnGit
import CairnManifests
import CairnRun
import Foundation

/// Whether `location` names a repository on this machine rather than a URL.
func isLocalPath(_ location: String) -> Bool {
    if location.contains("://") { return false }
    // scp-like ssh syntax: user@host:path
    if let colon = location.firstIndex(of: ":"), !location[..<colon].contains("/") { return false }
    return true
}

func parseTimeout(_ text: String) throws -> ManifestDuration {
    do {
        let duration = try ManifestDuration(parsing: text)
        guard duration.milliseconds > 0 else { throw ValidationError("--fetch-timeout must be longer than 0") }
        return duration
    } catch let error as ValueError {
        throw ValidationError("--fetch-timeout \(text) is not a duration: \(error.reason); write it as 30s, 2m or 1h")
    }
}

/// Opens a local repository, or fetches a URL into a temporary mirror, and runs `body` on it.
func withRepository<T>(_ location: String, timeout: ManifestDuration, _ body: (Repository) async throws -> T) async throws -> T {
    if isLocalPath(location) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CairnExit.unreadable("\(location) is not a directory; give a git repository's path or a URL")
        }
        do {
            return try await body(try Repository.open(at: URL(fileURLWithPath: location)))
        } catch let error as GitError where error.code == .notFound && error.function == "git_repository_open_ext" {
            throw CairnExit.unreadable("\(location) is not a git repository")
        }
    }
    let mirror = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-mirror-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: mirror) }
    try await RemoteFetcher.fetch(url: location, into: mirror, timeout: timeout)
    return try await body(try Repository.open(at: mirror))
}

/// Fetches from remotes in a helper process with a deadline. libgit2 1.5 has no network
/// timeouts: a server that accepts a connection and then says nothing would hang a fetch in
/// this process forever. In a child process it can be killed, and nothing is left half-done
/// here. Credentials reach the child through the environment it inherits, never its arguments.
enum RemoteFetcher {
    /// Awaits the helper without holding a thread.
    static func fetch(url: String, into directory: URL, timeout: ManifestDuration) async throws {
        let helper = command(url: url, into: directory, timeout: timeout)
        do {
            try check(try await helper.run(), url: url, timeout: timeout)
        } catch let error as RunError {
            throw CairnExit.unreadable("could not start the fetch helper (\(helper.executable)): \(error.reason)")
        }
    }

    /// The helper runs in its own process group, so a Ctrl-C at the terminal does not reach
    /// it; it keeps its own deadline too (`--deadline`, a little past ours) so that it never
    /// outlives an interrupted parent by more than that.
    private static func command(url: String, into directory: URL, timeout: ManifestDuration) -> Command {
        let deadline = Int(timeout.seconds.rounded(.up)) + 2
        // The helper dies at SIGTERM (it handles no signals); the grace only covers a slow exit.
        return Command(currentExecutable(), ["fetch-helper", "--url", url, "--into", directory.path, "--deadline", "\(deadline)"],
                       standardOutput: .discard, standardError: .capture(limit: 1 << 20),
                       timeout: timeout.duration, grace: .seconds(1))
    }

    private static func check(_ outcome: ProcessOutcome, url: String, timeout: ManifestDuration) throws {
        if outcome.timedOut {
            throw CairnExit.unreadable("\(redactedURL(url)) did not answer within \(timeout); is the URL right and the server up? (--fetch-timeout sets the limit)")
        }
        let message = outcome.standardError.text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch outcome.termination {
        case .exited(0):
            return
        case .exited:
            throw CairnExit.unreadable(message.isEmpty ? "fetching \(redactedURL(url)) failed" : message)
        case .signaled(let signal):
            throw CairnExit.unreadable("fetching \(redactedURL(url)) failed: the fetch helper was \(Termination.signaled(signal))"
                                       + (message.isEmpty ? "" : ": \(message)"))
        }
    }

    /// The absolute path of the running executable, so the helper is the same binary.
    static func currentExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

extension Cairn {
    /// The child side of `RemoteFetcher`: fetches one URL into a bare mirror and exits.
    struct FetchHelper: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fetch-helper",
            abstract: "Internal: fetch a remote into a bare mirror (run by cairn itself, with a deadline).",
            shouldDisplay: false)

        @Option var url: String
        @Option var into: String
        @Option(help: "Seconds after which the helper ends itself, whatever its parent does.")
        var deadline: UInt32 = 600

        func run() throws {
            // SIGALRM's default action ends the process: a hung transport cannot outlive this.
            alarm(deadline)
            do {
                _ = try Repository.mirror(url: url, into: URL(fileURLWithPath: into), credentials: try Credentials.fromEnvironment())
            } catch {
                throw CairnExit.unreadable("could not fetch \(redactedURL(url)): \(error)")
            }
        }
    }
}

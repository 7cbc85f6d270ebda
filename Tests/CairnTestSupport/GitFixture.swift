public import Foundation

/// A git repository made with the git command line, as an independent witness of what the
/// libgit2 layer reads and writes. The user's and system's git configuration are kept out.
public final class GitFixture: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public var url: URL { directory.url }
    public var path: String { directory.path }
    private var clock = 1_700_000_000

    /// A new repository; `bare` makes one without a working tree.
    public init(bare: Bool = false, branch: String = "main") throws {
        directory = try TemporaryDirectory("cairn-git")
        try git(["init", "-q", "-b", branch] + (bare ? ["--bare"] : []))
    }

    /// The environment every git call gets: fixed identity and dates, no global config.
    public static func environment(time: Int = 1_700_000_000) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["GIT_CONFIG_NOSYSTEM"] = "1"
        environment["GIT_CONFIG_GLOBAL"] = "/dev/null"
        environment["HOME"] = FileManager.default.temporaryDirectory.path
        environment["GIT_AUTHOR_NAME"] = "Ada Tester"
        environment["GIT_AUTHOR_EMAIL"] = "ada@example.com"
        environment["GIT_COMMITTER_NAME"] = "Ada Tester"
        environment["GIT_COMMITTER_EMAIL"] = "ada@example.com"
        environment["GIT_AUTHOR_DATE"] = "@\(time) +0000"
        environment["GIT_COMMITTER_DATE"] = "@\(time) +0000"
        return environment
    }

    /// Runs git in this repository and returns its trimmed standard output.
    @discardableResult
    public func git(_ arguments: [String], check: Bool = true) throws -> String {
        clock += 60
        let result = try run("git", arguments, in: url, environment: Self.environment(time: clock), check: check)
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes files (nil deletes) in the working tree and commits them all; returns the commit id.
    @discardableResult
    public func commit(_ files: [String: String?], message: String = "change") throws -> String {
        try Self.write(files, in: url)
        try git(["add", "-A"])
        try git(["commit", "-q", "--allow-empty", "-m", message])
        return try git(["rev-parse", "HEAD"])
    }

    /// Writes `files` (paths relative to `directory`; nil deletes one), making directories as needed.
    public static func write(_ files: [String: String?], in directory: URL) throws {
        for (path, text) in files {
            let target = directory.appendingPathComponent(path)
            if let text {
                try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(text.utf8).write(to: target)
            } else {
                try? FileManager.default.removeItem(at: target)
            }
        }
    }
}

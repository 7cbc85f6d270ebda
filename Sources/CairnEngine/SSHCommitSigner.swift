public import Foundation
import CairnRun

/// Signs the commits Cairn proposes (`--signing-key`) the way git does with
/// `gpg.format=ssh`: `ssh-keygen -Y sign -n git -f KEY FILE`, whose armored signature goes in
/// the commit's `gpgsig` header. So `git verify-commit` with an allowed-signers file, a
/// forge's "Verified" badge and Cairn's own `--verify-commits` all accept what Cairn proposes,
/// and a repository that requires signed commits can still merge Cairn's proposals.
///
/// Signing runs ssh-keygen synchronously: the status writer that calls it is synchronous, and
/// proposals are rare (one per rollback), so one short child on the writer's thread is cheaper
/// than making every drain async.
public struct SSHCommitSigner: Sendable {
    /// The private key (or, with an ssh-agent holding it, its `.pub`), as git's `user.signingkey`.
    public let key: URL

    /// A signer for `key`, tried once on a scratch buffer: a key that is missing, unreadable,
    /// protected by a passphrase (a daemon cannot type one) or not a key at all fails here, at
    /// start, rather than on the first rollback.
    public init(checking key: URL) throws {
        self.key = key.standardizedFileURL
        guard FileManager.default.isReadableFile(atPath: self.key.path) else {
            throw SigningKeyError("cannot read the signing key \(key.path); give --signing-key the path of an SSH private key Cairn can read")
        }
        do {
            _ = try sign(Data("cairn: checking the signing key\n".utf8))
        } catch let error as SigningKeyError {
            throw SigningKeyError("the signing key \(key.path) cannot sign: \(error.description); "
                                  + "give an unencrypted SSH private key (ssh-keygen -t ed25519 -N '' -f KEY)")
        }
    }

    /// The armored SSH signature of `data` in git's namespace.
    public func sign(_ data: Data) throws -> String {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-sign-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: scratch) }
        let buffer = scratch.appendingPathComponent("commit")
        try data.write(to: buffer)
        let outcome = try run(Command("ssh-keygen", ["-Y", "sign", "-n", "git", "-f", key.path, buffer.path],
                                      environment: Self.environment, timeout: .seconds(30)))
        let signature = buffer.appendingPathExtension("sig")
        guard outcome.succeeded, let text = try? String(contentsOf: signature, encoding: .utf8),
              text.hasPrefix("-----BEGIN SSH SIGNATURE-----") else {
            let said = (outcome.standardError.text + outcome.standardOutput.text).split(separator: "\n").first.map(String.init)
            throw SigningKeyError("ssh-keygen \(outcome.termination)" + (said.map { " (\($0.prefix(200)))" } ?? ""))
        }
        return text
    }

    private func run(_ command: Command) throws -> ProcessOutcome {
        do {
            return try command.runSynchronously()
        } catch let error as RunError {
            throw SigningKeyError("ssh-keygen could not run (\(error.reason)); install it (Debian: openssh-client)")
        }
    }

    /// A fixed environment, with the agent's socket when there is one (a `.pub` key signs
    /// through the agent, as git's does).
    private static var environment: [String: String] {
        var environment = ["PATH": "/usr/bin:/bin:/usr/local/bin", "LANG": "C"]
        if let agent = ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"] { environment["SSH_AUTH_SOCK"] = agent }
        return environment
    }
}

/// A signing key that cannot be used, and why.
public struct SigningKeyError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

public import Foundation
public import CairnGit
import CairnRun
import CairnCore

/// Which commits of the tracked branch Cairn may act on: `--verify-commits off|head|all`,
/// with the keys allowed to sign them. From the runs issue on, what is pushed gets executed,
/// so a commit that is not signed by a trusted key is never reconciled.
public struct CommitTrust: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Every commit is trusted.
        case off
        /// The tip must be signed by a trusted key.
        case head
        /// Every commit since the last trusted one (merged-in ones too) must be.
        case all
    }

    public var mode: Mode
    /// An OpenPGP keyring (such as `gpg --export KEY… > trusted.gpg`) checked with gpgv.
    public var gpgKeyring: URL?
    /// An ssh allowed-signers file checked with `ssh-keygen -Y verify`, namespace `git`.
    public var allowedSigners: URL?
    /// How many unverified commits `all` checks at most before it refuses outright.
    public static let maximumCommits = 10_000

    public init(mode: Mode = .off, gpgKeyring: URL? = nil, allowedSigners: URL? = nil) {
        self.mode = mode
        self.gpgKeyring = gpgKeyring
        self.allowedSigners = allowedSigners
    }

    public static let off = CommitTrust()
}

/// Checks one commit's signature against the trusted keys, through the programs git itself
/// uses (gpgv for OpenPGP, ssh-keygen for SSH), each in a scratch directory, never a shell.
public struct CommitVerifier: Sendable {
    public let trust: CommitTrust

    public init(trust: CommitTrust) {
        self.trust = trust
    }

    /// What the trust was granted under: the mode and the contents of the key files, hashed.
    /// A trusted commit is remembered under it, so changing the keys re-judges the tip.
    public func fingerprint() throws -> String {
        var material = Data("mode=\(trust.mode.rawValue)\n".utf8)
        for file in [trust.gpgKeyring, trust.allowedSigners] {
            material.append(contentsOf: "file\n".utf8)
            if let file { material.append(try Data(contentsOf: file)) }
        }
        return ContentHash.sha256(of: material).hex
    }

    /// Why `commit` is not trusted, or nil when it is signed by a trusted key.
    public func problem(with commit: ObjectID, in repository: Repository) async throws -> String? {
        guard let signature = try repository.signature(of: commit) else {
            return "commit \(commit.short) is not signed"
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: scratch) }
        let signatureFile = scratch.appendingPathComponent("signature")
        let dataFile = scratch.appendingPathComponent("signed")
        try signature.signature.write(to: signatureFile)
        try signature.signedData.write(to: dataFile)
        if signature.isSSH {
            guard let allowed = trust.allowedSigners else {
                return "commit \(commit.short) has an SSH signature, and no --allowed-signers file is given"
            }
            return try await verifySSH(commit, signature: signatureFile, data: dataFile, allowed: allowed)
        }
        guard let keyring = trust.gpgKeyring else {
            return "commit \(commit.short) has an OpenPGP signature, and no --gpg-keyring is given"
        }
        return try await verifyGPG(commit, signature: signatureFile, data: dataFile, keyring: keyring, home: scratch)
    }

    private func verifyGPG(_ commit: ObjectID, signature: URL, data: URL, keyring: URL, home: URL) async throws -> String? {
        let command = Command("gpgv", ["--homedir", home.path, "--keyring", keyring.standardizedFileURL.path, "--status-fd", "1",
                                       signature.path, data.path],
                              environment: ["PATH": "/usr/bin:/bin", "LANG": "C"], timeout: .seconds(30))
        let outcome = try await run(command, tool: "gpgv")
        let status = outcome.standardOutput.text
        // gpgv exits 0 for a good signature by a revoked or expired key too: read its status lines.
        let lines = Set(status.split(separator: "\n").compactMap { $0.split(separator: " ").dropFirst().first.map(String.init) })
        if lines.contains("REVKEYSIG") { return "commit \(commit.short) is signed by a revoked OpenPGP key" }
        if lines.contains("EXPKEYSIG") || lines.contains("EXPSIG") {
            return "commit \(commit.short) is signed by an expired OpenPGP key or its signature has expired"
        }
        if outcome.termination == .exited(0), lines.contains("GOODSIG"), lines.contains("VALIDSIG"), !lines.contains("BADSIG"),
           !lines.contains("ERRSIG") {
            return nil
        }
        if status.contains("NO_PUBKEY") || status.contains("ERRSIG") {
            return "commit \(commit.short) is signed by an OpenPGP key that is not in \(keyring.path)"
        }
        if status.contains("BADSIG") { return "commit \(commit.short) has a bad OpenPGP signature (the commit was changed after signing)" }
        return "commit \(commit.short): gpgv did not accept its signature (\(Self.firstLine(outcome.standardError.text)))"
    }

    private func verifySSH(_ commit: ObjectID, signature: URL, data: URL, allowed: URL) async throws -> String? {
        let environment = ["PATH": "/usr/bin:/bin", "LANG": "C"]
        let find = Command("ssh-keygen", ["-Y", "find-principals", "-s", signature.path, "-f", allowed.standardizedFileURL.path],
                           environment: environment, timeout: .seconds(30))
        let found = try await run(find, tool: "ssh-keygen")
        guard found.termination == .exited(0),
              let principal = found.standardOutput.text.split(separator: "\n").first.map(String.init), !principal.isEmpty else {
            return "commit \(commit.short) is signed by an SSH key that is not in \(allowed.path)"
        }
        var verify = Command("ssh-keygen", ["-Y", "verify", "-f", allowed.standardizedFileURL.path, "-I", principal, "-n", "git",
                                            "-s", signature.path], environment: environment, timeout: .seconds(30))
        verify.standardInput = data
        let verified = try await run(verify, tool: "ssh-keygen")
        if verified.termination == .exited(0) { return nil }
        return "commit \(commit.short) has an SSH signature that does not verify for \(principal) "
            + "(\(Self.firstLine(verified.standardError.text + verified.standardOutput.text)))"
    }

    private func run(_ command: Command, tool: String) async throws -> ProcessOutcome {
        do {
            return try await command.run()
        } catch let error as RunError {
            throw VerificationUnavailable("cannot verify commit signatures: \(tool) could not run (\(error.reason)); "
                                          + "install \(tool == "gpgv" ? "gpgv (Debian: gpgv)" : "ssh-keygen (Debian: openssh-client)")")
        }
    }

    private static func firstLine(_ text: String) -> String {
        text.split(separator: "\n").first.map { String($0.prefix(200)) } ?? "no output"
    }
}

/// A verifier program is missing or broken: nothing can be trusted, so nothing is reconciled.
public struct VerificationUnavailable: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The tracked branch's tip is not trusted and no earlier commit was: there is nothing Cairn may act on.
public struct NoTrustedCommit: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

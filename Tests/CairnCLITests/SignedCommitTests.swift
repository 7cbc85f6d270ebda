import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// Keys and signed commits made with the real gpg, ssh-keygen and git, in a temporary home.
final class Signers: @unchecked Sendable {
    let home: TemporaryDirectory
    var gnupg: URL { home.url.appendingPathComponent("gnupg") }
    var keyring: URL { home.url.appendingPathComponent("trusted.gpg") }
    var allowedSigners: URL { home.url.appendingPathComponent("allowed_signers") }
    private(set) var fingerprints: [String: String] = [:]

    init() throws {
        home = try TemporaryDirectory("cairn-signers")
        try FileManager.default.createDirectory(at: gnupg, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for name in ["ada", "mallory"] {
            try gpg(["--quick-gen-key", "\(name) <\(name)@example.com>", "ed25519", "sign", "never"])
            let listing = try gpg(["--list-keys", "--with-colons", "\(name)@example.com"])
            fingerprints[name] = listing.split(separator: "\n").first { $0.hasPrefix("fpr:") }.map { String($0.split(separator: ":", omittingEmptySubsequences: false)[9]) }
            try run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", home.url.appendingPathComponent(name).path])
        }
        // Only Ada is trusted, in both forms.
        try gpg(["--output", keyring.path, "--export", fingerprints["ada"] ?? ""])
        let adaSSH = try String(contentsOf: home.url.appendingPathComponent("ada.pub"), encoding: .utf8)
        try Data("ada@example.com namespaces=\"git\" \(adaSSH)".utf8).write(to: allowedSigners)
    }

    @discardableResult
    func gpg(_ arguments: [String]) throws -> String {
        try run("gpg", ["--batch", "--homedir", gnupg.path, "--pinentry-mode", "loopback", "--passphrase", ""] + arguments).stdout
    }

    /// Commits `files` in `repository`, signed as `signer` with `format` (gpg or ssh), or unsigned.
    @discardableResult
    func commit(_ repository: GitFixture, _ files: [String: String], signer: String?, format: String = "gpg",
                message: String = "change") throws -> String {
        for (path, text) in files {
            let target = repository.url.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: target)
        }
        try repository.git(["add", "-A"])
        var environment = GitFixture.environment(time: 1_700_000_000 + Int.random(in: 0..<1_000_000))
        environment["GNUPGHOME"] = gnupg.path
        var arguments = ["commit", "-q", "--allow-empty", "-m", message]
        if let signer {
            let key = format == "ssh" ? home.url.appendingPathComponent("\(signer).pub").path : (fingerprints[signer] ?? "")
            arguments = ["-c", "gpg.format=\(format == "ssh" ? "ssh" : "openpgp")", "-c", "user.signingkey=\(key)"] + arguments + ["-S"]
        }
        try run("git", arguments, in: repository.url, environment: environment)
        return try repository.git(["rev-parse", "HEAD"])
    }
}

func model(_ name: String, stages: String) -> String {
    "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: \(name)}\nspec:\n  stages: [\(stages)]\n"
}

@Suite(.serialized) struct SignedCommitTests {
    func reconcile(_ repository: GitFixture, _ state: TemporaryDirectory, _ signers: Signers, mode: String = "head") throws -> ProcessResult {
        try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path, "--verify-commits", mode,
                   "--gpg-keyring", signers.keyring.path, "--allowed-signers", signers.allowedSigners.path])
    }

    func generation(_ repository: GitFixture) throws -> String {
        try repository.git(["show", "cairn/status:Model/m.yaml"]).split(separator: "\n").first { $0.hasPrefix("observedGeneration:") }
            .map(String.init) ?? ""
    }

    @Test(arguments: ["gpg", "ssh"])
    func onlyCommitsSignedByATrustedKeyAreReconciled(_ format: String) throws {
        let signers = try Signers()
        let repository = try GitFixture()
        let state = try TemporaryDirectory("cairn-state")

        // Unsigned from the start: nothing to fall back on, nothing reconciled.
        try signers.commit(repository, ["m.yaml": model("m", stages: "staging")], signer: nil)
        let unsignedFirst = try reconcile(repository, state, signers)
        #expect(unsignedFirst.status == 1 && unsignedFirst.stderr.contains("is not signed"), "\(unsignedFirst.stderr)")
        #expect(try repository.git(["branch", "--list", "cairn/status"]).isEmpty, "no status from an untrusted commit")

        // Signed by Ada: trusted.
        let trusted = try signers.commit(repository, ["m.yaml": model("m", stages: "staging, production")], signer: "ada", format: format)
        let accepted = try reconcile(repository, state, signers)
        #expect(accepted.status == 0, "\(accepted.stdout)\(accepted.stderr)")
        let before = try generation(repository)

        // Signed by Mallory, whose key nobody trusts: refused, Cairn stays on Ada's commit.
        let forged = try signers.commit(repository, ["m.yaml": model("m", stages: "canary")], signer: "mallory", format: format)
        let refused = try reconcile(repository, state, signers)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("refused \(forged.prefix(12))"), "\(refused.stdout)")
        #expect(refused.stdout.contains("is signed by an \(format == "ssh" ? "SSH" : "OpenPGP") key that is not in"), "\(refused.stdout)")
        #expect(refused.stdout.contains("reconciled the last trusted commit \(trusted.prefix(12)) instead"), "\(refused.stdout)")
        #expect(try generation(repository) == before, "the untrusted spec was not applied")
        let note = try repository.git(["notes", "--ref=cairn", "show", forged])
        #expect(note.contains("Cairn did not reconcile this commit") && note.contains("stays on \(trusted.prefix(12))"), "\(note)")

        // Unsigned on top: refused too.
        try signers.commit(repository, ["m.yaml": model("m", stages: "canary, production")], signer: nil)
        let unsigned = try reconcile(repository, state, signers)
        #expect(unsigned.status == 1 && unsigned.stdout.contains("is not signed"), "\(unsigned.stdout)")

        // Ada signs the next one: reconciled, the change applied.
        try signers.commit(repository, ["m.yaml": model("m", stages: "staging, canary, production")], signer: "ada", format: format)
        let fixed = try reconcile(repository, state, signers)
        #expect(fixed.status == 0 && !fixed.stdout.contains("refused"), "\(fixed.stdout)")
        #expect(try generation(repository) != before)
    }

    /// `all` checks every commit since the last trusted one: a signed tip does not launder an
    /// unsigned commit beneath it; `head` looks at the tip alone.
    @Test func allRefusesAnUnsignedCommitBelowASignedTip() throws {
        let signers = try Signers()
        let repository = try GitFixture()
        let state = try TemporaryDirectory("cairn-state")
        // History from before Cairn watched is not judged: the first pass trusts a signed tip.
        try signers.commit(repository, ["old.txt": "unsigned history"], signer: nil)
        let base = try signers.commit(repository, ["m.yaml": model("m", stages: "staging")], signer: "ada")
        #expect(try reconcile(repository, state, signers, mode: "all").status == 0)
        let unsigned = try signers.commit(repository, ["m.yaml": model("m", stages: "production")], signer: nil)
        try signers.commit(repository, ["m.yaml": model("m", stages: "production, staging")], signer: "ada")
        let all = try reconcile(repository, state, signers, mode: "all")
        #expect(all.status == 1 && all.stdout.contains("commit \(unsigned.prefix(12)) is not signed"), "\(all.stdout)")
        let head = try reconcile(repository, state, signers, mode: "head")
        #expect(head.status == 0, "\(head.stdout)")
        // validate checks the same before merge, from the pull request's base.
        let validate = try cairn(["validate", "--repo", repository.path, "--rev", "main", "--verify-commits", "all", "--since", base,
                                  "--gpg-keyring", signers.keyring.path])
        #expect(validate.status == 1 && validate.stderr.contains("commit \(unsigned.prefix(12)) is not signed"), "\(validate.stderr)")
    }

    /// A commit trusted under keys since removed is judged again under the new ones.
    @Test func removingAKeyMakesItsCommitsUntrustedAgain() throws {
        let signers = try Signers()
        let repository = try GitFixture()
        try signers.commit(repository, ["m.yaml": model("m", stages: "staging")], signer: "ada", format: "ssh")
        let state = try TemporaryDirectory("cairn-state")
        #expect(try reconcile(repository, state, signers).status == 0)
        let mallory = try String(contentsOf: signers.home.url.appendingPathComponent("mallory.pub"), encoding: .utf8)
        try Data("mallory@example.com namespaces=\"git\" \(mallory)".utf8).write(to: signers.allowedSigners)
        let after = try reconcile(repository, state, signers)
        #expect(after.status == 1 && after.stderr.contains("signed by an SSH key that is not in"), "\(after.stdout)\(after.stderr)")
    }

    /// gpgv exits 0 for a good signature by a revoked key; Cairn reads its status lines.
    @Test func aSignatureByARevokedKeyIsRefused() throws {
        let signers = try Signers()
        let repository = try GitFixture()
        try signers.commit(repository, ["m.yaml": model("m", stages: "staging")], signer: "ada")
        // gpg made a revocation certificate with the key; import it and export the keyring again.
        let fingerprint = try #require(signers.fingerprints["ada"])
        let certificate = signers.gnupg.appendingPathComponent("openpgp-revocs.d/\(fingerprint).rev")
        let armored = try String(contentsOf: certificate, encoding: .utf8).replacingOccurrences(of: ":-----BEGIN", with: "-----BEGIN")
        let revocation = signers.home.url.appendingPathComponent("revocation.asc")
        try Data(armored.utf8).write(to: revocation)
        try signers.gpg(["--import", revocation.path])
        let revoked = signers.home.url.appendingPathComponent("revoked.gpg")
        try signers.gpg(["--output", revoked.path, "--export", fingerprint])
        let state = try TemporaryDirectory("cairn-state")
        let result = try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path, "--verify-commits", "head",
                                "--gpg-keyring", revoked.path])
        #expect(result.status == 1 && result.stderr.contains("signed by a revoked OpenPGP key"), "\(result.stdout)\(result.stderr)")
    }

    /// `--signing-key` is tried before anything else: a key that cannot sign stops the command.
    @Test func aSigningKeyThatCannotBeUsedStopsTheCommandAtStart() throws {
        let repository = try GitFixture()
        try repository.commit(["m.yaml": model("m", stages: "staging")])
        let state = try TemporaryDirectory("cairn-state")
        let garbage = state.appending("not-a-key")
        try Data("not a key\n".utf8).write(to: garbage)
        for command in [["reconcile", "--once"], ["run"]] {
            let result = try cairn(command + ["--repo", repository.path, "--state-dir", state.appending("s").path, "--signing-key", garbage.path])
            #expect(result.status == 2 && result.stderr.contains("--signing-key: the signing key \(garbage.path) cannot sign"),
                    "\(command): \(result.stderr)")
        }
        #expect(try repository.git(["branch", "--list", "cairn/status"]).isEmpty, "nothing was reconciled")
        #expect(try cairn(["run", "--help"]).stdout.contains("--signing-key <path>"))
    }

    @Test func validateChecksTheSameSignatures() throws {
        let signers = try Signers()
        let repository = try GitFixture()
        try signers.commit(repository, ["m.yaml": model("m", stages: "staging")], signer: "ada", format: "ssh")
        let arguments = ["validate", "--repo", repository.path, "--rev", "main", "--verify-commits", "head",
                         "--allowed-signers", signers.allowedSigners.path]
        #expect(try cairn(arguments).status == 0)
        try signers.commit(repository, ["m.yaml": model("m", stages: "production")], signer: "mallory", format: "ssh")
        let refused = try cairn(arguments)
        #expect(refused.status == 1 && refused.stderr.contains("signed by an SSH key that is not in"), "\(refused.stderr)")
        let missing = try cairn(["validate", "--repo", repository.path, "--verify-commits", "head"])
        #expect(missing.status == 2 && missing.stderr.contains("needs the trusted keys"), "\(missing.stderr)")
    }
}

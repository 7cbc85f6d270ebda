public import ArgumentParser
public import CairnEngine
import Foundation

extension CommitTrust.Mode: ExpressibleByArgument {}

/// `--verify-commits` and the files of trusted keys, shared by the commands that read commits.
struct TrustOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Which commits must be signed by a trusted key before Cairn acts on them: off, head (the tip), or all (every commit since the last trusted one).",
                               valueName: "mode"))
    var verifyCommits: CommitTrust.Mode = .off

    @Option(help: ArgumentHelp("An OpenPGP keyring of trusted keys (gpg --export KEY... > trusted.gpg), checked with gpgv.", valueName: "file"))
    var gpgKeyring: String?

    @Option(help: ArgumentHelp("An ssh allowed-signers file of trusted keys, checked with ssh-keygen -Y verify (namespace git).", valueName: "file"))
    var allowedSigners: String?

    func validate() throws {
        if verifyCommits != .off, gpgKeyring == nil, allowedSigners == nil {
            throw ValidationError("--verify-commits \(verifyCommits.rawValue) needs the trusted keys: --gpg-keyring FILE, --allowed-signers FILE, or both")
        }
        for file in [gpgKeyring, allowedSigners].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: file) {
            throw ValidationError("cannot read \(file); give a readable file of trusted keys")
        }
    }

    var trust: CommitTrust {
        CommitTrust(mode: verifyCommits, gpgKeyring: gpgKeyring.map { URL(fileURLWithPath: $0) },
                    allowedSigners: allowedSigners.map { URL(fileURLWithPath: $0) })
    }
}

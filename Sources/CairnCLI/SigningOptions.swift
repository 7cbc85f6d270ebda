import ArgumentParser
import CairnEngine
import Foundation

/// `--signing-key`, for the commands that write proposals (`run`, `reconcile --once`).
struct SigningOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "An SSH private key (unencrypted) to sign the rollback proposals Cairn writes on cairn/proposals/* branches, as git does with gpg.format=ssh; add its .pub to your allowed-signers file. Checked at start.",
        valueName: "path"))
    var signingKey: String?

    /// The signer, tried once now: a key that cannot be read or used stops the command before
    /// any pass, with the reason (exit 2, like any other bad option).
    func signer() throws -> SSHCommitSigner? {
        guard let signingKey else { return nil }
        do {
            return try SSHCommitSigner(checking: URL(fileURLWithPath: signingKey))
        } catch {
            throw CairnExit.usage("--signing-key: \(error)")
        }
    }
}

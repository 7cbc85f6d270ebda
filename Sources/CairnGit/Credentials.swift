public import Foundation
import CLibGit2

/// Credentials for https and ssh remotes. They come from the environment or from files, never
/// from a URL that could end up in a log.
public struct Credentials: Sendable {
    public var username: String?
    /// A password or an access token for https.
    public var password: String?
    /// A private key for ssh; the public key is expected beside it with `.pub`, if present.
    public var sshPrivateKey: URL?
    public var sshPassphrase: String?
    /// Ask a running ssh-agent when no key file is given.
    public var useSSHAgent: Bool

    public init(username: String? = nil, password: String? = nil, sshPrivateKey: URL? = nil,
                sshPassphrase: String? = nil, useSSHAgent: Bool = true) {
        self.username = username
        self.password = password
        self.sshPrivateKey = sshPrivateKey
        self.sshPassphrase = sshPassphrase
        self.useSSHAgent = useSSHAgent
    }

    public static let none = Credentials(useSSHAgent: false)

    /// Reads `CAIRN_GIT_USERNAME`, `CAIRN_GIT_PASSWORD` or `CAIRN_GIT_PASSWORD_FILE`,
    /// `CAIRN_GIT_SSH_KEY` and `CAIRN_GIT_SSH_PASSPHRASE_FILE`. A file's trailing newline is dropped.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Credentials {
        func fileContents(_ variable: String) throws -> String? {
            guard let path = environment[variable], !path.isEmpty else { return nil }
            do {
                let text = try String(contentsOfFile: path, encoding: .utf8)
                return String(text.trimmingCharacters(in: .newlines))
            } catch {
                throw GitError(.authentication, "\(variable) names \(path), which cannot be read", function: "Credentials.fromEnvironment")
            }
        }
        var credentials = Credentials()
        credentials.username = environment["CAIRN_GIT_USERNAME"].flatMap { $0.isEmpty ? nil : $0 }
        credentials.password = try environment["CAIRN_GIT_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 } ?? fileContents("CAIRN_GIT_PASSWORD_FILE")
        credentials.sshPrivateKey = environment["CAIRN_GIT_SSH_KEY"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        credentials.sshPassphrase = try fileContents("CAIRN_GIT_SSH_PASSPHRASE_FILE")
        return credentials
    }

    /// Every secret that must never appear in a message: passwords, and any embedded in `url`.
    func secrets(in url: String) -> [String] {
        var secrets = [password, sshPassphrase].compactMap { $0 }.filter { !$0.isEmpty }
        if let components = URLComponents(string: url), let embedded = components.password, !embedded.isEmpty {
            secrets.append(embedded)
            if let decoded = embedded.removingPercentEncoding { secrets.append(decoded) }
        }
        return secrets
    }
}

/// Removes user information (user name, password or token) from a URL, so it can be logged.
public func redactedURL(_ url: String) -> String {
    guard var components = URLComponents(string: url), components.user != nil || components.password != nil else {
        return url
    }
    components.user = nil
    components.password = nil
    return components.string ?? url
}

/// What the credentials callback borrows from the caller for the duration of one libgit2 call.
final class CredentialContext {
    let credentials: Credentials
    var attempts = 0

    init(_ credentials: Credentials) {
        self.credentials = credentials
    }

    /// Answers libgit2's request for credentials. libgit2 calls again after a rejected attempt,
    /// so give up after a few rounds instead of looping.
    func acquire(_ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>?, usernameFromURL: String?, allowed: UInt32) -> Int32 {
        attempts += 1
        guard attempts <= 3 else {
            git_error_set_str(Int32(GIT_ERROR_NET.rawValue), "the remote rejected the credentials from CAIRN_GIT_* (\(attempts - 1) attempts)")
            return GIT_EAUTH.rawValue
        }
        let username = credentials.username ?? usernameFromURL ?? "git"
        if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let password = credentials.password {
            return git_credential_userpass_plaintext_new(out, username, password)
        }
        if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 {
            if let key = credentials.sshPrivateKey {
                let publicKey = key.path + ".pub"
                let publicPath = FileManager.default.fileExists(atPath: publicKey) ? publicKey : nil
                return git_credential_ssh_key_new(out, username, publicPath, key.path, credentials.sshPassphrase)
            }
            if credentials.useSSHAgent, attempts == 1 {
                return git_credential_ssh_key_from_agent(out, username)
            }
        }
        if allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
            return git_credential_username_new(out, username)
        }
        git_error_set_str(Int32(GIT_ERROR_NET.rawValue),
                          "the remote asks for credentials; set CAIRN_GIT_USERNAME with CAIRN_GIT_PASSWORD_FILE (https) or CAIRN_GIT_SSH_KEY (ssh)")
        return GIT_EAUTH.rawValue
    }
}

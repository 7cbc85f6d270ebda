public import Foundation
import CLibGit2

extension Repository {
    /// Opens the bare mirror at `directory`, creating it if needed, and fetches `url` into it:
    /// the remote's branches under `refs/remotes/origin/`, its tags under `refs/tags/`, pruning
    /// what the remote deleted. A force-pushed branch simply moves.
    public static func mirror(url: String, into directory: URL, credentials: Credentials = .none) throws -> Repository {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let repository = try create(at: directory, bare: true)
        try repository.fetch(from: url, refspecs: mirrorRefspecs, credentials: credentials, prune: true)
        return repository
    }

    /// The refspecs a mirror fetches with: branches, tags, and notes (kept apart from the
    /// mirror's own notes, which Cairn writes and pushes).
    public static let mirrorRefspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*",
                                        "+refs/notes/*:refs/remotes/origin-notes/*"]

    /// Fetches `refspecs` from `url` (a path, `file://`, `git://`, `https://` or ssh URL).
    public func fetch(from url: String, refspecs: [String], credentials: Credentials = .none, prune: Bool = false) throws {
        try withRemote(url) { remote in
            try withCallbacks(credentials) { callbacks, _ in
                var options = cairn_fetch_options_init()
                options.callbacks = callbacks
                options.prune = GIT_FETCH_NO_PRUNE
                options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
                try withPathspec(refspecs) { specs in
                    var specs = specs
                    try sanitised(url: url, credentials: credentials) {
                        try check(git_remote_fetch(remote, &specs, &options, "cairn fetch"), "git_remote_fetch")
                    }
                }
                if prune { try pruneRemoteBranches(remote) }
            }
        }
    }

    /// Pushes `refspecs` (such as `refs/heads/cairn/status:refs/heads/cairn/status`) to `url`.
    /// Never forced unless a refspec says `+`. A ref the remote refuses (not a fast-forward, or
    /// a hook's veto) throws `GitError.pushRejected` naming the ref and the remote's reason.
    public func push(to url: String, refspecs: [String], credentials: Credentials = .none) throws {
        try withRemote(url) { remote in
            try withCallbacks(credentials) { callbacks, context in
                var options = cairn_push_options_init()
                options.callbacks = callbacks
                do {
                    try withPathspec(refspecs) { specs in
                        var specs = specs
                        try sanitised(url: url, credentials: credentials) {
                            try check(git_remote_push(remote, &specs, &options), "git_remote_push")
                        }
                    }
                } catch let error as GitError where error.code == .pushRejected {
                    let destinations = refspecs.map { $0.split(separator: ":").last.map(String.init) ?? $0 }
                    throw GitError(.pushRejected, "\(redactedURL(url)) rejected \(destinations.joined(separator: ", ")): not a fast-forward; the remote moved since it was fetched",
                                   function: error.function)
                }
                if let (ref, reason) = context.rejections.first {
                    throw GitError(.pushRejected, "the remote rejected \(ref): \(reason)", function: "git_remote_push")
                }
            }
        }
    }

    /// Deletes `refs/remotes/origin/*` refs whose branch the remote no longer has. (libgit2's
    /// own prune looks at configured refspecs, which an anonymous remote does not have.)
    private func pruneRemoteBranches(_ remote: OpaquePointer?) throws {
        var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
        var count = 0
        try check(git_remote_ls(&heads, &count, remote), "git_remote_ls")
        var advertised: Set<String> = []
        for index in 0..<count {
            guard let head = heads?[index]?.pointee, let name = head.name else { continue }
            let full = String(cString: name)
            if full.hasPrefix("refs/heads/") { advertised.insert("refs/remotes/origin/" + full.dropFirst("refs/heads/".count)) }
        }
        for (name, target) in try references(withPrefix: "refs/remotes/origin/") where !advertised.contains(name) {
            try deleteReference(name, expected: target)
        }
    }

    private func withRemote<T>(_ url: String, _ body: (OpaquePointer?) throws -> T) throws -> T {
        var remote: OpaquePointer?
        try sanitised(url: url, credentials: .none) {
            try check(git_remote_create_anonymous(&remote, handle, url), "git_remote_create_anonymous")
        }
        defer { git_remote_free(remote) }
        return try body(remote)
    }

    private func withCallbacks<T>(_ credentials: Credentials, _ body: (git_remote_callbacks, RemoteContext) throws -> T) throws -> T {
        let context = RemoteContext(CredentialContext(credentials))
        let payload = Unmanaged.passRetained(context)
        defer { payload.release() }
        var callbacks = cairn_remote_callbacks_init()
        callbacks.payload = payload.toOpaque()
        callbacks.credentials = { out, url, usernameFromURL, allowed, payload in
            guard let payload else { return GIT_EAUTH.rawValue }
            let context = Unmanaged<RemoteContext>.fromOpaque(payload).takeUnretainedValue()
            return context.credentials.acquire(out, usernameFromURL: usernameFromURL.map { String(cString: $0) }, allowed: allowed)
        }
        callbacks.push_update_reference = { refname, status, payload in
            guard let payload, let status else { return 0 }
            let context = Unmanaged<RemoteContext>.fromOpaque(payload).takeUnretainedValue()
            context.rejections.append((refname.map { String(cString: $0) } ?? "?", String(cString: status)))
            return 0
        }
        return try body(callbacks, context)
    }

    /// Runs `body`, replacing the URL and any secret in a thrown message by their redacted form.
    private func sanitised(url: String, credentials: Credentials, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as GitError {
            var message = error.message.replacingOccurrences(of: url, with: redactedURL(url))
            for secret in credentials.secrets(in: url) {
                message = message.replacingOccurrences(of: secret, with: "***")
            }
            var code = error.code
            if code == .other, error.message.localizedCaseInsensitiveContains("non-fast-forward") { code = .pushRejected }
            throw GitError(code, "\(redactedURL(url)): \(message)", function: error.function)
        }
    }
}

/// What the remote callbacks borrow for one fetch or push.
final class RemoteContext {
    let credentials: CredentialContext
    var rejections: [(String, String)] = []

    init(_ credentials: CredentialContext) {
        self.credentials = credentials
    }
}

import ArgumentParser
import CairnCore
import CairnEngine
package import CairnHTTP
import CairnManifests
package import CairnStore
import Foundation
import Logging

/// `cairn run`'s HTTP face: where it listens and how webhooks prove themselves.
struct HTTPOptions: ParsableArguments {
    static let secretVariable = "CAIRN_WEBHOOK_SECRET"

    @Option(help: ArgumentHelp("""
        Serve HTTP on ADDR:PORT: /healthz, /readyz, /metrics (Prometheus), /api/v1/status, /api/v1/models and \
        the webhook receivers. A bare port listens on 127.0.0.1; 0 picks a free port (logged). Default: no HTTP.
        """, valueName: "addr:port"))
    var listen: String?

    @Option(help: ArgumentHelp("""
        A file holding the secret webhooks are signed with (GitHub, Gitea and generic HMAC) or carry (GitLab's token); \
        or set CAIRN_WEBHOOK_SECRET. Without either, the webhook receivers answer 404.
        """, valueName: "path"))
    var webhookSecretFile: String?

    @Option(help: ArgumentHelp("The most a webhook's body may hold, such as 1MiB; a larger one gets 413.", valueName: "size"))
    var webhookMaxBody: String = "1MiB"

    @Option(help: ArgumentHelp("""
        POST a JSON alert here when a Monitor threshold with action: alert fires or resolves (http or https; \
        retried 5 times with backoff; a user:password in the URL is sent as Basic auth and never logged).
        """, valueName: "url"))
    var alertURL: String?

    func validate() throws {
        if let listen, ListenAddress(parsing: listen) == nil {
            throw ValidationError("--listen \(listen) is not ADDR:PORT (such as 127.0.0.1:8080, 8080, or [::1]:8080)")
        }
        if webhookSecretFile != nil, listen == nil {
            throw ValidationError("--webhook-secret-file needs --listen: webhooks arrive over HTTP")
        }
        if byteSize(webhookMaxBody) == nil {
            throw ValidationError("--webhook-max-body \(webhookMaxBody) is not a size such as 1MiB or 256KiB")
        }
    }

    /// The webhook secret from `--webhook-secret-file` or the environment, which loses it
    /// (so that nothing this process starts inherits it: call this before anything captures
    /// the environment); nil when neither gives one, or without `--listen`.
    func webhookSecret(logger: Logger) throws -> [UInt8]? {
        let variable = ProcessInfo.processInfo.environment[Self.secretVariable]
        unsetenv(Self.secretVariable)
        guard listen != nil else {
            if variable != nil { logger.warning("\(Self.secretVariable) is set but cairn run has no --listen: no webhook can arrive") }
            return nil
        }
        guard let path = webhookSecretFile else {
            guard let variable else { return nil }
            let secret = variable.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !secret.isEmpty else { throw CairnExit.usage("\(Self.secretVariable) is empty") }
            return Array(secret.utf8)
        }
        // Read no more than a secret can hold: a path such as /dev/zero costs 4 KiB, not memory without end.
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.read(upToCount: 4097) ?? Data() else {
            throw CairnExit.unreadable("cannot read --webhook-secret-file \(path)")
        }
        try? handle.close()
        guard data.count <= 4096, let text = String(data: data, encoding: .utf8) else {
            throw CairnExit.usage("--webhook-secret-file \(path) does not hold a secret (UTF-8 text, at most 4 KiB)")
        }
        // A trailing newline, as editors and `echo` leave, is not part of the secret.
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty else { throw CairnExit.usage("--webhook-secret-file \(path) is empty") }
        if let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
            logger.warning("the webhook secret file can be read by other users; chmod 600 it",
                           metadata: ["cairn.file": "\(path)", "cairn.mode": "\(String(mode, radix: 8))"])
        }
        if variable != nil { logger.notice("--webhook-secret-file given: \(Self.secretVariable) is not used") }
        return Array(secret.utf8)
    }

    /// The alert sender, when `--alert-url` asks for one; a URL it cannot use stops `cairn run` (exit 2).
    func alertSender(logger: Logger, metrics: DaemonMetrics) throws -> AlertSender? {
        guard let alertURL else { return nil }
        do {
            return try AlertSender(url: alertURL, logger: logger, metrics: metrics.engine.factory)
        } catch {
            throw CairnExit.usage("--alert-url: \(error)")
        }
    }

    /// The server, when `--listen` asks for one.
    func server(engine: Engine, triggers: Triggers, metrics: DaemonMetrics, secret: [UInt8]?, samples: (any MetricSink)? = nil,
                logger: Logger) -> APIServer? {
        guard let listen, let address = ListenAddress(parsing: listen) else { return nil }
        if !address.isLoopback {
            logger.notice("the HTTP face listens beyond this machine; status and metrics need no credentials to read",
                          metadata: ["cairn.http": "\(address)"])
        }
        let configuration = APIConfiguration(address: address, webhookSecret: secret, webhookBodyLimit: byteSize(webhookMaxBody) ?? 1 << 20,
                                             branch: engine.configuration.branch)
        var content = APIContent.reading(engine.store)
        content.metrics = samples
        return APIServer(configuration: configuration, engine: engine, triggers: triggers, content: content,
                         metrics: metrics, logger: logger)
    }
}

extension APIContent {
    /// The JSON `cairn status` and `cairn models` print with `--format json`, read from `store`.
    /// Package-wide so that `cairn-bench http` serves exactly what the daemon serves.
    package static func reading(_ store: Store) -> APIContent {
        APIContent(
            status: { try StatusJSON.all(store) },
            object: { ref in try StatusJSON.one(ref, in: store) },
            models: { try ModelText.registryJSON(store) },
            model: { name, limit in try ModelText.versionsJSON(of: name, limit: limit, in: store) })
    }
}

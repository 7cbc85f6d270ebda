import CairnCore
import CairnEngine
import CairnManifests
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension APIServer {
    /// The routes. Every answer is JSON but `/metrics` (Prometheus' text format); an error is
    /// `{"error": "..."}` with a status that says which kind.
    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/healthz") { _, _ in Self.json(.ok, #"{"status":"ok"}"#) }
        router.get("/readyz") { [self] _, _ in readiness() }
        router.get("/metrics") { [self] _, _ in await scrape() }
        router.get("/api/v1/status") { [self] _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: try statusBody()))
        }
        router.get("/api/v1/status/:kind/:name") { [self] _, context in
            let kind = context.parameters.get("kind") ?? "", name = context.parameters.get("name") ?? ""
            guard let ref = ObjectRef(parsing: "\(kind)/\(name)") else {
                return Self.error(.notFound, "\(kind)/\(name) is not Kind/name; kinds are "
                                  + Kind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard let text = try content.object(ref) else { return Self.error(.notFound, "\(ref) is not known") }
            return Self.json(.ok, text)
        }
        router.get("/api/v1/models") { [self] _, _ in Self.json(.ok, try content.models()) }
        router.get("/api/v1/models/:name") { [self] request, context in
            let name = context.parameters.get("name") ?? ""
            var limit = 50
            if let text = request.uri.queryParameters["limit"] {
                guard let value = Int(text), value > 0 else { return Self.error(.badRequest, "limit must be a positive number") }
                limit = min(value, 10_000)
            }
            guard let text = try content.model(name, limit) else {
                return Self.error(.notFound, "model \(name) has no registered version")
            }
            return Self.json(.ok, text)
        }
        router.post("/api/v1/webhooks/:provider") { [self] request, context in
            await webhook(request, provider: context.parameters.get("provider") ?? "")
        }
        router.post("/api/v1/metrics") { [self] request, _ in await pushMetrics(request) }
        return router
    }

    /// 200 once a pass has completed; 503 before, with why.
    private func readiness() -> Response {
        let (ready, passes, failed, stopping) = state.withLock { ($0.ready, $0.passes, $0.failedPasses, $0.stopping) }
        if ready, !stopping { return Self.json(.ok, #"{"ready":true}"#) }
        let reason = stopping ? "the daemon is stopping" : passes == 0 ? "the first pass has not finished"
            : "no pass has completed yet (\(failed) failed; the daemon's log says why, and it retries with backoff)"
        return Self.json(.serviceUnavailable, Self.encode(NotReady(reason: reason)))
    }

    private struct NotReady: Encodable {
        var ready = false
        let reason: String
    }

    private func scrape() async -> Response {
        let queue = try? engine.store.requestCount()
        let running = await engine.execution?.executor.inFlight().count
        metrics.scraped(queueDepth: queue, runsInFlight: running)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
    }

    private func webhook(_ request: Request, provider name: String) async -> Response {
        guard let provider = WebhookProvider(rawValue: name) else {
            return Self.error(.notFound, "no webhook receiver \(name); there are "
                              + WebhookProvider.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let verifier else {
            metrics.webhook(provider, result: "disabled")
            return Self.error(.notFound, "webhooks are off; start cairn run with --webhook-secret-file PATH or CAIRN_WEBHOOK_SECRET")
        }
        var headers: [String: String] = [:]
        for field in request.headers where headers[field.name.canonicalName] == nil {
            headers[field.name.canonicalName] = field.value
        }
        // What can be refused from the headers is refused before the body is read: a sender
        // that does not even claim to know the secret costs nothing more.
        if let problem = verifier.headerProblem(provider, headers: headers) {
            metrics.webhook(provider, result: "unauthorized")
            logRejection(provider, "unauthorized", problem)
            return Self.error(.unauthorized, problem)
        }
        let limit = configuration.webhookBodyLimit
        let tooLarge = { [self] () -> Response in
            metrics.webhook(provider, result: "too_large")
            logRejection(provider, "too_large", "a body over \(limit) bytes")
            return Self.error(.contentTooLarge, "the body is larger than \(limit) bytes")
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit { return tooLarge() }
        let body: ByteBuffer
        let deadline = configuration.webhookBodyDeadline
        switch await Self.readBody(of: request, limit: limit, within: deadline) {
        case .body(let read): body = read
        case .tooLarge: return tooLarge()
        case .timedOut:
            metrics.webhook(provider, result: "timed_out")
            logRejection(provider, "timed_out", "the body took longer than \(deadline) to arrive")
            return Self.error(.requestTimeout, "the body took longer than \(deadline) to arrive")
        case .aborted:
            metrics.webhook(provider, result: "aborted")
            return Self.error(.badRequest, "the body could not be read")
        }
        let verdict = verifier.verdict(provider, headers: headers, body: body.readableBytesView)
        metrics.webhook(provider, result: verdict.result)
        switch verdict {
        case .trigger(let delivery):
            triggers.send(.webhook)
            logger.debug("webhook", metadata: ["cairn.webhook": "\(provider.rawValue)", "cairn.delivery": "\(delivery ?? "-")"])
            return Self.json(.accepted, Self.encode(["result": verdict.result, "branch": configuration.branch]))
        case .ping:
            return Self.json(.ok, Self.encode(["result": verdict.result]))
        case .ignored(let reason):
            return Self.json(.accepted, Self.encode(["result": verdict.result, "reason": reason]))
        case .replayed(let delivery):
            return Self.json(.ok, Self.encode(["result": verdict.result, "reason": "delivery \(delivery) was handled already"]))
        case .unauthorized(let reason):
            logRejection(provider, verdict.result, reason)
            return Self.error(.unauthorized, reason)
        case .malformed(let reason):
            // A misconfigured forge (a form-encoded GitHub hook, say): worth a line in the log.
            logRejection(provider, verdict.result, reason)
            return Self.error(.badRequest, reason)
        }
    }

    enum BodyRead {
        case body(ByteBuffer), tooLarge, timedOut, aborted
    }

    /// The request's body, at most `limit` bytes, if it arrives within `deadline`.
    static func readBody(of request: Request, limit: Int, within deadline: Duration) async -> BodyRead {
        await withTaskGroup(of: BodyRead?.self) { group in
            group.addTask {
                do {
                    return .body(try await request.body.collect(upTo: limit))
                } catch is NIOTooManyBytesError {
                    return .tooLarge
                } catch {
                    return .aborted
                }
            }
            group.addTask {
                guard (try? await Task.sleep(for: deadline)) != nil else { return nil }
                return .timedOut
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .aborted
        }
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text.hasSuffix("\n") ? text : text + "\n")))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, encode(["error": message]))
    }

    /// Compact JSON with sorted keys, so an answer reads the same every time.
    static func encode(_ fields: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(fields)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

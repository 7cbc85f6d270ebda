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
        return router
    }

    /// 200 once a pass has completed; 503 before, with why.
    private func readiness() -> Response {
        let (ready, passes, failed) = state.withLock { ($0.ready, $0.passes, $0.failedPasses) }
        if ready { return Self.json(.ok, #"{"ready":true}"#) }
        let reason = passes == 0 ? "the first pass has not finished"
            : "no pass has completed yet (\(failed) failed; the daemon's log says why, and it retries with backoff)"
        let text = (try? JSONEncoder().encode(NotReady(reason: reason))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return Self.json(.serviceUnavailable, text)
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
        let limit = configuration.webhookBodyLimit
        let tooLarge = { [self] () -> Response in
            metrics.webhook(provider, result: "too_large")
            logRejection(provider, "too_large", "a body over \(limit) bytes")
            return Self.error(.contentTooLarge, "the body is larger than \(limit) bytes")
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit { return tooLarge() }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch {
            return tooLarge()
        }
        var headers: [String: String] = [:]
        for field in request.headers where headers[field.name.canonicalName] == nil {
            headers[field.name.canonicalName] = field.value
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
            return Self.error(.badRequest, reason)
        }
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text.hasSuffix("\n") ? text : text + "\n")))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, encode(["error": message]))
    }

    static func encode(_ fields: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(fields)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

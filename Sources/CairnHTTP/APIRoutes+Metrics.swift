import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension APIServer {
    /// `POST /api/v1/metrics`: a batch of samples for one deployment's Monitors (``MetricPush``
    /// says what the body holds). 202 with what became of them; 400 naming the first problem,
    /// and nothing of the batch kept; 404 when no Monitor watches the deployment (or the daemon
    /// has none); 413 and 408 as for webhooks.
    func pushMetrics(_ request: Request) async -> Response {
        guard let sink = content.metrics else {
            return refused(.notFound, "this daemon has no Monitor support configured", log: false)
        }
        let limit = configuration.metricsBodyLimit
        let tooLarge = "the body is larger than \(limit) bytes; send at most \(MetricPush.maximumSamples) samples a request"
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return refused(.contentTooLarge, tooLarge)
        }
        let body: ByteBuffer
        let deadline = configuration.metricsBodyDeadline
        switch await Self.readBody(of: request, limit: limit, within: deadline) {
        case .body(let read): body = read
        case .tooLarge: return refused(.contentTooLarge, tooLarge)
        case .timedOut: return refused(.requestTimeout, "the body took longer than \(deadline) to arrive")
        case .aborted: return refused(.badRequest, "the body could not be read", log: false)
        }

        let now = configuration.clock()
        let push: MetricPush
        do throws(MetricPush.Problem) {
            push = try MetricPush.parse(body, now: now)
        } catch {
            return refused(.badRequest, error.description, rejected: error.samplesRead)
        }
        switch sink.ingest(deployment: push.deployment, samples: push.samples, receivedAt: now) {
        case .ingested(let counts):
            metrics.metricSamples(counts)
            metrics.metricPush(status: HTTPResponse.Status.accepted.code)
            return Self.json(.accepted, Self.encode(counts))
        case .unknownDeployment(let known):
            metrics.metricSamples(rejected: push.samples.count)
            metrics.metricPush(status: HTTPResponse.Status.notFound.code)
            let message = "no Monitor watches deployment \(push.deployment)"
            logMetricRefusal(.notFound, message)
            return Self.json(.notFound, Self.encode(UnknownDeployment(error: message, known: Array(known.prefix(20)))))
        }
    }

    private struct UnknownDeployment: Encodable {
        let error: String
        /// The deployments Monitors watch, at most 20.
        let known: [String]
    }

    /// An error answer, counted, and logged (at most once per 10 s) unless `log` is false.
    private func refused(_ status: HTTPResponse.Status, _ message: String, rejected: Int = 0, log: Bool = true) -> Response {
        metrics.metricSamples(rejected: rejected)
        metrics.metricPush(status: status.code)
        if log { logMetricRefusal(status, message) }
        return Self.error(status, message)
    }

    /// Never the body, only what was wrong with it: a sender with a bug is one line a while.
    private func logMetricRefusal(_ status: HTTPResponse.Status, _ reason: String) {
        let now = ContinuousClock.now
        guard let skipped = state.withLock({ $0.metricRefusals.admit(at: now) }) else { return }
        logger.warning("metrics push refused", metadata: [
            "cairn.status": "\(status.code)", "cairn.reason": "\(reason)", "cairn.notLogged": "\(skipped)"])
    }
}

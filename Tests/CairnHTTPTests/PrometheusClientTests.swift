import CairnHTTP
import CairnTestSupport
import Foundation
import Hummingbird
import MonitorController
import NIOCore
import Synchronization
import Testing

/// `PrometheusClient` against a fake Prometheus served on 127.0.0.1: the query (the answer
/// each query text selects) travels percent-encoded, the answers Prometheus gives read as one
/// value or an error naming the host and never the URL's password.
@Suite struct PrometheusClientTests {
    /// What the fake answers for each query text; anything else is echoed back as the value's length.
    static func router(received: Locked<[String]>, authorization: Locked<String?>) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/api/v1/query") { request, _ in
            let query = request.uri.queryParameters["query"].map(String.init) ?? ""
            received.withLock { $0.append(query) }
            authorization.withLock { $0 = request.headers[.authorization] }
            func json(_ text: String, _ status: HTTPResponse.Status = .ok) -> Response {
                Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
            }
            switch query {
            case "good":
                return json(#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"churn"},"value":[1700000000.5,"0.93"]}]}}"#)
            case "scalar":
                return json(#"{"status":"success","data":{"resultType":"scalar","result":[1700000001,"42"]}}"#)
            case "empty":
                return json(#"{"status":"success","data":{"resultType":"vector","result":[]}}"#)
            case "two":
                return json(#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#)
            case "error":
                return json(#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected <EOF>"}"#, .badRequest)
            case "nan":
                return json(#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#)
            case "inf":
                return json(#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#)
            case "garbage":
                return json("this is not json")
            case "html500":
                return Response(status: .internalServerError, headers: [.contentType: "text/html"],
                                body: ResponseBody(byteBuffer: ByteBuffer(string: "<html><body>Internal Server Error</body></html>")))
            case "matrix":
                return json(#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
            case "shape":
                return json(#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":"0.5"}]}}"#)
            case "huge":
                return json(String(repeating: " ", count: 2 << 20) + "{}")
            case "slow":
                try await Task.sleep(for: .seconds(3))
                return json(#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#)
            default:
                return json(#"{"status":"success","data":{"resultType":"scalar","result":[1,"\#(query.count)"]}}"#)
            }
        }
        return router
    }

    static func with(_ body: (_ url: String, _ received: Locked<[String]>, _ authorization: Locked<String?>) async throws -> Void) async throws {
        let received = Locked<[String]>([])
        let authorization = Locked<String?>(nil)
        try await TestHTTPServer.with(router(received: received, authorization: authorization)) { port in
            try await body("http://127.0.0.1:\(port)", received, authorization)
        }
    }

    /// A generous timeout unless the test is about it: beside the whole suite, a loaded machine
    /// can hold the local fake's answer for seconds.
    static func failure(_ url: String, _ query: String, timeout: Duration = .seconds(60)) async -> String? {
        do {
            _ = try await PrometheusClient().instantQuery(url: url, query: query, timeout: timeout)
            return nil
        } catch let error as MetricSourceError {
            return error.message
        } catch {
            return "not a MetricSourceError: \(error)"
        }
    }

    @Test func aVectorAndAScalarReadAsOneValueAndAnEmptyVectorAsNone() async throws {
        try await Self.with { url, _, _ in
            let client = PrometheusClient()
            let vector = try await client.instantQuery(url: url, query: "good", timeout: .seconds(60))
            #expect(vector?.value == 0.93)
            #expect(vector?.time == Date(timeIntervalSince1970: 1_700_000_000.5))
            let scalar = try await client.instantQuery(url: url + "/", query: "scalar", timeout: .seconds(60))
            #expect(scalar?.value == 42)
            #expect(scalar?.time == Date(timeIntervalSince1970: 1_700_000_001))
            let empty = try await client.instantQuery(url: url, query: "empty", timeout: .seconds(60))
            #expect(empty == nil)
        }
    }

    /// PromQL's `+`, quotes, braces and brackets arrive as written (a `+` left bare would be a space).
    @Test func theQueryArrivesIntact() async throws {
        try await Self.with { url, received, _ in
            let query = #"sum(rate(http_requests_total{job="churn",code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) + 1 & é"#
            let answer = try await PrometheusClient().instantQuery(url: url, query: query, timeout: .seconds(60))
            #expect(received.withLock { $0 } == [query])
            #expect(answer?.value == Double(query.count))
        }
    }

    @Test(arguments: [
        ("two", "the query returned 2 series from Prometheus at HOST; make it return one, e.g. with sum() or avg()"),
        ("error", "Prometheus at HOST refused the query (HTTP 400): bad_data: 1:5: parse error: unexpected <EOF>"),
        ("nan", "the query's value from Prometheus at HOST is NaN, not a finite number"),
        ("inf", "the query's value from Prometheus at HOST is +Inf, not a finite number"),
        ("garbage", "Prometheus at HOST answered something that is not JSON; is the URL a Prometheus API?"),
        ("html500", "Prometheus at HOST answered HTTP 500 Internal Server Error"),
        ("matrix", "the query returned a matrix from Prometheus at HOST, not one number"),
        ("shape", "Prometheus at HOST answered JSON of the wrong shape (a value that is not [time, \"number\"])"),
        ("huge", "Prometheus at HOST answered more than 1048576 bytes"),
    ])
    func whatIsNotOneFiniteNumberIsAnErrorNamingTheHost(query: String, expected: String) async throws {
        try await Self.with { url, _, _ in
            let host = String(url.dropFirst("http://".count))
            let message = await Self.failure(url, query)
            #expect(message?.hasPrefix(expected.replacingOccurrences(of: "HOST", with: host)) == true, "\(message ?? "no error")")
        }
    }

    /// Sent as basic authentication, never said: the message names host and port only.
    @Test func credentialsInTheURLAreSentAndNeverShown() async throws {
        try await Self.with { url, _, authorization in
            let port = url.split(separator: ":").last.map(String.init) ?? ""
            let secretURL = "http://reader:s3cret@127.0.0.1:\(port)"
            let value = try await PrometheusClient().instantQuery(url: secretURL, query: "good", timeout: .seconds(60))?.value
            #expect(value == 0.93)
            #expect(authorization.withLock { $0 } == "Basic " + Data("reader:s3cret".utf8).base64EncodedString())
            let message = await Self.failure(secretURL, "error") ?? ""
            #expect(message.contains("127.0.0.1:\(port)"))
            #expect(!message.contains("s3cret") && !message.contains("reader"))
        }
    }

    @Test func aSlowAnswerIsATimeoutWithinTheTimeout() async throws {
        try await Self.with { url, _, _ in
            let started = ContinuousClock.now
            let message = await Self.failure(url, "slow", timeout: .milliseconds(700))
            let took = ContinuousClock.now - started
            #expect(message == "Prometheus at \(url.dropFirst("http://".count)) did not answer within 0.7 s")
            // The message proves the deadline won over the 3 s answer; how soon after it the
            // caller heard is the machine's load, not the client's logic (the suite runs beside
            // every other), so only the lower bound is checked.
            #expect(took >= .milliseconds(650), "took \(took)")
        }
    }

    /// The shared client would retry a refused connection until the deadline; the probe says
    /// "refused" long before it.
    @Test func nothingListeningIsRefusedBeforeTheDeadline() async throws {
        let port = try freePort()
        let message = await Self.failure("http://127.0.0.1:\(port)", "good", timeout: .seconds(60))
        #expect(message == "cannot reach Prometheus at 127.0.0.1:\(port): connection refused", "\(message ?? "no error")")
        // "refused", not "did not answer within 10 s": the probe's verdict came before the
        // deadline's. (Wall time is not checked: beside the whole suite it says more about the
        // load than about the probe.)
    }

    @Test(arguments: [
        ("ftp://127.0.0.1:21", "the Prometheus URL for 127.0.0.1:21 must start with http:// or https://, not ftp://"),
        ("127.0.0.1:9090", "the Prometheus URL is not a URL such as http://127.0.0.1:9090"),
        ("http://127.0.0.1:9090/?x=1", "the Prometheus URL for 127.0.0.1:9090 must not hold a query or fragment; give the server's base URL"),
    ])
    func onlyHTTPAndHTTPSBaseURLs(url: String, expected: String) async throws {
        #expect(await Self.failure(url, "good") == expected)
    }
}

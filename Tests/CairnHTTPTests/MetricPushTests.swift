import AsyncHTTPClient
import CairnCore
import CairnManifests
import Foundation
import MonitorController
import NIOCore
import Testing
@testable import CairnHTTP

/// `POST /api/v1/metrics`, served for real on 127.0.0.1 in front of a real `MetricHub` that
/// a Monitor of `churn-prod` (a threshold on `accuracy`, 5m mean, version 3 serving) watches:
/// what a serving process or a feedback job sees, and what the Monitor's window then holds.
@Suite(.serialized) struct MetricPushTests {
    /// The time the daemon takes it to be: 2026-05-01T12:00:00Z.
    static let now = Date(timeIntervalSince1970: 1_777_636_800)

    /// A hub as the Monitor controller leaves it after evaluating `churn-quality` (and
    /// `fraud-quality`, whose deployment serves no version yet).
    struct Watched {
        let hub = MetricHub()
        let accuracy: MetricHub.WindowKey

        init() throws {
            let yaml = """
                apiVersion: cairn/v1
                kind: Monitor
                metadata: {name: churn-quality}
                spec:
                  deployment: churn-prod
                  thresholds: [{metric: accuracy, below: 0.8, window: 5m, aggregate: mean, action: retrain}]
                  source: {push: {}}
                """
            let parsed = ManifestParser.parse(Data(yaml.utf8), file: "monitors/churn.yaml")
            guard case .monitor(let spec)? = parsed.manifests.first?.spec else {
                throw NotAMonitor(failures: "\(parsed.failures)")
            }
            accuracy = MetricHub.WindowKey(spec.thresholds[0])
            hub.watch(monitor: "churn-quality", deployment: "churn-prod", thresholds: spec.thresholds, serving: 3, interval: 30, now: MetricPushTests.now)
            hub.watch(monitor: "fraud-quality", deployment: "fraud-prod", thresholds: spec.thresholds, serving: nil, interval: 30,
                      now: MetricPushTests.now)
        }

        /// What the Monitor would read now from churn-prod's accuracy window.
        var reading: MetricHub.Reading {
            hub.read(deployment: "churn-prod", key: accuracy, serving: 3, now: MetricPushTests.now)
        }
    }

    static func with(_ watched: Watched, _ body: (ServedDaemon) async throws -> Void) async throws {
        try await ServedDaemon.with(metrics: watched.hub, clock: { MetricPushTests.now }, body)
    }

    static func batch(_ samples: String..., deployment: String = "churn-prod") -> String {
        #"{"deployment":"\#(deployment)","samples":[\#(samples.joined(separator: ","))]}"#
    }

    static func counter(_ metrics: String, _ series: String) -> String? {
        metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }.map { String($0.dropFirst(series.count + 1)) }
    }

    // MARK: Accepted

    /// Samples with each form of timestamp reach the window the Monitor reads; the serving
    /// version's are accepted, another version's are not; an unwatched metric is ignored; one
    /// older than the window has expired; a deployment serving nothing cannot attribute them.
    @Test func pushedSamplesReachTheMonitorsWindow() async throws {
        let watched = try Watched()
        try await Self.with(watched) { daemon in
            let answer = try await daemon.pushMetrics(Self.batch(
                #"{"metric":"accuracy","value":0.9,"timestamp":"2026-05-01T11:59:00Z"}"#,
                #"{"metric":"accuracy","value":0.8,"timestamp":"2026-05-01T13:59:30.500+02:00","labels":{"version":"3"}}"#,
                #"{"metric":"accuracy","value":0.7,"timestamp":1777636790}"#,
                #"{"metric":"accuracy","value":0.1,"labels":{"version":"2"}}"#,
                #"{"metric":"latency_seconds","value":0.2}"#,
                #"{"metric":"accuracy","value":5e-1,"timestamp":null,"labels":{"region":"eu-west","team name":"ml"}}"#,
                #"{"metric":"accuracy","value":0.3,"timestamp":"2026-05-01T10:00:00Z"}"#))
            #expect(answer.status == 202)
            #expect(answer.contentType == "application/json")
            #expect(answer.body == #"{"accepted":4,"expired":1,"ignored":1,"otherVersion":1,"unattributed":0}"# + "\n")
            let reading = watched.reading
            #expect(reading.samples == 4)
            #expect(abs((reading.value ?? 0) - 0.725) < 1e-12, "the mean of 0.9, 0.8, 0.7 and 0.5 is \(reading.value ?? .nan)")

            let unattributed = try await daemon.pushMetrics(Self.batch(#"{"metric":"accuracy","value":0.9}"#, deployment: "fraud-prod"))
            #expect(unattributed.status == 202)
            #expect(unattributed.body == #"{"accepted":0,"expired":0,"ignored":0,"otherVersion":0,"unattributed":1}"# + "\n")

            let empty = try await daemon.pushMetrics(Self.batch())
            #expect(empty.status == 202)
            #expect(empty.body == #"{"accepted":0,"expired":0,"ignored":0,"otherVersion":0,"unattributed":0}"# + "\n")
            #expect(watched.reading.samples == 4)

            let metrics = try await daemon.get("/metrics").body
            for (result, count) in [("accepted", "4"), ("ignored", "1"), ("other_version", "1"), ("unattributed", "1"), ("expired", "1"),
                                    ("rejected", "0")] {
                #expect(Self.counter(metrics, #"cairn_metric_samples_total{result="\#(result)"}"#) == count, "\(result) in \(metrics)")
            }
            #expect(Self.counter(metrics, #"cairn_metric_push_requests_total{status="202"}"#) == "3", "\(metrics)")
        }
    }

    /// The most samples a request may carry are accepted; one more refuses the request whole.
    @Test func aBatchOfMoreThan10000SamplesIsRefused() async throws {
        let watched = try Watched()
        try await Self.with(watched) { daemon in
            let sample = #"{"metric":"accuracy","value":0.75}"#
            let most = try await daemon.pushMetrics(Self.batch(Array(repeating: sample, count: 10_000).joined(separator: ",")))
            #expect(most.status == 202)
            #expect(Self.object(most)?["accepted"] as? Int == 10_000, "\(most.body)")
            #expect(watched.reading.samples == 10_000)

            let tooMany = try await daemon.pushMetrics(Self.batch(Array(repeating: sample, count: 10_001).joined(separator: ",")))
            #expect(tooMany.status == 400)
            #expect(tooMany.fields == ["error": "samples: more than 10000 samples in one request; send at most 10000 a request"])
            #expect(watched.reading.samples == 10_000)
        }
    }

    static func object(_ answer: ServedDaemon.Answer) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any]
    }

    // MARK: Refused

    static let shape = #"send {"deployment": NAME, "samples": [{"metric": NAME, "value": NUMBER}]}"#
    static let rfc3339 = "is not an RFC 3339 timestamp such as 2026-05-01T12:00:00Z or 2026-05-01T14:00:00.250+02:00"

    /// A second sample that is wrong in one way, after a good one: the answer names the field
    /// and the reason.
    static let badSamples: [(sample: String, error: String)] = [
        ("1", #"samples[1]: must be an object {"metric", "value"}, not a number"#),
        (#"{"value":1}"#, "samples[1].metric: missing"),
        (#"{"metric":"accuracy"}"#, "samples[1].value: missing"),
        (#"{"metric":"accuracy","value":1,"valeu":2}"#, #"samples[1]: unknown field "valeu" (a sample has metric, value, timestamp and labels)"#),
        (#"{"metric":"accuracy","value":"NaN"}"#, "samples[1].value: must be a number, not a string"),
        (#"{"metric":"accuracy","value":true}"#, "samples[1].value: must be a number, not true"),
        (#"{"metric":"accuracy","value":false}"#, "samples[1].value: must be a number, not false"),
        (#"{"metric":"accuracy","value":null}"#, "samples[1].value: must be a number, not null"),
        (#"{"metric":"accuracy","value":[1]}"#, "samples[1].value: must be a number, not an array"),
        (#"{"metric":"accuracy","value":1e999}"#, "samples[1].value: 1e999 is not a finite number (NaN and the infinities are refused)"),
        (#"{"metric":"accuracy","value":-1E+999}"#, "samples[1].value: -1E+999 is not a finite number (NaN and the infinities are refused)"),
        (#"{"metric":"accuracy","value":0.5,"value":0.6}"#, "samples[1].value: given twice"),
        (#"{"metric":7,"value":1}"#, "samples[1].metric: must be a string (the metric's name), not a number"),
        (#"{"metric":"","value":1}"#, "samples[1].metric: must not be empty"),
        (#"{"metric":"9lives","value":1}"#,
         #"samples[1].metric: "9lives" is not a metric name (letters, digits, '_', ':', '.' and '-', not starting with a digit)"#),
        (#"{"metric":"acc uracy","value":1}"#,
         #"samples[1].metric: "acc uracy" is not a metric name (letters, digits, '_', ':', '.' and '-', not starting with a digit)"#),
        (#"{"metric":"\#(String(repeating: "a", count: 201))","value":1}"#,
         "samples[1].metric: a metric name is 201 bytes long; at most 200 are allowed"),
        (#"{"metric":"accuracy","value":1,"timestamp":"yesterday"}"#, #"samples[1].timestamp: "yesterday" \#(rfc3339)"#),
        (#"{"metric":"accuracy","value":1,"timestamp":"2026-02-30T00:00:00Z"}"#, #"samples[1].timestamp: "2026-02-30T00:00:00Z" \#(rfc3339)"#),
        (#"{"metric":"accuracy","value":1,"timestamp":"2026-05-01T12:00:00"}"#, #"samples[1].timestamp: "2026-05-01T12:00:00" \#(rfc3339)"#),
        (#"{"metric":"accuracy","value":1,"timestamp":"2026-05-01T12:10:00Z"}"#,
         "samples[1].timestamp: its timestamp is 600 s in the future (at most 300 s is allowed; is the sender's clock right?)"),
        (#"{"metric":"accuracy","value":1,"timestamp":"2026-04-30T11:00:00Z"}"#,
         "samples[1].timestamp: its timestamp is 90000 s in the past (at most 86400 s, the longest window, is allowed)"),
        (#"{"metric":"accuracy","value":1,"timestamp":1777636800000}"#,
         "samples[1].timestamp: its timestamp is 1775859163200 s in the future (at most 300 s is allowed; is the sender's clock right?); "
            + "a number is Unix seconds, not milliseconds"),
        (#"{"metric":"accuracy","value":1,"timestamp":1e999}"#,
         "samples[1].timestamp: 1e999 is not a finite number (NaN and the infinities are refused)"),
        (#"{"metric":"accuracy","value":1,"timestamp":true}"#,
         "samples[1].timestamp: must be an RFC 3339 string or a number of Unix seconds, not true"),
        (#"{"metric":"accuracy","value":1,"labels":[]}"#, "samples[1].labels: must be an object of strings, not an array"),
        (#"{"metric":"accuracy","value":1,"labels":{"version":3}}"#, "samples[1].labels.version: must be a string, not a number"),
        (#"{"metric":"accuracy","value":1,"labels":{"version":"v3"}}"#,
         #"samples[1].labels.version: "v3" is not a version number (a positive integer, as the registry numbers versions)"#),
        (#"{"metric":"accuracy","value":1,"labels":{"team":"a","team":"b"}}"#, "samples[1].labels.team: given twice"),
        (#"{"metric":"accuracy","value":1,"labels":{"":"x"}}"#, #"samples[1].labels[""]: a label needs a name"#),
        (#"{"metric":"accuracy","value":1,"labels":{"team":"\#(String(repeating: "x", count: 201))"}}"#,
         "samples[1].labels.team: the value is 201 bytes long; at most 200 are allowed"),
        (#"{"metric":"accuracy","value":1,"labels":{\#((0..<17).map { #""l\#($0)":"x""# }.joined(separator: ","))}}"#,
         "samples[1].labels: more than 16 labels"),
    ]

    /// A body wrong as a whole: what it says, and how many samples were read before the problem.
    static let badBodies: [(body: String, error: String, read: Int)] = {
        let truncated = #"{"deployment":"churn-prod","samples":[{"metric":"accuracy","value":0.9}"#
        let nan = #"{"deployment":"churn-prod","samples":[{"metric":"accuracy","value":NaN}]}"#
        let trailingComma = #"{"deployment":"churn-prod","samples":[{"metric":"accuracy","value":1},]}"#
        func offset(of text: String, in body: String) -> Int { body.utf8.count - (body.range(of: text).map { body[$0.lowerBound...].utf8.count } ?? 0) }
        return [
            ("", "the body is empty; \(shape)", 0),
            ("not json", "the body is not JSON: expected a JSON object, found 'n' at byte 0", 0),
            ("[]", "the body is an array, not a JSON object; \(shape)", 0),
            (#""churn-prod""#, "the body is a string, not a JSON object; \(shape)", 0),
            (#"{"samples":[]}"#, "deployment: missing (the name of the ModelDeployment the samples are about)", 0),
            (#"{"deployment":"churn-prod"}"#, #"samples: missing (a list of {"metric", "value"} objects)"#, 0),
            (#"{"deployment":"churn-prod","samples":[],"extra":1}"#, #"unknown field "extra" (the fields are deployment and samples)"#, 0),
            (#"{"deployment":"Churn_Prod","samples":[]}"#,
             #"deployment: "Churn_Prod" is not a deployment name (a DNS label: lowercase letters, digits and '-', at most 63)"#, 0),
            (#"{"deployment":7,"samples":[]}"#, "deployment: must be a string (the ModelDeployment's name), not a number", 0),
            (#"{"deployment":"churn-prod","samples":{}}"#, "samples: must be a list of samples, not an object", 0),
            (truncated, "the body is not JSON: it ends where ',' or ']' should be at byte \(truncated.utf8.count) (in samples)", 0),
            (#"{"deployment":"churn-prod","samples":[]} x"#,
             "the body is not JSON: expected the end of the body after the object, found 'x' at byte 41", 0),
            (nan, "the body is not JSON: expected a value, found 'N' at byte \(offset(of: "NaN", in: nan)) (in samples[0].value)", 1),
            (trailingComma, "the body is not JSON: expected a value, found ']' at byte \(offset(of: ",]", in: trailingComma) + 1) (in samples[1])", 2),
        ]
    }()

    /// Every malformed batch gets 400 with the first problem, field path and reason, and
    /// nothing of it reaches the window (each holds a good sample before the bad one); the
    /// refusals are counted, and the daemon goes on accepting good batches.
    @Test func malformedBatchesAreRefusedWholeSayingWhereAndWhy() async throws {
        let watched = try Watched()
        try await Self.with(watched) { daemon in
            let good = #"{"metric":"accuracy","value":0.9}"#
            for (sample, error) in Self.badSamples {
                let answer = try await daemon.pushMetrics(Self.batch(good, sample))
                #expect(answer.status == 400, "\(sample)")
                #expect(answer.contentType == "application/json")
                #expect(answer.fields == ["error": error], "\(sample)")
            }
            for (body, error, _) in Self.badBodies {
                let answer = try await daemon.pushMetrics(body)
                #expect(answer.status == 400, "\(body)")
                #expect(answer.fields == ["error": error], "\(body)")
            }
            #expect(watched.reading.samples == 0, "a refused batch left samples in the window")

            let metrics = try await daemon.get("/metrics").body
            let refused = Self.badSamples.count + Self.badBodies.count
            #expect(Self.counter(metrics, #"cairn_metric_push_requests_total{status="400"}"#) == "\(refused)", "\(metrics)")
            let rejected = 2 * Self.badSamples.count + Self.badBodies.reduce(0) { $0 + $1.read }
            #expect(Self.counter(metrics, #"cairn_metric_samples_total{result="rejected"}"#) == "\(rejected)", "\(metrics)")
            #expect(Self.counter(metrics, #"cairn_metric_samples_total{result="accepted"}"#) == "0")

            let fine = try await daemon.pushMetrics(Self.batch(good))
            #expect(fine.status == 202)
            #expect(watched.reading.samples == 1)
        }
    }

    /// A deployment no Monitor watches is a 404 naming those that are watched; a daemon
    /// without Monitor support answers 404 saying so.
    @Test func anUnwatchedDeploymentAndNoMonitorSupportAre404() async throws {
        let watched = try Watched()
        try await Self.with(watched) { daemon in
            let answer = try await daemon.pushMetrics(Self.batch(#"{"metric":"accuracy","value":0.9}"#, deployment: "churn-staging"))
            #expect(answer.status == 404)
            #expect(answer.body == #"{"error":"no Monitor watches deployment churn-staging","known":["churn-prod","fraud-prod"]}"# + "\n")
            let metrics = try await daemon.get("/metrics").body
            #expect(Self.counter(metrics, #"cairn_metric_push_requests_total{status="404"}"#) == "1", "\(metrics)")
            #expect(Self.counter(metrics, #"cairn_metric_samples_total{result="rejected"}"#) == "1", "\(metrics)")
        }
        try await ServedDaemon.with { daemon in
            let answer = try await daemon.pushMetrics(Self.batch(#"{"metric":"accuracy","value":0.9}"#))
            #expect(answer.status == 404)
            #expect(answer.fields == ["error": "this daemon has no Monitor support configured"])
        }
    }

    /// A body over 4 MiB is refused with 413 whether it declares its length or streams it
    /// chunked; nothing reaches the window.
    @Test func bodiesOver4MiBAreRefused() async throws {
        let watched = try Watched()
        try await Self.with(watched) { daemon in
            let limit = 4 << 20
            let error = "the body is larger than \(limit) bytes; send at most 10000 samples a request"
            let sample = #"{"metric":"accuracy","value":0.75,"labels":{"padding":"\#(String(repeating: "x", count: 180))"}}"#
            let count = limit / sample.utf8.count + 1
            let large = Self.batch(Array(repeating: sample, count: count).joined(separator: ","))
            #expect(large.utf8.count > limit)
            let declared = try await daemon.pushMetrics(large)
            #expect(declared.status == 413)
            #expect(declared.fields == ["error": error])

            let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
            let bytes = Array(large.utf8)
            for start in stride(from: 0, to: bytes.count, by: 64 << 10) {
                continuation.yield(ByteBuffer(bytes: bytes[start..<min(start + (64 << 10), bytes.count)]))
            }
            continuation.finish()
            let streamed = try await daemon.request("/api/v1/metrics", method: .POST, headers: [("content-type", "application/json")],
                                                    body: .stream(stream, length: .unknown))
            #expect(streamed.status == 413)
            #expect(streamed.fields == ["error": error])
            #expect(watched.reading.samples == 0)

            let metrics = try await daemon.get("/metrics").body
            #expect(Self.counter(metrics, #"cairn_metric_push_requests_total{status="413"}"#) == "2", "\(metrics)")
        }
    }
}

struct NotAMonitor: Error {
    let failures: String
}

/// The body's reader alone: numbers as the standard library reads them, and timestamps.
struct MetricPushParsingTests {
    static let now = MetricPushTests.now

    static func values(_ written: [String]) throws -> [Double] {
        let samples = written.map { #"{"metric":"m","value":\#($0)}"# }.joined(separator: ",")
        let body = ByteBuffer(string: #"{"samples":[\#(samples)],"deployment":"d"}"#)
        return try MetricPush.parse(body, now: now).samples.map(\.value)
    }

    @Test func numbersAreReadAsTheStandardLibraryReadsThem() throws {
        let written = ["0", "-0", "0.1", "0.30000000000000004", "1e-7", "2.5E+10", "123456789012345678901234", "1.7976931348623157e308",
                       "5e-324", "-123.456e-5", "9007199254740993", "0.000000000000000000000000000001", "1e22", "1e23", "1.5e-22"]
        let read = try Self.values(written)
        for (text, value) in zip(written, read) {
            #expect(value.bitPattern == Double(text)!.bitPattern, "\(text): \(value) is not \(Double(text)!)")
        }
    }

    @Test func escapedStringsAndWhitespaceAreJSON() throws {
        let body = ByteBuffer(string: " {\n\t\"deployment\" : \"d\",\r\n \"samples\" : [ { \"metric\" : \"m\" , \"value\" : 1 , "
                              + #""labels": {"note": "a \"quoted\" \u00e9 \ud83d\ude00 \\ \/ \n"} } ] } "#)
        let push = try MetricPush.parse(body, now: Self.now)
        #expect(push.deployment == "d")
        #expect(push.samples == [MetricSample(metric: "m", value: 1, labels: ["note": "a \"quoted\" é 😀 \\ / \n"])])
    }

    @Test(arguments: [
        ("2026-05-01T12:00:00Z", 1_777_636_800.0),
        ("2026-05-01t12:00:00z", 1_777_636_800.0),
        ("2026-05-01 12:00:00Z", 1_777_636_800.0),
        ("2026-05-01T11:59:59.250Z", 1_777_636_799.25),
        ("2026-05-01T14:00:00+02:00", 1_777_636_800.0),
        ("2026-05-01T06:30:00.5-05:30", 1_777_636_800.5),
        ("2024-02-29T00:00:00Z", 1_709_164_800.0),
        ("1970-01-01T00:00:00Z", 0.0),
    ])
    func rfc3339TimestampsAreRead(text: String, seconds: Double) throws {
        let date = try #require(RFC3339.date(text))
        #expect(abs(date.timeIntervalSince1970 - seconds) < 1e-6, "\(text)")
    }

    @Test(arguments: ["2026-05-01", "2026-05-01T12:00Z", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-05-01T24:00:00Z",
                      "2026-05-01T12:00:00.Z", "2026-05-01T12:00:00+0200", "2026-05-01T12:00:00+02:00 ", "2026-05-01T12:00:00ZZ", ""])
    func malformedTimestampsAreNot(text: String) {
        #expect(RFC3339.date(text) == nil)
    }
}

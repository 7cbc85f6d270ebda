import CairnCore
import Foundation
import NIOCore

/// A batch pushed to `POST /api/v1/metrics`, read from its body and checked whole:
///
///     {"deployment": "churn-prod",
///      "samples": [{"metric": "accuracy", "value": 0.91, "timestamp": "2026-05-01T12:00:00Z",
///                   "labels": {"version": "3"}}]}
///
/// All or nothing: the first problem refuses the batch, saying where (`samples[12].value`)
/// and why, so a sender fixes its code instead of losing some samples without knowing.
struct MetricPush {
    var deployment: String
    var samples: [MetricSample]

    static let maximumSamples = 10_000
    static let maximumLabels = 16
    /// The longest metric name, label key and label value, in bytes.
    static let maximumLength = 200

    /// Why a batch was refused.
    struct Problem: Error, CustomStringConvertible {
        /// Where: `samples[12].value`; empty for the body as a whole.
        var path: String
        var reason: String
        /// Samples read when it was found, the refused one included (counted as `rejected`).
        var samplesRead = 0

        var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
    }

    /// Reads `body`, checking each timestamp against `now`; throws the first problem.
    static func parse(_ body: ByteBuffer, now: Date) throws(Problem) -> MetricPush {
        let result = body.withUnsafeReadableBytes { bytes in
            var reader = Reader(scanner: JSONScanner(bytes), now: now)
            return Result { () throws(Problem) -> MetricPush in try reader.push() }
        }
        return try result.get()
    }
}

extension MetricPush {
    /// The body's shape, read token by token; `path` is where the reader is, for problems.
    private struct Reader {
        var scanner: JSONScanner
        let now: Date
        var samples: [MetricSample] = []

        static let shapeHint = #"send {"deployment": NAME, "samples": [{"metric": NAME, "value": NUMBER}]}"#

        mutating func push() throws(Problem) -> MetricPush {
            guard let kind = scanner.kindOfNext() else {
                if scanner.atEnd { throw Problem(path: "", reason: "the body is empty; \(Self.shapeHint)") }
                throw notJSON(scanner.unexpected(expecting: "a JSON object"), in: "")
            }
            guard kind == "an object" else { throw Problem(path: "", reason: "the body is \(kind), not a JSON object; \(Self.shapeHint)") }
            var deployment: String?
            var sawSamples = false
            try object(path: "") { (reader, key) throws(Problem) in
                switch key {
                case "deployment":
                    guard deployment == nil else { throw Problem(path: "deployment", reason: "given twice") }
                    let name = try reader.string(path: "deployment", meaning: "the ModelDeployment's name")
                    if let problem = dnsLabelProblem(name) { throw Problem(path: "deployment", reason: problem) }
                    deployment = name
                case "samples":
                    guard !sawSamples else { throw Problem(path: "samples", reason: "given twice") }
                    sawSamples = true
                    try reader.sampleList()
                default:
                    throw Problem(path: "", reason: "unknown field \(quoted(key)) (the fields are deployment and samples)")
                }
            }
            guard scanner.atEnd else { throw notJSON(scanner.unexpected(expecting: "the end of the body after the object"), in: "") }
            guard let deployment else { throw Problem(path: "deployment", reason: "missing (the name of the ModelDeployment the samples are about)") }
            guard sawSamples else { throw Problem(path: "samples", reason: "missing (a list of {\"metric\", \"value\"} objects)") }
            return MetricPush(deployment: deployment, samples: samples)
        }

        private mutating func sampleList() throws(Problem) {
            guard scanner.take(UInt8(ascii: "[")) else { throw wrongType(path: "samples", expected: "a list of samples") }
            if scanner.take(UInt8(ascii: "]")) { return }
            repeat {
                guard samples.count < MetricPush.maximumSamples else {
                    throw Problem(path: "samples", reason: "more than \(MetricPush.maximumSamples) samples in one request; "
                                  + "send at most \(MetricPush.maximumSamples) a request", samplesRead: samples.count + 1)
                }
                do throws(Problem) {
                    samples.append(try sample(index: samples.count))
                } catch {
                    var problem = error
                    problem.samplesRead = samples.count + 1
                    throw problem
                }
            } while try separator(closing: UInt8(ascii: "]"), path: "samples")
        }

        private mutating func sample(index: Int) throws(Problem) -> MetricSample {
            // Made only for a problem: most samples have none.
            func path() -> String { "samples[\(index)]" }
            guard scanner.peek() == UInt8(ascii: "{") else { throw wrongType(path: path(), expected: "an object {\"metric\", \"value\"}") }
            var metric: String?, value: Double?, time: Date?, labels: [String: String]?, sawTime = false
            try object(path: path()) { (reader, key) throws(Problem) in
                switch key {
                case "metric":
                    guard metric == nil else { throw Problem(path: "\(path()).metric", reason: "given twice") }
                    let name = try reader.string(path: "\(path()).metric", meaning: "the metric's name")
                    if let problem = metricNameProblem(name) { throw Problem(path: "\(path()).metric", reason: problem) }
                    metric = name
                case "value":
                    guard value == nil else { throw Problem(path: "\(path()).value", reason: "given twice") }
                    value = try reader.finiteNumber(path: "\(path()).value")
                case "timestamp":
                    guard !sawTime else { throw Problem(path: "\(path()).timestamp", reason: "given twice") }
                    sawTime = true
                    time = try reader.timestamp(path: "\(path()).timestamp")
                case "labels":
                    guard labels == nil else { throw Problem(path: "\(path()).labels", reason: "given twice") }
                    labels = try reader.labels(path: "\(path()).labels")
                default:
                    throw Problem(path: path(), reason: "unknown field \(quoted(key)) (a sample has metric, value, timestamp and labels)")
                }
            }
            guard let metric else { throw Problem(path: "\(path()).metric", reason: "missing") }
            guard let value else { throw Problem(path: "\(path()).value", reason: "missing") }
            return MetricSample(metric: metric, value: value, time: time, labels: labels ?? [:])
        }

        private mutating func finiteNumber(path: String) throws(Problem) -> Double {
            guard scanner.kindOfNext() == "a number" else { throw wrongType(path: path, expected: "a number") }
            let start = scanner.offset
            let value = try syntax(path) { (scanner: inout JSONScanner) throws(JSONScanner.SyntaxError) in try scanner.number() }
            guard value.isFinite else {
                throw Problem(path: path, reason: "\(scanner.text(from: start)) is not a finite number (NaN and the infinities are refused)")
            }
            return value
        }

        /// An RFC 3339 string or Unix seconds, within `MetricTimeBounds` of now; null: when it arrives.
        private mutating func timestamp(path: String) throws(Problem) -> Date? {
            let time: Date
            var unixSeconds = false
            switch scanner.kindOfNext() {
            case "null":
                _ = try syntax(path) { (scanner: inout JSONScanner) throws(JSONScanner.SyntaxError) in try scanner.takeNull() }
                return nil
            case "a string":
                let text = try syntax(path) { (scanner: inout JSONScanner) throws(JSONScanner.SyntaxError) in try scanner.string() }
                guard let date = RFC3339.date(text) else {
                    throw Problem(path: path, reason: "\(quoted(text)) is not an RFC 3339 timestamp such as 2026-05-01T12:00:00Z "
                                  + "or 2026-05-01T14:00:00.250+02:00")
                }
                time = date
            case "a number":
                time = Date(timeIntervalSince1970: try finiteNumber(path: path))
                unixSeconds = true
            default:
                throw wrongType(path: path, expected: "an RFC 3339 string or a number of Unix seconds")
            }
            if let problem = MetricTimeBounds.problem(with: time, now: now) {
                let milliseconds = unixSeconds && time.timeIntervalSince1970 > 1e11 ? "; a number is Unix seconds, not milliseconds" : ""
                throw Problem(path: path, reason: problem + milliseconds)
            }
            return time
        }

        private mutating func labels(path: String) throws(Problem) -> [String: String]? {
            if scanner.kindOfNext() == "null" {
                _ = try syntax(path) { (scanner: inout JSONScanner) throws(JSONScanner.SyntaxError) in try scanner.takeNull() }
                return nil
            }
            guard scanner.peek() == UInt8(ascii: "{") else { throw wrongType(path: path, expected: "an object of strings") }
            var labels: [String: String] = [:]
            try object(path: path) { (reader, key) throws(Problem) in
                let at = labelPath(path, key)
                guard !key.isEmpty else { throw Problem(path: at, reason: "a label needs a name") }
                guard key.utf8.count <= MetricPush.maximumLength else {
                    throw Problem(path: path, reason: "a label name is \(key.utf8.count) bytes long; at most \(MetricPush.maximumLength) are allowed")
                }
                guard labels[key] == nil else { throw Problem(path: at, reason: "given twice") }
                guard labels.count < MetricPush.maximumLabels else {
                    throw Problem(path: path, reason: "more than \(MetricPush.maximumLabels) labels")
                }
                let value = try reader.string(path: at, meaning: "a string")
                guard value.utf8.count <= MetricPush.maximumLength else {
                    throw Problem(path: at, reason: "the value is \(value.utf8.count) bytes long; at most \(MetricPush.maximumLength) are allowed")
                }
                // The hub compares it with the serving version as a number: say so now, not by
                // counting every sample as another version's.
                if key == "version", Int(value).map({ $0 > 0 }) != true {
                    throw Problem(path: at, reason: "\(quoted(value)) is not a version number (a positive integer, as the registry numbers versions)")
                }
                labels[key] = value
            }
            return labels
        }

        // MARK: Tokens

        /// An object's members: `member` reads each value after its key.
        private mutating func object(path: String, _ member: (inout Reader, String) throws(Problem) -> Void) throws(Problem) {
            _ = try syntax(path) { (scanner: inout JSONScanner) throws(JSONScanner.SyntaxError) in try scanner.expect(UInt8(ascii: "{"), "'{'") }
            if scanner.take(UInt8(ascii: "}")) { return }
            repeat {
                let key = try syntax(path) { (scanner: inout JSONScanner) throws(JSONScanner.SyntaxError) in
                    let key = try scanner.string()
                    try scanner.expect(UInt8(ascii: ":"), "':' after a field's name")
                    return key
                }
                try member(&self, key)
            } while try separator(closing: UInt8(ascii: "}"), path: path)
        }

        /// After a member or element: true after ',', false after `closing`.
        private mutating func separator(closing: UInt8, path: String) throws(Problem) -> Bool {
            if scanner.take(UInt8(ascii: ",")) { return true }
            if scanner.take(closing) { return false }
            throw notJSON(scanner.unexpected(expecting: "',' or '\(Character(Unicode.Scalar(closing)))'"), in: path)
        }

        private mutating func string(path: String, meaning: String) throws(Problem) -> String {
            guard scanner.kindOfNext() == "a string" else { throw wrongType(path: path, expected: meaning == "a string" ? "a string" : "a string (\(meaning))") }
            return try syntax(path) { (scanner: inout JSONScanner) throws(JSONScanner.SyntaxError) in try scanner.string() }
        }

        private mutating func wrongType(path: String, expected: String) -> Problem {
            guard let found = scanner.kindOfNext() else { return notJSON(scanner.unexpected(expecting: "a value"), in: path) }
            return Problem(path: path, reason: "must be \(expected), not \(found)")
        }

        private mutating func syntax<T>(_ path: String, _ read: (inout JSONScanner) throws(JSONScanner.SyntaxError) -> T) throws(Problem) -> T {
            do throws(JSONScanner.SyntaxError) {
                return try read(&scanner)
            } catch {
                throw notJSON(error, in: path)
            }
        }

        private func notJSON(_ error: JSONScanner.SyntaxError, in path: String) -> Problem {
            Problem(path: "", reason: "the body is not JSON: \(error.message) at byte \(error.offset)" + (path.isEmpty ? "" : " (in \(path))"))
        }
    }
}

/// `labels.team`, or `labels["a key"]` when the key is not a plain word.
private func labelPath(_ path: String, _ key: String) -> String {
    let plain = !key.isEmpty && key.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0)
        || (0x61...0x7A).contains($0) }
    return plain ? "\(path).\(key)" : "\(path)[\(quoted(key))]"
}

/// `"text"`, as JSON writes it, cut at 60 characters.
func quoted(_ text: String) -> String {
    let shown = text.count > 60 ? String(text.prefix(57)) + "..." : text
    let encoded = (try? JSONEncoder().encode(shown)).map { String(decoding: $0, as: UTF8.self) }
    return encoded ?? "\"\(shown)\""
}

/// Prometheus' metric names (`[a-zA-Z_:][a-zA-Z0-9_:]*`), and the manifests' (which also allow
/// '.' and '-': a Monitor's threshold may name `val.accuracy`), at most 200 bytes.
func metricNameProblem(_ name: String) -> String? {
    let bytes = name.utf8
    guard let first = bytes.first else { return "must not be empty" }
    guard bytes.count <= MetricPush.maximumLength else {
        return "a metric name is \(bytes.count) bytes long; at most \(MetricPush.maximumLength) are allowed"
    }
    func letter(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x5F || byte == 0x3A }
    let valid = letter(first) && bytes.allSatisfy { letter($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x2D }
    return valid ? nil : "\(quoted(name)) is not a metric name (letters, digits, '_', ':', '.' and '-', not starting with a digit)"
}

/// A DNS label (RFC 1123), as every object's name is.
func dnsLabelProblem(_ name: String) -> String? {
    let bytes = name.utf8
    guard let first = bytes.first, let last = bytes.last else { return "must not be empty" }
    func alphanumeric(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
    guard bytes.count <= 63, alphanumeric(first), alphanumeric(last), bytes.allSatisfy({ alphanumeric($0) || $0 == 0x2D }) else {
        return "\(quoted(name)) is not a deployment name (a DNS label: lowercase letters, digits and '-', at most 63)"
    }
    return nil
}

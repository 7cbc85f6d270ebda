public import CairnCore
public import CairnManifests
public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the last read of a Monitor's file stopped, kept by the caller between reads (in the
/// store, so a restart neither counts a file twice nor skips what was appended meanwhile).
public struct FileCursor: Codable, Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modifiedNanoseconds: Int64
    /// jsonl: the bytes read, through the last complete line.
    public var offset: Int64
    /// jsonl: the lines before `offset`, for line numbers in messages.
    public var lines: Int
    /// jsonl: the last read stopped inside a line longer than the read limit; skip to its end.
    public var skippingLine: Bool

    public init(device: UInt64 = 0, inode: UInt64 = 0, size: Int64 = 0, modifiedNanoseconds: Int64 = 0, offset: Int64 = 0,
                lines: Int = 0, skippingLine: Bool = false) {
        self.device = device
        self.inode = inode
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
        self.offset = offset
        self.lines = lines
        self.skippingLine = skippingLine
    }

    func isSameFile(as other: FileCursor) -> Bool { device == other.device && inode == other.inode }

    func isUnchanged(from other: FileCursor) -> Bool {
        isSameFile(as: other) && size == other.size && modifiedNanoseconds == other.modifiedNanoseconds
    }
}

/// What one read of a Monitor's file found.
public struct MetricFileRead: Sendable {
    /// New samples, for the caller to ingest; empty when the file has not changed.
    public var samples: [MetricSample]
    /// Keep it for the next read.
    public var cursor: FileCursor
    /// json: false when the file is as the cursor saw it last (nothing was read).
    public var changed: Bool
    /// jsonl: the read started again from the top (a new file, or one that shrank).
    public var restarted: Bool
    /// jsonl: lines skipped as unreadable in this read (never stops a read).
    public var badLines: Int
    /// jsonl: the first of them, for the status.
    public var firstBadLine: BadLine?
    /// jsonl: the read stopped at its limit; the rest comes next time.
    public var more: Bool

    public struct BadLine: Sendable, Hashable {
        /// 1-based, counted from the top of the file.
        public var number: Int
        public var reason: String

        public init(number: Int, reason: String) {
            self.number = number
            self.reason = reason
        }
    }
}

/// Reads a Monitor's `file` source. The caller has checked `path` against the data roots;
/// this resolves symlinks again, opens what they resolve to and checks, on the open file, that
/// it is a regular file under one of `roots`, so a symlink swapped in between cannot escape.
///
/// - `json`: the whole file (at most `objectLimit` bytes) is one object of metric name to
///   finite number, with an optional `timestamp` (RFC 3339, or Unix seconds) for all of them;
///   without it the file's modification time is the samples' time. Read again only when its
///   identity (device, inode, size, mtime) differs from the cursor's.
/// - `jsonl`: lines `{"metric": M, "value": V, "timestamp": T?, "labels": {…}?}` appended by
///   the serving process, read from the cursor's offset, at most `readLimit` bytes a time,
///   complete lines only (a partial last line waits). A file that shrank or is a new inode is
///   read from the top. A bad line (not JSON, no metric, a value that is not a finite number,
///   a timestamp out of ``MetricTimeBounds``) is skipped and counted. A line without a
///   timestamp has none (the caller's arrival time counts).
public enum MetricFileReader {
    public static func read(path: String, format: MonitorSpec.FileFormat, roots: [String], cursor: FileCursor?, now: Date = Date(),
                            readLimit: Int = 4 << 20, objectLimit: Int = 1 << 20) throws(MetricSourceError) -> MetricFileRead {
        let file = try OpenedFile(path: path, roots: roots)
        defer { file.close() }
        switch format {
        case .json:
            return try readObject(file, cursor: cursor, now: now, limit: objectLimit)
        case .jsonl:
            return try readLines(file, cursor: cursor, now: now, limit: readLimit)
        }
    }

    // MARK: - json

    static func readObject(_ file: OpenedFile, cursor: FileCursor?, now: Date, limit: Int) throws(MetricSourceError) -> MetricFileRead {
        let identity = file.identity
        if let cursor, identity.isUnchanged(from: cursor) {
            return MetricFileRead(samples: [], cursor: cursor, changed: false, restarted: false, badLines: 0, more: false)
        }
        guard identity.size <= Int64(limit) else {
            throw MetricSourceError("\(file.path) holds \(identity.size) bytes; a json metrics file holds at most \(limit) "
                                    + "(one object of metric name to number); for a stream of samples use format: jsonl")
        }
        let data = try file.read(from: 0, count: Int(identity.size))
        let fields: [String: JSONScalar]
        do {
            fields = try JSONDecoder().decode([String: JSONScalar].self, from: data)
        } catch {
            throw MetricSourceError("\(file.path) is not one JSON object of metric name to number (such as {\"accuracy\": 0.93})")
        }
        var time = Date(timeIntervalSince1970: Double(identity.modifiedNanoseconds) / 1e9)
        if let stamp = fields["timestamp"] {
            switch stamp.parsedTime() {
            case .success(let explicit): time = explicit
            case .failure(let reason): throw MetricSourceError("\(file.path): \"timestamp\" \(reason.message)")
            }
        }
        if let problem = MetricTimeBounds.problem(with: time, now: now) {
            let whose = fields["timestamp"] == nil ? "its modification time" : "its \"timestamp\""
            throw MetricSourceError("\(file.path) is not read: \(whose) is out of bounds: \(problem)")
        }
        var samples: [MetricSample] = []
        for (metric, value) in fields.sorted(by: { $0.key < $1.key }) where metric != "timestamp" {
            guard case .number(let number) = value, number.isFinite else {
                throw MetricSourceError("\(file.path): the value of \"\(metric.prefix(100))\" is \(value.kind), not a finite number")
            }
            samples.append(MetricSample(metric: metric, value: number, time: time))
        }
        var next = identity
        next.offset = identity.size
        return MetricFileRead(samples: samples, cursor: next, changed: true, restarted: false, badLines: 0, more: false)
    }

    // MARK: - jsonl

    static func readLines(_ file: OpenedFile, cursor: FileCursor?, now: Date, limit: Int) throws(MetricSourceError) -> MetricFileRead {
        let identity = file.identity
        var position = identity
        var restarted = false
        if let cursor, cursor.isSameFile(as: identity), cursor.offset <= identity.size {
            position.offset = cursor.offset
            position.lines = cursor.lines
            position.skippingLine = cursor.skippingLine
        } else {
            restarted = cursor != nil
        }
        let available = Int(min(identity.size - position.offset, Int64(limit)))
        var result = MetricFileRead(samples: [], cursor: position, changed: available > 0, restarted: restarted, badLines: 0, more: false)
        guard available > 0 else { return result }
        let data = try file.read(from: position.offset, count: available)
        let newline = UInt8(ascii: "\n")
        guard let lastNewline = data.lastIndex(of: newline) else {
            // No complete line: a partial one waits, unless it alone fills the limit.
            if available == limit {
                if !position.skippingLine {
                    result.badLines = 1
                    result.firstBadLine = .init(number: position.lines + 1, reason: "it is longer than \(limit) bytes")
                }
                result.cursor.offset += Int64(available)
                result.cursor.skippingLine = true
                result.more = true
            }
            return result
        }
        let decoder = JSONDecoder()
        var start = data.startIndex
        var lineNumber = position.lines
        while start <= lastNewline {
            let end = data[start...lastNewline].firstIndex(of: newline) ?? lastNewline
            lineNumber += 1
            var line = data[start..<end]
            start = end + 1
            if position.skippingLine {
                position.skippingLine = false  // The rest of the overlong line, already counted.
                continue
            }
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            switch sample(from: line, decoder: decoder, now: now) {
            case .success(let sample):
                result.samples.append(sample)
            case .failure(let reason):
                result.badLines += 1
                if result.firstBadLine == nil { result.firstBadLine = .init(number: lineNumber, reason: reason.message) }
            }
        }
        result.cursor.offset = position.offset + Int64(lastNewline - data.startIndex + 1)
        result.cursor.lines = lineNumber
        result.cursor.skippingLine = false
        result.more = result.cursor.offset < identity.size && available == limit
        return result
    }

    static func sample(from line: Data, decoder: JSONDecoder, now: Date) -> Result<MetricSample, MetricSourceError> {
        guard let fields = try? decoder.decode(LineFields.self, from: line) else {
            return .failure(MetricSourceError("not a JSON object such as {\"metric\": \"accuracy\", \"value\": 0.93}"))
        }
        guard case .text(let metric)? = fields.metric, !metric.isEmpty else {
            return .failure(MetricSourceError("no \"metric\" name"))
        }
        guard case .number(let value)? = fields.value, value.isFinite else {
            return .failure(MetricSourceError("the value of \(metric.prefix(100)) is \(fields.value?.kind ?? "missing"), not a finite number"))
        }
        var time: Date?
        if let stamp = fields.timestamp, stamp != .null {
            switch stamp.parsedTime() {
            case .success(let parsed):
                if let problem = MetricTimeBounds.problem(with: parsed, now: now) { return .failure(MetricSourceError(problem)) }
                time = parsed
            case .failure(let reason):
                return .failure(MetricSourceError("\"timestamp\" \(reason.message)"))
            }
        }
        var labels: [String: String] = [:]
        for (key, value) in fields.labels ?? [:] {
            switch value {
            case .text(let text): labels[key] = text
            case .number(let number) where number == number.rounded() && abs(number) < 1e15: labels[key] = String(Int64(number))
            default: return .failure(MetricSourceError("the label \(key.prefix(100)) is \(value.kind), not a string"))
            }
        }
        return .success(MetricSample(metric: metric, value: value, time: time, labels: labels))
    }

    struct LineFields: Decodable {
        var metric: JSONScalar?
        var value: JSONScalar?
        var timestamp: JSONScalar?
        var labels: [String: JSONScalar]?
    }
}

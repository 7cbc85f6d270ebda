import Foundation
import Glibc

/// A log file that keeps the tail of what is written to it, within `cap` bytes: it writes into
/// `log` until that holds half the cap, then moves it to `log.1` (dropping the older half) and
/// starts again. `finish` puts the two halves together in `log`, behind a first line saying
/// how many bytes were cut. Memory stays at one read buffer however much is written.
struct CappedLog {
    let url: URL
    private let previous: URL
    private let half: Int
    private var descriptor: Int32
    private var current = 0
    private var hasPrevious = false
    private var previousBytes = 0
    private(set) var written = 0
    private(set) var cut = 0
    /// Why writing the log failed (strerror), once it has; what comes after is dropped.
    private(set) var error: String?
    /// Logs hold what the command printed, secrets it was passed included: owner only, like job.json.
    static let mode: mode_t = 0o600

    /// Room for the note about the cut, so the assembled log stays within the cap.
    private static let noteRoom = 128

    init(url: URL, cap: Int) throws {
        self.url = url
        previous = url.appendingPathExtension("1")
        half = max(4096, (cap - Self.noteRoom) / 2)
        unlink(previous.path)
        descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, Self.mode)
        guard descriptor >= 0 else { throw RunFiles.fileError("could not open the log \(url.path)") }
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes[...]
        written += bytes.count
        while !rest.isEmpty, error == nil {
            if current == half { rotate() }
            let count = min(half - current, rest.count)
            guard writeAll(UnsafeRawBufferPointer(rebasing: rest.prefix(count))) else { return }
            current += count
            rest = rest.dropFirst(count)
        }
    }

    private mutating func rotate() {
        close(descriptor)
        if hasPrevious { cut += previousBytes }
        rename(url.path, previous.path)
        hasPrevious = true
        previousBytes = current
        current = 0
        descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, Self.mode)
        if descriptor < 0 { error = String(cString: strerror(errno)) }
    }

    /// Writes all of `bytes`; false (and `error` set) when that fails. A full disk loses log
    /// lines, never the run.
    private mutating func writeAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard descriptor >= 0 else { return false }
        guard var base = bytes.baseAddress else { return true }
        var remaining = bytes.count
        while remaining > 0 {
            let count = write(descriptor, base, remaining)
            if count < 0 {
                let number = errno
                if number == EINTR { continue }
                error = String(cString: strerror(number))
                return false
            }
            if count == 0 {
                error = "the log accepted no more bytes"
                return false
            }
            base += count
            remaining -= count
        }
        return true
    }

    /// Closes the log; after a rotation, assembles note + older half + newer half in `log`.
    mutating func finish() {
        if descriptor >= 0 { fsync(descriptor); close(descriptor) }
        descriptor = -1
        guard hasPrevious else { return }
        let assembled = url.appendingPathExtension("assembled")
        let created = open(assembled.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, Self.mode)
        guard created >= 0 else {
            error = error ?? String(cString: strerror(errno))
            return
        }
        let output = FileHandle(fileDescriptor: created, closeOnDealloc: false)
        do {
            // `write(contentsOf:)` throws where `write(_:)` would trap (a full disk).
            if cut > 0 { try output.write(contentsOf: Data("[cairn: the first \(cut) bytes of this log were cut]\n".utf8)) }
            for part in [previous, url] {
                guard let input = FileHandle(forReadingAtPath: part.path) else { continue }
                defer { try? input.close() }
                while let piece = try input.read(upToCount: 1 << 20), !piece.isEmpty { try output.write(contentsOf: piece) }
            }
            try output.synchronize()
            close(created)
        } catch {
            // Both halves stay as they are: `log` the newer, `log.1` the older.
            close(created)
            unlink(assembled.path)
            self.error = self.error ?? CappedLog.reason(error)
            return
        }
        rename(assembled.path, url.path)
        unlink(previous.path)
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? CocoaError, let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError,
           underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return "\(error)"
    }
}

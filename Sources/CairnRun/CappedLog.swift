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

    /// Room for the note about the cut, so the assembled log stays within the cap.
    private static let noteRoom = 128

    init(url: URL, cap: Int) throws {
        self.url = url
        previous = url.appendingPathExtension("1")
        half = max(4096, (cap - Self.noteRoom) / 2)
        unlink(previous.path)
        descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw RunFiles.fileError("could not open the log \(url.path)") }
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes[...]
        written += bytes.count
        while !rest.isEmpty {
            if current == half { rotate() }
            let count = min(half - current, rest.count)
            writeAll(UnsafeRawBufferPointer(rebasing: rest.prefix(count)))
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
        descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) {
        guard descriptor >= 0, var base = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let count = write(descriptor, base, remaining)
            if count < 0 {
                if errno == EINTR { continue }
                return  // A full disk loses log lines, never the run.
            }
            base += count
            remaining -= count
        }
    }

    /// Closes the log; after a rotation, assembles note + older half + newer half in `log`.
    mutating func finish() {
        if descriptor >= 0 { fsync(descriptor); close(descriptor) }
        descriptor = -1
        guard hasPrevious else { return }
        let assembled = url.appendingPathExtension("assembled")
        guard FileManager.default.createFile(atPath: assembled.path, contents: nil),
              let output = FileHandle(forWritingAtPath: assembled.path) else { return }
        defer { try? output.close() }
        if cut > 0 { output.write(Data("[cairn: the first \(cut) bytes of this log were cut]\n".utf8)) }
        for part in [previous, url] {
            guard let input = FileHandle(forReadingAtPath: part.path) else { continue }
            while let piece = try? input.read(upToCount: 1 << 20), !piece.isEmpty { output.write(piece) }
            try? input.close()
        }
        try? output.synchronize()
        rename(assembled.path, url.path)
        unlink(previous.path)
    }
}

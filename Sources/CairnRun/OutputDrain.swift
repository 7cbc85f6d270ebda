import Foundation
import Glibc

/// Reads a child's captured streams on one thread with poll(2), both at once, so that neither
/// pipe fills up (a pipe holds 64 KiB) and blocks the child while the other is being read.
///
/// Reading ends at end of file on both pipes. The runner kills the child's process group when
/// the child exits, so normally that comes at once. A process that left the group and still
/// holds a pipe cannot keep the reader for ever: once the child has exited (the runner closes
/// the wake pipe), reading stops after `linger` whether or not the pipes have closed.
enum OutputDrain {
    struct Stream: Sendable {
        let descriptor: Int32
        let limit: Int
    }

    /// Starts the reading thread, which calls `finish` with what the two streams held (empty for
    /// a stream that is nil) and closes their descriptors. Returns the wake descriptor to close
    /// when the child has exited, or nil if there was none to spare.
    static func start(standardOutput: Stream?, standardError: Stream?, linger: Duration,
                      finish: @escaping @Sendable (CapturedOutput, CapturedOutput) -> Void) -> Int32? {
        let wake = try? GNUExtensions.makePipe().get()
        let thread = Thread {
            let outputs = drain([standardOutput, standardError], wake: wake?.read, linger: linger)
            if let wake { _ = close(wake.read) }
            finish(outputs[0], outputs[1])
        }
        thread.name = "cairn-run-output"
        thread.start()
        return wake?.write
    }

    private static func drain(_ streams: [Stream?], wake: Int32?, linger: Duration) -> [CapturedOutput] {
        var buffers = streams.map { TailBuffer(limit: $0?.limit ?? 0) }
        var open = streams.map { $0?.descriptor }
        defer { for descriptor in open.compactMap({ $0 }) { _ = close(descriptor) } }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer { chunk.deallocate() }
        var deadline: ContinuousClock.Instant?

        while open.contains(where: { $0 != nil }) {
            var descriptors = open.compactMap { $0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if let wake, deadline == nil { descriptors.append(pollfd(fd: wake, events: Int16(POLLIN), revents: 0)) }
            var timeout: Int32 = -1
            if let deadline {
                let remaining = deadline - .now
                guard remaining > .zero else { break }
                timeout = Int32(clamping: remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1)
            }
            let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for entry in descriptors where entry.revents != 0 {
                if entry.fd == wake {
                    deadline = .now + linger
                    continue
                }
                guard let index = open.firstIndex(of: entry.fd) else { continue }
                let count = read(entry.fd, chunk.baseAddress, chunk.count)
                if count > 0 {
                    buffers[index].append(UnsafeRawBufferPointer(rebasing: chunk[..<count]))
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    _ = close(entry.fd)
                    open[index] = nil
                }
            }
        }
        return buffers.map { $0.finish() }
    }
}

/// Keeps the last `limit` bytes of a stream in a ring, so memory never exceeds the limit
/// however much the child writes.
struct TailBuffer {
    let limit: Int
    private(set) var totalBytes = 0
    private var storage: [UInt8] = []
    /// Where the oldest byte is once the ring is full.
    private var start = 0

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        totalBytes += chunk.count
        guard limit > 0, !chunk.isEmpty else { return }
        if chunk.count >= limit {
            storage = Array(chunk[(chunk.count - limit)...])
            start = 0
            return
        }
        var rest = chunk[...]
        let room = limit - storage.count
        if room > 0 {
            storage.append(contentsOf: rest.prefix(room))
            rest = rest.dropFirst(room)
        }
        while !rest.isEmpty {
            let count = min(limit - start, rest.count)
            let source = UnsafeRawBufferPointer(rebasing: rest.prefix(count))
            storage.withUnsafeMutableBytes { target in
                UnsafeMutableRawBufferPointer(rebasing: target[start..<(start + count)]).copyMemory(from: source)
            }
            start = (start + count) % limit
            rest = rest.dropFirst(count)
        }
    }

    /// The kept bytes, oldest first.
    func finish() -> CapturedOutput {
        CapturedOutput(bytes: Array(storage[start...] + storage[..<start]), totalBytes: totalBytes)
    }
}

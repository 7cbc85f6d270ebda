import ArgumentParser
import CairnCore
import CairnStore
import Foundation

extension Cairn {
    /// Named apart from `Logs`, which sets up Cairn's own logging.
    struct LogsCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "logs",
            abstract: "Print a run's log (its standard output and error together).",
            discussion: """
            RUN-ID is a run's id, or the start of one that no other run shares (`cairn runs` lists \
            them). With --follow, keeps printing what the run writes until its record says it is \
            over, then exits; a run not yet started is waited for. A skipped run has no log of its \
            own: `cairn runs RUN-ID` names the run whose outputs it reused.

            Exit code 0 when the log was printed (with --follow: once the run is over); 1 when \
            RUN-ID matches no run or several, or the run has no log (not started, skipped, or its \
            log was removed by `cairn gc`); 2 usage error; 3 when the state or the log cannot be read.

            Examples:
              cairn logs 3f2a9c
              cairn logs 3f2a9c --tail 50
              cairn logs 3f2a9c --follow
            """)

        @Argument(help: "The run: its id, or the start of it.")
        var runID: String

        @Flag(help: "Keep printing as the log grows, until the run is over.")
        var follow = false

        @Option(help: "Print only the last N lines (then, with --follow, what follows).")
        var tail: Int?

        @OptionGroup var location: StateOptions

        /// How often --follow looks at the log and the run's record.
        static let pollInterval: Duration = .milliseconds(200)

        func validate() throws {
            if let tail, tail < 0 { throw ValidationError("--tail must be 0 or more") }
        }

        func run() async throws {
            let store = try location.openStore()
            var record = try RunText.find(runID, in: store)
            // Wait for the log to exist, while the run may still write one.
            while !Self.hasLog(record) {
                guard follow, !record.state.isFinal else { throw CairnExit.invalid(Self.noLog(record)) }
                try await Task.sleep(for: Self.pollInterval)
                record = try store.run(id: record.id) ?? record
            }
            guard let path = record.logPath else { return }
            let handle: FileHandle
            do {
                handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            } catch {
                throw CairnExit.unreadable("cannot read the log of run \(record.id): \(describe(error))")
            }
            defer { try? handle.close() }
            if let tail {
                try handle.seek(toOffset: try Self.offset(ofLast: tail, in: handle))
            }
            try Self.copyAvailable(from: handle)
            guard follow else { return }
            while !record.state.isFinal {
                try await Task.sleep(for: Self.pollInterval)
                try Self.copyAvailable(from: handle)
                record = try store.run(id: record.id) ?? record
            }
            // The executor writes the last of the log before it records the end.
            try Self.copyAvailable(from: handle)
        }

        static func hasLog(_ record: RunRecord) -> Bool {
            record.logPath.map { FileManager.default.fileExists(atPath: $0) } ?? false
        }

        static func noLog(_ record: RunRecord) -> String {
            if let path = record.logPath {
                return "error: the log of run \(record.id) (\(path)) is gone; `cairn gc` removes the logs of older runs"
            }
            switch record.state {
            case .skipped:
                return "error: run \(record.id) was skipped and has no log"
                    + (record.reused.map { "; the run whose outputs it reused does: cairn logs \($0)" } ?? "")
            case .submitted, .running:
                return "error: run \(record.id) has no log yet (it is \(record.state.rawValue)); --follow waits for it"
            default:
                return "error: run \(record.id) has no log (it is \(record.state.rawValue))"
            }
        }

        /// Writes what the file holds past the handle's offset to standard output.
        static func copyAvailable(from handle: FileHandle) throws {
            while let piece = try handle.read(upToCount: 1 << 16), !piece.isEmpty {
                FileHandle.standardOutput.write(piece)
            }
        }

        /// Where the last `lines` lines start (a final newline ends the last line, it does not
        /// start another), read backwards from the end in 64 KiB pieces.
        static func offset(ofLast lines: Int, in handle: FileHandle) throws -> UInt64 {
            let size = try handle.seekToEnd()
            guard lines > 0 else { return size }
            var position = size
            var seen = 0
            while position > 0 {
                let length = min(UInt64(1 << 16), position)
                position -= length
                try handle.seek(toOffset: position)
                let piece = Array(try handle.read(upToCount: Int(length)) ?? Data())
                for index in piece.indices.reversed() where piece[index] == UInt8(ascii: "\n") {
                    let absolute = position + UInt64(index)
                    if absolute == size - 1 { continue }
                    seen += 1
                    if seen == lines { return absolute + 1 }
                }
            }
            return 0
        }
    }
}

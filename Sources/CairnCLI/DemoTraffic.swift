import AsyncHTTPClient
import Foundation
import NIOCore

/// The demo's client of the model it serves: one prediction, or a stream of them while a
/// version goes out, counting failures and which version answered.
struct DemoTraffic {
    let port: Int
    /// The process-wide client: never shut down, so no error path can trap on freeing it.
    private let client = HTTPClient.shared

    init(port: Int) {
        self.port = port
    }

    /// What the server said to one prediction (its JSON), or why it did not answer.
    func predict(_ features: [Double] = [0.5, 0.2, 0.8, 0.1]) async -> Result<String, any Error> {
        do {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/predict")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: "{\"features\": \(features)}"))
            let response = try await client.execute(request, timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 1 << 20)
            let text = String(buffer: body)
            guard response.status == .ok else { return .failure(DemoError("HTTP \(response.status.code): \(text)")) }
            return .success(text)
        } catch {
            return .failure(error)
        }
    }

    /// Calls the server over and over until `body` returns, and says how it went.
    func during<T>(_ body: () async throws -> T) async throws -> (T, Tally) {
        let load = Task {
            var tally = Tally()
            while !Task.isCancelled {
                switch await predict() {
                case .success(let text):
                    let version = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["version"] as? String ?? "?"
                    if tally.versions.last?.version != version { tally.versions.append((version, 0)) }
                    tally.versions[tally.versions.count - 1].count += 1
                case .failure(let error):
                    if !Task.isCancelled {
                        tally.failed += 1
                        tally.lastError = "\(error)"
                    }
                }
            }
            return tally
        }
        let result: T
        do {
            result = try await body()
        } catch {
            load.cancel()
            throw error
        }
        load.cancel()
        return (result, await load.value)
    }

    struct Tally {
        var versions: [(version: String, count: Int)] = []
        var failed = 0
        var lastError: String?

        var summary: String {
            let total = versions.reduce(0) { $0 + $1.count } + failed
            let answered = versions.map { "churn@\($0.version) (\($0.count))" }.joined(separator: ", then ")
            return "\(total) requests while it went out, \(failed) failed\(lastError.map { " (last: \($0))" } ?? ""); answered by \(answered)"
        }
    }

    struct DemoError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// Where the daemon listens: `--listen 127.0.0.1:8080`, `--listen 8080` (loopback),
/// `--listen 0.0.0.0:8080`, `--listen [::1]:8080`. Port 0 lets the system pick (the daemon
/// logs the port it got).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int) {
        self.host = host
        self.port = port
    }

    public init?(parsing text: String) {
        var host = "127.0.0.1"
        var portText = Substring(text)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            guard !text[..<colon].contains(":") else { return nil }
            if colon != text.startIndex { host = String(text[..<colon]) }
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == " " }),
              let port = Int(portText), (0...65535).contains(port) else { return nil }
        self.host = host
        self.port = port
    }

    /// Whether only this machine can connect.
    public var isLoopback: Bool {
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return host == "localhost" || host == "::1"
            || (octets.count == 4 && octets.first == "127" && octets.allSatisfy { UInt8($0) != nil })
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

public import Foundation
import Crypto

/// The forges whose push webhooks Cairn reads, as the last part of
/// `POST /api/v1/webhooks/{provider}`.
public enum WebhookProvider: String, CaseIterable, Sendable {
    case github, gitlab, gitea, generic

    /// The header that proves the sender knows the secret.
    var signatureHeader: String {
        switch self {
        case .github: "x-hub-signature-256"
        case .gitlab: "x-gitlab-token"
        case .gitea: "x-gitea-signature"
        case .generic: "x-cairn-signature"
        }
    }

    /// The headers that name one delivery (a redelivery keeps it), first found wins.
    var deliveryHeaders: [String] {
        switch self {
        case .github: ["x-github-delivery"]
        case .gitlab: ["idempotency-key", "x-gitlab-event-uuid"]
        case .gitea: ["x-gitea-delivery"]
        case .generic: ["x-cairn-delivery"]
        }
    }

    /// The header that names the event, and the value a push has (nil: every delivery is a push).
    var event: (header: String, push: String)? {
        switch self {
        case .github: ("x-github-event", "push")
        case .gitlab: ("x-gitlab-event", "Push Hook")
        case .gitea: ("x-gitea-event", "push")
        case .generic: nil
        }
    }
}

/// What one webhook delivery comes to, decided before anything happens.
public enum WebhookVerdict: Equatable, Sendable {
    /// A verified push to the tracked branch (or a generic poke): the engine looks now.
    case trigger(delivery: String?)
    /// Verified, and nothing to do: a push to another branch or a tag, or another event.
    case ignored(String)
    /// GitHub's `ping` when the hook is registered: verified, answered, nothing else.
    case ping
    /// A delivery id already handled: verified, and not acted on twice.
    case replayed(String)
    /// A missing or wrong signature or token: nothing is read beyond it.
    case unauthorized(String)
    /// Verified, but the body is not the JSON a push has.
    case malformed(String)

    /// The `result` label of `cairn_webhooks_total` and the JSON answer.
    public var result: String {
        switch self {
        case .trigger: "triggered"
        case .ignored: "ignored"
        case .ping: "ping"
        case .replayed: "replayed"
        case .unauthorized: "unauthorized"
        case .malformed: "malformed"
        }
    }
}

/// Checks a delivery against the shared secret, then reads what it asks for. The signature
/// is checked over the exact bytes received, before the body is parsed, and compared in
/// constant time; only a verified delivery's id is remembered, so a forged one cannot
/// shadow a real delivery.
public struct WebhookVerifier: Sendable {
    private let secret: [UInt8]
    /// SHA-256 of the secret: GitLab sends the token itself, compared as digests so that
    /// neither its content nor its length shows in the time taken.
    private let secretDigest: [UInt8]
    /// The branch Cairn tracks, as a push names it.
    private let trackedRef: String
    private let replays: ReplayGuard

    public init(secret: some DataProtocol, branch: String, replays: ReplayGuard = ReplayGuard()) {
        let bytes = Array(secret)
        self.secret = bytes
        secretDigest = Array(SHA256.hash(data: bytes))
        trackedRef = "refs/heads/" + branch
        self.replays = replays
    }

    /// `headers`: the request's header fields, names lower-cased.
    public func verdict(_ provider: WebhookProvider, headers: [String: String], body: some DataProtocol) -> WebhookVerdict {
        if let problem = signatureProblem(provider, headers: headers, body: body) { return .unauthorized(problem) }
        if provider == .github, headers["x-github-event"] == "ping" { return .ping }
        if let event = provider.event, headers[event.header] != event.push {
            return .ignored("the event is \(headers[event.header].map { "\"\($0)\"" } ?? "not named"), not \(event.push)")
        }
        let ref: String?
        do {
            ref = try Self.pushedRef(body, required: provider != .generic)
        } catch {
            return .malformed("\(error)")
        }
        if let ref, ref != trackedRef {
            return .ignored("a push to \(ref); Cairn tracks \(trackedRef)")
        }
        let delivery = provider.deliveryHeaders.lazy.compactMap { headers[$0] }.first { !$0.isEmpty }
        if let delivery, !replays.firstSight(of: "\(provider.rawValue):\(delivery)") { return .replayed(delivery) }
        return .trigger(delivery: delivery)
    }

    /// What is wrong with the signature header before the body is read: missing, or not the
    /// form the forge sends. nil when the body must be read to tell.
    public func headerProblem(_ provider: WebhookProvider, headers: [String: String]) -> String? {
        guard let given = headers[provider.signatureHeader], !given.isEmpty else { return "no \(provider.signatureHeader) header" }
        switch provider {
        case .gitlab:
            // The token itself, checked at once: no body is read for a wrong one.
            let digest = Array(SHA256.hash(data: Array(given.utf8)))
            return constantTimeEqual(digest, secretDigest) ? nil : "the token does not match"
        case .github, .generic:
            guard given.hasPrefix("sha256=") else { return "\(provider.signatureHeader) does not start with sha256=" }
            return Self.hexProblem(given.dropFirst("sha256=".count), header: provider.signatureHeader)
        case .gitea:
            return Self.hexProblem(Substring(given), header: provider.signatureHeader)
        }
    }

    private static func hexProblem(_ hex: Substring, header: String) -> String? {
        hex.count == 2 * SHA256.byteCount && bytes(fromHex: hex) != nil ? nil : "\(header) is not a SHA-256 HMAC (64 hex digits)"
    }

    /// Why the delivery does not prove it knows the secret, or nil when it does.
    func signatureProblem(_ provider: WebhookProvider, headers: [String: String], body: some DataProtocol) -> String? {
        if let problem = headerProblem(provider, headers: headers) { return problem }
        guard provider != .gitlab, let given = headers[provider.signatureHeader] else { return nil }
        let hex = provider == .gitea ? Substring(given) : given.dropFirst("sha256=".count)
        guard let mac = bytes(fromHex: hex) else { return "\(provider.signatureHeader) is not a SHA-256 HMAC (64 hex digits)" }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: SymmetricKey(data: secret))
            ? nil : "the signature does not match"
    }

    /// The `ref` a push body names. A generic delivery may leave the body empty or omit `ref`.
    static func pushedRef(_ body: some DataProtocol, required: Bool) throws -> String? {
        if body.isEmpty, !required { return nil }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(body))
        } catch {
            throw BodyProblem(message: "the body is not JSON (register the webhook with content type application/json)")
        }
        guard let fields = object as? [String: Any] else { throw BodyProblem(message: "the body is not a JSON object") }
        guard let ref = fields["ref"] else {
            if required { throw BodyProblem(message: "the body has no \"ref\"") }
            return nil
        }
        guard let text = ref as? String else { throw BodyProblem(message: "\"ref\" is not a string") }
        return text
    }

    struct BodyProblem: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

/// Compares two byte strings in time that depends on their length only.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}

private func bytes(fromHex hex: Substring) -> [UInt8]? {
    var result: [UInt8] = []
    result.reserveCapacity(hex.count / 2)
    var high: UInt8?
    for character in hex.utf8 {
        let value: UInt8
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): value = character - UInt8(ascii: "A") + 10
        default: return nil
        }
        if let first = high {
            result.append(first << 4 | value)
            high = nil
        } else {
            high = value
        }
    }
    return high == nil ? result : nil
}

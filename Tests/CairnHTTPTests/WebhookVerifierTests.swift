import Crypto
import Foundation
import Testing
@testable import CairnHTTP

/// The verdicts a delivery comes to, from the bytes and headers alone (no server).
@Suite struct WebhookVerifierTests {
    static let secret = "It's a Secret to Everybody"
    static let push = #"{"ref":"refs/heads/main","after":"0123"}"#

    static func signature(_ body: String, secret: String = secret) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: Data(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
    }

    func verifier() -> WebhookVerifier { WebhookVerifier(secret: Data(Self.secret.utf8), branch: "main") }

    @Test func gitHubExample() {
        // GitHub's documented example: this secret and payload give this signature.
        let expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        #expect(Self.signature("Hello, World!") == expected)
        let verdict = verifier().verdict(.github, headers: ["x-hub-signature-256": "sha256=" + expected, "x-github-event": "push"],
                                         body: Data("Hello, World!".utf8))
        // Signed right, but not a push body: refused after the signature, as malformed.
        #expect(verdict == .malformed("the body is not JSON (register the webhook with content type application/json)"))
    }

    @Test func signedPushesTrigger() {
        let v = verifier()
        let body = Data(Self.push.utf8)
        let sig = Self.signature(Self.push)
        #expect(v.verdict(.github, headers: ["x-hub-signature-256": "sha256=" + sig, "x-github-event": "push",
                                             "x-github-delivery": "a"], body: body) == .trigger(delivery: "a"))
        #expect(v.verdict(.gitea, headers: ["x-gitea-signature": sig, "x-gitea-event": "push", "x-gitea-delivery": "b"],
                          body: body) == .trigger(delivery: "b"))
        #expect(v.verdict(.gitlab, headers: ["x-gitlab-token": Self.secret, "x-gitlab-event": "Push Hook",
                                             "x-gitlab-event-uuid": "c"], body: body) == .trigger(delivery: "c"))
        #expect(v.verdict(.generic, headers: ["x-cairn-signature": "sha256=" + sig], body: body) == .trigger(delivery: nil))
        // A generic poke: an empty body, signed.
        #expect(v.verdict(.generic, headers: ["x-cairn-signature": "sha256=" + Self.signature("")], body: Data())
                == .trigger(delivery: nil))
    }

    @Test(arguments: [
        ("wrong", "sha256=" + String(repeating: "0", count: 64), "the signature does not match"),
        ("missing", nil, "no x-hub-signature-256 header"),
        ("truncated", "sha256=" + String(WebhookVerifierTests.signature(WebhookVerifierTests.push).prefix(40)),
         "x-hub-signature-256 is not a SHA-256 HMAC (64 hex digits)"),
        ("no prefix", WebhookVerifierTests.signature(WebhookVerifierTests.push), "x-hub-signature-256 does not start with sha256="),
        ("not hex", "sha256=" + String(repeating: "z", count: 64), "x-hub-signature-256 is not a SHA-256 HMAC (64 hex digits)"),
        ("other secret", "sha256=" + WebhookVerifierTests.signature(WebhookVerifierTests.push, secret: "guess"), "the signature does not match"),
    ] as [(String, String?, String)])
    func badGitHubSignatures(_ name: String, header: String?, problem: String) {
        var headers = ["x-github-event": "push", "x-github-delivery": "d-\(name)"]
        headers["x-hub-signature-256"] = header
        #expect(verifier().verdict(.github, headers: headers, body: Data(Self.push.utf8)) == .unauthorized(problem))
    }

    @Test func aSignatureCoversTheExactBytes() {
        // One byte changed after signing: refused.
        let sig = Self.signature(Self.push)
        let tampered = Self.push.replacingOccurrences(of: "main", with: "mainx")
        #expect(verifier().verdict(.gitea, headers: ["x-gitea-signature": sig, "x-gitea-event": "push"], body: Data(tampered.utf8))
                == .unauthorized("the signature does not match"))
    }

    @Test func gitLabTokens() {
        let v = verifier()
        let body = Data(Self.push.utf8)
        #expect(v.verdict(.gitlab, headers: ["x-gitlab-token": "It's a Secret", "x-gitlab-event": "Push Hook"], body: body)
                == .unauthorized("the token does not match"))
        #expect(v.verdict(.gitlab, headers: ["x-gitlab-event": "Push Hook"], body: body) == .unauthorized("no x-gitlab-token header"))
        #expect(v.verdict(.gitlab, headers: ["x-gitlab-token": "", "x-gitlab-event": "Push Hook"], body: body)
                == .unauthorized("no x-gitlab-token header"))
    }

    @Test func otherBranchesTagsAndEventsAreIgnored() {
        let v = verifier()
        let other = #"{"ref":"refs/heads/dev"}"#
        #expect(v.verdict(.github, headers: ["x-hub-signature-256": "sha256=" + Self.signature(other), "x-github-event": "push"],
                          body: Data(other.utf8)) == .ignored("a push to refs/heads/dev; Cairn tracks refs/heads/main"))
        let tag = #"{"ref":"refs/tags/v1"}"#
        #expect(v.verdict(.gitea, headers: ["x-gitea-signature": Self.signature(tag), "x-gitea-event": "push"],
                          body: Data(tag.utf8)) == .ignored("a push to refs/tags/v1; Cairn tracks refs/heads/main"))
        #expect(v.verdict(.github, headers: ["x-hub-signature-256": "sha256=" + Self.signature(Self.push), "x-github-event": "issues"],
                          body: Data(Self.push.utf8)) == .ignored("the event is \"issues\", not push"))
        #expect(v.verdict(.github, headers: ["x-hub-signature-256": "sha256=" + Self.signature("{}"), "x-github-event": "ping"],
                          body: Data("{}".utf8)) == .ping)
        // A branch whose name only starts like the tracked one is another branch.
        let prefix = #"{"ref":"refs/heads/main2"}"#
        #expect(v.verdict(.generic, headers: ["x-cairn-signature": "sha256=" + Self.signature(prefix)], body: Data(prefix.utf8))
                == .ignored("a push to refs/heads/main2; Cairn tracks refs/heads/main"))
    }

    @Test func aReplayedDeliveryIsNotActedOnTwice() {
        let v = verifier()
        let headers = ["x-hub-signature-256": "sha256=" + Self.signature(Self.push), "x-github-event": "push", "x-github-delivery": "guid-1"]
        #expect(v.verdict(.github, headers: headers, body: Data(Self.push.utf8)) == .trigger(delivery: "guid-1"))
        #expect(v.verdict(.github, headers: headers, body: Data(Self.push.utf8)) == .replayed("guid-1"))
        // A forged delivery with a fresh id does not record it: the real one still counts.
        var forged = headers
        forged["x-github-delivery"] = "guid-2"
        forged["x-hub-signature-256"] = "sha256=" + String(repeating: "1", count: 64)
        #expect(v.verdict(.github, headers: forged, body: Data(Self.push.utf8)) == .unauthorized("the signature does not match"))
        forged["x-hub-signature-256"] = headers["x-hub-signature-256"]
        #expect(v.verdict(.github, headers: forged, body: Data(Self.push.utf8)) == .trigger(delivery: "guid-2"))
        // The same id from another forge is another delivery.
        #expect(v.verdict(.gitea, headers: ["x-gitea-signature": Self.signature(Self.push), "x-gitea-event": "push",
                                            "x-gitea-delivery": "guid-1"], body: Data(Self.push.utf8)) == .trigger(delivery: "guid-1"))
    }

    @Test func malformedBodiesAfterAGoodSignature() {
        let v = verifier()
        for (body, problem) in [("[1]", "the body is not a JSON object"), (#"{"after":"x"}"#, "the body has no \"ref\""),
                                (#"{"ref":7}"#, "\"ref\" is not a string"), ("{", "the body is not JSON (register the webhook with content type application/json)")] {
            #expect(v.verdict(.github, headers: ["x-hub-signature-256": "sha256=" + Self.signature(body), "x-github-event": "push"],
                              body: Data(body.utf8)) == .malformed(problem))
        }
    }

    @Test func theReplayGuardIsBounded() {
        let guardian = ReplayGuard(capacity: 3)
        for id in ["a", "b", "c", "d"] { #expect(guardian.firstSight(of: id)) }
        #expect(guardian.count == 3)
        // "a" was forgotten first; "d" is remembered.
        #expect(guardian.firstSight(of: "a"))
        #expect(!guardian.firstSight(of: "d"))
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEqual([1, 2], [1, 2, 3]))
    }

    @Test(arguments: [("127.0.0.1:8080", "127.0.0.1", 8080), ("8080", "127.0.0.1", 8080), (":9", "127.0.0.1", 9),
                      ("0.0.0.0:80", "0.0.0.0", 80), ("[::1]:8443", "::1", 8443), ("localhost:0", "localhost", 0)])
    func listenAddresses(_ text: String, host: String, port: Int) {
        #expect(ListenAddress(parsing: text) == ListenAddress(host: host, port: port))
    }

    @Test(arguments: ["", "x", "127.0.0.1:", "127.0.0.1:70000", "::1:80", "[::1]80", "a b:1", "1.2.3.4:-1"])
    func badListenAddresses(_ text: String) {
        #expect(ListenAddress(parsing: text) == nil)
    }
}

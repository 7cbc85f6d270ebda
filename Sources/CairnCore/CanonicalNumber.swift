/// One spelling per number, so that `1`, `1.0` and `1e0` in a manifest give the same key.
///
/// - An integer type prints its value in decimal.
/// - A double whose value is an integer of magnitude below 10^21 prints that integer, exactly,
///   in decimal (`1.0` → `1`, `-0.0` → `0`, 2^60 → `1152921504606846976`).
/// - Any other finite double prints as ECMAScript's `Number.prototype.toString` does (RFC 8785
///   §3.2.2.3): the shortest digits that read back as the same double, in fixed notation for
///   10^-6 ≤ |x| < 10^21 and as `d.ddde±n` otherwise (`0.000001`, `1e-7`, `1.5e+300`).
/// - NaN and the infinities have no spelling.
enum CanonicalNumber {
    static func text(_ value: some BinaryInteger) -> String {
        String(value)
    }

    /// The canonical text of `value`; nil for NaN and the infinities.
    static func text(_ value: Double) -> String? {
        guard value.isFinite else { return nil }
        if value == 0 { return "0" }
        let sign = value < 0 ? "-" : ""
        let magnitude = value.magnitude
        if magnitude < 1e21, magnitude.rounded(.towardZero) == magnitude {
            return sign + integerText(magnitude)
        }
        return sign + shortestText(magnitude)
    }

    /// The exact decimal digits of an integral double in [1, 10^21).
    private static func integerText(_ magnitude: Double) -> String {
        if magnitude < 0x1p63 { return String(UInt64(magnitude)) }
        // magnitude = significand × 2^shift with a 53-bit significand and 11 ≤ shift ≤ 17;
        // the product fits in 128 bits, and divided by 10^9 its quotient fits in 64.
        let significand = magnitude.significandBitPattern | (1 << UInt64(Double.significandBitCount))
        let shift = Int(magnitude.exponent) - Double.significandBitCount
        let product = significand.multipliedFullWidth(by: 1 << UInt64(shift))
        let (quotient, remainder) = UInt64(1_000_000_000).dividingFullWidth(product)
        let lowDigits = String(remainder)
        return String(quotient) + String(repeating: "0", count: 9 - lowDigits.count) + lowDigits
    }

    /// ECMAScript's form of the shortest round-trip digits of a positive finite double.
    private static func shortestText(_ magnitude: Double) -> String {
        // Swift's description gives the shortest round-trip digits (and the closest such
        // number on a tie), as ECMAScript asks, in a notation of its own: "0.001", "1e-07",
        // "1.2345e+20". Read the digits and the decimal exponent back out of it.
        let text = magnitude.description
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        let point = mantissa.firstIndex(of: ".")
        let whole = point.map { mantissa[..<$0] } ?? mantissa
        let fraction = point.map { mantissa[mantissa.index(after: $0)...] } ?? ""
        var digits = Array(whole + fraction)
        // The value is 0.d1d2…dk × 10^n.
        var n = whole.count + exponent
        while digits.first == "0" {
            digits.removeFirst()
            n -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        let k = digits.count
        if k <= n, n <= 21 {
            return String(digits) + String(repeating: "0", count: n - k)
        }
        if 0 < n, n <= 21 {
            return String(digits[..<n]) + "." + String(digits[n...])
        }
        if -6 < n, n <= 0 {
            return "0." + String(repeating: "0", count: -n) + String(digits)
        }
        let e = n - 1
        let head = k == 1 ? String(digits) : String(digits[0]) + "." + String(digits[1...])
        return head + "e" + (e < 0 ? "-" : "+") + String(e.magnitude)
    }
}

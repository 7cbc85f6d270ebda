import Foundation

/// A strict JSON reader over bytes (RFC 8259), read one token at a time by a caller that knows
/// the shape it expects, so a wrong type is named where it is met ("a number, not true") and
/// nothing is built that the caller does not keep. `JSONSerialization` cannot tell `true`
/// from `1` on every platform, nor say where a value was; this can, at a fraction of its cost.
///
/// Only borrowed: it lives inside `withUnsafeReadableBytes`.
struct JSONScanner {
    /// A syntax error: what was expected, and at which byte.
    struct SyntaxError: Error {
        var message: String
        var offset: Int
    }

    private let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The next byte that is not whitespace, not consumed; nil at the end.
    mutating func peek() -> UInt8? {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x09, 0x0A, 0x0D: offset += 1
            default: return bytes[offset]
            }
        }
        return nil
    }

    var atEnd: Bool {
        mutating get { peek() == nil }
    }

    /// What the next value is, in words, for "must be X, not Y" (nil when no value starts here).
    mutating func kindOfNext() -> String? {
        guard let byte = peek() else { return nil }
        switch byte {
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "{"): return "an object"
        case UInt8(ascii: "["): return "an array"
        case UInt8(ascii: "t"): return comes("true") ? "true" : nil
        case UInt8(ascii: "f"): return comes("false") ? "false" : nil
        case UInt8(ascii: "n"): return comes("null") ? "null" : nil
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return "a number"
        default: return nil
        }
    }

    /// Whether `word` is written at the offset.
    private func comes(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        return offset + count <= bytes.count && (0..<count).allSatisfy { bytes[offset + $0] == word.utf8Start[$0] }
    }

    /// Consumes `byte` if it comes next.
    mutating func take(_ byte: UInt8) -> Bool {
        guard peek() == byte else { return false }
        offset += 1
        return true
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(SyntaxError) {
        guard take(byte) else { throw unexpected(expecting: what) }
    }

    /// Consumes `null` if it comes next.
    mutating func takeNull() throws(SyntaxError) -> Bool {
        guard peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    private mutating func literal(_ word: StaticString) throws(SyntaxError) {
        guard comes(word) else { throw unexpected(expecting: "a value") }
        offset += word.utf8CodeUnitCount
    }

    func unexpected(expecting what: String) -> SyntaxError {
        guard offset < bytes.count else { return SyntaxError(message: "it ends where \(what) should be", offset: offset) }
        let byte = bytes[offset]
        let shown = (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : String(format: "byte 0x%02X", byte)
        return SyntaxError(message: "expected \(what), found \(shown)", offset: offset)
    }

    // MARK: Strings

    /// A string, its escapes decoded; refuses control characters and invalid UTF-8.
    mutating func string() throws(SyntaxError) -> String {
        try expect(UInt8(ascii: "\""), "a string")
        let start = offset
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
                offset += 1
                guard let text = String(validating: raw, as: UTF8.self) else {
                    throw SyntaxError(message: "the string is not valid UTF-8", offset: start)
                }
                return text
            }
            if byte == UInt8(ascii: "\\") { return try escapedString(from: start) }
            guard byte >= 0x20 else { throw SyntaxError(message: "a control character in a string (escape it)", offset: offset) }
            offset += 1
        }
        throw SyntaxError(message: "a string is not closed", offset: start - 1)
    }

    /// The slow path, for a string with escapes: from `start` (just after the quote).
    private mutating func escapedString(from start: Int) throws(SyntaxError) -> String {
        var decoded: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<offset]))
        while offset < bytes.count {
            let byte = bytes[offset]
            offset += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: decoded, as: UTF8.self) else {
                    throw SyntaxError(message: "the string is not valid UTF-8", offset: start)
                }
                return text
            case UInt8(ascii: "\\"):
                guard offset < bytes.count else { break }
                let escape = bytes[offset]
                offset += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by its low half.
                        guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                            throw SyntaxError(message: "a lone surrogate \\u escape", offset: offset)
                        }
                        offset += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw SyntaxError(message: "a lone surrogate \\u escape", offset: offset) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw SyntaxError(message: "a lone surrogate \\u escape", offset: offset) }
                    decoded.append(contentsOf: UTF8.encode(unicode)!)
                default:
                    throw SyntaxError(message: "an unknown escape \\\(Character(Unicode.Scalar(escape)))", offset: offset - 2)
                }
            default:
                guard byte >= 0x20 else { throw SyntaxError(message: "a control character in a string (escape it)", offset: offset - 1) }
                decoded.append(byte)
            }
        }
        throw SyntaxError(message: "a string is not closed", offset: start - 1)
    }

    private mutating func hex4() throws(SyntaxError) -> UInt32 {
        guard offset + 4 <= bytes.count else { throw SyntaxError(message: "a \\u escape needs 4 hex digits", offset: offset) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw SyntaxError(message: "a \\u escape needs 4 hex digits", offset: offset)
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }

    // MARK: Numbers

    /// A number as JSON writes it (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`). One too large
    /// for a Double comes back infinite (`1e999`): the caller refuses it.
    mutating func number() throws(SyntaxError) -> Double {
        _ = peek()
        let start = offset
        var negative = false
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "-") {
            negative = true
            offset += 1
        }
        // Up to 19 significant digits exactly, and the power of ten they are scaled by.
        var mantissa: UInt64 = 0
        var significant = 0
        var exponent = 0
        func digits(fraction: Bool) -> Int {
            var count = 0
            while offset < bytes.count, case let byte = bytes[offset], byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                let digit = UInt64(byte - UInt8(ascii: "0"))
                if significant < 19 {
                    if mantissa != 0 || digit != 0 { significant += 1 }
                    mantissa = mantissa * 10 + digit
                    if fraction { exponent -= 1 }
                } else {
                    significant += 1
                    if !fraction { exponent += 1 }
                }
                offset += 1
                count += 1
            }
            return count
        }
        let first = offset
        guard digits(fraction: false) > 0 else { throw unexpected(expecting: "a digit") }
        if bytes[first] == UInt8(ascii: "0"), offset - first > 1 {
            throw SyntaxError(message: "a number with a leading zero", offset: first)
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard digits(fraction: true) > 0 else { throw unexpected(expecting: "a digit after the decimal point") }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            var exponentNegative = false
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") {
                exponentNegative = bytes[offset] == UInt8(ascii: "-")
                offset += 1
            }
            var written = 0, count = 0
            while offset < bytes.count, case let byte = bytes[offset], byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                written = min(written * 10 + Int(byte - UInt8(ascii: "0")), 1_000_000)
                offset += 1
                count += 1
            }
            guard count > 0 else { throw unexpected(expecting: "a digit in the exponent") }
            exponent += exponentNegative ? -written : written
        }
        // Exact when the digits fit in a Double's 53 bits and the power of ten is exact too
        // (Clinger's fast path); otherwise the standard library's correctly rounded parse.
        var value: Double
        if significant <= 15, (-22...22).contains(exponent) {
            value = Double(mantissa)
            value = exponent < 0 ? value / Self.powersOfTen[-exponent] : value * Self.powersOfTen[exponent]
            if negative { value = -value }
        } else {
            value = Double(text(from: start)) ?? .nan
        }
        return value
    }

    /// What was read from `start` up to here, as written.
    func text(from start: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
    }

    private static let powersOfTen: [Double] = (0...22).map { (0..<$0).reduce(1.0) { value, _ in value * 10 } }
}

/// Why a value could not be parsed; the caller adds where it was.
public struct ValueError: Error, Hashable, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}

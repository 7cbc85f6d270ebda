/// A value whose `Encodable` form can spell one meaning in several ways, such as a duration
/// kept as written (`10m`, `600s`). The canonical encoder calls `encodeCanonically(to:)`
/// instead of `encode(to:)`, so keys see one spelling while `--format json` keeps the text.
public protocol CanonicallyEncodable {
    func encodeCanonically(to encoder: any Encoder) throws
}

extension CanonicalValue {
    /// Builds the JSON tree of `value` through its `Encodable` conformance.
    init(encoding value: some Encodable) throws {
        let state = EncodingState()
        let slot = try state.encode(value, at: [])
        if let problem = state.problem { throw problem }
        self = slot.value()
    }
}

/// What every encoder and container of one encoding shares.
private final class EncodingState {
    /// The first misuse of the `Encoder` API; reported once the encoding ends, since the
    /// container methods cannot throw.
    var problem: CanonicalJSONError?

    func encode(_ value: some Encodable, at codingPath: [any CodingKey]) throws -> Slot {
        let slot = Slot()
        let encoder = TreeEncoder(slot: slot, state: self, codingPath: codingPath)
        if let canonical = value as? any CanonicallyEncodable {
            try canonical.encodeCanonically(to: encoder)
        } else {
            try value.encode(to: encoder)
        }
        return slot
    }

    func number(_ value: Double, at codingPath: [any CodingKey]) throws -> CanonicalValue {
        guard let text = CanonicalNumber.text(value) else {
            throw CanonicalJSONError(.nonFiniteNumber, "\(value) is not a finite number; JSON and content keys have no spelling for it",
                                     at: codingPath)
        }
        return .number(text)
    }

    func misuse(_ message: String, at codingPath: [any CodingKey]) {
        if problem == nil { problem = CanonicalJSONError(.invalidEncoding, message, at: codingPath) }
    }
}

/// Where one encoder or container puts what it is given. Containers hold references, so a
/// nested container can be filled after it was handed out, as the `Encoder` API allows.
private final class Slot {
    enum Content {
        case empty
        case value(CanonicalValue)
        case object(ObjectStorage)
        case array(ArrayStorage)
    }

    var content: Content = .empty

    init() {}

    init(_ value: CanonicalValue) {
        content = .value(value)
    }

    /// An encoder that encoded nothing gives an empty object, as `JSONEncoder` does.
    func value() -> CanonicalValue {
        switch content {
        case .empty: .object([:])
        case .value(let value): value
        case .object(let storage): .object(storage.members.mapValues { $0.value() })
        case .array(let storage): .array(storage.items.map { $0.value() })
        }
    }
}

private final class ObjectStorage {
    var members: [String: Slot] = [:]
}

private final class ArrayStorage {
    var items: [Slot] = []
}

/// An array index in a coding path.
struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { return nil }
}

/// The key `superEncoder()` encodes under, as in `JSONEncoder`.
private struct SuperKey: CodingKey {
    var stringValue: String { "super" }
    var intValue: Int? { nil }
    init() {}
    init?(intValue: Int) { return nil }
    init?(stringValue: String) { return nil }
}

private struct TreeEncoder: Encoder {
    let slot: Slot
    let state: EncodingState
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let storage: ObjectStorage
        switch slot.content {
        case .object(let existing): storage = existing
        case .empty:
            storage = ObjectStorage()
            slot.content = .object(storage)
        case .value, .array:
            state.misuse("a keyed container was asked for after something else was encoded here", at: codingPath)
            storage = ObjectStorage()
        }
        return KeyedEncodingContainer(KeyedContainer<Key>(storage: storage, state: state, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let storage: ArrayStorage
        switch slot.content {
        case .array(let existing): storage = existing
        case .empty:
            storage = ArrayStorage()
            slot.content = .array(storage)
        case .value, .object:
            state.misuse("an unkeyed container was asked for after something else was encoded here", at: codingPath)
            storage = ArrayStorage()
        }
        return UnkeyedContainer(storage: storage, state: state, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueContainer(slot: slot, state: state, codingPath: codingPath)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let storage: ObjectStorage
    let state: EncodingState
    let codingPath: [any CodingKey]

    private func put(_ value: CanonicalValue, _ key: Key) {
        storage.members[key.stringValue] = Slot(value)
    }

    mutating func encodeNil(forKey key: Key) throws { put(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { put(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { put(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { put(try state.number(value, at: codingPath + [key]), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { put(try state.number(Double(value), at: codingPath + [key]), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { put(.number(CanonicalNumber.text(value)), key) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        storage.members[key.stringValue] = try state.encode(value, at: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type,
                                                       forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = ObjectStorage()
        let slot = Slot()
        slot.content = .object(nested)
        storage.members[key.stringValue] = slot
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(storage: nested, state: state, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = ArrayStorage()
        let slot = Slot()
        slot.content = .array(nested)
        storage.members[key.stringValue] = slot
        return UnkeyedContainer(storage: nested, state: state, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { superEncoder(named: SuperKey()) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder(named: key) }

    private func superEncoder(named key: any CodingKey) -> any Encoder {
        let slot = Slot()
        storage.members[key.stringValue] = slot
        return TreeEncoder(slot: slot, state: state, codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let storage: ArrayStorage
    let state: EncodingState
    let codingPath: [any CodingKey]
    var count: Int { storage.items.count }

    private var nextPath: [any CodingKey] { codingPath + [IndexKey(count)] }

    private func append(_ value: CanonicalValue) {
        storage.items.append(Slot(value))
    }

    mutating func encodeNil() throws { append(.null) }
    mutating func encode(_ value: Bool) throws { append(.bool(value)) }
    mutating func encode(_ value: String) throws { append(.string(value)) }
    mutating func encode(_ value: Double) throws { append(try state.number(value, at: nextPath)) }
    mutating func encode(_ value: Float) throws { append(try state.number(Double(value), at: nextPath)) }
    mutating func encode(_ value: Int) throws { append(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: Int8) throws { append(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: Int16) throws { append(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: Int32) throws { append(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: Int64) throws { append(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt) throws { append(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt8) throws { append(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt16) throws { append(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt32) throws { append(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt64) throws { append(.number(CanonicalNumber.text(value))) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        storage.items.append(try state.encode(value, at: nextPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = nextPath
        let nested = ObjectStorage()
        let slot = Slot()
        slot.content = .object(nested)
        storage.items.append(slot)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(storage: nested, state: state, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = nextPath
        let nested = ArrayStorage()
        let slot = Slot()
        slot.content = .array(nested)
        storage.items.append(slot)
        return UnkeyedContainer(storage: nested, state: state, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let path = nextPath
        let slot = Slot()
        storage.items.append(slot)
        return TreeEncoder(slot: slot, state: state, codingPath: path)
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let slot: Slot
    let state: EncodingState
    let codingPath: [any CodingKey]

    private func set(_ value: CanonicalValue) {
        guard case .empty = slot.content else {
            return state.misuse("a second value was encoded through a single value container", at: codingPath)
        }
        slot.content = .value(value)
    }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(try state.number(value, at: codingPath)) }
    mutating func encode(_ value: Float) throws { set(try state.number(Double(value), at: codingPath)) }
    mutating func encode(_ value: Int) throws { set(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: Int8) throws { set(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: Int16) throws { set(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: Int32) throws { set(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: Int64) throws { set(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt) throws { set(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt8) throws { set(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt16) throws { set(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt32) throws { set(.number(CanonicalNumber.text(value))) }
    mutating func encode(_ value: UInt64) throws { set(.number(CanonicalNumber.text(value))) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        guard case .empty = slot.content else {
            return state.misuse("a second value was encoded through a single value container", at: codingPath)
        }
        slot.content = try state.encode(value, at: codingPath).content
    }
}

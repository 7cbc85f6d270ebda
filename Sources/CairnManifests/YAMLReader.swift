// libyaml, as the Yams package builds it (its `CYaml` module). The events are read here
// directly: see `YAMLReader`.
import CYaml

/// A document that libyaml could not read, or whose keys repeat, with libyaml's message and
/// position.
struct YAMLSyntaxError: Error {
    var message: String
    var line: Int
    var column: Int
}

/// Reads the documents of a YAML stream from libyaml's events straight into `YAMLNode`s.
///
/// Yams, whose libyaml this is, first composes a tree of its own nodes — an object per event
/// and per tag, and a hash of every key of every mapping to find repeated keys — which cost
/// more than libyaml's scanning and all the checks of a manifest together. This reader keeps
/// Yams' composition rules, so that what a user is told does not change: anchors stay defined
/// from one document to the next, an alias stands for a copy of its anchor's node, a key
/// given twice in one mapping is refused (keys are equal when their text and resolved tag
/// are), and messages and positions are libyaml's.
final class YAMLReader {
    private var parser = yaml_parser_t()
    /// libyaml reads the text in place, so it is kept for as long as the parser.
    private let input: UnsafeMutableBufferPointer<UInt8>
    private var anchors: [String: Anchored] = [:]
    private var initialized = false
    private var started = false

    private struct Anchored {
        var node: YAMLNode
        var identity: KeyIdentity
    }

    /// How big and deep the current document is, as long as no alias makes its expanded tree
    /// differ from what was read; and the first node over either limit, in reading order.
    private var nodeCount = 0
    private var hasAlias = false
    private var firstTooLarge: ConversionProblem?

    init(_ text: String) {
        input = .allocate(capacity: text.utf8.count)
        _ = input.initialize(from: text.utf8)
        initialized = yaml_parser_initialize(&parser) == 1
        if initialized {
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, input.baseAddress, input.count)
        }
    }

    deinit {
        if initialized { yaml_parser_delete(&parser) }
        input.deallocate()
    }

    /// The next document's root node, or nil at the end of the stream. Throws a
    /// `YAMLSyntaxError`, or a `ConversionProblem` for a document too large or too deep.
    func nextDocument() throws -> YAMLNode? {
        guard initialized else { throw YAMLSyntaxError(message: "Memory error", line: 1, column: 1) }
        if !started {
            started = true
            var streamStart = try nextEvent()
            yaml_event_delete(&streamStart)
        }
        guard parser.stream_end_produced == 0 else { return nil }
        var start = try nextEvent()
        let type = start.type
        yaml_event_delete(&start)
        guard type != YAML_STREAM_END_EVENT else { return nil }

        nodeCount = 0
        hasAlias = false
        firstTooLarge = nil
        var rootEvent = try nextEvent()
        let (root, _) = try node(from: &rootEvent, depth: 0, identify: false)
        var end = try nextEvent()
        yaml_event_delete(&end)
        if hasAlias {
            // The expanded tree is what counts, as if every alias were written out.
            var count = 0
            try Self.checkSize(of: root, depth: 0, count: &count)
        } else if let firstTooLarge {
            throw firstTooLarge
        }
        return root
    }

    private func nextEvent() throws(YAMLSyntaxError) -> yaml_event_t {
        var event = yaml_event_t()
        guard yaml_parser_parse(&parser, &event) == 1 else { throw syntaxError() }
        return event
    }

    private func syntaxError() -> YAMLSyntaxError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return YAMLSyntaxError(message: "Memory error", line: 1, column: 1)
        case YAML_READER_ERROR:
            return YAMLSyntaxError(message: problem, line: 1, column: 1)
        default:
            let context = parser.context.map { String(cString: $0) + " " } ?? ""
            return YAMLSyntaxError(message: context + problem, line: parser.problem_mark.line + 1,
                                   column: parser.problem_mark.column + 1)
        }
    }

    /// Builds the node that starts with `event` (which is consumed), reading the events of its
    /// children. With `identify`, it also returns what makes it equal to another key.
    private func node(from event: inout yaml_event_t, depth: Int, identify: Bool) throws -> (YAMLNode, KeyIdentity?) {
        let line = event.start_mark.line + 1
        let column = event.start_mark.column + 1
        switch event.type {
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let type = scalar.style == YAML_PLAIN_SCALAR_STYLE ? ScalarTyping.type(ofPlain: text) : .string
            let anchor = Self.string(scalar.anchor)
            let identity = identify || anchor != nil
                ? KeyIdentity.scalar(text, tag: Self.resolvedTag(scalar.tag, implicit: false, default: KeyIdentity.stringTag)) : nil
            yaml_event_delete(&event)
            let node = YAMLNode(value: .scalar(text, type), line: line, column: column)
            counted(node, depth: depth)
            if let anchor, let identity { anchors[anchor] = Anchored(node: node, identity: identity) }
            return (node, identity)

        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            yaml_event_delete(&event)
            guard let anchored = anchors[name] else {
                throw YAMLSyntaxError(message: "found undefined alias", line: line, column: column)
            }
            hasAlias = true
            return (anchored.node, anchored.identity)

        case YAML_SEQUENCE_START_EVENT:
            let start = event.data.sequence_start
            let anchor = Self.string(start.anchor)
            let tag = identify || anchor != nil
                ? Self.resolvedTag(start.tag, implicit: start.implicit != 0, default: KeyIdentity.sequenceTag) : nil
            yaml_event_delete(&event)
            var placeholder = YAMLNode(value: .sequence([]), line: line, column: column)
            counted(placeholder, depth: depth)
            var items: [YAMLNode] = []
            var identities: [KeyIdentity] = []
            while true {
                var child = try nextEvent()
                if child.type == YAML_SEQUENCE_END_EVENT {
                    yaml_event_delete(&child)
                    break
                }
                let (item, identity) = try node(from: &child, depth: depth + 1, identify: tag != nil)
                items.append(item)
                if let identity { identities.append(identity) }
            }
            placeholder.value = .sequence(items)
            let identity = tag.map { KeyIdentity.sequence(identities, tag: $0) }
            if let anchor, let identity { anchors[anchor] = Anchored(node: placeholder, identity: identity) }
            return (placeholder, identity)

        case YAML_MAPPING_START_EVENT:
            let start = event.data.mapping_start
            let anchor = Self.string(start.anchor)
            let tag = identify || anchor != nil
                ? Self.resolvedTag(start.tag, implicit: start.implicit != 0, default: KeyIdentity.mappingTag) : nil
            yaml_event_delete(&event)
            var placeholder = YAMLNode(value: .mapping([]), line: line, column: column)
            counted(placeholder, depth: depth)
            var pairs: [(key: YAMLNode, value: YAMLNode)] = []
            var keys: [KeyIdentity] = []
            var identities: [KeyIdentity] = []
            while true {
                var keyEvent = try nextEvent()
                if keyEvent.type == YAML_MAPPING_END_EVENT {
                    yaml_event_delete(&keyEvent)
                    break
                }
                let (key, keyIdentity) = try node(from: &keyEvent, depth: depth + 1, identify: true)
                // A list or mapping as a key (written out, or through an alias) is refused: no
                // manifest needs one, and comparing such keys can cost as much as a YAML bomb.
                if let keyIdentity, !keyIdentity.isScalar {
                    throw YAMLSyntaxError(message: "a mapping key must be a plain value, not a list or a mapping",
                                          line: key.line, column: key.column)
                }
                var valueEvent = try nextEvent()
                let (value, valueIdentity) = try node(from: &valueEvent, depth: depth + 1, identify: tag != nil)
                pairs.append((key: key, value: value))
                if let keyIdentity { keys.append(keyIdentity) }
                if let keyIdentity, let valueIdentity { identities += [keyIdentity, valueIdentity] }
            }
            try Self.refuseRepeatedKeys(keys, of: pairs)
            placeholder.value = .mapping(pairs)
            let identity = tag.map { KeyIdentity.mapping(identities, tag: $0) }
            if let anchor, let identity { anchors[anchor] = Anchored(node: placeholder, identity: identity) }
            return (placeholder, identity)

        default:
            yaml_event_delete(&event)
            throw YAMLSyntaxError(message: "unexpected YAML event", line: line, column: column)
        }
    }

    /// Counts a node in reading order, noting the first one over the size or depth limit.
    private func counted(_ node: YAMLNode, depth: Int) {
        nodeCount += 1
        guard firstTooLarge == nil else { return }
        firstTooLarge = NodeLimits.problem(at: node, depth: depth, count: nodeCount)
    }

    /// Walks the tree as if every alias were written out, stopping at the first node over a limit.
    private static func checkSize(of node: YAMLNode, depth: Int, count: inout Int) throws(ConversionProblem) {
        count += 1
        if let problem = NodeLimits.problem(at: node, depth: depth, count: count) { throw problem }
        switch node.value {
        case .scalar:
            break
        case .sequence(let items):
            for item in items { try checkSize(of: item, depth: depth + 1, count: &count) }
        case .mapping(let pairs):
            for (key, value) in pairs {
                try checkSize(of: key, depth: depth + 1, count: &count)
                try checkSize(of: value, depth: depth + 1, count: &count)
            }
        }
    }

    /// Yams refuses a mapping whose keys repeat, naming the repeated keys in order and pointing
    /// at the first of them.
    private static func refuseRepeatedKeys(_ keys: [KeyIdentity], of pairs: [(key: YAMLNode, value: YAMLNode)]) throws(YAMLSyntaxError) {
        guard keys.count > 1 else { return }
        var repeated: [Int] = [] // the first occurrence of each repeated key
        if keys.count <= 16 {
            // The usual mapping: a few keys, compared in place without allocating.
            for index in 1..<keys.count {
                if let first = keys[..<index].firstIndex(of: keys[index]), !repeated.contains(first) { repeated.append(first) }
            }
        } else {
            // Many keys: linear time, however many there are (40,000 took 93 s the quadratic way).
            var firstIndex: [KeyIdentity: Int] = [:]
            var counted: Set<Int> = []
            for (index, key) in keys.enumerated() {
                if let first = firstIndex[key] {
                    if counted.insert(first).inserted { repeated.append(first) }
                } else {
                    firstIndex[key] = index
                }
            }
        }
        guard !repeated.isEmpty else { return }
        repeated.sort { keys[$0].precedes(keys[$1]) }
        let names = repeated.map { index -> String in
            if case .scalar(let text, _) = keys[index] { return text }
            return "<uncovertable>"
        }
        let first = pairs[repeated[0]].key
        throw YAMLSyntaxError(message: "the key \(names.map { "\(quote($0))" }.joined(separator: ", ")) appears twice in one mapping",
                              line: first.line, column: first.column)
    }

    /// A node's tag as Yams resolves it with its basic resolver: the tag written, or the
    /// default of the node's kind when none is (or only `!`).
    private static func resolvedTag(_ tag: UnsafeMutablePointer<yaml_char_t>?, implicit: Bool, default: String) -> String {
        guard !implicit, let written = string(tag), written != "!" else { return `default` }
        return written
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(decodingCString: $0, as: UTF8.self) }
    }
}

/// What makes two mapping keys the same key: text (or content) and resolved tag.
indirect enum KeyIdentity: Hashable {
    case scalar(String, tag: String)
    case sequence([KeyIdentity], tag: String)
    /// Keys and values, alternating.
    case mapping([KeyIdentity], tag: String)

    static let stringTag = "tag:yaml.org,2002:str"
    static let sequenceTag = "tag:yaml.org,2002:seq"
    static let mappingTag = "tag:yaml.org,2002:map"

    /// Yams' order of nodes: scalars by text, lists item by item, mappings key by key; nodes of
    /// different kinds are unordered.
    var isScalar: Bool {
        if case .scalar = self { return true }
        return false
    }

    func precedes(_ other: KeyIdentity) -> Bool {
        switch (self, other) {
        case (.scalar(let left, _), .scalar(let right, _)):
            return left < right
        case (.sequence(let left, _), .sequence(let right, _)):
            return Self.precedes(left, right)
        case (.mapping(let left, _), .mapping(let right, _)):
            let leftKeys = stride(from: 0, to: left.count, by: 2).map { left[$0] }
            let rightKeys = stride(from: 0, to: right.count, by: 2).map { right[$0] }
            return Self.precedes(leftKeys, rightKeys)
        default:
            return false
        }
    }

    private static func precedes(_ left: [KeyIdentity], _ right: [KeyIdentity]) -> Bool {
        for (left, right) in zip(left, right) {
            if left.precedes(right) { return true }
            if right.precedes(left) { return false }
        }
        return left.count < right.count
    }
}

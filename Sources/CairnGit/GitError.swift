/// An error from the git layer: what failed, libgit2's own words, and which call failed.
///
/// `code` is a struct over a private enum so new codes can be added without breaking callers
/// that switch over the ones they care about.
public struct GitError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case notFound, alreadyExists, refMoved, pushRejected, network, timeout
            case invalidSpec, ambiguous, authentication, locked, limitExceeded, other
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The object, reference, path or revision does not exist.
        public static let notFound = Code(.notFound)
        /// Something that was to be created exists already.
        public static let alreadyExists = Code(.alreadyExists)
        /// A compare-and-swap reference update lost: the ref no longer points where we saw it.
        public static let refMoved = Code(.refMoved)
        /// The remote refused a push because it was not a fast-forward (or for a hook's reason).
        public static let pushRejected = Code(.pushRejected)
        /// The remote could not be reached or broke off.
        public static let network = Code(.network)
        /// The remote did not answer within the allowed time.
        public static let timeout = Code(.timeout)
        /// A revision, refspec, path or URL was malformed.
        public static let invalidSpec = Code(.invalidSpec)
        /// A short revision matched more than one object.
        public static let ambiguous = Code(.ambiguous)
        /// The remote asked for credentials that were missing or wrong.
        public static let authentication = Code(.authentication)
        /// A lock file is held by another process.
        public static let locked = Code(.locked)
        /// A tree is larger or deeper than the bounds a walk may cost.
        public static let limitExceeded = Code(.limitExceeded)
        /// Anything else libgit2 reported.
        public static let other = Code(.other)

        public var description: String { value.rawValue }
    }

    public let code: Code
    public let message: String
    /// The libgit2 function (or Cairn operation) that failed.
    public let function: String

    public init(_ code: Code, _ message: String, function: String = #function) {
        self.code = code
        self.message = message
        self.function = function
    }

    public var description: String { "\(message) (\(function))" }
}

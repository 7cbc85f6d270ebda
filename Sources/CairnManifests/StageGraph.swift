/// The order of a pipeline's stages: a stage runs after every stage whose outputs it reads.
///
/// Stage B reads stage A's outputs when one of B's repository `deps`, or one of the path
/// arguments of B's command (see `pathArguments(of:)`), equals one of A's `outs`, lies under
/// it (`data/raw.csv` under `data`) or contains it (`data` holding `data/raw.csv`). A stage
/// naming its own output in its command (`--out data/raw.csv`) makes no edge; a stage whose
/// `deps` include its own outputs, and a cycle, are errors of the manifest
/// (`cairn validate` reports them), so a valid pipeline's graph has neither.
public struct StageGraph: Hashable, Sendable {
    /// Why one stage runs after another: the first of the downstream's paths found to touch an
    /// output of the upstream.
    public struct Edge: Hashable, Sendable {
        /// Stage indices in the spec.
        public let upstream: Int
        public let downstream: Int
        /// Where the downstream names the path: `deps[i]` or `command[i]`.
        public let via: Via
        /// The downstream's path, as a repository path.
        public let path: RepositoryPath
        /// The upstream's output it touches.
        public let out: RepositoryPath
    }

    public enum Via: Hashable, Sendable {
        /// An item of `deps`, by index.
        case dep(Int)
        /// An element of `command`, by index (argv[0] is never one).
        case argument(Int)
    }

    /// Every stage index once: each after all its upstream stages, and otherwise in the order
    /// of declaration. Stages on or after a cycle (only in a pipeline that failed validation)
    /// come last, in the order of declaration.
    public let order: [Int]
    /// One edge per pair of stages, sorted by downstream, then upstream.
    public let edges: [Edge]
    /// A cycle, in the direction data flows (each stage reads what the one before it writes,
    /// and the first reads what the last writes), starting at its first-declared stage; nil
    /// when there is none.
    public let cycle: [Int]?

    private let upstreams: [[Int]]
    private let downstreams: [[Int]]

    public init(_ spec: FeaturePipelineSpec) {
        let stages = spec.stages
        // Every out by its path, and all of them sorted, so that each path a stage reads finds
        // the outs at it or above it (its ancestors) and the outs below it (a range of the
        // sorted list) without comparing every pair of stages.
        var outsAt: [String: [(stage: Int, out: RepositoryPath)]] = [:]
        var sorted: [(value: String, stage: Int, out: RepositoryPath)] = []
        for (index, stage) in stages.enumerated() {
            for out in stage.outs {
                outsAt[out.value, default: []].append((index, out))
                sorted.append((out.value, index, out))
            }
        }
        sorted.sort { $0.value < $1.value }
        func outs(under path: RepositoryPath) -> ArraySlice<(value: String, stage: Int, out: RepositoryPath)> {
            let prefix = path.value + "/"
            var low = 0, high = sorted.count
            while low < high {
                let middle = (low + high) / 2
                if sorted[middle].value < prefix { low = middle + 1 } else { high = middle }
            }
            var end = low
            while end < sorted.count, sorted[end].value.hasPrefix(prefix) { end += 1 }
            return sorted[low..<end]
        }
        var edges: [Edge] = []
        for (downstream, stage) in stages.enumerated() {
            var paths: [(Via, RepositoryPath)] = []
            for (index, dep) in stage.deps.enumerated() {
                if let path = dep.repositoryPath { paths.append((.dep(index), path)) }
            }
            for (index, argument) in Self.pathArgumentIndices(of: stage.command) {
                if let path = try? RepositoryPath(argument) { paths.append((.argument(index), path)) }
            }
            // Per upstream stage, the first path (in the order above) that meets one of its outs.
            var found: [Int: Edge] = [:]
            for (via, path) in paths {
                var matches = ([path.value] + path.ancestors).flatMap { outsAt[$0] ?? [] }
                matches += outs(under: path).map { ($0.stage, $0.out) }
                for (upstream, out) in matches where upstream != downstream && found[upstream] == nil {
                    found[upstream] = Edge(upstream: upstream, downstream: downstream, via: via, path: path, out: out)
                }
            }
            edges += found.keys.sorted().compactMap { found[$0] }
        }
        var upstreams = Array(repeating: [Int](), count: stages.count)
        var downstreams = Array(repeating: [Int](), count: stages.count)
        for edge in edges {
            upstreams[edge.downstream].append(edge.upstream)
            downstreams[edge.upstream].append(edge.downstream)
        }
        self.edges = edges
        self.upstreams = upstreams
        self.downstreams = downstreams.map { $0.sorted() }
        self.order = Self.topologicalOrder(upstreams: upstreams)
        self.cycle = Self.firstCycle(downstreams: self.downstreams)
    }

    /// The stages whose outputs `stage` reads directly, in the order of declaration.
    public func upstream(of stage: Int) -> [Int] { upstreams[stage] }

    /// The stages that read `stage`'s outputs directly, in the order of declaration.
    public func downstream(of stage: Int) -> [Int] { downstreams[stage] }

    /// `stage` and every stage downstream of it, directly or through others, in `order`: what
    /// must rerun when `stage`'s outputs change.
    public func downstreamClosure(of stage: Int) -> [Int] {
        var reached: Set<Int> = [stage]
        var queue = [stage]
        while let next = queue.popLast() {
            for other in downstreams[next] where reached.insert(other).inserted { queue.append(other) }
        }
        return order.filter(reached.contains)
    }

    /// The arguments of a command that look like paths, in order.
    ///
    /// The rule: argv[0] (the program) is skipped. An option with a value in one argument
    /// (`--input=data/x.csv`, `-o=out.csv`) contributes its value; any other argument starting
    /// with `-` is an option and is skipped (its value, if it is the next argument, is judged
    /// on its own). An argument, or value, is kept when it is absolute, contains a `/`, or
    /// ends in a dot-extension with a letter in it (`train.py`, `raw.csv`, but not `0.5` or
    /// `2000`); URLs (`://`) are not paths. Nothing here checks that the path exists.
    public static func pathArguments(of command: [String]) -> [String] {
        pathArgumentIndices(of: command).map(\.value)
    }

    static func pathArgumentIndices(of command: [String]) -> [(index: Int, value: String)] {
        var result: [(index: Int, value: String)] = []
        for (index, argument) in command.enumerated().dropFirst() {
            var value = Substring(argument)
            if value.hasPrefix("-") {
                guard let equals = value.firstIndex(of: "=") else { continue }
                value = value[value.index(after: equals)...]
            }
            if looksLikePath(value) { result.append((index, String(value))) }
        }
        return result
    }

    private static func looksLikePath(_ value: Substring) -> Bool {
        guard !value.isEmpty, !value.contains("://") else { return false }
        if value.hasPrefix("/") || value.contains("/") { return true }
        guard let dot = value.lastIndex(of: "."), dot != value.startIndex else { return false }
        let ext = value[value.index(after: dot)...]
        return !ext.isEmpty && ext.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") } && ext.contains { $0.isLetter }
    }

    /// Kahn's algorithm, taking the first-declared ready stage each time (a sorted list of
    /// the ready ones, so the order is stable and the cost stays near linear).
    private static func topologicalOrder(upstreams: [[Int]]) -> [Int] {
        var waitingOn = upstreams.map { Set($0).count }
        var downstreams = Array(repeating: [Int](), count: upstreams.count)
        for (stage, ups) in upstreams.enumerated() {
            for upstream in Set(ups) { downstreams[upstream].append(stage) }
        }
        var ready = waitingOn.indices.filter { waitingOn[$0] == 0 }.reversed() as [Int]  // smallest last
        var order: [Int] = []
        order.reserveCapacity(upstreams.count)
        while let next = ready.popLast() {
            order.append(next)
            for stage in downstreams[next] {
                waitingOn[stage] -= 1
                if waitingOn[stage] == 0 {
                    // Keep `ready` sorted from largest to smallest.
                    let position = ready.firstIndex { $0 < stage } ?? ready.count
                    ready.insert(stage, at: position)
                }
            }
        }
        // Stages on a cycle never become ready: they go last, in declaration order.
        let placed = Set(order)
        order += upstreams.indices.filter { !placed.contains($0) }
        return order
    }

    private static func firstCycle(downstreams: [[Int]]) -> [Int]? {
        var state = Array(repeating: 0, count: downstreams.count) // 1: on the path, 2: done
        var path: [Int] = []
        func visit(_ node: Int) -> [Int]? {
            state[node] = 1
            path.append(node)
            for next in downstreams[node] {
                if state[next] == 1, let start = path.firstIndex(of: next) { return Array(path[start...]) }
                if state[next] == 0, let cycle = visit(next) { return cycle }
            }
            path.removeLast()
            state[node] = 2
            return nil
        }
        for node in downstreams.indices where state[node] == 0 {
            if let cycle = visit(node) {
                let first = cycle.indices.min { cycle[$0] < cycle[$1] } ?? 0
                return Array(cycle[first...] + cycle[..<first])
            }
        }
        return nil
    }
}

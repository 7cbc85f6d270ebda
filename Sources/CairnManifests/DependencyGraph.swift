/// Which objects depend on which, across kinds: a TrainingSchedule on its FeaturePipeline, a
/// Model on the TrainingSchedules that train it, a ModelDeployment on its Model, a Monitor on
/// its ModelDeployment, and a FeaturePipeline on another whose outputs it reads. Work is
/// ordered by it, and a change to one object touches exactly its dependents.
public struct DependencyGraph: Sendable {
    /// What each object depends on.
    public private(set) var dependencies: [ObjectRef: Set<ObjectRef>] = [:]
    /// What depends on each object.
    public private(set) var dependents: [ObjectRef: Set<ObjectRef>] = [:]

    public init() {}

    public mutating func add(_ object: ObjectRef) {
        if dependencies[object] == nil { dependencies[object] = [] }
        if dependents[object] == nil { dependents[object] = [] }
    }

    /// Records that `object` depends on `dependency`.
    public mutating func add(_ object: ObjectRef, dependsOn dependency: ObjectRef) {
        add(object)
        add(dependency)
        dependencies[object, default: []].insert(dependency)
        dependents[dependency, default: []].insert(object)
    }

    /// Forgets what `object` depends on (its outgoing edges), keeping the object.
    public mutating func removeEdges(from object: ObjectRef) {
        for dependency in dependencies[object] ?? [] { dependents[dependency]?.remove(object) }
        if dependencies[object] != nil { dependencies[object] = [] }
    }

    /// Removes `object` and every edge to or from it.
    public mutating func remove(_ object: ObjectRef) {
        removeEdges(from: object)
        for dependent in dependents[object] ?? [] { dependencies[dependent]?.remove(object) }
        dependencies[object] = nil
        dependents[object] = nil
    }

    public var objects: [ObjectRef] { dependencies.keys.sorted() }

    /// Every object, each after all it depends on; ties broken by kind order and name, so the
    /// order is stable. Objects on a cycle come last, in kind and name order.
    public func topologicalOrder() -> [ObjectRef] {
        // Kahn's algorithm, recording each object's level (1 + the deepest level it depends
        // on); sorting once by level, kind and name gives a stable order.
        var remaining = dependencies.mapValues(\.count)
        var level: [ObjectRef: Int] = [:]
        var queue = remaining.filter { $0.value == 0 }.map(\.key)
        var head = 0
        while head < queue.count {
            let next = queue[head]
            head += 1
            remaining[next] = nil
            let nextLevel = level[next] ?? 0
            for dependent in dependents[next] ?? [] {
                guard let count = remaining[dependent] else { continue }
                level[dependent] = max(level[dependent] ?? 0, nextLevel + 1)
                remaining[dependent] = count - 1
                if count == 1 { queue.append(dependent) }
            }
        }
        let ordered = queue.sorted { (level[$0] ?? 0, $0) < (level[$1] ?? 0, $1) }
        return ordered + remaining.keys.sorted()
    }

    /// `subset` in dependency order (Kahn's algorithm on the edges among them), ties by kind and
    /// name; costs what the subset holds, not what the graph holds.
    public func order(of subset: Set<ObjectRef>) -> [ObjectRef] {
        guard subset.count > 1 else { return Array(subset) }
        // For a large share of the graph, one pass over all of it is cheaper than the insertions below.
        if subset.count > 256 { return topologicalOrder().filter { subset.contains($0) } }
        var remaining: [ObjectRef: Int] = [:]
        for ref in subset { remaining[ref] = (dependencies[ref] ?? []).filter { subset.contains($0) }.count }
        var ready = remaining.filter { $0.value == 0 }.map(\.key).sorted(by: >)
        var result: [ObjectRef] = []
        result.reserveCapacity(subset.count)
        while let next = ready.popLast() {
            result.append(next)
            remaining[next] = nil
            for dependent in dependents[next] ?? [] where subset.contains(dependent) {
                guard let count = remaining[dependent] else { continue }
                remaining[dependent] = count - 1
                if count == 1 {
                    // Keep `ready` sorted descending so popLast yields the smallest.
                    let index = ready.firstIndex { $0 < dependent } ?? ready.count
                    ready.insert(dependent, at: index)
                }
            }
        }
        return result + remaining.keys.sorted()
    }

    /// `changed` and everything that depends on it, directly or not, in dependency order.
    public func affected(by changed: Set<ObjectRef>) -> [ObjectRef] {
        order(of: reachable(from: changed))
    }

    /// `changed` and everything that depends on it, directly or not; costs what it finds.
    public func reachable(from changed: Set<ObjectRef>) -> Set<ObjectRef> {
        var seen: Set<ObjectRef> = []
        var stack = Array(changed)
        while let next = stack.popLast() {
            guard seen.insert(next).inserted else { continue }
            stack.append(contentsOf: dependents[next] ?? [])
        }
        return seen
    }

    /// Each cycle once, as the objects on it in order (Tarjan's strongly connected components).
    /// Only objects of `kinds` are searched: edges between different kinds always point to an
    /// earlier kind, so only edges within one kind (FeaturePipeline reading another's outputs)
    /// can close a loop.
    public func cycles(among kinds: Set<Kind> = Set(Kind.allCases)) -> [[ObjectRef]] {
        var index = 0
        var indices: [ObjectRef: Int] = [:]
        var lowLinks: [ObjectRef: Int] = [:]
        var onStack: Set<ObjectRef> = []
        var stack: [ObjectRef] = []
        var result: [[ObjectRef]] = []

        func visit(_ node: ObjectRef) {
            indices[node] = index
            lowLinks[node] = index
            index += 1
            stack.append(node)
            onStack.insert(node)
            for next in (dependencies[node] ?? []).sorted() where kinds.contains(next.kind) {
                if indices[next] == nil {
                    visit(next)
                    lowLinks[node] = min(lowLinks[node] ?? 0, lowLinks[next] ?? 0)
                } else if onStack.contains(next) {
                    lowLinks[node] = min(lowLinks[node] ?? 0, indices[next] ?? 0)
                }
            }
            guard lowLinks[node] == indices[node] else { return }
            var component: [ObjectRef] = []
            while let top = stack.popLast() {
                onStack.remove(top)
                component.append(top)
                if top == node { break }
            }
            if component.count > 1 || dependencies[node]?.contains(node) == true {
                result.append(component.sorted())
            }
        }

        for node in objects where kinds.contains(node.kind) && indices[node] == nil { visit(node) }
        return result
    }
}

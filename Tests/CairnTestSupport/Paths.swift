public import Foundation

/// The package's root directory, found from this source file's location.
public let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The `cairn` executable that `swift build` / `swift test` built next to the test bundle.
public func cairnExecutable() throws -> String {
    let here = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
    var candidates = [here.deletingLastPathComponent().appendingPathComponent("cairn").path]
    candidates.append(packageRoot.appendingPathComponent(".build/debug/cairn").path)
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
        return candidate
    }
    throw SubprocessError(description: "no cairn executable in \(candidates); run swift build first")
}

/// Runs the real `cairn` binary.
@discardableResult
public func cairn(_ arguments: [String], in directory: URL? = nil, environment: [String: String]? = nil) throws -> ProcessResult {
    try run(try cairnExecutable(), arguments, in: directory, environment: environment, check: false)
}

/// Runs the real `cairn` binary, awaiting it without holding a thread (see `runAsync`).
@discardableResult
public func cairnAsync(_ arguments: [String], in directory: URL? = nil, environment: [String: String]? = nil) async throws -> ProcessResult {
    try await runAsync(try cairnExecutable(), arguments, in: directory, environment: environment, check: false)
}

/// The example repository as people read it in Manifests/, by relative path: the manifests
/// and the scripts their stages run, not the generated schema/ (nor Python's caches).
public func exampleRepositoryFiles() throws -> [String: String] {
    let directory = packageRoot.appendingPathComponent("Manifests")
    var files: [String: String] = [:]
    let walker = FileManager.default.enumerator(atPath: directory.path)
    while let name = walker?.nextObject() as? String {
        guard !name.hasPrefix("schema"), !name.contains("__pycache__") else { continue }
        let url = directory.appendingPathComponent(name)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
        files[name] = try String(contentsOf: url, encoding: .utf8)
    }
    return files
}

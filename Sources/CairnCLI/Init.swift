import ArgumentParser
import CairnGit
import CairnManifests
import Foundation

extension Cairn {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a starter repository: example manifests, the code they run, schemas and a README.",
            discussion: """
            Creates DIR (default: the current directory, which must then be empty), makes it a \
            git repository on branch main, writes the example churn project (a FeaturePipeline, \
            a TrainingSchedule, a Model, a ModelDeployment and a Monitor, with the Python they \
            run) and JSON Schemas for editors, and commits it. The commit's author comes from \
            GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL when set.

            Examples:
              cairn init churn && cd churn && cairn validate
            """)

        @Argument(help: "The directory to create.")
        var directory: String = "."

        func run() throws {
            let root = URL(fileURLWithPath: directory).standardizedFileURL
            let manager = FileManager.default
            if let existing = try? manager.contentsOfDirectory(atPath: root.path), !existing.isEmpty {
                throw CairnExit.usage("\(directory) is not empty; give a new or empty directory")
            }
            do {
                let commit = try ExampleRepository.create(at: root)
                print("Created a Cairn repository in \(root.path) (commit \(commit.short) on main).")
                print("Next: cd \(directory) && cairn validate   — then read README.md there.")
            } catch let error as CairnExit {
                throw error
            } catch {
                throw CairnExit.unreadable("could not create the repository in \(root.path): \(error)")
            }
        }
    }
}

extension ExampleRepository {
    /// Writes the example (and its schemas) into `root`, makes it a git repository on `main`
    /// and commits it; returns the commit.
    static func create(at root: URL) throws -> ObjectID {
        var files = ExampleRepository.files.mapValues { Data($0.utf8) }
        for (name, data) in JSONSchema.files() { files["schema/\(name)"] = data }
        let manager = FileManager.default
        try manager.createDirectory(at: root, withIntermediateDirectories: true)
        for (path, data) in files {
            let target = root.appendingPathComponent(path)
            try manager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: target)
        }
        let repository = try Repository.create(at: root, bare: false)
        try repository.setHead(branch: "main")
        let commit = try repository.createCommit(
            parent: nil, changes: files.mapValues { Optional($0) },
            message: "Start a Cairn repository\n\nWritten by cairn init: the example churn project and its schemas.\n",
            author: authorFromEnvironment())
        try repository.updateReference("refs/heads/main", to: commit, expected: nil, logMessage: "cairn init")
        try repository.resetIndex(to: commit)
        return commit
    }

    /// GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL when set, else Cairn's own identity.
    static func authorFromEnvironment() -> Signature {
        let environment = ProcessInfo.processInfo.environment
        return Signature(name: environment["GIT_AUTHOR_NAME"] ?? "Cairn", email: environment["GIT_AUTHOR_EMAIL"] ?? "cairn@localhost")
    }
}

import ArgumentParser
import CairnGit
import CairnManifests
import Foundation

extension Cairn {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a starter repository: example manifests, the code they run, schemas and a README.",
            discussion: """
            In a new or empty DIR (default: the current directory): makes it a git repository on \
            branch main, writes the example churn project (a FeaturePipeline, a TrainingSchedule, \
            a Model, a ModelDeployment and a Monitor, with the Python they run) and JSON Schemas \
            for editors, and commits it. The commit's author comes from GIT_AUTHOR_NAME and \
            GIT_AUTHOR_EMAIL when set.

            In a directory that already has files (an existing repository, say): adds the example \
            files that are missing, overwrites none, commits nothing, and lists what it added and \
            what it left alone, so you can review and commit.

            Examples:
              cairn init churn && cd churn && cairn validate
              cd my-existing-repo && cairn init && git status
            """)

        @Argument(help: "The directory to create or add to.")
        var directory: String = "."

        func run() throws {
            let root = URL(fileURLWithPath: directory).standardizedFileURL
            let manager = FileManager.default
            do {
                if let existing = try? manager.contentsOfDirectory(atPath: root.path), !existing.isEmpty {
                    try addMissing(to: root)
                    return
                }
                let commit = try ExampleRepository.create(at: root)
                print("Created a Cairn repository in \(root.path) (commit \(commit.short) on main).")
                print("Next: cd \(directory) && cairn validate && cairn reconcile --once   (then read README.md there)")
            } catch let error as CairnExit {
                throw error
            } catch let error as CocoaError {
                throw CairnExit.unreadable(describe(error))
            } catch {
                throw CairnExit.unreadable("could not create the repository in \(root.path): \(describe(error))")
            }
        }

        /// Writes the example files `root` lacks, leaving every existing file as it is.
        private func addMissing(to root: URL) throws {
            let manager = FileManager.default
            var added: [String] = [], kept: [String] = []
            for (path, data) in ExampleRepository.allFiles().sorted(by: { $0.key < $1.key }) {
                let target = root.appendingPathComponent(path)
                if manager.fileExists(atPath: target.path) {
                    kept.append(path)
                    continue
                }
                try manager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: target, options: .withoutOverwriting)
                added.append(path)
            }
            let isRepository = enclosingRepository(from: root) != nil
            if !isRepository { _ = try Repository.create(at: root, bare: false) }
            print("\(root.path) already has files: added \(added.count) example file(s), overwrote nothing"
                  + (isRepository ? "" : " (and made it a git repository)") + ".")
            for path in added { print("  added  \(path)") }
            for path in kept { print("  kept   \(path) (it exists; not changed)") }
            print("Next: cairn validate, then review and commit what was added: git add -A && git commit -m 'Add Cairn manifests'")
        }
    }
}

extension ExampleRepository {
    /// Every file `cairn init` writes, by path: the example and its schemas.
    static func allFiles() -> [String: Data] {
        var files = ExampleRepository.files.mapValues { Data($0.utf8) }
        for (name, data) in JSONSchema.files() { files["schema/\(name)"] = data }
        return files
    }

    /// Writes the example (and its schemas) into `root`, makes it a git repository on `main`
    /// and commits it; returns the commit.
    static func create(at root: URL) throws -> ObjectID {
        let files = allFiles()
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

import ArgumentParser
import CairnManifests
import Foundation

extension Cairn {
    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "schema",
            abstract: "Print or write the JSON Schemas of the manifest kinds, for editors.",
            discussion: """
            The schemas are generated from the same definitions `cairn validate` checks against. \
            With a YAML language server (VS Code's YAML extension, for one), put this first line \
            in a manifest file to get completion and errors as you type:

              # yaml-language-server: $schema=schema/cairn.json

            Examples:
              cairn schema                       # the schema for any kind
              cairn schema --kind Model
              cairn schema --write schema/       # cairn.json and one file per kind
              cairn schema --reference           # every field of every kind, as Markdown
            """)

        @Option(help: "Print only this kind's schema: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")).")
        var kind: String?

        @Option(help: "Write every schema file into this directory instead of printing.")
        var write: String?

        @Flag(help: "Print the manifest reference (every field of every kind) as Markdown instead.")
        var reference = false

        func validate() throws {
            if let kind, Kind(rawValue: kind) == nil {
                throw ValidationError("unknown kind \(kind); use one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            if reference {
                print(ManifestReference.markdown(), terminator: "")
                return
            }
            if let write {
                let directory = URL(fileURLWithPath: write)
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                for (name, data) in JSONSchema.files().sorted(by: { $0.key < $1.key }) {
                    try data.write(to: directory.appendingPathComponent(name))
                    print("wrote \(directory.appendingPathComponent(name).path)")
                }
                return
            }
            let data = kind.flatMap(Kind.init(rawValue:)).map(JSONSchema.document(for:)) ?? JSONSchema.combinedDocument()
            FileHandle.standardOutput.write(data)
        }
    }
}

import CairnRun
import CairnTestSupport
import Foundation
import Testing

@Suite struct LaunchTests {
    @Test func theEnvironmentIsExactlyWhatWasGiven() throws {
        let given = ["CAIRN_A": "1", "WITH_SPACE": "two words", "EMPTY": "", "QUOTES": "'\"$(x)"]
        let outcome = try Command("/usr/bin/env", environment: given).runSynchronously()
        #expect(outcome.succeeded)
        let lines = outcome.standardOutput.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.sorted() == given.map { "\($0.key)=\($0.value)" }.sorted())

        let inherited = try Command("/usr/bin/env").runSynchronously()
        let path = try #require(ProcessInfo.processInfo.environment["PATH"])
        #expect(inherited.standardOutput.text.split(separator: "\n").contains("PATH=\(path)"[...]))
    }

    @Test func argumentsReachTheChildVerbatim() throws {
        let directory = try TemporaryDirectory()
        let marker = directory.appending("touched")
        let arguments = ["two words", "\"double\"", "'single'", "$(touch \(marker.path))", "`touch \(marker.path)`",
                         "a; touch \(marker.path)", "a && b", "*", "$HOME", "back\\slash", "new\nline", "", "-n", "ünïcødé"]
        let outcome = try Command("printf", ["%s\\0"] + arguments).runSynchronously()
        #expect(outcome.succeeded, "\(outcome.standardError.text)")
        let received = outcome.standardOutput.bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast()
            .map { String(decoding: $0, as: UTF8.self) }
        #expect(received == arguments)
        #expect(!FileManager.default.fileExists(atPath: marker.path), "something ran a shell")
    }

    @Test func theWorkingDirectoryIsHonoured() async throws {
        let directory = try TemporaryDirectory()
        let outcome = try await Command("/bin/pwd", workingDirectory: directory.url).run()
        #expect(outcome.standardOutput.text == directory.url.resolvingSymlinksInPath().path + "\n")
        let here = try await Command("/bin/pwd").run()
        #expect(here.standardOutput.text == URL(fileURLWithPath: FileManager.default.currentDirectoryPath).resolvingSymlinksInPath().path + "\n")
    }

    @Test func aMissingProgramIsAClearError() async throws {
        let directory = try TemporaryDirectory()
        let plain = try directory.write("plain.txt", "not a program")
        let cases: [(Command, RunError.Code, String)] = [
            (Command("cairn-no-such-program"), .notFound, "could not start cairn-no-such-program: no such file on PATH"),
            (Command("/no/such/program"), .notFound, "could not start /no/such/program: no such file"),
            (Command(plain.path), .notExecutable, "could not start \(plain.path): \(plain.path) is not executable (permission denied)"),
            (Command(directory.path), .notExecutable, "could not start \(directory.path): \(directory.path) is a directory"),
            (Command("/bin/sh", workingDirectory: directory.appending("gone")), .workingDirectory,
             "could not start /bin/sh: the working directory \(directory.appending("gone").path) does not exist"),
        ]
        for (command, code, message) in cases {
            #expect {
                try command.runSynchronously()
            } throws: { error in
                (error as? RunError)?.code == code && (error as? RunError)?.message == message
            }
            await #expect(throws: RunError.self) { try await command.run() }
        }
    }

    @Test func aBareNameIsFoundOnPath() throws {
        let path = try ExecutableSearch.path(for: "sh")
        #expect(path.hasPrefix("/") && path.hasSuffix("/sh"))
        #expect(FileManager.default.isExecutableFile(atPath: path))
        #expect(try Command("sh", ["-c", "echo $0"]).runSynchronously().standardOutput.text == "sh\n", "argv[0] is the name as given")
    }
}

import CairnGit
import CairnTestSupport
import Foundation
import Testing

@Suite struct TagTests {
    /// What libgit2 writes, read back by the git command line (an independent witness).
    @Test func writesAnnotatedTagsThatGitReadsAndNeverMovesOne() throws {
        let fixture = try GitFixture()
        let first = try #require(ObjectID(hex: try fixture.commit(["f": "1"])))
        let second = try #require(ObjectID(hex: try fixture.commit(["f": "2"])))
        let repository = try Repository.open(at: fixture.url)
        let tagger = Signature(name: "Dana", email: "dana@example.com", time: Date(timeIntervalSince1970: 1_700_000_123))

        let object = try repository.createAnnotatedTag("churn#production#3", target: first,
                                                       message: "Assigning stage production to artifact churn version v1.0.0\n",
                                                       tagger: tagger)
        #expect(try fixture.git(["cat-file", "-t", "churn#production#3"]) == "tag")
        #expect(try fixture.git(["rev-parse", "refs/tags/churn#production#3"]) == object.hex)
        #expect(try fixture.git(["rev-parse", "churn#production#3^{commit}"]) == first.hex)
        let raw = try fixture.git(["cat-file", "-p", "churn#production#3"])
        #expect(raw.contains("tag churn#production#3\ntagger Dana <dana@example.com> 1700000123"), "\(raw)")
        #expect(raw.hasSuffix("\n\nAssigning stage production to artifact churn version v1.0.0"), "\(raw)")
        try fixture.git(["fsck", "--strict"])

        // Read back through libgit2.
        let read = try #require(try repository.tag(named: "churn#production#3"))
        #expect(read.object == object && read.commit == first && read.isAnnotated)
        #expect(read.annotation?.message == "Assigning stage production to artifact churn version v1.0.0\n")
        #expect(read.annotation?.tagger?.name == "Dana" && read.annotation?.tagger?.email == "dana@example.com")
        #expect(read.annotation?.tagger?.time == tagger.time)

        // The same name again, even at another commit: refused, and the tag stays as it was.
        let again = try #require(throws: GitError.self) {
            try repository.createAnnotatedTag("churn#production#3", target: second, message: "moved\n", tagger: tagger)
        }
        #expect(again.code == .alreadyExists && again.message.contains("churn#production#3"), "\(again)")
        #expect(try fixture.git(["rev-parse", "refs/tags/churn#production#3"]) == object.hex)
    }

    @Test func readsLightweightTagsListsByPatternAndRefusesBadNames() throws {
        let fixture = try GitFixture()
        let first = try fixture.commit(["f": "1"])
        try fixture.git(["tag", "churn@v1.0.0"])
        try fixture.git(["tag", "-a", "-m", "by hand", "churn#staging#1"])
        try fixture.git(["tag", "other@v1.0.0"])
        let repository = try Repository.open(at: fixture.url)

        let light = try #require(try repository.tag(named: "churn@v1.0.0"))
        #expect(!light.isAnnotated && light.object.hex == first && light.commit?.hex == first)
        let annotated = try #require(try repository.tag(named: "churn#staging#1"))
        #expect(annotated.isAnnotated && annotated.object.hex != first && annotated.commit?.hex == first)
        #expect(annotated.annotation?.tagger?.name == "Ada Tester")
        #expect(try repository.tag(named: "churn@v2.0.0") == nil)

        #expect(try repository.tagNames() == ["churn#staging#1", "churn@v1.0.0", "other@v1.0.0"])
        #expect(try repository.tagNames(matching: "churn*") == ["churn#staging#1", "churn@v1.0.0"])
        #expect(try repository.tagNames(matching: "nobody*").isEmpty)

        for bad in ["", "churn@{1}", "a..b", "churn production", "x.lock"] {
            #expect(!Repository.isValidTagName(bad), "\(bad)")
            let error = try #require(throws: GitError.self) {
                try repository.createAnnotatedTag(bad, target: try #require(ObjectID(hex: first)), message: "m\n",
                                                  tagger: Signature(name: "C", email: "c@x"))
            }
            #expect(error.code == .invalidSpec)
        }
        #expect(Repository.isValidTagName("churn#production!#12") && Repository.isValidTagName("churn@v3.0.0"))

        // A target that is not in the repository is named in the error.
        let missing = try #require(ObjectID(hex: String(repeating: "ab", count: 20)))
        let error = try #require(throws: GitError.self) {
            try repository.createAnnotatedTag("churn@v9.0.0", target: missing, message: "m\n", tagger: Signature(name: "C", email: "c@x"))
        }
        #expect(error.code == .notFound && error.message.contains(missing.short), "\(error)")
        #expect(try repository.tag(named: "churn@v9.0.0") == nil)
    }
}

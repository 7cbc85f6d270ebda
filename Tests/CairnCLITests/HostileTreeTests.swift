import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// Writes loose git objects straight into `.git/objects` (zlib, as git does), so a test can
/// build trees that no working tree could hold: 50,000 directories deep, or a billion paths.
let hostileTreeScript = #"""
import hashlib, os, sys, zlib
git = sys.argv[1]
def write(kind, body):
    data = kind.encode() + b" " + str(len(body)).encode() + b"\0" + body
    oid = hashlib.sha1(data).hexdigest()
    path = os.path.join(git, "objects", oid[:2], oid[2:])
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(zlib.compress(data, 1))
    return oid
def tree(entries):  # [(mode, name, oid)], sorted as git sorts (no name here ends a prefix of another)
    return write("tree", b"".join(m.encode() + b" " + n.encode() + b"\0" + bytes.fromhex(o) for m, n, o in sorted(entries, key=lambda e: e[1])))
leaf = write("blob", b"apiVersion: cairn/v1\nkind: Model\nmetadata: {name: bomb}\nspec: {stages: [staging]}\n")
# The bomb: each level holds ten entries that are all the same subtree: 10^9 paths, 10 objects.
level = tree([("100644", "m%d.yaml" % i, leaf) for i in range(10)])
for _ in range(8):
    level = tree([("40000", "d%d" % i, level) for i in range(10)])
bomb = level
# The chain: 50,000 directories, one inside the other.
deep = tree([("100644", "x.yaml", leaf)])
for _ in range(50000):
    deep = tree([("40000", "d", deep)])
valid = [("100644", "m%d.yaml" % i, write("blob", ("apiVersion: cairn/v1\nkind: Model\nmetadata: {name: ok%d}\nspec: {stages: [staging]}\n" % i).encode())) for i in range(3)]
models = tree(valid)
print(tree([("40000", "deep", deep), ("40000", "models", models)]))
print(tree([("40000", "bomb", bomb), ("40000", "models", models)]))
"""#

@Suite(.serialized) struct HostileTreeTests {
    /// Commits whose tree is 50,000 directories deep, or holds a git bomb, beside three valid
    /// manifests: neither crashes nor hangs Cairn; each is refused by path as a located error,
    /// and the valid manifests are reconciled.
    @Test func aDeepTreeAndAGitBombAreRefusedAndTheRestReconciles() throws {
        let repository = try GitFixture()
        let roots = try run("python3", ["-c", hostileTreeScript, repository.url.appendingPathComponent(".git").path])
            .stdout.split(separator: "\n").map(String.init)
        let deep = try repository.git(["commit-tree", roots[0], "-m", "deep"])
        let bomb = try repository.git(["commit-tree", roots[1], "-p", deep, "-m", "bomb"])
        try repository.git(["update-ref", "refs/heads/main", bomb])
        let state = try TemporaryDirectory("cairn-state")

        let deepCheck = try cairn(["validate", "--repo", repository.path, "--rev", deep])
        #expect(deepCheck.status == 1, "\(deepCheck.stdout)\(deepCheck.stderr)")
        #expect(deepCheck.stdout.contains("deep/d/d/d") && deepCheck.stdout.contains("nested more than 128 directories deep"),
                "\(deepCheck.stdout.prefix(2000))")
        let bombCheck = try cairn(["validate", "--repo", repository.path, "--rev", bomb])
        #expect(bombCheck.status == 1)
        #expect(bombCheck.stdout.contains("more than 1000000 entries"), "\(bombCheck.stdout.prefix(2000))")
        #expect(bombCheck.stdout.contains("more directories were not read for the same reasons"), "\(bombCheck.stdout.prefix(2000))")
        #expect(!bombCheck.stdout.contains("Model/bomb"), "the bomb's files lie beyond the budget: none was parsed")
        #expect(bombCheck.stdout.split(separator: "\n").count < 50, "a bounded report, not one line per refused directory")

        // The daemon's pass over both commits (the diff from one to the other too).
        let arguments = ["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path, "--max-tree-entries", "20000"]
        // Exit 1, as validate: the refused directories are invalid manifests; no object stalls.
        try repository.git(["update-ref", "refs/heads/main", deep])
        #expect(try cairn(arguments).status == 1)
        try repository.git(["update-ref", "refs/heads/main", bomb])
        let once = try cairn(arguments)
        #expect(once.status == 1 && once.stdout.contains("could not read: bomb/"), "\(once.stdout)\(once.stderr)")
        #expect(!once.stdout.contains("stalled:"), "\(once.stdout)")
        let files = try repository.git(["ls-tree", "-r", "--name-only", "cairn/status"]).split(separator: "\n")
        #expect(files.count == 4, "\(files)")
        for index in 0..<3 { #expect(files.contains("Model/ok\(index).yaml"), "\(files)") }
    }
}

@Suite struct RefusedDirectoryTests {
    /// An object in a directory the bounds refuse is not read, so it must not be deleted: it
    /// stalls with its last good spec, and comes back once the bounds allow its directory.
    @Test func anObjectInARefusedDirectoryIsKeptNotDeleted() throws {
        let repository = try GitFixture()
        try repository.commit(["a/b/c/deep.yaml": "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: deep}\nspec: {stages: [staging]}\n",
                               "top.yaml": "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: top}\nspec: {stages: [staging]}\n"])
        let state = try TemporaryDirectory("cairn-state")
        let arguments = ["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path]
        #expect(try cairn(arguments).status == 0)
        try repository.commit(["top.yaml": "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: top}\nspec: {stages: [staging, production]}\n"])
        let refused = try cairn(arguments + ["--max-tree-depth", "1"])
        #expect(refused.status == 1 && refused.stdout.contains("stalled: Model/deep"), "\(refused.stdout)")
        let subjects = try repository.git(["log", "--format=%s", "cairn/status"])
        #expect(!subjects.contains("Deleted"), "\(subjects)")
        #expect(try repository.git(["show", "cairn/status:Model/deep.yaml"]).contains("kept with its last good spec"))
        let back = try cairn(arguments)
        #expect(back.status == 0, "\(back.stdout)")
        #expect(try repository.git(["show", "cairn/status:Model/deep.yaml"]).contains("reason: \"NoStageAssigned\""))
    }
}

@Suite struct HostileYAMLTests {
    /// About 500 bytes whose aliases expand to 10^10 nodes, used as a mapping key: refused as a
    /// key in milliseconds (it used to hang), while the manifest beside it reconciles.
    @Test func anAliasBombUsedAsAKeyIsRefusedAndTheNeighboursReconcile() throws {
        var bomb = "apiVersion: cairn/v1\nx0: &a0 [x,x,x,x,x,x,x,x,x,x]\n"
        for level in 1..<10 { bomb += "x\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ",") + "]\n" }
        bomb += "? *a9\n: v\n"
        let repository = try GitFixture()
        try repository.commit(["bomb.yaml": bomb, "ok.yaml": "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: ok}\nspec: {stages: [staging]}\n",
                               "params.yaml": "learning_rate: 0.1\n"])
        let validate = try Command(try cairnExecutable(), ["validate", "--repo", repository.path, "--rev", "main"],
                                   timeout: .seconds(60)).runSynchronously()
        #expect(!validate.timedOut && validate.termination == .exited(1))
        #expect(validate.standardOutput.text.contains("bomb.yaml:"), "\(validate.standardOutput.text)")
        #expect(validate.standardOutput.text.contains("a mapping key must be a plain value, not a list or a mapping"),
                "\(validate.standardOutput.text)")
        #expect(validate.standardOutput.text.contains("1 YAML document skipped as not Cairn manifests"), "\(validate.standardOutput.text)")
        let state = try TemporaryDirectory("cairn-state")
        let once = try cairn(["reconcile", "--once", "--repo", repository.path, "--state-dir", state.path])
        #expect(once.status == 1 && once.stdout.contains("could not read: bomb.yaml:"), "\(once.stdout)")
        #expect(try repository.git(["show", "cairn/status:Model/ok.yaml"]).contains("NoStageAssigned"))
    }
}

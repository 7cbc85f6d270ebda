import CairnCore
import CairnManifests
import Foundation
import Testing

/// A repository in memory: file path → text. Directories exist where files are below them.
private struct MemoryFiles: SourceFiles {
    var files: [String: String]

    func contents(of path: RepositoryPath) throws -> Data? {
        files[path.value].map { Data($0.utf8) }
    }

    func contentHash(of path: RepositoryPath) throws -> ContentHash? {
        if let text = files[path.value] { return ContentHash(hex: String(text.hashValue, radix: 16)) }
        return files.keys.contains { $0.hasPrefix(path.value + "/") } ? ContentHash(hex: "d1") : nil
    }
}

private func find(_ command: [String], outs: [String] = [], in files: [String: String],
                  limits: CodeDependencies.Limits = .init()) throws -> CodeDependencies {
    try CodeDependencies.find(command: command, outs: outs.map { try RepositoryPath($0) }, in: MemoryFiles(files: files), limits: limits)
}

private extension CodeDependencies {
    var names: [String] { paths.map(\.value) }
    func via(_ path: String) -> String? { importedBy[RepositoryPath(unsafe: path)]?.value }
}

private extension RepositoryPath {
    init(unsafe value: String) { self = try! RepositoryPath(value) }
}

@Suite struct CodeDependenciesTests {
    @Test func aScriptAndWhatItImportsTransitively() throws {
        let found = try find(["python3", "featurize.py", "data/raw.csv", "features.csv"], outs: ["features.csv"], in: [
            "featurize.py": "import os\nfrom src.features import build\n\nbuild()\n",
            "src/features.py": "import numpy as np\nfrom src import util\n",
            "src/util.py": "def helper(): pass\n",
            "src/unused.py": "",
            "data/raw.csv": "a,b\n",
            "features.csv": "stale output committed by mistake\n",
        ])
        #expect(found.names == ["data/raw.csv", "featurize.py", "src/features.py", "src/util.py"])
        #expect(found.via("src/features.py") == "featurize.py" && found.via("src/util.py") == "src/features.py")
        #expect(found.via("featurize.py") == nil && found.via("data/raw.csv") == nil)
        #expect(!found.limitReached)
    }

    @Test func packagesAndTheirInitFiles() throws {
        let found = try find(["python3", "train.py"], in: [
            "train.py": "import lib.models.linear\nfrom lib import metrics, VERSION\nimport lib.data as data\n",
            "lib/__init__.py": "VERSION = 1\n",
            "lib/models/__init__.py": "",
            "lib/models/linear.py": "",
            "lib/metrics/__init__.py": "from .auc import auc\n",
            "lib/metrics/auc.py": "",
            "lib/data.py": "",
        ])
        #expect(found.names == ["lib/__init__.py", "lib/data.py", "lib/metrics/__init__.py", "lib/metrics/auc.py",
                                "lib/models/__init__.py", "lib/models/linear.py", "train.py"])
    }

    @Test func relativeImportsResolveAgainstTheImportingPackage() throws {
        let found = try find(["python3", "pipelines/run.py"], in: [
            "pipelines/run.py": "from steps import clean\n",
            "pipelines/steps/__init__.py": "",
            "pipelines/steps/clean.py": "from . import shared\nfrom .io import read\nfrom ..common import paths\nfrom ...outside import x\n",
            "pipelines/steps/shared.py": "",
            "pipelines/steps/io.py": "",
            "pipelines/common.py": "",
            "common.py": "never imported: relative to the package, not the root\n",
        ])
        #expect(found.names == ["pipelines/common.py", "pipelines/run.py", "pipelines/steps/__init__.py", "pipelines/steps/clean.py",
                                "pipelines/steps/io.py", "pipelines/steps/shared.py"])
    }

    @Test func absoluteImportsResolveAgainstTheEntryScriptsDirectory() throws {
        let found = try find(["python3", "jobs/train.py"], in: [
            "jobs/train.py": "import helpers\n",
            "jobs/helpers.py": "import config\n",
            "jobs/config.py": "",
            "helpers.py": "the root is not on sys.path\n",
            "config.py": "",
        ])
        #expect(found.names == ["jobs/config.py", "jobs/helpers.py", "jobs/train.py"])
    }

    @Test func theScannerReadsImportsAsPythonWritesThem() throws {
        let source = #"""
        """Docstring: import fake_in_docstring"""
        import a, b as bee   # import fake_in_comment
        from c.d import (e,
                         f as eff,   # a comment inside
                        )
        from g import \
            h
        def later():
            try:
                import i
            except ImportError:
                from j import *
        text = "import fake_in_string"; import k
        s = '''
        import fake_in_triple
        '''
        """#
        let names = ["a", "b", "c/d", "c/d/e", "c/d/f", "g", "g/h", "i", "j", "k",
                     "fake_in_docstring", "fake_in_comment", "fake_in_string", "fake_in_triple"]
        var files = Dictionary(uniqueKeysWithValues: names.map { ("\($0).py", "") })
        files["main.py"] = source
        let found = try find(["python3", "main.py"], in: files)
        #expect(found.names == ["a.py", "b.py", "c/d.py", "c/d/e.py", "c/d/f.py", "g.py", "g/h.py", "i.py", "j.py", "k.py", "main.py"])
    }

    @Test func modulesThatAreNotInTheRepositoryAreSkipped() throws {
        let found = try find(["python3", "run.py"], in: [
            "run.py": "import json\nimport numpy.linalg\nfrom collections import OrderedDict\nimport util\n",
            "util.py": "",
            "lib/json.py": "not on the path of run.py's imports\n",
        ])
        #expect(found.names == ["run.py", "util.py"])
    }

    @Test func anImportCycleEnds() throws {
        let found = try find(["python3", "a.py"], in: ["a.py": "import b\n", "b.py": "import a\nimport c\n", "c.py": "from . import a\n"])
        #expect(found.names == ["a.py", "b.py", "c.py"])
    }

    @Test func argumentsNameFilesDirectoriesAndScriptsButNotOutputs() throws {
        let files = [
            "run.sh": "#!/bin/sh\n", "scripts/x.sh": "", "data/x.csv": "", "conf/a.yaml": "", "out/model.bin": "old",
            "train.py": "",
        ]
        let found = try find(["./run.sh", "--input=data/x.csv", "--config", "conf", "--out=out/model.bin", "missing.csv",
                              "/etc/passwd", "../escape", "--rows", "2000", "train.py"],
                             outs: ["out"], in: files)
        #expect(found.names == ["conf", "data/x.csv", "run.sh", "train.py"])
        #expect(try find(["scripts/x.sh"], in: files).names == ["scripts/x.sh"])
        // A bare program name is a program on PATH, even when a file of that name is in the repository.
        #expect(try find(["python3"], in: ["python3": ""]).names.isEmpty)
    }

    @Test func aModuleRunWithDashM() throws {
        let found = try find(["python3", "-m", "pkg.train", "--epochs", "3"], in: [
            "pkg/__init__.py": "", "pkg/train.py": "from pkg.util import f\n", "pkg/util.py": "",
        ])
        #expect(found.names == ["pkg/__init__.py", "pkg/train.py", "pkg/util.py"])
    }

    @Test func limitsStopTheScanAndSaySo() throws {
        var files = ["main.py": "import m0\n"]
        for index in 0..<10 { files["m\(index).py"] = "import m\(index + 1)\n" }
        let bounded = try find(["python3", "main.py"], in: files, limits: .init(files: 4))
        #expect(bounded.limitReached && bounded.names.count == 5, "\(bounded.names)")
        let large = try find(["python3", "main.py"], in: ["main.py": "import a\n" + String(repeating: "#", count: 100), "a.py": ""],
                             limits: .init(bytesPerFile: 64))
        #expect(large.limitReached && large.names == ["main.py"])
        #expect(try find(["python3", "main.py"], in: files).names.count == 11)
    }
}

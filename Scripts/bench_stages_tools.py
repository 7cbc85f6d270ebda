"""The two sides of Scripts/bench-stages.py: Cairn through `cairn-bench plan` and
`cairn-bench stages` (which time the commands and the in-process calls themselves and check
every answer), and GTO over a git repository holding the same stage history as its tags.
Standard library only."""
import datetime
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
from bench_pipelines_repos import Failure, timed  # noqa: E402
from bench_registry_clients import held_at  # noqa: E402
from bench_registry_tools import CLIENTS, expect, parse_json  # noqa: E402


class Cairn:
    def __init__(self, cairn, bench, folder, keep):
        self.cairn, self.bench, self.folder, self.keep = cairn, bench, folder, keep
        self.export = os.path.join(folder, "stages.json")

    def run(self, command, *arguments):
        """One `cairn-bench` report, its progress passed on as it comes."""
        argv = [self.bench, command, "--format", "json", "--cairn", self.cairn, *arguments]
        if self.keep:
            argv += ["--directory", os.path.join(self.folder, command)]
        process = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None, text=True, timeout=3600)
        if process.returncode != 0:
            raise Failure(f"cairn-bench {command} exited {process.returncode} (its error is above)")
        return parse_json(process.stdout, f"cairn-bench {command}")

    def plan(self, manifests, repeats):
        return self.run("plan", "--manifests", str(manifests), "--repeats", str(repeats))

    def stages(self, changes, day, repeats):
        return self.run("stages", "--changes", str(changes), "--at", day, "--repeats", str(repeats), "--export", self.export)


class Gto:
    """A git repository as GTO keeps a registry, with the history Cairn's store was given: a
    commit and an annotated tag `NAME@vN.0.0` per registered version, and an annotated tag
    `NAME#STAGE#K` per stage change at its version's commit (K counts the artifact's assignments,
    as `gto assign` numbers them), each dated when Cairn registered or applied it and with the
    message GTO writes. Written directly with one `git fast-import`, as bench-registry writes
    its tags with git."""

    def __init__(self, gto, python, folder, export):
        self.gto, self.python = gto, python
        self.repo = os.path.join(folder, "gto-repo")
        with open(export) as f:
            self.history = json.load(f)
        self.model = self.history["model"]

    def populate(self):
        model, versions, changes = self.model, self.history["versions"], self.history["changes"]
        os.makedirs(self.repo)
        timed(["git", "init", "-q", "-b", "main"], cwd=self.repo)
        stream = []

        def when(stamp):
            return f"{int(datetime.datetime.fromisoformat(stamp.replace('Z', '+00:00')).timestamp())} +0000"

        def data(text):
            raw = text.encode()
            stream.append(b"data %d\n" % len(raw) + raw + b"\n")

        def tag(name, mark, stamp, message):
            stream.append(f"tag {name}\nfrom :{mark}\ntagger bench <bench@localhost> {when(stamp)}\n".encode())
            data(message)

        for version in versions:
            number, stamp = version["version"], version["registeredAt"]
            stream.append(f"commit refs/heads/main\nmark :{number}\ncommitter bench <bench@localhost> {when(stamp)}\n".encode())
            data(f"train {model} version {number}")
            stream.append(b"M 644 inline params.yaml\n")
            data(f"C: 1.0\nmax_iter: {200 + number * 10}\n")
            tag(f"{model}@v{number}.0.0", number, stamp, f"Registering artifact {model} version v{number}.0.0")
        for count, change in enumerate(changes, start=1):
            number, stage = change["version"], change["stage"]
            tag(f"{model}#{stage}#{count}", number, change["appliedAt"], f"Assigning stage {stage} to artifact {model} version v{number}.0.0")
        started = datetime.datetime.now()
        process = subprocess.run(["git", "fast-import", "--quiet"], cwd=self.repo, input=b"".join(stream), capture_output=True, timeout=600)
        if process.returncode != 0:
            raise Failure(f"git fast-import exited {process.returncode}: {process.stderr.decode()[-300:]}")
        timed(["git", "reset", "-q", "--hard", "main"], cwd=self.repo)
        return (datetime.datetime.now() - started).total_seconds()

    def start_up(self):
        return timed([self.gto, "--version"])[0]

    def history_call(self, day, expected):
        """`gto history NAME --json`: every event, from which the stages held on `day` are read (not timed) and checked."""
        seconds, output = timed([self.gto, "history", self.model, "--json", "-r", self.repo], timeout=3600)
        events = parse_json(output, "gto history --json")
        expect("assignments `gto history` listed", sum(1 for e in events if e.get("event") == "assignment"), len(self.history["changes"]))
        expect("registrations `gto history` listed", sum(1 for e in events if e.get("event") == "registration"), len(self.history["versions"]))
        expect(f"the stages on {day} read from `gto history`", held_at(events, day), expected)
        return seconds

    def show_call(self):
        """`gto show NAME --json`: its versions, with the stages each holds now."""
        seconds, output = timed([self.gto, "show", self.model, "--json", "-r", self.repo], timeout=3600)
        current = {stage["stage"]: int(version["version"].lstrip("v").split(".")[0])
                   for version in parse_json(output, "gto show --json") for stage in version["stages"]}
        expect("the current stages `gto show` gave", current, self.current())
        return seconds

    def current(self):
        holders = {}
        for change in self.history["changes"]:
            holders[change["stage"]] = change["version"]
        return holders

    def in_process(self, day, expected, inner):
        _, output = timed([self.python, CLIENTS, "gto-stages-time", "--repo", self.repo, "--model", self.model, "--at", day,
                           "--inner", str(inner)], timeout=3600)
        result = parse_json(output, "gto-stages-time")
        expect("assignments gto.api.history returned", result["assignments"], len(self.history["changes"]))
        expect(f"the stages on {day} read from gto.api.history", result["heldAt"], expected)
        expect("the current stages gto.api.show gave", result["current"], self.current())
        return result

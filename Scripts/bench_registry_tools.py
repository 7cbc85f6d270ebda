"""The three registries of Scripts/bench-registry.py and how each is filled and asked: Cairn's
store through cairn-bench and `cairn models`, a GTO repository written as git tags and read with
`gto`, an MLflow sqlite store written and read through MlflowClient (Scripts/bench_registry_clients.py,
run by the venv's Python). Standard library only."""
import datetime
import json
import os
import sys

sys.dont_write_bytecode = True
from bench_pipelines_repos import Failure, git, progress, timed  # noqa: E402,F401

CLIENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_registry_clients.py")
# The populated versions are dated weekly from here, in all three registries.
ORIGIN = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
# In-process calls of GTO a repeat, at most (Cairn and MLflow make --inner).
GTO_INNER = 5


def model_name(index):
    return f"m{index:03d}"


def parse_json(output, what):
    """The JSON a command printed on stdout (`timed` gives stdout then stderr: take the first document)."""
    try:
        value, _ = json.JSONDecoder().raw_decode(output.lstrip())
        return value
    except ValueError as error:
        raise Failure(f"{what} did not print JSON ({error}): {output[:300]!r}")


def expect(what, found, wanted):
    if found != wanted:
        raise Failure(f"{what}: found {found}, expected {wanted}; the figure would not measure the registry asked for")


class Cairn:
    name = "Cairn"

    def __init__(self, cairn, bench, folder, models, versions):
        self.cairn, self.bench, self.models, self.versions = cairn, bench, models, versions
        self.state = os.path.join(folder, "state")

    def populate(self):
        seconds, output = timed([self.bench, "registry", "--state-dir", self.state, "--populate",
                                 "--models", str(self.models), "--versions", str(self.versions)])
        return seconds, parse_json(output, "cairn-bench registry --populate")

    def start_up(self):
        return timed([self.cairn, "--version"])[0]

    def list(self):
        seconds, output = timed([self.cairn, "models", "--state-dir", self.state, "--format", "json"])
        expect("models `cairn models` listed", len(parse_json(output, "cairn models")), self.models)
        return seconds

    def history(self, model):
        seconds, output = timed([self.cairn, "models", model, "--state-dir", self.state, "--format", "json"])
        expect(f"versions `cairn models {model}` listed", len(parse_json(output, "cairn models NAME")), self.versions)
        return seconds

    def in_process(self, model, register_model, inner):
        _, output = timed([self.bench, "registry", "--state-dir", self.state, "--model", model,
                           "--register-model", register_model, "--repeats", str(inner)])
        result = parse_json(output, "cairn-bench registry")
        expect("models registeredModels() returned", result["models"], self.models)
        expect(f"versions of {model} versions(of:) returned", result["historyVersions"], self.versions)
        return {"list": result["listSeconds"], "history": result["historySeconds"], "register": result["registerSeconds"]}


class Gto:
    """A git repository as GTO keeps a registry: one commit per training and one annotated tag
    `NAME@vK.0.0` per registered version, with the message `gto register` writes; with
    `annotated`, an artifacts.yaml in every commit that describes every model, as `gto annotate`
    writes it. GTO reads that file once for each version it finds (gto/index.py `describe`), so
    its calls grow with versions × models; without it, GTO knows the models from the tags alone."""

    def __init__(self, gto, python, folder, models, versions, annotated):
        self.gto, self.python, self.models, self.versions = gto, python, models, versions
        self.name = "GTO" if annotated else "GTO, tags only"
        self.annotated = annotated
        self.repo = os.path.join(folder, "gto-repo" if annotated else "gto-repo-tags")
        self.next = versions + 1   # the next version number registered (of the register model)

    def populate(self):
        os.makedirs(self.repo)
        git(self.repo, "init", "-q", "-b", "main")
        if self.annotated:
            with open(os.path.join(self.repo, "artifacts.yaml"), "w") as f:
                for index in range(self.models):
                    name = model_name(index)
                    f.write(f"{name}:\n  type: model\n  path: models/{name}.pkl\n  description: {name}, trained weekly\n"
                            f"  labels: [team-t{index % 17}]\n")
        started = datetime.datetime.now()
        commits = []
        for number in range(1, self.versions + 1):
            with open(os.path.join(self.repo, "params.yaml"), "w") as f:
                f.write(f"C: 1.0\nmax_iter: {200 + number * 10}\n")
            git(self.repo, "add", "-A")
            when = (ORIGIN + datetime.timedelta(weeks=number)).isoformat()
            env = dict(os.environ, GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
            timed(["git", "commit", "-q", "-m", f"train {number}"], cwd=self.repo, env=env)
            commits.append(git(self.repo, "rev-parse", "HEAD").strip())
        for index in range(self.models):
            name = model_name(index)
            if index % 20 == 0:
                progress(f"{self.name}: writing the tags of {name} (git tag -a, {self.versions} a model)")
            for number, commit in enumerate(commits, start=1):
                when = (ORIGIN + datetime.timedelta(weeks=number, minutes=index)).isoformat()
                version = f"v{number}.0.0"
                timed(["git", "tag", "-a", f"{name}@{version}", "-m", f"Registering artifact {name} version {version}", commit],
                      cwd=self.repo, env=dict(os.environ, GIT_COMMITTER_DATE=when))
        return (datetime.datetime.now() - started).total_seconds(), {}

    def start_up(self):
        return timed([self.gto, "--version"])[0]

    def list(self):
        seconds, output = timed([self.gto, "show", "--json", "-r", self.repo], timeout=3600)
        expect("artifacts `gto show` listed", len(parse_json(output, "gto show --json")), self.models)
        return seconds

    def history(self, model):
        seconds, output = timed([self.gto, "history", model, "--json", "-r", self.repo], timeout=3600)
        events = parse_json(output, "gto history --json")
        registrations = [e for e in events if e.get("event") == "registration" and e.get("artifact") == model]
        expect(f"registrations `gto history {model}` listed", len(registrations), self.versions)
        return seconds

    def register(self, model):
        # GTO gives a commit at most one version of an artifact: a new version is a new commit (not timed).
        git(self.repo, "commit", "-q", "--allow-empty", "-m", f"retrain {model}")
        version = f"v{self.next}.0.0"
        seconds, _ = timed([self.gto, "register", model, "HEAD", "--version", version, "-r", self.repo], timeout=3600)
        expect(f"tag {model}@{version} after `gto register`", git(self.repo, "tag", "-l", f"{model}@{version}").strip(), f"{model}@{version}")
        self.next += 1
        return seconds

    def in_process(self, model, register_model, inner):
        # Each GTO call takes seconds here: a few calls a repeat give a steady median.
        _, output = timed([self.python, CLIENTS, "gto-time", "--repo", self.repo, "--model", model,
                           "--register-model", register_model, "--first", str(self.next), "--inner", str(min(inner, GTO_INNER))],
                          timeout=3600)
        result = parse_json(output, "gto-time")
        expect("artifacts gto.api.show returned", result["listedModels"], self.models)
        expect(f"registrations gto.api.history({model}) returned", result["historyVersions"], self.versions)
        self.next = result["next"]
        return result


class MLflow:
    """An MLflow registry in a sqlite file, used through MlflowClient directly (no server)."""
    name = "MLflow"

    def __init__(self, python, folder, models, versions):
        self.python, self.models, self.versions = python, models, versions
        self.db = os.path.join(folder, "mlflow.db")
        self.artifacts = os.path.join(folder, "mlflow-artifacts")

    def call(self, command, *arguments):
        return timed([self.python, CLIENTS, command, "--db", self.db, "--artifacts", self.artifacts, *arguments], timeout=3600)

    def populate(self):
        seconds, output = self.call("mlflow-populate", "--models", str(self.models), "--versions", str(self.versions))
        return seconds, parse_json(output, "mlflow-populate")

    def start_up(self):
        return timed([self.python, "-c", "import mlflow"])[0]

    def list(self):
        seconds, output = self.call("mlflow-list")
        expect("models search_registered_models returned", parse_json(output, "mlflow-list")["listedModels"], self.models)
        return seconds

    def history(self, model):
        seconds, output = self.call("mlflow-history", "--model", model)
        expect(f"versions of {model} search_model_versions returned", parse_json(output, "mlflow-history")["historyVersions"], self.versions)
        return seconds

    def register(self, model):
        return self.call("mlflow-register", "--register-model", model)[0]

    def in_process(self, model, register_model, inner):
        _, output = self.call("mlflow-time", "--model", model, "--register-model", register_model, "--inner", str(inner))
        result = parse_json(output, "mlflow-time")
        expect("models search_registered_models returned", result["listedModels"], self.models)
        expect(f"versions of {model} search_model_versions returned", result["historyVersions"], self.versions)
        return result

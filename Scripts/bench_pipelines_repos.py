"""The pipelines, repositories and tool invocations of Scripts/bench-pipelines.py: the same
stages written as a Cairn FeaturePipeline and as a dvc.yaml, in fresh git repositories."""
import json
import os
import shlex
import statistics
import subprocess
import sys
import time


class Failure(Exception):
    """A command failed or a tool did not do what the measurement needs; the figure is void."""


def machine():
    """The machine the figures come from: CPU, cores, memory and load, for the report's header."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 30
    return {"cpu": cpu, "cores": os.cpu_count(), "memoryGiB": memory, "loadAverage": list(os.getloadavg())}


def progress(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def timed(argv, cwd=None, timeout=600, env=None):
    """Runs argv to its end; returns its wall time and its output (stdout then stderr)."""
    started = time.perf_counter()
    process = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=env)
    elapsed = time.perf_counter() - started
    output = process.stdout + process.stderr
    if process.returncode != 0:
        progress(f"`{shlex.join(argv)}` exited {process.returncode} in {cwd or '.'}; the end of its output:\n{output[-3000:]}")
        last = [line.strip() for line in output.splitlines() if line.strip()][-2:]
        raise Failure(f"`{os.path.basename(argv[0])} {argv[1] if len(argv) > 1 else ''}` exited {process.returncode}: {' / '.join(last)}")
    return elapsed, output


def prepare_environment(work):
    """A git identity for the generated commits, no user or system git configuration, and DVC
    without analytics and with its site cache (its hash state) inside the work folder."""
    empty = os.path.join(work, "gitconfig")
    open(empty, "w").close()
    os.environ.update({
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost",
        "GIT_CONFIG_GLOBAL": empty, "GIT_CONFIG_NOSYSTEM": "1",
        "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": os.path.join(work, "dvc-site-cache"),
    })


def git(repo, *args):
    return timed(["git", *args], cwd=repo)[1]


# Pipelines: lists of stages {name, argv, deps, outs}; deps under in/ are committed inputs.

def touch_stage(name, deps):
    return {"name": name, "argv": ["touch", f"out/{name}.txt"], "deps": deps, "outs": [f"out/{name}.txt"]}


def independent_touch_stages(n):
    """n stages, each touching its own output and depending on its own small input file."""
    return [touch_stage(f"s{i:03d}", [f"in/s{i:03d}.txt"]) for i in range(n)]


def chained_touch_stages(n, chain):
    """n stages in chains of `chain`: each depends on its input and on the previous stage's output."""
    stages = []
    for i in range(n):
        deps = [f"in/s{i:03d}.txt"] + ([f"out/s{i - 1:03d}.txt"] if i % chain else [])
        stages.append(touch_stage(f"s{i:03d}", deps))
    return stages


SLEEP_AND_WRITE = "import sys, time, pathlib; time.sleep({seconds}); pathlib.Path(sys.argv[1]).write_text(sys.argv[1])"


def branch_sleep_stages(chains, seconds):
    """Independent branches, chains[b] stages long; each stage sleeps, then writes its output."""
    stages = []
    for b, length in enumerate(chains):
        for s in range(length):
            name = f"b{b}-s{s}"
            out = f"out/{name}.txt"
            deps = [f"in/b{b}.txt"] if s == 0 else [f"out/b{b}-s{s - 1}.txt"]
            argv = ["python3", "-c", SLEEP_AND_WRITE.format(seconds=seconds), out]
            stages.append({"name": name, "argv": argv, "deps": deps, "outs": [out]})
    return stages


def write_repository(folder, stages):
    """A git repository on `main` with every input of `stages`, an out/ folder and a notes file."""
    git(folder, "init", "-q", "-b", "main")
    for stage in stages:
        for dep in stage["deps"]:
            if dep.startswith("in/"):
                os.makedirs(os.path.join(folder, "in"), exist_ok=True)
                with open(os.path.join(folder, dep), "w") as f:
                    f.write(f"input of {stage['name']}\n")
    os.makedirs(os.path.join(folder, "out"), exist_ok=True)
    open(os.path.join(folder, "out", ".gitkeep"), "w").close()
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("notes unrelated to the pipeline\n")


def commit_all(folder, message):
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", message)


def commit_unrelated_change(folder, round_):
    with open(os.path.join(folder, "notes.txt"), "a") as f:
        f.write(f"round {round_}\n")
    commit_all(folder, f"notes, round {round_}")


def expect_outputs(folder, stages):
    missing = [out for stage in stages for out in stage["outs"] if not os.path.exists(os.path.join(folder, out))]
    if missing:
        raise Failure(f"{len(missing)} outputs missing after the run, such as {missing[0]}")


class Cairn:
    def __init__(self, binary):
        self.binary = binary

    def pipeline_repo(self, folder, stages):
        """The repository (with the pipeline as pipeline.yaml) and a state directory beside it."""
        repo = os.path.join(folder, "repo")
        os.makedirs(repo)
        write_repository(repo, stages)
        lines = ["apiVersion: cairn/v1", "kind: FeaturePipeline", "metadata: {name: bench}", "spec:", "  stages:"]
        for stage in stages:
            lines += [f"    - name: {stage['name']}",
                      f"      command: {json.dumps(stage['argv'])}",
                      f"      deps: {json.dumps(stage['deps'])}",
                      f"      outs: {json.dumps(stage['outs'])}"]
        with open(os.path.join(repo, "pipeline.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        commit_all(repo, "pipeline")
        return repo, os.path.join(folder, "state")

    def reconcile(self, repo, state, max_runs=None):
        argv = [self.binary, "reconcile", "--once", "--repo", repo, "--state-dir", state]
        if max_runs is not None:
            argv += ["--max-runs", str(max_runs)]
        return timed(argv, timeout=1800)

    def runs(self, repo, state):
        _, output = timed([self.binary, "runs", "--format", "json", "--limit", "10000", "--state-dir", state, "--repo", repo])
        return json.loads(output[output.index("["):])

    def expect_runs(self, repo, state, succeeded, why="every stage must have run once"):
        records = self.runs(repo, state)
        states = {}
        for record in records:
            states[record.get("state")] = states.get(record.get("state"), 0) + 1
        if states.get("succeeded", 0) != succeeded or states.get("failed"):
            failed = next((r for r in records if r.get("state") == "failed"), None)
            raise Failure(f"expected {succeeded} succeeded runs ({why}), found {states or 'none'}"
                          + (f"; {failed.get('stage')}: {failed.get('reason')}" if failed else ""))
        return records

    def hash(self, bench_binary, file, repeats):
        _, output = timed([bench_binary, "--hash", file, "--repeats", str(repeats), "--format", "json"], timeout=1800)
        return json.loads(output[output.index("{"):])


class Dvc:
    def __init__(self, executable):
        self.executable = executable
        self.version = timed([executable, "--version"])[1].strip()

    def run(self, repo, *args, timeout=600):
        return timed([self.executable, *args], cwd=repo, timeout=timeout)

    def empty_repo(self, folder):
        repo = os.path.join(folder, "repo")
        os.makedirs(repo)
        git(repo, "init", "-q", "-b", "main")
        self.run(repo, "init", "-q")
        commit_all(repo, "dvc init")
        return repo

    def pipeline_repo(self, folder, stages):
        """The same stages as a dvc.yaml (JSON is YAML), each command a shell line of the argv."""
        repo = os.path.join(folder, "repo")
        os.makedirs(repo)
        write_repository(repo, stages)
        self.run(repo, "init", "-q")
        pipeline = {"stages": {s["name"]: {"cmd": shlex.join(s["argv"]), "deps": s["deps"], "outs": s["outs"]} for s in stages}}
        with open(os.path.join(repo, "dvc.yaml"), "w") as f:
            json.dump(pipeline, f, indent=1)
        commit_all(repo, "pipeline")
        return repo


def touch_seconds(work, samples):
    """The median wall time of one `touch` process started from here."""
    path = os.path.join(work, "touched")
    times = [timed(["touch", path])[0] for _ in range(samples)]
    return statistics.median(times)


def write_big_file(path, size):
    """`size` bytes of pseudo-random data, cheap to make: a 16 MiB random block, numbered per piece."""
    block = os.urandom(16 << 20)
    with open(path, "wb") as f:
        written, piece = 0, 0
        while written < size:
            data = piece.to_bytes(8, "little") + block[8:]
            data = data[:size - written]
            f.write(data)
            written += len(data)
            piece += 1
        f.flush()
        os.fsync(f.fileno())

#!/usr/bin/env python3
"""Pipeline benchmark of issue 10: Cairn beside DVC on generated pipelines, each in fresh
temporary git repositories. Standard library only; run it through Scripts/bench-pipelines,
which builds cairn and installs DVC into a venv first.

Figures are printed, never asserted: the development machine is shared and noisy, so
compare the ratios measured in one run. Progress goes to stderr, the table (or JSON) to stdout.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in Scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_pipelines_repos as repos  # noqa: E402
from bench_pipelines_repos import Failure, progress, timed  # noqa: E402

# Runs one stage as `touch` does: the time of one such process is taken off the per-stage figure.
TOUCH_SAMPLES = 50


class Row:
    """One line of the table: Cairn's figure, DVC's, their ratio (Cairn time / DVC time)."""

    def __init__(self, key, label, cairn=None, dvc=None, target=None, note="", unit="s", show_ratio=True):
        self.key, self.label, self.target, self.note, self.unit = key, label, target, note, unit
        self.cairn_samples = cairn or []
        self.dvc_samples = dvc or []
        self.show_ratio = show_ratio
        self.error = None

    @property
    def cairn(self):
        return statistics.median(self.cairn_samples) if self.cairn_samples else None

    @property
    def dvc(self):
        return statistics.median(self.dvc_samples) if self.dvc_samples else None

    @property
    def ratio(self):
        if not self.show_ratio or self.cairn is None or not self.dvc:
            return None
        return self.cairn / self.dvc

    def json(self):
        return {
            "key": self.key, "label": self.label, "unit": self.unit,
            "cairn": self.cairn, "dvc": self.dvc, "ratio": self.ratio,
            "cairnSamples": self.cairn_samples, "dvcSamples": self.dvc_samples,
            "target": self.target, "note": self.note, "error": self.error,
        }


class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.rows = []
        self.cairn = repos.Cairn(args.cairn)
        self.dvc = repos.Dvc(args.dvc) if args.dvc else None
        self.repeats = args.repeats
        quick = args.quick
        self.stages = 20 if quick else 100
        self.chains = [3, 3, 3, 3] if quick else [8, 8, 7, 7]
        self.big_bytes = (256 if quick else 1024) << 20

    def add(self, row):
        self.rows.append(row)
        return row

    def folder(self, name):
        path = tempfile.mkdtemp(prefix=name + "-", dir=self.work)
        return path

    # 1. A pipeline that is up to date: how long to decide that nothing needs running.
    def up_to_date(self):
        n = self.stages
        stages = repos.chained_touch_stages(n, chain=10)
        wall = self.add(Row("uptodate.wall", f"{n} stages up to date, unrelated commit: reconcile --once vs dvc status",
                            note="process wall times; Cairn's includes start-up and its status commit"))
        repro = self.add(Row("uptodate.repro", "  the same vs `dvc repro` with nothing to do",
                             note="Cairn's column repeats reconcile --once, for the ratio"))
        idle = self.add(Row("uptodate.idle", "  Cairn reconcile --once over an already reconciled tip (start-up)", show_ratio=False,
                            note="opens repository, store and lock; decides nothing"))
        decide = self.add(Row("uptodate.decide", "  Cairn decision: new-commit pass − already-reconciled pass", show_ratio=False,
                              target=0.050, note="manifests read, every stage's key computed and looked up, status written"))
        progress(f"1/4 up to date: full Cairn run of {n} chained stages")
        repo, state = self.cairn.pipeline_repo(self.folder("uptodate-cairn"), stages)
        self.cairn.reconcile(repo, state)
        self.cairn.expect_runs(repo, state, succeeded=n)
        for r in range(self.repeats):
            repos.commit_unrelated_change(repo, r)
            seconds, output = self.cairn.reconcile(repo, state)
            self.cairn.expect_runs(repo, state, succeeded=n, why="an unrelated commit must start no run")
            wall.cairn_samples.append(seconds)
            repro.cairn_samples.append(seconds)
            idle_seconds, _ = self.cairn.reconcile(repo, state)
            idle.cairn_samples.append(idle_seconds)
            decide.cairn_samples.append(seconds - idle_seconds)
        progress(f"1/4 up to date: Cairn {wall.cairn * 1000:.0f} ms per pass (idle {idle.cairn * 1000:.0f} ms)")
        if not self.dvc:
            return
        progress(f"1/4 up to date: full `dvc repro` of {n} chained stages (DVC takes 0.15-0.6 s a stage)")
        repo = self.dvc.pipeline_repo(self.folder("uptodate-dvc"), stages)
        self.dvc.run(repo, "repro", timeout=1800)
        repos.git(repo, "add", "-A")
        repos.git(repo, "commit", "-q", "-m", "dvc.lock")
        for r in range(self.repeats):
            repos.commit_unrelated_change(repo, r)
            seconds, output = self.dvc.run(repo, "status")
            if "up to date" not in output:
                raise Failure(f"dvc status after a full repro did not say up to date:\n{output[-2000:]}")
            wall.dvc_samples.append(seconds)
            seconds, output = self.dvc.run(repo, "repro")
            if "up to date" not in output:
                raise Failure(f"dvc repro after a full repro ran something:\n{output[-2000:]}")
            repro.dvc_samples.append(seconds)
        progress(f"1/4 up to date: dvc status {wall.dvc * 1000:.0f} ms, dvc repro {repro.dvc * 1000:.0f} ms")

    # 2. Per-stage overhead of trivial runs, one at a time.
    def per_stage(self):
        n = self.stages
        stages = repos.independent_touch_stages(n)
        touch = repos.touch_seconds(self.work, TOUCH_SAMPLES)
        row = self.add(Row("perstage", f"per-stage overhead, {n} independent `touch` stages from scratch, one at a time",
                           target=0.020, note=f"(wall − {n} × {touch * 1000:.2f} ms, one touch process) / {n}; DVC: dvc repro"))
        total = self.add(Row("perstage.wall", f"  of which: whole run from scratch, wall (--max-runs 1)",
                             note="Cairn: one reconcile --once; DVC: one dvc repro"))
        for r in range(self.repeats):
            progress(f"2/4 per stage: Cairn, {n} stages, --max-runs 1 (repeat {r + 1}/{self.repeats})")
            repo, state = self.cairn.pipeline_repo(self.folder("perstage-cairn"), stages)
            seconds, _ = self.cairn.reconcile(repo, state, max_runs=1)
            self.cairn.expect_runs(repo, state, succeeded=n)
            total.cairn_samples.append(seconds)
            row.cairn_samples.append((seconds - n * touch) / n)
        progress(f"2/4 per stage: Cairn {row.cairn * 1000:.1f} ms per stage")
        if not self.dvc:
            return
        for r in range(self.repeats):
            progress(f"2/4 per stage: dvc repro, {n} stages (repeat {r + 1}/{self.repeats}; DVC takes 0.15-0.6 s a stage)")
            repo = self.dvc.pipeline_repo(self.folder("perstage-dvc"), stages)
            seconds, _ = self.dvc.run(repo, "repro", timeout=1800)
            repos.expect_outputs(repo, stages)
            total.dvc_samples.append(seconds)
            row.dvc_samples.append((seconds - n * touch) / n)
        progress(f"2/4 per stage: DVC {row.dvc * 1000:.0f} ms per stage")

    # 3. Four independent branches of 0.2 s stages: does Cairn run them at once?
    def parallel(self):
        stages = repos.branch_sleep_stages(self.chains, seconds=0.2)
        n, longest = len(stages), max(self.chains)
        four = self.add(Row("dag.maxruns4", f"{n}-stage DAG, {len(self.chains)} branches of 0.2 s stages: Cairn --max-runs 4",
                            note=f"DVC: dvc repro (one stage at a time); sleeping alone: {longest * 0.2:.1f} s on the longest branch"))
        one = self.add(Row("dag.maxruns1", "  the same, Cairn --max-runs 1", note=f"sleeping alone: {n * 0.2:.1f} s"))
        for r in range(self.repeats):
            for max_runs, row in ((4, four), (1, one)):
                progress(f"3/4 DAG: Cairn --max-runs {max_runs} (repeat {r + 1}/{self.repeats})")
                repo, state = self.cairn.pipeline_repo(self.folder(f"dag{max_runs}-cairn"), stages)
                seconds, _ = self.cairn.reconcile(repo, state, max_runs=max_runs)
                self.cairn.expect_runs(repo, state, succeeded=n)
                row.cairn_samples.append(seconds)
        speedup = self.add(Row("dag.speedup", "  Cairn speed-up, --max-runs 1 / --max-runs 4", unit="x", show_ratio=False,
                               note=f"ideal {n / longest:.2f}× ({n} stages, {longest} on the longest branch); the stages sleep, so 2 cores suffice"))
        speedup.cairn_samples = [one.cairn / four.cairn]
        progress(f"3/4 DAG: Cairn {four.cairn:.2f} s with 4 runs at once, {one.cairn:.2f} s one at a time")
        if not self.dvc:
            return
        for r in range(self.repeats):
            progress(f"3/4 DAG: dvc repro, {n} stages (repeat {r + 1}/{self.repeats})")
            repo = self.dvc.pipeline_repo(self.folder("dag-dvc"), stages)
            seconds, _ = self.dvc.run(repo, "repro", timeout=1800)
            repos.expect_outputs(repo, stages)
            four.dvc_samples.append(seconds)
            one.dvc_samples.append(seconds)
        progress(f"3/4 DAG: DVC {four.dvc:.2f} s")

    # 4. Storing a large output: Cairn's artifact store (SHA-256) beside `dvc add` (MD5).
    def hashing(self):
        size = self.big_bytes
        gib = size / (1 << 30)
        label = f"{gib:g} GiB" if gib >= 1 else f"{size >> 20} MiB"
        store = self.add(Row("hash.store", f"store a {label} output: Cairn ArtifactStore.store (in process) vs `dvc add`",
                             target=size / 1e9, note="Cairn: SHA-256 of the output as written, fsync, rename into the store (as the executor stores outputs); DVC: MD5, move into its cache, copy back; "
                                               "dvc add's wall includes its start-up"))
        dvc_net = self.add(Row("hash.dvcnet", "  dvc add less DVC's start-up (dvc status in the same repository)",
                               note="ratio: Cairn's store / this"))
        hash_only = self.add(Row("hash.only", "  Cairn SHA-256 alone (read and hash, no copy)", show_ratio=False))
        sha256sum = self.add(Row("hash.sha256sum", "  coreutils sha256sum, for reference", show_ratio=False))
        big = os.path.join(self.folder("hash"), "big.bin")
        progress(f"4/4 hashing: writing a {label} file of pseudo-random bytes")
        repos.write_big_file(big, size)
        try:
            progress(f"4/4 hashing: cairn-bench --hash ({self.repeats} repeats)")
            result = self.cairn.hash(self.args.cairn_bench, big, self.repeats)
            store.cairn_samples = result["storeSeconds"]
            dvc_net.cairn_samples = result["storeSeconds"]
            hash_only.cairn_samples = result["hashSeconds"]
            for _ in range(self.repeats):
                seconds, _ = timed(["sha256sum", big])
                sha256sum.cairn_samples.append(seconds)
            if self.dvc:
                for r in range(self.repeats):
                    progress(f"4/4 hashing: dvc add (repeat {r + 1}/{self.repeats})")
                    repo = self.dvc.empty_repo(self.folder("hash-dvc"))
                    os.link(big, os.path.join(repo, "big.bin"))  # same bytes, no copy; a new path and inode
                    start_up, _ = self.dvc.run(repo, "status")
                    seconds, _ = self.dvc.run(repo, "add", "big.bin", timeout=900)
                    store.dvc_samples.append(seconds)
                    dvc_net.dvc_samples.append(seconds - start_up)
                    shutil.rmtree(repo, ignore_errors=True)
        finally:
            os.remove(big)
        for row in (store, dvc_net):
            row.note = f"Cairn {throughput(size, row.cairn)}" + (f", DVC {throughput(size, row.dvc)}" if row.dvc else "") + "; " + row.note
        for row in (hash_only, sha256sum):
            row.note = throughput(size, row.cairn)
        store.note += "; target ≥ 1 GB/s"
        progress(f"4/4 hashing: Cairn {throughput(size, store.cairn)}" + (f", DVC {throughput(size, store.dvc)}" if store.dvc else ""))


def throughput(size, seconds):
    return f"{size / seconds / 1e9:.2f} GB/s" if seconds else "—"


def figure(value, unit):
    if value is None:
        return "—"
    if unit == "x":
        return f"{value:.2f}×"
    return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.2f} s"


def print_text(report):
    m = report["machine"]
    print(f"Pipeline benchmark, {report['date']}: median of {report['repeats']}; ratio = Cairn time / DVC time (< 1: Cairn is faster)")
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB; load average {m['loadAverage'][0]:.2f} at the start, "
          f"{report['loadAverageAfter'][0]:.2f} at the end")
    print(f"cairn: release build of {report['cairnCommit']}; dvc: {report['dvcVersion'] or 'not installed (DVC column skipped)'}")
    print()
    width = max(len(r["label"]) for r in report["rows"]) + 2
    print(f"{'measurement'.ljust(width)}{'Cairn':>11}{'DVC':>11}{'ratio':>8}  {'target'}")
    for r in report["rows"]:
        target = "" if r["target"] is None else "< " + figure(r["target"], r["unit"])
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3f}"
        print(f"{r['label'].ljust(width)}{figure(r['cairn'], r['unit']):>11}{figure(r['dvc'], r['unit']):>11}{ratio:>8}  {target:<10}")
        if r["error"]:
            print(f"{'':4}ERROR: {r['error']}")
        elif r["note"]:
            print(f"{'':4}{r['note']}")


def main():
    parser = argparse.ArgumentParser(prog="Scripts/bench-pipelines", description=__doc__.split("\n\n")[0]
                                     + " The wrapper passes --cairn, --cairn-bench, --cairn-commit and --dvc.")
    parser.add_argument("--cairn", required=True, help="the cairn binary (release build)")
    parser.add_argument("--cairn-bench", required=True, help="the cairn-bench binary, for --hash")
    parser.add_argument("--cairn-commit", default="unknown", help="the commit cairn was built from, for the report")
    parser.add_argument("--dvc", help="the dvc executable; without it the DVC column is skipped")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of each measurement, median reported (default 3; 1 with --quick)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--quick", action="store_true", help="20 stages instead of 100, a 12-stage DAG, a 256 MiB file")
    parser.add_argument("--only", default="1,2,3,4", help="which measurements, such as 1,3")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repositories (their folder is printed)")
    parser.add_argument("--no-dvc", action="store_true", help="measure Cairn only")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.no_dvc:
        args.dvc = None
    work = tempfile.mkdtemp(prefix="cairn-bench-pipelines-")
    repos.prepare_environment(work)
    bench = Bench(args, work)
    load = repos.machine()
    steps = {"1": bench.up_to_date, "2": bench.per_stage, "3": bench.parallel, "4": bench.hashing}
    failed = False
    started = time.monotonic()
    try:
        for key in args.only.split(","):
            before = len(bench.rows)
            try:
                steps[key.strip()]()
            except (Failure, subprocess.TimeoutExpired, OSError) as error:
                failed = True
                progress(f"measurement {key} failed: {error}")
                rows = bench.rows[before:] or [bench.add(Row(f"step{key}", f"measurement {key}"))]
                rows[0].error = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
    finally:
        if args.keep:
            progress(f"kept the repositories under {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    progress(f"done in {time.monotonic() - started:.0f} s")
    report = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "repeats": args.repeats, "quick": args.quick,
        "machine": load, "loadAverageAfter": list(os.getloadavg()),
        "cairnCommit": args.cairn_commit, "dvcVersion": bench.dvc.version if bench.dvc else None,
        "rows": [row.json() for row in bench.rows],
    }
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print_text(report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

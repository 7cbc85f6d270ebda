#!/usr/bin/env python3
"""Registry benchmark of issue 11: Cairn beside GTO and MLflow on the same registry of
generated models and versions. Standard library only; run it through Scripts/bench-registry,
which builds cairn and installs GTO and MLflow into a venv first.

Each registry is filled once (Cairn's and MLflow's from one process each, GTO's by writing its
git tags directly), then each call is timed two ways: a fresh process, as a person or a script
meets it, and in process after a warm-up, which is the call itself. Figures are printed, never
asserted: the machine is shared and noisy, so compare the ratios measured in one run. Progress
goes to stderr, the table (or JSON) to stdout.
"""
import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in Scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_pipelines_repos as repos  # noqa: E402
import bench_registry_tools as tools  # noqa: E402
import bench_report as table  # noqa: E402
from bench_pipelines_repos import Failure, progress  # noqa: E402
from bench_report import figure, package_version  # noqa: E402

TOOLS = ("Cairn", "GTO", "GTO, tags only", "MLflow")
SHORT = {"GTO": "GTO", "GTO, tags only": "GTO tags", "MLflow": "MLflow"}
# A peer whose listing takes longer than this is measured once (one fresh process for each call,
# nothing in process): GTO over an artifacts.yaml takes minutes a call.
SLOW_CALL = 30.0


# Every row has a column for each tool, Cairn first.
Row = functools.partial(table.Row, tools=TOOLS)


class Bench:
    def __init__(self, args, work):
        self.args = args
        n, k = args.models, args.versions
        self.model = tools.model_name(min(42, n // 2))            # whose history is read
        self.register_model = tools.model_name(7 if n > 8 else 0)  # which gets the new versions
        self.tools = [tools.Cairn(args.cairn, args.cairn_bench, work, n, k)]
        if args.gto:
            if not args.gto_tags_only:
                self.tools.append(tools.Gto(args.gto, args.gto_python, work, n, k, annotated=True))
            self.tools.append(tools.Gto(args.gto, args.gto_python, work, n, k, annotated=False))
        if args.mlflow_python:
            self.tools.append(tools.MLflow(args.mlflow_python, work, n, k))
        size = f"{n} models × {k} versions"
        m, r = self.model, self.register_model
        self.fill = Row("fill", f"fill the registry, {size}", show_ratio=False,
                        note=f"not like for like, how each was built: cairn-bench registry --populate (a transaction a version); "
                             f"{k} commits (with or without an artifacts.yaml of every model) and a git tag -a a version; "
                             "one MlflowClient, its schema creation included")
        self.start = Row("startup", "start-up alone, a process that does nothing",
                         note="cairn --version; gto --version; python -c 'import mlflow'")
        self.list = Row("list.process", "list every model, fresh process", target=0.050,
                        note="cairn models --format json; gto show --json; python: MlflowClient(sqlite) .search_registered_models()")
        self.list_in = Row("list.inprocess", "  in process, after a warm-up", target=0.050,
                           note="Store.registeredModels(); gto.api.show(repo); MlflowClient.search_registered_models(); "
                                f"GTO makes at most {tools.GTO_INNER} calls a repeat (each takes seconds)")
        self.history = Row("history.process", f"history of {m} ({k} versions), fresh process", target=0.010,
                           note=f"cairn models {m} --format json; gto history {m} --json; python: .search_model_versions(\"name='{m}'\")")
        self.history_in = Row("history.inprocess", "  in process, after a warm-up", target=0.010,
                              note=f"Store.versions(of:); gto.api.history(repo, \"{m}\"); MlflowClient.search_model_versions")
        self.register = Row("register.process", f"register a version of {r}, fresh process", target=0.020,
                            note=f"Cairn has no such command (a training's pass registers); gto register {r} HEAD --version vN.0.0 "
                                 "after an untimed empty commit; python: .create_model_version")
        self.register_in = Row("register.inprocess", "  in process, after a warm-up", target=0.020,
                               note="Store.register (one transaction); gto.api.register (a tag); MlflowClient.create_model_version")
        self.rows = [self.fill, self.start, self.list, self.list_in, self.history, self.history_in, self.register, self.register_in]
        self.slow = set()

    def attempt(self, row, tool, measure):
        """Runs one measurement of one tool; a failure voids that cell and is reported, the rest goes on."""
        if tool.name in row.errors:
            return
        try:
            value = measure()
        except (Failure, subprocess.TimeoutExpired, OSError, KeyError) as error:
            text = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
            progress(f"{tool.name}: {row.key} failed: {text}")
            row.errors[tool.name] = text
            return
        if isinstance(value, list):
            row.samples[tool.name].extend(value)
        else:
            row.samples[tool.name].append(value)

    def run(self):
        for tool in self.tools:
            progress(f"{tool.name}: filling a registry of {self.args.models} models × {self.args.versions} versions")
            self.attempt(self.fill, tool, lambda: tool.populate()[0])
            if self.fill.samples[tool.name]:
                progress(f"{tool.name}: filled in {self.fill.samples[tool.name][0]:.1f} s")
        # Interleaved, tool by tool within each repeat, so a busy moment of the machine falls on all of them.
        for repeat in range(self.args.repeats):
            progress(f"repeat {repeat + 1}/{self.args.repeats}: fresh processes (list, history, register), then in process "
                     f"({self.args.inner} calls each)")
            for tool in self.tools:
                if tool.name in self.fill.errors or tool.name in self.slow:
                    continue
                self.attempt(self.start, tool, tool.start_up)
                self.attempt(self.list, tool, tool.list)
                if self.list.samples[tool.name] and self.list.samples[tool.name][-1] > SLOW_CALL:
                    self.slow.add(tool.name)
                    progress(f"{tool.name}: one listing took {self.list.samples[tool.name][-1]:.0f} s; its other calls are measured "
                             "once, in a fresh process only")
                self.attempt(self.history, tool, lambda: tool.history(self.model))
                if hasattr(tool, "register"):
                    self.attempt(self.register, tool, lambda: tool.register(self.register_model))
                if tool.name in self.slow:
                    continue
                result = {}

                def in_process():
                    result.update(tool.in_process(self.model, self.register_model, self.args.inner))
                    return result["list"]
                self.attempt(self.list_in, tool, in_process)
                if result:
                    self.history_in.samples[tool.name].extend(result["history"])
                    self.register_in.samples[tool.name].extend(result["register"])
            progress("  medians so far: " + "; ".join(
                f"{row.key} " + " ".join(f"{name} {figure(row.median(name))}" for name in TOOLS if row.median(name) is not None)
                for row in (self.list, self.list_in, self.history_in, self.register_in)))


def print_text(report):
    m = report["machine"]
    print(f"Registry benchmark, {report['date']}: {report['models']} models × {report['versions']} versions; fresh processes: "
          f"median of {report['repeats']}; in process: median of {report['repeats']} × {report['inner']} calls "
          f"(GTO: {report['repeats']} × {min(report['inner'], tools.GTO_INNER)}); "
          "ratio = Cairn time / peer time (< 1: Cairn is faster; 1/N: Cairn takes an Nth of the peer's time)")
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB; load average {m['loadAverage'][0]:.2f} at the start, "
          f"{report['loadAverageAfter'][0]:.2f} at the end")
    print(f"cairn: release build of {report['cairnCommit']}; gto: {report['gtoVersion'] or 'not installed (column skipped)'}; "
          f"mlflow: {report['mlflowVersion'] or 'not installed (column skipped)'}")
    print()
    table.print_rows(report["rows"], TOOLS, SHORT)


def main():
    parser = argparse.ArgumentParser(prog="Scripts/bench-registry", description=__doc__.split("\n\n")[0]
                                     + " The wrapper passes --cairn, --cairn-bench, --cairn-commit, --gto, --gto-python and --mlflow-python.")
    parser.add_argument("--cairn", required=True, help="the cairn binary (release build)")
    parser.add_argument("--cairn-bench", required=True, help="the cairn-bench binary, for `registry`")
    parser.add_argument("--cairn-commit", default="unknown", help="the commit cairn was built from, for the report")
    parser.add_argument("--gto", help="the gto executable; without it the GTO column is skipped")
    parser.add_argument("--gto-python", help="the Python that has gto installed, for the in-process figures")
    parser.add_argument("--mlflow-python", help="the Python that has mlflow installed; without it the MLflow column is skipped")
    parser.add_argument("--models", type=int, default=None, help="how many models (default 100; 50 with --quick)")
    parser.add_argument("--versions", type=int, default=None, help="versions of each (default 10; 4 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="fresh-process runs of each call, median reported (default 3; 1 with --quick)")
    parser.add_argument("--inner", type=int, default=None, help="in-process calls each repeat, after one warm-up (default 20; 5 with --quick)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--quick", action="store_true", help="a smaller registry and fewer repeats, to try the script")
    parser.add_argument("--keep", action="store_true", help="keep the registries (their folder is printed)")
    parser.add_argument("--no-gto", action="store_true", help="skip GTO")
    parser.add_argument("--gto-tags-only", action="store_true",
                        help="skip the GTO registry with an artifacts.yaml, whose calls take minutes at full size")
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow")
    args = parser.parse_args()
    defaults = {"models": (100, 50), "versions": (10, 4), "repeats": (3, 1), "inner": (20, 5)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.models < 2 or args.versions < 1 or args.repeats < 1 or args.inner < 1:
        parser.error("--models must be at least 2, --versions, --repeats and --inner at least 1")
    if args.no_gto:
        args.gto = None
    if args.no_mlflow:
        args.mlflow_python = None
    if args.gto and not args.gto_python:
        parser.error("--gto needs --gto-python, the Python it is installed in")
    work = tempfile.mkdtemp(prefix="cairn-bench-registry-")
    repos.prepare_environment(work)
    # MLflow sends usage data unless told not to: this benchmark makes no connection.
    os.environ.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GTO_EMOJIS": "false"})
    load = repos.machine()
    started = time.monotonic()
    bench = Bench(args, work)
    try:
        bench.run()
    finally:
        if args.keep:
            progress(f"kept the registries under {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    progress(f"done in {time.monotonic() - started:.0f} s")
    report = {
        **table.header(args, load),
        "models": args.models, "versions": args.versions, "repeats": args.repeats, "inner": args.inner,
        "historyModel": bench.model, "registerModel": bench.register_model,
        "mlflowVersion": package_version(args.mlflow_python, "mlflow") if args.mlflow_python else None,
    }
    return table.emit(report, bench.rows, args.format, print_text)

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Plan and stage-history benchmark of issue 12: `cairn plan` over a change touching 1,000
manifests of 10,000, and `cairn models NAME --at DAY` over a model with 1,000 stage changes,
beside GTO on the same stage history. Standard library only; run it through
Scripts/bench-stages, which builds cairn and installs GTO into a venv first.

Cairn's figures come from `cairn-bench plan` and `cairn-bench stages`, which make each fixture,
time the command as a fresh process and the call in process, interleaved, and check every
answer. GTO gets the same stage history as git tags; its commands are timed as fresh processes
and its Python API in process, and their answers are checked against Cairn's. GTO has no plan:
the plan rows stand beside `cairn validate` over the same head and `git diff --stat`, for
reference. Figures are printed, never asserted: the machine is shared and noisy, so compare
the ratios measured in one run. Progress goes to stderr, the table (or JSON) to stdout.
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
import bench_report as table  # noqa: E402
import bench_stages_tools as tools  # noqa: E402
from bench_pipelines_repos import Failure, progress  # noqa: E402
from bench_report import figure  # noqa: E402

TOOLS = ("Cairn", "GTO")
SHORT = {"GTO": "GTO"}
# Every row has a column for Cairn and one for GTO.
Row = functools.partial(table.Row, tools=TOOLS)


class Bench:
    def __init__(self, args, work):
        self.args = args
        self.cairn = tools.Cairn(args.cairn, args.cairn_bench, work, args.keep)
        self.work = work
        self.gto = None
        self.plan = self.stages = None
        m, k, day = args.manifests, args.changes, args.at
        self.plan_process = Row("plan.process", f"plan: a tenth of {m:,} manifests changed, as a command", target=0.300,
                                note="cairn plan --base main --head change --state-dir D --format json (GTO has no plan)")
        self.plan_in = Row("plan.inprocess", "  in process, after a warm-up", target=0.300,
                           note="Planner.plan with the store open, a freshly opened repository each call")
        self.validate = Row("plan.validate", "  reference: validate every manifest at head, as a command",
                            note="cairn validate --repo R --rev change --format json")
        self.diff = Row("plan.gitdiff", "  reference: git diff --stat main change")
        self.start = Row("startup", "start-up alone, a process that does nothing", note="cairn --version; gto --version")
        self.at = Row("at.process", f"stages on {day} ({k:,} stage changes), as a command", target=0.010,
                      note=f"cairn models M --at {day} --state-dir D --format json; gto history M --json "
                           f"(every event; the stages on {day} are read from them, not timed, and checked)")
        self.show = Row("show.process", "  beside gto show (current stages only)", target=0.010,
                        note="Cairn: the --at command again; gto show M --json")
        self.at_in = Row("at.inprocess", "  in process, after a warm-up", target=0.010,
                         note="Store.stageChanges(of:asOf:) and (of:after:through:); gto.api.history and reading the stages on the day")
        self.show_in = Row("show.inprocess", "  beside gto.api.show, in process", target=0.010,
                           note="Cairn: the store's queries again; gto.api.show(repo, M)")
        self.open = Row("open", "  of Cairn's command: opening the store read-only", show_ratio=False, note="Store(readingFrom:), in process")
        # The rows beside gto show repeat Cairn's figures: without GTO they say nothing.
        self.rows = [self.plan_process, self.plan_in, self.validate, self.diff, self.start, self.at]
        self.rows += [self.show] if args.gto else []
        self.rows += [self.at_in] + ([self.show_in] if args.gto else []) + [self.open]

    def run(self):
        args = self.args
        progress(f"Cairn: cairn-bench plan, {args.manifests:,} manifests, {args.repeats} rounds")
        self.plan = self.cairn.plan(args.manifests, args.repeats)
        answer = self.plan["answer"]
        changed = answer["created"] + answer["changed"] + answer["deleted"] + answer["moved"]
        self.plan_process.label = f"plan: {changed:,} of {args.manifests:,} manifests changed, as a command"
        samples = {row["key"]: row["samples"] for row in self.plan["rows"]}
        for row, key in [(self.plan_process, "process"), (self.plan_in, "inProcess"), (self.validate, "validate"),
                         (self.diff, "gitDiff"), (self.start, "startUp")]:
            row.samples["Cairn"].extend(samples[key])
        progress(f"Cairn: cairn-bench stages, {args.changes:,} stage changes, {args.repeats * 5} rounds")
        self.stages = self.cairn.stages(args.changes, args.at, args.repeats * 5)
        samples = {row["key"]: row["samples"] for row in self.stages["rows"]}
        for row, key in [(self.at, "process"), (self.show, "process"), (self.at_in, "query"), (self.show_in, "query"),
                         (self.open, "open"), (self.start, "startUp")]:
            row.samples["Cairn"].extend(samples[key])
        if args.gto:
            self.run_gto()

    def run_gto(self):
        args, expected = self.args, self.stages["answer"]
        self.gto = tools.Gto(args.gto, args.gto_python, self.work, self.cairn.export)
        progress(f"GTO: writing {len(self.gto.history['versions'])} versions and {len(self.gto.history['changes'])} "
                 "stage assignments as git tags (git fast-import)")
        progress(f"GTO: written in {self.gto.populate():.1f} s")
        for repeat in range(args.gto_repeats):
            progress(f"GTO: repeat {repeat + 1}/{args.gto_repeats}: gto --version, gto history, gto show as fresh processes, "
                     "then in process")
            self.attempt(self.start, self.gto.start_up)
            self.attempt(self.at, lambda: self.gto.history_call(args.at, expected))
            self.attempt(self.show, self.gto.show_call)
            result = {}

            def in_process():
                result.update(self.gto.in_process(args.at, expected, args.gto_inner))
                return result["history"]
            self.attempt(self.at_in, in_process)
            if result:
                self.show_in.samples["GTO"].extend(result["show"])
            progress("GTO: medians so far: " + ", ".join(f"{row.key} {figure(row.median('GTO'))}"
                                                         for row in (self.at, self.show, self.at_in, self.show_in)))

    def attempt(self, row, measure):
        """One GTO measurement; a failure voids that cell and is reported, the rest goes on."""
        if "GTO" in row.errors:
            return
        try:
            value = measure()
        except (Failure, subprocess.TimeoutExpired, OSError, KeyError) as error:
            text = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
            progress(f"GTO: {row.key} failed: {text}")
            row.errors["GTO"] = text
            return
        row.samples["GTO"].extend(value if isinstance(value, list) else [value])


def print_text(report):
    m = report["machine"]
    gto = (f"GTO: median of {report['gtoRepeats']} fresh processes and {report['gtoRepeats']} × {report['gtoInner']} calls in process; "
           "ratio = Cairn time / GTO time (1/N: Cairn takes an Nth)") if report["gtoVersion"] else "GTO not measured"
    print(f"Plan and stage-history benchmark (issue 12), {report['date']}; Cairn: median of {report['repeats']} (plan) and "
          f"{report['repeats'] * 5} (stages) after a warm-up; {gto}")
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB; load average {m['loadAverage'][0]:.2f} at the start, "
          f"{report['loadAverageAfter'][0]:.2f} at the end")
    print(f"cairn: {report['plan']['machine']['build']} build of {report['cairnCommit']}; "
          f"gto: {report['gtoVersion'] or 'not installed (column skipped)'}")
    print(f"plan: {report['plan']['title']}; every answer: {describe_plan(report['plan']['answer'])}")
    answer = report["stages"]["answer"]
    print(f"stages: {report['stages']['title']}; every answer" + (" (GTO's too): " if report["gtoVersion"] else ": ")
          + ", ".join(f"{stage} {version}" for stage, version in sorted(answer["holders"].items()))
          + "; that day: " + (", ".join(answer["changesThatDay"]) or "no change"))
    print()
    table.print_rows(report["rows"], TOOLS, SHORT)
    kept = [name for name in ("plan", "stages") if report[name].get("fixture")]
    if kept:
        print()
    for name in kept:
        print(f"{name} fixture kept in {report[name]['fixture']}; rerun: {report[name]['command']}")
    if report.get("gtoRepo"):
        print(f"GTO repository kept in {report['gtoRepo']}")


def describe_plan(answer):
    promotions = ", ".join(f"{count} {decision}" for decision, count in sorted(answer["promotions"].items()))
    refusals = ", ".join(f"{count} {rule}" for rule, count in sorted(answer["refusals"].items()))
    return (f"{answer['created']} created, {answer['changed']} changed, {answer['deleted']} deleted; promotions {promotions} ({refusals}); "
            f"{answer['runs']} run keys changed; " + ("acceptable" if answer["acceptable"] else "not acceptable, exit 1"))


def main():
    parser = argparse.ArgumentParser(prog="Scripts/bench-stages", description=__doc__.split("\n\n")[0]
                                     + " The wrapper passes --cairn, --cairn-bench, --cairn-commit, --gto and --gto-python.")
    parser.add_argument("--cairn", required=True, help="the cairn binary (release build)")
    parser.add_argument("--cairn-bench", required=True, help="the cairn-bench binary, for `plan` and `stages`")
    parser.add_argument("--cairn-commit", default="unknown", help="the commit cairn was built from, for the report")
    parser.add_argument("--gto", help="the gto executable; without it the GTO column is skipped")
    parser.add_argument("--gto-python", help="the Python that has gto installed, for the in-process figures")
    parser.add_argument("--manifests", type=int, default=None, help="manifests in the plan's repository (default 10,000; 2,000 with --quick)")
    parser.add_argument("--changes", type=int, default=None, help="stage changes of the model (default 1,000; 200 with --quick)")
    parser.add_argument("--at", default=None, help="the day asked about (default 2026-10-01; 2026-02-15 with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="Cairn's rounds of the plan, five times as many of the stages (default 10; 2 with --quick)")
    parser.add_argument("--gto-repeats", type=int, default=None, help="fresh GTO processes of each command (default 3; 1 with --quick)")
    parser.add_argument("--gto-inner", type=int, default=3, help="GTO's in-process calls each repeat, after one warm-up (default 3)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--quick", action="store_true", help="smaller fixtures and fewer repeats, to try the script")
    parser.add_argument("--keep", action="store_true", help="keep the fixtures and GTO's repository (their folders are printed)")
    parser.add_argument("--no-gto", action="store_true", help="skip GTO")
    args = parser.parse_args()
    defaults = {"manifests": (10_000, 2_000), "changes": (1_000, 200), "at": ("2026-10-01", "2026-02-15"),
                "repeats": (10, 2), "gto_repeats": (3, 1)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.manifests < 2_000 or args.manifests % 5 or args.changes < 2 or args.repeats < 1 or args.gto_repeats < 1 or args.gto_inner < 1:
        parser.error("--manifests must be a multiple of 5 from 2,000, --changes at least 2, the repeats at least 1")
    if args.no_gto:
        args.gto = None
    if args.gto and not args.gto_python:
        parser.error("--gto needs --gto-python, the Python it is installed in")
    work = tempfile.mkdtemp(prefix="cairn-bench-stages-")
    repos.prepare_environment(work)
    os.environ["GTO_EMOJIS"] = "false"
    load = repos.machine()
    started = time.monotonic()
    bench = Bench(args, work)
    try:
        bench.run()
    except Failure as error:
        progress(f"Cairn's side failed, so there is nothing to compare: {error}")
        return 1
    finally:
        if args.keep:
            progress(f"kept the fixtures and GTO's repository under {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    progress(f"done in {time.monotonic() - started:.0f} s")
    report = {
        **table.header(args, load),
        "repeats": args.repeats, "gtoRepeats": args.gto_repeats, "gtoInner": args.gto_inner,
        "gtoRepo": bench.gto.repo if bench.gto and args.keep else None,
        "plan": {key: value for key, value in bench.plan.items() if key != "rows"},
        "stages": {key: value for key, value in bench.stages.items() if key != "rows"},
    }
    return table.emit(report, bench.rows, args.format, print_text)

if __name__ == "__main__":
    sys.exit(main())

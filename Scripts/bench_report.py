"""The tables of Scripts/bench-registry.py and Scripts/bench-stages.py: rows of samples per
tool, medians, Cairn's ratio to each peer, and how a figure and a ratio are written.
Standard library only."""
import datetime
import json
import os
import statistics
import subprocess


class Row:
    """One line of a table: each tool's samples, their medians, and Cairn's ratio to each peer
    (the tools after the first, which is Cairn)."""

    def __init__(self, key, label, tools, target=None, note="", show_ratio=True):
        self.key, self.label, self.tools, self.target, self.note, self.show_ratio = key, label, tools, target, note, show_ratio
        self.samples = {name: [] for name in tools}
        self.errors = {}

    def median(self, name):
        return statistics.median(self.samples[name]) if self.samples[name] else None

    def ratio(self, peer):
        cairn, other = self.median(self.tools[0]), self.median(peer)
        return cairn / other if self.show_ratio and cairn is not None and other else None

    def json(self):
        return {"key": self.key, "label": self.label, "target": self.target, "note": self.note,
                "median": {name: self.median(name) for name in self.tools},
                "ratio": {peer: self.ratio(peer) for peer in self.tools[1:]},
                "samples": self.samples, "errors": self.errors}


def figure(value):
    if value is None:
        return "—"
    return f"{value * 1000:.2f} ms" if value < 0.1 else f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def ratio_text(ratio):
    """0.133, or 1/388 when Cairn takes less than a hundredth of the peer's time."""
    if ratio is None:
        return ""
    return f"{ratio:.3f}" if ratio >= 0.01 else f"1/{1 / ratio:,.0f}"


def print_rows(rows, tools, short):
    """The table of `rows` (as Row.json gives them): a column per tool that has a figure or an
    error in some row, then Cairn's ratio to each peer, then the target; notes and failures below each row."""
    width = max(len(r["label"]) for r in rows) + 2
    peers = [p for p in tools[1:] if any(r["median"][p] is not None or p in r["errors"] for r in rows)]
    print(f"{'measurement'.ljust(width)}{tools[0]:>10}" + "".join(f"{short[p]:>10}" for p in peers)
          + "".join(f"{'÷' + short[p]:>11}" for p in peers) + "  target")
    for r in rows:
        ratios = [ratio_text(r["ratio"][p]) for p in peers]
        target = "" if r["target"] is None else f"< {r['target'] * 1000:.0f} ms"
        print(f"{r['label'].ljust(width)}" + "".join(f"{figure(r['median'][n]):>10}" for n in [tools[0], *peers])
              + "".join(f"{ratio:>11}" for ratio in ratios) + f"  {target}")
        for name, error in r["errors"].items():
            print(f"{'':4}{name} FAILED: {error}")
        if r["note"]:
            print(f"{'':4}{r['note']}")


def package_version(python, package):
    try:
        return subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version('{package}'))"],
                              capture_output=True, text=True, timeout=120).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def header(args, load):
    """What every report starts with: when, on which machine and load, which cairn and GTO."""
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": load, "loadAverageAfter": list(os.getloadavg()), "cairnCommit": args.cairn_commit,
            "gtoVersion": package_version(args.gto_python, "gto") if args.gto else None}


def emit(report, rows, form, print_text):
    """Prints the report with its rows as JSON or as text; the exit status: 1 when a measurement failed."""
    report["rows"] = [row.json() for row in rows]
    if form == "json":
        print(json.dumps(report, indent=2))
    else:
        print_text(report)
    return 1 if any(row.errors for row in rows) else 0

"""Featurize: scales the raw columns to [0, 1] and keeps the label."""
import csv
import os
import sys

source, target = sys.argv[1], sys.argv[2]
with open(source, newline="") as handle:
    rows = list(csv.DictReader(handle))
columns = ["tenure_months", "monthly_spend", "support_calls"]
bounds = {c: (min(float(r[c]) for r in rows), max(float(r[c]) for r in rows)) for c in columns}
os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
with open(target, "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(columns + ["label"])
    for row in rows:
        scaled = [(float(row[c]) - bounds[c][0]) / ((bounds[c][1] - bounds[c][0]) or 1) for c in columns]
        writer.writerow([round(v, 6) for v in scaled] + [row["churned"]])
print(f"wrote {len(rows)} feature rows to {target}")

"""Featurize: scales the raw columns to [0, 1] and keeps the label."""
import csv
import os
import sys

from transforms import min_max

source, target = sys.argv[1], sys.argv[2]
with open(source, newline="") as handle:
    rows = list(csv.DictReader(handle))
columns = ["tenure_months", "monthly_spend", "support_calls"]
scaled = {c: min_max([float(r[c]) for r in rows]) for c in columns}
os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
with open(target, "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(columns + ["label"])
    for i, row in enumerate(rows):
        writer.writerow([scaled[c][i] for c in columns] + [row["churned"]])
print(f"wrote {len(rows)} feature rows to {target}")

"""Ingest: writes a synthetic, reproducible table of customers (seeded, no network).

With --feedback, the labelled customers the serving side collected (a CSV with the same
columns, outside the repository) are appended: when that file grows, this stage's key
changes and the training after it sees the new rows.
"""
import argparse
import csv
import os
import random

parser = argparse.ArgumentParser()
parser.add_argument("--rows", type=int, default=2000)
parser.add_argument("--out", required=True)
parser.add_argument("--seed", type=int, default=7)
parser.add_argument("--feedback", help="a CSV of labelled customers to append (header first)")
args = parser.parse_args()

rng = random.Random(args.seed)
os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
with open(args.out, "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["customer", "tenure_months", "monthly_spend", "support_calls", "churned"])
    for customer in range(args.rows):
        tenure = rng.randint(1, 72)
        spend = round(rng.uniform(10, 120), 2)
        calls = rng.randint(0, 9)
        risk = 0.8 * calls / 9 - 0.6 * tenure / 72 + 0.2 * spend / 120
        churned = 1 if risk + rng.gauss(0, 0.15) > 0.1 else 0
        writer.writerow([customer, tenure, spend, calls, churned])
    extra = 0
    if args.feedback and os.path.exists(args.feedback):
        with open(args.feedback, newline="") as feedback:
            for row in list(csv.reader(feedback))[1:]:
                writer.writerow(row)
                extra += 1
print(f"wrote {args.rows} rows to {args.out}" + (f", and {extra} from the feedback" if extra else ""))

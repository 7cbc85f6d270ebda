"""Calendar: one row per day of a year with the features a churn model may want (no network)."""
import argparse
import csv
import datetime
import os

parser = argparse.ArgumentParser()
parser.add_argument("--year", type=int, required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

day = datetime.date(args.year, 1, 1)
os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
with open(args.out, "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["date", "weekday", "weekend", "month_end"])
    rows = 0
    while day.year == args.year:
        month_end = (day + datetime.timedelta(days=1)).month != day.month
        writer.writerow([day.isoformat(), day.weekday(), int(day.weekday() >= 5), int(month_end)])
        day += datetime.timedelta(days=1)
        rows += 1
print(f"wrote {rows} calendar rows to {args.out}")

"""Train: logistic regression by gradient descent, with the standard library only.

Reads the features CSV (last column: the label), holds out a seeded fifth of the rows for
evaluation, and writes the model (weights as JSON) and its metrics (accuracy and AUC on the
held-out rows). Hyper-parameters come from CAIRN_PARAMS (JSON), which Cairn sets from the
TrainingSchedule's params. Deterministic: the same features and params give the same bytes.
"""
import argparse
import csv
import json
import math
import os
import random

parser = argparse.ArgumentParser()
parser.add_argument("--features", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--metrics", required=True)
args = parser.parse_args()
# The model file's format, which serve.py must read.
MODEL_FORMAT = 1
params = json.loads(os.environ.get("CAIRN_PARAMS", "{}"))
C = float(params.get("C", 1.0))
max_iter = int(params.get("max_iter", 200))
seed = int(params.get("seed", 1))

with open(args.features, newline="") as handle:
    rows = [[float(v) for v in row] for row in list(csv.reader(handle))[1:]]
random.Random(seed).shuffle(rows)
split = int(len(rows) * 0.8)
train, test = rows[:split], rows[split:]
weights = [0.0] * (len(rows[0]) - 1)
bias = 0.0


def predict(x):
    z = bias + sum(w * v for w, v in zip(weights, x))
    return 1 / (1 + math.exp(-max(min(z, 30), -30)))


for _ in range(max_iter):
    grad_w = [0.0] * len(weights)
    grad_b = 0.0
    for row in train:
        error = predict(row[:-1]) - row[-1]
        grad_w = [g + error * v for g, v in zip(grad_w, row[:-1])]
        grad_b += error
    # L2 regularisation of strength 1/C, as scikit-learn's C.
    weights = [w - 2.0 * (g + w / C) / len(train) for w, g in zip(weights, grad_w)]
    bias -= 2.0 * grad_b / len(train)

scored = sorted(((predict(r[:-1]), r[-1]) for r in test), key=lambda p: p[0])
positives = sum(1 for _, y in scored if y == 1)
negatives = len(scored) - positives
rank_sum = sum(i + 1 for i, (_, y) in enumerate(scored) if y == 1)
auc = (rank_sum - positives * (positives + 1) / 2) / max(positives * negatives, 1)
accuracy = sum(1 for p, y in scored if (p >= 0.5) == (y == 1)) / max(len(scored), 1)

for path in (args.model, args.metrics):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
with open(args.model, "w") as handle:
    json.dump({"format": MODEL_FORMAT, "kind": "logistic-regression", "weights": [round(w, 10) for w in weights],
               "bias": round(bias, 10)}, handle, sort_keys=True)
with open(args.metrics, "w") as handle:
    json.dump({"auc": round(auc, 4), "accuracy": round(accuracy, 4)}, handle, sort_keys=True)
print(f"trained on {len(train)} rows (C={C}, max_iter={max_iter}): auc={auc:.4f} accuracy={accuracy:.4f}")

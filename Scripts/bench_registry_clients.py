"""The peers' side of Scripts/bench-registry.py and Scripts/bench-stages.py, run by the benchmark
venv's Python (where GTO and MLflow are installed), never by the system python3. Each command
prints one JSON line. `held_at` uses the standard library only, so the system python3 imports it too.

  mlflow-populate --db F --artifacts D --models N --versions K   fill an MLflow registry from this one client
  mlflow-time --db F --model M --register-model R --inner N     time list, history, register in this process
  mlflow-list|mlflow-history|mlflow-register --db F ...          one call, as a user's script makes it (the
                                                                 caller times the whole process)
  gto-time --repo D --model M --register-model R --first V --inner N
                                                                 time gto.api show, history, register in this process
  gto-stages-time --repo D --model M --at DAY --inner N          time gto.api history (and reading the stages held on
                                                                 DAY from it) and show, for Scripts/bench-stages.py

Imports of mlflow and gto happen inside the commands, so a one-call process pays for what a
user's script would pay for and nothing else.
"""
import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True


def model_name(index):
    return f"m{index:03d}"


def digest(*parts):
    return hashlib.sha256(" ".join(map(str, parts)).encode()).hexdigest()


def version_tags(model, number):
    """What Cairn's version record holds, as MLflow tags: metrics, the gate verdict, lineage."""
    wobble = int(digest(model, number)[:4], 16) / 0xFFFF
    auc = 0.70 + wobble * 0.04 if number % 7 == 0 else 0.76 + wobble * 0.15
    return {
        "auc": f"{auc:.4f}", "accuracy": f"{auc - 0.05:.4f}", "f1": f"{auc - 0.09:.4f}", "log_loss": f"{1.1 - auc:.4f}",
        "train_rows": str(120000 + number * 500),
        "gate": "passed" if auc >= 0.75 else "failed", "gate_rule": "auc >= 0.75",
        "source_commit": digest(model, number, "commit")[:40], "run_key": digest(model, number, "key"),
        "trigger": "commit" if number == 1 else "schedule", "params": json.dumps({"C": 1.0, "max_iter": 200 + number * 10}),
        "model_sha256": digest(model, number, "model"), "features_sha256": digest(model, number, "features"),
        "code": json.dumps({"train.py": digest(model, number, "train.py"), "pipelines/featurize.py": digest(model, number, "featurize.py"),
                            f"lib/{model}/model.py": digest(model, number, "model.py"), "params.yaml": digest(model, number, "params")}),
    }


def emit(value):
    print(json.dumps(value), flush=True)


# MLflow: the sqlite store directly, no tracking server.

def mlflow_client(db):
    from mlflow import MlflowClient
    uri = f"sqlite:///{os.path.abspath(db)}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def mlflow_list(client):
    """Every registered model, page by page, as `search_registered_models` gives them."""
    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        models.extend(page)
        token = page.token
        if not token:
            return models


def mlflow_history(client, model):
    return list(client.search_model_versions(f"name='{model}'"))


def mlflow_register(client, model, artifacts):
    """The next version of `model` (MLflow numbers it), with the same tags a populated version has."""
    return client.create_model_version(model, source=os.path.join(artifacts, model, "next", "model.bin"),
                                       tags=version_tags(model, 11), description=f"{model}, registered by the benchmark")


def mlflow_populate(args):
    started = time.perf_counter()
    client = mlflow_client(args.db)   # creates the schema (alembic migrations) on first use
    ready = time.perf_counter()
    for index in range(args.models):
        name = model_name(index)
        client.create_registered_model(name, tags={"team": f"t{index % 17}", "schedule": f"{name}-weekly"},
                                       description=f"{name}, trained weekly by {name}-weekly")
        for number in range(1, args.versions + 1):
            source = os.path.join(args.artifacts, name, str(number), "model.bin")
            client.create_model_version(name, source=source, tags=version_tags(name, number),
                                        description=f"{name} version {number}")
    emit({"seconds": time.perf_counter() - started, "schemaSeconds": ready - started,
          "models": args.models, "versions": args.models * args.versions})


def timed_calls(call, inner):
    call()   # warm-up
    samples = []
    for _ in range(inner):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def mlflow_time(args):
    client = mlflow_client(args.db)
    counts = {}
    listing = timed_calls(lambda: counts.__setitem__("listedModels", len(mlflow_list(client))), args.inner)
    history = timed_calls(lambda: counts.__setitem__("historyVersions", len(mlflow_history(client, args.model))), args.inner)
    register = timed_calls(lambda: mlflow_register(client, args.register_model, args.artifacts), args.inner)
    emit({"list": listing, "history": history, "register": register, **counts})


def mlflow_once(args):
    client = mlflow_client(args.db)
    if args.command == "mlflow-list":
        emit({"listedModels": len(mlflow_list(client))})
    elif args.command == "mlflow-history":
        emit({"historyVersions": len(mlflow_history(client, args.model))})
    else:
        emit({"version": int(mlflow_register(client, args.register_model, args.artifacts).version)})


# GTO: its Python API over the same repository its command line reads.

def gto_time(args):
    from gto import api

    counts = {}

    def show():
        counts["listedModels"] = len(api.show(args.repo))

    def history():
        events = api.history(args.repo, args.model)
        counts["historyVersions"] = sum(1 for event in events if event["event"] == "registration")

    listing = timed_calls(show, args.inner)
    versions = timed_calls(history, args.inner)
    register, number = [], args.first
    for round in range(args.inner + 1):   # round 0 is the warm-up
        # GTO registers one version of an artifact per commit: a new version is a new commit.
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", f"retrain {args.register_model}"], cwd=args.repo, check=True)
        started = time.perf_counter()
        api.register(args.repo, args.register_model, "HEAD", version=f"v{number}.0.0")
        if round:
            register.append(time.perf_counter() - started)
        number += 1
    emit({"list": listing, "history": versions, "register": register, "next": number, **counts})


def held_at(events, day):
    """Which version held each stage at the start of `day` (YYYY-MM-DD, UTC), and the assignments
    during it, oldest first, from GTO's history events (`gto history --json` or gto.api.history):
    the question `cairn models NAME --at DAY` answers. Versions as numbers: v436.0.0 is 436."""
    start = datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.timezone.utc)
    end = start + datetime.timedelta(days=1)

    def when(event):
        stamp = event["timestamp"]
        stamp = datetime.datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.timezone.utc)

    assignments = sorted(((when(e), e) for e in events if e["event"] == "assignment"), key=lambda pair: pair[0])
    holders, during = {}, []
    for stamp, event in assignments:
        version = int(event["version"].lstrip("v").split(".")[0])
        if stamp <= start:
            holders[event["stage"]] = version
        elif stamp < end:
            during.append(f"{event['stage']} {version}")
    return {"holders": holders, "changesThatDay": during}


def gto_stages_time(args):
    from gto import api

    answers = {}

    def history():
        events = api.history(args.repo, args.model)
        answers["heldAt"] = held_at(events, args.at)
        answers["assignments"] = sum(1 for event in events if event["event"] == "assignment")

    def show():
        versions = api.show(args.repo, args.model)
        answers["current"] = {stage["stage"]: int(version["version"].lstrip("v").split(".")[0])
                              for version in versions for stage in version["stages"]}

    emit({"history": timed_calls(history, args.inner), "show": timed_calls(show, args.inner), **answers})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["mlflow-populate", "mlflow-time", "mlflow-list", "mlflow-history", "mlflow-register", "gto-time",
                                            "gto-stages-time"])
    parser.add_argument("--db")
    parser.add_argument("--artifacts", default="/nonexistent/artifacts")
    parser.add_argument("--repo")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--model", default="m042")
    parser.add_argument("--register-model", default="m007")
    parser.add_argument("--first", type=int, default=11, help="gto-time: the major number of the first version it registers")
    parser.add_argument("--inner", type=int, default=20)
    parser.add_argument("--at", default="2026-10-01", help="gto-stages-time: the day whose stages are read from the history")
    args = parser.parse_args()
    if args.command == "mlflow-populate":
        mlflow_populate(args)
    elif args.command == "mlflow-time":
        mlflow_time(args)
    elif args.command.startswith("mlflow-"):
        mlflow_once(args)
    elif args.command == "gto-stages-time":
        gto_stages_time(args)
    else:
        gto_time(args)


if __name__ == "__main__":
    main()

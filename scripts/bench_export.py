"""Does the answer a search hands over work on the user's raw data, in the user's next process?

For four kinds of data, a small search runs into a temporary MLflow store;
then a fresh Python process loads the parent run's ``model/model.keras``
(after ``import kreg``, safe mode) and the logged MLflow model (through
``mlflow.pyfunc.load_model``, without importing kreg itself) and scores both
on the raw test inputs as the user has them. The figures must equal the
parent run's own ``refit_test_*``. It also times what handing the answer
over costs (saving and logging the model, the MLflow model, its
registration) against the whole search.

    .venv/bin/python scripts/bench_export.py            # all four, about 3 minutes on 2 cores
    .venv/bin/python scripts/bench_export.py --only csv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

_SCORE = r"""
import json, sys, time
import numpy as np, pandas as pd
a = json.loads(sys.argv[1])
import mlflow
mlflow.set_tracking_uri(a["uri"])
start = time.perf_counter()
pyfunc = mlflow.pyfunc.load_model(a["model_uri"])
load_s = time.perf_counter() - start
raw = pd.read_csv(a["raw"]) if a["raw"].endswith(".csv") else np.load(a["raw"])
out = pyfunc.predict(raw)
import keras, kreg
from kreg.lab.trial.export import Exported
model = keras.saving.load_model(a["keras"], safe_mode=True)
exported = Exported.from_description(model, json.load(open(a["description"])))
outputs = exported.predict(raw)
y = np.load(a["y"], allow_pickle=True)
if a["kind"] == "classification":
    from kreg.lab.task import Classification
    p = Classification.probabilities(outputs, exported.activation)
    labels = np.asarray(exported.classes)[p.argmax(1)] if exported.classes else p.argmax(1)
    keras_figure = float(np.mean(labels == y))
    pyfunc_figure = float(np.mean(out["label"].to_numpy() == y))
    diff = float(np.abs(out[[c for c in out.columns if c.startswith("p_")]].to_numpy() - p).max())
else:
    pred = outputs.reshape(len(y), -1)
    keras_figure = float(np.sqrt(np.mean((pred - y.reshape(pred.shape)) ** 2)))
    pyfunc_figure = float(np.sqrt(np.mean((out.to_numpy() - y.reshape(pred.shape)) ** 2)))
    diff = float(np.abs(out.to_numpy() - pred).max())
print(json.dumps({"keras": keras_figure, "pyfunc": pyfunc_figure, "max_abs_diff": diff, "pyfunc_load_s": load_s}))
"""


def _diabetes():
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = x * 100 + 50  # raw units

    def build():
        import keras

        inputs = keras.Input((10,))
        return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(32, activation="relu")(inputs)))

    import kreg

    data = kreg.data.from_arrays(x[:350], y[:350], x_test=x[350:], y_test=y[350:])
    return dict(model=build, data=data, techniques={"l2": {"min": 1e-5, "max": 1e-2, "scale": "log"}},
                epochs=40), x[350:], y[350:]


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    half = len(digits.images) // 2
    return dict(model="cnn2d", data="digits", model_args={"width": 16, "depth": 2, "dense_units": 32},
                techniques={"spatial_dropout": {"min": 0.05, "max": 0.3}}, epochs=10), \
        digits.images[half:, ..., None].astype("float32"), digits.target[half:]  # the packaged source's dtype:
    # the pyfunc enforces its signature (float32, (-1, 8, 8, 1)) as MLflow does for every tensor model


def _csv():
    import kreg

    rng = np.random.default_rng(0)

    def table(n):
        age = rng.normal(45, 12, n)
        city = rng.choice(["Lyon", "Paris", "Nice", "Brest"], n)
        member = rng.random(n) > 0.5
        visits = rng.poisson(3, n)
        score = (age - 45) / 12 + np.select([city == "Paris", city == "Nice"], [1.2, -1.2], 0) + member + 0.2 * visits
        label = np.where(score + rng.normal(0, 0.5, n) > 1.0, "buys", "leaves")
        return pd.DataFrame({"age": age, "city": city, "member": member, "visits": visits, "label": label})

    train, test = table(600), table(300)
    return dict(model="mlp", data=kreg.data.from_csv(train, "label", test=test), model_args={"width": 32, "depth": 2},
                techniques={"dropout": {"min": 0.05, "max": 0.4}}, epochs=20), \
        test.drop(columns="label"), test["label"].to_numpy()


def _mnist1d():
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())  # the standard split, generated offline
    return dict(model="cnn1d", data="mnist1d", model_args={"width": 32, "depth": 3, "strides": 1},
                techniques={"spatial_dropout": {"min": 0.05, "max": 0.3}}, epochs=10), \
        data["x_test"][..., None].astype("float32"), data["y_test"]


CASES = {"regression_raw_units": _diabetes, "digits_raw_images": _digits, "csv_categories_string_labels": _csv,
         "mnist1d": _mnist1d}


def run_case(name: str, root: Path) -> dict:
    import kreg
    from kreg.lab.search import answer as answering
    from mlflow.tracking import MlflowClient

    kwargs, raw, y = CASES[name]()
    uri = f"sqlite:///{root / name / 'mlflow.db'}"
    handing = []
    original = answering.save_model

    def timed(*args, **kw):  # what handing the answer over costs: the .keras file, the MLflow model, registering
        start = time.perf_counter()
        try:
            return original(*args, **kw)
        finally:
            handing.append(time.perf_counter() - start)

    answering.save_model = timed
    try:
        start = time.perf_counter()
        summary = kreg.tune(**kwargs, tuner="random", max_trials=2, tracking_uri=uri, verbose=0, seed=0,
                            register=f"bench_{name}")
        search_s = time.perf_counter() - start
    finally:
        answering.save_model = original
    client = MlflowClient(uri)
    figures = client.get_run(summary.parent_run_id).data.metrics
    directory = root / name
    keras_path = client.download_artifacts(summary.parent_run_id, "model/model.keras", str(directory))
    description = client.download_artifacts(summary.parent_run_id, "model/kreg_model.json", str(directory))
    if isinstance(raw, pd.DataFrame):
        raw_path = directory / "raw.csv"
        raw.to_csv(raw_path, index=False)
    else:
        raw_path = directory / "raw.npy"
        np.save(raw_path, raw)
    np.save(directory / "y.npy", y, allow_pickle=True)
    kind = summary.answer.exported.kind
    args = {"uri": uri, "model_uri": summary.model_uri, "raw": str(raw_path), "keras": keras_path,
            "description": description, "y": str(directory / "y.npy"), "kind": kind}
    proc = subprocess.run([sys.executable, "-c", _SCORE, json.dumps(args)], capture_output=True, text=True,
                          cwd=directory, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0:
        raise SystemExit(f"{name}: the fresh process failed:\n{proc.stderr[-3000:]}")
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    figure = "refit_test_accuracy" if kind == "classification" else "refit_test_rmse"
    return {"case": name, "figure": figure, "parent": figures[figure], **fresh, "search_s": search_s,
            "hand_over_s": sum(handing)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    parser.add_argument("--demo-seconds", type=float, default=429.0,
                        help="the demo's wall time to compare the hand-over cost with (docs/measured.md: 7 min 9 s)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or CASES:
            (Path(tmp) / name).mkdir()
            rows.append(run_case(name, Path(tmp)))
            r = rows[-1]
            print(f"{r['case']:<30} {r['figure']:<20} parent {r['parent']:.6f}  fresh Keras {r['keras']:.6f}  "
                  f"fresh pyfunc {r['pyfunc']:.6f}  max |pyfunc - Keras| {r['max_abs_diff']:.1e}  "
                  f"hand-over {r['hand_over_s']:.2f} s of a {r['search_s']:.0f} s search "
                  f"({100 * r['hand_over_s'] / args.demo_seconds:.2f}% of the demo's {args.demo_seconds:.0f} s)",
                  flush=True)
    bad = [r["case"] for r in rows if abs(r["keras"] - r["parent"]) > 1e-4 * max(1.0, abs(r["parent"]))
           or abs(r["pyfunc"] - r["parent"]) > 1e-4 * max(1.0, abs(r["parent"]))]
    print(json.dumps(rows, indent=1))
    if bad:
        raise SystemExit(f"the answer did not reproduce its refit figures on raw inputs: {bad}")


if __name__ == "__main__":
    main()

"""A refit kept on the run of the trial it refits: ``refit/refit.json`` and ``refit/outputs.npy``.

The baseline's refit (its plan on training + validation for its kept
epochs, tested once) does not depend on the rest of the search. A worker
that ran the baseline refits it at once, while the other workers still run
trials, and logs it here; the end of the search then reads it back instead
of training it again (``kreg.lab.search.answer``), and so does a resumed
search whose baseline was refit before. Only the figures and the
per-example test outputs are kept: the comparison needs nothing else (the
model saved is the chosen plan's).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

DIRECTORY = "refit"
FORMAT = 1
_PROGRESS = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def log_refit(client, run_id: str, *, epochs: int, seed: int, metrics: dict, outputs, activation: str,
              by: str) -> None:
    """Logs a refit's figures and per-example test outputs on ``run_id``; ``by``: who trained it."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "outputs.npy", np.asarray(outputs))
        (tmp / "refit.json").write_text(json.dumps(
            {"format": FORMAT, "epochs": int(epochs), "seed": int(seed), "activation": activation, "by": by,
             "metrics": {k: float(v) for k, v in metrics.items()}}, indent=1, sort_keys=True))
        client.log_artifact(run_id, str(tmp / "outputs.npy"), DIRECTORY)
        client.log_artifact(run_id, str(tmp / "refit.json"), DIRECTORY)


def read_refit(client, run_id: str, *, epochs: int, seed: int, test_examples: int) -> dict | None:
    """The refit logged on ``run_id`` for ``epochs`` epochs from ``seed`` (``metrics``, ``outputs``,
    ``activation``), or None when there is none, it is of other epochs or seed, or it cannot be read."""
    previous = os.environ.get(_PROGRESS)
    os.environ[_PROGRESS] = "false"  # no progress bar for two small files
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(client.download_artifacts(run_id, DIRECTORY, tmp))
            described = json.loads((local / "refit.json").read_text())
            outputs = np.load(io.BytesIO((local / "outputs.npy").read_bytes()), allow_pickle=False)
    except Exception:  # nothing logged (or a partial write): the refit is trained again
        return None
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS, None)
        else:
            os.environ[_PROGRESS] = previous
    if (described.get("format") != FORMAT or described.get("epochs") != int(epochs)
            or described.get("seed") != int(seed) or len(outputs) != test_examples):
        return None
    return {"metrics": described["metrics"], "outputs": outputs, "activation": described["activation"],
            "by": described.get("by", "")}

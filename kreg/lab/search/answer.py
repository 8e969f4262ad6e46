"""The answer of a finished search: the chosen trial, its refit model, and how sure the gain is.

``conclude`` runs once every trial is done (in one process or at the chief
of a parallel search): the selection rule picks the answer (``select``),
the chosen plan and the baseline are refit on training + validation and
tested once (``refit``), the two are compared on the same test examples
(``compare``), and everything goes on the parent run: ``refit_test_*``,
``refit_baseline_test_*``, intervals, the p-value, the tag ``kreg.answer``
(one line), ``comparison.json`` and the chosen model as ``model/model.keras``.

What leaves the lab is whole (``kreg.lab.trial.export``): the refit model
with the data's preparation inside it, so it takes the user's raw inputs and
answers in their units; it is also logged as an MLflow model of the parent
run (``kreg.lab.tracking.logged_model``) and, when asked, registered.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from kreg.lab.analysis import compare as comparing
from kreg.lab.analysis.selection import select
from kreg.lab.tracking.records import COMPLETED


@dataclasses.dataclass
class Answer:
    chosen: object  # TrialRecord
    why: str
    refit: object | None = None  # kreg.lab.trial.refit.Refitted
    baseline_refit: object | None = None
    comparison: dict | None = None
    exported: object | None = None  # kreg.lab.trial.export.Exported: the refit model over raw inputs
    model_uri: str | None = None  # the logged MLflow model (models:/<model id>)
    registered: str | None = None  # "<name> version <n>" when registered

    @property
    def line(self) -> str:
        if self.comparison is not None:
            return self.comparison["line"]
        if self.chosen is not None and self.chosen.plan.is_baseline:
            return "the chosen plan is the baseline: no regularization helped on validation"
        return ""


def choose(search, records) -> Answer:
    chosen, why = select(records, search.objective, search.space, search.settings.select)
    return Answer(chosen, why)


def refit_and_compare(search, answer: Answer, baseline, echo=lambda line: None) -> Answer:
    """Refits the chosen plan (and the baseline, when it is another trial) and compares them on test."""
    from kreg.lab.trial.refit import refit, refit_epochs

    from kreg.training.ensemble import _quiet_retracing

    with _quiet_retracing():  # new models, new traces: TensorFlow's retracing warning means nothing here
        return _refit_and_compare(search, answer, baseline, echo, refit, refit_epochs)


def _refit_and_compare(search, answer, baseline, echo, refit, refit_epochs):
    chosen = answer.chosen
    echo(f"refit: {chosen.plan.describe()} on training + validation for {refit_epochs(chosen)} epochs")
    answer.refit = refit(search, chosen.plan, refit_epochs(chosen))
    from kreg.lab.trial.export import whole_model

    answer.exported = whole_model(answer.refit.model, search.splits, search.task, answer.refit.activation)
    if baseline is None or baseline.status != COMPLETED or baseline is chosen:
        return answer
    echo(f"refit: the baseline for {refit_epochs(baseline)} epochs (the paired comparison's reference)")
    answer.baseline_refit = refit(search, baseline.plan, refit_epochs(baseline))
    answer.comparison = comparing.compare(search.task, answer.baseline_refit.outputs, answer.refit.outputs,
                                          search.splits.y_test, seed=search.seed)
    return answer


def parent_metrics(answer: Answer) -> dict:
    out = {}
    if answer.refit is not None:
        out.update({f"refit_{k}": v for k, v in answer.refit.metrics.items()})
        out["refit_epochs"] = answer.refit.epochs
    if answer.baseline_refit is not None:
        out.update({f"refit_baseline_{k}": v for k, v in answer.baseline_refit.metrics.items()})
    c = answer.comparison
    if c is not None:
        for key, value in c.items():
            if key.endswith(("_ci95_low", "_ci95_high")) or key in ("gain", "gain_ci95_low", "gain_ci95_high",
                                                                     "p_value"):
                out[f"answer_{key}"] = value
        out["answer_distinguishable"] = float(c["distinguishable"])
    return out


def artifacts(answer: Answer, directory: Path) -> list[Path]:
    """``comparison.json`` and the chosen model (``model/model.keras``: logged under ``model``)."""
    paths = []
    if answer.comparison is not None:
        path = directory / "comparison.json"
        path.write_text(json.dumps(answer.comparison, indent=1, sort_keys=True, default=float))
        paths.append(path)
    return paths


def save_model(answer: Answer, tracker, search=None) -> str | None:
    """Saves the model over raw inputs as the parent's artifact ``model/model.keras`` (with
    ``model/kreg_model.json``: its raw inputs and classes) and logs it as an MLflow model of the parent,
    registered as ``search.register`` when set; returns the artifact path."""
    if answer.refit is None or answer.exported is None:
        return None
    exported = answer.exported
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        exported.model.save(path)
        (Path(tmp) / "kreg_model.json").write_text(json.dumps(exported.describe(), indent=1))
        tracker.client.log_artifact(tracker.parent_id, str(path), "model")
        tracker.client.log_artifact(tracker.parent_id, str(Path(tmp) / "kreg_model.json"), "model")
    if search is not None:
        log_mlflow_model(answer, tracker, search)
    return "model/model.keras"


def log_mlflow_model(answer: Answer, tracker, search) -> None:
    """The answer as an MLflow ``LoggedModel`` of the parent run, its refit test figures linked to it."""
    from kreg.lab.tracking.logged_model import link_metrics, log_answer
    from kreg.lab.trial.export import raw_example

    register = getattr(search, "register", None)
    info = log_answer(answer.exported, tracker.tracking_uri, tracker.parent_id,
                      example=raw_example(search.splits), register=register)
    answer.model_uri = info.model_uri
    link_metrics(tracker.client, tracker.parent_id, info.model_id,
                 {f"refit_{k}": v for k, v in answer.refit.metrics.items()})
    if register and info.registered_model_version is not None:
        answer.registered = f"{register} version {info.registered_model_version}"

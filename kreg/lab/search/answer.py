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

from kreg.lab import timing
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


def refit_and_compare(search, answer: Answer, baseline, echo=lambda line: None, tracker=None) -> Answer:
    """Refits the chosen plan (and the baseline, when it is another trial) and compares them on test.

    With a ``tracker``, the baseline's refit is read back from its trial's run when it was refit before
    (by the worker that ran it, or before a resume: ``kreg.lab.tracking.refits``) and logged there when
    it is trained here; it is refit first, so a signal during the chosen plan's refit keeps it.
    """
    from kreg.lab.trial.refit import refit, refit_epochs

    from kreg.training.ensemble import _quiet_retracing

    with _quiet_retracing():  # new models, new traces: TensorFlow's retracing warning means nothing here
        return _refit_and_compare(search, answer, baseline, echo, refit, refit_epochs, tracker)


def known_refit(tracker, search, record):
    """The refit of ``record``'s plan logged on its run (``Refitted`` without a model), or None."""
    from kreg.lab.tracking.refits import read_refit
    from kreg.lab.trial.refit import Refitted, refit_epochs

    if tracker is None or record.run_id is None:
        return None
    epochs = refit_epochs(record)
    kept = read_refit(tracker.client, record.run_id, epochs=epochs, seed=search.seed,
                      test_examples=len(search.splits.y_test))
    if kept is None:
        return None
    return Refitted(record.plan, epochs, None, kept["metrics"], kept["outputs"], kept["activation"])


def keep_refit(tracker, search, record, refitted, by: str = "the search's end") -> bool:
    """Logs ``refitted`` (``record``'s plan refit) on ``record``'s run, for the end of the search or a resume.
    A copy only: when the store refuses it, the refit stands and is trained again where it is needed."""
    from kreg.lab.tracking.refits import log_refit

    if tracker is None or record.run_id is None:
        return False
    try:
        log_refit(tracker.client, record.run_id, epochs=refitted.epochs, seed=search.seed,
                  metrics=refitted.metrics, outputs=refitted.outputs, activation=refitted.activation, by=by)
    except Exception:
        return False
    return True


def refit_baseline_early(search, record, tracker, echo=lambda line: None, by: str = "a worker") -> bool:
    """A worker that has just run the baseline refits it at once and logs it on its run (``keep_refit``),
    so the end of the search only refits the chosen plan; True when it did."""
    from kreg.lab.trial.refit import refit, refit_epochs

    from kreg.training.ensemble import _quiet_retracing

    if not (search.settings.refit and search.splits.in_memory and record.plan.is_baseline
            and record.status == COMPLETED and record.run_id is not None):
        return False
    echo(f"refit: the baseline for {refit_epochs(record)} epochs, while the other trials run")
    with _quiet_retracing(), timing.section("end.refit_baseline_early"):
        return keep_refit(tracker, search, record, refit(search, record.plan, refit_epochs(record)), by=by)


def _refit_and_compare(search, answer, baseline, echo, refit, refit_epochs, tracker=None):
    chosen = answer.chosen
    compared = baseline is not None and baseline.status == COMPLETED and baseline is not chosen
    if compared:
        answer.baseline_refit = known_refit(tracker, search, baseline)
        if answer.baseline_refit is not None:
            echo(f"refit: the baseline's ({refit_epochs(baseline)} epochs) read back from its run, refit before")
        else:
            echo(f"refit: the baseline for {refit_epochs(baseline)} epochs (the paired comparison's reference)")
            with timing.section("end.refit_baseline"):
                answer.baseline_refit = refit(search, baseline.plan, refit_epochs(baseline))
            keep_refit(tracker, search, baseline, answer.baseline_refit)
    echo(f"refit: {chosen.plan.describe()} on training + validation for {refit_epochs(chosen)} epochs")
    with timing.section("end.refit"):
        answer.refit = refit(search, chosen.plan, refit_epochs(chosen))
    from kreg.lab.trial.export import whole_model

    with timing.section("end.export"):
        answer.exported = whole_model(answer.refit.model, search.splits, search.task, answer.refit.activation)
    if not compared:
        return answer
    with timing.section("end.compare"):
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
        with timing.section("end.mlflow_model"):
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

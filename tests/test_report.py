"""Issue 13: report.html is self-contained and renders in headless Chromium; effects and the front are right."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from kreg.lab.analysis import effects
from kreg.lab.analysis.diagnoses import diagnose
from kreg.lab.plan import RegularizationPlan
from kreg.lab.tracking.records import TrialRecord


def _record(trial_id, plan, objective, gap, epochs=20, seed=0):
    rng = np.random.default_rng(seed)
    val = list(np.linspace(0.5, objective, epochs) + rng.normal(0, 0.005, epochs))
    history = {"loss": list(np.linspace(1.0, 0.2, epochs)), "accuracy": list(np.linspace(0.5, 0.99, epochs)),
               "train_accuracy": list(np.linspace(0.5, objective + gap, epochs)), "val_accuracy": val,
               "gap_accuracy": list(np.linspace(0.0, gap, epochs))}
    metrics = {"val_accuracy": objective, "gap_accuracy": gap, "train_accuracy": objective + gap,
               "test_accuracy": objective - 0.01, "kept_epoch": epochs, "epochs_run": epochs,
               "cv_sem_kept_val_accuracy": 0.01}
    return TrialRecord(trial_id=trial_id, status="COMPLETED", plan=plan, objective=objective, metrics=metrics,
                       history=history, duration_s=3.0)


def test_technique_effects_recover_known_additive_effects():
    """Objective = 0.80 + 0.05 [dropout] - 0.02 [l2] exactly: least squares finds both, with zero SE."""
    plans = [RegularizationPlan(), RegularizationPlan(dropout=0.2), RegularizationPlan(l2=1e-3),
             RegularizationPlan(dropout=0.2, l2=1e-3), RegularizationPlan(dropout=0.3)]
    records = [_record(str(i), p, 0.80 + 0.05 * bool(p.dropout) - 0.02 * bool(p.l2), 0.01)
               for i, p in enumerate(plans)]
    rows = {r["technique"]: r for r in effects.technique_effects(records, "max", "accuracy")}
    assert rows["dropout"]["effect"] == pytest.approx(0.05) and rows["l2"]["effect"] == pytest.approx(-0.02)
    assert rows["dropout"]["effect_se"] == pytest.approx(0.0, abs=1e-9)
    assert rows["dropout"]["trials_with"] == 3 and rows["dropout"]["trials_without"] == 2
    assert rows["dropout"]["difference"] == pytest.approx((0.85 + 0.83 + 0.85) / 3 - (0.80 + 0.78) / 2)
    # For a loss (min), a technique that lowers the objective is the one that helps: positive effect
    rows = {r["technique"]: r for r in effects.technique_effects(records, "min", "accuracy")}
    assert rows["l2"]["effect"] == pytest.approx(0.02)


def test_pareto_front_keeps_the_undominated_trials():
    records = [_record("0", RegularizationPlan(), 0.90, 0.08), _record("1", RegularizationPlan(l2=1e-3), 0.92, 0.05),
               _record("2", RegularizationPlan(dropout=0.3), 0.89, 0.01),
               _record("3", RegularizationPlan(dropout=0.1), 0.88, 0.03)]  # dominated by 2
    assert [r.trial_id for r in effects.pareto_front(records, "accuracy")] == ["1", "2"]


def test_diagnoses_name_their_evidence():
    # Batch-norm statistics that have not converged: the running figure 1.00, the honest one 0.33
    history = {"accuracy": [0.9, 1.0], "train_accuracy": [0.3, 0.33], "val_accuracy": [0.3, 0.32],
               "gap_accuracy": [0.0, 0.01]}
    found = diagnose(history, {"kept_epoch": 2, "train_accuracy": 0.33, "val_accuracy": 0.32}, "accuracy")
    assert [d["kind"] for d in found] == ["inference_collapse"]
    assert "1.000" in found[0]["evidence"] and "0.330" in found[0]["evidence"] and "BatchNormalization" in \
        found[0]["advice"]
    # The gap kept growing after the kept epoch (early stopping restored epoch 3 of 10)
    gaps = [0.0, 0.01, 0.02, 0.03, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10]
    found = diagnose({"gap_accuracy": gaps, "accuracy": [0.9] * 10, "train_accuracy": [0.9] * 10},
                     {"kept_epoch": 3, "train_accuracy": 0.9, "val_accuracy": 0.88}, "accuracy")
    assert [d["kind"] for d in found] == ["gap_growing_after_kept"] and "epoch 10" in found[0]["evidence"]
    # Validation better than the honest train figure
    found = diagnose({}, {"train_accuracy": 0.80, "val_accuracy": 0.90}, "accuracy")
    assert [d["kind"] for d in found] == ["validation_better_than_train"]
    # Healthy: nothing to say
    assert diagnose({"accuracy": [0.9, 0.95], "train_accuracy": [0.9, 0.96], "gap_accuracy": [0.01, 0.02]},
                    {"kept_epoch": 2, "train_accuracy": 0.96, "val_accuracy": 0.94}, "accuracy") == []


def test_report_is_self_contained_and_renders_in_headless_chromium(tmp_path):
    from kreg.lab.analysis.compare import compare
    from kreg.lab.search.answer import Answer
    from kreg.lab.search.tune import SearchSummary, prepare, request
    from kreg.lab.tracking.report import search_artifacts

    search = prepare(request("mlp", "wine", techniques={"dropout": {"min": 0.1, "max": 0.5}}, cv=3,
                             tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                             model_args={"width": 8, "depth": 1})).search
    records = [_record("0", RegularizationPlan(), 0.90, 0.08), _record("1", RegularizationPlan(dropout=0.2), 0.93, 0.02),
               _record("2", RegularizationPlan(dropout=0.45), 0.91, 0.0)]
    records[0].diagnoses = [{"kind": "still_improving", "evidence": "validation <b>improved</b>", "advice": "train"}]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    base = np.eye(3)[np.where(rng.random(60) < 0.8, y, (y + 1) % 3)] * 0.9 + 0.1 / 3
    chosen = np.eye(3)[np.where(rng.random(60) < 0.95, y, (y + 1) % 3)] * 0.9 + 0.1 / 3
    answer = Answer(records[1], "best validation objective", comparison=compare(search.task, base, chosen, y))
    summary = SearchSummary(pipeline="report<test>", parent_run_id="abc", experiment="e", tracking_uri="sqlite://",
                            records=records, baseline=records[0], best=records[1], duration_s=12.0,
                            objective=search.objective, top=records[1], selection=answer.why, answer=answer)
    paths = search_artifacts(summary, search, tmp_path)
    names = [p.name for p in paths]
    assert names[-1] == "report.html" and "technique_effects.png" in names and "validation_vs_gap.png" in names
    page = (tmp_path / "report.html").read_text()
    assert "report&lt;test&gt;" in page and "<b>improved</b>" not in page  # escaped, not injected
    assert page.count("<img ") == 3 and page.count("data:image/png;base64,") == 3
    assert "http://" not in page and "https://" not in page and "<script" not in page  # nothing to fetch or run
    assert answer.comparison["line"] in page.replace("&#x27;", "'") and "Chosen: dropout=0.2" in page

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/test.sh installs Debian's package when it can)")
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
               "--window-size=1200,2400"]
    dom = subprocess.run([*command, "--dump-dom", (tmp_path / "report.html").as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Which technique helped" in dom.stdout and dom.stdout.count("<img ") == 3
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
               or "Failed to load" in line or "ERR_" in line]
    assert not console, console
    shot = subprocess.run([*command, f"--screenshot={tmp_path / 'report.png'}", (tmp_path / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(tmp_path / "report.png")
    assert pixels.shape[:2] == (2400, 1200) and pixels[..., :3].std() > 0.05  # drawn, not a blank page

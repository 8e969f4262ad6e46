"""What one trial produced, as plain data (written to MLflow and summary tables)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

COMPLETED = "COMPLETED"
FAILED = "FAILED"
KILLED = "KILLED"  # stopped by a signal (or found RUNNING after a kill -9): runs again on resume
PRUNED = "PRUNED"  # stopped by the pruning rule: its result (at the epoch it stopped) is final, never the answer
ENDED = (COMPLETED, PRUNED)  # trials whose result is committed and whose curves others are judged against


@dataclasses.dataclass
class TrialRecord:
    trial_id: str
    status: str = "RUNNING"
    plan: Any = None  # RegularizationPlan
    hp_values: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)  # end-of-trial figures
    history: dict = dataclasses.field(default_factory=dict)  # per-epoch lists
    objective: float | None = None
    reason: str = ""
    duration_s: float = 0.0
    run_id: str | None = None
    placements: dict = dataclasses.field(default_factory=dict)  # technique -> layers it went into
    folds: list = dataclasses.field(default_factory=list)  # cross-validation: each fold's end figures
    fold_curves: list = dataclasses.field(default_factory=list)  # cross-validation: each fold's objective per epoch
    diagnoses: list = dataclasses.field(default_factory=list)  # {kind, evidence, advice}: see analysis.diagnoses

    def to_json(self) -> str:
        """The finished trial as JSON (artifact ``trial.json``): what a resumed search reads back."""
        data = {
            "trial_id": self.trial_id, "status": self.status,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "hp_values": self.hp_values, "metrics": self.metrics, "objective": self.objective,
            "reason": self.reason, "duration_s": self.duration_s, "placements": self.placements,
            "folds": self.folds, "diagnoses": self.diagnoses, "history": self.history,
        }
        return json.dumps(data, indent=1, sort_keys=True, default=_plain)

    @classmethod
    def from_json(cls, text: str, run_id: str | None = None) -> "TrialRecord":
        from kreg.lab.plan import RegularizationPlan

        data = json.loads(text)
        plan = data.pop("plan", None)
        return cls(**data, plan=RegularizationPlan.from_dict(plan) if plan is not None else None, run_id=run_id)

    def row(self, metric: str = "accuracy") -> dict:
        """One line of the search's summary table (``metric``: the task's headline metric)."""
        m = self.metrics
        return {
            "trial_id": self.trial_id,
            "status": self.status,
            "plan": self.plan.describe() if self.plan is not None else "",
            "epochs_run": m.get("epochs_run"),
            "kept_epoch": m.get("kept_epoch"),
            "objective": self.objective,
            f"val_{metric}": m.get(f"val_{metric}"),
            f"train_{metric}": m.get(f"train_{metric}"),
            f"gap_{metric}": m.get(f"gap_{metric}"),
            f"test_{metric}": m.get(f"test_{metric}"),
            f"test_gap_{metric}": m.get(f"test_gap_{metric}"),
            "test_loss": m.get("test_loss"),
            "duration_s": round(self.duration_s, 2),
            "reason": self.reason,
        }


def _plain(value):
    """NumPy scalars and other stragglers as JSON values."""
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and not math.isfinite(value) else value
    return str(value)


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    header = list(rows[0])

    def fmt(value):
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(row[k]) for k in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def stopped_by_budget(metrics: dict) -> bool:
    """Whether a PRUNED trial was stopped by the budget (``budget_stopped_at_epoch``/``_fold``), not by its curve."""
    return "budget_stopped_at_epoch" in metrics or "budget_stopped_at_fold" in metrics


def show_duration(seconds: float) -> str:
    """``1h02m``, ``4m31s``, ``38s``."""
    seconds = max(0.0, float(seconds))
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:.0f}s"

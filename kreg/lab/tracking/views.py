"""Where MLflow's UI opens on a search: its trials, the columns that matter first, the Model training view.

MLflow 3.18's UI (read from its bundled source) can be steered in three ways,
and kreg uses all three:

- the URL parameter ``workflowType=machine_learning`` switches the UI's
  sidebar to its "Model training" view (the experiment tag
  ``mlflow.experimentKind`` = ``custom_model_development``, set on every kreg
  experiment, makes the experiment itself open on its runs table);
- a *stored view*: the experiment tag ``mlflow.sharedViewState.<key>`` holds
  the runs table's state as JSON (what the UI's own "Share" button writes),
  and the URL parameter ``viewStateShareKey=<key>`` opens it. kreg stores one
  per search (key ``kreg-<parent run id>``): only that search's trials
  (``tags.mlflow.parentRunId = '<parent>'``), best objective first, and the
  columns plan, objective, validation, gap, test, test gap, epochs, duration,
  dataset, in that order;
- sorting by anything but the start time shows child runs as rows of their
  own: MLflow nests child runs under a collapsed parent only when the table
  is sorted by start time with no filter, and its stored views cannot say
  "expanded" (``runsExpanded`` is left out of a shared view).

``kreg ui`` prints the URL of the latest search's view and its parent run.
"""

from __future__ import annotations

import json
from kreg.lab.tracking import tags as tag

VIEW_PREFIX = "mlflow.sharedViewState."
WORKFLOW = "workflowType=machine_learning"


def view_key(parent_id: str) -> str:
    return f"kreg-{parent_id}"


def _metric(name: str) -> str:
    return f"metrics.`{name}`"


def trials_view(parent_id: str, objective: str, direction: str, metric: str) -> dict:
    """The runs table's state: the search's trials, best ``kept_<objective>`` first, kreg's columns first."""
    columns = ["tags.`kreg.plan`", _metric(f"kept_{objective}")]
    if objective != f"val_{metric}":  # e.g. the gap-penalized objective: show the plain validation figure too
        columns.append(_metric(f"kept_val_{metric}"))
    columns += [_metric(f"kept_gap_{metric}"), _metric(f"test_{metric}"), _metric(f"test_gap_{metric}"),
                _metric("epochs_run"), _metric("duration_s"), "tags.`kreg.diagnoses`", "attributes.`Dataset`"]
    return {
        "searchFilter": f"tags.mlflow.parentRunId = '{parent_id}'",
        "orderByKey": _metric(f"kept_{objective}"),
        "orderByAsc": direction == "min",
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": {"tags.`kreg.plan`": 360},
    }


def save_view(client, experiment_id: str, parent_id: str, objective: str, direction: str, metric: str) -> str:
    """Stores the search's view as an experiment tag; returns its key."""
    key = view_key(parent_id)
    client.set_experiment_tag(experiment_id, VIEW_PREFIX + key,
                              json.dumps(trials_view(parent_id, objective, direction, metric)))
    return key


def experiment_url(base: str, experiment_id: str, view: str | None = None) -> str:
    """The experiment's runs table in the Model training view (through the stored ``view``, if given)."""
    query = f"viewStateShareKey={view}&{WORKFLOW}" if view else WORKFLOW
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def run_url(base: str, experiment_id: str, run_id: str, tab: str | None = None) -> str:
    """A run's page (``tab``: ``model-metrics``, ``system-metrics``, ``artifacts``...), Model training view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}{f'/{tab}' if tab else ''}?{WORKFLOW}"


def latest_search(client):
    """``(experiment, parent run, view key or None)`` of the most recently started kreg search; None if none."""
    experiments = client.search_experiments()
    if not experiments:
        return None
    ids = [e.experiment_id for e in experiments]
    found = []
    for i in range(0, len(ids), 100):  # MLflow searches at most 100 experiments at once
        found += tag.search_parents(client, ids[i:i + 100], max_results=1)
    if not found:
        return None
    run = max(found, key=lambda r: r.info.start_time or 0)
    experiment = next(e for e in experiments if e.experiment_id == run.info.experiment_id)
    key = view_key(run.info.run_id)
    return experiment, run, key if VIEW_PREFIX + key in experiment.tags else None


def latest_search_lines(uri: str, base: str) -> list[str]:
    """What ``kreg ui`` prints about the latest search: its trials' view and its parent run page."""
    from mlflow.tracking import MlflowClient

    try:
        latest = latest_search(MlflowClient(tracking_uri=uri))
    except Exception:  # an empty or unreadable store: the UI shows what there is
        return []
    if latest is None:
        return []
    experiment, run, key = latest
    name = run.data.tags.get(tag.PIPELINE, run.info.run_name)
    return [f"latest search: {name} in experiment '{experiment.name}'",
            f"  its trials: {experiment_url(base, experiment.experiment_id, key)}",
            f"  its parent run (the answer, report.html): {run_url(base, experiment.experiment_id, run.info.run_id)}"]

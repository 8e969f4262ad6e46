"""The MLflow tag names kreg writes and reads, and the run queries that filter on them: this module alone spells them.

The names are part of kreg's public contract (the docs list
them, MLflow's UI filters on them): a search's parent run, a trial's child
run, a study's runs. Code elsewhere in the lab uses these constants and the
queries below, never the strings.
"""

from __future__ import annotations

# ------------------------------------------------------------------ a search's parent run
ROLE = "kreg.role"  # "search" or "study"
PIPELINE = "kreg.pipeline"  # the search's name
TASK = "kreg.task"
FINGERPRINT = "kreg.search_fingerprint"  # what a resume must match
RESUMES = "kreg.resumes"  # how many times it was resumed
ERROR = "kreg.error"
BEST_TRIAL_ID = "kreg.best_trial_id"
DEFAULTS = "kreg.defaults"  # what the "auto" defaults decided for this data
PRUNING = "kreg.pruning"
SELECTION = "kreg.selection"
ANSWER = "kreg.answer"
BUDGET = "kreg.budget"
MODEL_ARTIFACT = "kreg.model_artifact"
MODEL_URI = "kreg.model_uri"
REGISTERED_MODEL = "kreg.registered_model"

# ------------------------------------------------------------------ a trial's child run
TRIAL_ID = "kreg.trial_id"
TRIAL_STATUS = "kreg.trial_status"  # RUNNING until a result is committed: COMPLETED, PRUNED, FAILED, KILLED
INTERRUPTED_BY = "kreg.interrupted_by"
FAILURE_REASON = "kreg.failure_reason"
WORKER = "kreg.worker"  # the worker that ran it (parallel and distributed searches)
PRUNED = "kreg.pruned"
DIAGNOSES = "kreg.diagnoses"
FOLDS_DONE = "kreg.folds_done"
PRECISE_BN = "kreg.precise_bn"
PLACEMENTS = "kreg.placements"
PLAN = "kreg.plan"
TECHNIQUES = "kreg.techniques"

# ------------------------------------------------------------------ a study's runs
STUDY = "kreg.study"
POINT = "kreg.point"
CLAIM = "kreg.claim"
VERDICT = "kreg.verdict"
HELD = "kreg.held"
MODEL = "kreg.model"

SEARCH_ROLE, STUDY_ROLE = "search", "study"
PARENT = "mlflow.parentRunId"  # MLflow's own: the nested run's parent


# ------------------------------------------------------------------ run queries
def _all(client, experiment_ids: list, filter_string: str, order_by: list[str] | None = None) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, order_by=order_by,
                                  max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def child_runs(client, experiment_id: str, parent_id: str) -> list:
    """Every nested run of ``parent_id`` (a search's trials, a study's points), oldest first."""
    return _all(client, [experiment_id], f"tags.{PARENT} = '{parent_id}'", ["attributes.start_time ASC"])


def trial_runs(client, experiment_id: str, parent_id: str, trial_id: str) -> list:
    """The child runs of ``parent_id`` that ran trial ``trial_id``, oldest first (more than one: it ran again)."""
    return list(client.search_runs(
        [experiment_id], filter_string=f"tags.{PARENT} = '{parent_id}' and tags.`{TRIAL_ID}` = '{trial_id}'",
        order_by=["attributes.start_time ASC"], max_results=100))


def search_parents(client, experiment_ids: list, max_results: int = 1000, order_by: list[str] | None = None) -> list:
    """The parent runs of kreg searches in ``experiment_ids`` (newest first unless ``order_by`` says otherwise)."""
    return list(client.search_runs(experiment_ids, filter_string=f"tags.`{ROLE}` = '{SEARCH_ROLE}'",
                                   order_by=order_by or ["attributes.start_time DESC"], max_results=max_results))


def is_search_parent(tags: dict) -> bool:
    """Whether a run with ``tags`` is a kreg search's parent run (not a trial, not a study)."""
    return tags.get(ROLE) == SEARCH_ROLE and PARENT not in tags

"""What a search is, as plain data: the spec a resume must match, its fingerprint, and what changed.

A resumed search continues the same keras-tuner oracle and the same MLflow
parent run, so it must be the same search: the same search space, data,
model, task, objective, training and search settings, monitors and seed.
``search_spec`` writes them down (the data by its description and a digest
of its arrays; the model by its description and the structure of the
baseline model built before the search, so an edited builder function is
noticed too). The parent run keeps the fingerprint (tag
``kreg.search_fingerprint``) and the readable spec (artifact
``search_spec.json``); ``changes`` names what differs, e.g.
``search space changed: techniques.l2.strength.max 0.01 -> 0.1``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from kreg.lab.tracking.tags import FINGERPRINT as FINGERPRINT_TAG

SPEC_ARTIFACT = "search_spec.json"

# Top-level sections of the spec -> how a refusal names them, in the order they are reported.
_SECTIONS = {
    "name": "pipeline name", "seed": "seed", "data": "data", "task": "task", "model": "model",
    "objective": "objective", "space": "search space", "search": "search settings", "training": "training",
    "monitor": "monitor", "train_eval_samples": "training sample of the honest train figures",
    "loss": "loss", "metrics": "metrics",
}


def data_digest(splits) -> str | None:
    """A digest of the in-memory splits' arrays (after standardization); None for streamed data."""
    if not getattr(splits, "in_memory", False):
        return None
    digest = hashlib.sha256()
    for split in ("train", "validation", "test"):
        for array in splits.arrays(split):
            array = np.ascontiguousarray(array)
            digest.update(f"{split}:{array.dtype}:{array.shape};".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def model_structure(model) -> str | None:
    """A digest of a built model's layers (class names and parameter counts); None if it cannot be read."""
    try:
        layers = [(type(layer).__name__, int(layer.count_params()) if layer.built else 0) for layer in model.layers]
        text = json.dumps([layers, int(model.count_params())])
    except Exception:  # an unbuilt subclassed model: its description has to do
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _describe_object(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_describe_object(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe_object(v) for k, v in value.items()}
    return getattr(value, "name", None) or type(value).__name__  # a loss or metric object: its name


def search_spec(search, structure: str | None = None) -> dict:
    """The resolved search as plain JSON data (see the module docstring)."""
    return {
        "name": search.name,
        "seed": search.seed,
        "data": {"description": search.splits.describe(), "digest": data_digest(search.splits)},
        "task": search.task.describe(),
        "model": {"description": search.model.describe(), "structure": structure},
        "objective": {"name": search.objective.name, "direction": search.objective.direction},
        "space": search.space.to_dict(),
        # The budget is not part of what the trials mean: a resume may give the search more (or less) time.
        "search": {**search.settings.model_dump(mode="json", exclude={"budget"}),
                   "max_trials": search.settings.trial_limit},
        "training": search.training.model_dump(mode="json"),
        # What a trial's figures depend on: system metrics only describe the machine.
        "monitor": search.monitor.model_dump(mode="json", exclude={"system_metrics", "system_metrics_interval_s"}),
        "train_eval_samples": search.train_eval_samples,
        "loss": _describe_object(search.loss),
        "metrics": _describe_object(search.metrics),
    }


def canonical(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


def fingerprint(spec: dict) -> str:
    return hashlib.sha256(canonical(spec).encode()).hexdigest()[:32]


def _flat(data, prefix: str = "") -> dict:
    if isinstance(data, dict) and data:
        out = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def _show(value) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else value


def changes(old: dict, new: dict, limit: int = 4) -> list[str]:
    """What differs between two specs, one phrase per section, e.g.
    ``search space changed: techniques.l2.strength.max 0.01 -> 0.1``."""
    old, new = json.loads(canonical(old)), json.loads(canonical(new))  # both as JSON sees them
    phrases = []
    for section in [*_SECTIONS, *sorted(set(old) | set(new) - set(_SECTIONS))]:
        a, b = old.get(section), new.get(section)
        if a == b:
            continue
        label = _SECTIONS.get(section, section)
        if not isinstance(a, dict) or not isinstance(b, dict):
            phrases.append(f"{label} changed: {_show(a)} -> {_show(b)}")
            continue
        fa, fb = _flat(a), _flat(b)
        parts = []
        for key in sorted(set(fa) | set(fb)):
            if key not in fa:
                parts.append(f"{key} added ({_show(fb[key])})")
            elif key not in fb:
                parts.append(f"{key} removed (was {_show(fa[key])})")
            elif fa[key] != fb[key]:
                if key == "digest":
                    parts.append("the arrays' contents differ")
                elif key == "structure":
                    parts.append("the built model's layers or parameter counts differ")
                else:
                    parts.append(f"{key} {_show(fa[key])} -> {_show(fb[key])}")
        shown = parts[:limit] + ([f"and {len(parts) - limit} more"] if len(parts) > limit else [])
        phrases.append(f"{label} changed: {', '.join(shown)}")
    return phrases

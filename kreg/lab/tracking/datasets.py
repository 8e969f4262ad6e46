"""A search's data as MLflow dataset inputs: one per split, on the parent run and on every trial run.

Each split becomes an MLflow ``Dataset`` (name ``<data>-<split>``, a digest,
a schema, a source, a profile) logged as a run input with the input tag
``mlflow.data.context`` = ``train`` / ``validation`` / ``test``, so the UI's
Datasets column and each run page show what the run saw. The entities are
built once per search and logged with one ``log_inputs`` call per run.

Cheap by construction: the digest of in-memory arrays reads a fixed sample of
at most ``DIGEST_ROWS`` rows and a float64 sum of the whole array (MLflow's own
``compute_numpy_digest`` copies the whole array and hashes only its first
10,000 numbers); the schema comes from dtypes and shapes; nothing is
copied. Streamed ``tf.data`` sources (``StreamSplits``) are described by
their element spec and known sizes, never read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

CONTEXT_TAG = "mlflow.data.context"
SPLITS = ("train", "validation", "test")
DIGEST_ROWS = 1024


def _digest(parts: list[bytes]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for part in parts:
        md5.update(part)
    return md5.hexdigest()[:8]  # MLflow's digests are 8 hex characters


def array_digest(*arrays) -> str:
    """A digest of arrays from their dtypes, shapes, ``DIGEST_ROWS`` evenly spaced rows and whole-array sums."""
    parts = []
    for array in arrays:
        array = np.asarray(array)
        parts.append(f"{array.dtype}:{array.shape};".encode())
        if array.size == 0:
            continue
        rows = np.unique(np.linspace(0, len(array) - 1, min(len(array), DIGEST_ROWS)).astype(np.int64))
        parts.append(np.ascontiguousarray(array[rows]).tobytes())
        if array.dtype.kind in "biuf":
            parts.append(np.float64(array.sum(dtype=np.float64)).tobytes())
    return _digest(parts)


def _tensor_schema(array, names=None):
    """MLflow's schema of one array (a ``TensorSpec``, batch axis -1), or named double columns."""
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    array = np.asarray(array)
    if names is not None and array.ndim == 2 and len(names) == array.shape[1]:
        return Schema([ColSpec("double" if array.dtype.kind == "f" else "long", str(n)) for n in names])
    return Schema([TensorSpec(array.dtype, (-1, *array.shape[1:]))])


def _spec_schema(spec):
    """MLflow's schema of a ``tf.TensorSpec`` (or a nest of them: one entry per named or numbered part)."""
    from mlflow.types.schema import Schema, TensorSpec

    def one(s, name=None):
        shape = tuple(-1 if d is None else int(d) for d in (s.shape.as_list() if s.shape.rank is not None else []))
        return TensorSpec(np.dtype(s.dtype.as_numpy_dtype), shape or (-1,), name)

    if isinstance(spec, dict):
        return Schema([one(s, str(k)) for k, s in spec.items()])
    if isinstance(spec, (tuple, list)):
        return Schema([one(s, str(i)) for i, s in enumerate(spec)])
    return Schema([one(spec)])


def _source(splits):
    """Where the data came from: the file it was read from, else kreg's description of it."""
    name = splits.spec.dataset or ""
    path = Path(name).expanduser()
    if name and path.suffix and path.is_file():
        return "local", json.dumps({"uri": str(path.resolve())})
    return "code", json.dumps({"tags": {"kreg.data": name or "arrays", "kreg.description": splits.describe()}})


def describe(splits) -> list[dict]:
    """One dict per split: ``name``, ``digest``, ``source_type``, ``source``, ``schema``, ``profile``, ``context``."""
    from mlflow.data.schema import TensorDatasetSchema

    name = splits.spec.dataset or ("tf.data" if not splits.in_memory else "arrays")
    source_type, source = _source(splits)
    sizes = splits.sizes()
    out = []
    for split in SPLITS:
        if splits.in_memory:
            x, y = splits.arrays(split)
            encoder = getattr(splits, "encoder", None)
            names = getattr(encoder, "feature_names", None) if encoder is not None else None
            schema = TensorDatasetSchema(_tensor_schema(x, names), _tensor_schema(y))
            digest = array_digest(x, y)
            profile = {"num_rows": int(len(y)), "features_shape": list(np.shape(x)),
                       "targets_shape": list(np.shape(y)), "features_nbytes": int(np.asarray(x).nbytes)}
        else:
            element = splits._split(split).element_spec
            x_spec, y_spec = element if isinstance(element, tuple) and len(element) == 2 else (element, None)
            schema = TensorDatasetSchema(_spec_schema(x_spec), None if y_spec is None else _spec_schema(y_spec))
            digest = _digest([f"{name}:{split}:{element!r}:{sizes.get(split)}".encode()])
            profile = {"num_rows": sizes.get(split), "streamed": True}
        out.append({"name": f"{name}-{split}"[:500], "digest": digest, "source_type": source_type,
                    "source": source, "schema": json.dumps(schema.to_dict()), "profile": json.dumps(profile),
                    "context": split})
    return out


def dataset_inputs(splits) -> list:
    """``mlflow.entities.DatasetInput`` per split, for ``MlflowClient.log_inputs``."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return [DatasetInput(Dataset(name=d["name"], digest=d["digest"], source_type=d["source_type"],
                                 source=d["source"], schema=d["schema"], profile=d["profile"]),
                         tags=[InputTag(CONTEXT_TAG, d["context"])])
            for d in describe(splits)]

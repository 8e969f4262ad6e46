"""The registry of regularization techniques the lab can search: one class per technique.

Each technique is a class over ``kreg.lab.techniques.base.Technique``, in its family's module:
``penalties`` (penalties and constraints on kernels), ``dropouts`` (layers in a model's blocks),
``inputs`` (augmentation and noise on the inputs), ``losses``, ``procedures`` (optimizer and training),
``settings``. Its class attributes are its data (parameters with kinds and defaults, what it acts on,
the data, tasks and models it fits, which direction regularizes more); its methods are the hooks through
which it checks a model, places itself in a user's model or a built-in block, is found in a built
model, and acts on the optimizer, the loss, the training data, the model that trains and the callbacks.
Validation, the plan, the search space, the default space, the plan's description and the config read
the data; ``kreg.lab.apply`` and the built-in builders call the placing hooks, ``kreg.lab.task`` and
``kreg.lab.trial.procedures`` the training ones (through ``placing``).

Adding a technique is one class in its family's module (collected by ``base.collect``) and a row in
``tests/test_technique_contract.py``: see ``docs/guide/adding-a-technique.md``.

Importable without Keras (config validation reads it): hooks import Keras inside their bodies.
"""

from __future__ import annotations

from kreg.lab.techniques import dropouts
from kreg.lab.techniques import inputs
from kreg.lab.techniques import losses
from kreg.lab.techniques import penalties
from kreg.lab.techniques import procedures
from kreg.lab.techniques import settings
from kreg.lab.techniques.base import ACTS_ON
from kreg.lab.techniques.base import KIND_EXPECTED
from kreg.lab.techniques.base import MODALITIES
from kreg.lab.techniques.base import REQUIRED
from kreg.lab.techniques.base import TASKS
from kreg.lab.techniques.base import Param
from kreg.lab.techniques.base import Technique
from kreg.lab.techniques.base import coerce
from kreg.lab.techniques.base import kind_problem
from kreg.lab.techniques.inputs import MIXING

FAMILIES = (penalties, dropouts, inputs, losses, procedures, settings)

# In each technique's ``position`` (a plan's description and parameters follow it), then as written.
REGISTRY: dict[str, Technique] = {t.name: t for t in sorted((t for family in FAMILIES for t in family.TECHNIQUES),
                                                             key=lambda t: t.position)}
# The order hooks run in: as written in the family modules (inputs: augmentations, then noise).
PLACEMENT = {t.name: i for i, t in enumerate(t for family in FAMILIES for t in family.TECHNIQUES)}
SETTINGS = tuple(name for name, t in REGISTRY.items() if t.is_setting)
AUGMENTATIONS = tuple(t.augmentation for t in REGISTRY.values() if t.augmentation)

__all__ = ["ACTS_ON", "AUGMENTATIONS", "FAMILIES", "KIND_EXPECTED", "MIXING", "MODALITIES", "REGISTRY", "REQUIRED",
           "SETTINGS", "TASKS", "Param", "Technique", "coerce", "fits", "for_modality", "get", "kind_problem"]


def get(name: str) -> Technique:
    """The registry entry for ``name``; a ValueError listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        from kreg import _validation as v

        raise v.invalid("technique", "one of " + ", ".join(sorted(REGISTRY)), name) from None


def for_modality(modality: str) -> tuple[str, ...]:
    """The augmentation names that fit ``modality`` data."""
    return tuple(t.augmentation for t in REGISTRY.values()
                 if t.augmentation and modality in (t.modalities or MODALITIES))


def fits(name: str, *, modality: str | None = None, task: str | None = None,
         builtin_model: str | None = None) -> str | None:
    """None when the technique fits, else what it would need (for a ConfigError's "Expected ...")."""
    t = get(name)
    if modality and t.modalities and modality not in t.modalities:
        return f"a technique for {' or '.join(t.modalities)} data (the data is {modality})"
    if task and task not in t.tasks:
        return f"a technique for {' or '.join(t.tasks)} (the task is {task})"
    if builtin_model and t.builtin_models is not None and builtin_model not in t.builtin_models:
        if not t.builtin_models:
            return (f"a technique that applies to model.type={builtin_model} ({name} needs a part no built-in "
                    f"model has: {t.needs}; give your own model)")
        return f"a technique that applies to model.type={builtin_model} ({name} needs {', '.join(t.builtin_models)})"
    return None

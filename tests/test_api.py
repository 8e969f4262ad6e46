"""The public API is explicit: each package's __all__ is pinned, and so is what kreg registers with Keras."""

import importlib
import json
import os
import subprocess
import sys

import pytest

API = {
    "kreg": ["DropBlockSpec", "EarlyStoppingSpec", "ElasticNetSpec", "KregError", "RegularizationPlan", "SWASpec",
             "ScheduleSpec", "__version__", "predict_mc", "regularize", "study", "tune", "augment", "callbacks",
             "constraints", "data", "lab", "layers", "losses", "metrics", "models", "regularizers", "schedules",
             "training"],
    "kreg.lab": ["Classification", "ConfigError", "DataError", "Regression", "RegularizationPlan", "SearchSpace",
                 "apply_plan", "regularize", "tune", "KregError", "ResumeError", "PipelineSyntaxError", "BuilderError",
                 "JoinError", "StoreError", "ChiefLost", "BaselineBlocked", "Diverged", "SearchInterrupted"],
    "kreg.layers": ["DropBlock1D", "DropBlock2D", "DropConnect", "MCDropout", "ScheduledDropout",
                    "ScheduledGaussianNoise", "ScheduledSpatialDropout1D", "ScheduledSpatialDropout2D",
                    "StochasticDepth", "drop_path_rates", "predict_mc"],
    "kreg.augment": ["BackTranslation", "CutMix", "MixUp", "RandomBackgroundNoise", "RandomDeletion",
                     "RandomFeatureDropout", "RandomInsertion", "RandomJitter", "RandomMagnitudeScale",
                     "RandomPitchShift", "RandomShift1D", "RandomSwap", "RandomSynonymReplacement",
                     "RandomTimeScale1D", "RandomTimeStretch", "RandomTimeWarp", "SpecAugment", "SwapNoise",
                     "augmentation_layers", "image", "image_layers", "load_synonyms", "mix_batches",
                     "mixing_layers"],
    "kreg.callbacks": ["GeneralizationGap", "RegularizationSchedule", "SWA", "SharpnessProbe", "SnapshotEnsemble",
                       "WeightMonitor", "gap_value", "lower_is_better", "measure_sharpness", "refresh_batch_norm",
                       "schedulable_objects", "weight_statistics"],
    "kreg.training": ["Bagging", "BatchNormStatistics", "Ensemble", "PreciseBatchNorm", "SAM", "error_decomposition",
                      "loss_and_gradients", "recompute_batch_norm_statistics", "sam_perturbation"],
    "kreg.data": ["BreastCancer", "DataError", "DatasetSplits", "Digits", "InputSpec", "Mnist1d", "StreamSplits",
                  "Wine", "available_datasets", "from_arrays", "from_csv", "from_datasets", "from_loader",
                  "from_tfds", "is_known_dataset", "load_splits"],
    "kreg.models": ["MODEL_TYPES", "build_cnn1d", "build_cnn2d", "build_mlp", "build_model", "compile_model",
                    "make_optimizer"],
    "kreg.lab.tracking": ["default_tracking_uri", "project_root", "resolve_tracking_uri"],
}


@pytest.mark.parametrize("module", sorted(API))
def test_all_is_pinned_and_importable(module):
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(API[module])
    for name in mod.__all__:
        assert getattr(mod, name) is not None


# Every name kreg registers with Keras ("kreg>" + name), pinned. Text layers are TensorFlow ops:
# registered under the TensorFlow backend only.
REGISTERED = [
    "BrierScore", "ConfidencePenalty", "Constant", "Cosine", "CutMix", "DropBlock1D", "DropBlock2D", "DropConnect",
    "ElasticNet", "ExpectedCalibrationError", "GroupLasso", "LinearWarmup", "MCDropout", "MaxCalibrationError",
    "MixUp", "RandomBackgroundNoise", "RandomFeatureDropout", "RandomJitter", "RandomMagnitudeScale",
    "RandomPitchShift", "RandomShift1D", "RandomTimeScale1D", "RandomTimeStretch", "RandomTimeWarp", "SAM",
    "SWA", "Schedulable", "ScheduledDropout", "ScheduledGaussianNoise", "ScheduledSpatialDropout1D",
    "ScheduledSpatialDropout2D", "SharpnessProbe", "SnapshotEnsemble", "SoftThreshold",
    "SparseCategoricalCrossentropy", "SpecAugment", "Step", "StochasticDepth", "Sum", "SwapNoise",
    "TopClassAccuracy", "WeightMonitor",
]
REGISTERED_TENSORFLOW_ONLY = ["BackTranslation", "RandomDeletion", "RandomInsertion", "RandomSwap",
                              "RandomSynonymReplacement"]

_FRESH = """
import sys, json
import kreg
before = sorted(m for m in ("keras", "tensorflow", "jax") if m in sys.modules)
{import_keras}
names = sorted(k for k in keras.saving.get_custom_objects() if k.startswith("kreg>"))
print(json.dumps({{"before": before, "names": names, "backend": keras.backend.backend(),
                  "tensorflow": "tensorflow" in sys.modules}}))
"""


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("order", ["kreg, then keras", "keras, then kreg"])
def test_import_kreg_registers_every_serializable_object_in_a_fresh_process(order):
    """``import kreg`` imports no Keras; Keras' import (before or after) registers every kreg object."""
    script = _FRESH.format(import_keras="import keras")
    if order == "keras, then kreg":
        script = "import keras\n" + script
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    tensorflow = report["backend"] == "tensorflow"
    expected = REGISTERED + (REGISTERED_TENSORFLOW_ONLY if tensorflow else [])
    assert report["names"] == sorted(f"kreg>{name}" for name in expected)
    if order == "kreg, then keras":
        assert report["before"] == []  # `import kreg` (and `kreg validate`) loads neither Keras nor TensorFlow
    assert tensorflow or not report["tensorflow"]  # under JAX, registering imports no TensorFlow


def test_dir_lists_lazily_loaded_names():
    import kreg.augment

    assert set(kreg.augment.__all__) <= set(dir(kreg.augment))
    assert {"BackTranslation", "RandomSwap", "load_synonyms"} <= set(dir(kreg.augment))


def test_library_never_imports_the_lab():
    """The library half stands alone: no library module names kreg.lab (DESIGN: data flows one way)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "kreg"
    lab_facing = {root / "__init__.py", root / "data" / "__init__.py", root / "models" / "__init__.py"}
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "lab" not in p.relative_to(root).parts and p not in lab_facing
                 and "kreg.lab" in p.read_text()]
    assert offenders == []


def test_registry_and_library_agree_on_augmentations():
    from kreg.augment.modality import BY_MODALITY
    from kreg.lab.techniques import MODALITIES, for_modality

    for modality in MODALITIES:
        assert set(for_modality(modality)) == set(BY_MODALITY[modality]), modality


def test_optimizer_names_agree():
    import typing

    from kreg.lab.models.compile import OPTIMIZERS
    from kreg.lab.search.settings import Training

    assert typing.get_args(Training.model_fields["optimizer"].annotation) == OPTIMIZERS

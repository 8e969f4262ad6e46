"""The public API is explicit: each package's __all__ is pinned."""

import importlib

import pytest

API = {
    "kreg": ["DropBlockSpec", "EarlyStoppingSpec", "ElasticNetSpec", "RegularizationPlan", "SWASpec",
             "ScheduleSpec", "__version__", "predict_mc", "augment", "callbacks", "config", "constraints", "data",
             "layers", "losses", "metrics", "models", "pipeline", "regularizers", "schedules", "tracking",
             "training", "tuning"],
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
    "kreg.training": ["Bagging", "Ensemble", "SAM", "error_decomposition", "loss_and_gradients",
                      "sam_perturbation"],
    "kreg.data": ["BreastCancer", "DataError", "DatasetSplits", "Digits", "InputSpec", "Mnist1d", "StreamSplits",
                  "Wine", "available_datasets", "from_arrays", "from_csv", "from_datasets", "from_loader",
                  "from_tfds", "is_known_dataset", "load_splits"],
    "kreg.models": ["MODEL_TYPES", "build_cnn1d", "build_cnn2d", "build_mlp", "build_model", "compile_model",
                    "make_optimizer"],
    "kreg.tuning": ["KregTuner", "TrialRunner", "make_oracle", "objective_for", "plan_from_hp"],
    "kreg.tracking": ["default_tracking_uri", "project_root", "resolve_tracking_uri"],
}


@pytest.mark.parametrize("module", sorted(API))
def test_all_is_pinned_and_importable(module):
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(API[module])
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_registered_for_saving():
    import keras

    import kreg.augment.text  # noqa: F401 (imported on first use under other backends)
    import kreg.constraints
    import kreg.layers
    import kreg.losses
    import kreg.metrics
    import kreg.regularizers
    import kreg.callbacks
    import kreg.training

    names = ["DropBlock1D", "DropBlock2D", "DropConnect", "MCDropout", "StochasticDepth", "ElasticNet",
             "GroupLasso", "Sum", "SoftThreshold", "SparseCategoricalCrossentropy", "ConfidencePenalty",
             "ExpectedCalibrationError", "MaxCalibrationError", "BrierScore", "RandomShift1D",
             "RandomTimeScale1D", "ScheduledDropout", "ScheduledSpatialDropout1D", "ScheduledSpatialDropout2D",
             "ScheduledGaussianNoise", "Schedulable", "SAM", "SWA", "SharpnessProbe", "WeightMonitor",
             "SnapshotEnsemble", "TopClassAccuracy", "RandomTimeWarp", "RandomJitter", "RandomMagnitudeScale",
             "RandomFeatureDropout", "SwapNoise", "MixUp", "CutMix", "RandomTimeStretch", "RandomPitchShift",
             "RandomBackgroundNoise", "SpecAugment", "RandomSynonymReplacement", "RandomInsertion",
             "RandomDeletion", "RandomSwap", "BackTranslation"]
    for name in names:
        assert keras.saving.get_registered_object(f"kreg>{name}") is not None, name

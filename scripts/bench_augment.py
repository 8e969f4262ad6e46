"""Examples per second through a tf.data pipeline, for each augmentation family.

    python scripts/bench_augment.py            # every family, 3 repeats
    python scripts/bench_augment.py --families image --repeats 5

Each augmentation runs as `dataset.batch(B).map(layer)` over in-memory data
(cached, repeated) and the pipeline is drained; the figure is the median of
`--repeats` timed passes after one warm-up pass. The image family times
kreg's MixUp/CutMix (integer labels in, soft labels out) against Keras'
MixUp/CutMix (one-hot labels, its dict interface) on the same batches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kreg.augment as aug  # noqa: E402


def throughput(data, batch, layer, batches, repeats, wrap=None):
    """Median examples/sec of `data` batched and mapped through `layer`."""
    ds = tf.data.Dataset.from_tensor_slices(data).batch(batch, drop_remainder=True).cache().repeat()
    mapped = ds.map(wrap(layer) if wrap else layer).take(batches)
    for _ in mapped:  # warm-up: traces the map function
        pass
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in mapped:
            pass
        rates.append(batches * batch / (time.perf_counter() - start))
    return statistics.median(rates)


def families(rng):
    words = ["the", "movie", "was", "good", "and", "story", "very", "funny", "a", "bad", "film", "happy",
             "end", "old", "car", "is", "fast", "i", "think", "quick"]
    sentences = np.array([" ".join(rng.choice(words, 20)) for _ in range(1024)])
    ids = rng.integers(1, 5000, size=(1024, 64)).astype("int32")
    id_table = {i: [i + 5000, i + 6000] for i in range(1, 2500)}
    images = rng.normal(size=(2048, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, 2048)
    one_hot = np.eye(10, dtype="float32")[labels]
    sequences = rng.normal(size=(4096, 40, 1)).astype("float32")
    rows = rng.normal(size=(8192, 30)).astype("float32")
    waves = rng.normal(size=(64, 16000)).astype("float32") * 0.1
    specs = rng.normal(size=(512, 100, 64)).astype("float32")
    return {
        "sequence": [(name, sequences, 64, layer) for name, layer in [
            ("RandomShift1D(0.2)", aug.RandomShift1D(0.2, seed=0)),
            ("RandomTimeScale1D(0.2)", aug.RandomTimeScale1D(0.2, seed=0)),
            ("RandomTimeWarp(0.2)", aug.RandomTimeWarp(0.2, seed=0)),
        ]],
        "tabular": [(name, rows, 256, layer) for name, layer in [
            ("RandomJitter(0.05)", aug.RandomJitter(0.05, seed=0)),
            ("RandomMagnitudeScale(0.1)", aug.RandomMagnitudeScale(0.1, seed=0)),
            ("RandomFeatureDropout(0.1)", aug.RandomFeatureDropout(0.1, seed=0)),
            ("SwapNoise(0.15)", aug.SwapNoise(0.15, seed=0)),
        ]],
        "image": [
            ("kreg MixUp(0.2), integer labels", (images, labels), 128, aug.MixUp(0.2, num_classes=10, seed=0), None),
            ("keras MixUp(0.2), one-hot labels", (images, one_hot), 128, keras.layers.MixUp(0.2, seed=0),
             lambda layer: lambda x, y: (lambda d: (d["images"], d["labels"]))(layer({"images": x, "labels": y}))),
            ("kreg CutMix(1.0), integer labels", (images, labels), 128, aug.CutMix(1.0, num_classes=10, seed=0), None),
            ("keras CutMix(1.0), one-hot labels", (images, one_hot), 128, keras.layers.CutMix(1.0, seed=0),
             lambda layer: lambda x, y: (lambda d: (d["images"], d["labels"]))(layer({"images": x, "labels": y}))),
            ("kreg.augment.image(flip, rotation 0.1)", images, 128,
             aug.image({"flip": 1, "rotation": 0.1}, seed=0), None),
        ],
        "text": [
            ("RandomSynonymReplacement(0.1), strings", sentences, 64, aug.RandomSynonymReplacement(0.1, seed=0)),
            ("RandomInsertion(0.1), strings", sentences, 64, aug.RandomInsertion(0.1, seed=0)),
            ("RandomDeletion(0.1), strings", sentences, 64, aug.RandomDeletion(0.1, seed=0)),
            ("RandomSwap(0.1), strings", sentences, 64, aug.RandomSwap(0.1, seed=0)),
            ("RandomDeletion(0.1), token ids", ids, 64, aug.RandomDeletion(0.1, seed=0)),
            ("RandomSynonymReplacement(0.1), token ids", ids, 64,
             aug.RandomSynonymReplacement(0.1, synonyms=id_table, seed=0)),
        ],
        "audio": [
            ("RandomTimeStretch(0.1), 1 s at 16 kHz", waves, 16, aug.RandomTimeStretch(0.1, seed=0)),
            ("RandomPitchShift(2), 1 s at 16 kHz", waves, 16, aug.RandomPitchShift(2.0, seed=0)),
            ("RandomBackgroundNoise((5, 20)), white", waves, 16, aug.RandomBackgroundNoise((5, 20), seed=0)),
            ("RandomBackgroundNoise((5, 20)), pink", waves, 16,
             aug.RandomBackgroundNoise((5, 20), color="pink", seed=0)),
            ("SpecAugment, 100x64 spectrograms", specs, 64, aug.SpecAugment(8, 10, seed=0)),
        ],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=["sequence", "tabular", "image", "text", "audio"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20, help="batches per timed pass")
    args = parser.parse_args(argv)
    table = families(np.random.default_rng(0))
    print(f"keras {keras.__version__} ({keras.backend.backend()}), tensorflow {tf.__version__}, "
          f"{os.cpu_count()} CPUs; median of {args.repeats} passes of {args.batches} batches\n")
    print("| family | augmentation | batch | examples/s |")
    print("|---|---|---:|---:|")
    for family in args.families:
        for entry in table[family]:
            name, data, batch, layer = entry[:4]
            wrap = entry[4] if len(entry) > 4 else None
            rate = throughput(data, batch, layer, args.batches, args.repeats, wrap)
            print(f"| {family} | {name} | {batch} | {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()

"""Your MLP on a regression problem (scikit-learn's diabetes): kreg's best test MSE beside RidgeCV's.

Split: train_test_split(test_size=0.25, random_state=0), the same raw features for both; MSE in the targets' units.
Full budget, 16 trials x 200 epochs, about 3 min on 2 CPU cores: python examples/own_mlp_regression.py
Tiny budget, 2 x 2 (the tests): KREG_EXAMPLE_BUDGET=tiny python ...; runs go to $MLFLOW_TRACKING_URI, else mlruns/.
Measured, two runs: plain MLP 6399 / 6196, kreg's best 3252 / 3770 (different plans: 67 validation rows pick
noisily), RidgeCV 3171. The search cuts the MLP's error by 40-50%, but the linear model wins on this data.
"""
import os

import keras
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import train_test_split

import kreg

TINY = os.environ.get("KREG_EXAMPLE_BUDGET") == "tiny"


def build():  # plain Keras: two hidden layers, a linear output for the one target
    inputs = keras.Input((10,))
    x = keras.layers.Dense(64, activation="relu")(keras.layers.Dense(64, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(1)(x))


x_train, x_test, y_train, y_test = train_test_split(*load_diabetes(return_X_y=True), test_size=0.25, random_state=0)
result = kreg.tune(build, kreg.data.from_arrays(x_train, y_train, x_test=x_test, y_test=y_test), techniques={
    "l2": {"min": 1e-5, "max": 1e-1, "scale": "log"}, "dropout": {"min": 0.1, "max": 0.5},
    "input_noise": {"min": 0.05, "max": 0.5, "scale": "log"}, "early_stopping": {"patience": 20},
}, max_trials=2 if TINY else 16, epochs=2 if TINY else 200, batch_size=32, name="own_mlp_diabetes")
print("chosen plan:", result.best.plan.describe())
for label, trial in (("baseline", result.baseline), ("best", result.best)):
    print(f"kreg {label} (trial {trial.trial_id}) test MSE: {trial.metrics['test_mse']:.1f}")
ridge = RidgeCV(alphas=np.logspace(-3, 3, 30)).fit(x_train, y_train)  # the same split, the same raw features
print(f"RidgeCV (alpha={ridge.alpha_:.3g}) test MSE: {np.mean((ridge.predict(x_test) - y_test) ** 2):.1f}")

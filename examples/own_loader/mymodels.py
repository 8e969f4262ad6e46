"""Your model builder: plain Keras, unregularized; kreg applies each trial's plan to it."""
import keras


def build(width=64, depth=2):
    inputs = keras.Input((30,))
    x = inputs
    for _ in range(depth):
        x = keras.layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))  # logits for the two classes

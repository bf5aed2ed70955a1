"""
Swapping losses
===============

A loss is a record like a layer: ``forward(pred, target) -> (value, cache)`` and ``backward(cache) ->
d value / d pred``. Which one fits depends on the question the network answers. This tutorial asks four
questions of the same data and swaps the loss (and the last layer's width) for each: which digit
(softmax cross-entropy), is it a zero (binary cross-entropy), which properties does it have (multi-label),
and how much (regression with MSE, Huber and L1, with outliers in the targets).
"""

# %%
# Setup: a slice of MNIST and one small network builder.
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lamina import data, layers, losses, optim

(x_train, y_train), (x_test, y_test) = data.mnist()
x_train, y_train, x_test, y_test = x_train[:6_000], y_train[:6_000], x_test[:1_000], y_test[:1_000]


def train(loss, x, y, n_out, epochs=3, seed=0):
    """A 784-64-n_out ReLU network trained with Adam on (x, y) under the given loss."""
    rng = np.random.default_rng(seed)
    model = layers.mlp(rng, [x.shape[1], 64, n_out], activation=layers.ReLU)
    model, history = optim.fit(
        model, loss, optim.Adam(1e-3), x, y, epochs=epochs, batch_size=64, rng=rng, progress=False
    )
    return model, history


# %%
# Which digit: softmax cross-entropy
# ----------------------------------
# Ten logits, integer labels. :func:`lamina.losses.softmax` turns logits into probabilities.
loss = losses.SoftmaxCrossEntropy()
model, history = train(loss, x_train, y_train, 10)
print("classification:", optim.evaluate(model, loss, x_test, y_test))
print("probabilities of the first test image:", np.round(losses.softmax(model(x_test[:1]))[0], 3))

# %%
# Is it a zero: binary cross-entropy
# ----------------------------------
# One logit, 0/1 targets. Zeros are a tenth of the data; ``pos_weight`` weighs them more, trading a few
# false alarms for fewer missed zeros. :func:`lamina.losses.sigmoid` gives the probability.
is_zero_train, is_zero_test = (y_train == 0).astype(np.float32), (y_test == 0).astype(np.float32)
for pos_weight in (None, 5.0):
    loss = losses.BinaryCrossEntropy(pos_weight=pos_weight)
    model, _ = train(loss, x_train, is_zero_train[:, None], 1)
    said = losses.sigmoid(model(x_test))[:, 0] > 0.5
    missed = int(np.sum(~said & (is_zero_test == 1)))
    false_alarms = int(np.sum(said & (is_zero_test == 0)))
    print(
        f"pos_weight={pos_weight}: missed zeros {missed}, false alarms {false_alarms}, "
        f"{optim.evaluate(model, loss, x_test, is_zero_test[:, None])}"
    )

# %%
# Several yes/no answers at once: multi-label
# -------------------------------------------
# Three independent questions per image (is it even, is it greater than 4, does it have a closed loop),
# three logits, a target of shape (n, 3). Binary cross-entropy treats each as its own yes/no question.


def properties(labels):
    """(n, 3) float32: even, greater than 4, has a loop (0, 6, 8, 9)."""
    return np.stack([labels % 2 == 0, labels > 4, np.isin(labels, [0, 6, 8, 9])], axis=1).astype(np.float32)


loss = losses.BinaryCrossEntropy()
model, _ = train(loss, x_train, properties(y_train), 3)
said = losses.sigmoid(model(x_test)) > 0.5
for name, correct in zip(
    ["even", "greater than 4", "has a loop"], (said == properties(y_test)).mean(axis=0)
):
    print(f"{name:>15}: {correct:.3f} correct")

# %%
# How much: regression with MSE, Huber and L1
# -------------------------------------------
# The diabetes table (442 patients, ten measurements, the disease's progression a year later) from
# ``examples/data``. A few targets are corrupted on purpose (multiplied by 20) in the training part:
# MSE squares those large errors and bends toward them; Huber (quadratic near zero, linear beyond
# ``delta``) and L1 (linear everywhere) are far less moved. Every model is scored on clean test targets.
here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
table = np.genfromtxt(
    here.parent.parent / "examples" / "data" / "diabetes.csv", delimiter=",", skip_header=1
)
x_all, y_all = table[:, :-1].astype(np.float32), table[:, -1:].astype(np.float32)
(x_fit, y_fit), (x_held, y_held) = data.split(x_all, y_all, 0.25, np.random.default_rng(1))
mean, std = x_fit.mean(axis=0), x_fit.std(axis=0)
y_mean, y_std = y_fit.mean(), y_fit.std()
x_fit, x_held = (x_fit - mean) / std, (x_held - mean) / std
noisy = y_fit.copy()
noisy[np.random.default_rng(2).choice(len(noisy), 10, replace=False)] *= 20
targets = (noisy - y_mean) / y_std

scores = {}
for loss in (losses.MSE(), losses.Huber(delta=1.0), losses.L1()):
    model, _ = train(loss, x_fit, targets, 1, epochs=60)
    predicted = model(x_held) * y_std + y_mean
    scores[type(loss).__name__] = float(np.abs(predicted - y_held).mean())
    print(f"{loss!r}: mean absolute error on clean test targets {scores[type(loss).__name__]:.1f}")

plt.bar(list(scores), list(scores.values()), color=["tab:red", "tab:blue", "tab:green"])
plt.ylabel("mean absolute error (test)")
plt.title("10 corrupted training targets: MSE bends, Huber and L1 hold")
plt.show()

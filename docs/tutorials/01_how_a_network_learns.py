"""
How a network learns
====================

lamina began as a notebook: a 784-128-10 network with ReLU, trained on MNIST with mini-batch SGD, its
forward and backward passes written out by hand. This tutorial builds that network, trains it one step at
a time with ``forward`` / ``backward`` / ``update``, then with :func:`lamina.optim.fit`, watches what the
network does while it learns (the loss, dead units, the update-to-weight ratio), and sees what goes wrong
with a learning rate that is too large, and how lamina says so.
"""

# %%
# The data and the network
# ------------------------
# :func:`lamina.data.mnist` reads the MNIST files shipped with lamina: 28x28 digits flattened to 784
# floats in [0, 1], and their labels. A slice of 12,000 images keeps this page quick to build.
import warnings

import matplotlib.pyplot as plt
import numpy as np

from lamina import data, diagnostics, layers, losses, optim

(x_train, y_train), (x_test, y_test) = data.mnist()
x_train, y_train, x_test, y_test = x_train[:12_000], y_train[:12_000], x_test[:2_000], y_test[:2_000]
print(x_train.shape, x_train.dtype, y_train[:10])

rng = np.random.default_rng(0)
model = layers.Sequence(
    [
        layers.Dense.init(rng, 784, 128),  # weight (784, 128), bias (128,): y = x @ weight + bias
        layers.ReLU(),
        layers.Dense.init(rng, 128, 10),  # ten logits, one per digit
    ]
)
print(model.summary())

# %%
# One step, by hand
# -----------------
# Everything is a pure function of records: ``forward`` returns the output and what ``backward`` needs,
# ``backward`` returns the input's gradient and a record of the same class holding the gradients, and the
# optimizer's ``update`` returns a *new* model. Nothing is changed in place.
loss = losses.SoftmaxCrossEntropy()
opt = optim.SGD(learning_rate=0.1, momentum=0.9)
state = opt.init(model)
mode = layers.Mode(train=True, rng=rng)

xb, yb = x_train[:64], y_train[:64]
logits, cache = model.forward(xb, mode)  # logits (64, 10)
value, loss_cache = loss.forward(logits, yb)  # a Python float
dlogits = loss.backward(loss_cache)  # d value / d logits, (64, 10)
dx, grads = model.backward(cache, dlogits, mode)  # grads: a Sequence of Dense records
new_model, state = opt.update(model, grads, state)
print(f"loss {value:.4f}; gradient of the first weight {grads.layers[0].weight.shape}")
print("the old model is untouched:", not np.array_equal(model.layers[0].weight, new_model.layers[0].weight))

# %%
# An epoch by hand is that step in a loop over shuffled mini-batches. :func:`lamina.optim.train_step`
# is the same step as one function (what ``fit`` and the estimators call).
model, by_hand = new_model, []
for xb, yb in data.batches(x_train, y_train, 64, rng=rng):
    model, state, value, _ = optim.train_step(model, loss, opt, state, xb, yb, mode)
    by_hand.append(value)
print(f"{len(by_hand)} steps, loss {by_hand[0]:.3f} -> {np.mean(by_hand[-20:]):.3f}")
print("test:", optim.evaluate(model, loss, x_test, y_test))

# %%
# The same with ``fit``, watched
# ------------------------------
# :func:`lamina.optim.fit` runs that loop, with validation, a history and callbacks.
# :class:`lamina.diagnostics.Monitor` is one: every few batches it records, per layer, its outputs'
# statistics and the fraction of dead ReLU units, and per parameter the gradient norm and the
# update-to-weight ratio.
rng = np.random.default_rng(0)
model = layers.mlp(rng, [784, 128, 10], activation=layers.ReLU)  # the notebook's shape list
monitor = diagnostics.Monitor(every=10)
model, history = optim.fit(model, loss, optim.SGD(0.1, momentum=0.9), x_train, y_train, epochs=4,
                           batch_size=64, rng=rng, validation=(x_test, y_test), progress=False,
                           callbacks=[monitor])
columns = zip(history["loss"], history["accuracy"], history["val_loss"], history["val_accuracy"])
for epoch, (loss_, acc, val_loss, val_acc) in enumerate(columns, start=1):
    print(f"epoch {epoch}: loss {loss_:.4f} accuracy {acc:.4f} | validation loss {val_loss:.4f} "
          f"accuracy {val_acc:.4f}")

# %%
# The loss of every recorded batch, and how many hidden units are dead (zero for every sample of a
# batch: they pass no gradient) and how large each step is against the weights it changes. Around
# 1e-3 is the usual healthy update-to-weight ratio; much larger is unstable, much smaller barely learns.
records = monitor.records
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
axes[0].plot(records["step"], records["loss"])
axes[0].set(title="loss per recorded batch", xlabel="step", yscale="log")
axes[1].plot(records["step"], records["layers"]["layers[1]"]["dead"])
axes[1].set(title="dead ReLU units (fraction)", xlabel="step")
for path, stats in records["parameters"].items():
    axes[2].plot(records["step"], stats["update_ratio"], label=path)
axes[2].set(title="update-to-weight ratio", xlabel="step", yscale="log")
axes[2].legend(fontsize=7)
fig.tight_layout()
plt.show()

for path in records["parameters"]:
    ratios = diagnostics.by_epoch(records, "parameters", path, "update_ratio")
    print(path, " ".join(f"epoch {e}: {r:.1e}" for e, r in ratios))

# %%
# A learning rate that is too large
# ---------------------------------
# One epoch of the same network from the same start, at a given learning rate:


def one_epoch(learning_rate):
    """The notebook's network trained for one epoch with SGD at learning_rate (same seed each time)."""
    rng = np.random.default_rng(0)
    model = layers.mlp(rng, [784, 128, 10], activation=layers.ReLU)
    opt = optim.SGD(learning_rate, momentum=0.9)
    return optim.fit(model, loss, opt, x_train, y_train, epochs=1, batch_size=64, rng=rng, progress=False)


# %%
# With ``learning_rate=5`` the steps overshoot: the loss climbs far above where it started, and lamina
# warns with an :class:`lamina.optim.TrainingWarning` that names the learning rate.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", optim.TrainingWarning)
    one_epoch(5.0)
for warning in caught:
    if issubclass(warning.category, optim.TrainingWarning):
        print(f"{warning.category.__name__}: {warning.message}")

# %%
# Far larger, the numbers overflow: the loss is no longer finite, and ``fit`` stops with
# :class:`lamina.optim.NonFiniteLossError` (a ``FloatingPointError``) naming the epoch, the batch and the
# first layer that went bad, before the bad step is applied.
with np.errstate(all="ignore"), warnings.catch_warnings():
    warnings.simplefilter("ignore", optim.TrainingWarning)
    try:
        one_epoch(1e6)
    except optim.NonFiniteLossError as error:
        print(f"{type(error).__name__}: {error}")

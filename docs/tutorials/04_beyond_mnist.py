"""
Beyond MNIST: tables and images
===============================

A network earns its keep against a baseline: the simplest model that could do the job. This tutorial
trains a network on a real table (breast cancer diagnoses) beside a logistic regression and a
majority-class guess, then on images, where a small convolutional network meets a plain MLP.
"""

# %%
# A table: malignant or benign
# ----------------------------
# ``examples/data/breast_cancer.csv``: 569 breast masses, 30 measurements each, and the diagnosis
# (1 malignant, 0 benign). Features are standardized with the training part's statistics only.
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression

from lamina import data, diagnostics, layers, losses, optim

here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
csv = here.parent.parent / "examples" / "data" / "breast_cancer.csv"
names = csv.read_text().splitlines()[0].split(",")
table = np.genfromtxt(csv, delimiter=",", skip_header=1)
x, y = table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)
print(f"{x.shape[0]} masses, {x.shape[1]} features ({', '.join(names[:3])}, ...), {y.mean():.0%} malignant")

(x_fit, y_fit), (x_held, y_held) = data.split(x, y, 0.3, np.random.default_rng(0))
mean, std = x_fit.mean(axis=0), x_fit.std(axis=0)
x_fit, x_held = (x_fit - mean) / std, (x_held - mean) / std

rng = np.random.default_rng(0)
model = layers.Sequence(
    [layers.Dense.init(rng, 30, 16), layers.ReLU(), layers.Dropout(0.2), layers.Dense.init(rng, 16, 1)]
)
loss = losses.BinaryCrossEntropy()
model, history = optim.fit(model, loss, optim.Adam(1e-3, weight_decay=1e-4), x_fit, y_fit[:, None],
                           epochs=80, batch_size=32, rng=rng, validation=(x_held, y_held[:, None]),
                           progress=False)

network = float(((model(x_held)[:, 0] > 0) == y_held).mean())
logistic = LogisticRegression(max_iter=1000).fit(x_fit, y_fit).score(x_held, y_held)
majority = float((y_held == np.bincount(y_fit).argmax()).mean())
print(
    f"test accuracy: network {network:.3f}, logistic regression {logistic:.3f}, majority guess {majority:.3f}"
)

# %%
# On this table the straight line is hard to beat: a network earns its keep on data a line cannot separate.
# The curves show the network learning, and where the validation loss levels off.
plt.plot(history["loss"], label="training loss")
plt.plot(history["val_loss"], label="validation loss")
plt.xlabel("epoch")
plt.legend()
plt.title("breast cancer: binary cross-entropy")
plt.show()

# %%
# Images
# ------
# Fashion-MNIST (clothes, the same size as MNIST, harder) is not shipped with lamina: it is read from
# ``$LAMINA_DATA``, the user cache or Debian's ``dataset-fashion-mnist`` package. Here it is asked for
# without downloading; where it is missing, the error says how to get it, and MNIST stands in.
try:
    (x_train, y_train), (x_test, y_test) = data.fashion_mnist(download=False)
    title = "Fashion-MNIST"
except data.DatasetNotFoundError as error:
    print(f"{type(error).__name__}: {error}")
    (x_train, y_train), (x_test, y_test) = data.mnist()
    title = "MNIST"
x_train, y_train, x_test, y_test = x_train[:4_000], y_train[:4_000], x_test[:1_000], y_test[:1_000]

# %%
# The baseline is an MLP on the flat pixels; the convolutional network sees them as 28x28 images with
# one channel (``Reshape``), learns eight 3x3 filters, pools and classifies.
loss = losses.SoftmaxCrossEntropy()
results = {}
for name, model in {
    "MLP 784-64-10": layers.mlp(rng, [784, 64, 10], activation=layers.ReLU),
    "CNN 8 filters": layers.Sequence(
        [
            layers.Reshape((28, 28, 1)),
            layers.Conv2D.init(rng, 1, 8, 3, padding=1),
            layers.ReLU(),
            layers.MaxPool2D((2, 2)),
            layers.Flatten(),
            layers.Dense.init(rng, 8 * 14 * 14, 10),
        ]
    ),
}.items():
    model, history = optim.fit(
        model, loss, optim.Adam(1e-3), x_train, y_train, epochs=3, batch_size=64, rng=rng, progress=False
    )
    results[name] = model
    print(f"{title}, {name}: {optim.evaluate(model, loss, x_test, y_test)}")

# %%
# What the convolutional network's first layer looks for: its eight filters, from
# :func:`lamina.diagnostics.filters`.
filters = diagnostics.filters(results["CNN 8 filters"])
fig, axes = plt.subplots(1, len(filters), figsize=(len(filters) * 1.2, 1.6))
for ax, image in zip(axes, filters):
    ax.imshow(image, cmap="gray")
    ax.axis("off")
fig.suptitle(f"{title}: the first layer's 3x3 filters")
plt.show()

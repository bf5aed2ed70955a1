"""
Your own layer
==============

A layer is a frozen attrs class with two pure methods: ``forward(x, mode) -> (y, cache)`` and
``backward(cache, dy, mode) -> (dx, grads)``, where ``grads`` is a record of the same class holding the
gradients. Written that way, it works in every combinator, with every optimizer, in ``fit`` and with the
gradient checks, without any change to lamina. This tutorial writes one, checks its gradients against
finite differences, sees a wrong gradient caught, and trains and saves a model that uses it.
"""

# %%
# A layer with a parameter
# ------------------------
# ``Scale`` multiplies each feature by a learned gain: ``y = x * gain``. Its gradients are
# ``dx = dy * gain`` and ``dgain = sum over the batch of dy * x``. Parameter fields are declared with
# :func:`lamina.layers.param`; ``@layers.register`` is only needed to save the layer in a model file.
import tempfile
from pathlib import Path

import attrs
import matplotlib.pyplot as plt
import numpy as np

from lamina import data, layers, losses, optim


@layers.register
@attrs.frozen
class Scale(layers.Layer):
    """y = x * gain, one gain per feature: (n, f) -> (n, f)."""

    gain: np.ndarray = layers.param()

    @classmethod
    def init(cls, n_features, dtype=np.float32):
        """Gains of one: the identity to start with."""
        return cls(gain=np.ones(n_features, dtype=dtype))

    def forward(self, x, mode):
        return x * self.gain, x

    def backward(self, x, dy, mode):
        return dy * self.gain, Scale(gain=(dy * x).sum(axis=0))

    def output_shape(self, input_shape):
        return input_shape


rng = np.random.default_rng(0)
layer = Scale(gain=np.array([1.0, -2.0, 0.5]))
print(layer)
print(layer(np.ones((2, 3))))

# %%
# Checking the gradients
# ----------------------
# :func:`lamina.layers.check_gradients` compares ``backward`` with central differences of ``forward`` in
# float64, for the input and every parameter, and returns the relative errors.
errors = layers.check_gradients(layer, rng.normal(size=(4, 3)))
print({name: f"{error:.1e}" for name, error in errors.items()})

# %%
# A wrong gradient does not get through: here ``backward`` forgets the gain in ``dx``. The check raises
# :class:`lamina.layers.GradientCheckError` naming what is wrong.


@attrs.frozen
class BrokenScale(layers.Layer):
    """y = x * gain, with a wrong input gradient."""

    gain: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x * self.gain, x

    def backward(self, x, dy, mode):
        return dy, BrokenScale(gain=(dy * x).sum(axis=0))  # should be dy * self.gain


try:
    layers.check_gradients(BrokenScale(gain=np.array([1.0, -2.0, 0.5])), rng.normal(size=(4, 3)))
except layers.GradientCheckError as error:
    print(f"{type(error).__name__}: {error}")

# %%
# Inside a combinator the check goes through the whole model: every parameter of every layer.
small = layers.Sequence([Scale.init(5, np.float64), layers.Dense.init(rng, 5, 2, dtype=np.float64)])
print(
    {name: f"{error:.1e}" for name, error in layers.check_gradients(small, rng.normal(size=(4, 5))).items()}
)

# %%
# In a model, trained and saved
# -----------------------------
# ``Scale`` goes into a :class:`lamina.layers.Sequence` like any built-in layer, shows up in ``summary()``,
# trains with ``fit`` and is saved and loaded (safely: loading builds it through its registered class).
(x_train, y_train), (x_test, y_test) = data.mnist()
x_train, y_train, x_test, y_test = x_train[:6_000], y_train[:6_000], x_test[:1_000], y_test[:1_000]
model = layers.Sequence(
    [Scale.init(784), layers.Dense.init(rng, 784, 64), layers.ReLU(), layers.Dense.init(rng, 64, 10)]
)
print(model.summary(input_shape=(784,)))
loss = losses.SoftmaxCrossEntropy()
model, history = optim.fit(
    model, loss, optim.Adam(1e-3), x_train, y_train, epochs=3, batch_size=64, rng=rng, progress=False
)
print("test:", optim.evaluate(model, loss, x_test, y_test))

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "scaled.npz"
    layers.save(path, model, history=history)
    loaded = layers.load(path)
    print(type(loaded.layers[0]).__name__, "loaded; same predictions:",
          np.array_equal(loaded(x_test[:100]), model(x_test[:100])))

# %%
# What the gains learned: pixels at the border never vary in MNIST, so their gains get no gradient from
# the data and stay at one; Adam moves the others.
plt.imshow(model.layers[0].gain.reshape(28, 28), cmap="RdBu_r")
plt.colorbar(label="gain")
plt.title("Scale's learned gain per pixel")
plt.show()

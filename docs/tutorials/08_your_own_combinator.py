"""
Your own combinator
===================

A combinator is a layer that holds layers. The code every built-in combinator (``Sequence``,
``Residual``, ``Concat``, ``Fork``, ``Parallel``) is written on is public: subclass
:class:`lamina.layers.Combinator`, say what the children are and how they are wired, and the base class
gives the children's paths in errors, the mode handed on, ``Mode.observe``, shape checks when built,
sharing, the entry checks of the outermost call and the summary's rows. This tutorial writes a gated sum
``y = a(x) * sigmoid(b(x))``, checks its gradients, sees it refuse a wrong wiring, trains it and saves it.
"""

# %%
# The gated sum
# -------------
# Four methods: ``children`` names the children in forward order; ``output_from`` gives the output shape
# from the children's (``None`` where unknown); ``forward_unchecked`` is the forward pass after the entry
# checks; ``backward`` returns the input gradient and a gradient record (``describe`` names the
# combinator in the summary and in messages). The helpers
# ``forward_child(i, x, mode)`` and ``backward_child(i, cache, dy, mode)`` run child ``i`` with its path
# on errors and tell ``mode.observe`` of its output; ``gradient_record(**fields)`` makes the record of
# the children's gradients; :func:`lamina.layers.add_input_grads` adds input gradients, skipping None.
import tempfile
from pathlib import Path

import attrs
import matplotlib.pyplot as plt
import numpy as np

from lamina import data, layers, losses, optim


@layers.register  # only needed to save it in a model file
@attrs.frozen(repr=False)
class GatedSum(layers.Combinator):
    """y = a(x) * sigmoid(b(x)): (n, ...) -> a's output shape."""

    a: object
    b: object

    def children(self):
        return (("a", self.a), ("b", self.b))

    def describe(self):
        return "GatedSum"

    def output_from(self, input_shape, outputs):
        if None not in outputs and tuple(outputs[0]) != tuple(outputs[1]):
            raise layers.ShapeError("GatedSum", f"b's output shaped like a's {outputs[0]}", outputs[1],
                                    source="b")
        return outputs[0]

    def forward_unchecked(self, x, mode):
        ya, cache_a = self.forward_child(0, x, mode)
        yb, cache_b = self.forward_child(1, x, mode)
        gate = 1 / (1 + np.exp(-yb))
        return ya * gate, (cache_a, cache_b, ya, gate)

    def backward(self, cache, dy, mode):
        cache_a, cache_b, ya, gate = cache
        dxa, a = self.backward_child(0, cache_a, dy * gate, mode)
        dxb, b = self.backward_child(1, cache_b, dy * ya * gate * (1 - gate), mode)
        return layers.add_input_grads(dxa, dxb), self.gradient_record(a=a, b=b)


rng = np.random.default_rng(0)
gated = layers.Sequence([
    layers.Dense.init(rng, 4, 8, dtype=np.float64),
    GatedSum(layers.Dense.init(rng, 8, 3, dtype=np.float64), layers.Dense.init(rng, 8, 3, dtype=np.float64)),
])
print(gated.summary((4,)))

# %%
# Gradients checked
# -----------------
# :func:`lamina.layers.check_gradients` compares ``backward`` with central differences through the whole
# model: the input and every parameter of both children.
errors = layers.check_gradients(gated, rng.normal(size=(5, 4)))
print("largest relative error:", f"{max(errors.values()):.1e}")

# %%
# A wrong wiring is refused when built
# ------------------------------------
# ``b`` must give ``a``'s shape. The error names the combinator's child by its path.
try:
    layers.Sequence([layers.Dense.init(rng, 4, 8),
                     GatedSum(layers.Dense.init(rng, 8, 3), layers.Dense.init(rng, 8, 5))])
except layers.ShapeError as error:
    print(f"{type(error).__name__}: {error}")

# %%
# Trained on MNIST, saved and loaded
# ----------------------------------
# A gated hidden layer: 64 units, each let through by its own learned gate.
(x_train, y_train), (x_test, y_test) = data.mnist()
x_train, y_train, x_test, y_test = x_train[:5_000], y_train[:5_000], x_test[:1_000], y_test[:1_000]
model = layers.Sequence([
    GatedSum(layers.Dense.init(rng, 784, 64), layers.Dense.init(rng, 784, 64)),
    layers.Dense.init(rng, 64, 10),
])
loss = losses.SoftmaxCrossEntropy()
model, history = optim.fit(model, loss, optim.Adam(1e-3), x_train, y_train, epochs=4, batch_size=64,
                           rng=rng, validation=(x_test, y_test), progress=False)
print("test:", optim.evaluate(model, loss, x_test, y_test))

path = Path(tempfile.mkdtemp()) / "gated.npz"
layers.save(path, model)
same = np.array_equal(layers.load(path)(x_test), model(x_test))
print(f"GatedSum loaded from {path.name}; same predictions: {same}")

# %%
# How open the gates are: the mean of ``sigmoid(b(x))`` per hidden unit over the test images.
gates = 1 / (1 + np.exp(-model.layers[0].b(x_test)))
plt.bar(np.arange(64), np.sort(gates.mean(axis=0)))
plt.xlabel("hidden unit (sorted)")
plt.ylabel("mean gate on the test images")
plt.title("GatedSum: how open each unit's gate is")
plt.show()

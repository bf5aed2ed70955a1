"""
Architectures
=============

Combinators are layers that hold layers, so an architecture is a nesting of records:
:class:`lamina.layers.Residual` for skip connections, :class:`lamina.layers.Fork`,
:class:`lamina.layers.Parallel`, :class:`lamina.layers.Join` and :class:`lamina.layers.Concat` for
branches, the same record placed twice for shared weights, tuples for several inputs and outputs. Each
model below is built, shown with ``summary()`` and trained for a few epochs on a slice of MNIST.
"""

# %%
# A residual network
# ------------------
# ``Residual(inner)`` computes ``inner(x) + x``; the summary shows the nesting with every layer's path.
import matplotlib.pyplot as plt
import numpy as np

from lamina import data, layers, losses, optim

rng = np.random.default_rng(0)
(x_train, y_train), (x_test, y_test) = data.mnist()
x_train, y_train, x_test, y_test = x_train[:5_000], y_train[:5_000], x_test[:1_000], y_test[:1_000]
loss = losses.SoftmaxCrossEntropy()


def block():
    """One residual block: (n, 128) -> (n, 128)."""
    return layers.Residual(layers.Sequence([layers.Dense.init(rng, 128, 128), layers.LayerNorm.init(128),
                                            layers.ReLU()]))


resnet = layers.Sequence([layers.Dense.init(rng, 784, 128), layers.ReLU(), block(), block(),
                          layers.Dense.init(rng, 128, 10)])
print(resnet.summary((784,)))
resnet, history = optim.fit(resnet, loss, optim.Adam(1e-3), x_train, y_train, epochs=3, batch_size=64,
                            rng=rng, progress=False)
print("residual network:", optim.evaluate(resnet, loss, x_test, y_test))

# %%
# Branches
# --------
# ``Fork(branches)`` hands the same input to every branch and outputs the tuple of their outputs;
# ``Join("concat")`` joins a tuple on the last axis (``Join("sum")`` adds it). ``Concat(branches)`` is
# the two in one. Here a wide and a narrow branch see the same image.
branches = layers.Sequence([
    layers.Fork([layers.Sequence([layers.Dense.init(rng, 784, 64), layers.ReLU()]),
                 layers.Sequence([layers.Dense.init(rng, 784, 16), layers.Tanh()])]),
    layers.Join("concat"),
    layers.Dense.init(rng, 80, 10),
])
print(branches.summary((784,)))
branches, _ = optim.fit(branches, loss, optim.Adam(1e-3), x_train, y_train, epochs=3, batch_size=64,
                        rng=rng, progress=False)
print("two branches:", optim.evaluate(branches, loss, x_test, y_test))

# %%
# A wiring that does not fit fails when it is built, naming the layer by its path:
try:
    layers.Sequence([layers.Concat([layers.Dense.init(rng, 784, 64), layers.Dense.init(rng, 784, 16)]),
                     layers.Dense.init(rng, 64, 10)])
except layers.ShapeError as error:
    print(f"{type(error).__name__}: {error}")

# %%
# Shared weights: a tied autoencoder
# -----------------------------------
# The same record placed at two paths is one set of parameters, its gradient the sum of its uses'.
# :class:`lamina.layers.Transposed` applies a layer's weight transposed with a bias of its own, so the
# decoder reuses the encoder: about half the parameters of an untied autoencoder (the ``Transposed`` row
# counts only its own bias).
encoder = layers.Dense.init(rng, 784, 32)
tied = layers.Sequence([encoder, layers.ReLU(), layers.Transposed.init(encoder, bias=True), layers.Sigmoid()])
print(tied.summary((784,)))
tied, history = optim.fit(tied, losses.MSE(), optim.Adam(3e-3), x_train, x_train, epochs=5, batch_size=64,
                          rng=rng, progress=False)
print("reconstruction loss by epoch:", [round(value, 4) for value in history["loss"]])
print("still one record after training:", tied.layers[0] is tied.layers[2].layer)

figure, axes = plt.subplots(2, 8, figsize=(8, 2.2))
for column, image in enumerate(x_test[:8]):
    axes[0, column].imshow(image.reshape(28, 28), cmap="gray")
    axes[1, column].imshow(tied(image[None]).reshape(28, 28), cmap="gray")
for axis in axes.flat:
    axis.axis("off")
figure.suptitle("test images (top) and the tied autoencoder's reconstructions (bottom)")
plt.show()

# %%
# Two inputs
# ----------
# A model's input may be a tuple of arrays with the same number of samples. ``Parallel(branches)`` runs
# branch ``i`` on input ``i``: here an image through a small CNN beside two table features (the mean
# brightness and the ink's height, measured from the image for the example), joined and classified.
images = x_train.reshape(-1, 28, 28, 1)
ink = x_train.reshape(-1, 28, 28).sum(axis=2)
height = (ink * np.arange(28)).sum(axis=1) / ink.sum(axis=1) / 28
table = np.stack([x_train.mean(axis=1) * 5, height], axis=1).astype(np.float32)
two_inputs = layers.Sequence([
    layers.Parallel([
        layers.Sequence([layers.Conv2D.init(rng, 1, 8, 3, padding=1), layers.ReLU(), layers.MaxPool2D(4),
                         layers.Flatten(), layers.Dense.init(rng, 7 * 7 * 8, 32)]),
        layers.Dense.init(rng, 2, 8),
    ]),
    layers.Join("concat"), layers.ReLU(), layers.Dense.init(rng, 40, 10),
])
print(two_inputs.summary([(28, 28, 1), (2,)]))
two_inputs, history = optim.fit(two_inputs, loss, optim.Adam(2e-3), (images, table), y_train, epochs=2,
                                batch_size=64, rng=rng, progress=False)
print("two inputs, training accuracy by epoch:", [round(value, 3) for value in history["accuracy"]])

# %%
# Handing a list where a tuple is expected is refused, with what to write instead:
try:
    two_inputs([images[:4], table[:4]])
except (TypeError, ValueError) as error:
    print(f"{type(error).__name__}: {error}")

# %%
# Two heads
# ---------
# One trunk, two outputs: the digit (a class) and the image's mean brightness (an amount).
# :class:`lamina.losses.Multi` sums one loss per output, weighted; the history keeps each part's loss
# as ``loss[0]``, ``loss[1]`` and the classifying part's ``accuracy[0]``.
brightness = x_train.mean(axis=1, keepdims=True) * 5
two_heads = layers.Sequence([layers.Dense.init(rng, 784, 64), layers.ReLU(),
                             layers.Fork([layers.Dense.init(rng, 64, 10), layers.Dense.init(rng, 64, 1)])])
print(two_heads.output_shape((784,)))
multi = losses.Multi([losses.SoftmaxCrossEntropy(), losses.MSE()], weights=[1.0, 0.5])
two_heads, history = optim.fit(two_heads, multi, optim.Adam(1e-3), x_train, (y_train, brightness),
                               epochs=3, batch_size=64, rng=rng, progress=False)
print(sorted(history))
test_brightness = x_test.mean(axis=1, keepdims=True) * 5
print("two heads:", optim.evaluate(two_heads, multi, x_test, (y_test, test_brightness)))

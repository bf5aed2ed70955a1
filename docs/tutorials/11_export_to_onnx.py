"""
Export to ONNX
==============

:func:`lamina.layers.export_onnx` writes a model's inference as an ONNX file, which onnxruntime (and its
web and mobile builds, OpenVINO, TensorRT, ...) runs without lamina. This tutorial trains a small CNN,
exports it, runs it with onnxruntime and compares the predictions; then a text model with a sequence
axis of any length, and a layer of one's own that says how it exports. ``onnx`` and ``onnxruntime``
are an extra: ``pip install -e '.[onnx]'``.
"""

# %%
# A CNN, trained and exported
# ---------------------------
# ``input_shape`` is the per-sample shape; the batch axis is dynamic. The weights are stored as
# initializers named by their paths.
import tempfile
from pathlib import Path

import attrs
import matplotlib.pyplot as plt
import numpy as np
import onnx
import onnxruntime

from lamina import data, layers, losses, optim

folder = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
(x_train, y_train), (x_test, y_test) = data.mnist()
x_train, y_train, x_test, y_test = x_train[:4_000], y_train[:4_000], x_test[:1_000], y_test[:1_000]
cnn = layers.Sequence([
    layers.Reshape((28, 28, 1)), layers.Conv2D.init(rng, 1, 8, 3, padding=1), layers.ReLU(),
    layers.MaxPool2D(2), layers.Flatten(), layers.Dense.init(rng, 14 * 14 * 8, 10),
])
cnn, _ = optim.fit(cnn, losses.SoftmaxCrossEntropy(), optim.Adam(1e-3), x_train, y_train, epochs=2,
                   batch_size=64, rng=rng, progress=False)
layers.export_onnx(cnn, folder / "cnn.onnx", input_shape=(784,))
graph = onnx.load(folder / "cnn.onnx").graph
print("operators:", [node.op_type for node in graph.node])
print("weights:", [initializer.name for initializer in graph.initializer])

# %%
# Run by onnxruntime
# ------------------
# The input is named ``input``, the output ``output``. The logits agree with lamina's to float32 rounding,
# and the predicted digits are the same.
session = onnxruntime.InferenceSession(str(folder / "cnn.onnx"))
logits = session.run(None, {"input": x_test})[0]
ours = cnn(x_test)
relative = np.abs(logits - ours).max() / np.abs(ours).max()
print(f"largest difference relative to the largest logit: {relative:.1e}")
print("equal predictions:", np.array_equal(logits.argmax(axis=1), ours.argmax(axis=1)))

plt.scatter(ours.ravel(), logits.ravel(), s=2)
plt.xlabel("lamina's logit")
plt.ylabel("onnxruntime's logit")
plt.title("the same CNN in lamina and in onnxruntime")
plt.show()

# %%
# Sequences of any length
# -----------------------
# A ``None`` in ``input_shape`` makes that axis dynamic too; token ids are ``int64`` inputs.
text_model = layers.Sequence([layers.Embedding.init(rng, 20, 16), layers.LSTM.init(rng, 16, 32),
                              layers.LastStep(), layers.Dense.init(rng, 32, 2)])
layers.export_onnx(text_model, folder / "lstm.onnx", input_shape=(None,))
session = onnxruntime.InferenceSession(str(folder / "lstm.onnx"))
for steps in (5, 40):
    ids = rng.integers(0, 20, size=(3, steps))
    difference = np.abs(session.run(None, {"input": ids})[0] - text_model(ids)).max()
    print(f"{steps} steps: largest difference {difference:.1e}")

# %%
# A layer of one's own
# --------------------
# A user layer without an ONNX form is refused before anything is written, naming the layer and what
# to add:


@attrs.frozen
class Square(layers.Layer):
    """y = x ** 2, element-wise."""

    def forward(self, x, mode):
        return x**2, x

    def backward(self, x, dy, mode):
        return 2 * x * dy, self


try:
    layers.export_onnx(layers.Sequence([Square(), cnn]), folder / "squared.onnx", input_shape=(784,))
except (TypeError, ValueError) as error:
    print(f"{type(error).__name__}: {error}")

# %%
# A method ``to_onnx(self, graph, x) -> y`` adds the layer's nodes: ``x`` and ``y`` are names of values
# in the graph, and ``graph.add_initializer`` stores an array. Here a learned gain per pixel:


@attrs.frozen
class Gain(layers.Layer):
    """y = x * gain, one gain per feature, with its ONNX form: one Mul."""

    gain: np.ndarray = layers.param()

    def forward(self, x, mode):
        return x * self.gain, x

    def backward(self, x, dy, mode):
        return dy * self.gain, Gain(gain=(dy * x).sum(axis=0))

    def to_onnx(self, graph, x):
        return graph.add_node("Mul", [x, graph.add_initializer(self.gain, "gain")])


scaled = layers.Sequence([Gain(gain=rng.uniform(0.5, 1.5, 784).astype(np.float32)), cnn])
layers.export_onnx(scaled, folder / "scaled.onnx", input_shape=(784,))
session = onnxruntime.InferenceSession(str(folder / "scaled.onnx"))
print("equal predictions:",
      np.array_equal(session.run(None, {"input": x_test})[0].argmax(axis=1), scaled(x_test).argmax(axis=1)))

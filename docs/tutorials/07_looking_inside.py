"""
Looking inside
==============

:mod:`lamina.diagnostics` answers "what is my network doing?" for any model: a ``Monitor`` records
statistics while ``fit`` trains, a few functions look at the trained model, and
:func:`~lamina.diagnostics.report` puts everything into one self-contained HTML file that any browser
opens. This tutorial trains a small network with a monitor, writes the report, reads the findings it
states, and draws some of its pictures.
"""

# %%
# Train with a monitor
# --------------------
# ``Monitor(every=10)`` records every tenth batch. Observing never changes the run's numbers.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lamina import data, diagnostics, layers, losses, optim

(x_train, y_train), (x_test, y_test) = data.mnist()
x_train, y_train, x_test, y_test = x_train[:8_000], y_train[:8_000], x_test[:1_000], y_test[:1_000]
rng = np.random.default_rng(0)
model = layers.mlp(rng, [784, 128, 64, 10], activation=layers.ReLU)
loss = losses.SoftmaxCrossEntropy()
monitor = diagnostics.Monitor(every=10)
model, history = optim.fit(model, loss, optim.Adam(2e-3), x_train, y_train, epochs=3, batch_size=64,
                           rng=rng, validation=(x_test, y_test), progress=False, callbacks=[monitor])
print("test:", optim.evaluate(model, loss, x_test, y_test))
print("recorded:", len(monitor.records["step"]), "batches; layers:", list(monitor.records["layers"]))

# %%
# The report
# ----------
# One HTML file, pictures embedded, nothing fetched: training curves, dead and saturated units, each
# layer's activations, gradient norms and update-to-weight ratios, weight histograms, the first layer's
# filters, the confusion matrix, the surest mistakes and saliency maps. ``python -m lamina.diagnostics
# MODEL.npz --data mnist --out report.html`` makes one from a saved model.
folder = Path(tempfile.mkdtemp())
path = diagnostics.report(folder / "report.html", model, history=history, records=monitor.records,
                          data=(x_test, y_test), image_shape=(28, 28),
                          title="MNIST: what the network is doing")
print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, self-contained")

# %%
# The report opens with plain sentences about what the numbers show (a warning is marked):
for is_warning, sentence in diagnostics.findings(history, monitor.records):
    print("warning:" if is_warning else "-", sentence)

# %%
# Some of its pictures, drawn here
# --------------------------------
# The confusion matrix (rows: true digit, columns: predicted) and the mistakes the model was surest of.
matrix = diagnostics.confusion_matrix(model, x_test, y_test)
mistakes = diagnostics.confident_mistakes(model, x_test, y_test, k=6)
fig = plt.figure(figsize=(11, 3.6))
ax = fig.add_subplot(1, 3, 1)
ax.imshow(np.log1p(matrix), cmap="Blues")
ax.set(title="confusion matrix (log counts)", xlabel="predicted", ylabel="true", xticks=range(10),
       yticks=range(10))
for i, (index, true, said, confidence) in enumerate(
    zip(mistakes.index, mistakes.true, mistakes.predicted, mistakes.confidence)
):
    ax = fig.add_subplot(2, 6, 4 + i + (3 if i >= 3 else 0))
    ax.imshow(x_test[index].reshape(28, 28), cmap="gray_r")
    ax.set_title(f"{true} taken for {said}\n{confidence:.0%} sure", fontsize=8)
    ax.axis("off")
fig.tight_layout()
plt.show()
print("surest mistakes (index, true, predicted):",
      [(int(i), int(t), int(p)) for i, t, p in zip(mistakes.index, mistakes.true, mistakes.predicted)])

# %%
# Saliency: which pixels decide. ``saliency`` is the gradient of the predicted class's logit with respect
# to the input, computed by the model's own ``backward``.
maps = diagnostics.saliency(model, x_test[:4])
fig, axes = plt.subplots(2, 4, figsize=(8, 4))
for k in range(4):
    axes[0, k].imshow(x_test[k].reshape(28, 28), cmap="gray_r")
    axes[1, k].imshow(np.abs(maps[k]).reshape(28, 28), cmap="hot")
    axes[0, k].set_title(f"predicted {model(x_test[k : k + 1]).argmax()}")
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()
plt.show()

# %%
# Per parameter, the update-to-weight ratio by epoch, as the report tabulates it:
for name in monitor.records["parameters"]:
    ratios = diagnostics.by_epoch(monitor.records, "parameters", name, "update_ratio")
    print(f"{name:>16}:", "  ".join(f"epoch {epoch} {ratio:.1e}" for epoch, ratio in ratios))

path.unlink()
folder.rmdir()

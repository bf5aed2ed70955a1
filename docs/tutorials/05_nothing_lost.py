"""
Nothing lost
============

The notebook lamina grew out of lost hours of training to a model that was never saved. In lamina,
``fit`` writes checkpoints to a folder, Ctrl-C stops at the next batch boundary with the work kept, a
resumed run ends with exactly the model the uninterrupted run would have made, and model files are safe
to open whoever made them. This tutorial interrupts a run, resumes it, compares it with one that was never
interrupted, and shows what a damaged file gives.
"""

# %%
# A run, interrupted
# ------------------
# ``checkpoint=FOLDER`` writes a checkpoint after every epoch (and every ``checkpoint_every`` batches),
# keeping the last ``keep``. To stand for a person pressing Ctrl-C, a callback sends this process the
# signal Ctrl-C sends (SIGINT) in the middle of the second epoch. ``fit`` finishes the batch, writes a
# checkpoint and raises :class:`lamina.optim.TrainingInterrupted` (a ``KeyboardInterrupt``) that carries
# the model and history so far and the checkpoint's path.
import os
import shutil
import signal
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lamina import data, layers, losses, optim

(x_train, y_train), (x_test, y_test) = data.mnist()
x_train, y_train, x_test, y_test = x_train[:4_000], y_train[:4_000], x_test[:1_000], y_test[:1_000]
loss, opt = losses.SoftmaxCrossEntropy(), optim.SGD(0.05, momentum=0.9)
folder = Path(tempfile.mkdtemp()) / "run"


class BatchLosses:
    """Keeps every batch's loss (a callback: fit calls on_batch_end after each step)."""

    def __init__(self):
        self.losses = []

    def on_batch_end(self, run):
        self.losses.append(run.loss)


class CtrlC:
    """Presses Ctrl-C (sends SIGINT to this process) after batch 20 of epoch 2."""

    def on_batch_end(self, run):
        if (run.epoch, run.batch) == (2, 20):
            os.kill(os.getpid(), signal.SIGINT)


def start():
    """A fresh model and the Generator that drives the run: the same seed every time."""
    rng = np.random.default_rng(0)
    return layers.mlp(rng, [784, 64, 10], activation=layers.ReLU), rng


interrupted = BatchLosses()
model, rng = start()
try:
    optim.fit(model, loss, opt, x_train, y_train, epochs=3, batch_size=64, rng=rng, progress=False,
              threads=1, checkpoint=folder, callbacks=[interrupted, CtrlC()])
except optim.TrainingInterrupted as stopped:
    print(f"{type(stopped).__name__}: {stopped}")
    print("history so far:", [round(v, 4) for v in stopped.history["loss"]])
print("in the folder:", sorted(path.name for path in folder.iterdir()))

# %%
# Resumed
# -------
# ``resume=FOLDER`` picks the newest valid checkpoint: the model, the optimizer's state, the epoch and
# the position in it, the history, the Generator's state and the callbacks' states. ``epochs`` is the
# total. The model handed in only has to match the checkpoint's structure.
model, rng = start()
model, history = optim.fit(model, loss, opt, x_train, y_train, epochs=3, batch_size=64, rng=rng,
                           progress=False, threads=1, checkpoint=folder, resume=folder,
                           callbacks=[interrupted])
print("resumed:", optim.evaluate(model, loss, x_test, y_test))

# %%
# The same run, never interrupted, ends with the same model, bit for bit (at the same number of BLAS
# threads: ``threads=1`` pins it).
never = BatchLosses()
fresh, rng = start()
fresh, fresh_history = optim.fit(fresh, loss, opt, x_train, y_train, epochs=3, batch_size=64, rng=rng,
                                 progress=False, threads=1, callbacks=[never])
same = all(np.array_equal(a, b) for a, b in zip(layers.parameters(model), layers.parameters(fresh)))
print("same weights, bit for bit:", same)
print("same batch losses:", interrupted.losses == never.losses, f"({len(never.losses)} batches)")

plt.plot(never.losses, lw=3, alpha=0.4, label="never interrupted")
plt.plot(interrupted.losses, lw=1, color="k", label="interrupted, then resumed")
plt.axvline(len(x_train) // 64 + 1 + 20, color="tab:red", ls="--", label="Ctrl-C")
plt.yscale("log")
plt.xlabel("batch")
plt.ylabel("loss")
plt.legend()
plt.show()

# %%
# Stopping on purpose
# -------------------
# A callback ends training cleanly with ``run.stop = True`` (after the current batch): ``fit`` returns the
# model and history as usual.


class StopAtAccuracy:
    """Stops once an epoch's training accuracy passes the goal."""

    def __init__(self, goal):
        self.goal = goal

    def on_epoch_end(self, run):
        run.stop = run.history["accuracy"][-1] > self.goal


model, rng = start()
model, history = optim.fit(model, loss, opt, x_train, y_train, epochs=20, batch_size=64, rng=rng,
                           progress=False, callbacks=[StopAtAccuracy(0.95)])
print(f"stopped after {len(history['loss'])} of 20 epochs, accuracy {history['accuracy'][-1]:.3f}")

# %%
# Files that are safe to open
# ---------------------------
# :func:`lamina.layers.save` writes one ``.npz`` (arrays and a JSON manifest, never a pickle), atomically:
# a crash never leaves half a file where the old one was. ``extra`` keywords are JSON, the history fits
# as it is. A checkpoint holds more, and :func:`lamina.optim.load_checkpoint` returns all of it.
path = folder / "model.npz"
layers.save(path, model, history=history)
print(layers.load(path).summary())
extra = layers.load_extra(path)
print("extra:", list(extra), "| history loss:", np.round(extra["history"]["loss"], 3))
checkpoint = optim.load_checkpoint(optim.latest_checkpoint(folder))
print(
    f"checkpoint: epoch {checkpoint.epoch}, position {checkpoint.position}, "
    f"history of {len(checkpoint.history['loss'])} epochs"
)

# %%
# Loading never unpickles, imports or runs anything named in the file. A damaged file, or one that is not
# a model at all, raises :class:`lamina.layers.ModelFileError` naming the file and the fault.
truncated = folder / "truncated.npz"
truncated.write_bytes(path.read_bytes()[:2000])
pickled = folder / "pickled.npz"
pickled.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # the first bytes of a pickle, renamed .npz
for damaged in (truncated, pickled):
    try:
        layers.load(damaged)
    except layers.ModelFileError as error:
        print(f"{type(error).__name__}: {error}")

# %%
# The run's files lived in a temporary folder: removed now.
shutil.rmtree(folder.parent)

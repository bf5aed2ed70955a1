"""fit and evaluate: the epoch loop around the training step, and the pieces around the loop (optim/callbacks.py)."""

from __future__ import annotations

import functools
import math
import os
import re
import time
import warnings
from pathlib import Path

import attrs
import numpy as np

from lamina.layers.errors import ShapeError
from lamina.layers.layer import check_layer, chunks, forward_of, input_dtype, model_dtype, takes_ids
from lamina.layers.mode import EVAL, Mode
from lamina.layers.records.parameter import owning
from lamina.layers.records.tree import check_same_structure, named_buffers
from lamina.optim.callbacks import HOOKS, BestModel, DivergenceWatch, ProgressBar, Run, learning_rate_of
from lamina.optim.checkpoints import PATTERN as CHECKPOINTS
from lamina.optim.checkpoints import Checkpoint, load_checkpoint, remove_stale_temporaries, save_checkpoint
from lamina.optim.checks import check_inputs, check_targets
from lamina.optim.chain import Chain
from lamina.optim.errors import NonFiniteLossError, TrainingInterrupted, TrainingWarning
from lamina.optim.in_place import owned, update_in_place
from lamina.optim.optimizer import Optimizer
from lamina.optim.metrics import accuracy_rule
from lamina.optim.signals import StopRequests
from lamina.optim.step import diverged, first_nonfinite, gradients
from lamina.optim.threads import AUTO, BlasThreads

DEFAULT_THREADS = AUTO
"""BLAS threads for fit and evaluate: "auto" chooses by timing the batches and keeps choosing as the machine's
load changes (optim/threads.py); $LAMINA_THREADS replaces it."""


@attrs.define
class Running:
    """Running sums of the current epoch (kept in checkpoints so a resumed epoch ends with the same mean)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    batches: int = 0

    def postfix(self) -> dict:
        shown = {"loss": f"{self.loss_sum / max(self.batches, 1):.4f}"}
        if self.seen:
            shown["accuracy"] = f"{self.correct / self.seen:.4f}"
        return shown


def _n_outputs(model, x: np.ndarray, transform) -> int:
    """The model's number of outputs for samples like x's: from ``output_shape``, else from one sample."""
    first = x[:1] if transform is None else transform(x[:1])
    shape = model.output_shape(first.shape[1:]) if hasattr(model, "output_shape") else None
    if shape and shape[-1] is not None:
        return shape[-1]
    return forward_of(model)(first.astype(input_dtype(model, first) or first.dtype, copy=False), EVAL)[0].shape[-1]


def _settings(model, loss, optimizer, x, batch_size, transform) -> dict:
    """What a resumed run must share with the run that wrote the checkpoint."""
    return {"model": _stable_repr(model), "loss": _stable_repr(loss), "optimizer": _stable_repr(optimizer),
            "batch_size": batch_size, "data": [int(d) for d in x.shape],
            "transform": _stable_repr(transform)}


def _stable_repr(value) -> str:
    """repr without memory addresses (``<function f at 0x7f...>`` -> ``<function f>``), the same in every process."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _check_positive_int(name, value, allow_none=False, who="fit"):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")


LARGE_INPUT = 64.0
"""Inputs beyond this (in absolute value) are far outside what an initialisation for inputs of size ~1 expects."""


def _warn_if_unscaled(x: np.ndarray, name: str = "x") -> None:
    """A TrainingWarning when a sample of the rows of ``x`` holds values far beyond size ~1 (with a transform, the
    batches are the transform's business: not checked)."""
    sample = x[::max(1, len(x) // 2048)]
    peak = float(np.abs(np.asarray(sample, dtype=np.float64)).max())
    if peak > LARGE_INPUT:
        warnings.warn(f"fit: {name} holds values up to {peak:g}, far outside the range the model's initialisation "
                      f"expects (about -1 to 1): scale the inputs first, e.g. x / 255 for 0-255 pixels, or "
                      f"fit(..., transform=data.Rescale(np.float32, 1/255)) for uint8 images", TrainingWarning,
                      stacklevel=3)


def _check_folder(folder: Path) -> None:
    """The checkpoint folder exists (made now) and can be written, before the first batch."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"fit: cannot make the checkpoint folder {folder}: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"fit: the checkpoint folder {folder} cannot be written")


def evaluate(model, loss, x, y, batch_size: int = 1000, *, transform=None, threads=DEFAULT_THREADS) -> dict:
    """{"loss": mean loss over the samples, "accuracy": where the targets decide one} of ``model`` on (x, y), in batches."""
    _check_positive_int("batch_size", batch_size, who="evaluate")
    check_layer(model, "evaluate: the model")
    x = check_inputs(x)
    y = check_targets(y, len(x), _n_outputs(model, x, transform), loss, who="evaluate")
    return _evaluate(model, loss, x, y, batch_size, transform, BlasThreads(threads, who="evaluate"))


def _evaluate(model, loss, x, y, batch_size, transform, threads) -> dict:
    total, correct, seen = 0.0, 0, 0
    forward, dtype, accuracy = forward_of(model), input_dtype(model, x), accuracy_rule(loss, y)
    with threads as blas:
        for part in chunks(len(x), batch_size):
            xb, yb = x[part], y[part]
            xb = xb if transform is None else transform(xb)
            with blas.batch(len(xb)):
                pred = forward(xb.astype(dtype, copy=False) if dtype is not None else xb, EVAL)[0]
            try:
                value, _ = loss.forward(pred, yb)  # a NaN loss is a result here
            except ValueError:
                if np.isfinite(pred).all():
                    raise
                value = math.nan
            total += value * len(yb)
            if accuracy is not None:
                right, count = accuracy(pred, yb)
                correct, seen = correct + right, seen + count
    result = {"loss": total / len(x)}
    if accuracy is not None:
        result["accuracy"] = correct / seen
    return result


def _new_history(classify: bool, validation: bool) -> dict:
    keys = ["loss", *(["accuracy"] if classify else []), *(["val_loss"] if validation else []),
            *(["val_accuracy"] if validation and classify else []), "seconds", "learning_rate", "threads"]
    return {key: [] for key in keys}


def _epoch_order(run: Run, rng, n: int) -> np.ndarray:
    """This epoch's permutation: drawn from ``rng``, or replayed from the epoch's start when resumed mid-epoch."""
    if run._position == 0:
        run._epoch_rng_state = rng.bit_generator.state
        return rng.permutation(n)
    replay = np.random.Generator(type(rng.bit_generator)())
    replay.bit_generator.state = run._epoch_rng_state
    return replay.permutation(n)


def _update_in_place(optimizer, reuse_gradients: bool):
    """The optimizer's update for records the loop owns (bit for bit its pure update); a user's own optimizer: its update.

    ``reuse_gradients``: no callback can ask for the gradients after the update, so the update may
    work in their buffers.
    """
    chain = optimizer if isinstance(optimizer, Chain) else getattr(optimizer, "chain", None)
    if not isinstance(optimizer, (Chain, Optimizer)) or not isinstance(chain, Chain):
        return optimizer.update
    return functools.partial(update_in_place, chain, reuse_gradients=reuse_gradients)


def fit(model, loss, optimizer, x, y, *, epochs: int, batch_size: int, rng: np.random.Generator,
        validation=None, progress: bool = True, checkpoint=None, resume=None, callbacks=(),
        checkpoint_every: int | None = None, keep: int = 3, keep_best: bool = False,
        patience: int | None = None, threads=DEFAULT_THREADS, transform=None):
    """Train ``model`` on (x, y) for ``epochs`` epochs (the total, also on resume) -> (model, history).

    One shuffle per epoch from ``rng``, one training step per batch of ``batch_size``.
    ``validation=(x_val, y_val)`` adds val_loss/val_accuracy; ``keep_best`` returns the model
    of the best val_loss and ``patience`` stops after that many epochs without improvement.
    ``checkpoint`` is a folder written after every epoch and every ``checkpoint_every``
    batches (the last ``keep`` kept); ``resume`` is such a folder or one checkpoint file.
    ``callbacks``: objects with any of on_train_begin/on_batch_end/on_epoch_end/on_train_end(run)
    (``optim.Run``). ``threads``: BLAS threads, "auto" (timed on the batches, re-chosen as the load
    changes; $LAMINA_THREADS replaces it), an int (pinned: the same seed gives the same bits) or
    None (left as it is); history["threads"] gets the count that ran most of each epoch's batches.
    ``transform`` converts each batch (e.g. ``data.Rescale()`` for uint8 images).
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("keep", keep)):
        _check_positive_int(name, value)
    _check_positive_int("checkpoint_every", checkpoint_every, allow_none=True)
    _check_positive_int("patience", patience, allow_none=True)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"fit: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    if (keep_best or patience) and validation is None:
        raise ValueError("fit: keep_best and patience need validation=(x_val, y_val)")
    check_layer(model, "fit: the model")
    callbacks = list(callbacks)
    for i, callback in enumerate(callbacks):
        if not any(callable(getattr(callback, hook, None)) for hook in HOOKS):
            raise TypeError(f"fit: callbacks[{i}] ({type(callback).__name__}) has none of {', '.join(HOOKS)}")
    x = check_inputs(x)
    n_outputs = _n_outputs(model, x, transform)
    y = check_targets(y, len(x), n_outputs, loss)
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise TypeError(f"fit: validation must be a pair (x_val, y_val), got {type(validation).__name__}"
                            f"{f' of length {len(validation)}' if isinstance(validation, (tuple, list)) else ''}")
        x_val = check_inputs(validation[0], "validation x")
        if x_val.shape[1:] != x.shape[1:]:
            raise ShapeError("fit", f"validation samples shaped like x's {x.shape[1:]}", str(x_val.shape),
                             source="validation x")
        y_val = check_targets(validation[1], len(x_val), n_outputs, loss, "validation y")
    dtype, x_dtype = model_dtype(model), input_dtype(model, x)
    if y.dtype.kind == "f" and dtype is not None:  # targets in the model's dtype, cast once
        y = y.astype(dtype, copy=False)
        if validation is not None:
            y_val = y_val.astype(dtype, copy=False)
    accuracy = accuracy_rule(loss, y)
    if transform is None and not takes_ids(model):  # ids are indices, of any size
        _warn_if_unscaled(x)
    settings = _settings(model, loss, optimizer, x, batch_size, transform)
    folder = Path(checkpoint) if checkpoint is not None else None
    if folder is not None:
        _check_folder(folder)
        remove_stale_temporaries(folder)
        if resume is None and any(folder.glob(CHECKPOINTS)):
            raise FileExistsError(f"fit: {folder} holds checkpoints of another run; resume from it "
                                  f"(resume={str(folder)!r}) or give an empty folder")

    n = len(x)
    n_batches = -(-n // batch_size)
    best = BestModel(keep_best, patience) if validation is not None and (keep_best or patience) else None
    pieces = [piece for piece in (ProgressBar() if progress else None, DivergenceWatch(optimizer), best)
              if piece is not None]
    if resume is not None:
        ckpt = load_checkpoint(resume)
        ckpt.check_matches(settings, rng)
        check_same_structure(model, ckpt.model, names=("model given to fit", "checkpoint's model"))
        if ckpt.epoch > epochs:
            raise ValueError(f"fit: the checkpoint is at epoch {ckpt.epoch}, past epochs={epochs} "
                             f"(epochs is the total, counting the epochs before the checkpoint)")
        rng.bit_generator.state = ckpt.rng_state
        run = Run(owned(ckpt.model), owned(ckpt.state), ckpt.history, epochs=epochs, batches=n_batches)
        run._epoch0, run._position, run._running = ckpt.epoch, ckpt.position, Running(**ckpt.running)
        run._epoch_rng_state, run._resumed_from = ckpt.epoch_rng_state, ckpt.path
        if best is not None:
            best.best = ckpt.best
        for callback, saved in zip(callbacks, ckpt.callbacks or ()):
            if saved is not None and callable(getattr(callback, "load_state", None)):
                callback.load_state(saved)
    else:
        net = owned(model)
        run = Run(net, owned(optimizer.init(net)), _new_history(accuracy is not None, validation is not None),
                  epochs=epochs, batches=n_batches)
        run._epoch0, run._position, run._running = 0, 0, Running()
        run._epoch_rng_state, run._resumed_from = None, None
    run._checkpoint = None
    history = run.history
    hooks = {hook: [getattr(c, hook) for c in pieces + callbacks if callable(getattr(c, hook, None))]
             for hook in HOOKS}

    def write_checkpoint():
        """Save the run as it is now (never a model that went NaN or inf: the last good checkpoint stays)."""
        bad = first_nonfinite(run._model)
        if bad is not None:
            raise NonFiniteLossError(run.epoch, run.batch, run.loss, bad, parameter=True,
                                     buffer=bad in dict(named_buffers(run._model)),
                                     checkpoint=run._checkpoint and str(run._checkpoint))
        states = [callback.state() if callable(getattr(callback, "state", None)) else None for callback in callbacks]
        ckpt = Checkpoint(model=run._model, state=run._state, epoch=run._epoch0, position=run._position,
                          history=history, rng_state=rng.bit_generator.state,
                          epoch_rng_state=run._epoch_rng_state, running=attrs.asdict(run._running),
                          settings=settings, best=best.best if best is not None else None,
                          callbacks=states if any(s is not None for s in states) else None)
        run._checkpoint = save_checkpoint(folder, ckpt, keep=keep, protect=run._resumed_from)

    def finish():
        for hook in hooks["on_train_end"]:
            hook(run)
        result = best.best if best is not None and best.best is not None and keep_best else run._model
        return result, history

    update = _update_in_place(optimizer, reuse_gradients=not callbacks)
    base_mode = Mode(train=True, rng=rng, input_grad=False)
    observing = None  # (observer, mode) made once per observer
    with BlasThreads(threads) as blas, StopRequests() as stop:
        for hook in hooks["on_train_begin"]:
            hook(run)
        while run._epoch0 < epochs and not run.stop and not history.get("stopped_early"):
            run.epoch = run._epoch0 + 1
            started = time.perf_counter()
            order = _epoch_order(run, rng, n)
            net, state, running = run._model, run._state, run._running
            for b in range(run._position, n_batches):
                grads = run._grads = None  # the last step's gradients are dead: their memory serves this step's
                idx = order[b * batch_size:(b + 1) * batch_size]
                xb, yb = x[idx], y[idx]
                if transform is not None:
                    xb = transform(xb)
                if x_dtype is not None and xb.dtype != x_dtype:
                    xb = xb.astype(x_dtype)
                mode = base_mode
                if run.observe is not None:
                    if observing is None or observing[0] is not run.observe:
                        observing = (run.observe, attrs.evolve(base_mode, observe=run.observe))
                    mode = observing[1]
                with owning(), blas.batch(len(idx)):
                    pred, value, grads = gradients(forward_of(net), net, loss, xb, yb, mode)
                    if not math.isfinite(value):
                        raise diverged(run.epoch, b + 1, value, net, pred, grads, xb, mode,
                                       run._checkpoint and str(run._checkpoint))
                    net, state = update(net, grads, state)
                running.loss_sum += value
                running.batches += 1
                if accuracy is not None:
                    right, count = accuracy(pred, yb)
                    running.correct += right
                    running.seen += count
                run._model, run._state, run._position = net, state, b + 1
                run._grads = grads if callbacks else None  # (without callbacks the update worked in them)
                run.batch, run.loss, run.prediction = b + 1, value, pred
                for hook in hooks["on_batch_end"]:
                    hook(run)
                if b + 1 < n_batches and (run.stop or stop.requested or
                                          (checkpoint_every and (b + 1) % checkpoint_every == 0)):
                    if folder is not None:
                        write_checkpoint()
                    if stop.requested:
                        for piece in pieces:
                            getattr(piece, "close", lambda: None)()
                        stop.act(TrainingInterrupted(run._model, history, run._checkpoint))
                    if run.stop:
                        history["stopped_early"] = True
                        return finish()
            bad = first_nonfinite(net)  # once an epoch: never validate, checkpoint or return a broken model
            if bad is not None:
                raise NonFiniteLossError(run.epoch, n_batches, run.loss, bad, parameter=True,
                                         buffer=bad in dict(named_buffers(net)),
                                         checkpoint=run._checkpoint and str(run._checkpoint))
            history["loss"].append(running.loss_sum / running.batches)
            if accuracy is not None:
                history["accuracy"].append(running.correct / running.seen)
            if validation is not None:
                val = _evaluate(net, loss, x_val, y_val, 1000, transform, BlasThreads(None))
                if not math.isfinite(val["loss"]):
                    raise NonFiniteLossError(run.epoch, n_batches, val["loss"], None, validation=True)
                history["val_loss"].append(val["loss"])
                if accuracy is not None:
                    history["val_accuracy"].append(val["accuracy"])
            history["seconds"].append(time.perf_counter() - started)
            history["learning_rate"].append(learning_rate_of(optimizer, state))
            history["threads"].append(blas.epoch())
            for hook in hooks["on_epoch_end"]:
                hook(run)
            run._epoch0, run._position, run._running = run._epoch0 + 1, 0, Running()
            if folder is not None:
                write_checkpoint()
            if stop.requested:
                stop.act(TrainingInterrupted(run._model, history, run._checkpoint))
        if run.stop and run._epoch0 < epochs:
            history["stopped_early"] = True
        return finish()

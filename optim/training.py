"""fit: argument checks and wiring around the epoch loop (optim/loop.py) and its pieces (optim/pieces.py)."""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path

import numpy as np
from lamina.layers.layer import check_layer, input_dtype, model_dtype, takes_ids
from lamina.layers.records.tree import check_same_sharing, check_same_structure
from lamina.layers.settings import positive_int
from lamina.optim.callbacks import HOOKS, BestModel, DivergenceWatch, ProgressBar
from lamina.optim.checkpoints import PATTERN as CHECKPOINTS
from lamina.optim.checkpoints import FolderLock, load_checkpoint, remove_stale_temporaries
from lamina.optim.checks import check_targets
from lamina.optim.errors import TrainingWarning
from lamina.optim.evaluation import DEFAULT_THREADS, evaluate, n_outputs  # noqa: F401 (evaluate: as before)
from lamina.optim.loop import Loop, hooks_of
from lamina.optim.metrics import accuracy_rule, part_rules
from lamina.optim.mistakes import check_arguments, check_prediction, warn_undeclared_arrays
from lamina.optim.pieces import Checkpoints, History, Interrupts, Validation
from lamina.optim.run import Run
from lamina.optim.signals import StopRequests
from lamina.optim.step import OwnedStep, in_place, owned_copy
from lamina.optim.threads import BlasThreads
from lamina.optim.tuples import check_like, check_x, check_y, n_samples, part_keys


def _settings(model, loss, optimizer, x, batch_size, transform, steps_per_epoch) -> dict:
    """What a resumed run must share with the run that wrote the checkpoint."""
    return {"model": _stable_repr(model), "loss": _stable_repr(loss), "optimizer": _stable_repr(optimizer),
            "batch_size": batch_size, "data": _data_shape(x),
            "transform": _stable_repr(transform), "steps_per_epoch": steps_per_epoch}


def _data_shape(x) -> list:
    """x's shape as a list (a list of them for a tuple input)."""
    return [_data_shape(part) for part in x] if type(x) is tuple else [int(d) for d in x.shape]


def _stable_repr(value) -> str:
    """repr without memory addresses (``<function f at 0x7f...>`` -> ``<function f>``), the same in every
    process."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


LARGE_INPUT = 64.0
"""Inputs beyond this (in absolute value) are far outside what an initialisation for inputs of size ~1
expects."""


def _warn_if_unscaled(x: np.ndarray, name: str = "x") -> None:
    """A TrainingWarning when a sample of the rows of ``x`` holds values far beyond size ~1 (with a transform,
    the batches are the transform's business: not checked)."""
    sample = x[::max(1, len(x) // 2048)]   # (a view: its extremes read in place, no copy)
    peak = max(abs(float(np.max(sample))), abs(float(np.min(sample))))
    if peak > LARGE_INPUT:
        warnings.warn(f"fit: {name} holds values up to {peak:g}, far outside the range the model's "
                      f"initialisation expects (about -1 to 1): scale the inputs first, e.g. x / 255 for "
                      f"0-255 pixels, or "
                      f"fit(..., transform=data.Rescale(np.float32, 1/255)) for uint8 images",
                      TrainingWarning,
                      stacklevel=4)


def _check_folder(folder: Path) -> None:
    """The checkpoint folder exists (made now) and can be written, before the first batch."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"fit: cannot make the checkpoint folder {folder}: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"fit: the checkpoint folder {folder} cannot be written")


def _new_history(classify: bool, validation: bool, parts: list) -> dict:
    """The history's keys; ``parts``: losses.Multi's part keys (loss[i], accuracy[i]), [] without it."""
    keys = ["loss", *(["accuracy"] if classify else []), *parts, *(["val_loss"] if validation else []),
            *(["val_accuracy"] if validation and classify else []),
            *([f"val_{key}" for key in parts] if validation else []), "seconds", "learning_rate", "threads"]
    return {key: [] for key in keys}


def _check_settings(rng, validation, *, keep_best, patience, **counts) -> None:
    """fit's counts are positive ints (``None`` allowed for checkpoint_every, patience, steps_per_epoch)."""
    for name, value in counts.items():
        positive_int("fit", name, value, allow_none=name in ("checkpoint_every", "steps_per_epoch"))
    positive_int("fit", "patience", patience, allow_none=True)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"fit: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    if (keep_best or patience) and validation is None:
        raise ValueError("fit: keep_best and patience need validation=(x_val, y_val)")


def _checked_callbacks(callbacks) -> list:
    callbacks = list(callbacks)
    for i, callback in enumerate(callbacks):
        if not any(callable(getattr(callback, hook, None)) for hook in HOOKS):
            raise TypeError(f"fit: callbacks[{i}] ({type(callback).__name__}) has none of {', '.join(HOOKS)}")
    return callbacks


def _checked_data(model, loss, x, y, validation, transform):
    """(x, y, validation or None), checked once and targets cast to the model's dtype."""
    x = check_x(x)
    outputs = n_outputs(model, x, transform)
    y = check_y(check_targets, y, n_samples(x), outputs, loss)
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            length = f" of length {len(validation)}" if isinstance(validation, (tuple, list)) else ""
            raise TypeError(f"fit: validation must be a pair (x_val, y_val), got {type(validation).__name__}"
                            f"{length}")
        x_val = check_x(validation[0], "validation x")
        check_like(x_val, x)
        validation = (x_val, check_y(check_targets, validation[1], n_samples(x_val), outputs, loss,
                                     "validation y"))
    y = _float_targets(y, model_dtype(model))   # targets in the model's dtype, cast once
    if validation is not None:
        validation = (validation[0], _float_targets(validation[1], model_dtype(model)))
    if transform is None and not takes_ids(model):  # ids are indices, of any size
        for i, part in enumerate(x if type(x) is tuple else (x,)):
            _warn_if_unscaled(part, f"x[{i}]" if type(x) is tuple else "x")
    return x, y, validation


def _float_targets(y, dtype):
    """Float targets (each part of a tuple) in the model's dtype; others as they are."""
    if type(y) is tuple:
        return tuple(_float_targets(part, dtype) for part in y)
    return y.astype(dtype, copy=False) if y.dtype.kind == "f" and dtype is not None else y


def _checkpoint_folder(checkpoint) -> Path | None:
    """The checkpoint folder, made and checked, or None."""
    if checkpoint is None:
        return None
    folder = Path(checkpoint)
    _check_folder(folder)
    return folder


def _claim(folder: Path | None, resume) -> None:
    """Once ``folder`` is locked: stale temporaries go, and a new run refuses another run's checkpoints."""
    if folder is None:
        return
    remove_stale_temporaries(folder)
    if resume is None and any(folder.glob(CHECKPOINTS)):
        raise FileExistsError(f"fit: {folder} holds checkpoints of another run; resume from it "
                              f"(resume={str(folder)!r}) or give an empty folder")


def _resumed(resume, model, rng, settings: dict, best, callbacks, *, epochs: int, batches: int,
             keys=()) -> Run:
    """The run where the checkpoint ``resume`` left it; the Generator, the best model and the callbacks'
    states too."""
    ckpt = load_checkpoint(resume)
    ckpt.check_matches(settings, rng, keys)
    check_same_structure(model, ckpt.model, names=("model given to fit", "checkpoint's model"))
    check_same_sharing(model, ckpt.model, names=("model given to fit", "checkpoint's model"))
    if ckpt.epoch > epochs:
        raise ValueError(f"fit: the checkpoint is at epoch {ckpt.epoch}, past epochs={epochs} "
                         f"(epochs is the total, counting the epochs before the checkpoint)")
    if ckpt.epoch == epochs and ckpt.position == 0:
        warnings.warn(f"fit: the run in {ckpt.path} is finished (epoch {epochs} of {epochs}): nothing is "
                      "left to train; pass a larger epochs= (the total) to train "
                      "on", TrainingWarning, stacklevel=3)
    rng.bit_generator.state = ckpt.rng_state
    if best is not None:
        best.best = ckpt.best
    for callback, saved in zip(callbacks, ckpt.callbacks or ()):
        if saved is not None and callable(getattr(callback, "load_state", None)):
            callback.load_state(saved)
    return Run.resumed(ckpt, owned_copy(ckpt.model, model), owned_copy(ckpt.state, model), epochs=epochs,
                       batches=batches)


def fit(model, loss, optimizer, x, y, *, epochs: int, batch_size: int, rng: np.random.Generator,
        validation=None, progress: bool = True, checkpoint=None, resume=None, callbacks=(),
        checkpoint_every: int | None = None, keep: int = 3, keep_best: bool = False,
        patience: int | None = None, threads=DEFAULT_THREADS, transform=None,
        steps_per_epoch: int | None = None):
    """Train ``model`` on (x, y) for ``epochs`` epochs (the total, also on resume) -> (model, history).

    One shuffle per epoch from ``rng``, one training step per batch of ``batch_size``;
    ``steps_per_epoch``: an epoch is that many full batches instead, the shuffled order carried on
    across epochs (a new permutation when one is used up, a batch at its end continuing into the next).
    ``validation=(x_val, y_val)`` adds val_loss/val_accuracy; ``keep_best`` returns the model
    of the best val_loss and ``patience`` stops after that many epochs without improvement.
    ``checkpoint`` is a folder written after every epoch and every ``checkpoint_every``
    batches (the last ``keep`` kept); ``resume`` is such a folder or one checkpoint file.
    ``callbacks``: objects with any of on_train_begin/on_batch_end/on_epoch_end/on_train_end(run)
    (``optim.Run``), run after the built-in pieces (optim/pieces.py). ``threads``: BLAS threads, "auto"
    (timed on the batches, re-chosen as the load changes; $LAMINA_THREADS replaces it), an int (pinned:
    the same seed gives the same bits) or None (left as it is); history["threads"] gets the count that
    ran most of each epoch's batches. ``transform`` converts each batch (e.g. ``data.Rescale()`` for uint8
    images).
    """
    _check_settings(rng, validation, keep_best=keep_best, patience=patience, epochs=epochs,
                    batch_size=batch_size, keep=keep, checkpoint_every=checkpoint_every,
                    steps_per_epoch=steps_per_epoch)
    check_layer(model, "fit: the model")
    check_arguments(loss, optimizer, x)
    callbacks = _checked_callbacks(callbacks)
    x, y, validation = _checked_data(model, loss, x, y, validation, transform)
    check_prediction(model, loss, x, y, transform), warn_undeclared_arrays(model)
    settings = _settings(model, loss, optimizer, x, batch_size, transform, steps_per_epoch)
    folder = _checkpoint_folder(checkpoint)
    batches, accuracy = steps_per_epoch or -(-n_samples(x) // batch_size), accuracy_rule(loss, y)
    parts = part_rules(loss, y)
    best = BestModel(keep_best, patience) if keep_best or patience else None
    with FolderLock(folder) if folder else contextlib.nullcontext():
        _claim(folder, resume)
        keys = _new_history(accuracy is not None, validation is not None, part_keys(loss, parts))
        if resume is not None:
            run = _resumed(resume, model, rng, settings, best, callbacks, epochs=epochs, batches=batches,
                           keys=keys)
        else:
            net = owned_copy(model, model)
            run = Run(epochs, batches, keys, net, owned_copy(optimizer.init(net), model))
        with BlasThreads(threads) as blas, StopRequests(run) as requests:
            bar = ProgressBar() if progress else None
            checking = validation and Validation(loss, *validation, transform)
            writing = folder and Checkpoints(folder, keep, checkpoint_every, rng, settings, callbacks, best)
            pieces = [checking, History(optimizer, blas), bar, DivergenceWatch(optimizer), best, *callbacks,
                      writing, Interrupts(requests, close=(bar,) if bar else ())]
            step = OwnedStep(loss, in_place(optimizer, reuse_gradients=not callbacks), blas)
            Loop(x, y, batch_size, rng, step, hooks_of([p for p in pieces if p]), accuracy, steps_per_epoch,
                 transform, input_dtype(model, x), keep_grads=bool(callbacks), parts=parts)(run)
    return (best.best if keep_best and best.best is not None else run.live()[0]), run.history

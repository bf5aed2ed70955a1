"""fit and evaluate: the training loop around forward, loss, backward and the optimizer's update."""

from __future__ import annotations

import functools
import math
import re
import signal
import threading
import time
from pathlib import Path

import attrs
import numpy as np
from threadpoolctl import threadpool_limits

from lamina.layers.errors import ShapeError
from lamina.optim.sgd import frozen_view
takes_keyword = lambda *a: False
from lamina.layers.sequence import Sequence
from lamina.layers.tree import check_same_structure, map_parameters, named_parameters
from lamina.optim.checkpoints import PATTERN as CHECKPOINTS
from lamina.optim.checkpoints import Checkpoint, load_checkpoint, remove_stale_temporaries, save_checkpoint
from lamina.optim.checks import check_inputs, check_targets, is_classification

DEFAULT_THREADS = 1
"""BLAS threads for fit and evaluate: one thread is as fast as two on small batches and
does not collapse when another process holds the second core (see bench/mlp.py)."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or inf; carries the epoch, batch (0-based), loss value and the first layer with a non-finite gradient.

    With ``parameter=True`` the loss was finite but the update after that batch made a parameter
    NaN or inf (found before a checkpoint was written); ``layer`` is then the parameter's path.
    With ``validation=True`` the validation loss after the epoch was not finite.
    """

    def __init__(self, epoch: int, batch: int, loss: float, layer: str | None, *, parameter: bool = False,
                 validation: bool = False):
        self.epoch, self.batch, self.loss, self.layer = epoch, batch, loss, layer
        if validation:
            what = f"the validation loss is {loss} after epoch {epoch} (0-based): the model overflows on x_val"
        elif parameter:
            what = (f"the update after epoch {epoch}, batch {batch} (0-based; loss {loss}) made the parameter "
                    f"{layer} NaN or inf")
        else:
            where = f"; first non-finite gradient in forward order: {layer}" if layer else ""
            what = f"loss is {loss} at epoch {epoch}, batch {batch} (0-based){where}"
        super().__init__(f"{what}. Try a smaller learning rate; the last checkpoint written is still good.")


@attrs.define
class _Running:
    """Running sums of the current epoch (kept in checkpoints so a resumed epoch ends with the same mean)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    batches: int = 0


class _StopRequests:
    """Turns SIGINT and SIGTERM into a request to stop at the next batch boundary (main thread only)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: int | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.requested = self.requested or signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                previous = signal.getsignal(signum)
                # an ignored signal stays ignored; a handler set outside Python (None) could not be restored
                if previous is not None and previous != signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __exit__(self, *exc):
        self.restore()

    def act(self):
        """Restore the handlers, then end as the signal would have: KeyboardInterrupt, or SIGTERM's default."""
        signum, self.requested = self.requested, None
        self.restore()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.raise_signal(signum)
        raise SystemExit(128 + signum)  # a handler that returned: still stop


def _as_sequence(model) -> Sequence:
    return model if isinstance(model, Sequence) else Sequence([model])


def _n_outputs(model: Sequence, x: np.ndarray, transform) -> int:
    """The model's number of outputs for samples like x's: from ``output_shape``, else from one sample."""
    first = x[:1] if transform is None else transform(x[:1])
    shape = model.output_shape(first.shape[1:])
    return shape[-1] if shape else model(first).shape[-1]


def _settings(model, loss, optimizer, x, batch_size, transform) -> dict:
    """What a resumed run must share with the run that wrote the checkpoint."""
    return {"model": _stable_repr(model), "loss": _stable_repr(loss), "optimizer": _stable_repr(optimizer),
            "batch_size": batch_size, "data": [int(d) for d in x.shape],
            "transform": _stable_repr(transform)}


def _stable_repr(value) -> str:
    """repr without memory addresses (``<function f at 0x7f...>`` -> ``<function f>``), the same in every process."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _first_nonfinite(record) -> str | None:
    """The path of the first parameter (in forward order) holding NaN or inf."""
    for path, g in named_parameters(record):
        if not np.isfinite(g).all():
            return path
    return None


def _check_positive_int(name, value, allow_none=False, who="fit"):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")


def evaluate(model, loss, x, y, batch_size: int = 1000, *, transform=None, threads: int | None = DEFAULT_THREADS) -> dict:
    """{"loss": mean loss over the samples, "accuracy": for class labels} of ``model`` on (x, y), in batches."""
    _check_positive_int("batch_size", batch_size, who="evaluate")
    x = check_inputs(x)
    model = _as_sequence(model)
    y = check_targets(y, len(x), _n_outputs(model, x, transform), who="evaluate")
    return _evaluate(model, loss, x, y, batch_size, transform, threads)


def _evaluate(model, loss, x, y, batch_size, transform, threads) -> dict:
    total, correct = 0.0, 0
    with threadpool_limits(threads, user_api="blas"):
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            pred = model(xb if transform is None else transform(xb), check=False)  # x was checked once
            value, _ = loss.forward(pred, yb, check=False) if takes_keyword(type(loss), "forward", "check") \
                else loss.forward(pred, yb)  # the targets were checked once; a NaN loss is a result
            total += value * len(xb)
            if is_classification(y):
                correct += int(np.count_nonzero(pred.argmax(axis=1) == yb))
    result = {"loss": total / len(x)}
    if is_classification(y):
        result["accuracy"] = correct / len(x)
    return result


@attrs.define
class _Run:
    """Where a training run is: all that a checkpoint holds besides the data and settings."""

    model: object
    state: object
    history: dict
    epoch: int = 0
    position: int = 0
    running: _Running = attrs.Factory(_Running)
    epoch_rng_state: dict | None = None
    best: object = None
    resumed_from: Path | None = None

    def checkpoint(self, rng, settings) -> Checkpoint:
        return Checkpoint(model=self.model, state=self.state, epoch=self.epoch, position=self.position,
                          history=self.history, rng_state=rng.bit_generator.state,
                          epoch_rng_state=self.epoch_rng_state, running=attrs.asdict(self.running),
                          settings=settings, best=self.best)


def _new_history(classify: bool, validation: bool) -> dict:
    keys = ["loss", *(["accuracy"] if classify else []), *(["val_loss"] if validation else []),
            *(["val_accuracy"] if validation and classify else []), "seconds", "learning_rate"]
    return {key: [] for key in keys}


def _resumed(resume, net, settings, rng) -> _Run:
    """The run a checkpoint holds, after checking it matches this one; sets ``rng`` to its state."""
    ckpt = load_checkpoint(resume)
    ckpt.check_matches(settings, rng)
    check_same_structure(net, ckpt.model, names=("model given to fit", "checkpoint's model"))
    rng.bit_generator.state = ckpt.rng_state
    return _Run(model=ckpt.model, state=ckpt.state, history=ckpt.history, epoch=ckpt.epoch,
                position=ckpt.position, running=_Running(**ckpt.running),
                epoch_rng_state=ckpt.epoch_rng_state, best=ckpt.best, resumed_from=ckpt.path)


def _epoch_order(run: _Run, rng, n: int) -> np.ndarray:
    """This epoch's permutation: drawn from ``rng``, or replayed from the epoch's start when resumed mid-epoch."""
    if run.position == 0:
        run.epoch_rng_state = rng.bit_generator.state
        return rng.permutation(n)
    replay = np.random.Generator(type(rng.bit_generator)())
    replay.bit_generator.state = run.epoch_rng_state
    return replay.permutation(n)


def fit(model, loss, optimizer, x, y, *, epochs: int, batch_size: int, rng: np.random.Generator,
        validation=None, progress: bool = True, checkpoint=None, resume=None,
        checkpoint_every: int | None = None, keep: int = 3, keep_best: bool = False,
        patience: int | None = None, threads: int | None = DEFAULT_THREADS, transform=None):
    """Train ``model`` on (x, y) for ``epochs`` epochs (the total, also on resume) -> (model, history).

    One shuffle per epoch from ``rng``, one ``optimizer.update`` per batch of ``batch_size``.
    ``validation=(x_val, y_val)`` adds val_loss/val_accuracy; ``keep_best`` returns the model
    of the best val_loss and ``patience`` stops after that many epochs without improvement.
    ``checkpoint`` is a folder written after every epoch and every ``checkpoint_every``
    batches (the last ``keep`` kept); ``resume`` is such a folder or one checkpoint file.
    ``threads`` sets the BLAS thread count (None: leave it); ``transform`` converts each batch
    (e.g. ``data.Rescale()`` for uint8 images).
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("keep", keep)):
        _check_positive_int(name, value)
    _check_positive_int("checkpoint_every", checkpoint_every, allow_none=True)
    _check_positive_int("patience", patience, allow_none=True)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"fit: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if (keep_best or patience) and validation is None:
        raise ValueError("fit: keep_best and patience need validation=(x_val, y_val)")
    net = _as_sequence(model)
    x = check_inputs(x)
    n_outputs = _n_outputs(net, x, transform)
    y = check_targets(y, len(x), n_outputs)
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise TypeError(f"fit: validation must be a pair (x_val, y_val), got {type(validation).__name__}"
                            f"{f' of length {len(validation)}' if isinstance(validation, (tuple, list)) else ''}")
        x_val = check_inputs(validation[0], "validation x")
        if x_val.shape[1:] != x.shape[1:]:
            raise ShapeError("fit", f"validation samples shaped like x's {x.shape[1:]}", str(x_val.shape),
                             source="validation x")
        y_val = check_targets(validation[1], len(x_val), n_outputs, "validation y")
    if y.dtype.kind == "f" and net.dtype is not None:  # targets in the model's dtype, cast once
        y = y.astype(net.dtype, copy=False)
        if validation is not None:
            y_val = y_val.astype(net.dtype, copy=False)
    classify = is_classification(y)
    settings = _settings(net, loss, optimizer, x, batch_size, transform)
    folder = Path(checkpoint) if checkpoint is not None else None
    if folder is not None:
        remove_stale_temporaries(folder)
        if resume is None and any(folder.glob(CHECKPOINTS)):
            raise FileExistsError(f"fit: {folder} holds checkpoints of another run; resume from it "
                                  f"(resume={str(folder)!r}) or give an empty folder")

    if resume is not None:
        run = _resumed(resume, net, settings, rng)
        if run.epoch > epochs:
            raise ValueError(f"fit: the checkpoint is at epoch {run.epoch}, past epochs={epochs} "
                             f"(epochs is the total, counting the epochs before the checkpoint)")
    else:
        run = _Run(model=net, state=optimizer.init(net), history=_new_history(classify, validation is not None))
    history = run.history
    track_best = validation is not None and (keep_best or patience)
    best_loss = history["val_loss"][history["best_epoch"]] if history.get("best_epoch") is not None else np.inf

    n = len(x)
    n_batches = -(-n // batch_size)
    # the targets were checked once: the loss need not check them again every batch
    loss_forward = (functools.partial(loss.forward, check=False) if takes_keyword(type(loss), "forward", "check")
                    else loss.forward)
    donates = takes_keyword(type(optimizer), "update", "donate")
    rate = getattr(optimizer, "rate", None)
    donate = False  # never on the first step: the model and state may be the caller's
    out = None  # the dead gradients the next backward may write into
    value = np.nan

    def write_checkpoint():
        bad = _first_nonfinite(run.model)
        if bad is not None:  # the last update overflowed on a finite loss: keep the last good checkpoint
            epoch, batch = (run.epoch, run.position - 1) if run.position else (run.epoch - 1, n_batches - 1)
            raise NonFiniteLossError(epoch, batch, value, bad, parameter=True)
        save_checkpoint(folder, run.checkpoint(rng, settings), keep=keep, protect=run.resumed_from)

    with threadpool_limits(threads, user_api="blas"), _StopRequests() as stop:
        while run.epoch < epochs and not history.get("stopped_early"):
            started = time.perf_counter()
            order = _epoch_order(run, rng, n)
            bar = _progress_bar(progress, run.epoch, epochs, n_batches, run.position)
            net, state, running = run.model, run.state, run.running
            for b in range(run.position, n_batches):
                # the step: forward, loss, backward, update
                idx = order[b * batch_size:(b + 1) * batch_size]
                xb, yb = x[idx], y[idx]
                if transform is not None:
                    xb = transform(xb)
                pred, cache = net.forward(xb, rng=rng, check=False)  # x was checked once; rng goes where needed
                value, loss_cache = loss_forward(pred, yb)
                _, grads = net.backward(cache, loss.backward(loss_cache), input_grad=False, out=out)
                if not math.isfinite(value):
                    raise NonFiniteLossError(run.epoch, b, value, _first_nonfinite(grads))
                net, state = (optimizer.update(net, grads, state, donate=donate) if donates
                              else optimizer.update(net, grads, state))
                if donates:  # the gradients are dead after a donated update: the next backward reuses them
                    donate, out = True, grads
                # the bookkeeping
                running.loss_sum += value
                running.batches += 1
                running.seen += len(idx)
                if classify:
                    running.correct += int(np.count_nonzero(pred.argmax(axis=1) == yb))
                if bar is not None:
                    _update_bar(bar, b, running, classify)
                if b + 1 < n_batches and (stop.requested or (checkpoint_every and (b + 1) % checkpoint_every == 0)):
                    run.model, run.state, run.position = net, state, b + 1
                    if folder is not None:
                        write_checkpoint()
                    if stop.requested:  # at the epoch's end, the epoch is finished first
                        if bar is not None:
                            bar.close()
                        stop.act()
            if bar is not None:
                bar.close()
            run.model, run.state = net, state
            bad = _first_nonfinite(net)  # once an epoch: never validate, checkpoint or return a broken model
            if bad is not None:
                raise NonFiniteLossError(run.epoch, n_batches - 1, value, bad, parameter=True)

            history["loss"].append(running.loss_sum / running.batches)
            if classify:
                history["accuracy"].append(running.correct / running.seen)
            if validation is not None:
                val = _evaluate(net, loss, x_val, y_val, 1000, transform, None)
                if not math.isfinite(val["loss"]):
                    raise NonFiniteLossError(run.epoch, n_batches - 1, val["loss"], None, validation=True)
                history["val_loss"].append(val["loss"])
                if classify:
                    history["val_accuracy"].append(val["accuracy"])
            history["seconds"].append(time.perf_counter() - started)
            history["learning_rate"].append(rate(state.step - 1) if rate and hasattr(state, "step") else None)
            if track_best:
                if history["val_loss"][-1] < best_loss:
                    best_loss = history["val_loss"][-1]
                    history["best_epoch"] = run.epoch
                    if keep_best:  # a copy: the next update may reuse the buffers
                        run.best = map_parameters(lambda p: frozen_view(p.copy()), net)
                if patience:
                    history["stopped_early"] = run.epoch - history.get("best_epoch", -1) >= patience
            if progress:
                _print_epoch(run.epoch, epochs, history)
            run.epoch, run.position, run.running = run.epoch + 1, 0, _Running()
            if folder is not None:
                write_checkpoint()
            if stop.requested:
                stop.act()
    result = run.best if keep_best and run.best is not None else run.model
    return (result if isinstance(model, Sequence) else result.layers[0]), history


def _progress_bar(progress, epoch, epochs, n_batches, position):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=n_batches, initial=position, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                leave=False, dynamic_ncols=True, mininterval=0.2)


def _update_bar(bar, b, running, classify):
    if (b + 1) % 25 == 0 or b + 1 == bar.total:
        bar.update(b + 1 - bar.n)
        postfix = {"loss": f"{running.loss_sum / running.batches:.4f}"}
        if classify:
            postfix["accuracy"] = f"{running.correct / running.seen:.4f}"
        bar.set_postfix(postfix, refresh=False)


def _print_epoch(epoch, epochs, history):
    from tqdm.auto import tqdm
    parts = [f"epoch {epoch + 1}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in history:
            parts.append(f"{key} {history[key][-1]:.4f}")
    parts.append(f"{history['seconds'][-1]:.1f} s")
    tqdm.write("  ".join(parts))

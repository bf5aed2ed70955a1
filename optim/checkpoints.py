"""Checkpoints: everything a training run needs to resume exactly, one model file per save."""

from __future__ import annotations

import errno
import math
import os
import warnings
import re
from pathlib import Path

import attrs
import numpy as np
from lamina.layers.errors import ModelFileError
from lamina.layers.files.atomic import try_lock, fcntl
from lamina.layers.files.atomic import remove_stale_temporaries as remove_stale
from lamina.layers.records.registry import register
from lamina.optim.chain import ChainState
from lamina.optim.errors import TrainingWarning

PATTERN = "checkpoint-*.npz"
STALE_CHECKPOINTS = re.compile(r"\.checkpoint-.*\.tmp\Z")
BIT_GENERATORS = {cls.__name__: cls for cls in (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937,
                                                np.random.Philox, np.random.SFC64)}
EXTRA_KEYS = ("epoch", "position", "history", "rng_state", "epoch_rng_state", "running", "settings")
"""What every checkpoint holds beside the records; ``offset`` (format 3: where the shuffled order stands) and
``callbacks`` may be missing."""
RUNNING_KEYS = {"loss_sum", "correct", "seen", "batches"}


@register
@attrs.frozen
class SGDState:
    """lamina 0.1's SGD state (step, velocity: a model-shaped record or None), kept only to read 0.1
    checkpoints.

    ``load_checkpoint`` converts it: the velocity is exactly the state of SGD's ``trace``.
    """

    step: int = 0
    velocity: object = None


def converted_state(state):
    """A 0.1 ``SGDState`` as the ChainState of today's SGD (its one stateful transform is trace); any other
    state as it is."""
    if not isinstance(state, SGDState):
        return state
    return ChainState(step=state.step, states=((state.velocity,),) if state.velocity is not None else ())


def _converted_settings(settings: dict) -> dict:
    """A 0.1 run's settings as today's SGD would write them: its repr gained clip_norm (0.1 never clipped)."""
    optimizer = settings.get("optimizer")
    if type(optimizer) is str and optimizer.startswith("SGD(") and "clip_norm=" not in optimizer:
        settings = {**settings, "optimizer": optimizer[:-1] + ", clip_norm=None)"}
    return settings


@attrs.frozen
class Checkpoint:
    """A training run at a batch boundary: after ``position`` batches of epoch ``epoch`` (0-based).

    The loop's state as ``optim.Run`` declares it (``Run.saved()``: epoch, position, history,
    running, and the shuffled order: ``epoch_rng_state``, the Generator state its permutation in use
    was drawn from, and ``offset``, the rows of it used, None for none in use), the model, the
    optimizer state, the Generator's state now (``rng_state``) and the run's settings. ``best`` is
    the best-validation model so far, kept when the run uses ``keep_best``.
    """

    model: object
    state: object
    epoch: int
    position: int
    history: dict
    rng_state: dict
    epoch_rng_state: dict | None
    running: dict
    settings: dict
    best: object = None
    callbacks: list | None = None   # each user callback's state() (JSON), in the order given to fit
    path: Path | None = None
    offset: int | None = None

    @classmethod
    def of(cls, saved: dict, **records_and_settings) -> Checkpoint:
        """The checkpoint of a run whose ``Run.saved()`` is ``saved``."""
        return cls(**saved, **records_and_settings)

    def check_matches(self, settings: dict, rng, history: tuple = ()) -> None:
        """Raise ValueError listing every setting in which a resumed run differs from the checkpoint's (and
        every key of ``history``, the resumed run's, that the checkpoint's lacks)."""
        optional = {"learning_rate", "threads"}      # (0.1 had neither list)
        scalars = {"best_epoch", "stopped_early"}
        differ = [f"history: the checkpoint's {'lacks' if key in history else 'has'} {key!r}, this run's "
                  f"{'has' if key in history else 'lacks'} it (validation given to one run only?)"
                  for key in sorted(set(history).symmetric_difference(self.history) - optional - scalars)
                  if history] + [f"{key}: checkpoint has {self.settings.get(key)!r}, this run has {value!r}"
                  for key, value in settings.items() if self.settings.get(key) != value]
        kind = type(rng.bit_generator).__name__
        if self.rng_state.get("bit_generator") != kind:
            differ.append(f"rng: checkpoint has {self.rng_state.get('bit_generator')}, this run has {kind}")
        if differ:
            raise ValueError(f"cannot resume from {self.path}: the settings differ\n  " + "\n  ".join(differ))


def _file_name(epoch: int, position: int) -> str:
    return f"checkpoint-{epoch:05d}-{position:07d}.npz"


def _state_to_json(state):
    """A bit generator's state as JSON: its arrays (MT19937, Philox, SFC64) become {"ndarray": [...], "dtype":
    ...}."""
    if isinstance(state, dict):
        return {key: _state_to_json(value) for key, value in state.items()}
    if isinstance(state, np.ndarray):
        return {"ndarray": state.tolist(), "dtype": state.dtype.str}
    if isinstance(state, np.integer):
        return int(state)
    return state


def _state_from_json(state, where: str):
    """The inverse of ``_state_to_json``; integer arrays only."""
    if isinstance(state, dict) and set(state) == {"ndarray", "dtype"}:
        try:
            dtype = np.dtype(state["dtype"])
            if dtype.kind not in "iu" or not isinstance(state["ndarray"], list):
                raise TypeError(f"dtype {dtype}")
            return np.array(state["ndarray"], dtype=dtype)
        except (TypeError, ValueError, OverflowError) as error:
            raise ValueError(f"{where} holds a bad integer array ({error})") from None
    if isinstance(state, dict):
        return {key: _state_from_json(value, f"{where}[{key!r}]") for key, value in state.items()}
    return state


def _generator_state(state, where: str) -> dict:
    """A checked Generator state from a file: a known bit generator that accepts it."""
    state = _state_from_json(state, where)
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if type(kind) is not str or kind not in BIT_GENERATORS:
        raise ValueError(f"{where} names the bit generator {str(kind)[:40]!r}; "
                         f"expected one of {sorted(BIT_GENERATORS)}")
    try:
        BIT_GENERATORS[kind]().state = state
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise ValueError(f"{where} is not a valid {kind} state ({type(error).__name__}: {error})") from None
    return state


def _is_count(value) -> bool:
    return type(value) is int and value >= 0


def _checked_extra(extra: dict) -> dict:
    """The checkpoint fields in ``extra``, checked (ValueError saying what is wrong)."""
    missing = [key for key in EXTRA_KEYS if key not in extra]
    if missing:
        raise ValueError(f"the checkpoint lacks {missing}")
    fields = {key: extra[key] for key in EXTRA_KEYS}
    for key in ("epoch", "position"):
        if not _is_count(fields[key]):
            raise ValueError(f"the checkpoint's {key} is {str(fields[key])[:40]}; expected an int >= 0")
    history, running = fields["history"], fields["running"]
    parts = running.get("parts", []) if type(running) is dict else []      # losses.Multi's per-part sums
    running = {k: v for k, v in running.items() if k != "parts"} if type(running) is dict else running
    _check_history(history, fields["epoch"])
    _check_running(running, fields["position"])
    if type(parts) is not list or not all(type(p) is list and len(p) == 3 and
                                          all(type(v) in (int, float) for v in p) for p in parts):
        raise ValueError(f"the checkpoint's per-part running sums are {str(parts)[:100]}; expected "
                         f"[[loss sum, right, count], ...]")
    fields["running"] = {**running, "parts": parts}
    if type(fields["settings"]) is not dict:
        raise ValueError("the checkpoint's settings are not a dict")
    fields["callbacks"] = extra.get("callbacks")
    if fields["callbacks"] is not None and type(fields["callbacks"]) is not list:
        raise ValueError("the checkpoint's callback states are not a list")
    fields["offset"] = _offset(extra, fields)
    fields["rng_state"] = _generator_state(fields["rng_state"], "the checkpoint's rng_state")
    if fields["epoch_rng_state"] is not None:
        fields["epoch_rng_state"] = _generator_state(fields["epoch_rng_state"],
                                                     "the checkpoint's epoch_rng_state")
    elif fields["position"] > 0:
        raise ValueError("the checkpoint is in the middle of an epoch but lacks the epoch's rng state")
    return fields


def _check_history(history, epochs: int) -> None:
    """fit's history after ``epochs`` epochs: "loss" and "seconds", every list ``epochs`` numbers long."""
    if type(history) is not dict or not all(type(v) is list for k, v in history.items() if k not in
                                            ("best_epoch", "stopped_early")):
        raise ValueError("the checkpoint's history is not a dict of per-epoch lists")
    for key in sorted({"loss", "seconds"} - set(history)):
        raise ValueError(f"the checkpoint's history lacks {key!r}")
    for key, values in history.items():
        if key == "best_epoch" and not (type(values) is int and 1 <= values <= epochs):
            raise ValueError(f"the checkpoint's history['best_epoch'] is {str(values)[:40]}; "
                             f"expected 1 to {epochs}")
        if key == "stopped_early" and type(values) is not bool:
            raise ValueError(f"the checkpoint's history['stopped_early'] is {str(values)[:40]}; "
                             f"expected a bool")
        if type(values) is list and (len(values) != epochs or
                                     not all(v is None or type(v) in (int, float) for v in values)):
            raise ValueError(f"the checkpoint's history[{key!r}] is {str(values)[:60]}; expected {epochs} "
                             f"number(s), one per epoch done")


def _check_running(running, position: int) -> None:
    """The running sums of ``position`` batches of the epoch in progress."""
    numbers = type(running) is dict and set(running) == RUNNING_KEYS and \
        all(type(v) in (int, float) for v in running.values())
    if not numbers:
        raise ValueError(f"the checkpoint's running sums are {str(running)[:100]}; "
                         f"expected numbers {sorted(RUNNING_KEYS)}")
    counts = all(type(running[key]) is int for key in ("correct", "seen", "batches"))
    if not (counts and running["batches"] == position and 0 <= running["correct"] <= running["seen"]
            and math.isfinite(running["loss_sum"])):
        raise ValueError(f"the checkpoint's running sums {str(running)[:100]} do not fit {position} "
                         f"batch(es) of the epoch in progress")


def _offset(extra: dict, fields: dict) -> int | None:
    """Rows of the permutation in use already used: stored since format 3; before, ``position`` full
    batches."""
    if "offset" in extra:
        offset = extra["offset"]
        if offset is not None and not _is_count(offset):
            raise ValueError(f"the checkpoint's offset is {str(offset)[:40]}; expected an int >= 0 or null")
        return offset
    batch_size = fields["settings"].get("batch_size")
    return fields["position"] * batch_size if fields["position"] and _is_count(batch_size) else None


def save_checkpoint(folder, checkpoint: Checkpoint, *, keep: int = 3, protect=None) -> Path:
    """Write ``checkpoint`` atomically into ``folder``, then delete all but the newest ``keep`` (never
    ``protect``)."""
    from lamina.layers.files.model_file import write_records

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _file_name(checkpoint.epoch, checkpoint.position)
    extra = {key: getattr(checkpoint, key) for key in (*EXTRA_KEYS, "offset")}
    if checkpoint.callbacks is not None:
        extra["callbacks"] = checkpoint.callbacks
    for key in ("rng_state", "epoch_rng_state"):
        extra[key] = _state_to_json(extra[key])
    records = {"model": checkpoint.model, "state": checkpoint.state}
    if checkpoint.best is not None:
        records["best"] = checkpoint.best
    write_records(path, records, extra, kind="checkpoint")
    # the newest `keep` by name stay, and so do the one just written (a resumed run may be behind
    # checkpoints of an earlier run in the same folder) and the one resumed from
    spared = {path.resolve()} | ({Path(protect).resolve()} if protect is not None else set())
    for old in sorted(folder.glob(PATTERN))[:-keep]:
        if old.resolve() not in spared:
            old.unlink(missing_ok=True)
    return path


class FolderLock:
    """A checkpoint folder held by one run: an OS lock (``flock``) on ``folder/.lock``, which dies with its
    process, so a killed run's folder can be resumed at once. Entering a folder a live run holds raises
    FileExistsError naming the folder and the holder's process id, and touches nothing in it."""

    NAME = ".lock"

    def __init__(self, folder):
        self.folder, self.fd = Path(folder), None

    def __enter__(self) -> Path:
        path = self.folder / self.NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as error:
            error.filename = error.filename or str(path)
            raise
        if fcntl is not None and not try_lock(fd):
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise FileExistsError(errno.EEXIST, f"fit: the checkpoint folder {self.folder} belongs to a live "
                                  f"run (process {holder}); wait for it to end, or give another folder",
                                  str(self.folder))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self.fd = fd
        return self.folder

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)       # releases the lock
            self.fd = None


def remove_stale_temporaries(folder) -> list[str]:
    """Delete what dead writers left in a checkpoint folder (``.checkpoint-*.tmp``) -> their names (called
    under the folder's lock: only a run holding it writes checkpoints there)."""
    return remove_stale(folder, STALE_CHECKPOINTS, age=0.0)


def latest_checkpoint(folder) -> Path:
    """The newest checkpoint in ``folder`` that loads; FileNotFoundError if there is none."""
    return _newest(Path(folder)).path


def _newest(folder: Path) -> Checkpoint:
    """The newest checkpoint in ``folder`` that loads, loaded (damaged ones are skipped)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no checkpoint folder {folder}")
    problems = []
    for path in sorted(folder.glob(PATTERN), reverse=True):
        try:
            checkpoint = _load_file(path)
        except (ModelFileError, OSError) as error:
            problems.append(str(error))
            continue
        if problems:
            warnings.warn(f"{len(problems)} newer checkpoint(s) in {folder} are damaged; using {path.name} "
                          f"instead ({'; '.join(problems)[:500]})", TrainingWarning, stacklevel=4)
        return checkpoint
    detail = "; ".join(problems) if problems else "no files named checkpoint-*.npz"
    raise FileNotFoundError(f"no valid checkpoint in {folder}: {detail}")


def load_checkpoint(path) -> Checkpoint:
    """Everything a checkpoint file holds (``path`` may be a folder: its newest valid checkpoint)."""
    path = Path(path)
    return _newest(path) if path.is_dir() else _load_file(path)


def _load_file(path: Path) -> Checkpoint:
    from lamina.layers.files.model_file import read_records

    records, extra, kind = read_records(path)
    if kind != "checkpoint" or set(records) - {"best"} != {"model", "state"}:
        raise ModelFileError(path, f"this is a {kind} file holding {sorted(records)}, not a checkpoint")
    try:
        fields = _checked_extra(extra)
    except ValueError as problem:
        raise ModelFileError(path, str(problem)) from None
    state = records["state"]
    if isinstance(state, SGDState):  # a lamina 0.1 checkpoint
        state, fields["settings"] = converted_state(state), _converted_settings(fields["settings"])
    return Checkpoint(model=records["model"], state=state, best=records.get("best"), path=path, **fields)

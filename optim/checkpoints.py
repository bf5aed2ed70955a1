"""Checkpoints: everything a training run needs to resume exactly, one model file per save."""

from __future__ import annotations

from pathlib import Path

import attrs

from lamina.layers.errors import ModelFileError

PATTERN = "checkpoint-*.npz"


@attrs.frozen
class Checkpoint:
    """A training run at a batch boundary: after ``position`` batches of epoch ``epoch`` (0-based)."""

    model: object
    state: object
    epoch: int
    position: int
    history: dict
    rng_state: dict
    epoch_rng_state: dict | None
    running: dict
    settings: dict
    path: Path | None = None

    def check_matches(self, settings: dict, rng) -> None:
        """Raise ValueError listing every setting in which a resumed run differs from the checkpoint's."""
        differ = [f"{key}: checkpoint has {self.settings.get(key)!r}, this run has {value!r}"
                  for key, value in settings.items() if self.settings.get(key) != value]
        kind = type(rng.bit_generator).__name__
        if self.rng_state.get("bit_generator") != kind:
            differ.append(f"rng: checkpoint has {self.rng_state.get('bit_generator')}, this run has {kind}")
        if differ:
            raise ValueError(f"cannot resume from {self.path}: the settings differ\n  " + "\n  ".join(differ))


def _file_name(epoch: int, position: int) -> str:
    return f"checkpoint-{epoch:05d}-{position:07d}.npz"


def save_checkpoint(folder, checkpoint: Checkpoint, *, keep: int = 3, protect=None) -> Path:
    """Write ``checkpoint`` atomically into ``folder``, then delete all but the newest ``keep`` (never ``protect``)."""
    from lamina.layers.files import write_records

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _file_name(checkpoint.epoch, checkpoint.position)
    extra = {key: getattr(checkpoint, key) for key in
             ("epoch", "position", "history", "rng_state", "epoch_rng_state", "running", "settings")}
    write_records(path, {"model": checkpoint.model, "state": checkpoint.state}, extra, kind="checkpoint")
    protect = Path(protect).resolve() if protect is not None else None
    for old in sorted(folder.glob(PATTERN))[:-keep]:
        if old.resolve() != protect:
            old.unlink(missing_ok=True)
    return path


def latest_checkpoint(folder) -> Path:
    """The newest checkpoint in ``folder`` that loads; FileNotFoundError if there is none."""
    folder = Path(folder)
    problems = []
    for path in sorted(folder.glob(PATTERN), reverse=True):
        try:
            load_checkpoint(path)
            return path
        except ModelFileError as error:
            problems.append(str(error))
    detail = "; ".join(problems) if problems else "no files named checkpoint-*.npz"
    raise FileNotFoundError(f"no valid checkpoint in {folder}: {detail}")


def load_checkpoint(path) -> Checkpoint:
    """Everything a checkpoint file holds (``path`` may be a folder: its newest valid checkpoint)."""
    from lamina.layers.files import read_records

    path = Path(path)
    if path.is_dir():
        path = latest_checkpoint(path)
    records, extra, kind = read_records(path)
    if kind != "checkpoint" or "state" not in records:
        raise ModelFileError(path, f"this is a {kind} file, not a checkpoint")
    try:
        return Checkpoint(model=records["model"], state=records["state"], path=path,
                          **{key: extra[key] for key in ("epoch", "position", "history", "rng_state",
                                                         "epoch_rng_state", "running", "settings")})
    except KeyError as missing:
        raise ModelFileError(path, f"the checkpoint lacks {missing}") from None

"""What every example's command line shares: help that shows each default, output paths checked before
training, the per-epoch lines without the bars, and Ctrl-C that keeps the work and exits quietly."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from lamina.optim.callbacks import ProgressBar

INTERRUPTED = 130  # the exit status of a process ended by Ctrl-C (128 + SIGINT)


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's help ends with "(default: ...)"; a help that states its default itself is kept as
    written."""

    def _get_help_string(self, action):
        help = action.help or ""
        if "default:" in help or "%(default)" in help:
            return help
        return super()._get_help_string(action)


def plural(count: int, noun: str) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def check_output(path: Path, flag: str) -> Path:
    """``path`` can be written, checked before any work: its folder is made when missing; OSError naming the
    flag.

    --report keeps the rule of ``lamina.diagnostics.report`` (and ``python -m lamina.diagnostics``): its
    folder must exist."""
    path = Path(path)
    if flag == "--report":
        from lamina.diagnostics import check_output_path
        return check_output_path(path, flag)
    if path.is_dir():
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file name, e.g. {path / 'model.npz'}")
    folder = path.absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"{flag} {path}: cannot make the folder {folder}: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{flag} {path}: no permission to write in {folder}")
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"{flag} {path}: the file exists and cannot be written")
    return path


def check_outputs(p: argparse.ArgumentParser, outputs: dict) -> None:
    """Check every output file {flag: path} (None: not asked for) before training; a refused one ends the run
    (exit 2)."""
    for flag, path in outputs.items():
        if path is not None:
            try:
                check_output(path, flag)
            except OSError as error:
                p.error(str(error))


def check_matplotlib(p: argparse.ArgumentParser, flag: str = "--plot") -> None:
    """A flag that draws needs matplotlib: say so before training, not after it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        p.error(f"{flag} needs matplotlib: pip install matplotlib (or pip install -e '.[plot]'), or leave "
                f"out {flag}")


def epoch_lines(progress: bool) -> list:
    """The callbacks that print one line per epoch when ``fit(progress=False)`` hides the bars
    (--no-progress)."""
    return [] if progress else [ProgressBar(bars=False)]


def resume_command(script: str, argv: list[str], folder) -> str:
    """The same command line with ``--resume folder`` (any --resume given before replaced)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume="):
            kept.append(arg)
    return shlex.join(["python", script, *kept, "--resume", str(folder)])


class Position:
    """A fit callback that remembers where training is (epoch and batch, from 1), for the Ctrl-C message."""

    def __init__(self):
        self.epoch, self.batch, self.batches = 1, 0, None

    def on_batch_end(self, run) -> None:
        self.epoch, self.batch, self.batches = run.epoch, run.batch, run.batches


NOT_RESUMABLE = ("no checkpoint was written, so this run cannot be resumed: give --checkpoint FOLDER to make "
                 "a run resumable")


def interrupted(stop, position: Position, *, out: Path | None, save, script: str, argv: list[str],
                not_resumable: str = NOT_RESUMABLE) -> None:
    """After Ctrl-C in fit: save the model trained so far (``save(path, model, history)``), say where it is
    and how to go on, and exit with status 130 (no traceback)."""
    if position.batch == position.batches:
        where = f"after epoch {position.epoch}, its last batch done"
    else:
        where = f"in epoch {position.epoch}, after batch {position.batch}" + (
            f" of {position.batches}" if position.batches else "")
    print(f"\ninterrupted {where}")
    if out is not None:
        save(out, stop.model, stop.history)
        print(f"saved the model trained so far to {out}")
    if stop.checkpoint:
        folder = Path(stop.checkpoint).parent
        print(f"checkpoint written to {stop.checkpoint}; to go on from there:\n  "
              f"{resume_command(script, argv, folder)}")
    else:
        print(not_resumable)
    sys.exit(INTERRUPTED)


def main_guard(main) -> None:
    """Run ``main()``; Ctrl-C outside training ends the program with one line and status 130, not a
    traceback."""
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)

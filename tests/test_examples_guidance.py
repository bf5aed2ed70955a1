"""The examples guide a newcomer (issue 15): outputs checked before training, checkpoint folders that say how
to go on, Ctrl-C that keeps the work and prints the command to resume, runs that can be extended, help that
shows every default, and the per-epoch lines without the bars. Short runs on the first few hundred MNIST
samples."""

from __future__ import annotations

import re
import shlex
import signal
import sys

import numpy as np
import pytest
from test_examples import EXAMPLES, example

from lamina import data, layers, optim

classifier = example("classifier")
SMALL = ["--limit", "320", "--hidden", "16", "--epochs", "1", "--no-progress"]   # 5 batches of 64


def run(argv, load=data.mnist):
    return classifier.main(argv, load, "MNIST", "unused.npz", script="examples/mnist.py")


def never_loaded():
    raise AssertionError("the data was loaded: the bad flag was found too late")


# ---- every output path is checked before the first batch ------------------------------------------------

@pytest.mark.parametrize("flag", ["--out", "--report", "--checkpoint", "--plot"])
def test_an_output_that_cannot_be_written_fails_before_any_work(flag, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = blocker / "sub" / "x.npz"
    argv = [*SMALL, "--plot", "--out", str(bad)] if flag == "--plot" else [*SMALL, flag, str(bad)]
    with pytest.raises(SystemExit) as exit_:
        run(argv, load=never_loaded)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"{'--out' if flag == '--plot' else flag}" in err and str(bad) in err and "Traceback" not in err


def test_an_output_in_a_missing_folder_is_made_and_written(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "m.npz"
    run([*SMALL, "--out", str(out)])
    assert layers.load(out).layers[0].n_out == 16
    assert "saved the model to" in capsys.readouterr().out


def test_plot_without_matplotlib_fails_before_training(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # import matplotlib raises ImportError
    with pytest.raises(SystemExit) as exit_:
        run([*SMALL, "--plot", "--out", str(tmp_path / "m.npz")], load=never_loaded)
    assert exit_.value.code == 2
    assert "--plot needs matplotlib: pip install" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def test_an_out_that_is_a_folder_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run([*SMALL, "--out", str(tmp_path)], load=never_loaded)
    assert exit_.value.code == 2 and f"--out {tmp_path} is a folder" in capsys.readouterr().err


# ---- a checkpoint folder of another run says how to go on, with the flags ------------------------------

def test_a_finished_runs_checkpoint_folder_says_how_to_continue_or_start_afresh(tmp_path, capsys):
    ck, out = tmp_path / "ck", tmp_path / "m.npz"
    run([*SMALL, "--checkpoint", str(ck), "--out", str(out)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:                       # the same command again
        run([*SMALL, "--checkpoint", str(ck), "--out", str(out)], load=never_loaded)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"--checkpoint {ck} holds a finished run (1 epoch)" in err
    assert f"--resume {ck}" in err and "another --checkpoint FOLDER" in err
    assert "resume=" not in err and "Traceback" not in err          # the flag, not fit's keyword
    assert "it was started as: python examples/mnist.py --limit 320" in err

    # resuming it with the same --epochs: nothing to do
    with pytest.raises(SystemExit) as exit_:
        run([*SMALL, "--resume", str(ck), "--out", str(out)], load=never_loaded)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "the run has finished its 1 epoch" in err and f"--epochs 3 --resume {ck}" in err


def test_a_finished_run_is_extended_by_resuming_it_with_more_epochs(tmp_path, capsys):
    ck, out = tmp_path / "ck", tmp_path / "m.npz"
    run([*SMALL, "--checkpoint", str(ck), "--out", str(out)])
    first = layers.load_extra(out)["history"]
    capsys.readouterr()
    extended = [a if a != "1" else "2" for a in SMALL]                # --epochs 2
    run([*extended, "--resume", str(ck), "--out", str(out)])
    shown = capsys.readouterr().out
    assert re.search(r"resuming from .*checkpoint-00001-0000000\.npz: epoch 2 of 2, from its first "
                     r"batch", shown)
    history = layers.load_extra(out)["history"]
    assert history["loss"][:1] == first["loss"] and len(history["loss"]) == 2
    # the schedule kept its span of 1 epoch (5 steps): the cosine restarted at --lr for the second epoch
    assert history["learning_rate"][0] == pytest.approx(0.1 * (1 + np.cos(np.pi * 4 / 5)) / 2)
    assert history["learning_rate"][1] == history["learning_rate"][0]

    # another schedule: refused, with the first command
    with pytest.raises(SystemExit) as exit_:
        run([*[a if a != "1" else "3" for a in SMALL], "--schedule-epochs", "3", "--resume", str(ck),
             "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "the settings differ" in err and "optimizer:" in err
    assert "resume with the flags of the run that wrote it: python examples/mnist.py --limit 320" in err
    assert f"--resume {ck}" in err and "Traceback" not in err


def test_the_schedule_restarts_after_its_span():
    schedule = classifier.CosineRestarts(0.1, 10)
    within = optim.Cosine(0.1, 10)
    assert [schedule(t) for t in range(10)] == [within(t) for t in range(10)]
    assert [schedule(t) for t in range(10, 20)] == [within(t) for t in range(10)]


# ---- Ctrl-C keeps the work and says how to go on ----------------------------------------------------------

class CtrlC:
    """Presses Ctrl-C (a real SIGINT to this process) after batch ``at`` of the first epoch."""

    def __init__(self, at: int):
        self.at = at

    def on_batch_end(self, run):
        if run.epoch == 1 and run.batch == self.at:
            signal.raise_signal(signal.SIGINT)


def press_ctrl_c(monkeypatch, at: int):
    real = optim.fit

    def fit(*args, callbacks=(), **kwargs):
        return real(*args, callbacks=[*callbacks, CtrlC(at)], **kwargs)
    monkeypatch.setattr(optim, "fit", fit)


def test_ctrl_c_prints_the_checkpoint_and_the_command_that_resumes_it(tmp_path, capsys, monkeypatch):
    ck, out = tmp_path / "ck", tmp_path / "m.npz"
    argv = [*SMALL, "--epochs", "2", "--checkpoint", str(ck), "--out", str(out)]
    with monkeypatch.context() as patch:
        press_ctrl_c(patch, at=2)
        with pytest.raises(SystemExit) as exit_:
            run(argv)
    assert exit_.value.code == 130
    shown = capsys.readouterr()
    assert "Traceback" not in shown.err
    assert "interrupted in epoch 1, after batch 2 of 5" in shown.out
    assert f"checkpoint written to {ck / 'checkpoint-00000-0000002.npz'}" in shown.out
    assert f"saved the model trained so far to {out}" in shown.out
    command = shown.out.strip().splitlines()[-1].strip()
    assert command == shlex.join(["python", "examples/mnist.py", *argv, "--resume", str(ck)])
    assert layers.load_extra(out)["interrupted"] is True

    run(shlex.split(command)[2:])                                   # the printed command goes on
    resumed = capsys.readouterr().out
    assert "resuming from" in resumed and "epoch 1 of 2, after batch 2 of 5" in resumed
    assert re.fullmatch(r"test accuracy: \d\.\d{4}", resumed.strip().splitlines()[-1])
    whole = tmp_path / "whole.npz"                                  # the same run without the interruption
    run([*SMALL, "--epochs", "2", "--out", str(whole)])
    assert [w.tobytes() for w in layers.parameters(layers.load(out))] == \
           [w.tobytes() for w in layers.parameters(layers.load(whole))]


def test_ctrl_c_without_a_checkpoint_folder_saves_what_was_trained(tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.npz"
    press_ctrl_c(monkeypatch, at=3)
    with pytest.raises(SystemExit) as exit_:
        run([*SMALL, "--out", str(out)])
    assert exit_.value.code == 130
    shown = capsys.readouterr().out
    assert f"saved the model trained so far to {out}" in shown and "cannot be resumed" in shown
    assert "--checkpoint FOLDER" in shown
    assert layers.load(out).layers[0].n_out == 16


# ---- progress, help texts, plurals ------------------------------------------------------------------------

def test_no_progress_keeps_the_epoch_lines_and_says_1_epoch(tmp_path, capsys):
    run([*SMALL, "--out", str(tmp_path / "m.npz")])
    shown = capsys.readouterr()
    assert re.search(r"^epoch 1/1  loss \d\.\d{4}  accuracy \d\.\d{4}  val_loss", shown.out, re.M)
    assert "batch size 64, 1 epoch" in shown.out and "1 epochs" not in shown.out
    assert "batch/s" not in shown.err and "it/s" not in shown.err    # no bar


def help_options(main, capsys, monkeypatch) -> list[str]:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    options = [" ".join(option.split()) for option in re.split(r"\n  (?=-)",
                                                               text.split("options:")[1].split("\n\n")[0])]
    return [option for option in options if option.startswith("--") and not option.startswith("-h")]


def classifier_help(argv):
    p = classifier.parser("test", "out.npz")
    p.parse_args(argv)


@pytest.mark.parametrize("name", ["classifier", "predict", "diabetes", "breast_cancer", "residual_mnist"])
def test_every_flag_shows_its_default_and_no_boolean_shows_true_or_false(name, capsys, monkeypatch):
    module = example(name)
    main = classifier_help if name == "classifier" else getattr(module, "parse_args")
    options = help_options(main, capsys, monkeypatch)
    assert len(options) >= 3
    for option in options:
        assert "default: " in option, option
        assert "default: True" not in option and "default: False" not in option, option


def test_the_examples_run_as_scripts_from_the_examples_folder():
    names = {path.stem for path in EXAMPLES.glob("*.py")}
    assert {"mnist", "fashion_mnist", "predict", "diabetes", "breast_cancer", "residual_mnist",
            "command_line",
            "classifier"} <= names

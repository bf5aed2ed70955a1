"""The examples: argument parsing, and short real runs of the main job, predict.py and diabetes.py."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from lamina import layers, optim

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str):
    """Import examples/NAME.py as a module (the examples folder on sys.path, as when run as a script)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


classifier = example("classifier")


def parse(*argv):
    p = classifier.parser("test", "out.npz")
    return classifier.check_args(p, p.parse_args(list(argv)))


def test_defaults_are_the_documented_main_job():
    args = parse()
    assert (args.hidden, args.activation, args.loss, args.epochs, args.batch_size) == ([256], "relu", "cross-entropy", 8, 64)
    assert (args.lr, args.schedule, args.momentum, args.nesterov, args.seed) == (0.1, "cosine", 0.9, True, 0)
    assert args.out == Path("out.npz") and args.threads == optim.DEFAULT_THREADS


def test_every_setting_is_a_flag():
    args = parse("--hidden", "512", "256", "--activation", "sigmoid", "--loss", "mse", "--epochs", "3",
                 "--batch-size", "128", "--lr", "0.5", "--schedule", "step", "--momentum", "0", "--seed", "7",
                 "--weight-decay", "1e-4", "--checkpoint", "runs/x", "--resume", "runs/x", "--plot")
    assert args.hidden == [512, 256] and args.activation == "sigmoid" and args.loss == "mse"
    assert (args.epochs, args.batch_size, args.lr, args.schedule, args.seed) == (3, 128, 0.5, "step", 7)
    assert args.nesterov is False  # no momentum, so no Nesterov
    assert args.checkpoint == Path("runs/x") and args.resume == Path("runs/x") and args.plot
    opt = classifier.optimizer(args, steps_per_epoch=100)
    assert isinstance(opt.learning_rate, optim.StepDecay) and opt.weight_decay == 1e-4


@pytest.mark.parametrize("argv, message", [
    (["--lr", "0"], "--lr must be positive"),
    (["--momentum", "1"], r"--momentum must be in \[0, 1\)"),
    (["--epochs", "0"], "--epochs and --batch-size must be at least 1"),
    (["--keep-best"], "--keep-best and --patience choose by validation"),
    (["--val-fraction", "1.5"], r"--val-fraction must be in \[0, 1\)"),
    (["--hidden", "0"], "--hidden sizes must be positive"),
    (["--activation", "softplus"], "invalid choice"),
])
def test_bad_flags_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_short_main_job_run_saves_its_model_and_ends_with_the_accuracy_line(tmp_path, capsys):
    mnist = example("mnist")
    out = tmp_path / "m.npz"
    accuracy = classifier.main(["--epochs", "1", "--hidden", "32", "--out", str(out), "--no-progress"],
                               mnist.data.mnist, "MNIST", "unused.npz")
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"test accuracy: \d\.\d{4}", lines[-1])
    assert float(lines[-1].split(": ")[1]) == round(accuracy, 4) and accuracy > 0.9
    model = layers.load(out)
    extra = layers.load_extra(out)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "ReLU", "Dense"]
    assert extra["settings"]["hidden"] == [32] and len(extra["history"]["loss"]) == 1
    assert extra["test"]["accuracy"] == accuracy

    predict = example("predict")
    assert predict.main([str(out), "--index", "0", "1"]) == pytest.approx(accuracy)
    shown = capsys.readouterr().out
    assert shown.count("test[") == 2 and re.search(r"test\[0\]: predicted \d, true 7", shown)
    assert len(predict.text_art(np.zeros((28, 28))).splitlines()) == 28


def test_diabetes_regression_matches_least_squares():
    result = example("diabetes").main([])
    assert result["least_squares_r2"] > 0.4
    assert result["mlp_r2"] > result["least_squares_r2"] - 0.05


def test_plot_writes_the_curves_and_the_confusion_matrix(tmp_path, capsys):
    rng = np.random.default_rng(0)
    model = layers.mlp(rng, [4, 3])
    x = rng.normal(size=(50, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=50)
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.7], "val_accuracy": [0.4, 0.6]}
    classifier.plot(tmp_path / "run.npz", history, model, x, y, 3)
    for name in ("run-curves.png", "run-confusion.png"):
        png = (tmp_path / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "run-curves.png" in capsys.readouterr().out

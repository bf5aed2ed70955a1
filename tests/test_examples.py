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
    assert (args.hidden, args.activation, args.loss, args.epochs, args.batch_size) == ([256], "relu",
                                                                                       "cross-entropy", 8, 64)
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


# ---- the optimizers of mnist.py, and the tables (issue 10) ------------------------------------------------

@pytest.mark.parametrize("name, kind, lr, weight_decay", [("sgd", optim.SGD, 0.1, 0.0),
                                                          ("adam", optim.Adam, 1e-3, 0.0),
                                                          ("adamw", optim.AdamW, 1e-3, 1e-2),
                                                          ("rmsprop", optim.RMSprop, 1e-3, 0.0)])
def test_each_optimizer_has_its_own_defaults_and_takes_clip_norm(name, kind, lr, weight_decay):
    args = parse("--optimizer", name, "--clip-norm", "2.5")
    opt = classifier.optimizer(args, steps_per_epoch=10)
    assert type(opt) is kind and opt.clip_norm == 2.5 and opt.weight_decay == weight_decay
    assert opt.learning_rate(0) == pytest.approx(lr)
    assert parse("--optimizer", name, "--lr", "0.02").lr == 0.02


def test_momentum_is_refused_for_adam(capsys):
    with pytest.raises(SystemExit):
        parse("--optimizer", "adam", "--momentum", "0.5")
    assert "--momentum applies to sgd and rmsprop, not adam" in capsys.readouterr().err


def test_a_short_adam_run_learns(tmp_path, capsys):
    accuracy = classifier.main(["--optimizer", "adam", "--limit", "6000", "--epochs", "2", "--hidden", "32",
                                "--out", str(tmp_path / "a.npz"), "--no-progress"],
                                example("mnist").data.mnist,
                               "MNIST", "unused.npz")
    assert "Adam(learning_rate=CosineRestarts(initial=0.001" in capsys.readouterr().out and accuracy > 0.8


@pytest.mark.parametrize("loss, shown", [("mse", "MSE()"), ("huber", "Huber(delta=1.0)"), ("l1", "L1()")])
def test_diabetes_trains_with_each_loss(loss, shown, capsys):
    result = example("diabetes").main(["--loss", loss])
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith(shown) for line in lines)
    assert re.fullmatch(r"test R\^2: MLP \d\.\d{3}, least squares \d\.\d{3}", lines[-1])
    assert result["least_squares_r2"] > 0.4 and result["mlp_r2"] > result["least_squares_r2"] - 0.05


breast_cancer = example("breast_cancer")


def test_the_breast_cancer_table_is_shipped_whole():
    x, y, names = breast_cancer.load()
    assert x.shape == (569, 30) and len(names) == 30 and int(y.sum()) == 212 and set(np.unique(y)) == {0, 1}
    assert "Wolberg" in (EXAMPLES / "data" / "README.md").read_text()


def test_roc_auc_by_hand():
    y = np.array([0, 0, 1, 1])
    assert breast_cancer.roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75     # 3 of 4 pairs ordered
    assert breast_cancer.roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5       # ties count half
    assert breast_cancer.roc_auc(y, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0


def test_the_logistic_regression_baseline_is_at_its_minimum():
    x, y, _ = breast_cancer.load()
    x = (x - x.mean(0)) / x.std(0)
    w = breast_cancer.logistic_regression(x, y, l2=1.0)
    design = np.column_stack([x, np.ones(len(x))])
    p = 1 / (1 + np.exp(-(design @ w)))
    gradient = design.T @ (p - y) / len(y) + np.r_[w[:-1], 0.0] / len(y)
    assert np.abs(gradient).max() < 1e-9


def test_breast_cancer_prints_accuracy_and_auc_against_the_baseline(tmp_path, capsys):
    result = breast_cancer.main(["--out", str(tmp_path / "new" / "b.npz")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"test accuracy: MLP \d\.\d{4}, logistic regression \d\.\d{4}; "
                        r"ROC AUC: MLP \d\.\d{4}, logistic regression \d\.\d{4}", lines[-1])
    assert result["baseline_accuracy"] > 0.95 and result["baseline_auc"] > 0.98
    assert result["mlp_accuracy"] > 0.95 and result["mlp_auc"] > 0.98
    assert layers.load(tmp_path / "new" / "b.npz").layers[-1].n_out == 1

"""examples/residual_mnist.py: its flags, and a short real run that ends with the accuracy line and saves the
model."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from lamina import layers

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "residual_mnist.py"


def load_example():
    """Import the example as its script runs: with the examples folder on sys.path (for command_line.py)."""
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        spec = importlib.util.spec_from_file_location("example_residual_mnist", EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLE.parent))


residual_mnist = load_example()


def test_every_setting_is_a_flag_with_its_default_in_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")                   # no help line wrapped inside a word
    with pytest.raises(SystemExit) as exit_:
        residual_mnist.parse_args(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    options = [" ".join(option.split()) for option in re.split(r"\n  (?=-)", text.split("options:")[1])]
    options = [option for option in options if option.startswith("--") and option != "--help"]
    assert all("default: " in line and "default: True" not in line for line in options), options
    for flag, default in [("--width", "256"), ("--blocks", "2"), ("--dropout", "0.2"), ("--epochs", "15"),
                          ("--batch-size", "128"), ("--lr", "0.1"), ("--momentum", "0.9"),
                          ("--weight-decay", "0.0005"),
                          ("--val-size", "5000"), ("--limit", "None"), ("--seed", "0"),
                          ("--out", "residual-mnist.npz")]:
        assert any(re.match(rf"{flag} \S+ .*\(default: "
                            rf"{re.escape(default)}\)$", line) for line in options), flag


@pytest.mark.parametrize("argv, message", [(["--dropout", "1"], r"--dropout must be in \[0, 1\)"),
                                           (["--width", "0"], "--width, --epochs and --batch-size must be at "
                                                              "least 1")])
def test_bad_flags_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        residual_mnist.parse_args(argv)
    assert exit_.value.code == 2 and re.search(message, capsys.readouterr().err)


def test_a_short_run_prints_the_summary_ends_with_the_accuracy_line_and_saves_the_model(tmp_path, capsys):
    out = tmp_path / "r.npz"
    accuracy = residual_mnist.main(["--limit", "2000", "--epochs", "1", "--width", "32", "--out", str(out),
                                    "--no-progress"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["path", "layer", "output", "parameters"]
    assert any(line.startswith("  layers[3].layers[0] ") and "Residual" in line for line in lines)
    assert re.fullmatch(r"test accuracy: \d\.\d{4}", lines[-1])
    assert float(lines[-1].split(": ")[1]) == round(accuracy, 4) and accuracy > 0.6
    model = layers.load(out)
    block = model.layers[3].layers[0]
    assert isinstance(block, layers.Residual) and block.inner.layers[0].n_in == 32
    assert any(isinstance(layer, layers.BatchNorm) for layer in block.inner.layers)
    assert any(isinstance(layer, layers.Dropout) for layer in block.inner.layers)
    extra = layers.load_extra(out)
    assert extra["test"]["accuracy"] == accuracy and len(extra["history"]["val_accuracy"]) == 1
    assert extra["settings"]["limit"] == 2000
    assert layers.buffers(model)[0].any()                   # running statistics were trained and saved

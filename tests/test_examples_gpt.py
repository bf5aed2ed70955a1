"""examples/shakespeare_gpt.py: nanoGPT's settings as its defaults, and short real runs of the GPT and the
LSTM on a slice of the text that learn, sample, and save the model with its vocabulary."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lamina import data, layers
from tests.test_examples import example

shakespeare_gpt = example("shakespeare_gpt")

LIMIT = 40_000


def test_the_defaults_are_nanogpts_cpu_configuration():
    a = shakespeare_gpt.parse_args([])
    assert (a.model, a.layers, a.heads, a.dim, a.context, a.batch_size, a.steps) == \
        ("gpt", 4, 4, 128, 64, 12, 2000)
    assert (a.lr, a.min_lr, a.warmup, a.beta1, a.beta2, a.weight_decay, a.clip, a.dropout, a.init_std) == \
        (1e-3, 1e-4, 100, 0.9, 0.99, 0.1, 1.0, 0.0, 0.02)
    assert shakespeare_gpt.parse_args(["--model", "lstm"]).layers == 2


def test_every_setting_is_a_flag_with_its_default_in_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        shakespeare_gpt.parse_args(["--help"])
    text = capsys.readouterr().out
    options = [" ".join(o.split()) for o in re.split(r"\n  (?=-)", text.split("options:")[1])]
    options = [o for o in options if o.startswith("--") and o != "--help"]
    assert len(options) >= 25 and all("(default: " in o for o in options), options


@pytest.mark.parametrize("argv, message", [(["--dim", "130"], r"--dim \(130\) must be a multiple of --heads"),
                                           (["--steps", "0"], "must be at least 1"),
                                           (["--min-lr", "0.1"], r"--min-lr must be in \(0, --lr\]")])
def test_bad_settings_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit):
        shakespeare_gpt.parse_args(argv)
    assert re.search(message, capsys.readouterr().err)


def test_the_gpt_ties_its_output_layer_to_its_embedding_and_starts_as_nanogpt():
    model = shakespeare_gpt.gpt(np.random.default_rng(0), 65, dim=128, heads=4, blocks=4, context=64,
                                dropout=0.0)
    assert model.layers[-1].layer is model.layers[0]                           # tied: one record
    attention, mlp = model.layers[3].inner.layers[1], model.layers[4].inner.layers
    assert abs(attention.weight_qkv.std() - 0.02) < 0.001 and abs(mlp[1].weight.std() - 0.02) < 0.001
    for projection in (attention.weight_out, mlp[3].weight):   # residual outputs: 0.02 / sqrt(8)
        assert abs(projection.std() - 0.02 / np.sqrt(8)) < 0.0005
    assert not attention.bias_qkv.any() and not mlp[3].bias.any()


def unigram_entropy(text: str) -> float:
    """Nats per character of the characters' own frequencies: what a model that ignores context reaches."""
    counts = np.array(list(Counter(text).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_a_short_run_learns_samples_and_saves_the_model_with_its_vocabulary(model, tmp_path, capsys):
    out = tmp_path / f"{model}.npz"
    val = shakespeare_gpt.main(["--model", model, "--limit", str(LIMIT), "--steps", "60",
                                "--eval-every", "25",
                                "--eval-windows", "60", "--lr", "3e-3", "--warmup", "5", "--sample", "80",
                                "--threads", "1", "--no-progress", "--out", str(out)])
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    assert re.fullmatch(r"val loss: \d+\.\d{4}", lines[-1]) and float(lines[-1].split()[-1]) == round(val, 4)
    assert lines[-2].startswith("60 steps: ")
    text = data.tiny_shakespeare()[:LIMIT]
    assert val < unigram_entropy(text[int(0.9 * LIMIT):]) - 0.1                # it learned beyond frequencies
    assert sum(line.startswith("epoch ") and "val_loss" in line for line in lines) == 2   # the estimates
    saved, extra = layers.load(out), layers.load_extra(out)
    vocab = data.Vocabulary.from_json(extra["vocabulary"])
    assert vocab == data.Vocabulary.from_text(text) and abs(extra["val_loss"] - val) < 1e-12
    last_estimate = max(i for i, line in enumerate(lines) if line.startswith("epoch "))
    sample = "\n".join(lines[last_estimate + 1:-2])
    assert set(sample) <= set(vocab.symbols) | {"\n"} and len(sample) >= 40  # the sample decodes
    if model == "gpt":
        assert saved.layers[-1].layer is saved.layers[0]                       # the tie survives the file
    ids = vocab.encode(text[-65:])
    x, y = data.windows(ids, 64)
    assert saved(x).shape == (1, 64, len(vocab))


def test_fit_trains_the_tied_gpt_as_train_step_does():
    """fit's in-place update sums the tied embedding's two gradient parts, as the pure step does."""
    rng = np.random.default_rng(0)
    model = layers.map_parameters(lambda p: p.astype(np.float64), shakespeare_gpt.gpt(
        rng, 11, dim=16, heads=2, blocks=1, context=8, dropout=0.0))
    x = rng.integers(0, 11, (12, 8))
    y = rng.integers(0, 11, (12, 8))
    loss = shakespeare_gpt.losses.SoftmaxCrossEntropy()
    opt = shakespeare_gpt.optim.AdamW(1e-2, weight_decay=0.1, clip_norm=1.0,
                                      decay=lambda path, p: p.ndim >= 2)
    trained, _ = shakespeare_gpt.optim.fit(model, loss, opt, x, y, epochs=1, batch_size=4,
                                           rng=np.random.default_rng(1), progress=False, threads=1)
    order, state, stepped = np.random.default_rng(1).permutation(12), opt.init(model), model
    for rows in order.reshape(3, 4):
        stepped, state, _, _ = shakespeare_gpt.optim.train_step(stepped, loss, opt, state, x[rows], y[rows],
                                                                layers.TRAIN)
    assert trained.layers[-1].layer is trained.layers[0]
    for a, b in zip(layers.parameters(trained), layers.parameters(stepped)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_the_readmes_gpt_is_the_examples_and_its_code_runs(tmp_path, monkeypatch):
    guide = Path(__file__).resolve().parent.parent / "docs" / "guide" / "sequences.md"  # (from the README)
    block = re.search(r"```py\n(import math.*?)```", guide.read_text(), re.S).group(1)
    assert "steps = 2000" in block
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block.replace("steps = 2000", "steps = 3"), str(guide), "exec"), namespace)
    model, vocab = namespace["model"], namespace["vocab"]
    example_model = shakespeare_gpt.gpt(np.random.default_rng(0), len(vocab), dim=128, heads=4, blocks=4,
                                        context=64, dropout=0.0)
    count = lambda m: sum(p.size for p in layers.parameters(m))               # noqa: E731
    assert count(model) == count(example_model) and model.layers[-1].layer is model.layers[0]
    assert len(namespace["history"]["val_loss"]) == 1

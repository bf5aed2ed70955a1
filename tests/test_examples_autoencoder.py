"""examples/autoencoder.py: a short real run of the tied denoising autoencoder beside the untied one."""

from __future__ import annotations

import pytest

from lamina import layers
from test_examples import example

autoencoder = example("autoencoder")


def test_a_short_run_scores_both_models_saves_the_tied_one_and_draws(tmp_path, capsys):
    out, png = tmp_path / "ae.npz", tmp_path / "ae.png"
    mse = autoencoder.main(["--limit", "300", "--epochs", "1", "--hidden", "32", "16", "--out", str(out),
                            "--png", str(png)])
    text = capsys.readouterr().out
    assert set(mse) == {"tied", "untied"} and all(0 < v < 0.3 for v in mse.values())
    assert "tied: test MSE" in text and "untied: test MSE" in text and "shared" not in text.split("epoch")[0]
    model = layers.load(out)
    assert model.layers[6].layer is model.layers[0] and model.layers[4].layer is model.layers[2]
    assert png.stat().st_size > 1000


def test_bad_flags_are_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        autoencoder.parse_args(["--noise", "-1"])
    assert "--noise must be >= 0" in capsys.readouterr().err

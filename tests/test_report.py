"""diagnostics.report: the sections it writes and leaves out, bad input, atomic writing, the command and
--report."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lamina import data, diagnostics, layers, losses, optim

ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=None)
def trained():
    """(model, history, records, (x_test, y_test)): a small MNIST MLP, two epochs on 1200 samples, recorded
    every 5 batches."""
    (x, y), (x_test, y_test) = data.mnist()
    x, y, x_test, y_test = x[:1200], y[:1200], x_test[:300], y_test[:300]
    rng = np.random.default_rng(0)
    model = layers.mlp(rng, [784, 16, 10])
    monitor = diagnostics.Monitor(every=5)
    model, history = optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.1, momentum=0.9), x, y,
                               epochs=2,
                               batch_size=32, rng=rng, validation=(x_test, y_test), progress=False, threads=1,
                               callbacks=[monitor])
    return model, history, monitor.records, (x_test, y_test)


def sections(page: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)">', page)


def figures(page: str) -> list[str]:
    return re.findall(r'data-figure="([a-z]+)"', page)


def test_a_full_report_has_every_section_and_no_network_reference(tmp_path):
    model, history, records, test = trained()
    path = diagnostics.report(tmp_path / "r.html", model, history=history, records=records, data=test,
                              image_shape=(28, 28))
    page = path.read_text()
    assert sections(page) == ["model", "training", "units", "outputs", "gradients", "weights", "filters",
                              "confusion", "mistakes", "saliency"]
    assert figures(page) == ["curves", "units", "activations", "gradients", "histograms", "filters",
                             "mistakes",
                             "saliency"]
    assert "data-missing" not in page
    assert not re.search(r"(src|href)=\"(?!data:|#)", page)       # every picture inline, every link inside
    assert "http" not in page.replace("http-equiv", "")
    assert "default-src 'none'" in page and 'name="viewport"' in page
    embedded = json.loads(re.search(r'<script type="application/json" id="lamina-data">(.*?)</script>',
                                    page).group(1))
    assert embedded["records"] == records and embedded["history"]["loss"] == history["loss"]


def test_without_records_the_report_says_what_is_missing_and_why(tmp_path):
    model, history, _, test = trained()
    path = diagnostics.report(tmp_path / "r.html", model, history=history, data=test, image_shape=(28, 28))
    page = path.read_text()
    assert sections(page) == ["model", "training", "filters", "confusion", "mistakes", "saliency"]
    missing = re.search(r"<div class=\"missing\" data-missing>(.*?)</div>", page).group(1)
    assert "Dead and saturated units, layer outputs, gradients and updates, weights" in missing
    assert "no statistics were recorded: train with callbacks=[diagnostics.Monitor()]" in missing
    bare = diagnostics.report(tmp_path / "bare.html", model).read_text()
    assert sections(bare) == ["model"]
    assert "no history was given" in bare and "no data was given" in bare


def test_tabular_data_gets_no_image_sections(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(np.int64)
    model = layers.mlp(rng, [5, 8, 2], activation=layers.Sigmoid)
    monitor = diagnostics.Monitor(every=2)
    model, history = optim.fit(model, losses.SoftmaxCrossEntropy(), optim.SGD(0.5), x.astype(np.float32), y,
                               epochs=2, batch_size=50, rng=rng, progress=False, callbacks=[monitor])
    page = diagnostics.report(tmp_path / "t.html", model, history=history, records=monitor.records,
                              data=(x, y)).read_text()
    assert sections(page) == ["model", "training", "units", "outputs", "gradients", "weights", "confusion",
                              "mistakes"]
    assert not {"filters", "mistakes", "saliency"} & set(figures(page))
    assert "the inputs are not images" in page
    assert "saturated outputs" in page and "dead ReLU" not in page


def test_data_that_does_not_fit_the_model_is_a_clear_error_and_writes_nothing(tmp_path):
    model, history, records, (x, y) = trained()
    path = tmp_path / "r.html"
    with pytest.raises(ValueError, match=r"report: the data does not fit the model: its samples are shaped "
                                         r"\(783,\)"):
        diagnostics.report(path, model, data=(x[:, :783], y))
    with pytest.raises(ValueError, match=r"image_shape \(28, 27\) holds 756 values, but the samples"):
        diagnostics.report(path, model, data=(x, y), image_shape=(28, 27))
    with pytest.raises(ValueError, match="records must be the records of a diagnostics.Monitor"):
        diagnostics.report(path, model, records={"loss": [1.0]})
    with pytest.raises(TypeError, match="data must be a pair"):
        diagnostics.report(path, model, data=x)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_path_is_a_clear_error_before_any_work(tmp_path):
    model = trained()[0]
    with pytest.raises(FileNotFoundError, match=r"cannot write .*r.html: the folder .*nowhere does not "
                                                r"exist"):
        diagnostics.report(tmp_path / "nowhere" / "r.html", model)
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        diagnostics.report(tmp_path, model)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        diagnostics.report(tmp_path / "file" / "r.html", model)


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    """The disk fails after the page's bytes were written (at the flush to disk): the old report stays,
    whole."""
    import lamina.layers.files.atomic

    def failing_fsync(fd):
        raise OSError("no space left on device")

    model = trained()[0]
    path = tmp_path / "r.html"
    path.write_text("the old report")
    monkeypatch.setattr(lamina.layers.files.atomic.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="no space left"):
        diagnostics.report(path, model)
    assert path.read_text() == "the old report" and [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_findings_say_what_the_numbers_show():
    records = {"step": [1, 2], "epoch": [1, 2], "batch": [1, 1],
               "layers": {"layers[1]": {"kind": "ReLU", "dead": [0.1, 0.5]}},
               "parameters": {"layers[0].weight": {"shape": [2, 2], "update_ratio": [0.1, 0.2]},
                              "layers[0].bias": {"shape": [2], "update_ratio": [1e-9, 1e-9]}}}
    history = {"loss": [1.0, 0.5, 0.2], "val_loss": [1.0, 0.8, 1.2]}
    found = diagnostics.findings(history, records)
    assert found == [
        (True, "Validation loss was lowest at epoch 2 (0.8) and rose to 1.2 by the end: the network has "
               "started to overfit."),
        (True, "layers[1] ReLU: 50.0% dead units in epoch 2."),
        (True, "Median update-to-weight ratio of the weight matrices in epoch 2: 0.2 (large next to the "
               "usual ~1e-3: if the loss jumps about, lower the learning rate)."),
    ]


def test_the_command_writes_a_report_of_a_saved_model(tmp_path):
    model, history, records, _ = trained()
    saved = tmp_path / "m.npz"
    layers.save(saved, model, history=history, diagnostics=records)
    out = tmp_path / "r.html"
    done = subprocess.run([sys.executable, "-m", "lamina.diagnostics", str(saved), "--data", "mnist",
                           "--samples", "200", "--out", str(out)], capture_output=True, text=True,
                           timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rf"wrote {re.escape(str(out))} \(\d+\.\d\d MB\)\n", done.stdout)
    page = out.read_text()
    assert sections(page) == ["model", "training", "units", "outputs", "gradients", "weights", "filters",
                              "confusion", "mistakes", "saliency"]
    assert 'Accuracy' in page and "on 200 samples" in page
    bad = subprocess.run([sys.executable, "-m", "lamina.diagnostics", str(saved), "--out",
                          str(tmp_path / "no" / "r.html")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "the folder" in bad.stderr and "does not exist" in bad.stderr


def classifier_example():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        spec = importlib.util.spec_from_file_location("classifier_for_report",
                                                      ROOT / "examples" / "classifier.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "examples"))


def test_the_examples_report_flag_checks_its_path_before_training(tmp_path, capsys):
    classifier = classifier_example()
    p = classifier.parser("test", "out.npz")
    with pytest.raises(SystemExit) as exit_:
        classifier.check_args(p, p.parse_args(["--report", str(tmp_path / "missing" / "r.html")]))
    assert exit_.value.code == 2
    assert "--report: cannot write" in capsys.readouterr().err


def test_the_examples_report_flag_writes_the_report_and_saves_the_records(tmp_path, capsys):
    classifier = classifier_example()

    def small():
        (x, y), (x_test, y_test) = data.mnist()
        return (x[:3000], y[:3000]), (x_test[:500], y_test[:500])

    out, page = tmp_path / "m.npz", tmp_path / "r.html"
    classifier.main(["--epochs", "2", "--hidden", "16", "--out", str(out), "--report", str(page),
                     "--no-progress"],
                    small, "MNIST", "unused.npz")
    assert f"wrote the report to {page}" in capsys.readouterr().out
    assert "units" in sections(page.read_text()) and "saliency" in sections(page.read_text())
    records = layers.load_extra(out)["diagnostics"]
    assert records["step"][0] == 1 and records["every"] == diagnostics.DEFAULT_EVERY
    assert set(records["epoch"]) == {1, 2}

"""The README's Python, as a newcomer would paste it: the tour through the diagnostics runs and does what it
says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(until: str) -> list[str]:
    """The ```python blocks of the README, in order, up to the section headed ``until``."""
    text = README.read_text()
    return re.findall(r"```python\n(.*?)```", text[:text.index(until)], re.S)


def test_the_readme_code_runs_in_order_from_a_fresh_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    blocks = python_blocks("## scikit-learn and dask")
    assert len(blocks) >= 6
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    from lamina import layers, optim
    assert optim.evaluate(namespace["model"], namespace["loss"], namespace["x_test"],
                          namespace["y_test"])["accuracy"] > 0.95
    assert layers.load("mnist.npz") is not None and Path("report.html").stat().st_size > 10_000
    assert namespace["resnet"].output_shape((784,)) == (10,)
    np.testing.assert_allclose(namespace["Scale"](gain=np.ones(2))(np.ones((1, 2))), [[1.0, 1.0]])


def test_the_tour_runs_twice_in_the_same_folder_when_told_to_resume(tmp_path, monkeypatch):
    """The tour's checkpoint folder exists the second time: fit says how to go on (resume=) or start
    afresh."""
    import pytest
    monkeypatch.chdir(tmp_path)
    tour = python_blocks("### Losses")[0]
    exec(compile(tour.replace("epochs=5", "epochs=1"), str(README), "exec"), {})
    with pytest.raises(FileExistsError, match=r"resume from it \(resume='runs/tour'\) or give an empty "
                                              r"folder"):
        exec(compile(tour.replace("epochs=5", "epochs=1"), str(README), "exec"), {})

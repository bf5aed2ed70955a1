"""The README's Python and the guide's, as a newcomer would paste them: the tour, then each guide page up to
scikit-learn (docs/guide/, in the order of its index), runs and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide"


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order (```py blocks, full runs, are shown, not run)."""
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def guide_pages(until: str) -> list[Path]:
    """The guide's pages in the order of its table of contents, up to the page named ``until``."""
    names = re.findall(r"^   (\w+)$", (GUIDE / "index.rst").read_text(), re.M)
    return [GUIDE / f"{name}.md" for name in names[: names.index(until)]]


def test_the_readme_is_a_front_door_under_15000_characters_that_links_every_guide_page():
    text = README.read_text()
    assert len(text) < 15_000
    for page in GUIDE.glob("*.md"):
        assert f"(docs/guide/{page.name})" in text, page.name


def test_the_readme_and_guide_code_runs_in_order_from_a_fresh_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    pages = [README, *guide_pages("sklearn")]
    blocks = [(page, block) for page in pages for block in python_blocks(page)]
    assert len(blocks) >= 6 and len(python_blocks(README)) >= 1
    for page, block in blocks:
        exec(compile(block, str(page), "exec"), namespace)
    from lamina import layers, optim
    assert optim.evaluate(namespace["model"], namespace["loss"], namespace["x_test"],
                          namespace["y_test"])["accuracy"] > 0.95
    assert layers.load("mnist.npz") is not None and Path("report.html").stat().st_size > 10_000
    assert namespace["resnet"].output_shape((784,)) == (10,)
    np.testing.assert_allclose(namespace["Scale"](gain=np.ones(2))(np.ones((1, 2))), [[1.0, 1.0]])


def test_the_tour_runs_twice_in_the_same_folder_when_told_to_resume(tmp_path, monkeypatch):
    """The tour's checkpoint folder exists the second time: fit says how to go on (resume=) or start
    afresh."""
    monkeypatch.chdir(tmp_path)
    tour = python_blocks(README)[0]
    exec(compile(tour.replace("epochs=5", "epochs=1"), str(README), "exec"), {})
    with pytest.raises(FileExistsError, match=r"resume from it \(resume='runs/tour'\) or give an empty "
                                              r"folder"):
        exec(compile(tour.replace("epochs=5", "epochs=1"), str(README), "exec"), {})

"""The documentation site builds with warnings as errors, documents every public name, its tutorials ran."""

from __future__ import annotations

import importlib
import re
from html.parser import HTMLParser

import pytest
from docs_site import TUTORIALS, build, built
from sphinx.util.inventory import InventoryFile

import lamina

PAGES = {
    "layers": ["Dense", "ReLU", "Mode", "check_gradients"],
    "combinators": ["Sequence", "Residual", "Concat"],
    "losses": ["SoftmaxCrossEntropy", "MSE"],
    "optimizers": ["SGD", "Adam", "Cosine", "chain"],
    "training": ["fit", "train_step", "evaluate", "NonFiniteLossError"],
    "files": ["save", "load_checkpoint"],
    "data": ["mnist", "batches"],
    "estimators": ["NetClassifier", "NetRegressor"],
    "diagnostics": ["Monitor", "report"],
}
# what each tutorial printed while the site was built
PRINTED = {
    "01_how_a_network_learns": [
        r"epoch 4: loss \d\.\d{4} accuracy 0\.\d{4}",
        r"TrainingWarning: \S",
        r"NonFiniteLossError: \S",
        r"total: 101,770 parameters",
    ],
    "02_your_own_layer": [
        r"'gain': '\d\.\de-1\d'",
        r"GradientCheckError: BrokenScale",
        r"Scale loaded; same predictions: True",
    ],
    "03_swapping_losses": [
        r"classification: \{'loss': \d",
        r"MSE\(\): mean absolute error on clean test targets \d+",
        r"has a loop: 0\.\d{3} correct",
    ],
    "04_beyond_mnist": [
        r"test accuracy: network 0\.\d{3}, logistic regression 0\.\d{3}",
        r"CNN 8 filters: \{'loss'",
    ],
    "05_nothing_lost": [
        r"TrainingInterrupted: training interrupted",
        r"same weights, bit for bit: True",
        r"ModelFileError: \S.*\n.*ModelFileError: \S",
    ],
    "06_tuning": [r"fits in one process", r"workers: 2", r"same scores as in one process: True"],
    "07_looking_inside": [r"report.html: \d\.\d MB", r"dead units in epoch 3", r"surest mistakes"],
    "08_your_own_combinator": [
        r"layers\[1\]\.b\s+Dense\(8 -> 3, float64\)",
        r"largest relative error: \d\.\de-\d\d",
        r"ShapeError: GatedSum expects b's output",
        r"GatedSum loaded from gated.npz; same predictions: True",
    ],
    "09_architectures": [
        r"layers\[2\]\.inner\.layers\[0\]",
        r"Join\('concat'\)",
        r"still one record after training: True",
        r"pass a tuple: \(x0, x1\)",
        r"'loss\[0\]', 'loss\[1\]'",
    ],
    "10_text": [r"65 symbols", r"share the corpus' memory: True", r"loss by epoch: \[", r"ROMEO:"],
    "11_export_to_onnx": [
        r"relative to the largest logit: \d\.\de-0[5-9]",
        r"equal predictions: True",
        r"40 steps: largest difference",
        r"Square has no ONNX form",
    ],
}


class Text(HTMLParser):
    """The visible text of a page and the source of its images."""

    def __init__(self):
        super().__init__()
        self.parts, self.images = [], []

    def handle_data(self, data):
        self.parts.append(data)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))


def read(path) -> Text:
    parser = Text()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.text = "".join(parser.parts)
    return parser


def test_the_site_builds_with_warnings_as_errors():
    code, output, seconds = build()
    assert code == 0, output[-6000:]
    assert "build succeeded" in output
    print(f"documentation build: {seconds:.1f} s")


def test_every_public_name_has_a_reference_entry():
    inventory = InventoryFile.load((built() / "objects.inv").open("rb"), "", lambda base, uri: uri)
    documented = {name for kind, entries in inventory.items() if kind.startswith("py:") for name in entries}
    missing = [
        f"lamina.{package}.{name}"
        for package in lamina.SUBPACKAGES
        for name in importlib.import_module(f"lamina.{package}").__all__
        if f"lamina.{package}.{name}" not in documented
    ]
    assert missing == []
    for name in (
        "lamina.layers.Dense",
        "lamina.optim.fit",
        "lamina.losses.SoftmaxCrossEntropy",
        "lamina.data.mnist",
        "lamina.estimators.NetClassifier",
        "lamina.diagnostics.Monitor",
        "lamina.diagnostics.report",
        "lamina.layers.Dense.forward",
        "lamina.optim.SGD",
        "lamina.optim.Cosine",
    ):
        assert name in documented, name


@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_reference_page_groups_its_names(page):
    path = built() / "api" / f"{page}.html"
    text = read(path).text
    for name in PAGES[page]:
        assert name in text, (page, name)


def test_a_class_page_shows_its_constructor_fields_and_methods():
    dense = read(built() / "api" / "generated" / "lamina.layers.Dense.html").text
    assert "lamina.layers.Dense(weight, bias)" in dense.replace("\n", "")
    for method in ("init", "forward", "backward", "output_shape"):
        assert f"{method}(" in dense, method


def test_the_tutorials_are_the_files_in_docs_tutorials():
    assert TUTORIALS == sorted(PRINTED)
    index = read(built() / "auto_tutorials" / "index.html").text
    for title in (
        "How a network learns",
        "Your own layer",
        "Swapping losses",
        "Beyond MNIST",
        "Nothing lost",
        "Tuning",
        "Looking inside",
        "Your own combinator",
        "Architectures",
        "Text",
        "Export to ONNX",
    ):
        assert title in index


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_each_tutorial_shows_what_it_printed_and_drew_when_built(tutorial):
    page = read(built() / "auto_tutorials" / f"{tutorial}.html")
    for pattern in PRINTED.get(tutorial, []):
        assert re.search(pattern, page.text), (tutorial, pattern)
    assert "Traceback" not in page.text
    assert re.search(r"Total running time of the script: \(\s*\d+ minutes\s+\d+\.\d+ seconds\)", page.text)
    pictures = [src for src in page.images if f"sphx_glr_{tutorial}_0" in src]
    assert pictures, tutorial
    for src in pictures:
        assert (built() / "auto_tutorials" / src).read_bytes().startswith(b"\x89PNG"), src


def test_every_guide_page_is_built_and_listed_in_the_guide():
    guide = built() / "guide"
    index = read(guide / "index.html").text
    for page in sorted((built().parent.parent / "guide").glob("*.md")):
        title = page.read_text().splitlines()[0].removeprefix("# ")
        assert title in index, title
        assert title in read(guide / f"{page.stem}.html").text, page.stem

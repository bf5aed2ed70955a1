"""Writes the API reference pages (docs/api/*.rst) from each subpackage's ``__all__``, grouped as DESIGN does.

A name listed below but not (yet) exported is left out; an exported name listed nowhere goes to its package's
"More in lamina.X" section, so every public name has a reference entry without editing this file.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# page -> (title, intro, [(section, package, names)])
PAGES = {
    "layers": (
        "Layers",
        "Layer records, the protocol every layer follows, and the checks that come with it.",
        [
            (
                "The protocol",
                "layers",
                ["Layer", "Mode", "TRAIN", "EVAL", "param", "buffer", "constant", "register"],
            ),
            (
                "Dense and element-wise",
                "layers",
                ["Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Identity"],
            ),
            ("Normalization and dropout", "layers", ["Dropout", "BatchNorm", "LayerNorm"]),
            (
                "Images",
                "layers",
                ["Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Reshape"],
            ),
            (
                "Sequences and text",
                "layers",
                [
                    "Embedding",
                    "PositionalEmbedding",
                    "Conv1D",
                    "MaxPool1D",
                    "AvgPool1D",
                    "GlobalAvgPool1D",
                    "GlobalMaxPool1D",
                    "RNN",
                    "LSTM",
                    "GRU",
                    "Bidirectional",
                    "LastStep",
                    "MultiHeadAttention",
                    "generate",
                ],
            ),
            (
                "Parameters and buffers",
                "layers",
                [
                    "parameters",
                    "named_parameters",
                    "map_parameters",
                    "buffers",
                    "named_buffers",
                    "map_buffers",
                    "update_buffers",
                    "fold_gradients",
                ],
            ),
            (
                "Gradient checks",
                "layers",
                [
                    "check_gradients",
                    "check_loss_gradient",
                    "gradient_errors",
                    "loss_gradient_error",
                    "GradientCheckError",
                ],
            ),
            ("Errors", "layers", ["ShapeError", "LayerError", "StructureError"]),
        ],
    ),
    "combinators": (
        "Combinators",
        ("Layers that hold layers: they nest to any depth, pass the mode on and name paths in errors."),
        [
            (
                "Built-in combinators",
                "layers",
                ["Sequence", "mlp", "Residual", "Concat", "Fork", "Parallel", "Join", "Transposed"],
            ),
            ("Your own combinator", "layers", ["Combinator"]),
        ],
    ),
    "losses": (
        "Losses",
        (
            "A loss is a record with ``forward(pred, target) -> (value, cache)`` and "
            "``backward(cache) -> dpred``."
        ),
        [
            (
                "Classification",
                "losses",
                ["SoftmaxCrossEntropy", "BinaryCrossEntropy", "softmax", "sigmoid"],
            ),
            ("Regression", "losses", ["MSE", "Huber", "L1"]),
            ("Several outputs", "losses", ["Multi"]),
        ],
    ),
    "optimizers": (
        "Optimizers and schedules",
        (
            "An optimizer is a chain of small transforms: ``init(model) -> "
            "state``, ``update(model, grads, state) -> (model, state)``."
        ),
        [
            ("Optimizers", "optim", ["SGD", "Adam", "AdamW", "RMSprop"]),
            (
                "Chains and transforms",
                "optim",
                [
                    "chain",
                    "Chain",
                    "ChainState",
                    "Transform",
                    "TreeTransform",
                    "masked",
                    "clip_by_global_norm",
                    "global_norm",
                    "add_decayed_weights",
                    "trace",
                    "scale_by_adam",
                    "scale_by_rms",
                    "scale_by_learning_rate",
                    "scale",
                    "set_to_zero",
                    "FLUSH_EVERY",
                ],
            ),
            ("Schedules", "optim", ["Constant", "StepDecay", "Cosine", "Exponential", "Linear", "Warmup"]),
        ],
    ),
    "training": (
        "Training",
        "One step by hand, or the loop with its callbacks; errors and warnings about a run.",
        [
            ("The step and the loop", "optim", ["train_step", "fit", "evaluate", "Run", "DEFAULT_THREADS"]),
            (
                "When training goes wrong",
                "optim",
                ["NonFiniteLossError", "TrainingInterrupted", "TrainingWarning"],
            ),
        ],
    ),
    "files": (
        "Files",
        "Model files (never pickle), checkpoints, and export.",
        [
            ("Model files", "layers", ["save", "load", "load_extra", "ModelFileError"]),
            ("Checkpoints", "optim", ["Checkpoint", "load_checkpoint", "latest_checkpoint", "SGDState"]),
            ("Export", "layers", ["export_onnx"]),
        ],
    ),
    "data": (
        "Data",
        "Shipped data sets, the IDX reader, batching.",
        [
            ("Data sets", "data", ["mnist", "fashion_mnist", "tiny_shakespeare", "read_idx"]),
            ("Batching", "data", ["batches", "one_hot", "split", "Rescale"]),
            ("Text", "data", ["Vocabulary", "windows"]),
            ("Errors", "data", ["IDXError", "ChecksumError", "DatasetNotFoundError"]),
        ],
    ),
    "estimators": (
        "Estimators",
        ("scikit-learn estimators around a lamina model (``pip install 'lamina[sklearn]'``)."),
        [
            ("Estimators", "estimators", ["NetClassifier", "NetRegressor"]),
            (
                "Settings",
                "estimators",
                ["OPTIMIZERS", "ACTIVATIONS", "REGRESSION_LOSSES", "EXPECTED_FAILED_CHECKS"],
            ),
        ],
    ),
    "diagnostics": (
        "Diagnostics",
        ("What a network is doing: statistics while it trains, pictures and one HTML report after."),
        [
            (
                "While training",
                "diagnostics",
                ["Monitor", "DEFAULT_EVERY", "activation_statistics", "parameter_statistics", "by_epoch"],
            ),
            (
                "After training",
                "diagnostics",
                [
                    "filters",
                    "first_layer",
                    "confusion_matrix",
                    "count_confusions",
                    "confident_mistakes",
                    "Mistakes",
                    "saliency",
                    "weight_histograms",
                ],
            ),
            ("The report", "diagnostics", ["report", "findings", "check_output_path"]),
        ],
    ),
}
SECTIONS = [section for _, _, sections in PAGES.values() for section in sections]
# the page that documents a package's module (and takes its names listed nowhere above)
HOME = {
    "layers": "layers",
    "losses": "losses",
    "optim": "training",
    "data": "data",
    "estimators": "estimators",
    "diagnostics": "diagnostics",
}


def exported(package: str) -> list[str]:
    """The public names of ``lamina.<package>``: its ``__all__``."""
    return list(importlib.import_module(f"lamina.{package}").__all__)


def listing(package: str, names: list[str]) -> list[str]:
    """An autosummary block for the names, each given a page of its own."""
    return [
        "",
        f".. currentmodule:: lamina.{package}",
        "",
        ".. autosummary::",
        "   :toctree: generated/",
        "   :nosignatures:",
        "",
        *(f"   {name}" for name in names),
        "",
    ]


def page(slug: str) -> str:
    """The reStructuredText of one reference page."""
    title, intro, sections = PAGES[slug]
    lines = [f".. _api-{slug}:", "", title, "=" * len(title), "", intro, ""]
    for package, home in HOME.items():
        if home == slug:
            lines += [f".. automodule:: lamina.{package}", "   :no-members:", ""]
    for section, package, names in sections:
        present = [name for name in names if name in exported(package)]
        if present:
            lines += [section, "-" * len(section), *listing(package, present)]
    for package, home in HOME.items():
        listed = {name for _, p, names in SECTIONS if p == package for name in names}
        rest = [name for name in exported(package) if name not in listed and name != "__version__"]
        if home == slug and rest:
            heading = f"More in lamina.{package}"
            lines += [heading, "-" * len(heading), *listing(package, rest)]
    return "\n".join(lines)


def write(docs: Path) -> None:
    """Writes docs/api/<page>.rst for every page and docs/api/index.rst, touching only files that change."""
    folder = docs / "api"
    folder.mkdir(exist_ok=True)
    titles = "\n".join(f"   {slug}" for slug in PAGES)
    files = {
        "index.rst": "API reference\n=============\n\nEvery public name of lamina, grouped by package.\n\n"
        f".. toctree::\n   :maxdepth: 2\n\n{titles}\n"
    }
    files.update({f"{slug}.rst": page(slug) for slug in PAGES})
    for name, text in files.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)

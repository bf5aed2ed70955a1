"""Pictures of what the statistics say, drawn with matplotlib (the ``plot`` extra) into PNG bytes.

Every function takes plain data (a history, ``Monitor.records``, arrays) and returns the PNG
file's bytes; matplotlib is imported here only, when a picture is drawn, and through its
object API (no pyplot, so no global figure state and no display needed).
"""

from __future__ import annotations

import io
import math

import numpy as np

DPI = 130
WIDTH = 5.4  # inches: 702 pixels, scaled down to the screen's width by the report


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("diagnostics: pictures need matplotlib: pip install -e '.[plot]'") from None
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def steps_in_epochs(records: dict) -> np.ndarray:
    """Each recorded step's place in training, in epochs: 0.5 is halfway through the first epoch."""
    per_epoch = records.get("batches_per_epoch") or 1
    epoch, batch = np.asarray(records["epoch"], dtype=float), np.asarray(records["batch"], dtype=float)
    return (epoch - 1) + batch / per_epoch


def _series(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def curves(history: dict) -> bytes:
    """Loss and accuracy by epoch, training and validation."""
    figure = _figure(WIDTH, 3.2)
    has_accuracy = "accuracy" in history or "val_accuracy" in history
    axes = figure.subplots(1, 2 if has_accuracy else 1, squeeze=False)[0]
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, keys, name in ((axes[0], ("loss", "val_loss"), "loss (lower is better)"),
                           *(((axes[1], ("accuracy", "val_accuracy"), "accuracy"),) if has_accuracy else ())):
        for key in keys:
            if key in history and len(history[key]):
                label = "validation" if key.startswith("val_") else "training"
                ax.plot(epochs[:len(history[key])], history[key], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_xticks(epochs if len(epochs) <= 12 else epochs[::max(1, len(epochs) // 8)])
    figure.tight_layout()
    return _png(figure)


def _marker(x) -> str:
    """Dots on the points while there are few of them; a plain line through many."""
    return "." if len(x) <= 40 else ""


def _layer_lines(ax, x, columns: dict, statistic: str) -> bool:
    drawn = False
    for path, stats in columns.items():
        if statistic in stats:
            ax.plot(x, _series(stats[statistic]), marker=_marker(x),
                    label=f"{path} {stats.get('kind', '')}".strip())
            drawn = True
    return drawn


def unit_health(records: dict) -> bytes:
    """Fraction of dead ReLU units and of saturated sigmoid/tanh outputs, per layer, through training."""
    x = steps_in_epochs(records)
    figure = _figure(WIDTH, 3.2)
    ax = figure.subplots()
    _layer_lines(ax, x, records["layers"], "dead")
    for path, stats in records["layers"].items():
        if "saturated" in stats:
            ax.plot(x, _series(stats["saturated"]), marker=_marker(x), linestyle="--",
                    label=f"{path} {stats.get('kind', '')} (saturated)")
    highest = np.nanmax([np.nanmax(_series(stats[key]), initial=0.0) for stats in records["layers"].values()
                         for key in ("dead", "saturated") if key in stats], initial=0.0)
    ax.set_ylim(0, min(1.0, max(0.1, 1.2 * highest)))
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("fraction of units")
    ax.set_title("dead or saturated units (lower is better)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def activations(records: dict) -> bytes:
    """Each layer's output mean and spread (one standard deviation) through training."""
    x = steps_in_epochs(records)
    figure = _figure(WIDTH, 3.4)
    ax = figure.subplots()
    for path, stats in records["layers"].items():
        mean, std = _series(stats["mean"]), _series(stats["std"])
        line, = ax.plot(x, mean, marker=_marker(x), label=f"{path} {stats.get('kind', '')}")
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("output value")
    ax.set_title("layer outputs: mean (line), ± 1 std (band)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return _png(figure)


def _log_lines(ax, x, columns: dict, statistic: str) -> None:
    for path, stats in columns.items():
        values = _series(stats[statistic])
        values[~(values > 0)] = np.nan  # a log axis shows no zeros (a bias at its start)
        ax.plot(x, values, marker=_marker(x), label=path)
    ax.set_yscale("log")
    ax.set_xlabel("epochs trained")
    ax.grid(alpha=0.3)


def gradients(records: dict) -> bytes:
    """Per parameter: the gradient's norm and the update-to-weight ratio, on log scales."""
    x = steps_in_epochs(records)
    figure = _figure(WIDTH, 6.0)
    top, bottom = figure.subplots(2, 1)
    _log_lines(top, x, records["parameters"], "grad_norm")
    top.set_ylabel("gradient norm")
    top.set_title("gradient size per parameter", fontsize=10)
    top.legend(fontsize=7, ncol=2)
    _log_lines(bottom, x, records["parameters"], "update_ratio")
    bottom.axhline(1e-3, color="black", linestyle=":", linewidth=1, label="1e-3: a typical healthy step")
    bottom.legend(fontsize=7, ncol=2)
    bottom.set_ylabel("|update| / |weight|")
    bottom.set_title("size of each step, relative to the weight", fontsize=10)
    figure.tight_layout()
    return _png(figure)


def weight_histograms(weights: dict) -> bytes:
    """Histograms of each weight matrix at the end of the first and of the last epoch, overlaid."""
    paths = list(weights["last"]["histograms"])
    columns = min(2, len(paths))
    rows = math.ceil(len(paths) / columns)
    figure = _figure(WIDTH, 2.6 * rows + 0.3)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    shown = [("first", "C0"), ("last", "C3")]
    if weights["first"]["epoch"] == weights["last"]["epoch"]:
        shown = [("last", "C3")]
    for ax, path in zip(axes, paths):
        for which, color in shown:
            histogram = weights[which]["histograms"].get(path)
            if histogram is not None:
                ax.stairs(histogram["counts"], histogram["edges"], color=color, linewidth=1.5,
                          label=f"after epoch {weights[which]['epoch']}")
        ax.set_title(path, fontsize=9)
        ax.set_xlabel("weight value", fontsize=8)
        ax.set_ylabel("how many", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in axes[len(paths):]:
        ax.set_visible(False)
    figure.tight_layout()
    return _png(figure)


def _grid(n: int, columns: int) -> tuple[int, int]:
    columns = max(1, min(columns, n))
    return math.ceil(n / columns), columns


def _image(ax, image, cmap, vmin=None, vmax=None):
    if image.ndim == 3 and image.shape[-1] == 3:   # colour: scale into [0, 1] for display
        low, high = image.min(), image.max()
        return ax.imshow((image - low) / (high - low) if high > low else np.zeros_like(image))
    if image.ndim == 3:                             # other channel counts: their mean
        image = image.mean(axis=-1)
    return ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")


def filters(images: np.ndarray, title: str, columns: int = 8) -> bytes:
    """A grid of filters on one symmetric red-blue scale (red: the input here raises the unit; blue: lowers
    it)."""
    rows, columns = _grid(len(images), columns)
    tile = 0.82 * WIDTH / columns                      # inches per filter; the right 18% holds the colour bar
    figure = _figure(WIDTH, tile * rows + 0.5)
    height = figure.get_figheight()
    axes = figure.subplots(rows, columns, squeeze=False,
                           gridspec_kw={"left": 0.01, "right": 0.83, "bottom": 0.1 / height,
                                        "top": 1 - 0.4 / height, "wspace": 0.06, "hspace": 0.06})
    limit = float(np.abs(images).max()) or 1.0
    shown = None
    for ax, image in zip(axes.ravel(), images):
        shown = _image(ax, image, "RdBu_r", -limit, limit)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    figure.suptitle(title, fontsize=10, y=1 - 0.1 / height, va="top")
    if shown is not None and images.ndim == 3:
        bar = figure.add_axes((0.87, 0.25, 0.025, 0.5))
        figure.colorbar(shown, cax=bar, label="weight")
    return _png(figure)


def labelled_images(images: np.ndarray, captions: list[str], title: str, columns: int = 4) -> bytes:
    """A grid of input images (dark ink on white), each with its caption."""
    rows, columns = _grid(len(images), columns)
    figure = _figure(WIDTH, (WIDTH / columns + 0.35) * rows + 0.5)
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, image, caption in zip(axes.ravel(), images, captions):
        _image(ax, image, "gray_r")
        ax.set_title(caption, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _png(figure)


def saliency_maps(images: np.ndarray, maps: np.ndarray, captions: list[str], title: str) -> bytes:
    """Each image beside its saliency map (the size of the gradient per pixel; bright = decides most)."""
    n = len(images)
    figure = _figure(WIDTH, 1.45 * math.ceil(n / 3) + 0.4)
    axes = figure.subplots(math.ceil(n / 3), 6, squeeze=False)
    for i in range(n):
        ax_image, ax_map = axes.ravel()[2 * i], axes.ravel()[2 * i + 1]
        _image(ax_image, images[i], "gray_r")
        ax_image.set_title(captions[i], fontsize=8)
        strength = np.abs(maps[i])
        if strength.ndim == 3:
            strength = strength.max(axis=-1)
        ax_map.imshow(strength, cmap="inferno", vmin=0, vmax=float(strength.max()) or 1.0,
                      interpolation="nearest")
        ax_map.set_title("saliency", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    for ax in axes.ravel()[2 * n:]:
        ax.set_visible(False)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _png(figure)

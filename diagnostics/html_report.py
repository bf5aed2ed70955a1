"""report: one self-contained HTML file that shows what a network is doing (pictures embedded, no network
access)."""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path

import numpy as np

from lamina import layers
from lamina.diagnostics import pictures
from lamina.diagnostics.classification import check_data, confident_mistakes, count_confusions, probabilities
from lamina.diagnostics.filter_images import filters, first_layer, is_conv
from lamina.diagnostics.monitor import by_epoch
from lamina.diagnostics.saliency_maps import saliency
from lamina.layers.files.atomic import write_atomically
from lamina.layers.layer import check_layer

MISTAKES_SHOWN = 12
SALIENCY_SHOWN = 6
FILTERS_SHOWN = 64

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:780px;
     padding:12px;line-height:1.45;color:#1b1b1b;background:#fff}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd}
img{max-width:100%;height:auto;display:block;margin:0 auto}
figure{margin:.6em 0}figcaption,.note{font-size:.9em;color:#444}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}
td.name,th.name{text-align:left}
pre{overflow-x:auto;font-size:.8em;background:#f7f7f7;padding:8px}
.missing{background:#fff8e1;border:1px solid #f0d080;padding:6px 10px;font-size:.9em}
.findings li.warn{color:#a00}
nav{display:flex;flex-wrap:wrap;gap:.2em .9em}nav a{white-space:nowrap}
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


# ---- output path ----------------------------------------------------------------------------------


def check_output_path(path, who: str = "report") -> Path:
    """``path`` as a Path, or a clear error when a file cannot be written there (checked before any work)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{who}: {path} is a folder; give a file name, e.g. {path / 'report.html'}")
    folder = path.absolute().parent
    if not folder.exists():
        raise FileNotFoundError(f"{who}: cannot write {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"{who}: cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{who}: cannot write {path}: no permission to write in {folder}")
    return path


# ---- small HTML pieces ----------------------------------------------------------------------------


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _number(value, digits: int = 4) -> str:
    """How a number is shown: 4 significant digits, scientific when tiny or huge, '-' for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.{digits}g}"


def _cell(value, style: str = "") -> str:
    data = ""
    if value is not None:
        exact = int(value) if isinstance(value, (int, np.integer)) else repr(float(value))
        data = f' data-value="{_e(exact)}"'
    return f"<td{data}{f' style={chr(34)}{style}{chr(34)}' if style else ''}>{_number(value)}</td>"


def _table(name: str, header: list[str], rows: list[tuple[str, list]]) -> str:
    """A table named ``name`` (data-table): a first column of row names, then numbers (with data-value
    attributes)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(f'<tr><td class="name">{_e(row)}</td>{"".join(_cell(v) for v in values)}</tr>'
                   for row, values in rows)
    return f'<div class="scroll"><table data-table="{_e(name)}"><tr>{head}</tr>{body}</table></div>'


def _figure(name: str, png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return (f'<figure><img data-figure="{_e(name)}" alt="{_e(alt)}" width="{width}" height="{height}" '
            f'src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>')


def _section(key: str, title: str, body: str) -> tuple[str, str, str]:
    return key, title, body


# ---- sections -------------------------------------------------------------------------------------


def _model_section(model, input_shape) -> tuple:
    summary = model.summary(input_shape) if hasattr(model, "summary") and input_shape else (
        model.summary() if hasattr(model, "summary") else repr(model))
    count = sum(p.size for p in layers.parameters(model))
    return _section("model", "The model", f"<p>{count:,} parameters.</p><pre>{_e(summary)}</pre>")


def _training_section(history: dict) -> tuple:
    keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in history and len(history[k])]
    epochs = len(history["loss"])
    rows = [(str(e + 1), [history[k][e] if e < len(history[k]) else None for k in keys])
            for e in range(epochs)]
    caption = ("Each point is one epoch (one pass over the training data). Training and validation moving "
               "apart (validation loss rising while training loss falls) means the network memorizes instead "
               "of learning. The table gives the same numbers.")
    body = (_figure("curves", pictures.curves(history), "loss and accuracy by epoch", caption)
            + _table("history", ["epoch", *keys], rows))
    return _section("training", "Training", body)


def _by_epoch_table(name: str, records: dict, section: str, statistic: str) -> str:
    columns = {path: stats for path, stats in records[section].items() if statistic in stats}
    epochs = sorted(set(records["epoch"]))
    rows = []
    for path, stats in columns.items():
        values = dict(by_epoch(records, section, path, statistic))
        rows.append((f"{path} {stats.get('kind', '')}".strip() if section == "layers" else path,
                     [values.get(e) for e in epochs]))
    return _table(name, ["epoch", *map(str, epochs)], rows)


def _units_section(records: dict) -> tuple | None:
    stats = records["layers"].values()
    if not any("dead" in s or "saturated" in s for s in stats):
        return None
    parts = []
    if any("dead" in s for s in stats):
        parts.append("<p>Fraction of <b>dead ReLU units</b> by epoch (a unit is dead when it outputs 0 for "
                     "every sample of a recorded batch: it passes no gradient back and has stopped "
                     "learning):</p>"
                     + _by_epoch_table("dead", records, "layers", "dead"))
    if any("saturated" in s for s in stats):
        parts.append("<p>Fraction of <b>saturated outputs</b> by epoch (sigmoid below 0.01 or above 0.99, "
                     "tanh beyond ±0.99: there the slope is nearly 0, so little gradient gets through):</p>"
                     + _by_epoch_table("saturated", records, "layers", "saturated"))
    caption = ("One line per activation layer, one point per recorded batch. A few percent of dead units is "
               "harmless; a large or growing fraction means part of the network has stopped learning (try a "
               "lower learning rate, LeakyReLU, or another initialization).")
    body = _figure("units", pictures.unit_health(records), "dead and saturated units through training",
                   caption)
    return _section("units", "Dead and saturated units", body + "".join(parts))


def _outputs_section(records: dict) -> tuple | None:
    if not records["layers"]:
        return None
    caption = ("What each layer hands to the next. Outputs that shrink towards 0 layer after layer, or grow "
               "without bound, make training hard; a spread that stays roughly steady is healthy.")
    return _section("outputs", "Layer outputs",
                    _figure("activations", pictures.activations(records), "layer output mean and spread",
                            caption))


def _gradients_section(records: dict) -> tuple | None:
    if not records["parameters"]:
        return None
    caption = ("Top: the size (L2 norm) of each parameter's gradient on the recorded batches. Bottom: the "
               "size of each update relative to the weight it changes; around 1e-3 (the dotted line) is "
               "typical for healthy training, far above it is unstable, far below it barely learns. The "
               "table gives the update ratio's mean by epoch.")
    body = (_figure("gradients", pictures.gradients(records), "gradient norms and update ratios", caption)
            + _by_epoch_table("update_ratio", records, "parameters", "update_ratio"))
    return _section("gradients", "Gradients and updates", body)


def _weights_section(records: dict) -> tuple | None:
    weights = records.get("weights") or {}
    if "last" not in weights or not weights["last"]["histograms"]:
        return None
    caption = ("How the values of each weight matrix are spread, after the first epoch (blue) and after the "
               "last (red). Weights that spread out have learned; a histogram that has not moved, or one "
               "whose values run far out, is worth a look.")
    return _section("weights", "Weights",
                    _figure("histograms", pictures.weight_histograms(weights), "weight histograms", caption))


def _filters_section(model, image_shape) -> tuple | None:
    try:
        images = filters(model, image_shape)
    except ValueError:
        return None
    path, layer = first_layer(model)
    shown = images[:FILTERS_SHOWN]
    title = f"{path} {type(layer).__name__}: {len(shown)} of {len(images)} filters"
    caption = ("Each square is one unit of the first layer, drawn as an input image: red where a bright "
               "input pixel raises the unit's value, blue where it lowers it. Smooth strokes and blobs are "
               "features the unit has learned to look for; noise means it has learned little.")
    return _section("filters", "What the first layer looks for",
                    _figure("filters", pictures.filters(shown, title), "first-layer filters as images",
                            caption))


def _confusion_section(matrix: np.ndarray) -> tuple:
    k = len(matrix)
    diagonal_max = max(int(np.diag(matrix).max()), 1)
    off = matrix - np.diag(np.diag(matrix))
    off_max = max(int(off.max()), 1)
    head = ("<tr><th style=\"white-space:nowrap\">true \\ said</th>"
            + "".join(f"<th>{j}</th>" for j in range(k)) + "<th>accuracy</th></tr>")
    rows = []
    for i in range(k):
        cells = []
        for j in range(k):
            count = int(matrix[i, j])
            alpha = count / (diagonal_max if i == j else off_max)
            colour = (33, 102, 172) if i == j else (200, 40, 40)
            style = f"background:rgba({colour[0]},{colour[1]},{colour[2]},{alpha:.2f})" + (
                ";color:#fff" if alpha > 0.55 else "")
            cells.append(_cell(count, style))
        total = int(matrix[i].sum())
        cells.append(_cell(matrix[i, i] / total if total else None))
        rows.append(f'<tr><th>{i}</th>{"".join(cells)}</tr>')
    table = f'<div class="scroll"><table data-table="confusion">{head}{"".join(rows)}</table></div>'
    accuracy = np.trace(matrix) / matrix.sum()
    text = (f"<p>Accuracy {_number(float(accuracy))} on {int(matrix.sum())} samples. Row = the true class, "
            "column = the class the model chose; the diagonal (blue) is right, red cells off it are "
            "mistakes, darker where there are more. The last column is each class's accuracy.</p>")
    return _section("confusion", "Confusion matrix", text + table)


def _mistakes_section(model, x, y, image_shape) -> tuple | None:
    mistakes = confident_mistakes(model, x, y, k=MISTAKES_SHOWN)
    if not len(mistakes):
        return _section("mistakes", "Most confident mistakes",
                        "<p>The model classifies every sample right.</p>")
    captions = [f"#{i}: true {t}, said {p} ({c:.1%})" for i, t, p, c in
                zip(mistakes.index, mistakes.true, mistakes.predicted, mistakes.confidence)]
    rows = [(str(i), [int(t), int(p), float(c)]) for i, t, p, c in
            zip(mistakes.index, mistakes.true, mistakes.predicted, mistakes.confidence)]
    table = _table("mistakes", ["sample", "true", "predicted", "confidence"], rows)
    body = "<p>The wrong answers the model was surest of, surest first.</p>"
    if image_shape is not None:
        images = x[mistakes.index].reshape(-1, *image_shape)
        caption = ("Each image with its sample number, its true class, the model's answer and the "
                   "probability the model gave that answer. Mislabelled or ambiguous samples show up here, "
                   "and so do the shapes the model has not learned.")
        labels = [c.replace(", said", "\nsaid") for c in captions]
        body += _figure("mistakes", pictures.labelled_images(images, labels, "most confident mistakes"),
                        "most confident mistakes", caption)
    return _section("mistakes", "Most confident mistakes", body + table)


def _saliency_section(model, x, image_shape) -> tuple:
    n = min(SALIENCY_SHOWN, len(x))
    chosen = probabilities(model, x[:n]).argmax(axis=1)
    maps = saliency(model, x[:n], chosen)
    images = x[:n].reshape(-1, *image_shape)
    captions = [f"#{i}: said {c}" for i, c in enumerate(chosen)]
    caption = ("Left: an input; right: how strongly each pixel moves the score of the class the model chose "
               "(the size of the gradient of that score with respect to the pixel). Bright pixels decided "
               "the answer.")
    return _section("saliency", "Which pixels decided",
                    _figure("saliency", pictures.saliency_maps(images, maps.reshape(-1, *image_shape),
                                                               captions, "saliency of the first samples"),
                            "saliency maps", caption))


# ---- findings -------------------------------------------------------------------------------------


def findings(history=None, records=None) -> list[tuple[bool, str]]:
    """Plain sentences about what the numbers show: [(is_warning, sentence)]."""
    found = []
    if history and history.get("val_loss"):
        val = history["val_loss"]
        best = int(np.argmin(val))
        if best < len(val) - 1 and val[-1] > 1.1 * val[best]:
            found.append((True, f"Validation loss was lowest at epoch {best + 1} ({val[best]:.4g}) and rose "
                                f"to {val[-1]:.4g} by the end: the network has started to overfit."))
    if records and records["step"]:
        last = max(records["epoch"])
        for path, stats in records["layers"].items():
            for key, what, limit in (("dead", "dead units", 0.25), ("saturated", "saturated outputs", 0.25)):
                if key in stats:
                    value = dict(by_epoch(records, "layers", path, key)).get(last)
                    if value is not None:
                        found.append((value > limit, f"{path} {stats['kind']}: {value:.1%} {what} in epoch "
                                                     f"{last}."))
        ratios = [v for stats in records["parameters"].values() if len(stats.get("shape", ())) >= 2
                  for e, v in zip(records["epoch"], stats["update_ratio"]) if e == last and v is not None]
        if ratios:
            median = float(np.median(ratios))
            rates = [r for r in (history or {}).get("learning_rate", []) if r is not None]
            scheduled = len(rates) > 1 and rates[-1] < 0.1 * rates[0]
            verdict = (" (large next to the usual ~1e-3: if the loss jumps about, lower the learning rate)"
                       if median > 3e-2 else "" if median >= 1e-4 else
                       f" (small, as the schedule has lowered the learning rate from {rates[0]:.2g} to "
                       f"{rates[-1]:.2g})"
                       if scheduled else " (tiny: the weights barely move)")
            found.append((bool(verdict) and not (median < 1e-4 and scheduled),
                          f"Median update-to-weight ratio of the weight matrices in epoch {last}: "
                          f"{median:.2g}{verdict}."))
    return found


# ---- the report -----------------------------------------------------------------------------------


def _image_shape(model, x, image_shape):
    """The shape of one input image, or None when the inputs are not images (tabular data)."""
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) not in (2, 3) or min(image_shape) < 1:
            raise ValueError(f"report: image_shape must be (height, width) or (height, width, channels), "
                             f"got {image_shape}")
        if x is not None and math.prod(image_shape) != math.prod(x.shape[1:]):
            raise ValueError(f"report: image_shape {image_shape} holds {math.prod(image_shape)} values, but "
                             f"the samples of the data are shaped {x.shape[1:]} ({math.prod(x.shape[1:])} "
                             "values)")
        return image_shape
    if x is not None and x.ndim in (3, 4):
        return x.shape[1:]
    return None


def _check_records(records) -> None:
    keys = ("step", "epoch", "batch", "layers", "parameters")
    if not isinstance(records, dict) or any(key not in records for key in keys):
        raise ValueError("report: records must be the records of a diagnostics.Monitor (monitor.records), "
                         f"with keys {', '.join(keys)}; got {type(records).__name__}")
    for key, kind in (("step", list), ("epoch", list), ("batch", list), ("layers", dict),
                      ("parameters", dict)):
        if not isinstance(records[key], kind):
            raise ValueError(f"report: records[{key!r}] is a {type(records[key]).__name__}; "
                             f"expected a {kind.__name__}")
    _check_numbers(records, ("step", "epoch", "batch"), "records")


def _check_numbers(table: dict, keys, name: str) -> None:
    """Each of ``keys`` in ``table`` is a list of numbers (or None): ValueError naming the first bad entry."""
    for key in keys:
        values = table.get(key, [])
        bad = [-1] if not isinstance(values, list) else [i for i, v in enumerate(values)
                                                         if v is not None and type(v) not in (int, float)][:1]
        if bad:
            where, what = ((f"{name}[{key!r}]", values) if bad[0] < 0 else
                           (f"{name}[{key!r}][{bad[0]}]", values[bad[0]]))
            raise ValueError(f"report: {where} is {type(what).__name__} {str(what)[:40]!r}; expected numbers")


def _check_history(history) -> None:
    if not isinstance(history, dict):
        raise ValueError(f"report: history must be fit's history (a dict), got {type(history).__name__}")
    _check_numbers(history, ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"), "history")


def report(path, model, *, history=None, records=None, data=None, image_shape=None,
           title: str = "What the network is doing") -> Path:
    """Write one self-contained HTML file at ``path`` about ``model`` -> the path written.

    - ``history``: ``fit``'s history: training curves;
    - ``records``: ``diagnostics.Monitor().records``: dead and saturated units, layer outputs,
      gradients and updates, weight histograms;
    - ``data=(x, y)``: test samples and int labels: confusion matrix, most confident mistakes,
      saliency maps;
    - ``image_shape``: the shape of one input image ((h, w) or (h, w, c)) for flat image data;
      image data shaped (n, h, w[, c]) needs none. Without images (tabular data) no image
      section is drawn.

    Sections without their input are listed at the top of the report with the reason. The file
    is written atomically: after an error the path holds what it held before.
    """
    path = check_output_path(path)
    check_layer(model, "report: the model")
    if records is not None:
        _check_records(records)
    if history is not None:
        _check_history(history)
    x = y = None
    classify = False
    if data is not None:
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise TypeError(f"report: data must be a pair (x, y), got {type(data).__name__}")
        x, labels = data
        classify = np.issubdtype(np.asarray(labels).dtype, np.integer)
        x, y = check_data(model, x, labels if classify else None, who="report")
    image_shape = _image_shape(model, x, image_shape)

    sections, missing = [], []
    sections.append(_model_section(model, x.shape[1:] if x is not None else None))
    if history is not None and history.get("loss"):
        sections.append(_training_section(history))
    else:
        missing.append(("Training curves", "no history was given (pass history=, the second result of "
                                           "optim.fit)."))
    if records is not None and records["step"]:
        for make in (_units_section, _outputs_section, _gradients_section, _weights_section):
            section = make(records)
            if section is not None:
                sections.append(section)
        if not any("dead" in s or "saturated" in s for s in records["layers"].values()):
            missing.append(("Dead and saturated units", "the model has no ReLU, Sigmoid or Tanh layer."))
        if "last" not in (records.get("weights") or {}):
            missing.append(("Weights", "no epoch had ended when the statistics were recorded."))
    else:
        why = ("no statistics were recorded" if records is None else "the records hold no recorded batch")
        missing.append(("Dead and saturated units, layer outputs, gradients and updates, weights",
                        f"{why}: train with callbacks=[diagnostics.Monitor()] and pass "
                        "records=monitor.records (examples/mnist.py --report does this)."))
    if image_shape is not None or _first_is_conv(model):
        section = _filters_section(model, image_shape)
        if section is not None:
            sections.append(section)
        else:
            missing.append(("What the first layer looks for",
                            "the first layer with parameters is not a Dense or Conv2D reading the images."))
    if x is not None and classify:
        p = probabilities(model, x)
        sections.append(_confusion_section(count_confusions(y, p.argmax(axis=1), p.shape[1])))
        sections.append(_mistakes_section(model, x, y, image_shape))
        if image_shape is not None:
            sections.append(_saliency_section(model, x, image_shape))
    elif x is not None:
        missing.append(("Confusion matrix, mistakes", "the labels are not int classes (a regression)."))
    else:
        missing.append(("Confusion matrix, mistakes, saliency",
                        "no data was given (pass data=(x_test, y_test))."))
    if image_shape is None:
        missing.append(("Pictures of the inputs (filters, mistakes' images, saliency)",
                        "the inputs are not images (flat image data needs image_shape=(height, width))."))

    page = _page(title, sections, missing, findings(history, records),
                 {"history": history, "records": records})
    write_atomically(path, lambda file: file.write(page.encode("utf-8")))
    return path


def _first_is_conv(model) -> bool:
    try:
        return is_conv(first_layer(model)[1])
    except ValueError:
        return False


def _page(title: str, sections: list, missing: list, found: list, recorded: dict) -> str:
    nav = "".join(f'<a href="#{key}">{_e(name)}</a>' for key, name, _ in sections)
    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
             f'<meta name="viewport" content="width=device-width, initial-scale=1">'
             f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{_e(title)}</h1><nav>{nav}</nav>"]
    if found:
        items = "".join(f'<li class="{"warn" if warn else "ok"}">{_e(text)}</li>' for warn, text in found)
        parts.append(f'<h2 id="findings">Findings</h2><ul class="findings">{items}</ul>')
    if missing:
        items = "".join(f"<li><b>{_e(name)}</b>: {_e(why)}</li>" for name, why in missing)
        parts.append(f'<div class="missing" data-missing><b>Not in this report</b><ul>{items}</ul></div>')
    for key, name, body in sections:
        parts.append(f'<section id="{key}"><h2>{_e(name)}</h2>{body}</section>')
    recorded = json.dumps(_finite(recorded), allow_nan=False, default=_json_default).replace("<", "\\u003c")
    parts.append(f'<script type="application/json" id="lamina-data">{recorded}</script></body></html>')
    return "".join(parts)


def _finite(value):
    """``value`` with every NaN or infinity replaced by None (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"report: cannot write {type(value).__name__} as JSON")

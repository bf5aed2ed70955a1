"""lamina.diagnostics: what a network is doing, as numbers (NumPy only), pictures (matplotlib) and one HTML
report.

- ``Monitor(every=...)``: a ``fit`` callback recording per layer and per parameter statistics;
- ``filters``, ``confusion_matrix``, ``confident_mistakes``, ``saliency``, ``weight_histograms``:
  functions on a trained model (and data);
- ``report(path, model, *, history, records, data, image_shape)``: the self-contained HTML file;
  ``python -m lamina.diagnostics MODEL.npz --data mnist --out report.html`` makes one for a saved model.
"""

from lamina.diagnostics.classification import Mistakes, confident_mistakes, confusion_matrix, count_confusions
from lamina.diagnostics.filter_images import filters, first_layer
from lamina.diagnostics.histograms import weight_histograms
from lamina.diagnostics.monitor import (DEFAULT_EVERY, Monitor, activation_statistics, by_epoch,
                                        parameter_statistics)
from lamina.diagnostics.html_report import check_output_path, findings, report
from lamina.diagnostics.saliency_maps import saliency

__all__ = [
    "Monitor", "DEFAULT_EVERY", "activation_statistics", "parameter_statistics", "by_epoch",
    "filters", "first_layer", "confusion_matrix", "count_confusions", "confident_mistakes", "Mistakes",
    "saliency", "weight_histograms", "report", "check_output_path", "findings",
]

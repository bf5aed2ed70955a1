"""python -m lamina.diagnostics MODEL.npz --data mnist --out report.html: the HTML report of a saved model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lamina import data as datasets
from lamina import layers
from lamina.diagnostics.html_report import check_output_path, report

DATA = {"mnist": (datasets.mnist, (28, 28)), "fashion-mnist": (datasets.fashion_mnist, (28, 28))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lamina.diagnostics",
                                description="Write a self-contained HTML report of a saved lamina model.")
    p.add_argument("model", type=Path, help="a model file (layers.save) or a checkpoint file")
    p.add_argument("--data", choices=sorted(DATA), default=None,
                   help="test set for the confusion matrix, mistakes and saliency (none: no data sections)")
    p.add_argument("--samples", type=int, default=None, help="use only the first N test samples")
    p.add_argument("--out", type=Path, default=Path("report.html"), help="the HTML file to write")
    args = p.parse_args(argv)
    try:
        check_output_path(args.out)
    except OSError as error:
        p.error(str(error))
    try:
        return _write(args)
    except Exception as error:      # any bad file: one line, never a traceback
        text = " ".join(str(error).split())[:400] or type(error).__name__
        print(f"python -m lamina.diagnostics: {args.model}: {type(error).__name__}: {text}", file=sys.stderr)
        return 1


def _write(args) -> int:
    """Load, read the data, write the report -> 0."""
    model = layers.load(args.model)
    extra = layers.load_extra(args.model)
    if not isinstance(extra.get("history", {}), dict) or not isinstance(extra.get("diagnostics", {}), dict):
        raise ValueError("the file's history and diagnostics must be dicts (fit's history, "
                         "Monitor's records)")
    data = image_shape = None
    if args.data is not None:
        load, image_shape = DATA[args.data]
        _, (x_test, y_test) = load()
        if args.samples is not None:
            x_test, y_test = x_test[:args.samples], y_test[:args.samples]
        data = (x_test, y_test)
    written = report(args.out, model, history=extra.get("history"), records=extra.get("diagnostics"),
                     data=data, image_shape=image_shape,
                     title=f"{args.model.name}: what the network is doing")
    print(f"wrote {written} ({written.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

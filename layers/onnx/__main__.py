"""python -m lamina.layers.onnx MODEL.npz --out model.onnx --input-shape 784: a saved model as ONNX."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lamina import layers


def shape(text: str) -> tuple:
    """'784' -> (784,); '28,28,1' -> (28, 28, 1); 'None,64' or '?,64' -> (None, 64) (a dynamic axis)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return tuple(None if part in ("None", "?") else int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a per-sample shape such as 784 or 28,28,1 (None for a dynamic "
                                         f"axis), got {text!r}") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lamina.layers.onnx",
                                description="Write a saved lamina model's inference as an ONNX file.")
    p.add_argument("model", type=Path, help="a model file (layers.save) or a checkpoint file")
    p.add_argument("--out", type=Path, default=None,
                   help="the ONNX file to write (default: MODEL with .onnx)")
    p.add_argument("--input-shape", type=shape, action="append", required=True,
                   help="the per-sample input shape, e.g. 784 or 28,28,1 (once per part of a tuple input)")
    p.add_argument("--opset", type=int, default=17, help="the ONNX opset version (default 17)")
    args = p.parse_args(argv)
    out = args.out or args.model.with_suffix(".onnx")
    input_shape = args.input_shape[0] if len(args.input_shape) == 1 else tuple(args.input_shape)
    try:
        layers.export_onnx(layers.load(args.model), out, input_shape, opset=args.opset)
    except (OSError, ValueError, TypeError, ImportError) as error:
        sys.exit(f"python -m lamina.layers.onnx: {error}")       # one line on stderr, exit status 1
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

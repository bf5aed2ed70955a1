"""export_onnx: a model's inference (EVAL) as an ONNX file, checked, then written atomically."""

from __future__ import annotations

import errno
import os

import numpy as np

from lamina.layers.files.atomic import write_atomically
from lamina.layers.combinator import Combinator
from lamina.layers.layer import check_layer, model_dtype, output_shape_of, takes_ids
from lamina.layers.onnx.forms import load
from lamina.layers.onnx.graph import MIN_OPSET, Graph
from lamina.layers.onnx.simplify import cancel_transposes
from lamina.layers.parallel import Parallel
from lamina.layers.settings import is_int


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("export_onnx needs onnx: pip install 'lamina[onnx]' (or pip install onnx)"
                          ) from None
    return onnx


def _one_shape(shape, where: str) -> tuple:
    """A per-sample shape as a tuple of positive ints and None (a dynamic axis)."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) or shape is None else tuple(shape)
    for size in shape:
        if size is not None and not (is_int(size) and size >= 1):
            raise ValueError(f"export_onnx: {where} must hold positive ints (or None for a dynamic axis), "
                             f"got {shape!r}")
    return tuple(None if size is None else int(size) for size in shape)


def input_shapes(input_shape) -> tuple[list, bool]:
    """([per-sample shape, ...], whether the input is a tuple) of 784, (28, 28, 1) or ((3,), (5,))."""
    if isinstance(input_shape, (tuple, list)) and input_shape and all(
            isinstance(part, (tuple, list)) for part in input_shape):
        return [_one_shape(part, f"input_shape[{i}]") for i, part in enumerate(input_shape)], True
    return [_one_shape(input_shape, "input_shape")], False


def _check_target(path, opset: int, newest: int) -> str:
    """The path as a string, after checking the opset and that the path's folder exists."""
    if not (is_int(opset) and MIN_OPSET <= opset <= newest):
        raise ValueError(f"export_onnx: opset must be an int from {MIN_OPSET} to {newest} (the newest this "
                         f"onnx package knows), got {opset!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"export_onnx: the folder of {path!r} does not exist", folder)
    return path


def _value_info(onnx, name: str, dtype, shape, dynamic: str):
    """A graph input or output: axis 0 'batch', each None axis a named dynamic axis (shape None: unknown)."""
    if shape is None:
        dims = None
    else:
        dims = ["batch", *(f"{dynamic}_axis{i + 1}" if s is None else s for i, s in enumerate(shape))]
    element = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return onnx.helper.make_tensor_value_info(name, element, dims)


def ids_inputs(model, count: int, is_tuple: bool) -> list[bool]:
    """Which inputs are ids (int64 in the file); a tuple's by the branches of the first Parallel inside."""
    if not is_tuple:
        return [takes_ids(model)]
    first = model
    while isinstance(first, Combinator) and not isinstance(first, Parallel) and first.children():
        first = first.children()[0][1]
    if isinstance(first, Parallel):
        return [takes_ids(branch) for branch in first.branches]
    return [takes_ids(model)] * count


def _names(stem: str, count: int, is_tuple: bool) -> list[str]:
    return [f"{stem}_{i}" for i in range(count)] if is_tuple else [stem]


def build(model, input_shape, opset: int = 17, dtype=None):
    """The ONNX ModelProto of the model's inference, checked by ``onnx.checker`` (nothing written)."""
    onnx = _import_onnx()
    check_layer(model, "export_onnx: the model")
    shapes, is_tuple = input_shapes(input_shape)
    output_shape = output_shape_of(model, list(shapes) if is_tuple else shapes[0])   # ShapeError: no fit
    dtype = np.dtype(dtype or model_dtype(model) or np.float32)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"export_onnx: the file computes in float32 or float64, got dtype {dtype}")
    graph = Graph(dtype, opset, load())
    inputs = _names("input", len(shapes), is_tuple)
    x = tuple(inputs) if is_tuple else inputs[0]
    y = graph.layer(model, x, "")
    ys = list(y) if isinstance(y, tuple) else [y]
    outputs = _names("output", len(ys), isinstance(y, tuple))
    for value, name in zip(ys, outputs):
        graph.nodes.append(("Identity", [value], [name], {}))
    out_shapes = list(output_shape) if isinstance(output_shape, list) else [output_shape] * len(ys)
    helper = onnx.helper
    proto = helper.make_model(
        helper.make_graph(
            [helper.make_node(op, ins, outs, name=outs[0], **attributes)
             for op, ins, outs, attributes in cancel_transposes(graph.nodes, outputs)],
            "lamina",
            [_value_info(onnx, name, np.int64 if ids else dtype, shape, name)
             for name, shape, ids in zip(inputs, shapes, ids_inputs(model, len(shapes), is_tuple))],
            [_value_info(onnx, name, dtype, shape, name) for name, shape in zip(outputs, out_shapes)],
            [onnx.numpy_helper.from_array(array, name) for name, array in graph.initializers.items()]),
        producer_name="lamina", opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)   # outputs lamina cannot tell
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, input_shape, *, opset: int = 17, dtype=None) -> None:
    """Write the model's inference as the ONNX file ``path``: input(s) ``input`` / ``input_0``, ...,
    output(s) ``output`` / ``output_0``, ...; ``input_shape`` per sample (a tuple of shapes for a tuple
    input), the batch axis and every None axis dynamic; the weights as initializers named by their paths, a
    shared array once.
    The file computes in ``dtype``: by default the model's (float32 for a model without arrays); float32 for a
    float64 model gives a file that onnxruntime runs everywhere (it has no float64 Conv, AveragePool or RNNs).

    Every check runs before anything is written; the file appears whole or not at all.
    """
    onnx = _import_onnx()
    path = _check_target(path, opset, onnx.defs.onnx_opset_version())
    data = build(model, input_shape, opset, dtype).SerializeToString()
    write_atomically(path, lambda file: file.write(data))

"""ONNX export: ``export_onnx(model, path, input_shape, *, opset=17)`` writes a model's inference to a file.

The built-in layers' ONNX forms live here, one module per family; a user layer exports itself with a
method ``to_onnx(self, graph, x) -> y`` that adds its nodes to ``graph`` (a ``Graph``: ``add_node``,
``add_initializer``, ``constant``, ``fresh``, and ``layer(child, x, path)`` for a combinator's children).
Nothing here imports ``onnx`` until a file is exported: it is an extra, ``pip install 'lamina[onnx]'``.
"""

from lamina.layers.onnx.export import export_onnx
from lamina.layers.onnx.graph import Graph

__all__ = ["Graph", "export_onnx"]

"""layers.export_onnx: every built-in layer and combinator, run by onnxruntime, gives lamina's outputs.

float32 within max|a - b| / max|b| <= 1e-5, float64 within 1e-12 (where onnxruntime has double kernels:
not for Conv and AveragePool); two batch sizes per model; onnx.checker passes on every file; bad input
gives its error before anything is written; an interrupted write leaves no file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import attrs
import numpy as np
import onnx
import onnxruntime
import pytest

from lamina import layers
import user_layers
from test_examples import example

TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
largest = {}   # the largest relative difference per dtype, printed by the last test


def run_onnx(path, *xs):
    """The outputs onnxruntime computes from the file for inputs ``xs``."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, xs)))


def relative(a, b) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), np.finfo(b.dtype).tiny))


def assert_exports(model, input_shape, batches, tmp_path, name="model.onnx", **options):
    """Export, check the file, and compare onnxruntime with lamina on every batch (an array or a tuple of
    arrays, outputs alike); the ONNX model."""
    path = tmp_path / name
    parts = batches[0] if type(batches[0]) is tuple else (batches[0],)
    floats = [x.dtype for x in parts if x.dtype.kind == "f"]
    layers.export_onnx(model, path, input_shape, dtype=(floats or [None])[0], **options)
    onnx.checker.check_model(str(path), full_check=True)
    for x in batches:
        expected = model(x)
        expected = expected if type(expected) is tuple else (expected,)
        got = run_onnx(path, *(x if type(x) is tuple else (x,)))
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert a.shape == b.shape and a.dtype == b.dtype
            error = relative(a, b)
            largest[b.dtype] = max(largest.get(b.dtype, 0.0), error)
            assert error <= TOLERANCE[b.dtype], (model, a.shape, error)
    return onnx.load(str(path))


def batches(rng, shape, sizes=(5, 2), dtype=np.float32):
    """Random inputs of per-sample ``shape`` at two batch sizes."""
    return [rng.normal(size=(n, *shape)).astype(dtype) for n in sizes]


def batch_norm(rng, n, dtype):
    """A BatchNorm whose running statistics are not the initial ones."""
    return layers.BatchNorm(weight=rng.normal(size=n).astype(dtype), bias=rng.normal(size=n).astype(dtype),
                            running_mean=rng.normal(size=n).astype(dtype),
                            running_var=rng.uniform(0.5, 2.0, size=n).astype(dtype))


def dense_layers(rng, dtype):
    """(id, model, per-sample input shape) of the layers onnxruntime runs in float32 and float64."""
    def dense(n_in, n_out):
        return layers.Dense(weight=rng.normal(size=(n_in, n_out)).astype(dtype),
                            bias=rng.normal(size=n_out).astype(dtype))
    norm = layers.LayerNorm(weight=rng.normal(size=6).astype(dtype), bias=rng.normal(size=6).astype(dtype))
    return [
        ("Dense", dense(6, 4), (6,)),
        ("ReLU", layers.ReLU(), (6,)),
        ("Sigmoid", layers.Sigmoid(), (6,)),
        ("Tanh", layers.Tanh(), (6,)),
        ("LeakyReLU", layers.LeakyReLU(0.2), (6,)),
        ("GELU", layers.GELU(), (6,)),
        ("Identity", layers.Identity(), (6,)),
        ("Dropout", layers.Dropout(0.3), (6,)),
        ("BatchNorm", batch_norm(rng, 6, dtype), (6,)),
        ("BatchNorm-images", batch_norm(rng, 3, dtype), (4, 5, 3)),
        ("LayerNorm", norm, (6,)),
        ("LayerNorm-images", norm, (4, 5, 6)),
        ("GlobalAvgPool2D", layers.GlobalAvgPool2D(), (4, 5, 3)),
        ("MaxPool2D", layers.MaxPool2D(), (6, 5, 3)),
        ("MaxPool2D-stride", layers.MaxPool2D(3, stride=(1, 2)), (6, 7, 2)),
        ("MaxPool2D-padding", layers.MaxPool2D(3, stride=2, padding=(1, 0)), (6, 7, 2)),
        ("MaxPool2D-same", layers.MaxPool2D(3, stride=1, padding="same"), (5, 4, 2)),
        ("Flatten", layers.Flatten(), (4, 5, 3)),
        ("Reshape", layers.Reshape((-1, 2)), (6,)),
        ("Sequence", layers.Sequence([dense(6, 8), layers.GELU(), dense(8, 3)]), (6,)),
        ("Residual", layers.Residual(layers.Sequence([dense(6, 6), layers.Tanh()])), (6,)),
        ("Residual-shortcut", layers.Residual(dense(6, 4), shortcut=dense(6, 4)), (6,)),
        ("Concat", layers.Concat([dense(6, 2), layers.Sigmoid(), layers.Sequence([dense(6, 3)])]), (6,)),
    ]


def conv_layers(rng):
    """(id, model, per-sample input shape) of the layers onnxruntime runs in float32 only."""
    return [
        ("Conv2D", layers.Conv2D.init(rng, 3, 4, 3), (6, 7, 3)),
        ("Conv2D-same-even", layers.Conv2D.init(rng, 2, 3, (2, 4), padding="same"), (5, 6, 2)),
        ("Conv2D-stride-padding", layers.Conv2D.init(rng, 2, 3, 3, stride=(2, 1), padding=(1, 2)), (7, 6, 2)),
        ("AvgPool2D", layers.AvgPool2D(), (6, 5, 3)),
        ("AvgPool2D-stride", layers.AvgPool2D((2, 3), stride=1), (6, 5, 3)),
        ("AvgPool2D-padding", layers.AvgPool2D(3, stride=2, padding=1), (6, 5, 3)),
    ]


def conv_bias(rng, layer):
    return attrs.evolve(layer, bias=rng.normal(size=layer.bias.shape).astype(layer.bias.dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which", [name for name, _, _ in dense_layers(np.random.default_rng(0), np.float32)])
def test_every_layer_and_combinator_gives_lamina_outputs(which, dtype, tmp_path):
    rng = np.random.default_rng(1)
    _, model, shape = next(entry for entry in dense_layers(rng, dtype) if entry[0] == which)
    assert_exports(model, shape, batches(rng, shape, dtype=dtype), tmp_path)


@pytest.mark.parametrize("which", [name for name, _, _ in conv_layers(np.random.default_rng(0))])
def test_convolutions_and_average_pools_give_lamina_outputs_in_float32(which, tmp_path):
    rng = np.random.default_rng(2)
    _, model, shape = next(entry for entry in conv_layers(rng) if entry[0] == which)
    if isinstance(model, layers.Conv2D):
        model = conv_bias(rng, model)
    assert_exports(model, shape, batches(rng, shape), tmp_path)


IDS = "ids"   # in a case's input kinds: integer ids (int64), else floats ("")
SEQ = (None, 4)   # a sequence of any length with 4 features


def sequence_layers(rng, dtype):
    """(id, model, per-sample input shape, input kinds) of the sequence layers and the combinators of tuples,
    first those onnxruntime runs in float64 too (FLOAT64_TOO of them)."""
    def init(kind, *args, **options):
        return kind.init(rng, *args, dtype=dtype, **options)
    embedding, dense = init(layers.Embedding, 11, 4), init(layers.Dense, 4, 3)
    mha, seq, fork, join = layers.MultiHeadAttention, layers.Sequence, layers.Fork, layers.Join
    return [
        ("Embedding", embedding, (None,), IDS),
        ("PositionalEmbedding", init(layers.PositionalEmbedding, 9, 4), SEQ, ""),
        ("LastStep", layers.LastStep(), SEQ, ""),
        ("GlobalAvgPool1D", layers.GlobalAvgPool1D(), SEQ, ""),
        ("GlobalMaxPool1D", layers.GlobalMaxPool1D(), SEQ, ""),
        ("MaxPool1D", layers.MaxPool1D(2), SEQ, ""),
        ("MaxPool1D-stride", layers.MaxPool1D(3, stride=1), SEQ, ""),
        ("MultiHeadAttention", init(mha, 4, 2), SEQ, ""),
        ("MultiHeadAttention-causal", init(mha, 4, 2, causal=True), SEQ, ""),
        ("Transposed-tied", layers.Sequence([embedding, layers.Transposed(embedding)]), (None,), IDS),
        ("Transposed-bias", layers.Sequence([dense, layers.Transposed.init(dense, bias=True)]), SEQ, ""),
        ("Fork", layers.Fork([dense, layers.Identity()]), SEQ, ""),
        ("Join-concat", seq([fork([dense, layers.Tanh()]), join("concat")]), SEQ, ""),
        ("Parallel-Join-sum", seq([layers.Parallel([dense, layers.Sigmoid()]), join("sum")]),
         (SEQ, (None, 3)), ("", "")),
        ("Parallel-ids", layers.Parallel([embedding, layers.Identity()]), ((None,), (None, 2)), (IDS, "")),
        ("Conv1D", init(layers.Conv1D, 4, 3, 3), SEQ, ""),
        ("Conv1D-causal-dilated", init(layers.Conv1D, 4, 3, 3, padding="causal", dilation=2), SEQ, ""),
        ("Conv1D-same-even", init(layers.Conv1D, 4, 3, 2, padding="same"), SEQ, ""),
        ("Conv1D-stride-padding", init(layers.Conv1D, 4, 3, 3, stride=2, padding=1), SEQ, ""),
        ("AvgPool1D", layers.AvgPool1D(3, stride=2), SEQ, ""),
        ("RNN", init(layers.RNN, 4, 5), SEQ, ""),
        ("RNN-relu", init(layers.RNN, 4, 5, nonlinearity="relu"), SEQ, ""),
        ("LSTM", init(layers.LSTM, 4, 5), SEQ, ""),
        ("GRU", init(layers.GRU, 4, 5), SEQ, ""),
        ("Bidirectional-LSTM", layers.Bidirectional.init(rng, layers.LSTM, 4, 3, dtype=dtype), SEQ, ""),
        ("Bidirectional-GRU-RNN", layers.Bidirectional(init(layers.GRU, 4, 3), init(layers.RNN, 4, 2)), SEQ,
         ""),
    ]


FLOAT64_TOO = 15   # onnxruntime has no double kernel for Conv, AveragePool, RNN, LSTM or GRU


def sequence_batches(rng, input_shape, kinds, dtype):
    """Inputs at two batch sizes and two sequence lengths (the None axis); a tuple for a tuple input."""
    def one(shape, kind, n, t):
        size = (n, *(t if s is None else s for s in shape))
        return rng.integers(0, 11, size=size) if kind == IDS else rng.normal(size=size).astype(dtype)
    sizes = ((3, 5), (2, 8))
    if type(kinds) is tuple:
        return [tuple(one(shape, kind, n, t) for shape, kind in zip(input_shape, kinds)) for n, t in sizes]
    return [one(input_shape, kinds, n, t) for n, t in sizes]


SEQUENCE_CASES = [(case[0], dtype)
                  for k, case in enumerate(sequence_layers(np.random.default_rng(0), np.float32))
                  for dtype in ([np.float32, np.float64] if k < FLOAT64_TOO else [np.float32])]


@pytest.mark.parametrize(("which", "dtype"), SEQUENCE_CASES)
def test_sequence_layers_give_lamina_outputs_at_two_lengths(which, dtype, tmp_path):
    """float64 too where onnxruntime has double kernels (not Conv, AveragePool, RNN, LSTM, GRU)."""
    rng = np.random.default_rng(12)
    _, model, shape, kinds = next(case for case in sequence_layers(rng, dtype) if case[0] == which)
    assert_exports(model, shape, sequence_batches(rng, shape, kinds, dtype), tmp_path)


def test_ids_tuples_and_tied_weights_in_the_file(tmp_path):
    rng = np.random.default_rng(13)
    embedding = layers.Embedding.init(rng, 11, 4)
    model = layers.Sequence([layers.Parallel([embedding, layers.Identity()]),
                             layers.Parallel([layers.Transposed(embedding), layers.Identity()])])
    x = (rng.integers(0, 11, (2, 6)), rng.normal(size=(2, 3)).astype(np.float32))
    exported = assert_exports(model, ((None,), (3,)), [x], tmp_path)
    graph = exported.graph
    assert [(i.name, i.type.tensor_type.elem_type) for i in graph.input] == [
        ("input_0", onnx.TensorProto.INT64), ("input_1", onnx.TensorProto.FLOAT)]
    assert [o.name for o in graph.output] == ["output_0", "output_1"]
    assert [i.name for i in graph.initializer if i.dims == [11, 4]] == ["layers[0].branches[0].weight"]


def test_transposes_that_undo_each_other_are_cut_out(tmp_path):
    """Conv2D then MaxPool2D: one Transpose to channels-first and one back (and the weight's), not 2 pairs."""
    rng = np.random.default_rng(16)
    conv = conv_bias(rng, layers.Conv2D.init(rng, 2, 3, 3))
    model = layers.Sequence([conv, layers.MaxPool2D(), layers.ReLU()])
    exported = assert_exports(model, (6, 6, 2), batches(rng, (6, 6, 2)), tmp_path)
    ops = [node.op_type for node in exported.graph.node]
    assert ops.count("Transpose") == 3 and ops.index("Conv") + 1 == ops.index("MaxPool")


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_older_and_newer_opsets_write_the_same_maths(opset, tmp_path):
    """ReduceMean and ReduceMax take their axes as an attribute before opset 18 and as an input from 18 on."""
    rng = np.random.default_rng(17)
    images = layers.Sequence([conv_bias(rng, layers.Conv2D.init(rng, 2, 3, 3)), layers.GlobalAvgPool2D(),
                              layers.Dense.init(rng, 3, 2)])
    assert_exports(images, (5, 5, 2), batches(rng, (5, 5, 2)), tmp_path, "images.onnx", opset=opset)
    sequences = layers.Sequence([layers.LayerNorm.init(4, dtype=np.float64), layers.GlobalMaxPool1D()])
    xs = sequence_batches(rng, SEQ, "", np.float64)
    assert_exports(sequences, SEQ, xs, tmp_path, "seq.onnx", opset=opset)


def test_a_float64_convolution_is_written_in_doubles(tmp_path):
    """onnxruntime has no double Conv kernel; the file is still a valid float64 model."""
    rng = np.random.default_rng(3)
    layers.export_onnx(layers.Conv2D.init(rng, 2, 3, 3, dtype=np.float64), tmp_path / "m.onnx", (5, 5, 2))
    model = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert {init.data_type for init in model.graph.initializer} == {onnx.TensorProto.DOUBLE}


def test_the_batch_axis_and_none_axes_are_dynamic_and_the_names_fixed(tmp_path):
    rng = np.random.default_rng(4)
    model = layers.Sequence([layers.LayerNorm.init(3), layers.ReLU()])
    xs = [rng.normal(size=shape).astype(np.float32) for shape in ((2, 4, 3), (1, 7, 3))]
    exported = assert_exports(model, (None, 3), xs, tmp_path)
    (inp,), (out,) = exported.graph.input, exported.graph.output
    assert inp.name == "input" and out.name == "output"
    dims = inp.type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "input_axis1", 3]
    assert {init.name for init in exported.graph.initializer} == {"layers[0].weight", "layers[0].bias"}


def test_a_record_placed_twice_is_stored_once(tmp_path):
    rng = np.random.default_rng(5)
    shared = layers.Dense.init(rng, 4, 4)
    model = layers.Sequence([shared, layers.Tanh(), shared, layers.Residual(shared)])
    exported = assert_exports(model, (4,), batches(rng, (4,)), tmp_path)
    assert sorted(init.name for init in exported.graph.initializer) == ["layers[0].bias", "layers[0].weight"]


def test_the_mlp_residual_mlp_and_cnn_of_the_examples_export(tmp_path):
    rng = np.random.default_rng(6)
    x = batches(rng, (784,), sizes=(3, 1))
    assert_exports(layers.mlp(rng, [784, 64, 10], activation=layers.ReLU), (784,), x, tmp_path, "mlp.onnx")
    residual = example("residual_mnist").build(rng, 784, 32, 2, 0.25, 10)
    residual = layers.map_buffers(lambda b: (b + rng.uniform(0.5, 1.0, b.shape)).astype(b.dtype), residual)
    assert_exports(residual, (784,), x, tmp_path, "residual.onnx")
    cnn_mnist = example("cnn_mnist")
    args = cnn_mnist.parser().parse_args(["--filters", "4", "8", "--dense", "16"])
    cnn = layers.map_parameters(lambda p: (p + rng.normal(0, 0.1, p.shape)).astype(p.dtype),
                                cnn_mnist.cnn(rng, args, 10))
    assert_exports(cnn, (784,), x, tmp_path, "cnn.onnx")


def gpt(rng, dtype, n_tokens=13, dim=8, heads=2, blocks=2, max_length=16):
    """A small GPT: token and position embeddings, pre-norm causal attention and GELU blocks, tied output."""
    embedding = layers.Embedding.init(rng, n_tokens, dim, dtype=dtype)

    def block():
        attention = layers.MultiHeadAttention.init(rng, dim, heads, causal=True, dtype=dtype)
        mlp = [layers.Dense.init(rng, dim, 4 * dim, dtype=dtype), layers.GELU(),
               layers.Dense.init(rng, 4 * dim, dim, dtype=dtype)]
        return [layers.Residual(layers.Sequence([layers.LayerNorm.init(dim, dtype=dtype), attention])),
                layers.Residual(layers.Sequence([layers.LayerNorm.init(dim, dtype=dtype), *mlp]))]
    return layers.Sequence([embedding, layers.PositionalEmbedding.init(rng, max_length, dim, dtype=dtype),
                            *[part for _ in range(blocks) for part in block()],
                            layers.LayerNorm.init(dim, dtype=dtype), layers.Transposed(embedding)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_small_gpt_gives_lamina_logits_at_two_lengths(dtype, tmp_path):
    rng = np.random.default_rng(14)
    model = gpt(rng, dtype)
    ids = [rng.integers(0, 13, size=size) for size in ((3, 5), (2, 16), (1, 1))]
    exported = assert_exports(model, (None,), ids, tmp_path)
    assert sum(i.dims == [13, 8] for i in exported.graph.initializer) == 1     # the tied embedding once


def test_a_float64_model_exports_in_float32_when_asked(tmp_path):
    """Operators onnxruntime runs in float32 only: the file in float32, lamina's outputs to its rounding."""
    rng = np.random.default_rng(15)
    model = layers.Sequence([layers.Conv1D.init(rng, 3, 4, 3, padding="causal", dtype=np.float64),
                             layers.LSTM.init(rng, 4, 5, dtype=np.float64), layers.AvgPool1D(2)])
    layers.export_onnx(model, tmp_path / "m.onnx", (None, 3), dtype=np.float32)
    x = rng.normal(size=(2, 6, 3))
    (got,) = run_onnx(tmp_path / "m.onnx", x.astype(np.float32))
    assert got.dtype == np.float32 and relative(got, model(x)) <= 1e-5


class ExportedScale(user_layers.Scale):
    """A user layer with its own ONNX form: y = x * gain."""

    def to_onnx(self, graph, x):
        return graph.add_node("Mul", [x, graph.add_initializer(self.gain, "gain")])


class ExportedGatedSum(user_layers.GatedSum):
    """A user combinator with its own ONNX form (its children's through graph.layer): a(x) * sigmoid(b(x))."""

    def to_onnx(self, graph, x):
        a, b = graph.layer(self.a, x, "a"), graph.layer(self.b, x, "b")
        return graph.add_node("Mul", [a, graph.add_node("Sigmoid", [b])])


def test_a_user_layer_and_a_user_combinator_export_themselves(tmp_path):
    rng = np.random.default_rng(7)
    b = layers.Sequence([ExportedScale(gain=rng.normal(size=5)), layers.Dense.init(rng, 5, 3, np.float64)])
    gated = ExportedGatedSum(a=layers.Dense.init(rng, 5, 3, np.float64), b=b)
    model = layers.Sequence([layers.Dense.init(rng, 4, 5, np.float64), gated])
    exported = assert_exports(model, (4,), batches(rng, (4,), dtype=np.float64), tmp_path)
    assert "layers[1].b.layers[0].gain" in {init.name for init in exported.graph.initializer}
    alone = ExportedScale(gain=rng.normal(size=5))       # a bare record: no output_shape, no __call__
    layers.export_onnx(alone, tmp_path / "alone.onnx", (5,))
    x = rng.normal(size=(2, 5))
    assert relative(run_onnx(tmp_path / "alone.onnx", x)[0], alone.forward(x, layers.EVAL)[0]) <= 1e-12


def nothing_written(tmp_path) -> bool:
    return os.listdir(tmp_path) == []


def test_a_layer_without_an_onnx_form_is_named_with_the_method_to_add(tmp_path):
    rng = np.random.default_rng(8)
    plain = types.new_class("Plain", (layers.Layer,), exec_body=lambda ns: ns.update(
        forward=lambda self, x, mode: (x, None), backward=lambda self, c, dy, mode: (dy, self)))
    model = layers.Sequence([layers.Dense.init(rng, 3, 3), attrs.frozen(plain)()])
    with pytest.raises(TypeError, match=r"layers\[1\] .*Plain has no ONNX form.*to_onnx\(self, graph, x\)"):
        layers.export_onnx(model, tmp_path / "m.onnx", (3,))
    assert nothing_written(tmp_path)


def test_bad_opsets_shapes_and_folders_are_refused_before_writing(tmp_path):
    rng = np.random.default_rng(9)
    model = layers.Sequence([layers.Dense.init(rng, 3, 3), layers.LayerNorm.init(3)])
    with pytest.raises(ValueError, match=r"layers\[1\]: LayerNorm .*needs ONNX opset 17.*opset=16"):
        layers.export_onnx(model, tmp_path / "m.onnx", (3,), opset=16)
    for opset in (12, 1000, 17.0, True):
        with pytest.raises(ValueError, match="opset must be an int from 13"):
            layers.export_onnx(model, tmp_path / "m.onnx", (3,), opset=opset)
    with pytest.raises(layers.ShapeError, match=r"layers\[0\] Dense\(3 -> 3.*expects input \(n, 3\).*(n, 4)"):
        layers.export_onnx(model, tmp_path / "m.onnx", (4,))
    for shape in ((0,), (-3,), ("3",), (3.0,)):
        with pytest.raises(ValueError, match="input_shape must hold positive ints"):
            layers.export_onnx(model, tmp_path / "m.onnx", shape)
    with pytest.raises(FileNotFoundError, match="does not exist") as error:
        layers.export_onnx(model, tmp_path / "missing" / "m.onnx", (3,))
    assert error.value.filename == str(tmp_path / "missing")
    assert nothing_written(tmp_path)
    layers.export_onnx(model, tmp_path / "m.onnx", 3, opset=17)     # an int is a one-axis shape
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_an_interrupted_write_leaves_the_old_file_and_no_other(tmp_path, monkeypatch):
    rng = np.random.default_rng(10)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)        # after the bytes are written, before the rename
    with pytest.raises(KeyboardInterrupt):
        layers.export_onnx(layers.mlp(rng, [3, 4, 2]), path, (3,))
    assert os.listdir(tmp_path) == ["m.onnx"] and path.read_bytes() == b"old"


def test_importing_lamina_layers_does_not_import_onnx():
    code = "import sys, lamina.layers; print('onnx' in sys.modules, 'onnxruntime' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_the_command_line_exports_a_saved_model_and_refuses_a_bad_file(tmp_path):
    rng = np.random.default_rng(11)
    model = layers.mlp(rng, [5, 4, 3])
    layers.save(tmp_path / "m.npz", model)
    command = [sys.executable, "-m", "lamina.layers.onnx"]
    done = subprocess.run([*command, str(tmp_path / "m.npz"), "--input-shape", "5"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    x = rng.normal(size=(3, 5)).astype(np.float32)
    assert relative(run_onnx(tmp_path / "m.onnx", x)[0], model(x)) <= 1e-5
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    bad = subprocess.run([*command, str(tmp_path / "bad.npz"), "--input-shape", "5"], capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "bad.npz" in bad.stderr
    assert not (tmp_path / "bad.onnx").exists()


def test_the_mnist_example_writes_an_onnx_file_with_its_predictions(tmp_path):
    mnist = example("mnist")
    out, path = tmp_path / "m.npz", tmp_path / "m.onnx"
    argv = ["--epochs", "1", "--limit", "600", "--hidden", "16", "--out", str(out), "--onnx", str(path),
            "--no-progress"]
    example("classifier").main(argv, mnist.data.mnist, "MNIST", "unused.npz")
    x = mnist.data.mnist()[1][0][:500]
    assert (run_onnx(path, x)[0].argmax(axis=1) == layers.load(out)(x).argmax(axis=1)).all()


def test_zz_largest_differences_measured():
    """Prints the largest relative differences of this run (read with pytest -s)."""
    print({str(dtype): f"{error:.2e}" for dtype, error in largest.items()})
    assert all(error <= TOLERANCE[dtype] for dtype, error in largest.items())

"""lamina.layers: layer records, combinators, modes, shape and gradient checks, model files and error
types."""

from lamina.layers.activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from lamina.layers.attention import MultiHeadAttention
from lamina.layers.batch_norm import BatchNorm
from lamina.layers.bidirectional import Bidirectional
from lamina.layers.concat import Concat
from lamina.layers.combinator import Combinator, add_input_grads
from lamina.layers.conv1d import Conv1D
from lamina.layers.fork import Fork
from lamina.layers.join import Join
from lamina.layers.parallel import Parallel
from lamina.layers.transposed import Transposed
from lamina.layers.conv2d import Conv2D
from lamina.layers.dense import Dense
from lamina.layers.dropout import Dropout
from lamina.layers.embedding import Embedding
from lamina.layers.errors import LayerError, ModelFileError, ShapeError, StructureError
from lamina.layers.files.model_file import load, load_extra, save
from lamina.layers.generation import generate
from lamina.layers.gradient_check import (
    GradientCheckError,
    check_gradients,
    check_loss_gradient,
    gradient_errors,
    loss_gradient_error,
)
from lamina.layers.last_step import LastStep
from lamina.layers.layer import Layer, takes_ids
from lamina.layers.layer_norm import LayerNorm
from lamina.layers.mode import EVAL, TRAIN, Mode
from lamina.layers.onnx import export_onnx
from lamina.layers.multilayer import mlp
from lamina.layers.records.parameter import buffer, constant, param
from lamina.layers.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from lamina.layers.pooling1d import AvgPool1D, GlobalAvgPool1D, GlobalMaxPool1D, MaxPool1D
from lamina.layers.positional_embedding import PositionalEmbedding
from lamina.layers.records.registry import register
from lamina.layers.reshape import Flatten, Reshape
from lamina.layers.residual import Residual
from lamina.layers.sequence import Sequence
from lamina.layers.recurrent import GRU, LSTM, RNN
from lamina.layers.records.tree import (
    buffers,
    fold_gradients,
    map_buffers,
    map_parameters,
    named_buffers,
    named_parameters,
    parameters,
    update_buffers,
)

__all__ = [
    "Layer", "Mode", "TRAIN", "EVAL", "param", "buffer", "constant",
    "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Identity",
    "Dropout", "BatchNorm", "LayerNorm",
    "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Reshape",
    "Embedding", "PositionalEmbedding", "LastStep", "takes_ids",
    "Conv1D", "MaxPool1D", "AvgPool1D", "GlobalAvgPool1D", "GlobalMaxPool1D",
    "Sequence", "Residual", "Concat", "Fork", "Parallel", "Join", "Transposed", "Combinator",
    "add_input_grads", "mlp", "fold_gradients",
    "RNN", "LSTM", "GRU", "Bidirectional", "MultiHeadAttention",
    "ShapeError", "LayerError", "ModelFileError", "StructureError",
    "parameters", "named_parameters", "map_parameters", "buffers", "named_buffers", "map_buffers",
    "update_buffers",
    "check_gradients", "check_loss_gradient", "gradient_errors", "loss_gradient_error",
    "GradientCheckError",
    "save", "load", "load_extra", "register", "generate", "export_onnx",
]

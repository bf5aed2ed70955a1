"""lamina.layers: layer records, Sequence, shape checks, gradient checks, model files and error types."""

from lamina.layers.activations import ReLU, Sigmoid, Tanh
from lamina.layers.dense import Dense
from lamina.layers.errors import ModelFileError, ShapeError, StructureError
from lamina.layers.files import load, load_extra, save
from lamina.layers.gradient_check import (
    GradientCheckError,
    check_gradients,
    check_loss_gradient,
    gradient_errors,
    loss_gradient_error,
)
from lamina.layers.multilayer import mlp
from lamina.layers.parameter import param
from lamina.layers.registry import register
from lamina.layers.sequence import Sequence
from lamina.layers.tree import map_parameters, named_parameters, parameters

__all__ = [
    "Dense", "ReLU", "Sigmoid", "Tanh", "Sequence", "mlp", "param",
    "ShapeError", "ModelFileError", "StructureError",
    "parameters", "named_parameters", "map_parameters",
    "check_gradients", "check_loss_gradient", "gradient_errors", "loss_gradient_error",
    "GradientCheckError",
    "save", "load", "load_extra", "register",
]

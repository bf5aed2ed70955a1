"""lamina.losses: SoftmaxCrossEntropy, BinaryCrossEntropy, MSE, Huber, L1, Multi, softmax and sigmoid."""

from lamina.losses.binary_cross_entropy import BinaryCrossEntropy
from lamina.losses.cross_entropy import SoftmaxCrossEntropy
from lamina.losses.huber import Huber
from lamina.losses.l1 import L1
from lamina.losses.mse import MSE
from lamina.losses.multi import Multi
from lamina.losses.probabilities import sigmoid, softmax

__all__ = ["SoftmaxCrossEntropy", "BinaryCrossEntropy", "MSE", "Huber", "L1", "Multi", "softmax", "sigmoid"]

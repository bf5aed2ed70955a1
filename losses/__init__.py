"""lamina.losses: SoftmaxCrossEntropy, MSE and softmax."""

from lamina.losses.cross_entropy import SoftmaxCrossEntropy
from lamina.losses.mse import MSE
from lamina.losses.probabilities import softmax

__all__ = ["SoftmaxCrossEntropy", "MSE", "softmax"]

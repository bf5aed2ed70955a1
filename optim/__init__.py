"""lamina.optim: SGD and schedules, fit / evaluate, checkpoints."""

from lamina.optim.schedules import Constant, Cosine, StepDecay
from lamina.optim.sgd import SGD, SGDState

__all__ = ["SGD", "SGDState", "Constant", "StepDecay", "Cosine"]

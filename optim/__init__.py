"""lamina.optim: SGD and schedules, fit / evaluate, checkpoints."""

from lamina.optim.checkpoints import Checkpoint, latest_checkpoint, load_checkpoint
from lamina.optim.schedules import Constant, Cosine, StepDecay
from lamina.optim.sgd import SGD, SGDState
from lamina.optim.training import DEFAULT_THREADS, NonFiniteLossError, evaluate, fit

__all__ = ["SGD", "SGDState", "Constant", "StepDecay", "Cosine", "fit", "evaluate",
           "NonFiniteLossError", "Checkpoint", "load_checkpoint", "latest_checkpoint", "DEFAULT_THREADS"]

"""lamina.optim: optimizers and schedules, the training step, fit / evaluate, callbacks, checkpoints."""

from lamina.optim.callbacks import Run
from lamina.optim.checkpoints import Checkpoint, latest_checkpoint, load_checkpoint
from lamina.optim.errors import NonFiniteLossError, TrainingInterrupted, TrainingWarning
from lamina.optim.schedules import Constant, Cosine, StepDecay
from lamina.optim.sgd import SGD, SGDState
from lamina.optim.step import train_step
from lamina.optim.training import DEFAULT_THREADS, evaluate, fit

__all__ = ["SGD", "SGDState", "Constant", "StepDecay", "Cosine", "train_step", "fit", "evaluate", "Run",
           "NonFiniteLossError", "TrainingInterrupted", "TrainingWarning",
           "Checkpoint", "load_checkpoint", "latest_checkpoint", "DEFAULT_THREADS"]

"""lamina.optim: optimizers (chains of transforms) and schedules, the training step, fit, checkpoints."""

from lamina.optim.adam import Adam, AdamW
from lamina.optim.chain import FLUSH_EVERY, Chain, ChainState, chain
from lamina.optim.checkpoints import Checkpoint, SGDState, latest_checkpoint, load_checkpoint
from lamina.optim.clipping import clip_by_global_norm, global_norm
from lamina.optim.errors import NonFiniteLossError, TrainingInterrupted, TrainingWarning
from lamina.optim.rmsprop import RMSprop
from lamina.optim.run import Run
from lamina.optim.schedules import Constant, Cosine, Exponential, Linear, StepDecay, Warmup
from lamina.optim.sgd import SGD
from lamina.optim.step import train_step
from lamina.optim.evaluation import DEFAULT_THREADS, evaluate
from lamina.optim.training import fit
from lamina.optim.transform import Needs, Transform, TreeTransform, masked
from lamina.optim.transforms import (add_decayed_weights, scale, scale_by_adam, scale_by_learning_rate,
                                     scale_by_rms, set_to_zero, trace)

__all__ = ["SGD", "Adam", "AdamW", "RMSprop",
           "chain", "Chain", "ChainState", "Needs", "Transform", "TreeTransform", "masked",
           "clip_by_global_norm", "global_norm", "add_decayed_weights", "trace", "scale_by_adam",
           "scale_by_rms", "scale_by_learning_rate",
           "scale", "set_to_zero", "FLUSH_EVERY",
           "Constant", "StepDecay", "Cosine", "Exponential", "Linear", "Warmup",
           "train_step", "fit", "evaluate", "Run", "NonFiniteLossError", "TrainingInterrupted",
           "TrainingWarning",
           "Checkpoint", "load_checkpoint", "latest_checkpoint", "SGDState", "DEFAULT_THREADS"]

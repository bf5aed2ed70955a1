"""The error types of lamina; every other part imports them from here."""

from __future__ import annotations


def format_shape(shape) -> str:
    """Per-sample shape -> '(n, 784)'; None stands for any size."""
    if isinstance(shape, str):
        return shape
    sizes = ["n", *("?" if s is None else str(s) for s in shape)]
    return "(" + ", ".join(sizes) + ")"


class ShapeError(ValueError):
    """A layer was given an input of a shape it cannot take.

    ``path`` names the layer (``layers[2].layers[0]``), ``layer`` is its short repr,
    ``expected`` and ``received`` are per-sample shapes (batch axis left out) or text, and
    ``source`` is what gave the received shape (``layers[1] ReLU``, or None for the input).
    Every combinator fills in ``path`` and ``source`` as the error passes through it.
    """

    def __init__(self, layer: str, expected, received, *, path: str = "", source: str | None = None):
        super().__init__(layer, expected, received)
        self.layer, self.expected, self.received = layer, expected, received
        self.path, self.source = path, source

    def within(self, step: str, source: str | None) -> "ShapeError":
        """Prefix the path with ``step`` (and the source, if it has one) as the error leaves a combinator."""
        self.path = f"{step}.{self.path}" if self.path else step
        self.source = source if self.source is None else _placed(step, self.source)
        return self

    def __str__(self) -> str:
        where = f"{self.path} {self.layer}" if self.path else self.layer
        if self.source:
            gives = f"{self.source} gives"
        else:
            described = isinstance(self.received, str) and not self.received.startswith("(")
            gives = "got" if described else "the input is"
        expects = self.expected if isinstance(self.expected, str) else f"input {format_shape(self.expected)}"
        return f"{where} expects {expects}, but {gives} {format_shape(self.received)}"


def _placed(step: str, source: str) -> str:
    """``source`` as seen from one combinator further out: a child's path gains ``step.``; a combinator's
    own input ("input 1") is said to be of ``step``."""
    if not source.startswith("input "):
        return f"{step}.{source}"
    which, of, place = source.partition(" of ")
    return f"{which} of {step}.{place}" if of else f"{source} of {step}"


class LayerError(ValueError):
    """A layer refuses what it was given (a setting, a batch, a mode); a combinator adds the layer's path as
    it passes."""

    def __init__(self, layer: str, problem: str, *, path: str = ""):
        super().__init__(layer, problem)
        self.layer, self.problem, self.path = layer, problem, path

    def within(self, step: str, source: str | None = None) -> "LayerError":
        self.path = f"{step}.{self.path}" if self.path else step
        return self

    def __str__(self) -> str:
        return f"{self.path} {self.layer}: {self.problem}" if self.path else f"{self.layer}: {self.problem}"


class ModelFileError(ValueError):
    """A model or checkpoint file is damaged, foreign, or holds something lamina will not load."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class StructureError(ValueError):
    """Two trees of records (a model and its gradients, say) differ; names the first place by path."""

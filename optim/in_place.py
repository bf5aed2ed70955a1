"""The in-place update of a chain, as the training loop calls it (the executor runs it: see executor.py)."""

from lamina.optim.executor import owned, update_in_place

__all__ = ["owned", "update_in_place"]

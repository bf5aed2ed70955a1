"""What the recurrent and attention agreement scripts share: float64 tensors, one comparison, the report.

``python bench/torch_agreement/NAME.py`` puts this folder first on sys.path, so the scripts import it as
``agreement``.
"""

from __future__ import annotations

import numpy as np
import torch

TOLERANCE = 1e-9


def t(array) -> torch.Tensor:
    """A float64 tensor of the array."""
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def agree(results: list, name: str, lamina_value, torch_value) -> None:
    """Append (name, max |a - b| / max |b|) for one comparison to ``results``."""
    a = np.asarray(lamina_value, dtype=np.float64)
    b = torch_value.detach().numpy()
    assert a.shape == b.shape, (name, a.shape, b.shape)
    results.append((name, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))))


def report(results: list) -> int:
    """Print every comparison and the largest error; the exit status: 1 when any exceeds TOLERANCE."""
    width = max(len(name) for name, _ in results)
    for name, error in results:
        print(f"{name.ljust(width)}  {error:.2e}{'  FAIL' if not error <= TOLERANCE else ''}")
    worst = max(error for _, error in results)
    print(f"largest relative error {worst:.2e} (tolerance {TOLERANCE:.0e}), torch {torch.__version__}")
    return 0 if worst <= TOLERANCE else 1

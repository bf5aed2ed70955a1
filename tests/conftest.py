"""Session set-up for the whole suite: one BLAS thread, hypothesis profiles, the gradient-error record.

- BLAS is pinned to one thread, so a busy machine cannot make the suite crawl (and timings in
  tests compare like with like); $LAMINA_THREADS=1 makes ``fit`` and ``evaluate`` pin one thread
  instead of choosing ("auto"), so their bit-for-bit promises hold (also in the processes tests start).
- Hypothesis: profile "dev" (the default) draws a modest number of examples without deadlines;
  profile "ci" (chosen when the environment has CI=true) is the same, derandomized, so CI runs
  are reproducible. HYPOTHESIS_PROFILE=<name> picks a profile explicitly.
- ``gradient_record``: tests that run a gradient check add their errors to it; the largest
  one is printed in the terminal summary.
"""

from __future__ import annotations

import os

# scikit-learn's array-API estimator check runs only when SciPy's array API is switched on before SciPy is
# imported; switched on here, the check runs instead of skipping
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

os.environ["LAMINA_THREADS"] = "1"

# the processes tests start import the same checkout as the suite (setup.cfg puts its root on sys.path)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])

settings.register_profile(
    "dev",
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, database=None)
settings.register_profile("thorough", parent=settings.get_profile("dev"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI", "").lower() == "true" else "dev"))


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    """Every test runs with one BLAS thread."""
    with threadpool_limits(limits=1):
        yield


class GradientRecord:
    """The largest gradient-check error seen in the session, and where."""

    def __init__(self):
        self.largest, self.where, self.checks = 0.0, "", 0

    def add(self, errors: dict[str, float] | float, where: str) -> None:
        values = errors.values() if isinstance(errors, dict) else [errors]
        for value in values:
            self.checks += 1
            if value > self.largest:
                self.largest, self.where = value, where


_RECORD = GradientRecord()


@pytest.fixture(scope="session")
def gradient_record() -> GradientRecord:
    return _RECORD


def pytest_terminal_summary(terminalreporter):
    if _RECORD.checks:
        terminalreporter.write_line(
            f"gradient checks: {_RECORD.checks} relative errors, largest {_RECORD.largest:.3e} "
            f"({_RECORD.where})")

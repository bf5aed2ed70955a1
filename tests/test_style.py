"""Style: ruff, as configured in pyproject.toml (pycodestyle and pyflakes, lines <= 110), passes on every
folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("lamina", "layers", "losses", "optim", "data", "estimators", "diagnostics", "examples", "bench",
           "tests")


def test_ruff_passes_on_the_library_examples_benchmarks_and_tests():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           *FOLDERS], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr


def test_ruff_reads_the_projects_line_length():
    long_line = "x = " + "1 + " * 30 + "1\n"   # 125 characters: over 110
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--stdin-filename", "long.py",
                           "-"],
                          cwd=ROOT, input=long_line, capture_output=True, text=True)
    assert "E501" in done.stdout and "125 > 110" in done.stdout, done.stdout + done.stderr
